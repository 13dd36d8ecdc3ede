//! The real, unmodified sentry-cli (3.x and the last 2.x, from PyPI) against Tracemap on a
//! loopback socket; then symbolication against what it uploaded.
//!
//! The CLIs are installed into virtualenvs under cargo's target tmp dir (cached between
//! runs). If PyPI cannot be reached the tests say so loudly on stderr and stop; any other
//! failure to install fails them.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tracemap::config::{Scope, Secret, TokenConfig};

use crate::common::*;

pub(crate) const TOKEN: &str =
    "sntryu_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const SYMBOLICATE_ONLY: &str = "tracemap-symbolicate-only-token";

/// Path of the `sentry-cli` binary of `version`, installing it on first use; `None` (with a
/// loud message) when PyPI is unreachable.
pub(crate) fn sentry_cli(version: &str) -> Option<PathBuf> {
    pip_tool(&format!("sentry-cli=={version}"), "sentry-cli")
}

async fn server() -> LiveServer {
    let token = |name: &str, token: &str, scopes: Vec<Scope>| TokenConfig {
        name: name.into(),
        token: Secret(token.into()),
        scopes,
        projects: None,
    };
    LiveServer::start(vec![
        token("ci", TOKEN, vec![Scope::Upload, Scope::Symbolicate]),
        token("ingest", SYMBOLICATE_ONLY, vec![Scope::Symbolicate]),
    ])
    .await
}

/// One sentry-cli binary pointed at its own Tracemap server.
struct Shell {
    cli: PathBuf,
    server: LiveServer,
}

impl Shell {
    /// sentry-cli `version` (installed on first use) and a fresh server; `None` without PyPI.
    async fn start(version: &str) -> Option<Shell> {
        let cli = sentry_cli(version)?;
        Some(Shell {
            cli,
            server: server().await,
        })
    }

    async fn run(&self, token: &str, project: &str, cwd: &Path, args: &[&str]) -> Run {
        run(&self.cli, &self.server, token, project, args, cwd).await
    }

    /// The server's state as a `TestApp`, with the upload+symbolicate token.
    fn app(&self) -> TestApp {
        self.server.app(TOKEN)
    }
}

pub(crate) struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn run(
    cli: &Path,
    server: &LiveServer,
    token: &str,
    project: &str,
    args: &[&str],
    cwd: &Path,
) -> Run {
    run_at(cli, &server.base, token, project, args, cwd).await
}

