//! The real bundles under `fixtures/js` (see its README.md) against their oracle: every thrown
//! frame (V8 running the original sources) and every sampled position (trace-mapping) must
//! resolve to exactly the oracle's source, line and column; function names are scored
//! against V8's names for the original run.
//!
//! `cargo test --lib oracle -- --nocapture` prints the per-bundle report and every name miss.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use super::*;

fn fixtures() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/js")).to_owned()
}

/// The per-bundle oracle files, or nothing when the fixtures have not been generated.
/// `answers.json` (issue 14's cases, another shape) is read by `tests/api/js_answers.rs`.
fn oracles() -> Vec<Value> {
    let dir = fixtures().join("oracle");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| !p.ends_with("answers.json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

/// The minified file and its map: the `map` file, or the inline `data:` URL.
fn load(oracle: &Value) -> (String, Vec<u8>) {
    let root = fixtures();
    let minified =
        std::fs::read_to_string(root.join(oracle["minified"].as_str().unwrap())).unwrap();
    let map = match oracle["map"].as_str() {
        Some(path) => std::fs::read(root.join(path)).unwrap(),
        None => {
            let marker = "//# sourceMappingURL=data:application/json;base64,";
            let start = minified.rfind(marker).expect("inline map") + marker.len();
            let b64 = minified[start..].trim();
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap()
        }
    };
    (minified, map)
}

fn num(v: &Value) -> u32 {
    v.as_u64().unwrap() as u32
}

/// How a resolved function name compares with V8's name in the original run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameMatch {
    /// Identical, or both anonymous.
    Exact,
    /// The same function under another qualifier: V8 prints the receiver's type
    /// (`Object.invoke`, `checkout` called unbound) where the scope name has the declaring
    /// object (`invoke`, `scenarios.checkout`). Same last component and same `new`-ness.
    Qualified,
    Miss,
}

fn compare_names(ours: Option<&str>, v8: Option<&str>) -> NameMatch {
    // V8 appends ` [as alias]` when the property name differs from the function name.
    let v8 = v8.map(|n| n.split(" [as ").next().unwrap_or(n));
    match (ours, v8) {
        (None, None) => NameMatch::Exact,
        (Some(a), Some(b)) if a == b => NameMatch::Exact,
        (Some(a), Some(b)) => {
            let last = |s: &str| {
                let is_new = s.starts_with("new ");
                let s = s.trim_start_matches("new ");
                (is_new, s.rsplit('.').next().unwrap_or(s).to_owned())
            };
            if last(a) == last(b) {
                NameMatch::Qualified
            } else {
                NameMatch::Miss
            }
        }
        _ => NameMatch::Miss,
    }
}

#[test]
fn oracle_positions_and_function_names() {
    let oracles = oracles();
    if oracles.is_empty() {
        eprintln!("fixtures/js/oracle is missing: run fixtures/js/build.sh");
        return;
    }
    let mut position_failures = Vec::new();
    let (mut frames, mut samples) = (0, 0);
    // Per policy: exact, qualified, miss counts; and the misses of the chosen policy.
    let mut scores = [[0usize; 3]; 2];
    let mut misses = Vec::new();
    // Per language of the original file: exact, qualified, miss.
    let mut by_language: std::collections::BTreeMap<String, [usize; 3]> = Default::default();
    println!("bundle          frames samples scopes");
    for oracle in &oracles {
        let name = oracle["name"].as_str().unwrap();
        let (minified, map) = load(oracle);
        let bytes = build_cache(Some(&minified), &map).unwrap();
        let cache = JsCache::parse(&bytes).unwrap();
        let (mut bundle_frames, mut bundle_samples) = (0, 0);

        for scenario in oracle["thrown"].as_array().unwrap() {
            let chain = scenario["frames"].as_array().unwrap();
            let found: Vec<_> = chain
                .iter()
                .map(|f| {
                    let m = &f["minified"];
                    cache.lookup(num(&m["line"]) - 1, num(&m["column"]) - 1)
                })
                .collect();
            for (i, frame) in chain.iter().enumerate() {
                bundle_frames += 1;
                let o = &frame["original"];
                let want = (
                    o["source"].as_str().unwrap(),
                    num(&o["line"]),
                    num(&o["column"]),
                );
                let Some(loc) = found[i] else {
                    position_failures.push(format!(
                        "{name} {}: frame {i} unmapped",
                        scenario["scenario"]
                    ));
                    continue;
                };
                if (loc.abs_path, loc.line, loc.column) != want {
                    position_failures.push(format!(
                        "{name} {} frame {i}: got {}:{}:{}, want {want:?}",
                        scenario["scenario"], loc.abs_path, loc.line, loc.column
                    ));
                }
                let v8 = o["function"].as_str();
                let language = o["file"]
                    .as_str()
                    .and_then(|f| f.rsplit_once('.'))
                    .map_or("?", |(_, ext)| ext)
                    .to_owned();
                // Policy 0: `JsLocation::function`. Policy 1: that, else (no scope information)
                // the caller frame's token name, as the service does.
                let caller_token = found
                    .get(i + 1)
                    .copied()
                    .flatten()
                    .and_then(|c| c.token_name);
                let with_fallback = match loc.scope {
                    JsScope::Unknown => loc.function.or(caller_token),
                    _ => loc.function,
                };
                for (p, ours) in [loc.function, with_fallback].into_iter().enumerate() {
                    let m = compare_names(ours, v8);
                    scores[p][m as usize] += 1;
                    if p == 0 {
                        let entry = by_language.entry(language.clone()).or_insert([0; 3]);
                        entry[m as usize] += 1;
                    }
                    if p == 0 && m != NameMatch::Exact {
                        misses.push(format!(
                            "{name:<14} {:<11} frame {i}: {:?} vs V8 {:?} ({m:?}; scope {:?}, token {:?}, caller token {:?})",
                            scenario["scenario"].as_str().unwrap(),
                            ours,
                            v8,
                            loc.scope,
                            loc.token_name,
                            caller_token,
                        ));
                    }
                }
            }
        }

        for s in oracle["sampled"].as_array().unwrap() {
            bundle_samples += 1;
            let want = (
                s["source"].as_str().unwrap(),
                num(&s["original_line"]),
                num(&s["original_column"]),
            );
            let got = cache
                .lookup(num(&s["line"]) - 1, num(&s["column"]) - 1)
                .map(|l| (l.abs_path, l.line, l.column));
            if got != Some(want) {
                position_failures.push(format!(
                    "{name} sample {}:{}: got {got:?}, want {want:?}",
                    s["line"], s["column"]
                ));
            }
        }
        println!(
            "{name:<15} {bundle_frames:>6} {bundle_samples:>7} {:?}",
            cache.scope_origins()
        );
        frames += bundle_frames;
        samples += bundle_samples;
    }
    println!(
        "positions: {} of {} frames + samples wrong",
        position_failures.len(),
        frames + samples
    );
    for (p, label) in ["JsLocation::function", "else caller's token"]
        .iter()
        .enumerate()
    {
        let [exact, qualified, miss] = scores[p];
        println!(
            "names ({label}): {exact} exact + {qualified} qualified of {frames} = {:.1}% ({:.1}% exact), {miss} misses",
            100.0 * (exact + qualified) as f64 / frames as f64,
            100.0 * exact as f64 / frames as f64,
        );
    }
    for (language, [exact, qualified, miss]) in &by_language {
        println!(
            "names in .{language} originals: {exact} exact + {qualified} qualified of {} ({miss} misses)",
            exact + qualified + miss
        );
    }
    println!("non-exact names of JsLocation::function:");
    for m in &misses {
        println!("  {m}");
    }
    assert!(position_failures.is_empty(), "{position_failures:#?}");
    let [exact, qualified, _] = scores[0];
    let rate = (exact + qualified) as f64 / frames as f64;
    assert!(rate >= 0.98, "function name match rate {rate:.3}");
}

/// Removes every `sourcesContent` (also inside index-map sections).
fn strip_sources_content(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("sourcesContent");
            map.values_mut().for_each(strip_sources_content);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_sources_content),
        _ => {}
    }
}

