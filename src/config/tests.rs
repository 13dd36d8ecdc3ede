//! Configuration tests: loading, overrides, validation, the memory budget.
use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn memory_shares_add_up_to_the_budget() {
    let c = CacheConfig {
        memory: 64 << 20,
        ..CacheConfig::default()
    };
    let all = [
        MemoryShare::CacheFiles,
        MemoryShare::Derived,
        MemoryShare::Texts,
        MemoryShare::Manifests,
        MemoryShare::ReleaseIndexes,
        MemoryShare::Pointers,
        MemoryShare::JsResolutions,
        MemoryShare::NativeResolutions,
    ];
    let total: u64 = all.iter().map(|s| c.memory_for(*s)).sum();
    assert_eq!(total, 64 << 20);
    assert_eq!(cache_weight(0), CACHE_ENTRY_OVERHEAD as u32);
    assert_eq!(cache_weight(usize::MAX), u32::MAX);
}

#[test]
fn defaults_are_valid_and_loopback() {
    let c = Config::load(None, env(&[]), &Overrides::default()).unwrap();
    assert!(c.listen.ip().is_loopback());
    assert_eq!(c.listen.port(), 7878);
}

#[test]
fn env_overrides_nested_keys_and_sizes() {
    let c = Config::load(
        None,
        env(&[
            ("TRACEMAP_LIMITS__MAX_UPLOAD_BYTES", "3MiB"),
            ("TRACEMAP_CACHE__BUILD_WORKERS", "4"),
            ("PATH", "/bin"),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.limits.max_upload_bytes, 3 << 20);
    assert_eq!(c.cache.build_workers, 4);
}

#[test]
fn unknown_keys_are_named() {
    let err = Config::load(
        None,
        env(&[("TRACEMAP_LIMITS__MAX_UPLAOD_BYTES", "1")]),
        &Overrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("max_uplaod_bytes"), "{err}");
}

#[test]
fn non_loopback_without_tokens_is_refused() {
    let o = Overrides {
        listen: Some("0.0.0.0:7878".parse().unwrap()),
        ..Default::default()
    };
    let err = Config::load(None, env(&[]), &o).unwrap_err().to_string();
    assert!(err.contains("no [[auth.tokens]]"), "{err}");
}

#[test]
fn secrets_are_redacted_in_debug() {
    let t = TokenConfig {
        name: "ci".into(),
        token: Secret("supersecretvalue123".into()),
        scopes: vec![Scope::Upload],
        projects: None,
    };
    assert!(!format!("{t:?}").contains("supersecret"));
}

#[test]
fn byte_sizes() {
    assert_eq!(parse_bytes("10").unwrap(), 10);
    assert_eq!(parse_bytes("2GiB").unwrap(), 2 << 30);
    assert_eq!(parse_bytes("5 MB").unwrap(), 5_000_000);
    assert!(parse_bytes("5 parsecs").is_err());
    assert_eq!(parse_bytes("1.5GiB").unwrap(), 3 << 29);
    assert_eq!(parse_bytes("0.5 KiB").unwrap(), 512);
    assert_eq!(parse_bytes("2.25MB").unwrap(), 2_250_000);
    assert!(parse_bytes("1.5.0GiB").is_err());
    assert!(parse_bytes(".GiB").is_err());
}

#[test]
fn a_bad_value_names_its_key() {
    for (var, value, key) in [
        ("TRACEMAP_LIMITS__MAX_FRAMES", "abc", "limits.max_frames"),
        (
            "TRACEMAP_LIMITS__MAX_FILE_BYTES",
            "lots",
            "limits.max_file_bytes",
        ),
        ("TRACEMAP_CACHE__INDEX_TTL", "soon", "cache.index_ttl"),
    ] {
        let err = Config::load(None, env(&[(var, value)]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{var}={value}: {err}");
    }
}

#[test]
fn a_missing_config_file_is_reported_once() {
    let err = Config::load(
        Some(Path::new("/nonexistent/tracemap.toml")),
        env(&[]),
        &Overrides::default(),
    )
    .unwrap_err();
    // The whole chain, as `main` prints it (`{:#}`).
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(e) = source {
        chain.push_str(&format!(": {e}"));
        source = e.source();
    }
    assert!(chain.contains("/nonexistent/tracemap.toml"), "{chain}");
    let io = std::io::Error::from(std::io::ErrorKind::NotFound).to_string();
    let reason = "No such file or directory";
    assert_eq!(chain.matches(reason).count(), 1, "{chain} ({io})");
}

/// The example file loads, and says the defaults (its `[[sources]]` are comments; each one,
/// uncommented, is a valid source).
#[test]
fn the_example_config_loads_and_matches_the_defaults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tracemap.example.toml");
    let config = Config::load(Some(&path), env(&[]), &Overrides::default()).unwrap();
    let d = Config::default();
    assert_eq!(
        config.limits.max_minidump_bytes,
        d.limits.max_minidump_bytes
    );
    assert_eq!(config.fetching.notfound_ttl, d.fetching.notfound_ttl);
    assert_eq!(config.fetching.error_ttl, d.fetching.error_ttl);
    assert_eq!(config.fetching.request_wait, d.fetching.request_wait);
    assert_eq!(
        config.fetching.max_concurrent_downloads,
        d.fetching.max_concurrent_downloads
    );
    assert!(config.sources.is_empty());
    // The commented sources, uncommented.
    let text = std::fs::read_to_string(&path).unwrap();
    let sources: String = text
        .lines()
        .skip_while(|l| !l.starts_with("# [[sources]]"))
        .map(|l| l.strip_prefix("# ").unwrap_or(l.trim_start_matches('#')))
        .collect::<Vec<_>>()
        .join("\n");
    #[derive(serde::Deserialize)]
    struct Only {
        sources: Vec<SourceConfig>,
    }
    let only: Only = toml::from_str(&sources).unwrap_or_else(|e| panic!("{e}\n{sources}"));
    assert_eq!(only.sources.len(), 3);
    for s in &only.sources {
        assert_eq!(s.problem(), None, "{}", s.id);
    }
}
