//! Garage (a real, distributed S3-compatible object store: `cargo install garage`), started by
//! the tests on loopback as a single node with one bucket and one key.
//!
//! The binary: `TRACEMAP_TEST_GARAGE`, else `~/.cache/tracemap-tools/bin/garage` (where `.ci/run`
//! installs it), else `garage` on `PATH`. With `TRACEMAP_TEST_BACKEND=garage` every test app
//! stores into one shared instance (a fresh prefix per app), so the whole suite runs on it;
//! tests that stop the server start their own.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tracemap::config::{Config, Secret};

pub struct Garage {
    child: Option<Child>,
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub endpoint: String,
    pub key_id: String,
    pub secret: String,
    pub bucket: String,
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Garage binary, or `None` (loudly) when it is missing and
/// `TRACEMAP_TEST_ALLOW_MISSING_TOOLS` is set; a panic otherwise.
pub fn binary() -> Option<PathBuf> {
    let home = std::env::var("HOME").unwrap_or_default();
    let candidates = [
        std::env::var("TRACEMAP_TEST_GARAGE")
            .ok()
            .map(PathBuf::from),
        Some(PathBuf::from(home).join(".cache/tracemap-tools/bin/garage")),
    ];
    if let Some(p) = candidates.into_iter().flatten().find(|p| p.is_file()) {
        return Some(p);
    }
    if Command::new("garage").arg("--version").output().is_ok() {
        return Some(PathBuf::from("garage"));
    }
    if std::env::var_os(crate::common::ALLOW_MISSING_TOOLS).is_some() {
        eprintln!("\n!!!!! garage is missing: the tests that need it did NOT run\n");
        return None;
    }
    panic!("garage is missing: cargo install garage --locked --root ~/.cache/tracemap-tools (.ci/run does)");
}

impl Garage {
    /// Starts a node, lays it out, creates the bucket `tracemap` and a key for it.
    pub fn start() -> Option<Garage> {
        let bin = binary()?;
        let dir = tempfile::tempdir().unwrap();
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let secret: String = (0..32)
            .map(|i| format!("{:02x}", (i * 37 + 11) % 256))
            .collect();
        let config = format!(
            "metadata_dir = \"{meta}\"\ndata_dir = \"{data}\"\ndb_engine = \"sqlite\"\n\
             replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\n\
             [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
             root_domain = \".s3.garage.localhost\"\n\n[admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
            meta = dir.path().join("meta").display(),
            data = dir.path().join("data").display(),
        );
        std::fs::write(dir.path().join("garage.toml"), config).unwrap();
        let mut g = Garage {
            child: None,
            bin,
            endpoint: format!("http://127.0.0.1:{s3}"),
            key_id: String::new(),
            secret: String::new(),
            bucket: "tracemap".into(),
            dir,
        };
        g.run();
        let node = g.cli(&["node", "id", "-q"]);
        let node = node.trim().split('@').next().unwrap().to_owned();
        g.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        g.cli(&["layout", "apply", "--version", "1"]);
        g.cli(&["bucket", "create", "tracemap"]);
        let key = g.cli(&["key", "create", "tracemap-key"]);
        let field = |name: &str| {
            key.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.trim() == name).then(|| v.trim().to_owned())
                })
                .unwrap_or_else(|| panic!("garage key create printed no {name}:\n{key}"))
        };
        g.key_id = field("Key ID");
        g.secret = field("Secret key");
        g.cli(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            "tracemap",
            "--key",
            "tracemap-key",
        ]);
        g.wait_s3();
        Some(g)
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("garage.toml")
    }

    fn stop_file(&self) -> PathBuf {
        self.dir.path().join("stop")
    }

    /// Starts (or restarts) the server process and waits for its RPC to answer. The server
    /// runs under a small shell that ends it when this test process ends (the shared instance
    /// lives in a static, which is never dropped) or when `stop` asks.
    pub fn run(&mut self) {
        let _ = std::fs::remove_file(self.stop_file());
        let watchdog = r#"G="$1"; C="$2"; P="$3"; S="$4"
"$G" -c "$C" server 2>>"$C.log" &
g=$!
while kill -0 "$P" 2>/dev/null && [ ! -e "$S" ] && kill -0 "$g" 2>/dev/null; do sleep 0.2; done
kill "$g" 2>/dev/null; wait "$g""#;
        let child = Command::new("sh")
            .arg("-c")
            .arg(watchdog)
            .arg("sh")
            .arg(&self.bin)
            .arg(self.config_path())
            .arg(std::process::id().to_string())
            .arg(self.stop_file())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("garage server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new(&self.bin)
                .arg("-c")
                .arg(self.config_path())
                .arg("status")
                .output()
                .unwrap();
            if out.status.success() {
                break;
            }
            assert!(Instant::now() < deadline, "garage did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        if !self.key_id.is_empty() {
            self.wait_s3();
        }
    }

    /// Stops the server process (its data stays).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = std::fs::write(self.stop_file(), b"");
            let _ = c.wait();
        }
    }

    fn wait_s3(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = self.endpoint.trim_start_matches("http://").to_owned();
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "garage S3 API did not open");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(&self.bin)
            .arg("-c")
            .arg(self.config_path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "garage {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Points a config at this server, under `prefix`.
    pub fn configure(&self, config: &mut Config, prefix: &str) {
        config.store.url = Some(format!("s3://{}/{prefix}", self.bucket));
        for (k, v) in [
            ("endpoint", self.endpoint.as_str()),
            ("region", "garage"),
            ("access_key_id", self.key_id.as_str()),
            ("secret_access_key", self.secret.as_str()),
            ("allow_http", "true"),
        ] {
            config.store.options.insert(k.into(), Secret(v.into()));
        }
    }
}

