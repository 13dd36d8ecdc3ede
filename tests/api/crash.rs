//! kill -9 during a large upload: after a restart every earlier artifact is intact and the
//! interrupted upload is absent. Runs the real binary on a real socket.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(data_dir: &std::path::Path) -> Server {
        Self::start_with_env(data_dir, &[])
    }

    fn start_with_env(data_dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_tracemap"))
            .envs(crate::garage::server_env(data_dir))
            .envs(env.iter().copied())
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir)
            .env("TRACEMAP_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(data_dir.with_extension("log"))
                    .map(Stdio::from)
                    .unwrap_or(Stdio::null()),
            )
            .spawn()
            .expect("spawn tracemap serve");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child, base }
    }
    fn kill9(&mut self) {
        // SIGKILL: no chance to clean up.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Uploads `mib` MiB as `~/big.js` to release `release` of project `web`, one MiB every
/// `pause`, in the background.
fn slow_upload(
    client: &reqwest::Client,
    base: &str,
    release: &str,
    mib: usize,
    pause: Duration,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    use futures::StreamExt;
    let chunk = bytes::Bytes::from(vec![b'a'; 1 << 20]);
    let stream = futures::stream::iter(
        (0..mib).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    )
    .then(move |c| async move {
        tokio::time::sleep(pause).await;
        c
    });
    let part =
        reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(stream)).file_name("big.js");
    let form = reqwest::multipart::Form::new()
        .text("url", "~/big.js")
        .part("file", part);
    tokio::spawn(
        client
            .post(format!(
                "{base}/api/v1/projects/web/releases/{release}/files"
            ))
            .multipart(form)
            .send(),
    )
}

