//! Symbol sources (criterion; `cargo bench --bench sources`): one native request for a module
//! nobody uploaded (`fixtures/native/out/c_dwarf5`, 6 frames), served by an HTTP source
//! (debuginfod layout) on loopback, through the real router in-process.
//!
//! - `uploaded_warm` (baseline): the same request with the file uploaded, caches warm.
//! - `source_first_request`: a fresh service each time: download, validate, build the
//!   SymCache and CFI, answer.
//! - `source_warm`: the same service again (the answer comes from the derived cache).
//! - `dead_source_first_warm`: a source that refuses connections listed first: its miss is
//!   remembered, so the warm path costs the same as `source_warm`.
//! - `…_unresolved`: the same two with `cache.index_ttl` at 1 ms, so every request goes through
//!   the sources layer (remembered miss, answer from memory) instead of the per-process
//!   resolution cache.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use tracemap::app::App;
use tracemap::config::{Config, SourceConfig};

fn fixture(rel: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn oracle() -> Value {
    serde_json::from_slice(&fixture("native/oracle/c_dwarf5.json")).unwrap()
}

/// A source serving the fixture in the debuginfod layout.
async fn serve() -> String {
    let build_id = oracle()["build_id"].as_str().unwrap().to_owned();
    let file = fixture("native/out/c_dwarf5");
    let app = axum::Router::new().route(
        &format!("/{build_id}/debuginfo"),
        axum::routing::get(move || {
            let file = file.clone();
            async move { file }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn source(text: &str) -> SourceConfig {
    toml::from_str(text).unwrap()
}

fn app(dir: &std::path::Path, sources: Vec<SourceConfig>) -> App {
    app_with_ttl(dir, sources, Config::default().cache.index_ttl)
}

/// `index_ttl` also bounds how long a module's resolution is kept per process: at 1 ms every
/// request resolves again (remembered miss, then the source's answer from memory).
fn app_with_ttl(dir: &std::path::Path, sources: Vec<SourceConfig>, ttl: Duration) -> App {
    let mut config = Config {
        data_dir: dir.to_owned(),
        sources,
        ..Config::default()
    };
    config.cache.index_ttl = ttl;
    App::new(config).unwrap()
}

fn request() -> Value {
    let o = oracle();
    let frames: Vec<Value> = o["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "mid")
        .take(6)
        .map(|s| {
            let a = u64::from_str_radix(s["addr"].as_str().unwrap().trim_start_matches("0x"), 16)
                .unwrap();
            json!({"instruction_addr": format!("{:#x}", 0x7f00_0000_0000u64 + a)})
        })
        .collect();
    json!({
        "modules": [{"type": "elf", "code_id": o["build_id"], "image_addr": "0x7f0000000000",
                     "image_size": 1048576}],
        "stacktraces": [{"frames": frames}]
    })
}

async fn symbolicate(app: &App, body: &Value) {
    let request = axum::http::Request::post("/api/v1/projects/app/symbolicate/native")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let response = tracemap::http::router(app.clone())
        .oneshot(request)
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["stacktraces"][0]["frames"][0]["status"], "symbolicated",
        "{v}"
    );
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = rt.block_on(serve());
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let good = source(&format!(
        "id = \"good\"\ntype = \"http\"\nurl = \"{base}\"\nlayout = \"debuginfod\"\nallow_private = true"
    ));
    let refused = source(&format!(
        "id = \"dead\"\ntype = \"debuginfod\"\nurl = \"{dead_url}\"\nallow_private = true"
    ));
    let body = request();
    let mut group = c.benchmark_group("sources");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(5));

    let dir = tempfile::tempdir().unwrap();
    let uploaded = app(dir.path(), Vec::new());
    rt.block_on(async {
        let request = axum::http::Request::post("/api/v1/projects/app/debug-files?name=c_dwarf5")
            .body(axum::body::Body::from(fixture("native/out/c_dwarf5")))
            .unwrap();
        let r = tracemap::http::router(uploaded.clone())
            .oneshot(request)
            .await
            .unwrap();
        assert!(r.status().is_success());
        symbolicate(&uploaded, &body).await;
    });
    group.bench_function("uploaded_warm", |b| {
        b.iter(|| rt.block_on(symbolicate(&uploaded, &body)))
    });

    group.bench_function("source_first_request", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let a = app(dir.path(), vec![good.clone()]);
                (dir, a)
            },
            |(_dir, a)| rt.block_on(symbolicate(&a, &body)),
            BatchSize::PerIteration,
        )
    });

    let dir = tempfile::tempdir().unwrap();
    let warm = app(dir.path(), vec![good.clone()]);
    rt.block_on(symbolicate(&warm, &body));
    group.bench_function("source_warm", |b| {
        b.iter(|| rt.block_on(symbolicate(&warm, &body)))
    });

    let dir = tempfile::tempdir().unwrap();
    let with_dead = app(dir.path(), vec![refused.clone(), good.clone()]);
    rt.block_on(symbolicate(&with_dead, &body));
    group.bench_function("dead_source_first_warm", |b| {
        b.iter(|| rt.block_on(symbolicate(&with_dead, &body)))
    });

    // Without the per-process resolution cache, every request asks the sources layer.
    let dir = tempfile::tempdir().unwrap();
    let no_ttl = app_with_ttl(dir.path(), vec![good.clone()], Duration::from_millis(1));
    rt.block_on(symbolicate(&no_ttl, &body));
    group.bench_function("source_warm_unresolved", |b| {
        b.iter(|| rt.block_on(symbolicate(&no_ttl, &body)))
    });
    let dir = tempfile::tempdir().unwrap();
    let no_ttl_dead = app_with_ttl(dir.path(), vec![refused, good], Duration::from_millis(1));
    rt.block_on(symbolicate(&no_ttl_dead, &body));
    group.bench_function("dead_source_first_warm_unresolved", |b| {
        b.iter(|| rt.block_on(symbolicate(&no_ttl_dead, &body)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
