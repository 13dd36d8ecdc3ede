//! Issue 14: JS answers as Sentry users expect them, black-box through HTTP against the
//! `answers-*` fixtures (fixtures/js/README.md, "Issue 14"). Ground truth: node's thrown stack
//! traces of the minified and the original code, trace-mapping, and for the dart2js-shaped
//! fixture positions by construction (`oracle/answers.json`).

use serde_json::{json, Value};

use crate::common::*;

fn oracle() -> Value {
    serde_json::from_slice(&fixture("js/oracle/answers.json")).expect("oracle")
}

fn case(name: &str) -> Value {
    oracle()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no case {name}"))
}

fn text(rel: &str) -> String {
    String::from_utf8(fixture(rel)).unwrap()
}

/// Line `line` (1-based) of a fixture file.
fn line_of(rel: &str, line: u64) -> String {
    text(rel).lines().nth(line as usize - 1).unwrap().to_owned()
}

/// The case's frames, caller first (as Sentry sends them), at `url`.
fn request(c: &Value, release: Option<&str>, url: &str) -> Value {
    let frames: Vec<Value> = c["frames"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|f| json!({"abs_path": url, "lineno": f["minified"]["line"], "colno": f["minified"]["column"]}))
        .collect();
    json!({"release": release, "stacktraces": [{"frames": frames}]})
}

/// Frames of the answer, innermost first (as the oracle lists them).
fn frames(r: &Value) -> Vec<Value> {
    let mut v = r["stacktraces"][0]["frames"].as_array().unwrap().clone();
    v.reverse();
    v
}

async fn upload(app: &TestApp, release: &str, files: &[(&str, &str)]) {
    let bytes: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(url, rel)| (url.to_string(), fixture(rel)))
        .collect();
    let refs: Vec<(&str, &[u8])> = bytes
        .iter()
        .map(|(u, b)| (u.as_str(), b.as_slice()))
        .collect();
    app.upload_release("web", release, None, &refs).await.ok();
}

const PATHS_SOURCE: &str = "js/src/answers/paths/src dir/ä.js";

/// The frame that throws in `src dir/ä.js`, as every lookup path must answer it.
fn assert_greet_frame(frame: &Value, abs_path: &str, how: &str) {
    let want = &case("answers-paths")["frames"][0]["original"];
    assert_eq!(frame["abs_path"], abs_path, "{how}: {frame:#}");
    assert_eq!(
        frame["filename"], "src/answers/paths/src dir/ä.js",
        "{how}: {frame:#}"
    );
    assert_eq!(frame["function"], want["function"], "{how}: {frame:#}");
    assert_eq!(frame["lineno"], want["line"], "{how}");
    assert_eq!(frame["colno"], want["column"], "{how}");
    assert_eq!(
        frame["context_line"],
        line_of(PATHS_SOURCE, want["line"].as_u64().unwrap()),
        "{how}"
    );
}

#[tokio::test]
async fn paths_come_back_as_the_map_wrote_them_on_every_lookup_path() {
    let app = TestApp::new();
    let want = "~/src/answers/paths/src dir/ä.js";
    for name in ["answers-paths", "answers-inline", "answers-indexmap"] {
        let c = case(name);
        let url = c["url"].as_str().unwrap();
        let minified = format!("js/{}", c["minified"].as_str().unwrap());
        let mut files = vec![(url.to_owned(), minified)];
        if let Some(map) = c["map"].as_str() {
            files.push((format!("{url}.map"), format!("js/{map}")));
        }
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        upload(&app, "1.0", &files).await;
        let r = app.js("web", &request(&c, Some("1.0"), url)).await;
        assert_greet_frame(&frames(&r)[0], want, name);
        // The caller in main.js, next to it.
        let caller = &frames(&r)[1];
        assert_eq!(caller["abs_path"], "~/src/answers/paths/main.js", "{name}");
        assert_eq!(caller["filename"], "src/answers/paths/main.js", "{name}");
    }
}

