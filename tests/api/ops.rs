//! Operations endpoints and error shape.

use crate::common::*;

#[tokio::test]
async fn health_ready_and_metrics() {
    let app = TestApp::new();
    assert_eq!(app.get("/healthz").await.ok().body, b"ok\n");
    assert_eq!(app.get("/readyz").await.ok().body, b"ready\n");
    app.upload_release("web", "1.0", None, &[("~/a.js", b"x\n")])
        .await
        .ok();
    let _ = app.get("/api/v1/projects/web/releases/nope/files").await;
    let text = String::from_utf8(app.get("/metrics").await.ok().body).unwrap();
    for needle in [
        "tracemap_http_requests_total{",
        "tracemap_http_request_duration_seconds_bucket{",
        "tracemap_uploads_total{kind=\"source\"}",
        "tracemap_stored_bytes_total",
        "tracemap_errors_total{code=\"release_not_found\"}",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[tokio::test]
async fn unknown_routes_and_bad_json_have_stable_error_bodies() {
    let app = TestApp::new();
    let r = app.get("/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "route_not_found");
    let r = app
        .send(
            axum::http::Request::builder()
                .method("POST")
                .uri("/api/v1/projects/web/symbolicate/js")
                .body(axum::body::Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "invalid_json");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("request body"));
}

#[tokio::test]
async fn readyz_fails_when_the_store_is_gone() {
    let app = TestApp::new();
    std::fs::remove_dir_all(app.dir.path().join("store")).unwrap();
    std::fs::write(app.dir.path().join("store"), b"not a directory").unwrap();
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
}
