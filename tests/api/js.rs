//! JS symbolication through HTTP, against real bundles (esbuild, terser, rollup, webpack,
//! tsc, index maps, inline maps, sentry-cli injected debug IDs) and an oracle that never came
//! from Tracemap: real node stack traces of the minified and the original code, and
//! @jridgewell/trace-mapping answers (see fixtures/js/README.md).

use serde_json::{json, Value};

use crate::common::*;

pub fn oracle(name: &str) -> Value {
    serde_json::from_slice(&fixture(&format!("js/oracle/{name}.json"))).expect("oracle")
}

/// Uploads a bundle of the oracle under `release` at the oracle's URL; the map (if external)
/// at the URL its sourceMappingURL names.
pub async fn upload_bundle(app: &TestApp, project: &str, release: &str, name: &str) {
    let o = oracle(name);
    let url = o["url"].as_str().unwrap();
    let js = fixture(&format!("js/{}", o["minified"].as_str().unwrap()));
    let mut files: Vec<(String, Vec<u8>)> = vec![(url.to_owned(), js)];
    if let Some(map) = o["map"].as_str() {
        files.push((format!("{url}.map"), fixture(&format!("js/{map}"))));
    }
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(u, b)| (u.as_str(), b.as_slice()))
        .collect();
    app.upload_release(project, release, None, &refs).await.ok();
}

/// The absolute URL a browser would report for an oracle URL `~/x`.
fn abs(url: &str) -> String {
    format!("https://cdn.example.com/{}", url.trim_start_matches("~/"))
}

/// A request with one stack trace per thrown scenario (caller first, as Sentry sends).
fn thrown_request(o: &Value, release: Option<&str>) -> Value {
    thrown_request_at(o, release, &abs(o["url"].as_str().unwrap()))
}

/// [`thrown_request`] with the frames' `abs_path` set to `url`.
fn thrown_request_at(o: &Value, release: Option<&str>, url: &str) -> Value {
    let stacktraces: Vec<Value> = o["thrown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let frames: Vec<Value> = t["frames"]
                .as_array()
                .unwrap()
                .iter()
                .rev()
                .map(|f| {
                    json!({"abs_path": url, "lineno": f["minified"]["line"], "colno": f["minified"]["column"],
                           "function": f["minified"]["function"], "in_app": true})
                })
                .collect();
            json!({"frames": frames})
        })
        .collect();
    json!({"release": release, "stacktraces": stacktraces})
}

/// Whether our function name is the one V8 printed in the unminified run. V8's printed name
/// also depends on how the function was called (`Object.invoke` for a method called through
/// an object, `checkout` for an unbound call of `scenarios.checkout`), which no static
/// analysis can know; so names match when they are equal or when their last `.` components
/// are (and both or neither are `new` calls).
fn same_function(ours: &Value, v8: &Value) -> bool {
    match (ours.as_str(), v8.as_str()) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            let last = |s: &str| {
                s.rsplit('.')
                    .next()
                    .unwrap_or(s)
                    .trim_start_matches("new ")
                    .to_owned()
            };
            a == b || (a.starts_with("new ") == b.starts_with("new ") && last(a) == last(b))
        }
        _ => false,
    }
}

struct Score {
    frames: usize,
    exact: usize,
    names: usize,
    misses: Vec<String>,
}

/// Compares every returned frame with the oracle's original position; returns the counts.
fn score(o: &Value, response: &Value) -> Score {
    let mut s = Score {
        frames: 0,
        exact: 0,
        names: 0,
        misses: Vec::new(),
    };
    for (t, st) in o["thrown"]
        .as_array()
        .unwrap()
        .iter()
        .zip(response["stacktraces"].as_array().unwrap())
    {
        let want: Vec<&Value> = t["frames"].as_array().unwrap().iter().rev().collect();
        for (w, got) in want.iter().zip(st["frames"].as_array().unwrap()) {
            s.frames += 1;
            let orig = &w["original"];
            let file_ok = got["abs_path"]
                .as_str()
                .unwrap_or_default()
                .ends_with(orig["file"].as_str().unwrap());
            if file_ok && got["lineno"] == orig["line"] && got["colno"] == orig["column"] {
                s.exact += 1;
            } else {
                s.misses.push(format!(
                    "position: want {orig} got {} {}:{}:{}",
                    got["data"], got["abs_path"], got["lineno"], got["colno"]
                ));
            }
            if same_function(&got["function"], &orig["function"]) {
                s.names += 1;
            } else {
                s.misses.push(format!(
                    "name: want {} got {} (minified {})",
                    orig["function"], got["function"], w["minified"]["function"]
                ));
            }
        }
    }
    s
}

