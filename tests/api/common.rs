//! `TestApp`: the real router over a temporary data directory, plus request helpers.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tracemap::app::App;
use tracemap::config::Config;
use tracemap::http::router;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub fn fixture(rel: &str) -> Vec<u8> {
    let p = fixtures().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

pub struct TestApp {
    pub state: App,
    pub dir: tempfile::TempDir,
    /// Sent as `Authorization: Bearer …` on requests that carry none.
    pub token: Option<String>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(500)])
            )
        })
    }
    /// The error code: from the body, or (sentry-cli routes, whose bodies are Sentry's
    /// `{"detail"}`) from the `X-Tracemap-Error-Code` header.
    pub fn error_code(&self) -> String {
        let from_body = self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !from_body.is_empty() {
            return from_body;
        }
        self.headers
            .get("x-tracemap-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(
            self.status.is_success(),
            "{}: {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        self
    }
}

impl TestApp {
    pub fn new() -> TestApp {
        Self::with_config(|_| {})
    }

    pub fn with_config(edit: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        crate::garage::apply_backend(&mut config);
        edit(&mut config);
        config.validate().expect("test config is valid");
        let state = App::new(config).expect("state");
        TestApp {
            state,
            dir,
            token: None,
        }
    }

    /// A second app over the same data directory (a restart, or another replica).
    pub fn reopen(&self) -> App {
        App::new(self.state.config.clone()).expect("state")
    }

    pub async fn send(&self, mut request: Request<Body>) -> Reply {
        if let Some(t) = &self.token {
            if !request.headers().contains_key("authorization") {
                request.headers_mut().insert(
                    "authorization",
                    format!("Bearer {t}").parse().expect("header value"),
                );
            }
        }
        let response = router(self.state.clone())
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(req(Method::GET, uri, None, Body::empty())).await
    }

    pub async fn delete(&self, uri: &str) -> Reply {
        self.send(req(Method::DELETE, uri, None, Body::empty()))
            .await
    }

    pub async fn post_json(&self, uri: &str, body: &serde_json::Value) -> Reply {
        self.send(
            Request::builder()
                .method(Method::POST)
                .uri(uri)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(body).expect("json")))
                .expect("request"),
        )
        .await
    }

    /// `POST …/symbolicate/js`, asserting success; the answer as JSON.
    pub async fn js(&self, project: &str, body: &serde_json::Value) -> serde_json::Value {
        self.post_json(&format!("/api/v1/projects/{project}/symbolicate/js"), body)
            .await
            .ok()
            .json()
    }

    /// `POST …/symbolicate/native`, asserting success; the answer as JSON.
    pub async fn native(&self, project: &str, body: &serde_json::Value) -> serde_json::Value {
        self.post_json(
            &format!("/api/v1/projects/{project}/symbolicate/native"),
            body,
        )
        .await
        .ok()
        .json()
    }

    pub async fn post_bytes(&self, uri: &str, bytes: Vec<u8>) -> Reply {
        self.send(req(Method::POST, uri, None, Body::from(bytes)))
            .await
    }

    pub async fn post_multipart(&self, uri: &str, form: Multipart) -> Reply {
        self.send(form.request(uri, None)).await
    }

    /// Uploads files to a release: (url, bytes) pairs.
    pub async fn upload_release(
        &self,
        project: &str,
        release: &str,
        dist: Option<&str>,
        files: &[(&str, &[u8])],
    ) -> Reply {
        let mut form = Multipart::new();
        if let Some(d) = dist {
            form = form.text("dist", d);
        }
        for (url, bytes) in files {
            let name = url.rsplit('/').next().unwrap_or("file");
            form = form.text("url", url).file("file", name, bytes);
        }
        self.post_multipart(
            &format!("/api/v1/projects/{project}/releases/{}/files", enc(release)),
            form,
        )
        .await
    }

    pub async fn upload_debug_file(&self, project: &str, name: &str, bytes: Vec<u8>) -> Reply {
        self.post_bytes(
            &format!("/api/v1/projects/{project}/debug-files?name={}", enc(name)),
            bytes,
        )
        .await
    }
}

pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub fn req(method: Method, uri: &str, token: Option<&str>, body: Body) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(body).expect("request")
}

/// A hand-built multipart/form-data body.
#[derive(Default)]
pub struct Multipart {
    body: Vec<u8>,
}

pub const BOUNDARY: &str = "----tracemap-test-boundary";

