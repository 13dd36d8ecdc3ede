//! Map shapes (index maps, Hermes, range mappings) and hostile maps: malformed, truncated,
//! huge offsets, random mutations. None may panic; each is an error or an answer.

use super::*;

#[test]
fn index_maps_are_flattened_and_sections_clipped() {
    // Section 1 starts at line 0, column 0; its map has a token at column 30, which lies past
    // section 2's offset (line 0, column 20) and is dropped, as trace-mapping drops it.
    let m = br#"{"version":3,"sections":[
        {"offset":{"line":0,"column":0},"map":{"version":3,"sources":["one.js"],"names":[],
            "sourcesContent":["one"],"mappings":"AAAA,UACA,UACA"}},
        {"offset":{"line":0,"column":20},"map":{"version":3,"sources":["two.js"],"names":["n"],
            "mappings":"AAAAA,KACA;AACA"}}
    ]}"#;
    let bytes = build(None, m);
    let c = JsCache::parse(&bytes).unwrap();
    assert_eq!(at(&c, 0, 0), loc("one.js", 1, 1));
    assert_eq!(at(&c, 0, 10), loc("one.js", 2, 1));
    assert_eq!(at(&c, 0, 19), loc("one.js", 2, 1));
    assert_eq!(at(&c, 0, 20), loc("two.js", 1, 1));
    assert_eq!(c.lookup(0, 20).unwrap().token_name, Some("n"));
    assert_eq!(at(&c, 0, 25), loc("two.js", 2, 1));
    assert_eq!(at(&c, 0, 40), loc("two.js", 2, 1));
    // Later lines of the second section are not shifted by its column offset.
    assert_eq!(at(&c, 1, 0), loc("two.js", 3, 1));
    assert_eq!(c.source("one.js"), Some("one"));
}

#[test]
fn index_map_with_url_sections_is_unsupported() {
    let m = br#"{"version":3,"sections":[{"offset":{"line":0,"column":0},"url":"a.js.map"}]}"#;
    assert!(matches!(
        build_cache(None, m),
        Err(JsError::UnsupportedSourceMap(_))
    ));
}

#[test]
fn hermes_function_maps_name_the_scopes() {
    // Two original functions: `<global>` from line 1 and `foo` from line 2 (1-based).
    let m = br#"{"version":3,"sources":["index.js"],"names":[],"mappings":"AAAA,EACI",
        "x_facebook_sources":[[{"names":["<global>","foo"],"mappings":"AAA,ACC"}]]}"#;
    let bytes = build(None, m);
    let c = JsCache::parse(&bytes).unwrap();
    assert!(c.scope_origins().hermes_function_maps);
    let l = c.lookup(0, 3).unwrap();
    assert_eq!((l.line, l.column), (2, 5));
    assert_eq!(l.function, Some("foo"));
    assert_eq!(c.lookup(0, 0).unwrap().function, Some("<global>"));
}

#[test]
fn range_mappings_advance_the_original_column() {
    let mut b = SourceMapBuilder::new(None);
    let id = b.add_source("r.js");
    b.add_raw(0, 10, 4, 2, Some(id), None, true);
    b.add_raw(0, 30, 5, 0, Some(id), None, false);
    let mut m = Vec::new();
    b.into_sourcemap().to_writer(&mut m).unwrap();
    let bytes = build(None, &m);
    let c = JsCache::parse(&bytes).unwrap();
    assert_eq!(at(&c, 0, 10), loc("r.js", 5, 3));
    assert_eq!(at(&c, 0, 15), loc("r.js", 5, 8));
    assert_eq!(at(&c, 0, 30), loc("r.js", 6, 1));
}