const BUNDLES: [&str; 10] = [
    "esbuild",
    "components",
    "esbuild-inline",
    "terser",
    "rollup",
    "webpack",
    "ts",
    "indexmap",
    "large",
    "hermes",
];

#[tokio::test]
async fn real_thrown_frames_resolve_exactly_in_every_bundle_kind() {
    let app = TestApp::new();
    let (mut frames, mut names) = (0, 0);
    let mut report = Vec::new();
    for name in BUNDLES {
        upload_bundle(&app, "web", "1.0", name).await;
        let o = oracle(name);
        let r = app.js("web", &thrown_request(&o, Some("1.0"))).await;
        assert_eq!(r["status"], "completed");
        let s = score(&o, &r);
        assert_eq!(s.exact, s.frames, "{name}: {:#?}", s.misses);
        frames += s.frames;
        names += s.names;
        report.push(format!(
            "{name}: {}/{} names; {:?}",
            s.names, s.frames, s.misses
        ));
    }
    let rate = names as f64 / frames as f64;
    println!(
        "function names: {names}/{frames} = {rate:.3}\n{}",
        report.join("\n")
    );
    assert!(
        rate >= 0.98,
        "function-name rate {rate:.3} < 0.98:\n{}",
        report.join("\n")
    );
}

/// `in_app` is decided by the original file each frame resolves to, on both sides: the
/// fixture's `node_modules/` frames are third-party, every other frame is the application's,
/// whether the bundle was reported under the `~/` URL prefix (sentry-cli's default, which
/// makes resolved paths start with `~/`) or an absolute URL, for every kind of map.
#[tokio::test]
async fn in_app_follows_the_original_file_for_every_bundle_and_url_form() {
    let app = TestApp::new();
    let (mut app_frames, mut vendor_frames) = (0, 0);
    let mut wrong = Vec::new();
    // Every JS fixture: the bundles above plus the map without sourcesContent and the
    // sentry-cli injected copy.
    for name in BUNDLES.into_iter().chain(["esbuild-nosc", "debugid"]) {
        upload_bundle(&app, "web", "1.0", name).await;
        let o = oracle(name);
        let tilde = o["url"].as_str().unwrap().to_owned();
        for url in [tilde.clone(), abs(&tilde)] {
            let r = app
                .js("web", &thrown_request_at(&o, Some("1.0"), &url))
                .await;
            for (t, st) in o["thrown"]
                .as_array()
                .unwrap()
                .iter()
                .zip(r["stacktraces"].as_array().unwrap())
            {
                let want: Vec<&Value> = t["frames"].as_array().unwrap().iter().rev().collect();
                for (w, got) in want.iter().zip(st["frames"].as_array().unwrap()) {
                    let expected = w["in_app"].as_bool().unwrap();
                    if expected {
                        app_frames += 1;
                    } else {
                        vendor_frames += 1;
                    }
                    if got["in_app"] != expected {
                        wrong.push(format!(
                            "{name} {url}: {} got in_app {}, want {expected}",
                            got["abs_path"], got["in_app"]
                        ));
                    }
                }
            }
        }
    }
    println!("in_app: {app_frames} application frames, {vendor_frames} third-party frames");
    assert!(app_frames > 0 && vendor_frames > 0);
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Lines and columns are 1-based on the wire: a 0 is not "line 1" but an invalid location.
#[tokio::test]
async fn line_or_column_zero_is_an_invalid_location() {
    let app = TestApp::new();
    app.upload_release(
        "web",
        "2.0",
        None,
        &[
            ("~/app.js", b"boom();\n//# sourceMappingURL=app.js.map\n"),
            ("~/app.js.map", &tiny_map(None)),
        ],
    )
    .await
    .ok();
    let frame = |line: u32, col: u32| json!({"abs_path": "~/app.js", "lineno": line, "colno": col});
    let r = app
        .js(
            "web",
            &json!({"release": "2.0", "stacktraces": [{"frames": [frame(0, 1), frame(1, 0), frame(1, 1)]}]}),
        )
        .await;
    let types: Vec<&str> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["invalid_location", "invalid_location"],
        "{}",
        r["errors"]
    );
    let frames = r["stacktraces"][0]["frames"].as_array().unwrap();
    for f in &frames[..2] {
        assert_eq!(f["data"]["symbolicated"], false, "{f}");
        assert!(f["data"]["diagnostic"]
            .as_str()
            .unwrap()
            .contains("1-based"));
    }
    assert_eq!(frames[2]["data"]["symbolicated"], true);
    assert_eq!(
        (frames[2]["lineno"].as_u64(), frames[2]["colno"].as_u64()),
        (Some(10), Some(5))
    );
}

