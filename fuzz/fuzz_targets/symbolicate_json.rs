//! Symbolicate request JSON, through the real router, against an app holding a JS release
//! (`1.0`: webpack's `app.min.js` + map at `https://cdn.example.com/static/app.min.js`) and a
//! native debug file (`c_dwarf5`).
//!
//! Input: `n` + body for `/symbolicate/native`, anything else: the whole input is the body for
//! `/symbolicate/js`.
#![no_main]

mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tracemap::app::App;

fn fixture(rel: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

fn app() -> &'static App {
    static APP: OnceLock<(tempfile::TempDir, App)> = OnceLock::new();
    &APP.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = common::app(dir.path());
        common::runtime().block_on(async {
            let mut body = Vec::new();
            for (url, name, rel) in [
                (
                    "https://cdn.example.com/static/app.min.js",
                    "app.min.js",
                    "js/out/webpack/app.min.js",
                ),
                (
                    "https://cdn.example.com/static/app.min.js.map",
                    "app.min.js.map",
                    "js/out/webpack/app.min.js.map",
                ),
            ] {
                let b = common::BOUNDARY;
                body.extend_from_slice(
                    format!(
                        "--{b}\r\nContent-Disposition: form-data; name=\"url\"\r\n\r\n{url}\r\n\
                         --{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(&fixture(rel));
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(format!("--{}--\r\n", common::BOUNDARY).as_bytes());
            let request = common::post(
                "/api/v1/projects/p/releases/1.0/files",
                &format!("multipart/form-data; boundary={}", common::BOUNDARY),
                body,
            );
            let (status, body) = common::send(&app, request).await;
            assert!(status.is_success(), "{status}: {}", String::from_utf8_lossy(&body));
            let request = common::post(
                "/api/v1/projects/p/debug-files?name=c_dwarf5",
                "application/octet-stream",
                fixture("native/out/c_dwarf5"),
            );
            let (status, body) = common::send(&app, request).await;
            assert!(status.is_success(), "{status}: {}", String::from_utf8_lossy(&body));
        });
        (dir, app)
    })
    .1
}

fuzz_target!(|data: &[u8]| {
    let app = app();
    let (path, body) = match data.split_first() {
        Some((b'n', rest)) => ("/api/v1/projects/p/symbolicate/native", rest),
        _ => ("/api/v1/projects/p/symbolicate/js", data),
    };
    common::runtime().block_on(async {
        let request = common::post(path, "application/json", body.to_vec());
        let (status, body) = common::send(app, request).await;
        common::check(status, &body);
    });
});
