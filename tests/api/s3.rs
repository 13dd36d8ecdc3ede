//! Two replicas over one S3-compatible bucket (moto's S3 server from PyPI on loopback): what
//! one replica takes, the other serves; large blobs go up as multipart uploads.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tracemap::config::Secret;

use crate::common::*;

pub(crate) struct Moto {
    child: Child,
    pub(crate) endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn moto() -> Option<Moto> {
    let bin = pip_tool("moto[server]==5.2.5", "moto_server")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server starts");
    let endpoint = format!("http://127.0.0.1:{port}");
    let moto = Moto { child, endpoint };
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client
            .put(format!("{}/tracemap", moto.endpoint))
            .send()
            .await
        {
            assert!(r.status().is_success(), "create bucket: {}", r.status());
            return Some(moto);
        }
        assert!(Instant::now() < deadline, "moto_server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn replica(endpoint: &str, ttl: Duration) -> TestApp {
    TestApp::with_config(|c| {
        c.store.url = Some("s3://tracemap/prod".into());
        for (k, v) in [
            ("endpoint", endpoint),
            ("region", "us-east-1"),
            ("access_key_id", "test"),
            ("secret_access_key", "test"),
            ("allow_http", "true"),
        ] {
            c.store.options.insert(k.into(), Secret(v.into()));
        }
        c.cache.index_ttl = ttl;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_bucket() {
    let Some(moto) = moto().await else { return };
    let a = replica(&moto.endpoint, Duration::from_secs(1));
    let b = replica(&moto.endpoint, Duration::from_secs(1));
    replicas_agree(&a, &b).await;
}

/// What replica A takes, replica B (which never saw it) serves, and A's re-upload reaches B
/// within B's `index_ttl` (1 s here).
pub(crate) async fn replicas_agree(a: &TestApp, b: &TestApp) {
    assert_eq!(a.get("/readyz").await.status, 200);

    // Replica A takes the uploads: a bundle, a debug file, and a 12 MiB source (multipart).
    crate::js::upload_bundle(a, "web", "1.0", "esbuild").await;
    a.upload_debug_file("app", "c_dwarf5", fixture("native/out/c_dwarf5"))
        .await
        .ok();
    let big = vec![b'/'; 12 << 20];
    a.upload_release("web", "1.0", None, &[("~/big.js", &big)])
        .await
        .ok();

    // Replica B, which never saw them, serves them.
    let o = crate::js::oracle("esbuild");
    let f = &o["thrown"][0]["frames"][0];
    let r = b
        .js("web", &json!({"release": "1.0", "stacktraces": [{"frames": [
            {"abs_path": "https://cdn.example.com/static/esbuild/app.min.js", "lineno": f["minified"]["line"], "colno": f["minified"]["column"]}]}]}))
        .await;
    let got = &r["stacktraces"][0]["frames"][0];
    assert_eq!(
        (&got["lineno"], &got["colno"]),
        (&f["original"]["line"], &f["original"]["column"]),
        "{r}"
    );
    let n: serde_json::Value =
        serde_json::from_slice(&fixture("native/oracle/c_dwarf5.json")).unwrap();
    let r = b
        .native("app", &json!({
            "modules": [{"type": "elf", "debug_id": n["debug_id"], "image_addr": "0x10000", "image_size": 65536}],
            "stacktraces": [{"frames": [{"instruction_addr": 0x10000 + 0x1185, "adjust_instruction_addr": false}]}]}))
        .await;
    assert_eq!(
        r["stacktraces"][0]["frames"][0]["status"], "symbolicated",
        "{r}"
    );
    let list = b
        .get("/api/v1/projects/web/releases/1.0/files")
        .await
        .ok()
        .json();
    let big_sha = list["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["url"] == "~/big.js")
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = b
        .get(&format!(
            "/api/v1/projects/web/releases/1.0/files/{big_sha}"
        ))
        .await
        .ok()
        .body;
    assert_eq!(body.len(), big.len());

    // A re-upload on A reaches B within its index TTL.
    a.upload_release("web", "1.0", None, &[("~/big.js", b"small now\n")])
        .await
        .ok();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let list = b
        .get("/api/v1/projects/web/releases/1.0/files")
        .await
        .ok()
        .json();
    let size = list["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["url"] == "~/big.js")
        .unwrap()["size"]
        .clone();
    assert_eq!(size, 10);
}