#[tokio::test]
async fn every_sampled_position_matches_trace_mapping() {
    let app = TestApp::new();
    for name in [
        "esbuild", "terser", "rollup", "webpack", "ts", "indexmap", "large",
    ] {
        upload_bundle(&app, "web", "1.0", name).await;
        let o = oracle(name);
        let url = abs(o["url"].as_str().unwrap());
        let samples = o["sampled"].as_array().unwrap();
        let frames: Vec<Value> = samples
            .iter()
            .map(|s| json!({"abs_path": url, "lineno": s["line"], "colno": s["column"]}))
            .collect();
        let body = json!({"release": "1.0", "stacktraces": [{"frames": frames}], "options": {"apply_source_context": false}});
        let r = app.js("web", &body).await;
        let got = r["stacktraces"][0]["frames"].as_array().unwrap();
        let mut misses = Vec::new();
        let mut continuation = 0;
        for (s, g) in samples.iter().zip(got) {
            if s["template_continuation"] == true {
                continuation += 1;
            }
            if g["lineno"] != s["original_line"] || g["colno"] != s["original_column"] {
                misses.push(format!(
                    "{s} -> {}:{}:{}",
                    g["abs_path"], g["lineno"], g["colno"]
                ));
            }
        }
        assert!(
            misses.is_empty(),
            "{name}: {} of {} samples differ:\n{}",
            misses.len(),
            samples.len(),
            misses.join("\n")
        );
        if name == "esbuild" || name == "large" {
            assert!(
                continuation > 0,
                "{name} has template-literal continuation samples"
            );
        }
    }
}