async fn upload(
    client: &reqwest::Client,
    base: &str,
    release: &str,
    url: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    let form = reqwest::multipart::Form::new()
        .text("url", url.to_owned())
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name("f.js"),
        );
    client
        .post(format!(
            "{base}/api/v1/projects/web/releases/{release}/files"
        ))
        .multipart(form)
        .send()
        .await
        .expect("send")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_large_upload_loses_nothing_stored_and_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut server = Server::start(dir.path());

    let map = tiny_map(None);
    assert!(
        upload(&client, &server.base, "1.0", "~/app.js.map", map.clone())
            .await
            .status()
            .is_success()
    );
    assert!(upload(
        &client,
        &server.base,
        "1.0",
        "~/app.js",
        b"boom();\n".to_vec()
    )
    .await
    .status()
    .is_success());

    // A 256 MiB upload to release 2.0, sent slowly enough to be killed in the middle.
    let big = slow_upload(&client, &server.base, "2.0", 256, Duration::from_millis(20));
    // Wait until the server has received a good part of it.
    let tmp = dir.path().join("tmp");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let received: u64 = std::fs::read_dir(&tmp)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        if received > 20 << 20 {
            break;
        }
        assert!(Instant::now() < deadline, "upload never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9();
    // The client sees a broken connection; what matters is the server side, checked below.
    let _ = big.await;
    // Another process's upload in flight over the same data directory (a rolling restart):
    // its temp file is fresh and must survive this start.
    std::thread::sleep(Duration::from_millis(1500));
    let in_flight = tmp.join("other-process-upload.tmp");
    std::fs::write(&in_flight, b"being written").unwrap();

    // Temp files older than the upload time limit cannot belong to a request in flight.
    let server = Server::start_with_env(dir.path(), &[("TRACEMAP_LIMITS__UPLOAD_TIMEOUT", "1s")]);
    let list: serde_json::Value = client
        .get(format!(
            "{}/api/v1/projects/web/releases/1.0/files",
            server.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let files = list["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{list}");
    for f in files {
        let body = client
            .get(format!(
                "{}/api/v1/projects/web/releases/1.0/files/{}",
                server.base,
                f["sha256"].as_str().unwrap()
            ))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let want: &[u8] = if f["url"] == "~/app.js" {
            b"boom();\n"
        } else {
            &map
        };
        assert_eq!(&body[..], want);
    }
    let r = client
        .get(format!(
            "{}/api/v1/projects/web/releases/2.0/files",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let releases: serde_json::Value = client
        .get(format!("{}/api/v1/projects/web/releases", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(releases["releases"], serde_json::json!(["1.0"]));
    // The half-received file was removed at start; the fresh one of another process was not.
    let leftovers: Vec<String> = std::fs::read_dir(&tmp)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(leftovers, vec!["other-process-upload.tmp".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_upload_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut server = Server::start(dir.path());
    // A 16 MiB upload sent over about a second and a half.
    let upload = slow_upload(&client, &server.base, "1.0", 16, Duration::from_millis(100));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let response = upload
        .await
        .unwrap()
        .expect("the upload in flight is answered");
    assert_eq!(response.status(), 201);
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "server exit: {exit:?}");
    // New connections are refused after shutdown; the data is there after a restart.
    let server = Server::start(dir.path());
    let list: serde_json::Value = client
        .get(format!(
            "{}/api/v1/projects/web/releases/1.0/files",
            server.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["files"][0]["size"], 16 << 20);
}

/// Uploads `app.js` and its map (whose content differs per `release`) to project `web`.
async fn upload_pair(client: &reqwest::Client, base: &str, release: &str) -> Option<u16> {
    let js = format!("boom(); // {release}\n//# sourceMappingURL=app.js.map\n");
    upload_js(client, base, release, js.into_bytes(), tiny_map(None)).await
}

/// Uploads `~/app.js` and `~/app.js.map` with the given contents to release `release` of
/// project `web`; the status, or `None` when the server did not answer.
async fn upload_js(
    client: &reqwest::Client,
    base: &str,
    release: &str,
    js: Vec<u8>,
    map: Vec<u8>,
) -> Option<u16> {
    let form = reqwest::multipart::Form::new()
        .text("url", "~/app.js")
        .part(
            "file",
            reqwest::multipart::Part::bytes(js).file_name("app.js"),
        )
        .text("url", "~/app.js.map")
        .part(
            "file",
            reqwest::multipart::Part::bytes(map).file_name("app.js.map"),
        );
    client
        .post(format!(
            "{base}/api/v1/projects/web/releases/{release}/files"
        ))
        .multipart(form)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// The files of a release: `None` when the release does not exist.
async fn files_of(client: &reqwest::Client, base: &str, release: &str) -> Option<Vec<String>> {
    let r = client
        .get(format!(
            "{base}/api/v1/projects/web/releases/{release}/files"
        ))
        .send()
        .await
        .unwrap();
    if r.status() == 404 {
        return None;
    }
    assert!(r.status().is_success(), "{}", r.status());
    let v: serde_json::Value = r.json().await.unwrap();
    let mut urls: Vec<String> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["url"].as_str().unwrap().to_owned())
        .collect();
    urls.sort();
    Some(urls)
}

/// Whether a frame of `release` resolves (builds the cache if it is not there).
async fn resolves(client: &reqwest::Client, base: &str, release: &str) -> bool {
    let v: serde_json::Value = client
        .post(format!("{base}/api/v1/projects/web/symbolicate/js"))
        .json(
            &serde_json::json!({"release": release, "stacktraces": [{"frames": [
            {"abs_path": "~/app.js", "lineno": 1, "colno": 1}]}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["stacktraces"][0]["frames"][0]["data"]["symbolicated"] == true
}

impl Server {
    /// Waits for the process to end by itself (a crash point), at most `secs`.
    fn died_within(&mut self, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

/// The process is killed (SIGKILL, by itself, `TRACEMAP_TEST_CRASH_AT`) at every step of an
/// upload's commit, of a cache build, of a sweep and of a sentry-cli assembly; after a
/// restart nothing committed is lost, nothing half-written is visible, caches rebuild, and
/// the interrupted operation succeeds when tried again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_at_every_step_loses_nothing_committed() {
    let client = reqwest::Client::new();
    let expected = vec!["~/app.js".to_owned(), "~/app.js.map".to_owned()];
    for &point in tracemap::crash::POINTS {
        let dir = tempfile::tempdir().unwrap();
        // Before: a committed release, and one that a sweep may collect.
        {
            let a = Server::start(dir.path());
            assert_eq!(upload_pair(&client, &a.base, "1.0").await, Some(201));
            assert_eq!(upload_pair(&client, &a.base, "0.9").await, Some(201));
            assert!(resolves(&client, &a.base, "1.0").await);
            let r = client
                .delete(format!("{}/api/v1/projects/web/releases/0.9", a.base))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
        }
        // The crash.
        let mut b = Server::start_with_env(dir.path(), &[("TRACEMAP_TEST_CRASH_AT", point)]);
        match point.split(':').next().unwrap() {
            "upload" | "cache" => {
                let _ = upload_pair(&client, &b.base, "2.0").await;
            }
            "sweep" => {
                let _ = client
                    .post(format!("{}/api/v1/admin/sweep?grace=0s", b.base))
                    .send()
                    .await;
            }
            _ => {
                // A sentry-cli assembly of a bundle for release 3.0.
                let bundle = zip(&[
                    ("app.js", b"boom();\n//# sourceMappingURL=app.js.map\n"),
                    ("app.js.map", &tiny_map(None)),
                ]);
                let sha = hex::encode(<sha1::Sha1 as sha1::Digest>::digest(&bundle));
                let form = reqwest::multipart::Form::new().part(
                    "file",
                    reqwest::multipart::Part::bytes(bundle).file_name(sha.clone()),
                );
                let r = client
                    .post(format!("{}/api/0/organizations/o/chunk-upload/", b.base))
                    .multipart(form)
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
                let _ = client
                    .post(format!("{}/api/0/organizations/o/artifactbundle/assemble/", b.base))
                    .json(&serde_json::json!({"checksum": sha, "chunks": [sha], "projects": ["web"], "version": "3.0"}))
                    .send()
                    .await;
            }
        }
        assert!(
            b.died_within(20),
            "{point}: the crash point was not reached"
        );
        drop(b);

        // After: everything committed is there and intact; nothing is half there.
        let c = Server::start_with_env(
            dir.path(),
            &[("TRACEMAP_LIMITS__ASSEMBLE_STALLED_AFTER", "1s")],
        );
        assert_eq!(
            files_of(&client, &c.base, "1.0").await,
            Some(expected.clone()),
            "{point}"
        );
        assert!(
            resolves(&client, &c.base, "1.0").await,
            "{point}: 1.0 no longer resolves"
        );
        let interrupted = files_of(&client, &c.base, "2.0").await;
        assert!(
            interrupted.is_none() || interrupted == Some(expected.clone()),
            "{point}: release 2.0 is half visible: {interrupted:?}"
        );
        if point == "upload:after_manifest" || point.starts_with("cache:") {
            assert_eq!(
                interrupted,
                Some(expected.clone()),
                "{point}: a committed upload was lost"
            );
        }
        // Trying again succeeds, and the result resolves (caches rebuild).
        assert_eq!(
            upload_pair(&client, &c.base, "2.0").await,
            Some(201),
            "{point}"
        );
        assert!(resolves(&client, &c.base, "2.0").await, "{point}");
        let r = client
            .post(format!("{}/api/v1/admin/sweep?grace=0s", c.base))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{point}: sweep after the crash");
        assert_eq!(
            files_of(&client, &c.base, "1.0").await,
            Some(expected.clone()),
            "{point}"
        );
        assert!(resolves(&client, &c.base, "1.0").await, "{point}");
        if point.starts_with("assemble") {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let mut state = serde_json::Value::Null;
            for _ in 0..200 {
                let bundle = zip(&[
                    ("app.js", b"boom();\n//# sourceMappingURL=app.js.map\n"),
                    ("app.js.map", &tiny_map(None)),
                ]);
                let sha = hex::encode(<sha1::Sha1 as sha1::Digest>::digest(&bundle));
                state = client
                    .post(format!("{}/api/0/organizations/o/artifactbundle/assemble/", c.base))
                    .json(&serde_json::json!({"checksum": sha, "chunks": [sha], "projects": ["web"], "version": "3.0"}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if state["state"] == "ok" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(
                state["state"], "ok",
                "{point}: the retried assembly did not finish: {state}"
            );
            assert_eq!(
                files_of(&client, &c.base, "3.0").await,
                Some(expected.clone()),
                "{point}"
            );
        }
    }
}

/// An original source that swc takes hours to parse (the `js_scopes` fuzzer's reproducer,
/// twice over; each nested `<(` multiplies the work): the upload and the symbolication answer
/// once the parser deadline (10 s) has passed, the frame resolves without an original scope
/// name, and the server goes on answering. Without the deadline the upload never returns.
#[tokio::test(flavor = "multi_thread")]
async fn a_source_the_parser_would_take_hours_on_does_not_wedge_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let client = reqwest::Client::new();
    let seed = include_str!("../../fuzz/regressions/js_scopes-swc-tsx-exponential.tsx");
    let map = serde_json::json!({
        "version": 3, "file": "app.js", "sources": ["src/slow.tsx"],
        "sourcesContent": [format!("{seed}{seed}")], "names": [], "mappings": "AAAA"
    });
    let started = Instant::now();
    let work = async {
        let js = b"boom();\n//# sourceMappingURL=app.js.map\n".to_vec();
        let map = serde_json::to_vec(&map).unwrap();
        assert_eq!(
            upload_js(&client, &server.base, "slow", js, map).await,
            Some(201)
        );
        let v: serde_json::Value = client
            .post(format!(
                "{}/api/v1/projects/web/symbolicate/js",
                server.base
            ))
            .json(
                &serde_json::json!({"release": "slow", "stacktraces": [{"frames": [
                {"abs_path": "~/app.js", "lineno": 1, "colno": 1}]}]}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let frame = &v["stacktraces"][0]["frames"][0];
        assert_eq!(frame["data"]["symbolicated"], true, "{v}");
        assert_eq!(frame["abs_path"], "~/src/slow.tsx", "{v}");
        assert_eq!(frame["lineno"], 1, "{v}");
    };
    tokio::time::timeout(Duration::from_secs(300), work)
        .await
        .expect("the server is still parsing: no deadline");
    eprintln!("answered after {:?}", started.elapsed());
    // The runaway parse holds back new parses, nothing else.
    assert_eq!(upload_pair(&client, &server.base, "after").await, Some(201));
    assert!(resolves(&client, &server.base, "after").await);
    let health = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
