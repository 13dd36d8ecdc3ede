//! Upload API: release files, bundles, listing, download, delete, and every rejection.

use crate::common::*;

const MIN_JS: &[u8] = b"boom();\n//# sourceMappingURL=app.js.map\n";

#[tokio::test]
async fn release_files_are_listed_downloadable_and_classified() {
    let app = TestApp::new();
    let map = tiny_map(None);
    let r = app
        .upload_release(
            "web",
            "web@1.0.0",
            Some("prod"),
            &[("~/static/app.js", MIN_JS), ("~/static/app.js.map", &map)],
        )
        .await
        .ok();
    assert_eq!(r.status, 201);
    let v = r.json();
    assert_eq!(v["release"], "web@1.0.0");
    assert_eq!(v["dist"], "prod");
    let kinds: Vec<_> = v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["minified_source", "source_map"]);
    assert_eq!(v["artifacts"][0]["sourcemap"], "app.js.map");

    let list = app
        .get("/api/v1/projects/web/releases/web%401.0.0/files")
        .await
        .ok()
        .json();
    assert_eq!(list["files"].as_array().unwrap().len(), 2);
    let sha = list["files"][0]["sha256"].as_str().unwrap().to_owned();
    let body = app
        .get(&format!(
            "/api/v1/projects/web/releases/web%401.0.0/files/{sha}"
        ))
        .await
        .ok();
    assert_eq!(body.body, MIN_JS);

    let releases = app.get("/api/v1/projects/web/releases").await.ok().json();
    assert_eq!(releases["releases"], serde_json::json!(["web@1.0.0"]));
}

#[tokio::test]
async fn reupload_of_same_url_wins_over_older_upload() {
    let app = TestApp::new();
    app.upload_release("web", "1.0", None, &[("~/a.js", b"one\n")])
        .await
        .ok();
    app.upload_release("web", "1.0", None, &[("~/a.js", b"two\n")])
        .await
        .ok();
    let list = app
        .get("/api/v1/projects/web/releases/1.0/files")
        .await
        .ok()
        .json();
    assert_eq!(list["files"].as_array().unwrap().len(), 1);
    assert_eq!(list["uploads"], 2);
    let sha = list["files"][0]["sha256"].as_str().unwrap();
    let body = app
        .get(&format!("/api/v1/projects/web/releases/1.0/files/{sha}"))
        .await
        .ok();
    assert_eq!(body.body, b"two\n");
}

#[tokio::test]
async fn another_replica_sees_uploads_through_the_store() {
    let app = TestApp::new();
    app.upload_release("web", "1.0", None, &[("~/a.js", b"one\n")])
        .await
        .ok();
    let other = TestApp {
        state: app.reopen(),
        dir: tempfile::tempdir().unwrap(),
        token: None,
    };
    let list = other
        .get("/api/v1/projects/web/releases/1.0/files")
        .await
        .ok()
        .json();
    assert_eq!(list["files"][0]["url"], "~/a.js");
}

#[tokio::test]
async fn malformed_sourcemap_is_rejected_and_nothing_becomes_visible() {
    let app = TestApp::new();
    let r = app
        .upload_release(
            "web",
            "1.0",
            None,
            &[
                ("~/good.js", b"x\n"),
                (
                    "~/bad.js.map",
                    b"{\"version\":3,\"mappings\":\"%%%\",\"sources\":[]}",
                ),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "sourcemap_malformed");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("bad.js.map"));
    let list = app.get("/api/v1/projects/web/releases/1.0/files").await;
    assert_eq!(list.status, 404);
    assert_eq!(list.error_code(), "release_not_found");
}

#[tokio::test]
async fn a_rejected_upload_does_not_damage_what_is_stored() {
    let app = TestApp::new();
    app.upload_release("web", "1.0", None, &[("~/a.js", b"one\n")])
        .await
        .ok();
    let r = app
        .upload_release(
            "web",
            "1.0",
            None,
            &[("~/a.js", b"two\n"), ("~/a.js.map", b"not json")],
        )
        .await;
    assert_eq!(r.status, 400);
    let list = app
        .get("/api/v1/projects/web/releases/1.0/files")
        .await
        .ok()
        .json();
    let sha = list["files"][0]["sha256"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/projects/web/releases/1.0/files/{sha}"))
            .await
            .body,
        b"one\n"
    );
}

