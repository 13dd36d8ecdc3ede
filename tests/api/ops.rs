//! Operations endpoints and error shape.

use crate::common::*;

/// These two tests break the local directory backend on purpose (its directory replaced by a
/// file): they always run on it, also when the suite runs on Garage, whose own faults
/// (the server stopped and started) are tested in `garage.rs`.
fn local_app() -> TestApp {
    TestApp::with_config(|c| {
        c.store.url = None;
        c.store.options.clear();
    })
}

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
    let app = local_app();
    std::fs::remove_dir_all(app.dir.path().join("store")).unwrap();
    std::fs::write(app.dir.path().join("store"), b"not a directory").unwrap();
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
}

/// The store failing under a running service: its directory replaced by a file (every
/// operation then fails with an I/O error). Requests get 503 `store_unavailable` (with
/// `Retry-After`), readiness goes false, nothing stored is harmed, and when the directory
/// is back the service answers again by itself, with the same data.
#[tokio::test]
async fn a_failing_store_answers_503_and_recovers_by_itself() {
    let app = local_app();
    app.upload_release("web", "1.0", None, &[("~/a.js", b"a();\n".as_slice())])
        .await
        .ok();
    let before = app
        .get("/api/v1/projects/web/releases/1.0/files")
        .await
        .ok()
        .json();
    assert_eq!(app.get("/readyz").await.status, 200);

    let store = app.dir.path().join("store");
    let aside = app.dir.path().join("store.aside");
    std::fs::rename(&store, &aside).unwrap();
    std::fs::write(&store, b"not a directory").unwrap();

    let r = app.get("/readyz").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.error_code(), "store_unavailable");
    assert_eq!(
        r.headers.get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    // What is in memory still answers, the same; what needs the store fails loudly (never
    // a wrong "not found"), and a failed write leaves nothing behind.
    let list = app.get("/api/v1/projects/web/releases/1.0/files").await;
    assert!(list.status == 200 || list.status == 503, "{}", list.status);
    if list.status == 200 {
        assert_eq!(list.json(), before);
    }
    let sha = before["files"][0]["sha256"].as_str().unwrap().to_owned();
    let download = app
        .get(&format!("/api/v1/projects/web/releases/1.0/files/{sha}"))
        .await;
    assert_eq!(
        download.status,
        503,
        "{}",
        String::from_utf8_lossy(&download.body)
    );
    assert_eq!(download.error_code(), "store_unavailable");
    let up = app
        .upload_release("web", "2.0", None, &[("~/b.js", b"b();\n".as_slice())])
        .await;
    assert_eq!(up.status, 503, "{}", String::from_utf8_lossy(&up.body));

    std::fs::remove_file(&store).unwrap();
    std::fs::rename(&aside, &store).unwrap();
    assert_eq!(app.get("/readyz").await.status, 200);
    let after = app
        .get("/api/v1/projects/web/releases/1.0/files")
        .await
        .ok()
        .json();
    assert_eq!(after, before);
    assert_eq!(
        app.get("/api/v1/projects/web/releases/2.0/files")
            .await
            .status,
        404
    );
    let up = app
        .upload_release("web", "2.0", None, &[("~/b.js", b"b();\n".as_slice())])
        .await;
    assert_eq!(up.status, 201);
}