#[tokio::test]
async fn source_context_in_app_and_resolution_data() {
    let app = TestApp::new();
    upload_bundle(&app, "web", "1.0", "esbuild").await;
    let o = oracle("esbuild");
    let r = app.js("web", &thrown_request(&o, Some("1.0"))).await;
    let frame = &r["stacktraces"][0]["frames"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(frame["data"]["symbolicated"], true);
    assert_eq!(frame["data"]["resolved_with"], "release");
    // `../../src/pricing.js` in the map, resolved against the map's URL.
    assert_eq!(frame["abs_path"], "~/src/pricing.js");
    assert_eq!(
        frame["data"]["sourcemap"],
        "~/static/esbuild/app.min.js.map"
    );
    assert_eq!(frame["pre_context"].as_array().unwrap().len(), 5);
    let src = String::from_utf8(fixture("js/src/pricing.js")).unwrap();
    let line = src
        .lines()
        .nth(frame["lineno"].as_u64().unwrap() as usize - 1)
        .unwrap();
    assert_eq!(frame["context_line"], line);
    // Raw frames keep the minified position and carry the minified context.
    let raw = r["raw_stacktraces"][0]["frames"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        raw["colno"],
        o["thrown"][0]["frames"][0]["minified"]["column"]
    );
    assert!(raw["context_line"].as_str().is_some());
    // Vendor frames are not in-app.
    let vendor: Vec<&Value> = r["stacktraces"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["frames"].as_array().unwrap())
        .filter(|f| {
            f["abs_path"]
                .as_str()
                .unwrap_or_default()
                .contains("node_modules")
        })
        .collect();
    assert!(!vendor.is_empty());
    assert!(vendor.iter().all(|f| f["in_app"] == false));
}

#[tokio::test]
async fn map_without_sources_content_uses_uploaded_originals() {
    let app = TestApp::new();
    upload_bundle(&app, "web", "1.0", "esbuild-nosc").await;
    let o = oracle("esbuild-nosc");
    let r = app.js("web", &thrown_request(&o, Some("1.0"))).await;
    let errors = r["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["type"] == "missing_source_content"),
        "{errors:?}"
    );
    let e = errors
        .iter()
        .find(|e| e["type"] == "missing_source_content")
        .unwrap();
    assert!(e["diagnostic"].as_str().unwrap().contains("~/src/"), "{e}");
    // Upload the originals where the map's sources point (../../src/x.js from ~/static/esbuild-nosc/).
    let mut files = Vec::new();
    for f in [
        "cart.js",
        "pricing.js",
        "inventory.js",
        "main.js",
        "pipeline.js",
        "runtime.js",
        "util/format.js",
        "node_modules/tiny-invariant-lite/index.js",
    ] {
        files.push((format!("~/src/{f}"), fixture(&format!("js/src/{f}"))));
    }
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(u, b)| (u.as_str(), b.as_slice()))
        .collect();
    app.upload_release("web", "1.0", None, &refs).await.ok();
    let r = app.js("web", &thrown_request(&o, Some("1.0"))).await;
    assert!(
        r["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["type"] != "missing_source_content"),
        "{}",
        r["errors"]
    );
    let frame = &r["stacktraces"][0]["frames"][0];
    assert!(frame["context_line"].as_str().is_some(), "{frame}");
    // The names come from the uploaded originals too (parsed once each), not only from the
    // minified file: as many as with sourcesContent.
    let with_originals = score(&o, &r);
    let with_content = {
        let app = TestApp::new();
        upload_bundle(&app, "web", "1.0", "esbuild").await;
        score(
            &oracle("esbuild"),
            &app.js("web", &thrown_request(&oracle("esbuild"), Some("1.0")))
                .await,
        )
    };
    assert_eq!(
        with_originals.names, with_content.names,
        "names from uploaded originals: {:#?}",
        with_originals.misses
    );
    assert_eq!(
        with_originals.names, with_originals.frames,
        "{:#?}",
        with_originals.misses
    );
}

#[tokio::test]
async fn debug_id_path_resolves_without_release_and_wins_over_url() {
    let app = TestApp::new();
    let o = oracle("debugid");
    let id = o["debug_id"].as_str().unwrap();
    // Uploaded under a release but found through the debug ID the request names.
    upload_bundle(&app, "web", "other-release", "debugid").await;
    let mut req = thrown_request(&o, None);
    req["modules"] = json!([{"type": "sourcemap", "code_file": abs(o["url"].as_str().unwrap()), "debug_id": id}]);
    let r = app.js("web", &req).await;
    let s = score(&o, &r);
    assert_eq!(s.exact, s.frames, "{:#?}", s.misses);
    assert_eq!(
        r["stacktraces"][0]["frames"][0]["data"]["resolved_with"],
        "debug-id"
    );
}

#[tokio::test]
async fn minified_file_absent_but_sibling_map_present_still_resolves() {
    let app = TestApp::new();
    let o = oracle("esbuild");
    let url = o["url"].as_str().unwrap();
    app.upload_release(
        "web",
        "1.0",
        None,
        &[(
            &format!("{url}.map"),
            &fixture("js/out/esbuild/app.min.js.map"),
        )],
    )
    .await
    .ok();
    let r = app.js("web", &thrown_request(&o, Some("1.0"))).await;
    let s = score(&o, &r);
    assert_eq!(s.exact, s.frames, "{:#?}", s.misses);
}

#[tokio::test]
async fn reupload_takes_effect_on_the_next_request() {
    let app = TestApp::new();
    let o = oracle("esbuild");
    let url = o["url"].as_str().unwrap().to_owned();
    let req = thrown_request(&o, Some("1.0"));
    // First a miss: nothing uploaded. The negative answer must not outlive the upload.
    let r = app.js("web", &req).await;
    assert_eq!(r["errors"][0]["type"], "missing_source");
    // Upload the terser build's map under the esbuild URL: valid, but wrong for these frames.
    app.upload_release(
        "web",
        "1.0",
        None,
        &[
            (&url, &fixture("js/out/esbuild/app.min.js")),
            (
                &format!("{url}.map"),
                &fixture("js/out/terser/app.min.js.map"),
            ),
        ],
    )
    .await
    .ok();
    let r1 = app.js("web", &req).await;
    assert!(score(&o, &r1).exact < score(&o, &r1).frames);
    // Re-upload the right map: the very next request uses it.
    app.upload_release(
        "web",
        "1.0",
        None,
        &[(
            &format!("{url}.map"),
            &fixture("js/out/esbuild/app.min.js.map"),
        )],
    )
    .await
    .ok();
    let r2 = app.js("web", &req).await;
    let s = score(&o, &r2);
    assert_eq!(s.exact, s.frames, "{:#?}", s.misses);
}

#[tokio::test]
async fn every_error_type_says_why() {
    let app = TestApp::with_config(|c| c.limits.max_sourcemap_bytes = 4_000);
    let js = fixture("js/out/esbuild/app.min.js");
    // missing_source: names release, candidates and a similar URL.
    app.upload_release("web", "1.0", None, &[("~/assets/app.min.js", &js)])
        .await
        .ok();
    let frame = |path: &str, line: u32, col: Option<u32>| json!({"abs_path": path, "lineno": line, "colno": col});
    let r = app
        .js(
            "web",
            &json!({"release": "1.0", "stacktraces": [{"frames": [
                frame("https://cdn.example.com/static/app.min.js?v=3#x", 1, Some(10)),
            ]}]}),
        )
        .await;
    let e = &r["errors"][0];
    assert_eq!(e["type"], "missing_source");
    let d = e["diagnostic"].as_str().unwrap();
    for needle in [
        "release 1.0",
        "~/static/app.min.js?v=3",
        "~/static/app.min.js",
        "~/assets/app.min.js",
    ] {
        assert!(d.contains(needle), "{needle} not in {d}");
    }
    assert_eq!(
        r["stacktraces"][0]["frames"][0]["data"]["symbolicated"],
        false
    );
    assert_eq!(
        r["stacktraces"][0]["frames"][0]["lineno"], 1,
        "unresolved frames come back as they came"
    );

    // missing_sourcemap: the file is there, its map is not.
    let r = app
        .js("web", &json!({"release": "1.0", "stacktraces": [{"frames": [frame("~/assets/app.min.js", 1, Some(10))]}]})).await;
    assert_eq!(r["errors"][0]["type"], "missing_sourcemap");
    assert!(r["errors"][0]["diagnostic"]
        .as_str()
        .unwrap()
        .contains("~/assets/app.min.js.map"));

    // A map over the configured limit is refused at upload.
    let map = fixture("js/out/esbuild/app.min.js.map");
    let refused = app
        .upload_release("web", "1.0", None, &[("~/assets/app.min.js.map", &map)])
        .await;
    assert_eq!(
        refused.status,
        413,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    assert_eq!(refused.error_code(), "too_large");
    // malformed_sourcemap: a map stored while the limit was higher is over today's limit.
    let lenient = TestApp {
        state: {
            let mut config = app.state.config.clone();
            config.limits.max_sourcemap_bytes = 1 << 30;
            tracemap::app::App::new(config).unwrap()
        },
        dir: tempfile::tempdir().unwrap(),
        token: None,
    };
    lenient
        .upload_release("web", "1.0", None, &[("~/assets/app.min.js.map", &map)])
        .await
        .ok();
    // That was another process over the same store: this one learns of it at once here
    // (otherwise within `cache.index_ttl`).
    app.state
        .index
        .invalidate(&tracemap::types::ProjectId::parse("web").unwrap());
    let r = app
        .js("web", &json!({"release": "1.0", "stacktraces": [{"frames": [frame("~/assets/app.min.js", 1, Some(10))]}]})).await;
    assert_eq!(
        r["errors"][0]["type"], "malformed_sourcemap",
        "{}",
        r["errors"]
    );
    assert!(r["errors"][0]["diagnostic"]
        .as_str()
        .unwrap()
        .contains("limit"));

    // invalid_base64_sourcemap: an inline map whose data is not base64.
    app.upload_release(
        "web",
        "1.0",
        None,
        &[(
            "~/inline.js",
            b"x();\n//# sourceMappingURL=data:application/json;base64,%%%not-base64%%%\n",
        )],
    )
    .await
    .ok();
    // no_column, invalid_location.
    app.upload_release(
        "web",
        "2.0",
        None,
        &[
            ("~/app.js", b"boom();\n//# sourceMappingURL=app.js.map\n"),
            ("~/app.js.map", &tiny_map(None)),
        ],
    )
    .await
    .ok();
    let r = app
        .js("web", &json!({"release": "1.0", "stacktraces": [{"frames": [frame("~/inline.js", 1, Some(1))]}]})).await;
    assert_eq!(
        r["errors"][0]["type"], "invalid_base64_sourcemap",
        "{}",
        r["errors"]
    );
    let r = app
        .js(
            "web",
            &json!({"release": "2.0", "stacktraces": [{"frames": [
                frame("~/app.js", 1, None),
                frame("~/app.js", 500, Some(1)),
                frame("~/app.js", 1, Some(1)),
            ]}]}),
        )
        .await;
    let types: Vec<&str> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["no_column", "invalid_location"]);
    let ok = &r["stacktraces"][0]["frames"][2];
    assert_eq!(
        (ok["lineno"].as_u64(), ok["colno"].as_u64()),
        (Some(10), Some(5))
    );
    assert_eq!(ok["context_line"], "    boom();");
    // Every error carries a diagnostic sentence.
    assert!(r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["diagnostic"].as_str().is_some_and(|d| d.len() > 10)));
}

