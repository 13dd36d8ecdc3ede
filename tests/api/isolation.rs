//! Tenant isolation: a token for project A never reads or writes project B, through any
//! route, including the sentry-cli flows where the project is only known from a bundle's own
//! manifest; and no route reads a body before it has authorised the caller.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{json, Value};
use sha1::Digest;
use tracemap::config::{Scope, Secret, TokenConfig};

use crate::common::*;

const CI_A: &str = "upload-token-for-project-a-only";
const CI_B: &str = "upload-token-for-project-b-only";
const INGEST_A: &str = "symbolicate-token-project-a-only";
const ADMIN: &str = "admin-token-for-every-project-x";

fn tokens() -> Vec<TokenConfig> {
    let token =
        |name: &str, token: &str, scope: Scope, projects: Option<Vec<String>>| TokenConfig {
            name: name.into(),
            token: Secret(token.into()),
            scopes: vec![scope],
            projects,
        };
    vec![
        token("ci-a", CI_A, Scope::Upload, Some(vec!["a".into()])),
        token("ci-b", CI_B, Scope::Upload, Some(vec!["b".into()])),
        token(
            "ingest-a",
            INGEST_A,
            Scope::Symbolicate,
            Some(vec!["a".into()]),
        ),
        token("ops", ADMIN, Scope::Admin, None),
    ]
}

fn app() -> TestApp {
    TestApp::with_config(|c| c.auth.tokens = tokens())
}

fn sha1_hex(b: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(b))
}

/// A sentry-cli artifact bundle whose manifest names `project`.
fn bundle_for(project: &str, debug_id: &str) -> Vec<u8> {
    let map = tiny_map(Some(debug_id));
    let manifest = json!({"files": {
        "files/_/_/app.js": {"type": "minified_source", "url": "~/app.js", "headers": {"debug-id": debug_id, "sourcemap": "app.js.map"}},
        "files/_/_/app.js.map": {"type": "source_map", "url": "~/app.js.map", "headers": {"debug-id": debug_id}}
    }, "org": "acme", "project": project, "release": "1.0"});
    zip(&[
        ("files/_/_/app.js", b"boom();\n"),
        ("files/_/_/app.js.map", &map),
        ("manifest.json", &serde_json::to_vec(&manifest).unwrap()),
    ])
}

async fn send(app: &TestApp, method: Method, uri: &str, token: Option<&str>, body: Body) -> Reply {
    let mut request = req(method, uri, token, body);
    request
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    app.send(request).await
}