/// sentry-cli run against the server at `base`.
pub(crate) async fn run_at(
    cli: &Path,
    base: &str,
    token: &str,
    project: &str,
    args: &[&str],
    cwd: &Path,
) -> Run {
    let home = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(cli)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("SENTRY_URL", format!("{base}/"))
        .env("SENTRY_AUTH_TOKEN", token)
        .env("SENTRY_ORG", "acme")
        .env("SENTRY_PROJECT", project)
        .env("SENTRY_DISABLE_UPDATE_CHECK", "true")
        .env("SENTRY_LOAD_DOTENV", "0")
        .env("SENTRY_NO_PROGRESS_BAR", "1")
        .output()
        .await
        .expect("sentry-cli runs");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

#[track_caller]
pub(crate) fn ok(r: Run) -> Run {
    assert!(
        r.ok,
        "sentry-cli failed\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    r
}

/// A build dir with the esbuild fixture (app.min.js + map), as a CI job would have it.
pub(crate) fn build_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for f in ["app.min.js", "app.min.js.map"] {
        std::fs::write(d.path().join(f), fixture(&format!("js/out/esbuild/{f}"))).unwrap();
    }
    d
}

/// Symbolicates the `debugid` oracle's real thrown frames (positions of the file after
/// `sentry-cli sourcemaps inject`) and counts exact original positions.
pub(crate) async fn exact_frames(
    app: &TestApp,
    project: &str,
    url: &str,
    release: Option<&str>,
    dist: Option<&str>,
    debug_id: Option<&str>,
) -> (usize, usize) {
    let o = crate::js::oracle("debugid");
    let mut frames_total = 0;
    let mut exact = 0;
    for t in o["thrown"].as_array().unwrap() {
        let want: Vec<&Value> = t["frames"].as_array().unwrap().iter().rev().collect();
        let frames: Vec<Value> = want.iter().map(|f| json!({"abs_path": url, "lineno": f["minified"]["line"], "colno": f["minified"]["column"]})).collect();
        let mut body =
            json!({"release": release, "dist": dist, "stacktraces": [{"frames": frames}]});
        if let Some(id) = debug_id {
            body["modules"] = json!([{"type": "sourcemap", "code_file": url, "debug_id": id}]);
        }
        let r = app.js(project, &body).await;
        for (w, g) in want
            .iter()
            .zip(r["stacktraces"][0]["frames"].as_array().unwrap())
        {
            frames_total += 1;
            let o = &w["original"];
            if g["lineno"] == o["line"]
                && g["colno"] == o["column"]
                && g["abs_path"]
                    .as_str()
                    .unwrap_or("")
                    .ends_with(o["file"].as_str().unwrap())
            {
                exact += 1;
            }
        }
    }
    (exact, frames_total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentry_cli_3_sourcemaps_inject_upload_and_symbolicate() {
    let Some(sh) = Shell::start("3.8.2").await else {
        return;
    };
    let app = sh.app();
    let dist_dir = build_dir();
    let dir = dist_dir.path();

    ok(sh
        .run(TOKEN, "web", dir, &["sourcemaps", "inject", "."])
        .await);
    // sentry-cli's injection is what the fixture recorded (same tool, same input).
    assert_eq!(
        std::fs::read(dir.join("app.min.js")).unwrap(),
        fixture("js/out/debugid/app.min.js")
    );
    let id = crate::js::oracle("debugid")["debug_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Release + dist, waiting for processing.
    let r = ok(sh
        .run(
            TOKEN,
            "web",
            dir,
            &[
                "sourcemaps",
                "upload",
                "--release",
                "1.0.0",
                "--dist",
                "web-7",
                "--wait",
                ".",
            ],
        )
        .await);
    assert!(
        r.stdout.contains("File processing complete")
            || r.stderr.contains("File processing complete"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let (exact, total) = exact_frames(
        &app,
        "web",
        "https://cdn.example.com/app.min.js",
        Some("1.0.0"),
        Some("web-7"),
        None,
    )
    .await;
    assert_eq!(exact, total, "release/URL path");
    let (exact, total) = exact_frames(
        &app,
        "web",
        "https://cdn.example.com/app.min.js",
        None,
        None,
        Some(&id),
    )
    .await;
    assert_eq!(exact, total, "debug-ID path");

    // Identical content again: nothing to upload.
    let r = ok(sh
        .run(
            TOKEN,
            "web",
            dir,
            &[
                "sourcemaps",
                "upload",
                "--release",
                "1.0.0",
                "--dist",
                "web-7",
                ".",
            ],
        )
        .await);
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("Nothing to upload"),
        "{}{}",
        r.stdout,
        r.stderr
    );

    // No release, debug IDs only, no --wait (assembly starts on the first complete call).
    ok(sh
        .run(TOKEN, "web2", dir, &["sourcemaps", "upload", "."])
        .await);
    let mut done = false;
    for _ in 0..100 {
        if exact_frames(
            &app,
            "web2",
            "https://x.example/app.min.js",
            None,
            None,
            Some(&id),
        )
        .await
            == (34, 34)
        {
            done = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(done, "debug-ID-only upload never became visible");

    // --url-prefix, and several projects at once.
    ok(sh
        .run(
            TOKEN,
            "web",
            dir,
            &[
                "sourcemaps",
                "upload",
                "--release",
                "2.0.0",
                "--url-prefix",
                "~/static/js",
                "-p",
                "web",
                "-p",
                "admin",
                "--wait",
                ".",
            ],
        )
        .await);
    for project in ["web", "admin"] {
        let (exact, total) = exact_frames(
            &app,
            project,
            "https://cdn.example.com/static/js/app.min.js",
            Some("2.0.0"),
            None,
            None,
        )
        .await;
        assert_eq!(exact, total, "{project}");
    }
    let list = app
        .get("/api/v1/projects/admin/releases/2.0.0/files")
        .await
        .ok()
        .json();
    assert!(
        list["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["url"] == "~/static/js/app.min.js"),
        "{list}"
    );

    // A token without the upload scope: sentry-cli prints our detail and fails.
    let r = sh
        .run(
            SYMBOLICATE_ONLY,
            "web",
            dir,
            &["sourcemaps", "upload", "--release", "9.9.9", "."],
        )
        .await;
    assert!(!r.ok);
    assert!(
        r.stderr.contains("403") && r.stderr.contains("lacks the") && r.stderr.contains("upload"),
        "{}",
        r.stderr
    );
    // Sentry's own body shape, so sentry-cli prints the sentence on one line rather than a
    // debug dump of our JSON.
    let detail_lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("lacks the"))
        .collect();
    assert_eq!(detail_lines.len(), 1, "{}", r.stderr);
    assert!(!r.stderr.contains("Object {"), "{}", r.stderr);
    assert!(!r.stderr.contains("String("), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentry_cli_3_debug_files_upload_and_symbolicate() {
    let Some(sh) = Shell::start("3.8.2").await else {
        return;
    };
    let app = sh.app();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c_dwarf5"), fixture("native/out/c_dwarf5")).unwrap();
    let r = ok(sh
        .run(
            TOKEN,
            "native",
            dir.path(),
            &["debug-files", "upload", "--wait", "."],
        )
        .await);
    let o: Value = serde_json::from_slice(&fixture("native/oracle/c_dwarf5.json")).unwrap();
    assert!(
        r.stdout.contains(o["debug_id"].as_str().unwrap())
            || r.stderr.contains(o["debug_id"].as_str().unwrap()),
        "{}{}",
        r.stdout,
        r.stderr
    );
    // Again: nothing to upload.
    let r = ok(sh
        .run(
            TOKEN,
            "native",
            dir.path(),
            &["debug-files", "upload", "--wait", "."],
        )
        .await);
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("Nothing to upload"),
        "{}{}",
        r.stdout,
        r.stderr
    );

    // Stripped binary + separate debug file, with sources bundled when available.
    let dir2 = tempfile::tempdir().unwrap();
    std::fs::write(
        dir2.path().join("c_stripped_all"),
        fixture("native/out/c_stripped_all"),
    )
    .unwrap();
    std::fs::write(
        dir2.path().join("c_dwarf5.debug"),
        fixture("native/out/c_dwarf5.debug"),
    )
    .unwrap();
    ok(sh
        .run(
            TOKEN,
            "native2",
            dir2.path(),
            &["debug-files", "upload", "--include-sources", "--wait", "."],
        )
        .await);

    for project in ["native", "native2"] {
        let inlined = o["samples"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["kind"] == "inlined")
            .unwrap();
        let addr = u64::from_str_radix(
            inlined["addr"].as_str().unwrap().trim_start_matches("0x"),
            16,
        )
        .unwrap();
        let body = json!({
            "modules": [{"type": "elf", "debug_id": o["debug_id"], "code_id": o["code_id"], "image_addr": "0x555500000000", "image_size": 65536}],
            "stacktraces": [{"frames": [{"instruction_addr": format!("{:#x}", 0x5555_0000_0000u64 + addr)}]}],
        });
        let r = app.native(project, &body).await;
        let frames = r["stacktraces"][0]["frames"].as_array().unwrap();
        let want = inlined["addr2line"].as_array().unwrap();
        assert_eq!(frames.len(), want.len(), "{project}: {frames:?}");
        for (g, w) in frames.iter().zip(want) {
            assert_eq!(g["function"], w["function"], "{project}");
            assert_eq!(g["lineno"], w["line"], "{project}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentry_cli_3_releases() {
    let Some(sh) = Shell::start("3.8.2").await else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    ok(sh
        .run(TOKEN, "web", dir, &["releases", "new", "3.0.0"])
        .await);
    ok(sh
        .run(TOKEN, "web", dir, &["releases", "new", "3.0.0"])
        .await);
    ok(sh
        .run(TOKEN, "web", dir, &["releases", "finalize", "3.0.0"])
        .await);
    ok(sh
        .run(
            TOKEN,
            "web",
            dir,
            &[
                "releases",
                "new",
                "my-app@3.0.1+build.7",
                "--finalize",
                "--url",
                "https://example.com/r/3.0.1",
            ],
        )
        .await);
    let info = ok(sh
        .run(TOKEN, "web", dir, &["releases", "info", "3.0.0"])
        .await);
    assert!(info.stdout.contains("3.0.0"), "{}", info.stdout);
    let list = ok(sh.run(TOKEN, "web", dir, &["releases", "list"]).await);
    assert!(
        list.stdout.contains("3.0.0") && list.stdout.contains("my-app@3.0.1+build.7"),
        "{}",
        list.stdout
    );
    let missing = sh
        .run(
            TOKEN,
            "web",
            dir,
            &["releases", "finalize", "does-not-exist"],
        )
        .await;
    assert!(!missing.ok);
    assert!(
        missing.stderr.contains("Release not found"),
        "{}",
        missing.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentry_cli_2_project_releases_and_upload_sourcemaps() {
    let Some(sh) = Shell::start("2.58.6").await else {
        return;
    };
    let app = sh.app();
    let build = build_dir();
    let dir = build.path();
    ok(sh
        .run(TOKEN, "web", dir, &["releases", "new", "4.0.2"])
        .await);
    ok(sh
        .run(TOKEN, "web", dir, &["releases", "finalize", "4.0.2"])
        .await);
    ok(sh
        .run(
            TOKEN,
            "web",
            dir,
            &[
                "releases",
                "files",
                "4.0.2",
                "upload-sourcemaps",
                "--wait",
                ".",
            ],
        )
        .await);
    // Plain (not injected) esbuild output: positions as in the esbuild oracle.
    let o = crate::js::oracle("esbuild");
    let t = &o["thrown"][0];
    let want: Vec<&Value> = t["frames"].as_array().unwrap().iter().rev().collect();
    let frames: Vec<Value> = want.iter().map(|f| json!({"abs_path": "https://cdn.example.com/app.min.js", "lineno": f["minified"]["line"], "colno": f["minified"]["column"]})).collect();
    let r = app
        .js(
            "web",
            &json!({"release": "4.0.2", "stacktraces": [{"frames": frames}]}),
        )
        .await;
    for (w, g) in want
        .iter()
        .zip(r["stacktraces"][0]["frames"].as_array().unwrap())
    {
        assert_eq!(
            (g["lineno"].clone(), g["colno"].clone()),
            (
                w["original"]["line"].clone(),
                w["original"]["column"].clone()
            ),
            "{g}"
        );
    }
    // 2.x with injected debug IDs (it writes `debug_id` into maps).
    ok(sh
        .run(TOKEN, "web", dir, &["sourcemaps", "inject", "."])
        .await);
    let map: Value =
        serde_json::from_slice(&std::fs::read(dir.join("app.min.js.map")).unwrap()).unwrap();
    let id = map["debug_id"]
        .as_str()
        .or(map["debugId"].as_str())
        .unwrap()
        .to_owned();
    ok(sh
        .run(
            TOKEN,
            "web",
            dir,
            &["sourcemaps", "upload", "--release", "4.0.3", "--wait", "."],
        )
        .await);
    let files = app
        .get("/api/v1/projects/web/releases/4.0.3/files")
        .await
        .ok()
        .json();
    assert!(
        files["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["debug_id"] == id.as_str()),
        "{files}"
    );
}