/// Without any scope information (no minified source, no sources content), which fallback
/// names functions better: the frame's own token name or the calling frame's token name (the
/// name the caller used to call it)? Informational: prints the rates. This is why
/// `JsLocation::function` does not fall back to the own token name.
#[test]
fn oracle_fallback_names_without_scopes() {
    let (mut own, mut caller, mut frames) = (0, 0, 0);
    for oracle in oracles() {
        let (_, map) = load(&oracle);
        let mut json: Value = serde_json::from_slice(&map).unwrap();
        strip_sources_content(&mut json);
        let bytes = build_cache(None, &serde_json::to_vec(&json).unwrap()).unwrap();
        let cache = JsCache::parse(&bytes).unwrap();
        assert_eq!(cache.scope_origins(), ScopeOrigins::default());
        for scenario in oracle["thrown"].as_array().unwrap() {
            let chain = scenario["frames"].as_array().unwrap();
            let found: Vec<_> = chain
                .iter()
                .map(|f| {
                    let m = &f["minified"];
                    cache.lookup(num(&m["line"]) - 1, num(&m["column"]) - 1)
                })
                .collect();
            for (i, frame) in chain.iter().enumerate() {
                let v8 = frame["original"]["function"].as_str();
                let loc = found[i].unwrap();
                let from_caller = found
                    .get(i + 1)
                    .copied()
                    .flatten()
                    .and_then(|c| c.token_name);
                frames += 1;
                own += (compare_names(loc.token_name, v8) != NameMatch::Miss) as usize;
                caller += (compare_names(from_caller, v8) != NameMatch::Miss) as usize;
            }
        }
    }
    if frames > 0 {
        println!(
            "without scopes: own token name {own}/{frames} ({:.1}%), caller's token name {caller}/{frames} ({:.1}%)",
            100.0 * own as f64 / frames as f64,
            100.0 * caller as f64 / frames as f64
        );
    }
}