#[tokio::test]
async fn unknown_fields_are_accepted_and_frames_keep_theirs() {
    let app = TestApp::new();
    app.upload_release(
        "web",
        "2.0",
        None,
        &[
            ("~/app.js", b"boom();\n//# sourceMappingURL=app.js.map\n"),
            ("~/app.js.map", &tiny_map(None)),
        ],
    )
    .await
    .ok();
    let r = app
        .js("web", &json!({
            "release": "2.0", "future_field": {"x": 1}, "sources": [], "scraping": {"enabled": false},
            "stacktraces": [{"frames": [{"abs_path": "~/app.js", "lineno": 1, "colno": 1, "vars": {"a": 1}, "platform": "javascript"}], "registers": {}}],
        })).await;
    let f = &r["stacktraces"][0]["frames"][0];
    assert_eq!(f["data"]["symbolicated"], true);
    assert_eq!(f["vars"], json!({"a": 1}));
    // The compatibility alias answers the same.
    let r2 = app
        .post_json("/symbolicate-js?scope=web", &json!({"release": "2.0", "stacktraces": [{"frames": [{"abs_path": "~/app.js", "lineno": 1, "colno": 1}]}]}))
        .await
        .ok()
        .json();
    assert_eq!(r2["stacktraces"][0]["frames"][0]["lineno"], 10);
}

