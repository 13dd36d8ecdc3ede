//! The auth matrix, generated from the router's own route table: every route × every kind
//! of caller × own/other project.

use axum::body::Body;
use axum::http::{Method, Request};
use tracemap::config::{Scope, Secret, TokenConfig};

use crate::common::*;

const UPLOAD: &str = "upload-token-for-project-a";
const SYMBOLICATE: &str = "symbolicate-token-project-a";
const ADMIN: &str = "admin-token-for-project-aaa";

const UPLOAD_B: &str = "upload-token-for-project-b";
const ADMIN_ALL: &str = "admin-token-for-all-projects";

fn app() -> TestApp {
    TestApp::with_config(|c| {
        let token =
            |name: &str, token: &str, scope: Scope, projects: Option<Vec<String>>| TokenConfig {
                name: name.into(),
                token: Secret(token.into()),
                scopes: vec![scope],
                projects,
            };
        let a = || Some(vec!["a".to_owned()]);
        c.auth.tokens = vec![
            token("ci", UPLOAD, Scope::Upload, a()),
            token("ingest", SYMBOLICATE, Scope::Symbolicate, a()),
            token("ops", ADMIN, Scope::Admin, a()),
            token("ci-b", UPLOAD_B, Scope::Upload, Some(vec!["b".into()])),
            token("root", ADMIN_ALL, Scope::Admin, None),
        ];
    })
}

/// A concrete URI for a route template, with `project` in the project's place.
fn concrete(template: &str, project: &str) -> String {
    let mut uri = template
        .replace("{project}", project)
        .replace("{release}", "1.0")
        .replace("{version}", "1.0")
        .replace("{org}", "acme")
        .replace("{id}", "abc")
        .replace("{debug_id}", "339d67d0-6e29-287b-2408-1344f4ea7744");
    if uri == "/symbolicate-js" || uri == "/symbolicate" || uri == "/minidump" {
        uri.push_str(&format!("?scope={project}"));
    }
    uri
}

/// Every route of the router × {no token, unknown token, each scope for project a, upload
/// for project b, admin for all} × {project a, project b}: the status says whether the
/// token was let through, and nothing else. Generated from the router's own route table,
/// so a new route is in the matrix the moment it exists.
#[tokio::test]
async fn every_route_checks_scope_and_project() {
    use tracemap::http::{route_table, Access};
    let app = app();
    let table = route_table(&app.state);
    assert!(
        table.len() >= 30,
        "the route table lists {} routes",
        table.len()
    );
    // (token, scopes it has, projects it may use)
    let callers: [(Option<&str>, &[Scope], &[&str]); 7] = [
        (None, &[], &[]),
        (Some("unknown-token-unknown-token"), &[], &[]),
        (Some(UPLOAD), &[Scope::Upload], &["a"]),
        (Some(SYMBOLICATE), &[Scope::Symbolicate], &["a"]),
        (
            Some(ADMIN),
            &[Scope::Upload, Scope::Symbolicate, Scope::Admin],
            &["a"],
        ),
        (Some(UPLOAD_B), &[Scope::Upload], &["b"]),
        (
            Some(ADMIN_ALL),
            &[Scope::Upload, Scope::Symbolicate, Scope::Admin],
            &["a", "b"],
        ),
    ];
    let mut cases = 0;
    for route in &table {
        for project in ["a", "b"] {
            for (token, scopes, projects) in callers {
                let uri = concrete(route.path, project);
                let request = Request::builder()
                    .method(route.method.clone())
                    .uri(&uri)
                    .header("content-type", "application/json");
                let request = match token {
                    Some(t) => request.header("authorization", format!("Bearer {t}")),
                    None => request,
                };
                let body = if route.method == Method::GET {
                    Body::empty()
                } else {
                    Body::from("{}")
                };
                let r = app.send(request.body(body).unwrap()).await;
                let status = r.status.as_u16();
                let what = format!("{} {uri} with {token:?}", route.method);
                let expected = match route.access {
                    Access::Public => None,
                    _ if token.is_none() || scopes.is_empty() => Some(401),
                    Access::Scope(needed) | Access::Project(needed)
                        if !scopes.contains(&needed) =>
                    {
                        Some(403)
                    }
                    Access::Project(_) if !projects.contains(&project) => Some(403),
                    _ => None,
                };
                match expected {
                    Some(code) => {
                        assert_eq!(status, code, "{what}: {}", String::from_utf8_lossy(&r.body));
                        let want = if code == 401 {
                            "unauthenticated"
                        } else {
                            "forbidden"
                        };
                        assert_eq!(r.error_code(), want, "{what}");
                    }
                    None => assert!(
                        status != 401 && status != 403,
                        "{what}: {status} {}",
                        String::from_utf8_lossy(&r.body)
                    ),
                }
                cases += 1;
            }
        }
    }
    assert_eq!(cases, table.len() * 2 * callers.len());
    eprintln!(
        "auth matrix: {} routes x {} cases",
        table.len(),
        2 * callers.len()
    );
}

