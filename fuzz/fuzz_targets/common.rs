//! The real router over a temporary data directory, driven on a current-thread runtime.

use std::path::Path;
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tracemap::app::App;
use tracemap::config::Config;
use tracemap::http::router;

pub const BOUNDARY: &str = "fuzz-boundary";

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// An app over `dir` with small limits, so that a single input cannot fill the disk.
pub fn app(dir: &Path) -> App {
    let mut config = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    config.limits.max_upload_bytes = 8 << 20;
    config.limits.max_file_bytes = 4 << 20;
    config.limits.max_sourcemap_bytes = 4 << 20;
    config.limits.max_inflated_bytes = 8 << 20;
    config.limits.max_zip_entries = 64;
    config.limits.max_frames = 256;
    config.limits.max_modules = 64;
    config.validate().expect("fuzz config is valid");
    App::new(config).expect("app")
}

pub async fn send(app: &App, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = router(app.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, body)
}

pub fn post(uri: &str, content_type: &str, body: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("content-type", content_type)
        .body(Body::from(body))
        .expect("request")
}

/// A server error is a bug: every answer to client input must be a 2xx or 4xx, in the
/// documented JSON shape.
pub fn check(status: StatusCode, body: &[u8]) {
    assert!(
        !status.is_server_error(),
        "{status}: {}",
        String::from_utf8_lossy(body)
    );
    if !status.is_success() {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|e| {
            panic!(
                "{status}: error body is not JSON ({e}): {}",
                String::from_utf8_lossy(body)
            )
        });
        assert!(v["error"]["code"].is_string(), "{status}: {v}");
    }
}
