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