async fn upload_chunk(app: &TestApp, token: &str, bytes: &[u8]) {
    let form = Multipart::new().file("file", &sha1_hex(bytes), bytes);
    let r = app
        .send(form.request("/api/0/organizations/acme/chunk-upload/", Some(token)))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

/// Calls an assemble endpoint until the state is final.
async fn assemble_until_done(app: &TestApp, uri: &str, token: &str, body: &Value) -> Value {
    for _ in 0..300 {
        let r = send(
            app,
            Method::POST,
            uri,
            Some(token),
            Body::from(serde_json::to_vec(body).unwrap()),
        )
        .await;
        assert_eq!(r.status, 200, "{uri}: {}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        if v["state"] == "ok" || v["state"] == "error" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("assembly did not finish");
}

async fn releases_of(app: &TestApp, project: &str) -> Value {
    let r = app
        .send(req(
            Method::GET,
            &format!("/api/v1/projects/{project}/releases"),
            Some(ADMIN),
            Body::empty(),
        ))
        .await;
    r.ok().json()["releases"].clone()
}

#[tokio::test]
async fn a_bundle_naming_another_project_is_refused_on_every_assemble_route() {
    let app = app();
    let bundle = bundle_for("b", "11111111-2222-3333-4444-555555555555");
    let checksum = sha1_hex(&bundle);
    upload_chunk(&app, CI_A, &bundle).await;
    // 2.x release bundles and 3.x artifact bundles without `projects` take the project from
    // the manifest: a token for project a must not write into b through either.
    let routes = [
        (
            "/api/0/organizations/acme/releases/1.0/assemble/",
            json!({"checksum": checksum, "chunks": [checksum]}),
        ),
        (
            "/api/0/organizations/acme/artifactbundle/assemble/",
            json!({"checksum": checksum, "chunks": [checksum], "version": "1.0"}),
        ),
    ];
    for (uri, body) in &routes {
        let v = assemble_until_done(&app, uri, CI_A, body).await;
        assert_eq!(v["state"], "error", "{uri}: {v}");
        let detail = v["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("\"b\""),
            "{uri}: the detail names the project: {v}"
        );
        assert_eq!(
            releases_of(&app, "b").await,
            json!([]),
            "{uri} wrote into b"
        );
    }
    // The owner of b may.
    let v = assemble_until_done(&app, routes[0].0, CI_B, &routes[0].1).await;
    assert_eq!(v["state"], "ok", "{v}");
    assert_eq!(releases_of(&app, "b").await, json!(["1.0"]));
}

#[tokio::test]
async fn assemble_state_is_kept_per_project() {
    let app = app();
    let bundle = bundle_for("a", "22222222-2222-3333-4444-555555555555");
    let checksum = sha1_hex(&bundle);
    upload_chunk(&app, CI_A, &bundle).await;
    let uri = "/api/0/organizations/acme/artifactbundle/assemble/";
    let body = |p: &str| json!({"checksum": checksum, "chunks": [checksum], "projects": [p], "version": "1.0"});
    let a = assemble_until_done(&app, uri, CI_A, &body("a")).await;
    assert_eq!(a["state"], "ok", "{a}");
    // Project b assembles the same bytes: it gets its own assembly and its own commit, not
    // a's stored state.
    let b = assemble_until_done(&app, uri, CI_B, &body("b")).await;
    assert_eq!(b["state"], "ok", "{b}");
    assert_eq!(releases_of(&app, "b").await, json!(["1.0"]));
    let files = app
        .send(req(
            Method::GET,
            "/api/v1/projects/b/releases/1.0/files",
            Some(ADMIN),
            Body::empty(),
        ))
        .await
        .ok()
        .json();
    assert_eq!(files["files"].as_array().map(Vec::len), Some(2), "{files}");
}

#[tokio::test]
async fn debug_file_assemble_state_is_kept_per_project() {
    let app = app();
    let bytes = fixture("native/out/c_dwarf5");
    let checksum = sha1_hex(&bytes);
    upload_chunk(&app, CI_A, &bytes).await;
    let body = json!({checksum.clone(): {"name": "c_dwarf5", "chunks": [checksum]}});
    let assemble = |p: &str| format!("/api/0/projects/acme/{p}/files/difs/assemble/");
    let mut a = Value::Null;
    for _ in 0..300 {
        let r = send(
            &app,
            Method::POST,
            &assemble("a"),
            Some(CI_A),
            Body::from(body.to_string()),
        )
        .await;
        a = r.ok().json()[&checksum].clone();
        if a["state"] == "ok" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a["state"], "ok", "{a}");
    let a_id = a["dif"]["id"].clone();
    let mut b = Value::Null;
    for _ in 0..300 {
        let r = send(
            &app,
            Method::POST,
            &assemble("b"),
            Some(CI_B),
            Body::from(body.to_string()),
        )
        .await;
        b = r.ok().json()[&checksum].clone();
        if b["state"] == "ok" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(b["state"], "ok", "{b}");
    assert_ne!(b["dif"]["id"], a_id, "b must not see a's upload id");
    let listed = app
        .send(req(
            Method::GET,
            "/api/v1/projects/b/debug-files",
            Some(ADMIN),
            Body::empty(),
        ))
        .await
        .ok()
        .json();
    assert_eq!(
        listed["debug_files"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
}

#[tokio::test]
async fn sentry_info_reports_the_tokens_own_scopes() {
    let app = app();
    let scopes = |token: &str| {
        let app = &app;
        let token = token.to_owned();
        async move {
            let r = app
                .send(req(Method::GET, "/api/0/", Some(&token), Body::empty()))
                .await
                .ok();
            r.json()["auth"]["scopes"].clone()
        }
    };
    let upload = scopes(CI_A).await;
    assert!(upload
        .as_array()
        .unwrap()
        .contains(&json!("project:releases")));
    assert!(!upload.as_array().unwrap().contains(&json!("project:admin")));
    let ingest = scopes(INGEST_A).await;
    assert!(
        !ingest
            .as_array()
            .unwrap()
            .contains(&json!("project:releases")),
        "a symbolicate token cannot upload: {ingest}"
    );
    let admin = scopes(ADMIN).await;
    assert!(admin.as_array().unwrap().contains(&json!("project:admin")));
}

#[tokio::test]
async fn sentry_release_reads_need_a_token() {
    let app = app();
    for uri in [
        "/api/0/organizations/acme/releases/",
        "/api/0/organizations/acme/releases/1.0/",
        "/api/0/projects/acme/a/releases/",
        "/api/0/projects/acme/a/releases/1.0/",
    ] {
        let r = app.send(req(Method::GET, uri, None, Body::empty())).await;
        assert_eq!(r.status, 401, "{uri}");
        assert_eq!(r.error_code(), "unauthenticated", "{uri}");
        let r = app
            .send(req(Method::GET, uri, Some(INGEST_A), Body::empty()))
            .await;
        assert_eq!(r.status, 403, "{uri} with a symbolicate token");
    }
    // Project-scoped reads of another project are forbidden, not empty.
    let r = app
        .send(req(
            Method::GET,
            "/api/0/projects/acme/b/releases/",
            Some(CI_A),
            Body::empty(),
        ))
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn readiness_does_not_tell_anonymous_callers_about_the_store() {
    let app = TestApp::with_config(|c| {
        c.auth.tokens = tokens();
        c.store.url = Some("s3://bucket/prefix".into());
        for (k, v) in [
            ("endpoint", "http://127.0.0.1:9"),
            ("allow_http", "true"),
            ("region", "us-east-1"),
            ("access_key_id", "key"),
            ("secret_access_key", "secret"),
        ] {
            c.store.options.insert(k.into(), Secret(v.into()));
        }
    });
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.error_code(), "store_unavailable");
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        !text.contains("127.0.0.1") && !text.contains("bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn no_route_reads_a_body_before_authorising() {
    let app = app();
    let routes = [
        "/api/v1/projects/a/symbolicate/js",
        "/api/v1/projects/a/symbolicate/native",
        "/symbolicate-js?scope=a",
        "/symbolicate?scope=a",
        "/api/0/organizations/acme/artifactbundle/assemble/",
        "/api/0/organizations/acme/releases/1.0/assemble/",
        "/api/0/projects/acme/a/files/difs/assemble/",
        "/api/0/organizations/acme/releases/",
        "/api/0/projects/acme/a/releases/",
        "/api/v1/projects/a/bundles",
        "/api/v1/projects/a/debug-files",
    ];
    for uri in routes {
        for token in [None, Some("not-a-token-at-all-xxxxxxxx")] {
            let request = Request::builder()
                .method(Method::POST)
                .uri(uri)
                .header("content-type", "application/json");
            let request = match token {
                Some(t) => request.header("authorization", format!("Bearer {t}")),
                None => request,
            };
            let reply = tokio::time::timeout(
                Duration::from_secs(5),
                app.send(request.body(endless_body()).unwrap()),
            )
            .await
            .unwrap_or_else(|_| panic!("{uri} read the body before answering 401"));
            assert_eq!(reply.status, 401, "{uri}");
        }
        // A token for another project is refused as promptly.
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri.replace("/a/", "/b/").replace("scope=a", "scope=b"))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {INGEST_A}"));
        let reply = tokio::time::timeout(
            Duration::from_secs(5),
            app.send(request.body(endless_body()).unwrap()),
        )
        .await
        .unwrap_or_else(|_| panic!("{uri} read the body before answering 403"));
        assert_eq!(reply.status, 403, "{uri}");
    }
}

/// Debug IDs and code IDs are looked up in the request's project only: a debug file or a
/// source map that project b uploaded never answers project a, by either ID.
#[tokio::test]
async fn debug_and_code_ids_of_another_project_are_not_found() {
    let app = app();
    let o: Value = serde_json::from_slice(&fixture("native/oracle/c_dwarf5.json")).expect("oracle");
    let r = app
        .send(req(
            Method::POST,
            "/api/v1/projects/b/debug-files?name=c_dwarf5",
            Some(CI_B),
            Body::from(fixture("native/out/c_dwarf5")),
        ))
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let js_id = "33333333-2222-3333-4444-555555555555";
    let bundle = bundle_for("b", js_id);
    let r = app
        .send(req(
            Method::POST,
            "/api/v1/projects/b/bundles",
            Some(CI_B),
            Body::from(bundle),
        ))
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));

    let native = json!({
        "modules": [
            {"type": "elf", "debug_id": o["debug_id"], "image_addr": "0x10000", "image_size": 0x100000},
            {"type": "elf", "code_id": o["code_id"], "image_addr": "0x900000", "image_size": 0x100000},
        ],
        "stacktraces": [{"frames": [{"instruction_addr": "0x11004"}, {"instruction_addr": "0x901005"}]}],
    });
    let js = json!({
        "modules": [{"type": "sourcemap", "code_file": "/srv/app.js", "debug_id": js_id}],
        "stacktraces": [{"frames": [{"abs_path": "/srv/app.js", "lineno": 1, "colno": 1}]}],
    });
    let symbolicate =
        |project: &'static str, token: &'static str, kind: &'static str, body: Value| {
            let app = &app;
            async move {
                app.send(
                    Request::builder()
                        .method(Method::POST)
                        .uri(format!("/api/v1/projects/{project}/symbolicate/{kind}"))
                        .header("authorization", format!("Bearer {token}"))
                        .header("content-type", "application/json")
                        .body(Body::from(body.to_string()))
                        .unwrap(),
                )
                .await
                .ok()
                .json()
            }
        };
    // Project a knows neither ID.
    let a = symbolicate("a", INGEST_A, "native", native.clone()).await;
    for m in a["modules"].as_array().unwrap() {
        assert_eq!(m["debug_status"], "missing", "{a}");
    }
    for f in a["stacktraces"][0]["frames"].as_array().unwrap() {
        assert_eq!(f["status"], "missing", "{a}");
    }
    let a = symbolicate("a", INGEST_A, "js", js.clone()).await;
    assert_eq!(
        a["stacktraces"][0]["frames"][0]["data"]["symbolicated"], false,
        "{a}"
    );
    let listed = app
        .send(req(
            Method::GET,
            &format!(
                "/api/v1/projects/a/debug-files?code_id={}",
                o["code_id"].as_str().unwrap()
            ),
            Some(CI_A),
            Body::empty(),
        ))
        .await
        .ok()
        .json();
    assert_eq!(listed["debug_files"], json!([]));
    // The same requests in project b resolve: the IDs are right, the project is not.
    let b = symbolicate("b", ADMIN, "native", native).await;
    for f in b["stacktraces"][0]["frames"].as_array().unwrap() {
        assert_eq!(f["status"], "symbolicated", "{b}");
    }
    let b = symbolicate("b", ADMIN, "js", js).await;
    assert_eq!(
        b["stacktraces"][0]["frames"][0]["data"]["symbolicated"], true,
        "{b}"
    );
}
