//! Soak: the real binary on loopback under a mix of uploads, re-uploads (newest wins),
//! deletes, sweeps and symbolications from 4 concurrent clients for `SOAK_SECONDS` (default
//! 600). Passes when no answer was 5xx, every upload that got 201 (and was not deleted)
//! resolves at the end with its newest content, and reports the server's RSS trend (with a
//! 64 MiB cache budget, so the caches fill early: a flat second half means no leak).
//!
//! `cargo bench --bench soak` (release build); `SOAK_SECONDS=N` bounds it.

mod common;
use common::{rss_kib, Server};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};
use sha2::Digest;

const CLIENTS: usize = 4;

fn start() -> Server {
    common::start(&[
        // A small memory budget, so the caches reach it early and what remains is the trend.
        ("TRACEMAP_CACHE__MEMORY", "64MiB"),
    ])
}

/// A small map whose single mapping is 1:0 → `src/app.js` 10:4, `boom`.
fn map() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "version": 3, "file": "app.js", "sources": ["src/app.js"],
        "sourcesContent": ["// line 1\n\n\n\n\n\n\n\n\n    boom();\n"],
        "names": ["boom"], "mappings": "AASIA"
    }))
    .expect("json")
}

/// What the soak expects to find at the end: release → SHA-256 of its newest `app.js`.
type Expected = Arc<Mutex<HashMap<String, String>>>;

struct Counts {
    requests: AtomicU64,
    server_errors: AtomicU64,
    shed: AtomicU64,
    /// Symbolications that resolved a release the client had deleted.
    stale: AtomicU64,
    /// Symbolications that did not resolve a release the client had uploaded.
    missing: AtomicU64,
}

async fn upload(client: &reqwest::Client, base: &str, release: &str, salt: u64) -> (u16, String) {
    let js = format!("boom(); // {release} {salt}\n//# sourceMappingURL=app.js.map\n");
    let sha = hex::encode(sha2::Sha256::digest(js.as_bytes()));
    let form = reqwest::multipart::Form::new()
        .text("url", "~/app.js")
        .part(
            "file",
            reqwest::multipart::Part::bytes(js.into_bytes()).file_name("app.js"),
        )
        .text("url", "~/app.js.map")
        .part(
            "file",
            reqwest::multipart::Part::bytes(map()).file_name("app.js.map"),
        );
    let status = client
        .post(format!(
            "{base}/api/v1/projects/soak/releases/{release}/files"
        ))
        .multipart(form)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(599);
    (status, sha)
}

async fn resolves(client: &reqwest::Client, base: &str, release: &str) -> Option<bool> {
    let r = client
        .post(format!("{base}/api/v1/projects/soak/symbolicate/js"))
        .json(&json!({"release": release, "stacktraces": [{"frames": [
            {"abs_path": "~/app.js", "lineno": 1, "colno": 1}]}]}))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    let v: Value = r.json().await.ok()?;
    Some(v["stacktraces"][0]["frames"][0]["data"]["symbolicated"] == true)
}

fn note(counts: &Counts, status: u16) {
    counts.requests.fetch_add(1, Ordering::Relaxed);
    if status == 503 {
        counts.shed.fetch_add(1, Ordering::Relaxed);
    } else if status >= 500 {
        counts.server_errors.fetch_add(1, Ordering::Relaxed);
    }
}