/// A Node service: `/srv/app/dist/main.js` ran, its map (`../src/...` sources) was uploaded
/// in a debug-ID bundle under sentry-cli's storage names (`~/0.js`, `~/0.js.map`).
#[tokio::test]
async fn debug_id_sources_resolve_against_the_frame_that_ran() {
    let app = TestApp::new();
    let o = oracle();
    let id = o["node_debug_id"].as_str().unwrap();
    let c = case("answers-node");
    upload(
        &app,
        "unrelated",
        &[
            ("~/0.js", "js/out/answers-node/main.js"),
            ("~/0.js.map", "js/out/answers-node/main.js.map"),
        ],
    )
    .await;
    for (ran, root) in [
        ("/srv/app/dist/main.js", "/srv/app/"),
        ("app:///dist/main.js", "app:///"),
        (
            "https://example.com/app/dist/main.js?v=1",
            "https://example.com/app/",
        ),
    ] {
        let mut req = request(&c, None, ran);
        req["modules"] = json!([{"type": "sourcemap", "code_file": ran, "debug_id": id}]);
        let r = app.js("web", &req).await;
        let got = frames(&r);
        for (i, want) in c["frames"].as_array().unwrap().iter().enumerate() {
            let want = &want["original"];
            let file = want["file"].as_str().unwrap();
            let frame = &got[i];
            assert_eq!(frame["data"]["resolved_with"], "debug-id", "{frame:#}");
            assert_eq!(
                frame["abs_path"],
                format!("{root}{file}"),
                "{ran}: {frame:#}"
            );
            assert_eq!(frame["filename"], file, "{ran}");
            assert_eq!(frame["lineno"], want["line"], "{ran}");
            assert_eq!(frame["colno"], want["column"], "{ran}");
            let source = format!("js/src/answers/node/{}", file.trim_start_matches("src/"));
            assert_eq!(
                frame["context_line"],
                line_of(&source, want["line"].as_u64().unwrap()),
                "{ran}"
            );
        }
        assert_eq!(got[0]["function"], "validate");
        assert_eq!(got[1]["function"], "handle");
    }
}

#[tokio::test]
async fn release_lookups_keep_resolving_sources_against_the_stored_map_url() {
    // The stored URL is where the map really is: `../../src/…` from `~/static/answers-paths/`.
    let app = TestApp::new();
    let c = case("answers-paths");
    let url = c["url"].as_str().unwrap();
    upload(
        &app,
        "1.0",
        &[
            (url, "js/out/answers-paths/app.min.js"),
            (&format!("{url}.map"), "js/out/answers-paths/app.min.js.map"),
        ],
    )
    .await;
    let r = app
        .js(
            "web",
            &request(
                &c,
                Some("1.0"),
                "https://cdn.example.com/static/answers-paths/app.min.js",
            ),
        )
        .await;
    assert_greet_frame(
        &frames(&r)[0],
        "~/src/answers/paths/src dir/ä.js",
        "release",
    );
}

#[tokio::test]
async fn null_and_empty_sources_fall_back_to_the_minified_file() {
    let app = TestApp::new();
    let c = case("answers-nullsrc");
    let url = c["url"].as_str().unwrap();
    upload(
        &app,
        "1.0",
        &[
            (url, "js/out/answers-nullsrc/app.min.js"),
            (
                &format!("{url}.map"),
                "js/out/answers-nullsrc/app.min.js.map",
            ),
        ],
    )
    .await;
    let ran = "https://cdn.example.com/static/answers-nullsrc/app.min.js";
    let r = app.js("web", &request(&c, Some("1.0"), ran)).await;
    // `sources[0]` is null (ä.js), `sources[1]` is "" (main.js): positions still map.
    for (frame, want) in frames(&r).iter().zip(c["frames"].as_array().unwrap()) {
        let want = &want["original"];
        assert_eq!(frame["data"]["symbolicated"], true, "{frame:#}");
        assert_eq!(frame["abs_path"], ran, "{frame:#}");
        assert_eq!(frame["filename"], "/static/answers-nullsrc/app.min.js");
        assert_ne!(frame["data"]["sourcemap"], frame["abs_path"]);
        assert_eq!(frame["lineno"], want["line"]);
        assert_eq!(frame["colno"], want["column"]);
        // No original text to show: no context borrowed from elsewhere.
        assert!(
            frame.get("context_line").is_none_or(Value::is_null),
            "{frame:#}"
        );
    }
    for e in r["errors"].as_array().unwrap() {
        let d = e["diagnostic"].as_str().unwrap();
        assert!(!d.contains(".map"), "{d}");
    }
}