#[test]
fn malformed_maps_are_errors() {
    let cases: &[&[u8]] = &[
        b"",
        b"not json",
        b"[]",
        b"{\"version\":3,\"sources\":[\"a\"],\"names\":[],\"mappings\":\"AAAA,%%%\"}",
        b"{\"version\":3,\"sources\":[\"a\"],\"names\":[],\"mappings\":\"AAAAAA\"}",
        b"{\"version\":3,\"sources\":[\"a\"],\"names\":[],\"mappings\":\"ACAA\"}",
        b"{\"version\":3,\"sources\":[\"a\"],\"names\":[],\"mappings\":\"AAAAC\"}",
        b"{\"version\":3,\"sources\":[\"a\"],\"names\":[],\"mappings\":\"AAAA",
        b"\xff\xfe{}",
    ];
    for case in cases {
        match build_cache(Some("x"), case) {
            Err(JsError::MalformedSourceMap(_)) => {}
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(case)),
        }
    }
}

#[test]
fn huge_index_map_offsets_are_refused_not_allocated() {
    let m = br#"{"version":3,"sections":[{"offset":{"line":4000000000,"column":0},
        "map":{"version":3,"sources":["a"],"names":[],"mappings":"AAAA"}}]}"#;
    assert!(matches!(build_cache(None, m), Err(JsError::TooLarge(_))));
}

#[test]
fn empty_map_builds_an_empty_cache() {
    let bytes = build(
        Some(""),
        br#"{"version":3,"sources":[],"names":[],"mappings":""}"#,
    );
    let c = JsCache::parse(&bytes).unwrap();
    assert_eq!(c.lookup(0, 0), None);
    assert_eq!(c.source("a"), None);
}

/// A tiny deterministic generator, so the hostile-input tests need no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_maps_never_panic() {
    let base = br#"{"version":3,"sourceRoot":"x/","sources":["a.js","b.js"],"sourcesContent":["a\nb","c"],"names":["f","g"],"mappings":"AAAAA,CAACC,EACEC;AAAA,CCCC,GAAG;;AACAA"}"#;
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/,;\"{}[]:-!";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let mut m = base.to_vec();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(m.len());
            match rng.below(3) {
                0 => m[i] = alphabet[rng.below(alphabet.len())],
                1 => {
                    m.remove(i);
                }
                _ => m.insert(i, alphabet[rng.below(alphabet.len())]),
            }
        }
        if let Ok(bytes) = build_cache(Some("function f(){g()}\nf()"), &m) {
            let c = JsCache::parse(&bytes).unwrap();
            for line in 0..4 {
                for col in 0..12 {
                    if let Some(l) = c.lookup(line, col) {
                        let _ = c.source(l.abs_path);
                    }
                }
            }
        }
    }
}

#[test]
fn corrupt_caches_are_rejected_or_answer_without_panicking() {
    let m = map(
        &[("a.js", Some("one\ntwo\n")), ("b.js", None)],
        &[
            T(0, 0, Some(0), 0, 0, Some("f")),
            T(0, 4, Some(1), 1, 1, None),
            T(1, 0, Some(0), 1, 0, Some("g")),
        ],
    );
    let good = build(Some("f();g()\nh()"), &m);
    assert!(JsCache::parse(&good).is_ok());
    for len in 0..good.len() {
        assert!(JsCache::parse(&good[..len]).is_err(), "truncated to {len}");
    }
    let mut wrong_version = good.clone();
    wrong_version[4] = wrong_version[4].wrapping_add(1);
    assert!(matches!(
        JsCache::parse(&wrong_version),
        Err(JsError::WrongVersion { .. })
    ));
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let mut bytes = good.clone();
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(bytes.len());
            bytes[i] = rng.next() as u8;
        }
        if let Ok(c) = JsCache::parse(&bytes) {
            for (line, col) in [(0, 0), (0, 5), (1, 0), (1, 9), (7, 7)] {
                if let Some(l) = c.lookup(line, col) {
                    let _ = c.source(l.abs_path);
                    let _ = c.source_by_id(l.source_id);
                }
            }
            let _ = c.source("a.js");
        }
    }
}