async fn client_loop(
    id: usize,
    base: String,
    deadline: Instant,
    expected: Expected,
    counts: Arc<Counts>,
) {
    let client = reqwest::Client::new();
    let mut n = 0u64;
    // The operation and the release are drawn independently (xorshift, seeded per client),
    // so every release sees uploads, re-uploads, symbolications and deletes in turn, and a
    // release's history stays bounded (deletes clear it) as it would in real use.
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (id as u64 + 1);
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    while Instant::now() < deadline {
        n += 1;
        let release = format!("r{id}-{}", next() % 50);
        match next() % 10 {
            // Upload or re-upload (newest wins).
            0..=3 => {
                let (status, sha) = upload(&client, &base, &release, n).await;
                note(&counts, status);
                if status == 201 {
                    expected.lock().insert(release, sha);
                }
            }
            // Delete a release.
            4 => {
                let status = client
                    .delete(format!("{base}/api/v1/projects/soak/releases/{release}"))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(599);
                note(&counts, status);
                if status == 204 {
                    expected.lock().remove(&release);
                }
            }
            // Sweep now and then (client 0 only).
            5 if id == 0 && n.is_multiple_of(5) => {
                let status = client
                    .post(format!("{base}/api/v1/admin/sweep?grace=0s"))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(599);
                note(&counts, status);
            }
            // Symbolicate: a release this client holds must resolve, one it deleted must
            // not (the client is the only writer of its releases, so this is exact).
            _ => {
                let held = expected.lock().contains_key(&release);
                let answer = client
                    .post(format!("{base}/api/v1/projects/soak/symbolicate/js"))
                    .json(&json!({"release": release, "stacktraces": [{"frames": [
                        {"abs_path": "~/app.js", "lineno": 1, "colno": 1}]}]}))
                    .send()
                    .await;
                let status = answer.as_ref().map_or(599, |r| r.status().as_u16());
                note(&counts, status);
                if status == 200 {
                    let v: Value = match answer {
                        Ok(r) => r.json().await.unwrap_or(Value::Null),
                        Err(_) => Value::Null,
                    };
                    let resolved = v["stacktraces"][0]["frames"][0]["data"]["symbolicated"] == true;
                    if resolved && !held {
                        counts.stale.fetch_add(1, Ordering::Relaxed);
                    } else if !resolved && held {
                        counts.missing.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

/// Least-squares slope of (seconds, MiB) samples, in MiB per minute.
fn slope_mib_per_min(samples: &[(f64, f64)]) -> f64 {
    let n = samples.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (sx, sy) = samples
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = samples.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    if den == 0.0 {
        0.0
    } else {
        num / den * 60.0
    }
}

fn main() {
    let secs: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let server = start();
        let pid = server.child.id();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(secs);
        let expected: Expected = Arc::default();
        let counts = Arc::new(Counts {
            requests: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            missing: AtomicU64::new(0),
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|id| {
                tokio::spawn(client_loop(
                    id,
                    server.base.clone(),
                    deadline,
                    expected.clone(),
                    counts.clone(),
                ))
            })
            .collect();
        let mut samples = Vec::new();
        while Instant::now() < deadline {
            samples.push((
                started.elapsed().as_secs_f64(),
                rss_kib(pid) as f64 / 1024.0,
            ));
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        for c in clients {
            c.await.expect("client");
        }
        let elapsed = started.elapsed().as_secs_f64();
        // Every committed, undeleted release resolves with its newest content.
        let client = reqwest::Client::new();
        let expected = expected.lock().clone();
        let mut lost = Vec::new();
        for (release, sha) in &expected {
            let files: Value = client
                .get(format!("{}/api/v1/projects/soak/releases/{release}/files", server.base))
                .send()
                .await
                .expect("list")
                .json()
                .await
                .unwrap_or(Value::Null);
            let newest = files["files"]
                .as_array()
                .and_then(|f| f.iter().find(|f| f["url"] == "~/app.js"))
                .and_then(|f| f["sha256"].as_str())
                .map(str::to_owned);
            if newest.as_deref() != Some(sha.as_str())
                || resolves(&client, &server.base, release).await != Some(true)
            {
                lost.push(release.clone());
            }
        }
        let requests = counts.requests.load(Ordering::Relaxed);
        let errors = counts.server_errors.load(Ordering::Relaxed);
        let shed = counts.shed.load(Ordering::Relaxed);
        let stale = counts.stale.load(Ordering::Relaxed);
        let missing = counts.missing.load(Ordering::Relaxed);
        let first = samples.first().map_or(0.0, |s| s.1);
        let last = samples.last().map_or(0.0, |s| s.1);
        println!(
            "soak: {elapsed:.0} s, {CLIENTS} clients, {requests} requests ({:.0}/s), {errors} answers 5xx (besides {shed} × 503 shed), {stale} stale and {missing} missing symbolications, {} releases checked at the end, {} lost",
            requests as f64 / elapsed,
            expected.len(),
            lost.len()
        );
        let second_half = &samples[samples.len() / 2..];
        let last_third = &samples[samples.len() * 2 / 3..];
        println!(
            "server RSS (cache.memory 64 MiB): {first:.0} MiB at start, {last:.0} MiB at the end; trend {:+.2} MiB/min over all {} samples, {:+.2} over the second half, {:+.2} over the last third",
            slope_mib_per_min(&samples),
            samples.len(),
            slope_mib_per_min(second_half),
            slope_mib_per_min(last_third)
        );
        assert_eq!(errors, 0, "answers 5xx");
        assert_eq!(
            (stale, missing),
            (0, 0),
            "symbolications that disagree with the uploads and deletes"
        );
        assert!(lost.is_empty(), "lost: {lost:?}");
    });
}
