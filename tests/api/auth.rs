//! The auth matrix: each scope × each endpoint × own/other project.

use axum::body::Body;
use axum::http::Method;
use tracemap::config::{Scope, Secret, TokenConfig};

use crate::common::*;

const UPLOAD: &str = "upload-token-for-project-a";
const SYMBOLICATE: &str = "symbolicate-token-project-a";
const ADMIN: &str = "admin-token-for-project-aaa";

fn app() -> TestApp {
    TestApp::with_config(|c| {
        let token = |name: &str, token: &str, scope: Scope| TokenConfig {
            name: name.into(),
            token: Secret(token.into()),
            scopes: vec![scope],
            projects: Some(vec!["a".into()]),
        };
        c.auth.tokens = vec![
            token("ci", UPLOAD, Scope::Upload),
            token("ingest", SYMBOLICATE, Scope::Symbolicate),
            token("ops", ADMIN, Scope::Admin),
        ];
    })
}

/// (method, path template with {p}, required scope, body)
fn endpoints() -> Vec<(Method, &'static str, Scope)> {
    vec![
        (
            Method::POST,
            "/api/v1/projects/{p}/releases/1.0/files",
            Scope::Upload,
        ),
        (
            Method::GET,
            "/api/v1/projects/{p}/releases/1.0/files",
            Scope::Upload,
        ),
        (
            Method::GET,
            "/api/v1/projects/{p}/releases/1.0/files/abc",
            Scope::Upload,
        ),
        (
            Method::DELETE,
            "/api/v1/projects/{p}/releases/1.0/files/abc",
            Scope::Admin,
        ),
        (
            Method::DELETE,
            "/api/v1/projects/{p}/releases/1.0",
            Scope::Admin,
        ),
        (Method::GET, "/api/v1/projects/{p}/releases", Scope::Upload),
        (
            Method::POST,
            "/api/v1/projects/{p}/bundles?release=1.0",
            Scope::Upload,
        ),
        (
            Method::POST,
            "/api/v1/projects/{p}/debug-files",
            Scope::Upload,
        ),
        (
            Method::GET,
            "/api/v1/projects/{p}/debug-files",
            Scope::Upload,
        ),
        (
            Method::DELETE,
            "/api/v1/projects/{p}/debug-files/339d67d0-6e29-287b-2408-1344f4ea7744",
            Scope::Admin,
        ),
        (
            Method::POST,
            "/api/v1/projects/{p}/symbolicate/js",
            Scope::Symbolicate,
        ),
        (
            Method::POST,
            "/api/v1/projects/{p}/symbolicate/native",
            Scope::Symbolicate,
        ),
        (
            Method::POST,
            "/symbolicate-js?scope={p}",
            Scope::Symbolicate,
        ),
        (Method::POST, "/symbolicate?scope={p}", Scope::Symbolicate),
    ]
}

fn body_for(path: &str) -> (Option<String>, Vec<u8>) {
    if path.contains("/releases/1.0/files") && !path.ends_with("abc") {
        let m = Multipart::new()
            .text("url", "~/a.js")
            .file("file", "a.js", b"x\n");
        (
            Some(format!("multipart/form-data; boundary={BOUNDARY}")),
            m.finish(),
        )
    } else if path.contains("symbolicate") {
        (
            Some("application/json".into()),
            br#"{"stacktraces": []}"#.to_vec(),
        )
    } else if path.contains("bundles") {
        (None, zip(&[("a.js", b"x\n")]))
    } else if path.contains("debug-files") {
        (None, fixture("native/out/c_dwarf5"))
    } else {
        (None, Vec::new())
    }
}

#[tokio::test]
async fn every_endpoint_checks_scope_and_project() {
    let app = app();
    let tokens = [
        (Some(UPLOAD), Scope::Upload),
        (Some(SYMBOLICATE), Scope::Symbolicate),
        (Some(ADMIN), Scope::Admin),
        (None, Scope::Admin),
    ];
    let mut checked = 0;
    for (method, template, needs) in endpoints() {
        for project in ["a", "b"] {
            for (token, scope) in tokens {
                let path = template.replace("{p}", project);
                let (ctype, body) = body_for(&path);
                let mut builder = axum::http::Request::builder()
                    .method(method.clone())
                    .uri(&path);
                if let Some(t) = token {
                    builder = builder.header("authorization", format!("Bearer {t}"));
                }
                if let Some(c) = &ctype {
                    builder = builder.header("content-type", c);
                }
                if method == Method::GET && ctype.is_some() && !path.contains("symbolicate") {
                    // GETs carry no body.
                }
                let body = if method == Method::POST {
                    Body::from(body)
                } else {
                    Body::empty()
                };
                let r = app.send(builder.body(body).unwrap()).await;
                let allowed =
                    token.is_some() && (scope == needs || scope == Scope::Admin) && project == "a";
                let status = r.status.as_u16();
                match (token, allowed) {
                    (None, _) => assert_eq!(status, 401, "{method} {path} without token"),
                    (Some(_), false) => {
                        assert_eq!(status, 403, "{method} {path} with {scope:?}");
                        assert_eq!(r.error_code(), "forbidden");
                        assert!(r.json()["detail"].as_str().unwrap().contains("token"));
                    }
                    (Some(_), true) => assert!(
                        status != 401 && status != 403,
                        "{method} {path} with {scope:?}: {status}"
                    ),
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, endpoints().len() * 2 * 4);
}

#[tokio::test]
async fn wrong_tokens_are_401() {
    let app = app();
    for header in [
        "Bearer nope-nope-nope-nope",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        UPLOAD,
    ] {
        let r = app
            .send(
                axum::http::Request::builder()
                    .uri("/api/v1/projects/a/releases")
                    .header("authorization", header)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, 401, "{header}");
        assert_eq!(r.error_code(), "unauthenticated");
    }
}

#[tokio::test]
async fn health_and_metrics_need_no_token() {
    let app = app();
    assert_eq!(app.get("/healthz").await.status, 200);
    assert_eq!(app.get("/readyz").await.status, 200);
    assert_eq!(app.get("/metrics").await.status, 200);
}