/// Whether the suite runs on Garage (`TRACEMAP_TEST_BACKEND=garage`).
pub fn suite_on_garage() -> bool {
    std::env::var("TRACEMAP_TEST_BACKEND").is_ok_and(|b| b == "garage")
}

/// The instance the whole suite shares when it runs on Garage.
pub fn shared() -> Option<&'static Garage> {
    static SHARED: OnceLock<Option<Garage>> = OnceLock::new();
    SHARED.get_or_init(Garage::start).as_ref()
}

/// Under `TRACEMAP_TEST_BACKEND=garage`: stores `config` in the shared Garage, under a prefix
/// of its own (every test app sees only its own data).
pub fn apply_backend(config: &mut Config) {
    if !suite_on_garage() {
        return;
    }
    let Some(g) = shared() else { return };
    g.configure(config, &format!("t/{}", ulid::Ulid::new()));
}

/// Under `TRACEMAP_TEST_BACKEND=garage`: the environment that points a `tracemap serve`
/// process at the shared Garage, under a prefix fixed by its data directory (so a restarted
/// process finds what it stored).
pub fn server_env(data_dir: &std::path::Path) -> Vec<(String, String)> {
    if !suite_on_garage() {
        return Vec::new();
    }
    let Some(g) = shared() else { return Vec::new() };
    use sha2::Digest;
    let digest = sha2::Sha256::digest(data_dir.to_string_lossy().as_bytes());
    let prefix = format!("serve/{}", hex::encode(&digest[..8]));
    // Values are read as TOML: quoted, so each stays a string.
    let url = format!("s3://{}/{prefix}", g.bucket);
    [
        ("TRACEMAP_STORE__URL", url.as_str()),
        ("TRACEMAP_STORE__OPTIONS__ENDPOINT", g.endpoint.as_str()),
        ("TRACEMAP_STORE__OPTIONS__REGION", "garage"),
        ("TRACEMAP_STORE__OPTIONS__ACCESS_KEY_ID", g.key_id.as_str()),
        (
            "TRACEMAP_STORE__OPTIONS__SECRET_ACCESS_KEY",
            g.secret.as_str(),
        ),
        ("TRACEMAP_STORE__OPTIONS__ALLOW_HTTP", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), format!("\"{v}\"")))
    .collect()
}

/// Two replicas over one bucket on Garage (a real object store, not a mock): what one takes,
/// the other serves at once, and a re-upload reaches the other within its `index_ttl`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_garage_bucket() {
    let Some(g) = Garage::start() else { return };
    let replica = || {
        crate::common::TestApp::with_config(|c| {
            g.configure(c, "replicas");
            c.cache.index_ttl = Duration::from_secs(1);
        })
    };
    let (a, b) = (replica(), replica());
    crate::s3::replicas_agree(&a, &b).await;
}

