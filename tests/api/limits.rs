//! Bounded resources: every limit answers with its code, a slow or greedy client is cut off,
//! and past a route group's bound requests are shed with 503 + `Retry-After`, never queued
//! without end. What was stored before still answers the same.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

#[tokio::test]
async fn a_client_that_sends_headers_slowly_is_disconnected() {
    let server = LiveServer::start_with(|c| {
        c.limits.header_read_timeout = Duration::from_millis(500);
    })
    .await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // Never finish the headers: the server must close the connection.
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a slow-loris connection stayed open");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The server still serves everyone else.
    let ok = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn past_the_concurrency_bound_requests_are_shed_with_retry_after() {
    let app = TestApp::with_config(|c| {
        c.limits.max_concurrent_requests = 1;
        c.limits.request_timeout = Duration::from_secs(3);
    });
    let hog = {
        let app_state = app.state.clone();
        tokio::spawn(async move {
            let response = tower::ServiceExt::oneshot(
                tracemap::http::router(app_state),
                Request::builder()
                    .method(Method::POST)
                    .uri("/api/v1/projects/a/symbolicate/js")
                    .body(endless_body())
                    .unwrap(),
            )
            .await
            .unwrap();
            response.status()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = app
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/api/v1/projects/a/symbolicate/js")
                .body(Body::from(r#"{"stacktraces": []}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.error_code(), "busy");
    // The hog runs past the group's time limit: 503 `timeout`, and its slot is freed.
    let status = hog.await.unwrap();
    assert_eq!(status, 503);
    let r = app
        .post_json(
            "/api/v1/projects/a/symbolicate/js",
            &json!({"stacktraces": []}),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn busy_and_timeout_answers_carry_retry_after() {
    let app = TestApp::with_config(|c| {
        c.limits.request_timeout = Duration::from_millis(300);
    });
    let response = tower::ServiceExt::oneshot(
        tracemap::http::router(app.state.clone()),
        Request::builder()
            .method(Method::POST)
            .uri("/api/v1/projects/a/symbolicate/native")
            .body(endless_body())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
}

#[tokio::test]
async fn oversize_text_parts_and_too_many_parts_are_refused() {
    let app = TestApp::with_config(|c| c.limits.max_zip_entries = 10);
    let long = "x".repeat(100 << 10);
    let form = Multipart::new()
        .text("url", &format!("~/{long}"))
        .file("file", "a.js", b"x\n");
    let r = app
        .post_multipart("/api/v1/projects/a/releases/1.0/files", form)
        .await;
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.error_code(), "too_large");
    let mut form = Multipart::new();
    for i in 0..11 {
        form = form.text("header", &format!("x-{i}: y"));
    }
    let form = form.file("file", "a.js", b"x\n");
    let r = app
        .post_multipart("/api/v1/projects/a/releases/1.0/files", form)
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "too_large");
}

#[tokio::test]
async fn a_chunk_part_larger_than_a_chunk_is_refused_before_it_is_buffered() {
    let app = TestApp::new();
    let big = vec![7u8; (8 << 20) + (128 << 10)];
    let form = Multipart::new().file("file", &"0".repeat(40), &big);
    let r = app
        .post_multipart("/api/0/organizations/acme/chunk-upload/", form)
        .await;
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test]
async fn a_source_map_over_the_limit_is_refused_at_upload_and_nothing_is_stored() {
    let app = TestApp::with_config(|c| c.limits.max_sourcemap_bytes = 64);
    let before = app
        .upload_release("a", "1.0", None, &[("~/small.js", b"x();\n".as_slice())])
        .await;
    assert_eq!(before.status, 201);
    let map = tiny_map(None);
    assert!(map.len() > 64);
    let r = app
        .upload_release("a", "1.0", None, &[("~/app.js.map", map.as_slice())])
        .await;
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.error_code(), "too_large");
    let files = app
        .get("/api/v1/projects/a/releases/1.0/files")
        .await
        .ok()
        .json();
    assert_eq!(files["files"].as_array().map(Vec::len), Some(1), "{files}");
}

#[tokio::test]
async fn a_zip_announcing_too_many_entries_is_refused() {
    let app = TestApp::with_config(|c| c.limits.max_zip_entries = 5);
    let names: Vec<String> = (0..20).map(|i| format!("f{i}.js")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x\n"[..])).collect();
    let r = app
        .post_bytes("/api/v1/projects/a/bundles?release=1.0", zip(&entries))
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "zip_too_many_entries");
}

/// `limits.max_file_bytes` on every path a file arrives by: multipart release files, bundle
/// entries, raw and zipped debug files, and files sentry-cli assembles from chunks.
#[tokio::test]
async fn the_file_limit_applies_on_every_upload_path() {
    let app = TestApp::with_config(|c| c.limits.max_file_bytes = 1000);
    let big = vec![b'x'; 2000];
    let too_large = |r: Reply, path: &str| {
        assert_eq!(
            r.status,
            413,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.error_code(), "too_large", "{path}");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("1000 bytes"),
            "{path}: the message states the limit: {}",
            r.json()
        );
    };
    let r = app
        .upload_release("web", "1.0", None, &[("~/a.js", &big)])
        .await;
    too_large(r, "release files");
    let r = app
        .post_bytes(
            "/api/v1/projects/web/bundles?release=1.0",
            zip(&[("a.js", &big)]),
        )
        .await;
    too_large(r, "bundle");
    let r = app
        .post_bytes(
            "/api/v1/projects/app/debug-files?name=big.debug",
            big.clone(),
        )
        .await;
    too_large(r, "raw debug file");
    let r = app
        .post_bytes(
            "/api/v1/projects/app/debug-files",
            zip(&[("big.debug", &big)]),
        )
        .await;
    too_large(r, "zipped debug file");

    // sentry-cli: the assembled file is over the limit; the assembly says so.
    let sha = hex::encode(<sha1::Sha1 as sha1::Digest>::digest(&big));
    app.post_multipart(
        "/api/0/organizations/acme/chunk-upload/",
        Multipart::new().file("file", &sha, &big),
    )
    .await
    .ok();
    let body = json!({"checksum": sha, "chunks": [sha], "projects": ["web"], "version": "1.0"});
    let mut last = serde_json::Value::Null;
    for _ in 0..200 {
        last = app
            .post_json("/api/0/organizations/acme/artifactbundle/assemble/", &body)
            .await
            .ok()
            .json();
        if last["state"] == "error" || last["state"] == "ok" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(last["state"], "error", "{last}");
    assert!(
        last["detail"].as_str().unwrap().contains("1000 bytes"),
        "{last}"
    );
}

#[tokio::test]
async fn body_too_large_states_the_limit() {
    let app = TestApp::with_config(|c| {
        c.limits.max_symbolicate_bytes = 5000;
        c.limits.max_json_bytes = 6000;
    });
    let padding = " ".repeat(20_000);
    for (uri, limit) in [
        ("/api/v1/projects/web/symbolicate/js", "5000 bytes"),
        (
            "/api/0/organizations/acme/artifactbundle/assemble/",
            "6000 bytes",
        ),
    ] {
        let r = app
            .send(
                Request::builder()
                    .method(Method::POST)
                    .uri(uri)
                    .header("content-type", "application/json")
                    .body(Body::from(format!("{{{padding}}}")))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, 413, "{uri}");
        assert_eq!(r.error_code(), "body_too_large", "{uri}");
        let v = r.json();
        let message = v["error"]["message"]
            .as_str()
            .or(v["detail"].as_str())
            .unwrap_or_default();
        assert!(message.contains(limit), "{uri}: {v}");
    }
}

/// The zip limits hold for debug-file zips as for bundles, and the source map limit for
/// bundles as for release files.
#[tokio::test]
async fn zip_and_source_map_limits_apply_on_every_path_that_takes_them() {
    let app = TestApp::with_config(|c| {
        c.limits.max_inflated_bytes = 1 << 20;
        c.limits.max_zip_entries = 5;
        c.limits.max_sourcemap_bytes = 64;
    });
    let zeros = vec![0u8; 4 << 20];
    let bomb = zip(&[("bomb.debug", &zeros)]);
    let names: Vec<String> = (0..20).map(|i| format!("f{i}.debug")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x\n"[..])).collect();
    let many = zip(&entries);
    for uri in [
        "/api/v1/projects/app/debug-files",
        "/api/v1/projects/web/bundles?release=1.0",
    ] {
        let r = app.post_bytes(uri, bomb.clone()).await;
        assert_eq!(r.status, 413, "{uri}");
        assert_eq!(r.error_code(), "zip_too_large", "{uri}");
        let r = app.post_bytes(uri, many.clone()).await;
        assert_eq!(r.status, 413, "{uri}");
        assert_eq!(r.error_code(), "zip_too_many_entries", "{uri}");
    }
    let map = tiny_map(None);
    assert!(map.len() > 64);
    let r = app
        .post_bytes(
            "/api/v1/projects/web/bundles?release=1.0",
            zip(&[
                ("app.js", b"x();\n//# sourceMappingURL=app.js.map\n"),
                ("app.js.map", &map),
            ]),
        )
        .await;
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.error_code(), "too_large");
}