#[tokio::test]
async fn too_many_frames_is_a_clear_413() {
    let app = TestApp::with_config(|c| c.limits.max_frames = 10);
    let frames: Vec<Value> = (0..11)
        .map(|_| json!({"abs_path": "~/a.js", "lineno": 1, "colno": 1}))
        .collect();
    let r = app
        .post_json(
            "/api/v1/projects/web/symbolicate/js",
            &json!({"stacktraces": [{"frames": frames}]}),
        )
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "too_many_frames");
}

#[tokio::test]
async fn hermes_bytecode_positions_resolve_through_the_composed_map() {
    let app = TestApp::new();
    let o = oracle("hermes");
    let b = &o["bytecode"];
    let url = b["url"].as_str().unwrap();
    app.upload_release(
        "web",
        "1.0",
        None,
        &[
            (
                url,
                &fixture(&format!("js/{}", b["file"].as_str().unwrap())),
            ),
            (
                &format!("{url}.map"),
                &fixture(&format!("js/{}", b["map"].as_str().unwrap())),
            ),
        ],
    )
    .await
    .ok();
    let samples = b["sampled"].as_array().unwrap();
    let frames: Vec<Value> = samples
        .iter()
        .map(|s| json!({"abs_path": abs(url), "lineno": s["line"], "colno": s["column"]}))
        .collect();
    let r = app
        .js(
            "web",
            &json!({"release": "1.0", "stacktraces": [{"frames": frames}]}),
        )
        .await;
    let got = r["stacktraces"][0]["frames"].as_array().unwrap();
    let misses: Vec<String> = samples
        .iter()
        .zip(got)
        .filter(|(s, g)| g["lineno"] != s["original_line"] || g["colno"] != s["original_column"])
        .map(|(s, g)| format!("{s} -> {}:{}", g["lineno"], g["colno"]))
        .collect();
    assert!(
        misses.is_empty(),
        "{} of {} bytecode samples differ:\n{}",
        misses.len(),
        samples.len(),
        misses.join("\n")
    );
}