/// Garage stopped under a running service: requests that need the store answer 503
/// `store_unavailable` with `Retry-After`, `/readyz` says not ready, an upload tried meanwhile
/// leaves nothing visible; started again, the service recovers by itself and nothing that was
/// committed is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_garage_answers_503_and_the_service_recovers_by_itself() {
    use crate::common::*;
    let Some(mut g) = Garage::start() else { return };
    let app = TestApp::with_config(|c| {
        g.configure(c, "faults");
        c.cache.index_ttl = Duration::from_millis(100);
    });
    app.upload_release("web", "1.0", None, &[("~/a.js", b"first\n")])
        .await
        .ok();
    assert_eq!(app.get("/readyz").await.status, 200);

    g.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ready = app.get("/readyz").await;
    assert_eq!(
        ready.status,
        503,
        "{}",
        String::from_utf8_lossy(&ready.body)
    );
    assert_eq!(ready.error_code(), "store_unavailable");
    let up = app
        .upload_release("web", "2.0", None, &[("~/b.js", b"during the outage\n")])
        .await;
    assert_eq!(up.status, 503, "{}", String::from_utf8_lossy(&up.body));
    assert_eq!(up.error_code(), "store_unavailable");
    assert!(up.headers.contains_key("retry-after"));

    g.run();
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.get("/readyz").await.status != 200 {
        assert!(Instant::now() < deadline, "the service did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Committed before: still there. Tried during: not half there.
    let files = app
        .get("/api/v1/projects/web/releases/1.0/files")
        .await
        .ok()
        .json();
    assert_eq!(files["files"].as_array().unwrap().len(), 1);
    let r = app.get("/api/v1/projects/web/releases/2.0/files").await;
    assert!(
        r.status == 404 || r.json()["files"].as_array().is_some_and(|f| f.is_empty()),
        "{} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    app.upload_release("web", "2.0", None, &[("~/b.js", b"after\n")])
        .await
        .ok();
}

/// The suite runs where it says: on Garage (a fresh prefix per app) under
/// `TRACEMAP_TEST_BACKEND=garage`, on a local directory otherwise; and a `tracemap serve`
/// process started by the tests goes to the same place.
#[test]
fn the_suite_runs_on_the_backend_it_names() {
    let app = crate::common::TestApp::new();
    let described = app.state.store.describe().to_owned();
    let env = server_env(std::path::Path::new("/some/data/dir"));
    if suite_on_garage() {
        assert!(described.starts_with("s3://tracemap/t/"), "{described}");
        assert!(
            env.iter()
                .any(|(k, v)| k == "TRACEMAP_STORE__URL" && v.starts_with("\"s3://tracemap/serve/")),
            "{env:?}"
        );
    } else {
        assert!(described.starts_with("local directory"), "{described}");
        assert!(env.is_empty());
    }
}

fn replicas(g: &Garage, prefix: &str) -> (crate::common::TestApp, crate::common::TestApp) {
    let replica = || {
        crate::common::TestApp::with_config(|c| {
            g.configure(c, prefix);
            c.cache.index_ttl = Duration::from_millis(500);
        })
    };
    (replica(), replica())
}

async fn keys(app: &crate::common::TestApp, prefix: &str) -> Vec<String> {
    use futures::TryStreamExt;
    let prefix = object_store::path::Path::from(prefix);
    app.state
        .store
        .raw()
        .list(Some(&prefix))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap()
}

/// sentry-cli's chunks land on replica A, its assemble calls go to both replicas at once:
/// one assembly, one commit, and the bundle resolves on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentry_cli_chunks_on_one_replica_assemble_once_across_both() {
    use crate::sentry_protocol::{bundle, post_chunks, sha1_hex, wait_for};
    let Some(g) = Garage::start() else { return };
    let (a, b) = replicas(&g, "sentry");
    let bytes = bundle();
    let sum = sha1_hex(&bytes);
    post_chunks(&a, &[("file", &sum, bytes.clone())]).await.ok();
    let chunks = vec![sum.clone()];
    let (va, vb) = tokio::join!(wait_for(&b, &sum, &chunks), wait_for(&a, &sum, &chunks));
    assert_eq!(
        (va["state"].as_str(), vb["state"].as_str()),
        (Some("ok"), Some("ok"))
    );
    assert_eq!(
        keys(&a, "projects/web/uploads").await.len(),
        1,
        "one assembly committed once"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    for app in [&a, &b] {
        let files = app
            .get("/api/v1/projects/web/releases/1.0/files")
            .await
            .ok()
            .json();
        assert_eq!(files["files"].as_array().map(Vec::len), Some(2), "{files}");
    }
}

/// Both replicas take uploads of one release at once: no file is lost, and both answer the
/// same file for the URL they both wrote (the newest upload, by its ULID).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_through_both_replicas_lose_nothing_and_agree() {
    let Some(g) = Garage::start() else { return };
    let (a, b) = replicas(&g, "concurrent");
    async fn run(app: &crate::common::TestApp, name: &str) {
        for i in 0..8 {
            let own = format!("~/{name}-{i}.js");
            let body = format!("{name} {i}\n");
            app.upload_release(
                "web",
                "1.0",
                None,
                &[
                    (own.as_str(), body.as_bytes()),
                    ("~/shared.js", body.as_bytes()),
                ],
            )
            .await
            .ok();
        }
    }
    async fn listing(app: &crate::common::TestApp) -> Vec<(String, String)> {
        let v = app
            .get("/api/v1/projects/web/releases/1.0/files")
            .await
            .ok()
            .json();
        let mut files: Vec<(String, String)> = v["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["url"].as_str().unwrap().to_owned(),
                    f["sha256"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        files.sort();
        files
    }
    tokio::join!(run(&a, "a"), run(&b, "b"));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (la, lb) = (listing(&a).await, listing(&b).await);
    assert_eq!(la.len(), 17, "16 own files and the shared one: {la:?}");
    assert_eq!(la, lb, "both replicas answer the same files");
}

/// Warm start (`cache.shared`): caches replica A built are in the bucket, so a new replica
/// answers from them: even with the debug file itself gone from the bucket, where a replica
/// without shared caches cannot answer at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_replica_answers_from_caches_shared_through_the_bucket() {
    use crate::common::*;
    let Some(g) = Garage::start() else { return };
    let app = |shared: bool| {
        TestApp::with_config(|c| {
            g.configure(c, "warm");
            c.cache.shared = shared;
        })
    };
    let a = app(true);
    a.upload_debug_file("app", "c_dwarf5", fixture("native/out/c_dwarf5"))
        .await
        .ok();
    // A's prewarm builds the SymCache and the CFI and shares both.
    let deadline = Instant::now() + Duration::from_secs(20);
    while keys(&a, "caches/native").await.is_empty() || keys(&a, "caches/cfi").await.is_empty() {
        assert!(Instant::now() < deadline, "the caches were not shared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let store = a.state.store.raw().clone();
    for k in keys(&a, "blobs").await {
        store
            .delete(&object_store::path::Path::from(k))
            .await
            .unwrap();
    }
    let n: serde_json::Value =
        serde_json::from_slice(&fixture("native/oracle/c_dwarf5.json")).unwrap();
    let request = serde_json::json!({
        "modules": [{"type": "elf", "debug_id": n["debug_id"], "image_addr": "0x10000", "image_size": 65536}],
        "stacktraces": [{"frames": [{"instruction_addr": 0x10000 + 0x1185, "adjust_instruction_addr": false}]}]
    });
    let b = app(true);
    let v = b.native("app", &request).await;
    assert_eq!(
        v["stacktraces"][0]["frames"][0]["status"], "symbolicated",
        "{v}"
    );
    let c = app(false);
    let v = c.native("app", &request).await;
    assert_ne!(
        v["stacktraces"][0]["frames"][0]["status"], "symbolicated",
        "{v}"
    );
}

/// A TCP proxy to `upstream` that swallows its first `stall` connections (accepts them,
/// answers nothing) and forwards the rest.
async fn stalling_proxy(upstream: String, stall: usize) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut client, _)) = listener.accept().await {
            if seen.fetch_add(1, Ordering::SeqCst) < stall {
                held.push(client);
                continue;
            }
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

/// A store that does not answer in time: the request times out (`store.options.timeout`) and
/// is retried with backoff on a new connection, and the upload goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_store_times_out_and_is_retried() {
    use crate::common::*;
    let Some(g) = Garage::start() else { return };
    let proxy = stalling_proxy(g.endpoint.trim_start_matches("http://").to_owned(), 2).await;
    let app = TestApp::with_config(|c| {
        g.configure(c, "slow");
        c.store
            .options
            .insert("endpoint".into(), Secret(proxy.clone()));
        c.store
            .options
            .insert("timeout".into(), Secret("1s".into()));
    });
    let started = Instant::now();
    app.upload_release("web", "1.0", None, &[("~/a.js", b"slow store\n")])
        .await
        .ok();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "no request was held: {took:?}"
    );
    let files = app
        .get("/api/v1/projects/web/releases/1.0/files")
        .await
        .ok()
        .json();
    assert_eq!(files["files"].as_array().map(Vec::len), Some(1));
}

/// Our CLI uploads through replica A; replica B, which never saw the upload, walks and
/// symbolicates a minidump with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_uploads_through_one_replica_and_the_other_answers() {
    use crate::common::*;
    let Some(g) = Garage::start() else { return };
    let a = LiveServer::start_with(|c| g.configure(c, "cli")).await;
    let b = LiveServer::start_with(|c| g.configure(c, "cli")).await;
    let run = |server: &str, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tracemap"))
            .args(args)
            .env("TRACEMAP_URL", server)
            .env("TRACEMAP_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = fixtures().join("minidump/out");
    run(
        &a.base,
        &[
            "upload",
            "debug-files",
            "-p",
            "app",
            out.join("c_crash").to_str().unwrap(),
        ],
    );
    let printed = run(
        &b.base,
        &[
            "symbolicate",
            "minidump",
            "-p",
            "app",
            out.join("c_crash.dmp").to_str().unwrap(),
        ],
    );
    assert!(
        printed.contains("crash_level2 at src/c_crash.c:74 [symbolicated, cfi]"),
        "{printed}"
    );
}

/// An HTTP load balancer in front of `backends`: each request goes to the next backend in
/// turn (so one client's consecutive requests land on different replicas), with the client's
/// `Host`. Returns its base URL and how many requests each backend got.
async fn round_robin(
    backends: Vec<String>,
) -> (String, std::sync::Arc<Vec<std::sync::atomic::AtomicUsize>>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let counts: Arc<Vec<AtomicUsize>> =
        Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let (c2, counts2) = (client.clone(), counts.clone());
    let handler = move |request: axum::extract::Request| {
        let (client, counts, next, backends) =
            (c2.clone(), counts2.clone(), next.clone(), backends.clone());
        async move {
            let i = next.fetch_add(1, Ordering::SeqCst) % backends.len();
            counts[i].fetch_add(1, Ordering::SeqCst);
            let (parts, body) = request.into_parts();
            let url = format!(
                "{}{}",
                backends[i],
                parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/")
            );
            let mut rb = client.request(parts.method, url);
            for (k, v) in &parts.headers {
                rb = rb.header(k, v);
            }
            let body = reqwest::Body::wrap_stream(body.into_data_stream());
            let response = rb.body(body).send().await.expect("backend answers");
            let mut out = axum::response::Response::builder().status(response.status());
            for (k, v) in response.headers() {
                out = out.header(k, v);
            }
            out.body(axum::body::Body::from_stream(response.bytes_stream()))
                .unwrap()
        }
    };
    let app = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, counts)
}