#[tokio::test]
async fn invalid_names_are_rejected() {
    let app = TestApp::new();
    for (project, release, code) in [
        ("we b", "1.0", "invalid_parameter"),
        ("web", "..", "invalid_parameter"),
    ] {
        let r = app
            .post_multipart(
                &format!(
                    "/api/v1/projects/{}/releases/{}/files",
                    enc(project),
                    enc(release)
                ),
                Multipart::new().file("file", "a.js", b"x"),
            )
            .await;
        assert_eq!(r.status, 400, "{project} {release}");
        assert_eq!(r.error_code(), code);
    }
    let r = app
        .post_multipart(
            "/api/v1/projects/web/releases/1.0/files",
            Multipart::new().file("file", "../../etc/passwd", b"x"),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "unsafe_path");
    let r = app
        .post_multipart(
            "/api/v1/projects/web/releases/1.0/files",
            Multipart::new().text("dist", "x"),
        )
        .await;
    assert_eq!(r.error_code(), "empty_upload");
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let app = TestApp::with_config(|c| c.limits.max_upload_bytes = 4096);
    let big = vec![b'x'; 10_000];
    let r = app
        .upload_release("web", "1.0", None, &[("~/a.js", &big)])
        .await;
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    let r = app
        .post_bytes("/api/v1/projects/web/bundles?release=1.0", big.clone())
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "too_large");
    let r = app
        .post_bytes("/api/v1/projects/web/debug-files", big)
        .await;
    assert_eq!(r.status, 413);
}

#[tokio::test]
async fn file_over_the_file_limit_is_413() {
    let app = TestApp::with_config(|c| c.limits.max_file_bytes = 1000);
    let r = app
        .upload_release("web", "1.0", None, &[("~/a.js", &[b'x'; 2000])])
        .await;
    assert_eq!(r.status, 413);
}