/// Sentry's `trim_line` (the rule its users know), restated here independently.
fn sentry_trim_line(line: &str, column: usize) -> String {
    let chars: Vec<char> = line.chars().collect();
    let len = chars.len();
    if len <= 150 {
        return line.to_owned();
    }
    let column = column.min(len);
    let mut start = column.saturating_sub(60);
    if start < 5 {
        start = 0;
    }
    let mut end = (start + 140).min(len);
    if end > len - 5 {
        end = len;
    }
    if end == len {
        start = end.saturating_sub(140);
    }
    let mut out: String = chars[start..end].iter().collect();
    if end < len {
        out.push_str(" {snip}");
    }
    if start > 0 {
        out = format!("{{snip}} {out}");
    }
    out
}

#[tokio::test]
async fn minified_file_without_a_map_gets_its_own_context() {
    let app = TestApp::new();
    let c = case("answers-nomap");
    let url = c["url"].as_str().unwrap();
    upload(&app, "1.0", &[(url, "js/out/answers-nomap/app.min.js")]).await;
    let ran = "https://cdn.example.com/static/answers-nomap/app.min.js";
    let r = app.js("web", &request(&c, Some("1.0"), ran)).await;
    let minified = text("js/out/answers-nomap/app.min.js");
    let lines: Vec<&str> = minified.lines().collect();
    for (frame, want) in frames(&r).iter().zip(c["frames"].as_array().unwrap()) {
        let (line, column) = (
            want["minified"]["line"].as_u64().unwrap() as usize,
            want["minified"]["column"].as_u64().unwrap() as usize,
        );
        assert_eq!(frame["data"]["symbolicated"], false);
        assert_eq!(frame["abs_path"], ran);
        assert_eq!(frame["lineno"], line);
        assert_eq!(frame["colno"], column);
        let context = sentry_trim_line(lines[line - 1], column - 1);
        assert!(context.contains("{snip}"), "the line is long: {context}");
        assert_eq!(frame["context_line"], context, "{frame:#}");
        let pre: Vec<&str> = lines[line.saturating_sub(6)..line - 1].to_vec();
        assert_eq!(frame["pre_context"], json!(pre));
        let post: Vec<&str> = lines[line..(line + 5).min(lines.len())].to_vec();
        assert_eq!(frame["post_context"], json!(post));
    }
    let errors = r["errors"].as_array().unwrap();
    assert!(!errors.is_empty());
    assert!(
        errors.iter().all(|e| e["type"] == "missing_sourcemap"),
        "{errors:#?}"
    );
}