#[test]
fn normalize_source_path_cases() {
    let cases = [
        (
            "webpack://app/./src/cart.ts",
            "webpack://app/src/cart.ts",
            "src/cart.ts",
        ),
        (
            "webpack:///./src/cart.js",
            "webpack:///src/cart.js",
            "src/cart.js",
        ),
        (
            "webpack:///src/a/../b.js?abc",
            "webpack:///src/b.js",
            "src/b.js",
        ),
        (
            "webpack://app/./src/x.vue?vue&type=script&lang=ts",
            "webpack://app/src/x.vue",
            "src/x.vue",
        ),
        (
            "webpack-internal:///(app-pages-browser)/./src/page.tsx",
            "webpack-internal:///(app-pages-browser)/src/page.tsx",
            "src/page.tsx",
        ),
        (
            "webpack-internal:///./src/a.js",
            "webpack-internal:///src/a.js",
            "src/a.js",
        ),
        (
            "webpack:///(webpack)/buildin/global.js",
            "webpack:///(webpack)/buildin/global.js",
            "(webpack)/buildin/global.js",
        ),
        (
            "turbopack:///[project]/src/app/page.tsx",
            "turbopack:///[project]/src/app/page.tsx",
            "src/app/page.tsx",
        ),
        ("../../src/cart.js", "../../src/cart.js", "src/cart.js"),
        ("./src/../lib/x.js", "lib/x.js", "lib/x.js"),
        ("src/cart.js", "src/cart.js", "src/cart.js"),
        (
            "/home/ci/app/src/a.js",
            "/home/ci/app/src/a.js",
            "/home/ci/app/src/a.js",
        ),
        (
            "https://cdn.example.com/static/./js/app.js#frag",
            "https://cdn.example.com/static/js/app.js",
            "/static/js/app.js",
        ),
        (
            "file:///build/src/a.js",
            "file:///build/src/a.js",
            "/build/src/a.js",
        ),
        ("", "", ""),
        ("..", "..", ".."),
    ];
    for (raw, abs, file) in cases {
        assert_eq!(
            normalize_source_path(raw),
            (abs.to_owned(), file.to_owned()),
            "{raw}"
        );
    }
}

#[test]
fn third_party_paths() {
    for p in [
        "../../node_modules/react/index.js",
        "webpack://app/./node_modules/lodash/map.js",
        "node_modules/x.js",
        "webpack:///webpack/bootstrap 3b5f1b0f8b3c",
        "webpack://app/webpack/runtime/define property getters",
        "webpack:///(webpack)/buildin/global.js",
        "webpack:///~/react/lib/React.js",
        "/app/vendor/jquery.js",
        "bower_components/a/b.js",
        "webpack://app/external commonjs \"react\"",
        "turbopack:///[turbopack]/browser/runtime.ts",
        "C:\\build\\node_modules\\react\\index.js",
        "webpack://app/~/react/index.js",
        "~/static/js/vendors~main.chunk.js",
        "https://cdn.example.com/assets/vendor~app.js",
        "~/node_modules/react/index.js",
        "webpack://app/webpack/bootstrap",
    ] {
        assert!(is_third_party(p), "{p}");
    }
    for p in [
        "../../src/cart.js",
        "webpack://app/./src/vendors.ts",
        "src/node_modules_helper.js",
        "webpack://app/./src/webpack.config.js",
        "https://cdn.example.com/app.js",
        // `~/` is sentry-cli's (and our) default URL prefix: the application's own files.
        "~/assets/src/cart/checkout.ts",
        "~/src/pricing.js",
        "~/vendors.js",
        "app:///src/main.js",
        "webpack://app/./src/bootstrap.js",
    ] {
        assert!(!is_third_party(p), "{p}");
    }
}