/// A column past the end of its line (or a line past the end of the file) is not a position
/// in the minified file: it gets `invalid_location` with the line's length, not the line's
/// last token with full confidence.
#[tokio::test]
async fn positions_past_the_end_of_a_line_or_file_are_invalid() {
    let app = TestApp::new();
    upload_bundle(&app, "web", "1.0", "esbuild").await;
    let o = oracle("esbuild");
    let js =
        String::from_utf8(fixture(&format!("js/{}", o["minified"].as_str().unwrap()))).unwrap();
    let first_line: Vec<u16> = js.lines().next().unwrap().encode_utf16().collect();
    let len = first_line.len() as u64;
    let lines = js.lines().count() as u64;
    let url = abs(o["url"].as_str().unwrap());
    let ask = |line: u64, col: u64| json!({"release": "1.0", "stacktraces": [{"frames": [{"abs_path": url, "lineno": line, "colno": col}]}]});
    // The last character of the line is a position (whatever it maps to).
    let last = app.js("web", &ask(1, len)).await;
    assert_ne!(last["errors"][0]["type"], "invalid_location", "{last}");
    for (line, col, says) in [
        (1, len + 1, format!("line 1 has {len} characters")),
        (
            1,
            48_213.max(len + 10),
            format!("line 1 has {len} characters"),
        ),
        (lines + 1, 1, format!("the file has {lines} lines")),
    ] {
        let r = app.js("web", &ask(line, col)).await;
        let frame = &r["stacktraces"][0]["frames"][0];
        assert_eq!(frame["data"]["symbolicated"], false, "{line}:{col}: {r}");
        assert_eq!(
            r["errors"][0]["type"], "invalid_location",
            "{line}:{col}: {r}"
        );
        let d = r["errors"][0]["diagnostic"].as_str().unwrap();
        assert!(d.contains(&says), "{line}:{col}: {d}");
    }
}