#[tokio::test]
async fn dart2js_async_bodies_are_named_after_the_async_function() {
    let app = TestApp::new();
    let c = case("answers-dart");
    let url = c["url"].as_str().unwrap();
    upload(
        &app,
        "1.0",
        &[
            (url, "js/out/answers-dart/main.dart.js"),
            (
                &format!("{url}.map"),
                "js/out/answers-dart/main.dart.js.map",
            ),
            // dart2js maps carry no sourcesContent: the original is uploaded next to them.
            (
                "~/src/answers/dart/main.dart",
                "js/src/answers/dart/main.dart",
            ),
        ],
    )
    .await;
    let r = app.js("web", &request(&c, Some("1.0"), url)).await;
    let js = text("js/out/answers-dart/main.dart.js");
    let (mut checked, mut in_body) = (0, 0);
    for (frame, f) in frames(&r).iter().zip(c["frames"].as_array().unwrap()) {
        let Some(want) = f.get("original") else {
            continue;
        };
        checked += 1;
        // Inside `$async$hY`'s body: the hand-written lines starting `while(true)`.
        let line = f["minified"]["line"].as_u64().unwrap() as usize;
        let in_async_body = js
            .lines()
            .nth(line - 1)
            .is_some_and(|l| l.starts_with("while(true)"));
        in_body += usize::from(in_async_body);
        assert_eq!(
            frame["abs_path"], "~/src/answers/dart/main.dart",
            "{frame:#}"
        );
        assert_eq!(frame["filename"], "src/answers/dart/main.dart");
        let function = frame["function"].as_str().unwrap_or_default();
        if in_async_body {
            assert_eq!(function, want["function"], "{frame:#}");
        } else {
            // Outside async bodies, scope analysis keeps dart2js's holder object
            // (`A.loadUser`); the holder is not part of the item 5.
            assert_eq!(
                function.rsplit('.').next(),
                want["function"].as_str(),
                "{frame:#}"
            );
        }
        assert_eq!(frame["lineno"], want["line"]);
        assert_eq!(frame["colno"], want["column"]);
        assert_eq!(
            frame["context_line"],
            line_of(
                "js/src/answers/dart/main.dart",
                want["line"].as_u64().unwrap()
            )
        );
    }
    assert_eq!(checked, 3);
    assert_eq!(in_body, 1, "one frame is in the async body");
}

#[tokio::test]
async fn webpack_sources_keep_their_own_spelling() {
    let app = TestApp::new();
    crate::js::upload_bundle(&app, "web", "1.0", "webpack").await;
    let o = crate::js::oracle("webpack");
    let t = &o["thrown"][0];
    let url = format!(
        "https://cdn.example.com/{}",
        o["url"].as_str().unwrap().trim_start_matches("~/")
    );
    let r = app
        .js(
            "web",
            &request(&json!({"frames": t["frames"]}), Some("1.0"), &url),
        )
        .await;
    for (frame, want) in frames(&r).iter().zip(t["frames"].as_array().unwrap()) {
        let source = want["original"]["source"].as_str().unwrap();
        assert!(
            source.starts_with("webpack://tracemap-fixture/./"),
            "{source}"
        );
        assert_eq!(frame["abs_path"], source, "{frame:#}");
        assert_eq!(
            frame["filename"],
            source.trim_start_matches("webpack://tracemap-fixture/./")
        );
        assert!(frame["context_line"].is_string());
    }
}