/// The real sentry-cli (3.x) behind a load balancer that alternates between two replicas on
/// one Garage bucket: its chunk uploads, assemble calls and polls land on both; the bundle
/// is assembled once and resolves on both replicas, exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentry_cli_through_a_balancer_over_two_replicas() {
    use crate::common::*;
    use crate::sentry_cli::{build_dir, exact_frames, ok, run_at, sentry_cli, TOKEN};
    use tracemap::config::{Scope, TokenConfig};
    let Some(g) = Garage::start() else { return };
    let Some(cli) = sentry_cli("3.8.2") else {
        return;
    };
    let start = || {
        LiveServer::start_with(|c| {
            g.configure(c, "balanced");
            c.auth.tokens = vec![TokenConfig {
                name: "ci".into(),
                token: Secret(TOKEN.into()),
                scopes: vec![Scope::Upload, Scope::Symbolicate],
                projects: None,
            }];
            c.cache.index_ttl = Duration::from_millis(300);
        })
    };
    let (a, b) = (start().await, start().await);
    let (balancer, counts) = round_robin(vec![a.base.clone(), b.base.clone()]).await;
    let dist = build_dir();
    let dir = dist.path();
    ok(run_at(
        &cli,
        &balancer,
        TOKEN,
        "web",
        &["sourcemaps", "inject", "."],
        dir,
    )
    .await);
    ok(run_at(
        &cli,
        &balancer,
        TOKEN,
        "web",
        &["sourcemaps", "upload", "--release", "1.0.0", "--wait", "."],
        dir,
    )
    .await);
    let per_backend: Vec<usize> = counts
        .iter()
        .map(|c| c.load(std::sync::atomic::Ordering::SeqCst))
        .collect();
    assert!(
        per_backend.iter().all(|&n| n >= 2),
        "requests per replica: {per_backend:?}"
    );
    assert_eq!(
        keys(&a.app(TOKEN), "projects/web/uploads").await.len(),
        1,
        "assembled once"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    for server in [&a, &b] {
        let app = server.app(TOKEN);
        let (exact, total) = exact_frames(
            &app,
            "web",
            "https://cdn.example.com/app.min.js",
            Some("1.0.0"),
            None,
            None,
        )
        .await;
        assert!(total > 0);
        assert_eq!(exact, total, "{}", server.base);
    }
}
