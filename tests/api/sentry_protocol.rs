//! The sentry-cli protocol at the HTTP level: chunk verification, duplicates, gzip, the
//! assemble state machine, and persistence across a restart.

use axum::http::Method;
use serde_json::{json, Value};
use sha1::Digest;

use crate::common::*;

pub(crate) fn sha1_hex(b: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(b))
}

fn gzip(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// A sentry-cli style artifact bundle: SYSB header, zip with offsets counted from the start of
/// the whole file (as sentry-cli writes it), manifest with debug IDs.
pub(crate) fn bundle() -> Vec<u8> {
    use std::io::Write;
    let map = tiny_map(Some("484570ef-db1c-57a4-b927-ecdac3a2aa7a"));
    let manifest = json!({"files": {
        "files/_/_/app.js": {"type": "minified_source", "url": "~/app.js", "headers": {"debug-id": "484570ef-db1c-57a4-b927-ecdac3a2aa7a", "sourcemap": "app.js.map"}},
        "files/_/_/app.js.map": {"type": "source_map", "url": "~/app.js.map", "headers": {"debug-id": "484570ef-db1c-57a4-b927-ecdac3a2aa7a"}}
    }, "org": "acme", "project": "web"});
    let mut out = std::io::Cursor::new(b"SYSB\x02\x00\x00\x00".to_vec());
    out.set_position(8);
    let mut w = zip::ZipWriter::new(out);
    let o = zip::write::SimpleFileOptions::default();
    for (name, bytes) in [
        ("files/_/_/app.js", &b"boom();\n"[..]),
        ("files/_/_/app.js.map", &map),
        ("manifest.json", &serde_json::to_vec(&manifest).unwrap()),
    ] {
        w.start_file(name, o).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

pub(crate) async fn post_chunks(app: &TestApp, parts: &[(&str, &str, Vec<u8>)]) -> Reply {
    let mut form = Multipart::new();
    for (field, name, bytes) in parts {
        form = form.file(field, name, bytes);
    }
    app.post_multipart("/api/0/organizations/acme/chunk-upload/", form)
        .await
}

async fn assemble(app: &TestApp, checksum: &str, chunks: &[String]) -> Value {
    app.post_json(
        "/api/0/organizations/acme/artifactbundle/assemble/",
        &json!({"checksum": checksum, "chunks": chunks, "projects": ["web"], "version": "1.0"}),
    )
    .await
    .ok()
    .json()
}

pub(crate) async fn wait_for(app: &TestApp, checksum: &str, chunks: &[String]) -> Value {
    for _ in 0..200 {
        let v = assemble(app, checksum, chunks).await;
        if v["state"] == "ok" || v["state"] == "error" {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("assembly did not finish");
}

#[tokio::test]
async fn chunk_options_advertise_what_both_cli_generations_need() {
    let app = TestApp::new();
    let v = app
        .get("/api/0/organizations/acme/chunk-upload/")
        .await
        .ok()
        .json();
    assert_eq!(v["hashAlgorithm"], "sha1");
    assert!(v["chunkSize"].as_u64().unwrap().is_power_of_two());
    for cap in [
        "release_files",
        "artifact_bundles",
        "artifact_bundles_v2",
        "debug_files",
    ] {
        assert!(
            v["accept"].as_array().unwrap().contains(&json!(cap)),
            "{cap}"
        );
    }
    assert!(v["url"]
        .as_str()
        .unwrap()
        .ends_with("/api/0/organizations/acme/chunk-upload/"));
}

#[tokio::test]
async fn chunks_are_verified_deduplicated_and_survive_a_restart() {
    let app = TestApp::new();
    let data = bundle();
    // Two chunks, so the state machine sees a partial upload.
    let (a, b) = data.split_at(data.len() / 2);
    let (ha, hb) = (sha1_hex(a), sha1_hex(b));
    let checksum = sha1_hex(&data);
    let chunks = vec![ha.clone(), hb.clone()];

    let v = assemble(&app, &checksum, &chunks).await;
    assert_eq!(v["state"], "not_found");
    assert_eq!(v["missingChunks"], json!([ha, hb]));

    // A chunk whose content does not match its name is refused.
    let r = post_chunks(&app, &[("file", &ha, b.to_vec())]).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("does not match"));
    // The same chunk twice in one request, gzipped: fine.
    post_chunks(
        &app,
        &[("file_gzip", &ha, gzip(a)), ("file_gzip", &ha, gzip(a))],
    )
    .await
    .ok();
    let v = assemble(&app, &checksum, &chunks).await;
    assert_eq!(
        v["missingChunks"],
        json!([hb]),
        "only the missing chunk is listed"
    );

    // Restart between chunk upload and assemble: nothing is lost.
    let restarted = TestApp {
        state: app.reopen(),
        dir: tempfile::tempdir().unwrap(),
        token: None,
    };
    post_chunks(&restarted, &[("file", &hb, b.to_vec())])
        .await
        .ok();
    let v = wait_for(&restarted, &checksum, &chunks).await;
    assert_eq!(v["state"], "ok", "{v}");
    // The state is answered per checksum, also by a fresh process.
    let again = TestApp {
        state: app.reopen(),
        dir: tempfile::tempdir().unwrap(),
        token: None,
    };
    assert_eq!(assemble(&again, &checksum, &chunks).await["state"], "ok");
    // And the bundle is symbolicated by debug ID.
    let r = again
        .js("web", &json!({
            "modules": [{"type": "sourcemap", "code_file": "https://x/app.js", "debug_id": "484570ef-db1c-57a4-b927-ecdac3a2aa7a"}],
            "stacktraces": [{"frames": [{"abs_path": "https://x/app.js", "lineno": 1, "colno": 1}]}]})).await;
    assert_eq!(r["stacktraces"][0]["frames"][0]["lineno"], 10);
    assert_eq!(
        r["stacktraces"][0]["frames"][0]["data"]["resolved_with"],
        "debug-id"
    );
}

#[tokio::test]
async fn oversized_and_garbage_chunks_are_refused() {
    let app = TestApp::new();
    let r = post_chunks(
        &app,
        &[("file_gzip", &sha1_hex(b"x"), b"not gzip".to_vec())],
    )
    .await;
    assert_eq!(r.status, 400);
    let r = post_chunks(&app, &[("file", "nothex", b"x".to_vec())]).await;
    assert_eq!(r.status, 400);
    // A gzip bomb: 64 MiB of zeros is far past the 8 MiB chunk size.
    let zeros = vec![0u8; 64 << 20];
    let r = post_chunks(&app, &[("file_gzip", &sha1_hex(&zeros), gzip(&zeros))]).await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["detail"].as_str().unwrap().contains("too large"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

#[tokio::test]
async fn a_broken_bundle_ends_in_error_with_detail() {
    let app = TestApp::new();
    let junk = b"PK\x03\x04 definitely not a zip".to_vec();
    let h = sha1_hex(&junk);
    post_chunks(&app, &[("file", &h, junk)]).await.ok();
    let v = wait_for(&app, &h, std::slice::from_ref(&h)).await;
    assert_eq!(v["state"], "error");
    assert!(v["detail"].as_str().unwrap().contains("zip"), "{v}");
    // Malformed requests are 400 with a detail, as sentry-cli expects.
    let r = app
        .post_json(
            "/api/0/organizations/acme/artifactbundle/assemble/",
            &json!({"checksum": "xyz", "chunks": [], "projects": ["web"]}),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = app
        .post_json(
            "/api/0/organizations/acme/artifactbundle/assemble/",
            &json!({"checksum": h, "chunks": [h], "projects": ["web"], "dist": "d"}),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn debug_file_assemble_answers_with_the_same_keys_and_a_dif() {
    let app = TestApp::new();
    let elf = fixture("native/out/c_dwarf5");
    let h = sha1_hex(&elf);
    let body = json!({h.clone(): {"name": "c_dwarf5", "debug_id": "339d67d0-6e29-287b-2408-1344f4ea7744", "chunks": [h]}});
    let v = app
        .post_json("/api/0/projects/acme/native/files/difs/assemble/", &body)
        .await
        .ok()
        .json();
    assert_eq!(v[&h]["state"], "not_found");
    post_chunks(&app, &[("file", &h, elf)]).await.ok();
    let mut last = Value::Null;
    for _ in 0..200 {
        last = app
            .post_json("/api/0/projects/acme/native/files/difs/assemble/", &body)
            .await
            .ok()
            .json();
        if last[&h]["state"] == "ok" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let dif = &last[&h]["dif"];
    assert_eq!(
        dif["debugId"], "339d67d0-6e29-287b-2408-1344f4ea7744",
        "{last}"
    );
    assert_eq!(dif["cpuName"], "x86_64");
    assert_eq!(dif["objectName"], "c_dwarf5");
    assert_eq!(dif["sha1"], h);
    let list = app
        .get("/api/v1/projects/native/debug-files")
        .await
        .ok()
        .json();
    assert_eq!(list["debug_files"].as_array().unwrap().len(), 1);
    // Sweeping, even with no grace, keeps chunks for their advertised 24 hours (sentry-cli
    // may assemble them much later); they expire after that.
    let report = app
        .send(req(
            Method::POST,
            "/api/v1/admin/sweep?grace=0s",
            None,
            axum::body::Body::empty(),
        ))
        .await
        .ok()
        .json();
    assert_eq!(report["chunks_deleted"], 0, "{report}");
    assert_eq!(
        app.state
            .store
            .expire_chunks(std::time::Duration::ZERO)
            .await
            .unwrap(),
        1
    );
}

/// An `ok` state holds only while what it committed is still there: after the release is
/// deleted, the same assemble call commits the file again instead of answering `ok` with
/// nothing behind it.
#[tokio::test]
async fn assembling_again_after_a_delete_commits_again() {
    let app = TestApp::new();
    let b = bundle();
    let sum = sha1_hex(&b);
    post_chunks(&app, &[("file", &sum, b.clone())]).await.ok();
    let chunks = vec![sum.clone()];
    assert_eq!(wait_for(&app, &sum, &chunks).await["state"], "ok");
    assert_eq!(
        app.delete("/api/v1/projects/web/releases/1.0").await.status,
        204
    );
    let again = assemble(&app, &sum, &chunks).await;
    assert_ne!(
        again["state"], "ok",
        "answered ok for a deleted upload: {again}"
    );
    assert_eq!(wait_for(&app, &sum, &chunks).await["state"], "ok");
    let files = app
        .get("/api/v1/projects/web/releases/1.0/files")
        .await
        .ok()
        .json();
    assert_eq!(files["files"].as_array().map(Vec::len), Some(2), "{files}");
}

/// A `created`/`assembling` state that nobody refreshes (its process died, on whichever
/// replica) is restarted by the next call.
#[tokio::test]
async fn a_stalled_assembly_of_another_process_is_restarted() {
    let app = TestApp::new();
    let b = bundle();
    let sum = sha1_hex(&b);
    post_chunks(&app, &[("file", &sum, b.clone())]).await.ok();
    // What a replica that died mid-assembly left behind, two minutes ago.
    let key =
        object_store::path::Path::from(format!("sentry/assemble/bundle/p.web/{sum}/{sum}.json"));
    let old = (chrono::Utc::now() - chrono::Duration::seconds(120)).to_rfc3339();
    app.state
        .store
        .put_json(&key, &json!({"state": "assembling", "updated_at": old}))
        .await
        .unwrap();
    let chunks = vec![sum.clone()];
    assert_eq!(wait_for(&app, &sum, &chunks).await["state"], "ok");
    // A fresh one (the other replica is alive) is left alone.
    let other = format!("{:040x}", 7);
    let key = object_store::path::Path::from(format!(
        "sentry/assemble/bundle/p.web/{other}/{other}.json"
    ));
    app.state
        .store
        .put_json(
            &key,
            &json!({"state": "assembling", "updated_at": chrono::Utc::now().to_rfc3339()}),
        )
        .await
        .unwrap();
    post_chunks(&app, &[("file", &other, Vec::new())]).await;
    let v = assemble(&app, &other, std::slice::from_ref(&other)).await;
    assert_eq!(v["state"], "assembling", "{v}");
}

/// sentry-cli prints a body other than Sentry's `{"detail": …}` as a debug dump; our own
/// routes keep our shape.
#[tokio::test]
async fn sentry_routes_answer_errors_in_sentrys_shape_and_ours_keep_theirs() {
    let mut app = TestApp::with_config(|c| {
        c.auth.tokens = vec![tracemap::config::TokenConfig {
            name: "ingest".into(),
            token: tracemap::config::Secret("symbolicate-only-token-0123".into()),
            scopes: vec![tracemap::config::Scope::Symbolicate],
            projects: None,
        }]
    });
    app.token = Some("symbolicate-only-token-0123".into());
    let sentry_errors = [
        // 403 from a handler.
        app.post_json(
            "/api/0/projects/acme/web/releases/",
            &json!({"version": "1.0"}),
        )
        .await,
        // 404 from the fallback, 405 from the method router.
        app.get("/api/0/no/such/route/").await,
        app.send(req(
            Method::DELETE,
            "/api/0/organizations/acme/chunk-upload/",
            None,
            axum::body::Body::empty(),
        ))
        .await,
    ];
    for (r, (status, code)) in sentry_errors.iter().zip([
        (403, "forbidden"),
        (404, "route_not_found"),
        (405, "method_not_allowed"),
    ]) {
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["detail"], "{v}");
        assert!(!v["detail"].as_str().unwrap().is_empty(), "{v}");
        assert_eq!(r.error_code(), code, "the code stays in a header");
    }
    let r = app.get("/api/v1/projects/web/releases").await;
    assert_eq!(r.status, 403);
    let v = r.json();
    assert_eq!(v["error"]["code"], "forbidden", "{v}");
    assert!(v["error"]["message"].as_str().is_some(), "{v}");
}