/// The table is the router: each listed path answers 405 to every method it does not list,
/// and no module registers a route outside the table.
#[tokio::test]
async fn the_route_table_is_the_whole_router() {
    use std::collections::{BTreeMap, BTreeSet};
    let app = app();
    let table = tracemap::http::route_table(&app.state);
    let mut methods: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for r in &table {
        methods
            .entry(r.path)
            .or_default()
            .insert(r.method.to_string());
    }
    for (path, listed) in &methods {
        for m in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if listed.contains(m) {
                continue;
            }
            let uri = concrete(path, "a");
            let r = app
                .send(
                    Request::builder()
                        .method(m)
                        .uri(&uri)
                        .header("authorization", format!("Bearer {ADMIN_ALL}"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await;
            assert_eq!(
                r.status, 405,
                "{m} {uri} is served but not in the route table"
            );
            assert_eq!(r.error_code(), "method_not_allowed");
        }
    }
    let http = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    for entry in std::fs::read_dir(&http).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let is_table = path.ends_with("routes.rs");
        for (i, line) in text.lines().enumerate() {
            let registers = line.contains(".route(") || line.contains(".nest(");
            assert!(
                !registers || (is_table && line.contains("group.router")),
                "{}:{}: routes are registered through Routes::add only",
                path.display(),
                i + 1
            );
        }
    }
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

/// Every route, sent a body of the wrong content type (and one that is not what it expects),
/// answers either success or one documented error shape: JSON with a code from README's
/// table (under `/api/0/`, Sentry's `{"detail"}` with the code in a header) — never an empty
/// or plain-text body.
#[tokio::test]
async fn every_route_answers_a_wrong_content_type_in_the_documented_shape() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table =
        &readme[readme.find("### Error codes").unwrap()..readme.find("## Configuration").unwrap()];
    let app = app();
    let mut walked = 0;
    for route in tracemap::http::route_table(&app.state) {
        if route.method == Method::GET || route.method == Method::DELETE {
            continue;
        }
        for (content_type, body) in [
            ("text/plain", &b"not what this route reads"[..]),
            ("multipart/form-data; boundary=x", &b"--x\r\nbroken"[..]),
            ("application/json", &b"{\"unterminated\": "[..]),
        ] {
            let uri = concrete(route.path, "a");
            let r = app
                .send(
                    Request::builder()
                        .method(route.method.clone())
                        .uri(&uri)
                        .header("authorization", format!("Bearer {ADMIN_ALL}"))
                        .header("content-type", content_type)
                        .body(Body::from(body.to_vec()))
                        .unwrap(),
                )
                .await;
            walked += 1;
            if r.status.is_success() {
                continue;
            }
            let what = format!("{} {uri} ({content_type}): {}", route.method, r.status);
            let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_else(|_| {
                panic!("{what}: not JSON: {}", String::from_utf8_lossy(&r.body))
            });
            assert!(json["detail"].is_string(), "{what}: no detail: {json}");
            let code = r.error_code();
            assert!(
                !code.is_empty() && table.contains(&format!("`{code}`")),
                "{what}: code {code:?} is not in README's table: {json}"
            );
        }
    }
    assert!(walked > 40, "walked {walked} requests");
}