impl Multipart {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
        self
    }
    pub fn file(mut self, name: &str, filename: &str, bytes: &[u8]) -> Self {
        self.body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self
    }
    pub fn finish(mut self) -> Vec<u8> {
        self.body
            .extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        self.body
    }
    pub fn request(self, uri: &str, token: Option<&str>) -> Request<Body> {
        let mut b = Request::builder().method(Method::POST).uri(uri).header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        );
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        b.body(Body::from(self.finish())).expect("request")
    }
}

/// Writes a zip with the given (name, bytes) entries, deflated.
pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        w.start_file(*name, opts).expect("zip entry");
        w.write_all(bytes).expect("zip write");
    }
    w.finish().expect("zip finish").into_inner()
}

/// A small valid source map for `app.js` whose single mapping is known by construction:
/// generated 1:0 → original `src/app.js` 10:4, name `boom`.
pub fn tiny_map(debug_id: Option<&str>) -> Vec<u8> {
    let mut v = serde_json::json!({
        "version": 3,
        "file": "app.js",
        "sources": ["src/app.js"],
        "sourcesContent": ["// line 1\n\n\n\n\n\n\n\n\n    boom();\n"],
        "names": ["boom"],
        "mappings": "AASIA"
    });
    if let Some(id) = debug_id {
        v["debugId"] = serde_json::Value::String(id.into());
    }
    serde_json::to_vec(&v).expect("json")
}

/// The real server on a loopback socket (for clients that speak HTTP themselves: our CLI,
/// sentry-cli), stopped when dropped.
pub struct LiveServer {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base: String,
    pub state: App,
    _dir: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl LiveServer {
    pub async fn start(tokens: Vec<tracemap::config::TokenConfig>) -> LiveServer {
        Self::start_with(|c| c.auth.tokens = tokens).await
    }

    /// The real server with a configuration edited by `edit`.
    pub async fn start_with(edit: impl FnOnce(&mut Config)) -> LiveServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        crate::garage::apply_backend(&mut config);
        edit(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = App::new(config).expect("state");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(tracemap::server::run(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        LiveServer {
            base,
            state,
            _dir: dir,
            _shutdown: tx,
        }
    }

    /// A `TestApp` over the same state, authenticating with `token`.
    pub fn app(&self, token: &str) -> TestApp {
        TestApp {
            state: self.state.clone(),
            dir: tempfile::tempdir().expect("tempdir"),
            token: Some(token.to_owned()),
        }
    }
}

static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Opt-in for a laptop without network: with this variable set, tests whose outside tool
/// cannot be installed stop early instead of failing. `.ci/run` never sets it.
pub const ALLOW_MISSING_TOOLS: &str = "TRACEMAP_TEST_ALLOW_MISSING_TOOLS";

/// Installs the PyPI package `spec` into a virtualenv under cargo's target tmp dir (once;
/// cached between runs) and returns the path of its executable `bin`. When PyPI cannot be
/// reached the test fails, unless [`ALLOW_MISSING_TOOLS`] is set (then `None`, loudly).
pub fn pip_tool(spec: &str, bin: &str) -> Option<PathBuf> {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let dir: String = spec
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("venv-{dir}"));
    let exe = venv.join("bin").join(bin);
    if exe.exists() {
        return Some(exe);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let status = std::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "python3 -m venv failed");
    let out = std::process::Command::new(venv.join("bin/pip"))
        .args(["install", "--disable-pip-version-check", "-q", spec])
        .output()
        .expect("pip runs");
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let offline = [
            "Failed to establish",
            "Temporary failure",
            "Network is unreachable",
            "Could not fetch",
            "ConnectionError",
            "timed out",
        ]
        .iter()
        .any(|n| err.contains(n));
        if offline && std::env::var_os(ALLOW_MISSING_TOOLS).is_some() {
            eprintln!("\n!!!!! {ALLOW_MISSING_TOOLS} is set and PyPI cannot be reached to install {spec}: the tests that need it did NOT run:\n{err}\n");
            let _ = std::fs::remove_dir_all(&venv);
            return None;
        }
        panic!("pip install {spec} failed:\n{err}");
    }
    assert!(exe.exists(), "{spec} installed no {bin}");
    Some(exe)
}

/// A body that sends a little and then never ends: a handler that reads it before
/// authorising (or without a time limit) hangs.
pub fn endless_body() -> Body {
    let first = futures::stream::once(async {
        Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"{\"stacktraces\": ["))
    });
    Body::from_stream(futures::StreamExt::chain(first, futures::stream::pending()))
}