fn artifact_bundle(sysb: bool) -> Vec<u8> {
    let map = tiny_map(Some("484570ef-db1c-57a4-b927-ecdac3a2aa7a"));
    let js = b"boom();\n//# debugId=484570ef-db1c-57a4-b927-ecdac3a2aa7a\n//# sourceMappingURL=app.min.js.map\n";
    let manifest = serde_json::json!({
        "files": {
            "files/_/_/app.min.js": {"type": "minified_source", "url": "~/app.min.js",
                "headers": {"debug-id": "484570ef-db1c-57a4-b927-ecdac3a2aa7a", "sourcemap": "app.min.js.map"}},
            "files/_/_/app.min.js.map": {"type": "source_map", "url": "~/app.min.js.map",
                "headers": {"debug-id": "484570ef-db1c-57a4-b927-ecdac3a2aa7a"}}
        },
        "release": "1.0.0", "dist": "web-7"
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let zip = zip(&[
        ("files/_/_/app.min.js", js),
        ("files/_/_/app.min.js.map", &map),
        ("manifest.json", &manifest),
    ]);
    if sysb {
        let mut out = b"SYSB\x02\x00\x00\x00".to_vec();
        out.extend(zip);
        out
    } else {
        zip
    }
}

#[tokio::test]
async fn sentry_artifact_bundle_with_sysb_header_is_indexed_by_release_and_debug_id() {
    let app = TestApp::new();
    let v = app
        .post_bytes("/api/v1/projects/web/bundles", artifact_bundle(true))
        .await
        .ok()
        .json();
    assert_eq!(v["release"], "1.0.0");
    assert_eq!(v["dist"], "web-7");
    assert_eq!(v["artifacts"].as_array().unwrap().len(), 2);
    for a in v["artifacts"].as_array().unwrap() {
        assert_eq!(a["debug_id"], "484570ef-db1c-57a4-b927-ecdac3a2aa7a");
    }
    let list = app
        .get("/api/v1/projects/web/releases/1.0.0/files?dist=web-7")
        .await
        .ok()
        .json();
    assert_eq!(list["files"].as_array().unwrap().len(), 2);
    // The same bundle without the header works too, with a release from the query.
    let v = app
        .post_bytes(
            "/api/v1/projects/web/bundles?release=2.0",
            artifact_bundle(false),
        )
        .await
        .ok()
        .json();
    assert_eq!(v["release"], "2.0");
}

#[tokio::test]
async fn plain_zip_of_a_build_dir_gets_urls_from_paths() {
    let app = TestApp::new();
    let map = tiny_map(None);
    let zip = zip(&[("static/js/app.js", MIN_JS), ("static/js/app.js.map", &map)]);
    let v = app
        .post_bytes(
            "/api/v1/projects/web/bundles?release=1.0&url_prefix=https://cdn.example.com",
            zip,
        )
        .await
        .ok()
        .json();
    let urls: Vec<_> = v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["url"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        urls,
        [
            "https://cdn.example.com/static/js/app.js",
            "https://cdn.example.com/static/js/app.js.map"
        ]
    );
}

#[tokio::test]
async fn zip_entries_escaping_the_root_are_rejected() {
    let app = TestApp::new();
    for name in [
        "../evil.js",
        "/abs/evil.js",
        "a/../../evil.js",
        "C:/evil.js",
    ] {
        let r = app
            .post_bytes(
                "/api/v1/projects/web/bundles?release=1.0",
                zip(&[("ok.js", b"x"), (name, b"x")]),
            )
            .await;
        assert_eq!(r.status, 400, "{name}");
        assert_eq!(r.error_code(), "zip_unsafe_path", "{name}");
    }
    assert_eq!(
        app.get("/api/v1/projects/web/releases").await.json()["releases"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn zip_bombs_are_stopped_by_inflated_size_and_entry_count() {
    let app = TestApp::with_config(|c| {
        c.limits.max_inflated_bytes = 1 << 20;
        c.limits.max_zip_entries = 50;
    });
    // 4 MiB of zeros deflates to a few KiB.
    let zeros = vec![0u8; 4 << 20];
    let bomb = zip(&[("bomb.js", &zeros)]);
    assert!(bomb.len() < 64 << 10);
    let r = app
        .post_bytes("/api/v1/projects/web/bundles?release=1.0", bomb)
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "zip_too_large");
    let names: Vec<String> = (0..60).map(|i| format!("f{i}.js")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let r = app
        .post_bytes("/api/v1/projects/web/bundles?release=1.0", zip(&entries))
        .await;
    assert_eq!(r.error_code(), "zip_too_many_entries");
}

#[tokio::test]
async fn garbage_instead_of_a_zip_is_400() {
    let app = TestApp::new();
    let r = app
        .post_bytes(
            "/api/v1/projects/web/bundles?release=1.0",
            b"PK\x03\x04 this is not a zip".to_vec(),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "zip_invalid");
    let manifest_bad = zip(&[("manifest.json", b"{not json")]);
    let r = app
        .post_bytes("/api/v1/projects/web/bundles?release=1.0", manifest_bad)
        .await;
    assert_eq!(r.error_code(), "bundle_manifest_invalid");
}

#[tokio::test]
async fn bundle_without_release_or_debug_ids_is_refused() {
    let app = TestApp::new();
    let r = app
        .post_bytes("/api/v1/projects/web/bundles", zip(&[("a.js", b"x")]))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "unreachable_upload");
}

#[tokio::test]
async fn deleting_an_artifact_and_a_release() {
    // Trashed blobs are purged once no upload that saw them can still be running: here after
    // a second.
    let app = TestApp::with_config(|c| c.limits.upload_timeout = std::time::Duration::from_secs(1));
    app.upload_release(
        "web",
        "1.0",
        None,
        &[("~/a.js", b"a\n"), ("~/b.js", b"b\n")],
    )
    .await
    .ok();
    let list = app
        .get("/api/v1/projects/web/releases/1.0/files")
        .await
        .json();
    let a = list["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["url"] == "~/a.js")
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.delete(&format!("/api/v1/projects/web/releases/1.0/files/{a}"))
            .await
            .status,
        204
    );
    let list = app
        .get("/api/v1/projects/web/releases/1.0/files")
        .await
        .json();
    assert_eq!(list["files"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.delete(&format!("/api/v1/projects/web/releases/1.0/files/{a}"))
            .await
            .status,
        404
    );

    assert_eq!(
        app.delete("/api/v1/projects/web/releases/1.0").await.status,
        204
    );
    assert_eq!(
        app.get("/api/v1/projects/web/releases/1.0/files")
            .await
            .status,
        404
    );
    assert_eq!(
        app.delete("/api/v1/projects/web/releases/1.0").await.status,
        404
    );
    // A sweep then moves the now unreferenced blobs to the trash, the next deletes them.
    let sweep = || async {
        app.send(req(
            axum::http::Method::POST,
            "/api/v1/admin/sweep?grace=0s",
            None,
            axum::body::Body::empty(),
        ))
        .await
        .ok()
        .json()
    };
    let report = sweep().await;
    assert!(report["blobs_trashed"].as_u64().unwrap() >= 2, "{report}");
    assert_eq!(report["blobs_live"], 0);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let report = sweep().await;
    assert!(report["blobs_deleted"].as_u64().unwrap() >= 2, "{report}");
}

#[tokio::test]
async fn sweep_keeps_what_live_uploads_reference() {
    let app = TestApp::new();
    app.upload_release("web", "1.0", None, &[("~/a.js", b"a\n")])
        .await
        .ok();
    let report = app
        .send(req(
            axum::http::Method::POST,
            "/api/v1/admin/sweep?grace=0s",
            None,
            axum::body::Body::empty(),
        ))
        .await
        .ok()
        .json();
    assert_eq!(report["blobs_deleted"], 0);
    assert_eq!(report["blobs_live"], 1);
    let list = app
        .get("/api/v1/projects/web/releases/1.0/files")
        .await
        .ok()
        .json();
    let sha = list["files"][0]["sha256"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/projects/web/releases/1.0/files/{sha}"))
            .await
            .body,
        b"a\n"
    );
}

#[tokio::test]
async fn a_deleted_source_map_is_no_longer_found_by_its_debug_id() {
    let app = TestApp::new();
    let id = "5a1f0c2e-9b7d-4c3a-8e21-0f6d2b9c4a77";
    app.upload_release(
        "web",
        "1.0",
        None,
        &[
            (
                "~/app.js",
                format!("boom();\n//# debugId={id}\n").as_bytes(),
            ),
            ("~/app.js.map", &tiny_map(Some(id))),
        ],
    )
    .await
    .ok();
    let event = serde_json::json!({
        "modules": [{"type": "sourcemap", "code_file": "/srv/app.js", "debug_id": id}],
        "stacktraces": [{"frames": [{"abs_path": "/srv/app.js", "lineno": 1, "colno": 1}]}],
    });
    let before = app.js("web", &event).await;
    assert_eq!(
        before["stacktraces"][0]["frames"][0]["data"]["symbolicated"], true,
        "{before}"
    );
    let list = app
        .get("/api/v1/projects/web/releases/1.0/files")
        .await
        .json();
    let map = list["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["url"] == "~/app.js.map")
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .delete(&format!("/api/v1/projects/web/releases/1.0/files/{map}"))
        .await;
    assert_eq!(r.status, 204);
    let after = app.js("web", &event).await;
    assert_eq!(
        after["stacktraces"][0]["frames"][0]["data"]["symbolicated"], false,
        "the deleted map still resolves through its debug ID: {after}"
    );
    assert_eq!(after["errors"][0]["type"], "missing_sourcemap", "{after}");
    // A new upload with the same debug ID is found again (it is newer than the deletion).
    app.upload_release("web", "1.1", None, &[("~/app.js.map", &tiny_map(Some(id)))])
        .await
        .ok();
    let again = app.js("web", &event).await;
    assert_eq!(
        again["stacktraces"][0]["frames"][0]["data"]["symbolicated"], true,
        "{again}"
    );
}

#[tokio::test]
async fn a_url_prefix_that_is_a_path_is_refused_on_every_upload_path() {
    // `--url-prefix ~/static` unquoted reaches us as `/home/ci/static`.
    let app = TestApp::new();
    for prefix in ["/home/ci/static", "static", "C:/build"] {
        let r = app
            .post_multipart(
                &format!(
                    "/api/v1/projects/web/releases/1.0/files?url_prefix={}",
                    enc(prefix)
                ),
                Multipart::new().file("file", "app.min.js", b"x"),
            )
            .await;
        assert_eq!(
            r.status,
            400,
            "{prefix}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.error_code(), "invalid_url_prefix");
        let r = app
            .post_multipart(
                "/api/v1/projects/web/releases/1.0/files",
                Multipart::new()
                    .text("url_prefix", prefix)
                    .file("file", "app.min.js", b"x"),
            )
            .await;
        assert_eq!(r.error_code(), "invalid_url_prefix", "{prefix}");
        let r = app
            .post_bytes(
                &format!(
                    "/api/v1/projects/web/bundles?release=1.0&url_prefix={}",
                    enc(prefix)
                ),
                zip(&[("app.js", MIN_JS)]),
            )
            .await;
        assert_eq!(r.error_code(), "invalid_url_prefix", "{prefix}");
    }
    let r = app
        .post_multipart(
            "/api/v1/projects/web/releases/1.0/files?url_prefix=/home/ci/static",
            Multipart::new().file("file", "app.min.js", b"x"),
        )
        .await;
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("quote"),
        "{}",
        r.json()
    );
    for prefix in ["~", "~/static", "https://cdn.example.com/js", "app:///www"] {
        app.post_multipart(
            &format!(
                "/api/v1/projects/web/releases/1.0/files?url_prefix={}",
                enc(prefix)
            ),
            Multipart::new().file("file", "a.js", b"x"),
        )
        .await
        .ok();
    }
    // No stored file ever got a home directory as its URL.
    let listing = app
        .get("/api/v1/projects/web/releases/1.0/files")
        .await
        .ok()
        .json();
    assert!(!listing.to_string().contains("/home/"), "{listing}");
}

#[tokio::test]
async fn deleting_by_a_hash_several_files_share_needs_their_url_or_dist() {
    let app = TestApp::new();
    let same: &[u8] = b"same();\n";
    app.upload_release("web", "1.0", None, &[("~/a.js", same), ("~/b.js", same)])
        .await
        .ok();
    app.upload_release("web", "1.0", Some("prod"), &[("~/a.js", same)])
        .await
        .ok();
    let sha = app
        .get("/api/v1/projects/web/releases/1.0/files")
        .await
        .json()["files"][0]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let all = release_file_names(&app).await;
    assert_eq!(all.len(), 3, "{all:?}");

    // The hash alone names three files: nothing is deleted, and the answer lists them.
    let base = format!("/api/v1/projects/web/releases/1.0/files/{sha}");
    let r = app.delete(&base).await;
    assert_eq!(r.status, 409, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.error_code(), "ambiguous_artifact");
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    for needle in ["~/a.js", "~/b.js", "prod", "?url="] {
        assert!(message.contains(needle), "{needle}: {message}");
    }
    assert_eq!(release_file_names(&app).await, all);
    // The URL still names two (no dist and prod).
    let r = app.delete(&format!("{base}?url={}", enc("~/a.js"))).await;
    assert_eq!(r.error_code(), "ambiguous_artifact");
    // URL and dist name one; exactly that one goes.
    let r = app
        .delete(&format!("{base}?url={}&dist=prod", enc("~/a.js")))
        .await;
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    let left = release_file_names(&app).await;
    assert_eq!(left, ["\"~/a.js\" null", "\"~/b.js\" null"], "{left:?}");
    let r = app.delete(&format!("{base}?url={}", enc("~/b.js"))).await;
    assert_eq!(r.status, 204);
    assert_eq!(release_file_names(&app).await, ["\"~/a.js\" null"]);
    // Now the hash names one file again: no need to say which.
    assert_eq!(app.delete(&base).await.status, 204);
    // Downloading by a shared hash is not ambiguous: the content is the same.
    app.upload_release("web", "2.0", None, &[("~/a.js", same), ("~/b.js", same)])
        .await
        .ok();
    let r = app
        .get(&format!("/api/v1/projects/web/releases/2.0/files/{sha}"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], same);
}

async fn release_file_names(app: &TestApp) -> Vec<String> {
    let v = app
        .get("/api/v1/projects/web/releases/1.0/files")
        .await
        .json();
    let mut out: Vec<String> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {}", f["url"], f["dist"]))
        .collect();
    out.sort();
    out
}