/// Every diagnostic the JS path can give through HTTP, for a person to read: plain values
/// (no Rust debug formatting), one sentence.
#[tokio::test]
async fn every_diagnostic_reads_as_plain_sentences() {
    let app = TestApp::new();
    let js = fixture("js/out/esbuild/app.min.js");
    let tiny = tiny_map(None);
    let (nosc_js, nosc_map) = (
        fixture("js/out/esbuild-nosc/app.min.js"),
        fixture("js/out/esbuild-nosc/app.min.js.map"),
    );
    let id = "d37300e7-0300-5cd4-9d48-4822822d91b3";
    let other_id = "11111111-2222-3333-4444-555555555555";
    let by_ref = b"x();\n//# sourceMappingURL=maps/by-ref.js.map\n".to_vec();
    let bad_base64 =
        b"x();\n//# sourceMappingURL=data:application/json;base64,%%%not-base64%%%\n".to_vec();
    let bad_json = format!(
        "x();\n//# sourceMappingURL=data:application/json;base64,{}\n",
        "eyJ2ZXJzaW9uIjozLCJtYXBwaW5ncyI6IiIs" // `{"version":3,"mappings":"",` cut short
    );
    let own_id = format!("x();\n//# debugId={other_id}\n");
    let files: Vec<(&str, &[u8])> = vec![
        ("~/assets/app.min.js", &js),
        ("~/assets/by-ref.js", &by_ref),
        ("~/assets/inline-base64.js", &bad_base64),
        ("~/assets/inline-json.js", bad_json.as_bytes()),
        ("~/assets/own-id.js", own_id.as_bytes()),
        ("~/ok/app.js", b"boom();\n//# sourceMappingURL=app.js.map\n"),
        ("~/ok/app.js.map", &tiny),
        ("~/static/nosc/app.min.js", &nosc_js),
        ("~/static/nosc/app.min.js.map", &nosc_map),
    ];
    app.upload_release("web", "web@1.4.2", None, &files)
        .await
        .ok();
    let f = |path: &str, line: u32, col: Option<u32>| json!({"abs_path": path, "lineno": line, "colno": col});
    let nosc = crate::js::oracle("esbuild-nosc");
    let nosc_frame = &nosc["thrown"][0]["frames"][0]["minified"];
    let requests = [
        // No release and no debug ID; a debug ID that matches nothing.
        json!({"stacktraces": [{"frames": [f("~/assets/app.min.js", 1, Some(10))]}]}),
        json!({"stacktraces": [{"frames": [f("~/x.js", 1, Some(1))]}],
               "modules": [{"type": "sourcemap", "code_file": "~/x.js", "debug_id": id}]}),
        // A release nobody uploaded.
        json!({"release": "web@9.9.9", "dist": "android", "stacktraces": [{"frames": [f("~/assets/app.min.js", 1, Some(10))]}]}),
        json!({"release": "web@1.4.2", "stacktraces": [{"frames": [
            // Missing file, with similar names in the release.
            f("https://cdn.example.com/static/app.min.js?v=3", 1, Some(10)),
            // Missing map: by reference, by the sibling convention, by debug ID.
            f("~/assets/by-ref.js", 1, Some(1)),
            f("~/assets/app.min.js", 1, Some(10)),
            f("~/assets/own-id.js", 1, Some(1)),
            // Inline map errors.
            f("~/assets/inline-base64.js", 1, Some(1)),
            f("~/assets/inline-json.js", 1, Some(1)),
            // Invalid locations; no column; no mapping at the position. (A malformed
            // map file is refused at upload; `every_error_type_says_why` reaches one.)
            json!({"lineno": 1, "colno": 1}),
            f("~/ok/app.js", 1, None),
            f("~/ok/app.js", 0, Some(1)),
            f("~/ok/app.js", 500, Some(1)),
            // No sourcesContent and no uploaded original.
            f("~/static/nosc/app.min.js", nosc_frame["line"].as_u64().unwrap() as u32,
              Some(nosc_frame["column"].as_u64().unwrap() as u32)),
        ]}]}),
    ];
    let mut diagnostics = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    for req in &requests {
        let r = app.js("web", req).await;
        for e in r["errors"].as_array().unwrap() {
            kinds.insert(e["type"].as_str().unwrap().to_owned());
            diagnostics.push(e["diagnostic"].as_str().unwrap().to_owned());
        }
        for frame in r["stacktraces"][0]["frames"].as_array().unwrap() {
            if let Some(d) = frame["data"]["diagnostic"].as_str() {
                diagnostics.push(d.to_owned());
            }
        }
    }
    for kind in [
        "missing_source",
        "missing_sourcemap",
        "malformed_sourcemap",
        "invalid_base64_sourcemap",
        "invalid_location",
        "no_column",
        "missing_source_content",
    ] {
        assert!(kinds.contains(kind), "{kind} not provoked: {kinds:?}");
    }
    let mut bad = Vec::new();
    for d in &diagnostics {
        println!("{d}");
        let debug_formatting = ["(\"", "Some(", "None", "\\\"", "{ "];
        if debug_formatting.iter().any(|p| d.contains(p)) {
            bad.push(format!("debug formatting: {d}"));
        }
        // One sentence: no clauses glued with `;`, no trailing `.` pile-up, starts plainly.
        if d.contains("; ") || d.ends_with('.') || d.contains(": :") {
            bad.push(format!("not one sentence: {d}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
