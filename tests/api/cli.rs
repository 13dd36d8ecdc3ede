//! The `tracemap` CLI (the real binary) against a real server on a loopback socket.

use std::path::Path;

use serde_json::json;
use tracemap::config::{Scope, Secret, TokenConfig};

use crate::common::*;

const TOKEN: &str = "cli-test-token-0123456789";

async fn server() -> LiveServer {
    LiveServer::start(vec![TokenConfig {
        name: "ci".into(),
        token: Secret(TOKEN.into()),
        scopes: vec![Scope::Upload, Scope::Symbolicate],
        projects: Some(vec!["web".into(), "app".into()]),
    }])
    .await
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn tracemap(server: &LiveServer, args: &[&str], cwd: &Path) -> Out {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tracemap"))
        .args(args)
        .current_dir(cwd)
        .env("TRACEMAP_URL", &server.base)
        .env("TRACEMAP_TOKEN", TOKEN)
        .env("TRACEMAP_LOG", "warn")
        .output()
        .await
        .unwrap();
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

#[track_caller]
fn ok(o: Out) -> Out {
    assert!(
        o.ok,
        "tracemap failed\nstdout:\n{}\nstderr:\n{}",
        o.stdout, o.stderr
    );
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inject_upload_skip_and_symbolicate_with_the_cli() {
    let server = server().await;
    let app = server.app(TOKEN);
    let build = tempfile::tempdir().unwrap();
    let dist = build.path().join("dist/static");
    std::fs::create_dir_all(&dist).unwrap();
    for f in ["app.min.js", "app.min.js.map"] {
        std::fs::write(dist.join(f), fixture(&format!("js/out/esbuild/{f}"))).unwrap();
    }
    std::fs::write(dist.join("stray.js.map"), tiny_map(None)).unwrap();

    let o = ok(tracemap(&server, &["sourcemaps", "inject", "dist"], build.path()).await);
    assert!(o.stdout.contains("1 file(s) injected"), "{}", o.stdout);
    let o = ok(tracemap(&server, &["sourcemaps", "inject", "dist"], build.path()).await);
    assert!(
        o.stdout
            .contains("0 file(s) injected, 1 already had a debug ID"),
        "{}",
        o.stdout
    );
    let js = std::fs::read_to_string(dist.join("app.min.js")).unwrap();
    let id = js
        .lines()
        .last()
        .unwrap()
        .strip_prefix("//# debugId=")
        .unwrap()
        .to_owned();

    let o = ok(tracemap(
        &server,
        &[
            "upload",
            "sourcemaps",
            "-p",
            "web",
            "-r",
            "1.0",
            "--url-prefix",
            "~",
            "dist",
        ],
        build.path(),
    )
    .await);
    assert!(
        o.stdout
            .contains("3 file(s) uploaded, 0 already on the server; 1 minified file(s) paired"),
        "{}",
        o.stdout
    );
    assert!(
        o.stderr
            .contains("stray.js.map: no .js file in the directory references this map"),
        "{}",
        o.stderr
    );
    let o = ok(tracemap(
        &server,
        &["upload", "sourcemaps", "-p", "web", "-r", "1.0", "dist"],
        build.path(),
    )
    .await);
    assert!(
        o.stdout
            .contains("0 file(s) uploaded, 3 already on the server"),
        "{}",
        o.stdout
    );

    // Positions move by the injected line: take a real thrown frame one line down.
    let frame = &crate::js::oracle("esbuild")["thrown"][0]["frames"][0];
    let event = json!({"release": "1.0", "stacktraces": [{"frames": [
        {"abs_path": "https://cdn.example.com/static/app.min.js", "lineno": frame["minified"]["line"].as_u64().unwrap() + 1, "colno": frame["minified"]["column"]}
    ]}]});
    std::fs::write(
        build.path().join("event.json"),
        serde_json::to_vec(&event).unwrap(),
    )
    .unwrap();
    let o = ok(tracemap(
        &server,
        &["symbolicate", "-p", "web", "event.json"],
        build.path(),
    )
    .await);
    let want = format!(
        "pricing.js:{}:{}",
        frame["original"]["line"], frame["original"]["column"]
    );
    assert!(o.stdout.contains(&want), "{want} not in {}", o.stdout);
    // The debug ID found its way into the index.
    let files = app
        .get("/api/v1/projects/web/releases/1.0/files")
        .await
        .ok()
        .json();
    assert!(
        files["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["debug_id"] == id.as_str()),
        "{files}"
    );

    // Upload to a project the token may not use: exit code and message.
    let o = tracemap(
        &server,
        &["upload", "sourcemaps", "-p", "other", "-r", "1.0", "dist"],
        build.path(),
    )
    .await;
    assert!(!o.ok);
    assert!(o.stderr.contains("may not use project"), "{}", o.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_files_check_and_upload_with_the_cli() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("syms/nested")).unwrap();
    std::fs::write(
        dir.path().join("syms/c_dwarf5"),
        fixture("native/out/c_dwarf5"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("syms/nested/c_pe.pdb"),
        fixture("native/out/c_pe.pdb"),
    )
    .unwrap();
    std::fs::write(dir.path().join("syms/README.txt"), b"not a debug file").unwrap();
    let o: serde_json::Value =
        serde_json::from_slice(&fixture("native/oracle/c_dwarf5.json")).unwrap();

    let c = ok(tracemap(
        &server,
        &["debug-files", "check", "syms/c_dwarf5"],
        dir.path(),
    )
    .await);
    assert!(
        c.stdout.contains(o["debug_id"].as_str().unwrap()),
        "{}",
        c.stdout
    );
    assert!(
        c.stdout.contains(o["code_id"].as_str().unwrap()),
        "{}",
        c.stdout
    );
    assert!(c.stdout.contains("symtab, debug, unwind"), "{}", c.stdout);
    let bad = tracemap(
        &server,
        &["debug-files", "check", "syms/README.txt"],
        dir.path(),
    )
    .await;
    assert!(
        !bad.ok && bad.stderr.contains("not a known debug file format"),
        "{}",
        bad.stderr
    );

    let u = ok(tracemap(
        &server,
        &["upload", "debug-files", "-p", "app", "syms"],
        dir.path(),
    )
    .await);
    assert!(
        u.stdout
            .contains("2 file(s): 2 debug file(s) uploaded, 0 already on the server, 0 failed"),
        "{}",
        u.stdout
    );
    let u = ok(tracemap(
        &server,
        &["upload", "debug-files", "-p", "app", "syms"],
        dir.path(),
    )
    .await);
    assert!(u.stdout.contains("2 already on the server"), "{}", u.stdout);
}

/// A server that answers 503 twice before it accepts: the CLI retries with backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_retries_transient_failures() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use axum::routing::post;

    let posts = Arc::new(AtomicUsize::new(0));
    let counter = posts.clone();
    let router = axum::Router::new().route(
        "/api/v1/projects/web/releases/1.0/files",
        post(move || {
            let counter = counter.clone();
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) < 2 {
                    (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "busy".to_owned(),
                    )
                } else {
                    (
                        axum::http::StatusCode::CREATED,
                        r#"{"warnings": []}"#.to_owned(),
                    )
                }
            }
        })
        .get(|| async { axum::http::StatusCode::NOT_FOUND }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.js"), b"x();\n").unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tracemap"))
        .args([
            "upload",
            "sourcemaps",
            "-p",
            "web",
            "-r",
            "1.0",
            "--server",
            &base,
            ".",
        ])
        .current_dir(dir.path())
        .env("TRACEMAP_LOG", "warn")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 file(s) uploaded"), "{stdout}");
    assert_eq!(posts.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_prefix_the_shell_expanded_is_refused_before_uploading() {
    let server = server().await;
    let build = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(build.path().join("dist")).unwrap();
    std::fs::write(build.path().join("dist/app.js"), b"boom();\n").unwrap();
    // What `--url-prefix ~/static` (unquoted) becomes after the shell expanded `~`.
    let o = tracemap(
        &server,
        &[
            "upload",
            "sourcemaps",
            "-p",
            "web",
            "-r",
            "1.0",
            "--url-prefix",
            "/home/ci/static",
            "dist",
        ],
        build.path(),
    )
    .await;
    assert!(!o.ok, "{}", o.stdout);
    assert!(o.stderr.contains("expanded"), "{}", o.stderr);
    let listed = server
        .app(TOKEN)
        .get("/api/v1/projects/web/releases/1.0/files")
        .await;
    assert_eq!(listed.status, 404, "nothing may have been uploaded");
}

/// `debug-files check` takes what `upload debug-files` takes: dSYM directories and zips,
/// listing each object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_files_check_accepts_dsym_directories_and_zips() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let dsym = fixtures().join("native/out/c_macho.dSYM");
    let macho: serde_json::Value =
        serde_json::from_slice(&fixture("native/oracle/c_macho.json")).unwrap();
    let c = ok(tracemap(
        &server,
        &["debug-files", "check", dsym.to_str().unwrap()],
        dir.path(),
    )
    .await);
    let macho_id = macho["debug_id"].as_str().unwrap();
    assert!(c.stdout.contains(macho_id), "{macho_id}: {}", c.stdout);

    let elf: serde_json::Value =
        serde_json::from_slice(&fixture("native/oracle/c_dwarf5.json")).unwrap();
    std::fs::write(
        dir.path().join("syms.zip"),
        zip(&[
            ("c_dwarf5", &fixture("native/out/c_dwarf5")),
            ("c_pe.pdb", &fixture("native/out/c_pe.pdb")),
            ("README.txt", b"not a debug file"),
        ]),
    )
    .unwrap();
    let c = ok(tracemap(&server, &["debug-files", "check", "syms.zip"], dir.path()).await);
    for needle in ["c_dwarf5", "c_pe.pdb", elf["debug_id"].as_str().unwrap()] {
        assert!(c.stdout.contains(needle), "{needle}: {}", c.stdout);
    }
    assert!(c.stdout.contains("README.txt: skipped"), "{}", c.stdout);
}

/// The summary counts the debug files stored, zip entries included; a 401 or 403 stops the
/// upload at once with the server's message, with no retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_debug_files_counts_zip_entries_and_stops_at_auth_errors() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("syms")).unwrap();
    std::fs::write(
        dir.path().join("syms/a.zip"),
        zip(&[
            ("c_dwarf5", &fixture("native/out/c_dwarf5")),
            ("c_pe.pdb", &fixture("native/out/c_pe.pdb")),
            ("README.txt", b"not a debug file"),
        ]),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("syms/c_dwarf4"),
        fixture("native/out/c_dwarf4"),
    )
    .unwrap();
    for (args, status, message) in [
        (
            vec!["upload", "debug-files", "-p", "other", "syms"],
            "403",
            "may not use project",
        ),
        (
            vec![
                "upload",
                "debug-files",
                "--token",
                "not-a-token-0123456789",
                "-p",
                "app",
                "syms",
            ],
            "401",
            "unauthenticated",
        ),
    ] {
        let o = tracemap(&server, &args, dir.path()).await;
        assert!(!o.ok, "{}", o.stdout);
        assert!(o.stderr.contains(status), "{}", o.stderr);
        assert_eq!(o.stderr.matches(message).count(), 1, "{}", o.stderr);
        assert!(!o.stderr.contains("transient"), "{}", o.stderr);
        assert!(!o.stdout.contains("OK "), "{}", o.stdout);
    }
    let u = ok(tracemap(
        &server,
        &["upload", "debug-files", "-p", "app", "syms"],
        dir.path(),
    )
    .await);
    assert!(
        u.stdout
            .contains("2 file(s): 3 debug file(s) uploaded, 0 already on the server, 0 failed"),
        "{}",
        u.stdout
    );
    assert!(u.stderr.contains("README.txt: skipped"), "{}", u.stderr);
}

/// A `.js` file with no source map is uploaded as a plain source, with a warning (as a map
/// without a `.js` is).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_file_without_a_map_is_warned_about() {
    let server = server().await;
    let build = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(build.path().join("dist")).unwrap();
    std::fs::write(build.path().join("dist/lonely.js"), b"boom();\n").unwrap();
    let o = ok(tracemap(
        &server,
        &["upload", "sourcemaps", "-p", "web", "-r", "1.0", "dist"],
        build.path(),
    )
    .await);
    assert!(
        o.stderr.contains("lonely.js: no source map"),
        "{}",
        o.stderr
    );
}

/// `sourcemaps inject` on a bundle whose map is inline (`data:` URL): the ID goes into the
/// file (the inline map cannot carry it), and a lookup by that ID alone finds the inline map.
#[tokio::test]
async fn an_injected_bundle_with_an_inline_map_resolves_by_debug_id() {
    use base64::Engine;
    let server = server().await;
    let app = server.app(TOKEN);
    let build = tempfile::tempdir().unwrap();
    let dist = build.path().join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    let inline = base64::engine::general_purpose::STANDARD.encode(tiny_map(None));
    std::fs::write(
        dist.join("app.js"),
        format!("boom();\n//# sourceMappingURL=data:application/json;base64,{inline}\n"),
    )
    .unwrap();
    ok(tracemap(&server, &["sourcemaps", "inject", "dist"], build.path()).await);
    let js = std::fs::read_to_string(dist.join("app.js")).unwrap();
    let id = js
        .lines()
        .last()
        .unwrap()
        .strip_prefix("//# debugId=")
        .unwrap()
        .to_owned();
    // Uploaded without a release: only the debug ID can find it.
    let bundle = zip(&[("app.js", js.as_bytes())]);
    let r = app.post_bytes("/api/v1/projects/web/bundles", bundle).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v = app
        .js(
            "web",
            &json!({
                "modules": [{"type": "sourcemap", "code_file": "/srv/app.js", "debug_id": id}],
                "stacktraces": [{"frames": [{"abs_path": "/srv/app.js", "lineno": 1, "colno": 1}]}],
            }),
        )
        .await;
    let frame = &v["stacktraces"][0]["frames"][0];
    assert_eq!(frame["data"]["symbolicated"], true, "{v}");
    assert_eq!(frame["lineno"], 10, "{v}");
    assert_eq!(frame["data"]["resolved_with"], "debug-id", "{v}");
}
