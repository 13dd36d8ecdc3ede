//! End-to-end load benchmark over HTTP: starts `tracemap serve` (the real binary) on loopback,
//! uploads real fixtures, warms the caches, then drives it with 8 concurrent keep-alive
//! clients sending 20-frame events. Reports frames per second for JS (small and large
//! bundles: the cost must be flat in bundle size) and native, each as a ratio against
//! `/healthz` measured in the same run.
//!
//! `cargo bench --bench load` (release build). `LOAD_SECONDS=N` sets each phase's length.

mod common;
use common::{rss_kib, Server};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

const CONCURRENCY: usize = 8;
const FRAMES_PER_EVENT: usize = 20;

fn fixture(rel: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn json_fixture(rel: &str) -> Value {
    serde_json::from_slice(&fixture(rel)).expect("json")
}

fn start() -> Server {
    common::start(&[
        // The overload phase uploads one 2 GiB file.
        ("TRACEMAP_LIMITS__MAX_FILE_BYTES", "3GiB"),
        ("TRACEMAP_LIMITS__MAX_UPLOAD_BYTES", "3GiB"),
    ])
}

async fn upload_js(client: &reqwest::Client, base: &str, name: &str) -> String {
    upload_js_to(client, base, name, "1.0", 0).await
}

/// Uploads the bundle again under `release`, its map padded with `pad` trailing newlines:
/// other bytes, so the upload builds its cache anew.
async fn upload_js_as(client: &reqwest::Client, base: &str, name: &str, release: &str, pad: usize) {
    upload_js_to(client, base, name, release, pad).await;
}

async fn upload_js_to(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    release: &str,
    pad: usize,
) -> String {
    let o = json_fixture(&format!("js/oracle/{name}.json"));
    let url = o["url"].as_str().unwrap().to_owned();
    let js = fixture(&format!("js/{}", o["minified"].as_str().unwrap()));
    let mut map = fixture(&format!("js/{}", o["map"].as_str().unwrap()));
    map.extend(std::iter::repeat_n(b'\n', pad));
    let form = reqwest::multipart::Form::new()
        .text("url", url.clone())
        .part(
            "file",
            reqwest::multipart::Part::bytes(js).file_name("app.min.js"),
        )
        .text("url", format!("{url}.map"))
        .part(
            "file",
            reqwest::multipart::Part::bytes(map).file_name("app.min.js.map"),
        );
    let r = client
        .post(format!(
            "{base}/api/v1/projects/bench/releases/{release}/files"
        ))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    url
}

/// 20-frame JS events over the oracle's sampled (valid) positions of a bundle.
fn js_events(name: &str, url: &str) -> Vec<Vec<u8>> {
    let o = json_fixture(&format!("js/oracle/{name}.json"));
    let samples = o["sampled"].as_array().unwrap();
    let abs = format!("https://cdn.example.com/{}", url.trim_start_matches("~/"));
    (0..64)
        .map(|e| {
            let frames: Vec<Value> = (0..FRAMES_PER_EVENT)
                .map(|i| {
                    let s = &samples[(e * 7 + i * 13) % samples.len()];
                    json!({"abs_path": abs, "lineno": s["line"], "colno": s["column"]})
                })
                .collect();
            serde_json::to_vec(&json!({"release": "1.0", "stacktraces": [{"frames": frames}]}))
                .unwrap()
        })
        .collect()
}

async fn upload_native(client: &reqwest::Client, base: &str, name: &str) {
    let r = client
        .post(format!(
            "{base}/api/v1/projects/bench/debug-files?name={name}"
        ))
        .body(fixture(&format!("native/out/{name}")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

fn native_events(name: &str) -> Vec<Vec<u8>> {
    let o = json_fixture(&format!("native/oracle/{name}.json"));
    let samples: Vec<&Value> = o["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] != "outside")
        .collect();
    let base: u64 = 0x5555_0000_0000;
    (0..64)
        .map(|e| {
            let frames: Vec<Value> = (0..FRAMES_PER_EVENT)
                .map(|i| {
                    let s = samples[(e * 7 + i * 13) % samples.len()];
                    let addr = u64::from_str_radix(s["addr"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
                    json!({"instruction_addr": format!("{:#x}", base + addr)})
                })
                .collect();
            serde_json::to_vec(&json!({
                "modules": [{"type": "elf", "debug_id": o["debug_id"], "code_id": o["code_id"], "image_addr": format!("{base:#x}"), "image_size": 0x1000_0000u64}],
                "stacktraces": [{"frames": frames}],
            }))
            .unwrap()
        })
        .collect()
}

/// What a phase measured.
struct Phase {
    rps: f64,
    p99_ms: f64,
    /// Answers 503 (`busy`/`timeout`, which clients retry): counted, not failures.
    shed: u64,
}

/// Drives `url` with CONCURRENCY clients for `secs`; returns requests per second. Every
/// answer is checked for success, and JS/native answers for resolved frames.
async fn drive(
    client: &reqwest::Client,
    url: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    secs: f64,
    check: &'static str,
) -> f64 {
    drive_timed(client, url, bodies, secs, check).await.rps
}

/// [`drive`], also recording every request's latency (p99) and the 503s served.
async fn drive_timed(
    client: &reqwest::Client,
    url: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    secs: f64,
    check: &'static str,
) -> Phase {
    let latencies = Arc::new(parking_lot::Mutex::new(Vec::<f64>::new()));
    let shed = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..CONCURRENCY {
        let client = client.clone();
        let url = url.to_owned();
        let bodies = bodies.clone();
        let done = done.clone();
        let latencies = latencies.clone();
        let shed = shed.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let r = if bodies.is_empty() {
                    client.get(&url).send().await
                } else {
                    client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(bodies[i % bodies.len()].clone())
                        .send()
                        .await
                };
                let r = r.expect("request");
                if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                    shed.fetch_add(1, Ordering::Relaxed);
                    let _ = r.bytes().await;
                    i += CONCURRENCY;
                    continue;
                }
                assert!(r.status().is_success(), "{}", r.status());
                let body = r.bytes().await.expect("body");
                latencies.lock().push(sent.elapsed().as_secs_f64() * 1000.0);
                if i % 64 == 0 && !check.is_empty() {
                    let text = String::from_utf8_lossy(&body);
                    assert!(
                        text.contains(check),
                        "unexpected answer: {}",
                        &text[..text.len().min(400)]
                    );
                }
                done.fetch_add(1, Ordering::Relaxed);
                i += CONCURRENCY;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut l = latencies.lock().clone();
    l.sort_by(|a, b| a.total_cmp(b));
    let p99_ms = l.get(l.len() * 99 / 100).copied().unwrap_or(0.0);
    Phase {
        rps: done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64(),
        p99_ms,
        shed: shed.load(Ordering::Relaxed),
    }
}

/// Uploads `gib` GiB as one release file, generated on the fly (a CI pipeline's big upload).
async fn big_upload(client: reqwest::Client, base: String, gib: u64) -> reqwest::StatusCode {
    const CHUNK: usize = 1 << 20;
    let chunks = gib * 1024;
    let stream = futures::stream::iter(0..chunks)
        .map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; CHUNK])));
    let part = reqwest::multipart::Part::stream_with_length(
        reqwest::Body::wrap_stream(stream),
        chunks * CHUNK as u64,
    )
    .file_name("big.js");
    let form = reqwest::multipart::Form::new()
        .text("url", "~/big.js")
        .part("file", part);
    client
        .post(format!("{base}/api/v1/projects/bench/releases/big/files"))
        .multipart(form)
        .send()
        .await
        .map(|r| r.status())
        .unwrap_or(reqwest::StatusCode::BAD_GATEWAY)
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let secs: f64 = std::env::var("LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = start();
        let client = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().unwrap();
        let small_url = upload_js(&client, &server.base, "esbuild").await;
        let large_url = upload_js(&client, &server.base, "large").await;
        upload_native(&client, &server.base, "cpp_dwarf5").await;
        let js_small = Arc::new(js_events("esbuild", &small_url));
        let js_large = Arc::new(js_events("large", &large_url));
        let native = Arc::new(native_events("cpp_dwarf5"));
        let js_endpoint = format!("{}/api/v1/projects/bench/symbolicate/js", server.base);
        let native_endpoint = format!("{}/api/v1/projects/bench/symbolicate/native", server.base);
        // Warm-up: builds the caches (first misses) and the connections.
        drive(&client, &js_endpoint, js_large.clone(), 2.0, "\"symbolicated\":true").await;
        drive(&client, &js_endpoint, js_small.clone(), 1.0, "\"symbolicated\":true").await;
        drive(&client, &native_endpoint, native.clone(), 1.0, "\"status\":\"symbolicated\"").await;

        let health = drive(&client, &format!("{}/healthz", server.base), Arc::new(Vec::new()), secs, "").await;
        let large = drive(&client, &js_endpoint, js_large.clone(), secs, "\"symbolicated\":true").await;
        let small = drive(&client, &js_endpoint, js_small, secs, "\"symbolicated\":true").await;
        let nat = drive(&client, &native_endpoint, native, secs, "\"status\":\"symbolicated\"").await;
        // Overload: symbolicate latency alone, then under a 2 GiB upload plus cache builds
        // (the large map uploaded again under new releases, which rebuilds nothing, and the
        // small one under a fresh debug ID, which builds).
        let idle = drive_timed(&client, &js_endpoint, js_large.clone(), secs, "\"symbolicated\":true").await;
        let upload = tokio::spawn(big_upload(client.clone(), server.base.clone(), 2));
        let rebuild = {
            let client = client.clone();
            let base = server.base.clone();
            tokio::spawn(async move {
                for i in 0..3 {
                    upload_js_as(&client, &base, "large", &format!("rebuild-{i}"), i + 1).await;
                }
            })
        };
        let busy = drive_timed(&client, &js_endpoint, js_large.clone(), secs, "\"symbolicated\":true").await;
        let upload_status = upload.await.unwrap();
        rebuild.await.unwrap();
        let rss = rss_kib(server.child.id());
        println!("load benchmark: {CONCURRENCY} concurrent clients, {FRAMES_PER_EVENT}-frame events, {secs}s per phase, client and server on this machine ({} CPUs)", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
        println!("{:<34} {:>12} {:>14} {:>12}", "phase", "requests/s", "frames/s", "vs /healthz");
        println!("{:<34} {:>12.0} {:>14} {:>12}", "GET /healthz (baseline)", health, "-", "1.00");
        for (name, rps) in [("JS, 1.2 MB bundle + 4.5 MB map", large), ("JS, 4 KB bundle", small), ("native, cpp_dwarf5 (inlined)", nat)] {
            println!("{name:<34} {rps:>12.0} {:>14.0} {:>12.2}", rps * FRAMES_PER_EVENT as f64, rps / health);
        }
        println!("JS large/small request cost ratio: {:.2} (1.00 = flat in bundle size)", small / large);
        println!("server RSS after the run: {} MiB", rss / 1024);
        println!(
            "overload: JS p99 idle {:.1} ms, under a 2 GiB upload + cache builds {:.1} ms (ratio {:.2}); {} and {} answers 503; upload answered {}",
            idle.p99_ms,
            busy.p99_ms,
            busy.p99_ms / idle.p99_ms.max(0.001),
            idle.shed,
            busy.shed,
            upload_status
        );
    });
}