#[test]
fn source_context_takes_five_lines_each_side() {
    let text: String = (1..=20).map(|i| format!("line {i}\n")).collect();
    let ctx = source_context(&text, 10, 1, 5).unwrap();
    assert_eq!(ctx.context_line, "line 10");
    assert_eq!(
        ctx.pre_context,
        ["line 5", "line 6", "line 7", "line 8", "line 9"]
    );
    assert_eq!(
        ctx.post_context,
        ["line 11", "line 12", "line 13", "line 14", "line 15"]
    );
    let first = source_context(&text, 1, 1, 5).unwrap();
    assert!(first.pre_context.is_empty());
    assert_eq!(first.post_context.len(), 5);
    let last = source_context(&text, 20, 1, 5).unwrap();
    assert_eq!(last.post_context, Vec::<String>::new());
    assert!(source_context(&text, 21, 1, 5).is_none());
    assert!(source_context(&text, 0, 1, 5).is_none());
    assert!(source_context("", 1, 1, 5).is_none());
    let crlf = source_context("a\r\nb\r\nc", 2, 1, 5).unwrap();
    assert_eq!(
        (crlf.pre_context, crlf.context_line),
        (vec!["a".to_owned()], "b".to_owned())
    );
}

#[test]
fn source_context_trims_long_lines_like_sentry() {
    let long: String = (0..400)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let text = format!("{long}\n{long}\n");
    let ctx = source_context(&text, 2, 201, 5).unwrap();
    // 140 characters from column 200 - 60, with markers on both sides.
    assert_eq!(
        ctx.context_line,
        format!("{{snip}} {} {{snip}}", &long[140..280])
    );
    // Other lines are trimmed from their start.
    assert_eq!(ctx.pre_context, [format!("{} {{snip}}", &long[..140])]);
    // Near the end: the window is pushed back to keep 140 characters.
    let end = source_context(&text, 1, 399, 5).unwrap();
    assert_eq!(end.context_line, format!("{{snip}} {}", &long[260..]));
    // Multi-byte characters never split, columns count UTF-16 units.
    let wide = "é😀".repeat(100);
    let ctx = source_context(&wide, 1, 150, 5).unwrap();
    assert!(ctx.context_line.starts_with("{snip} "));
    assert_eq!(ctx.context_line.chars().count(), 140 + 14);
}

/// Found by `fuzz/fuzz_targets/sourcemap.rs` (`fuzz/regressions/sourcemap-hermes-src-line-max.map`):
/// a Hermes map (`x_facebook_sources`) whose token names original line `u32::MAX` (VLQ
/// `+/////H`). sourcemap's `get_scope_for_token` adds 1 to that line unchecked and panicked
/// with overflow checks on; such a token now gets no scope.
#[test]
fn hermes_scope_of_a_token_on_the_last_possible_line() {
    let map = br#"{"version": 3, "sources": ["a.js"], "names": [], "mappings": "AA+/////HA", "x_facebook_sources": [[{"names": ["<global>", "f"], "mappings": "AAA,CCC"}]]}"#;
    let cache = build(None, map);
    let cache = JsCache::parse(&cache).expect("parses");
    let found = cache.lookup(0, 0).or_else(|| cache.lookup(1, 1));
    assert!(found.is_some_and(|l| l.function.is_none()), "{found:?}");
}

/// Found by `fuzz/fuzz_targets/sourcemap.rs` (`fuzz/regressions/sourcemap-swc-parser-assert.bin`,
/// `minified \0 map`): a TypeScript `sourcesContent` that trips a debug assertion in swc's
/// expression parser. The map still builds, and the panic stays inside the scope parser.
#[test]
fn a_map_whose_original_source_trips_a_parser_assertion_still_builds() {
    let input = include_bytes!("../../../fuzz/regressions/sourcemap-swc-parser-assert.bin");
    let nul = input
        .iter()
        .position(|&b| b == 0)
        .expect("minified \\0 map");
    let minified = std::str::from_utf8(&input[..nul]).expect("UTF-8");
    let cache = build_cache(Some(minified), &input[nul + 1..]).expect("builds");
    assert!(JsCache::parse(&cache).is_ok());
}