/// Oracle-free cross-check on every bundle: for every token of every map, our lookup agrees
/// with the `sourcemap` crate's token at the same position (which resolves esbuild's
/// repeated segments correctly), except where we deliberately differ (a column before the
/// line's first token, or an unmapped segment, both `None` for us).
#[test]
fn every_token_agrees_with_the_sourcemap_crate() {
    for oracle in oracles() {
        let name = oracle["name"].as_str().unwrap().to_owned();
        let (minified, map) = load(&oracle);
        let bytes = build_cache(Some(&minified), &map).unwrap();
        let cache = JsCache::parse(&bytes).unwrap();
        let sm = match sourcemap::decode_slice(&map).unwrap() {
            sourcemap::DecodedMap::Regular(sm) => sm,
            sourcemap::DecodedMap::Index(index) => index.flatten().unwrap(),
            sourcemap::DecodedMap::Hermes(h) => (*h).clone(),
        };
        let mut checked = 0;
        for token in sm.tokens() {
            let (line, col) = token.get_dst();
            let Some(expected) = sm.lookup_token(line, col) else {
                continue;
            };
            let got = cache.lookup(line, col);
            match (expected.get_source(), got) {
                (Some(source), Some(loc)) => {
                    assert_eq!(
                        (loc.abs_path, loc.line, loc.column),
                        (
                            source,
                            expected.get_src_line() + 1,
                            expected.get_src_col() + 1
                        ),
                        "{name} at {line}:{col}"
                    );
                    checked += 1;
                }
                (None, None) => {}
                (e, g) => panic!("{name} at {line}:{col}: sourcemap {e:?}, ours {g:?}"),
            }
        }
        assert!(checked > 0, "{name}");
    }
}
