//! Warm start (criterion; `cargo bench --bench warm_start`): the first native request a new
//! replica answers for `rust_app` (4.2 MB ELF, 3.7 MiB of DWARF), uploaded through another
//! replica, both over one store (a local directory here; the same code path as a bucket).
//!
//! - `warm` (baseline): a replica that already has the cache in memory.
//! - `first_request_building`: a new replica (empty cache directory): it fetches the debug
//!   file from the store and builds the SymCache.
//! - `first_request_shared`: a new replica with `cache.shared`: it loads the SymCache another
//!   replica built from the store.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use tracemap::app::App;
use tracemap::config::Config;

fn fixture(rel: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A replica: its own data directory (caches), the shared store.
fn replica(store: &std::path::Path, shared: bool) -> (tempfile::TempDir, App) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    config.store.url = Some(store.display().to_string());
    config.cache.shared = shared;
    (dir, App::new(config).unwrap())
}

async fn send(app: &App, request: axum::http::Request<axum::body::Body>) -> Value {
    let response = tracemap::http::router(app.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert!(response.status().is_success());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

async fn symbolicate(app: &App, body: &Value) {
    let request = axum::http::Request::post("/api/v1/projects/app/symbolicate/native")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let v = send(app, request).await;
    assert_eq!(
        v["stacktraces"][0]["frames"][0]["status"], "symbolicated",
        "{v}"
    );
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = tempfile::tempdir().unwrap();
    let oracle: Value = serde_json::from_slice(&fixture("native/oracle/rust_app.json")).unwrap();
    let addr = oracle["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "inlined")
        .and_then(|s| s["addr"].as_str())
        .map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).unwrap())
        .unwrap();
    let body = json!({
        "modules": [{"type": "elf", "code_id": oracle["build_id"], "image_addr": "0x7f0000000000",
                     "image_size": 16777216}],
        "stacktraces": [{"frames": [{"instruction_addr": format!("{:#x}", 0x7f00_0000_0000u64 + addr),
                                     "adjust_instruction_addr": false}]}]
    });
    // Replica A takes the upload and builds (and shares) the cache.
    let (_a_dir, a) = replica(store.path(), true);
    rt.block_on(async {
        let request = axum::http::Request::post("/api/v1/projects/app/debug-files?name=rust_app")
            .body(axum::body::Body::from(fixture("native/out/rust_app")))
            .unwrap();
        send(&a, request).await;
        symbolicate(&a, &body).await;
        // The shared copy is written in the background.
        while !store.path().join("caches").exists() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    });

    let mut group = c.benchmark_group("warm_start");
    group.sample_size(20);
    group.bench_function("warm", |b| b.iter(|| rt.block_on(symbolicate(&a, &body))));
    group.bench_function("first_request_building", |b| {
        b.iter_batched(
            || replica(store.path(), false),
            |(_dir, r)| rt.block_on(symbolicate(&r, &body)),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("first_request_shared", |b| {
        b.iter_batched(
            || replica(store.path(), true),
            |(_dir, r)| rt.block_on(symbolicate(&r, &body)),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
