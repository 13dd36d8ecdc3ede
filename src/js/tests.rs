//! Tests of the JS lookup module: hand-made maps whose answers are known by construction,
//! hostile inputs. The real bundles under `fixtures/js` checked against
//! `@jridgewell/trace-mapping` and V8 are in `oracle_tests.rs`.

use sourcemap::SourceMapBuilder;
use symbolic::sourcemapcache::{SourceMapCache, SourceMapCacheWriter, SourcePosition};

use super::*;

/// One mapping: generated (line, column) → source index, original (line, column), name; all
/// 0-based as in the map.
struct T(u32, u32, Option<u32>, u32, u32, Option<&'static str>);

/// Writes a regular map with the given sources (path, content) and tokens.
fn map(sources: &[(&str, Option<&str>)], tokens: &[T]) -> Vec<u8> {
    let mut b = SourceMapBuilder::new(Some("min.js"));
    for (path, content) in sources {
        let id = b.add_source(path);
        b.set_source_contents(id, *content);
    }
    for t in tokens {
        let name = t.5.map(|n| b.add_name(n));
        b.add_raw(t.0, t.1, t.3, t.4, t.2, name, false);
    }
    let mut out = Vec::new();
    b.into_sourcemap().to_writer(&mut out).unwrap();
    out
}

fn build(minified: Option<&str>, map: &[u8]) -> Vec<u8> {
    build_cache(minified, map).unwrap_or_else(|e| panic!("build_cache: {e}"))
}

/// (path, 1-based line, 1-based column) of a lookup.
fn at(cache: &JsCache<'_>, line: u32, column: u32) -> Option<(String, u32, u32)> {
    cache
        .lookup(line, column)
        .map(|l| (l.abs_path.to_owned(), l.line, l.column))
}

fn loc(path: &str, line: u32, column: u32) -> Option<(String, u32, u32)> {
    Some((path.to_owned(), line, column))
}

#[test]
fn lookup_finds_the_nearest_token_on_the_same_line_only() {
    let m = map(
        &[("a.js", Some("x\ny\nz\n")), ("b.js", None)],
        &[
            T(0, 0, Some(0), 0, 0, None),
            T(0, 10, Some(0), 1, 4, Some("foo")),
            T(0, 20, Some(1), 7, 2, None),
            T(2, 5, Some(0), 2, 0, None),
        ],
    );
    let bytes = build(None, &m);
    let c = JsCache::parse(&bytes).unwrap();
    assert_eq!(at(&c, 0, 0), loc("a.js", 1, 1));
    assert_eq!(at(&c, 0, 9), loc("a.js", 1, 1));
    assert_eq!(at(&c, 0, 10), loc("a.js", 2, 5));
    assert_eq!(at(&c, 0, 15), loc("a.js", 2, 5));
    assert_eq!(at(&c, 0, 20), loc("b.js", 8, 3));
    // Past the end of the line: still the last token of that line.
    assert_eq!(at(&c, 0, 100_000), loc("b.js", 8, 3));
    // A line without tokens, a column before the line's first token, a line past the end.
    assert_eq!(at(&c, 1, 0), None);
    assert_eq!(at(&c, 2, 4), None);
    assert_eq!(at(&c, 2, 5), loc("a.js", 3, 1));
    assert_eq!(at(&c, 3, 0), None);
    assert_eq!(at(&c, u32::MAX, u32::MAX), None);

    let l = c.lookup(0, 12).unwrap();
    assert_eq!(l.token_name, Some("foo"));
    assert_eq!(l.function, None, "top-level code: no function name");
    assert_eq!(l.scope, JsScope::Unknown);
    assert!(l.has_source);
    assert!(!c.lookup(0, 20).unwrap().has_source);
    // a.js parses as JavaScript (top-level code only); nothing else gave scopes.
    let origins = c.scope_origins();
    assert!(origins.original_sources && !origins.minified_source);
    assert_eq!(c.token_count(), 4);
}

/// The case symbolic-sourcemapcache 13.9 gets wrong: a segment that is the first on its
/// generated line and repeats the previous segment's original position (esbuild writes these
/// for the continuation lines of multi-line template literals).
#[test]
fn repeated_first_segment_of_a_line_is_resolved() {
    let minified = "function f(a){return`x\n${a}\ny`}\n";
    let m = map(
        &[("t.js", Some("function f(a) {\n  return `x\n${a}\ny`;\n}\n"))],
        &[
            T(0, 0, Some(0), 0, 0, None),
            T(0, 14, Some(0), 1, 2, None),
            T(0, 20, Some(0), 1, 9, None),
            // Line 1 starts inside the template literal: same original position as before.
            T(1, 0, Some(0), 1, 9, None),
            T(1, 2, Some(0), 2, 2, Some("a")),
            T(1, 4, Some(0), 2, 4, None),
            T(2, 0, Some(0), 2, 4, None),
        ],
    );
    let bytes = build(Some(minified), &m);
    let c = JsCache::parse(&bytes).unwrap();
    assert_eq!(at(&c, 1, 0), loc("t.js", 2, 10));
    assert_eq!(at(&c, 1, 1), loc("t.js", 2, 10));
    assert_eq!(at(&c, 1, 2), loc("t.js", 3, 3));
    assert_eq!(at(&c, 2, 0), loc("t.js", 3, 5));
    assert_eq!(at(&c, 2, 7), loc("t.js", 3, 5));
    // The scope is carried onto the tokens symbolic dropped.
    assert_eq!(c.lookup(1, 0).unwrap().scope, JsScope::Named("f"));
    assert_eq!(c.lookup(2, 0).unwrap().scope, JsScope::Named("f"));

    // What symbolic's own cache answers for the same pair, for the record: if this starts
    // failing, symbolic fixed the bug and the workaround could be reconsidered.
    let mut smc = Vec::new();
    SourceMapCacheWriter::new(minified, std::str::from_utf8(&m).unwrap())
        .unwrap()
        .serialize(&mut smc)
        .unwrap();
    let smc = SourceMapCache::parse(&smc).unwrap();
    assert!(smc.lookup(SourcePosition::new(1, 0)).is_none());
    assert!(smc.lookup(SourcePosition::new(2, 0)).is_none());
}

#[test]
fn unmapped_segments_and_duplicate_positions() {
    let m = map(
        &[("a.js", None)],
        &[
            T(0, 0, Some(0), 0, 0, None),
            T(0, 5, None, 0, 0, None),
            T(0, 9, Some(0), 3, 3, None),
            // Two segments at the same position: the first one wins (as in trace-mapping).
            T(0, 12, Some(0), 4, 0, None),
            T(0, 12, Some(0), 9, 9, None),
        ],
    );
    let bytes = build(None, &m);
    let c = JsCache::parse(&bytes).unwrap();
    assert_eq!(at(&c, 0, 4), loc("a.js", 1, 1));
    assert_eq!(at(&c, 0, 5), None);
    assert_eq!(at(&c, 0, 8), None);
    assert_eq!(at(&c, 0, 9), loc("a.js", 4, 4));
    assert_eq!(at(&c, 0, 12), loc("a.js", 5, 1));
    assert_eq!(at(&c, 0, 13), loc("a.js", 5, 1));
}

#[test]
fn scope_names_come_from_the_minified_source() {
    // Original:
    //   class Cart {            // line 0
    //     addItem(sku) {        // line 1
    //       check(sku);         // line 2
    //     }
    //   }
    //   function check(v) {    // line 5
    //     list.forEach(() => { throw new Error(v); });   // line 6
    //   }
    let minified = "class a{b(c){d(c)}}function d(e){f.forEach(()=>{throw new Error(e)})}";
    let m = map(
        &[("cart.js", None)],
        &[
            T(0, 0, Some(0), 0, 0, None),
            T(0, 6, Some(0), 0, 6, Some("Cart")),
            T(0, 8, Some(0), 1, 2, Some("addItem")),
            T(0, 13, Some(0), 2, 4, Some("check")),
            T(0, 19, Some(0), 5, 0, None),
            T(0, 28, Some(0), 5, 9, Some("check")),
            T(0, 34, Some(0), 6, 2, Some("list")),
            T(0, 36, Some(0), 6, 7, Some("forEach")),
            T(0, 44, Some(0), 6, 15, None),
            T(0, 49, Some(0), 6, 23, None),
            T(0, 55, Some(0), 6, 29, None),
        ],
    );
    let bytes = build(Some(minified), &m);
    let c = JsCache::parse(&bytes).unwrap();
    assert!(c.scope_origins().minified_source);
    assert!(!c.scope_origins().original_sources);
    let call = c.lookup(0, 13).unwrap();
    assert_eq!((call.line, call.column), (3, 5));
    assert_eq!(call.scope, JsScope::Named("Cart.addItem"));
    assert_eq!(call.function, Some("Cart.addItem"));
    assert_eq!(call.token_name, Some("check"));
    let each = c.lookup(0, 36).unwrap();
    assert_eq!(each.function, Some("check"));
    let throw = c.lookup(0, 49).unwrap();
    assert_eq!(throw.scope, JsScope::Anonymous);
    assert_eq!(throw.function, None, "anonymous: not the token name");

    // The same map without the minified source: no scopes, token names only.
    let bytes = build(None, &m);
    let c = JsCache::parse(&bytes).unwrap();
    let call = c.lookup(0, 13).unwrap();
    assert_eq!(
        (call.scope, call.function, call.token_name),
        (JsScope::Unknown, None, Some("check"))
    );
}

#[test]
fn scope_names_prefer_the_original_source() {
    // The minifier dropped the name of the returned function expression.
    let original =
        "function outer() {\n  return function redeem(x) {\n    throw new Error(x);\n  };\n}\n";
    let minified = "function o(){return function(r){throw new Error(r)}}";
    let m = map(
        &[("coupon.js", Some(original))],
        &[
            T(0, 0, Some(0), 0, 0, None),
            T(0, 9, Some(0), 0, 9, Some("outer")),
            T(0, 20, Some(0), 1, 9, None),
            T(0, 32, Some(0), 2, 4, None),
        ],
    );
    let bytes = build(Some(minified), &m);
    let c = JsCache::parse(&bytes).unwrap();
    let origins = c.scope_origins();
    assert!(origins.original_sources && !origins.minified_source);
    let throw = c.lookup(0, 32).unwrap();
    assert_eq!((throw.line, throw.column), (3, 5));
    assert_eq!(throw.function, Some("redeem"));
    // Without the minified source the original source alone names it.
    let bytes = build(None, &m);
    let c = JsCache::parse(&bytes).unwrap();
    assert_eq!(c.lookup(0, 32).unwrap().function, Some("redeem"));
}

#[test]
fn top_level_code_of_a_parsed_source_has_no_scope() {
    // The bundler wrapped top-level code in an anonymous function; the original has none, and
    // a source that parsed is trusted over the minified code's wrapper.
    let m = map(
        &[("main.js", Some("start();\n"))],
        &[T(0, 12, Some(0), 0, 0, Some("start"))],
    );
    let bytes = build(Some("(function(){a()})();"), &m);
    let c = JsCache::parse(&bytes).unwrap();
    let l = c.lookup(0, 12).unwrap();
    assert_eq!(
        (l.scope, l.function, l.token_name),
        (JsScope::Unknown, None, Some("start"))
    );
    let origins = c.scope_origins();
    assert!(origins.original_sources && !origins.minified_source);
}

#[test]
fn source_lookup_prefers_the_exact_path() {
    let m = br#"{"version":3,"sources":["../a/src/x.js","src/x.js"],
        "sourcesContent":["from a","plain"],"names":[],"mappings":"AAAA,KCAA"}"#;
    let bytes = build(None, m);
    let c = JsCache::parse(&bytes).unwrap();
    assert_eq!(c.source("src/x.js"), Some("plain"));
    assert_eq!(c.source("../a/src/x.js"), Some("from a"));
    assert_eq!(c.source("a/src/x.js"), Some("from a"));
}

#[test]
fn sources_the_parser_rejects_fall_back_to_minified_scopes() {
    let typescript = "function pay(amount: number): never {\n  throw new Error(`${amount}`);\n}\n";
    let minified = "function a(b){throw new Error(`${b}`)}";
    let m = map(
        &[("pay.ts", Some(typescript))],
        &[
            T(0, 0, Some(0), 0, 0, None),
            T(0, 9, Some(0), 0, 9, Some("pay")),
            T(0, 14, Some(0), 1, 2, None),
        ],
    );
    let bytes = build(Some(minified), &m);
    let c = JsCache::parse(&bytes).unwrap();
    let origins = c.scope_origins();
    assert!(!origins.original_sources && origins.minified_source);
    assert_eq!(c.lookup(0, 14).unwrap().function, Some("pay"));
}

#[test]
fn unparsable_minified_source_still_builds() {
    let m = map(&[("a.js", None)], &[T(0, 0, Some(0), 0, 0, Some("x"))]);
    let bytes = build(Some("function ((( {"), &m);
    let c = JsCache::parse(&bytes).unwrap();
    assert_eq!(at(&c, 0, 3), loc("a.js", 1, 1));
    let l = c.lookup(0, 0).unwrap();
    assert_eq!((l.scope, l.token_name), (JsScope::Unknown, Some("x")));
}

#[test]
fn deeply_nested_minified_source_does_not_overflow_the_stack() {
    let depth = 20_000;
    let minified = format!("x={}1{};", "(".repeat(depth), ")".repeat(depth));
    let m = map(&[("a.js", None)], &[T(0, 0, Some(0), 0, 0, None)]);
    let bytes = build(Some(&minified), &m);
    let c = JsCache::parse(&bytes).unwrap();
    assert_eq!(at(&c, 0, 50), loc("a.js", 1, 1));
}

#[test]
fn sources_content_is_found_by_raw_normalized_and_display_path() {
    let m =
        br#"{"version":3,"sourceRoot":"webpack://app/","sources":["./src/cart.ts","./src/none.ts"],
        "sourcesContent":["export class Cart {}\n",null],"names":[],"mappings":"AAAA,KCAA"}"#;
    let bytes = build(None, m);
    let c = JsCache::parse(&bytes).unwrap();
    let l = c.lookup(0, 0).unwrap();
    assert_eq!(l.abs_path, "webpack://app/./src/cart.ts");
    assert_eq!(l.filename, "src/cart.ts");
    assert!(l.has_source);
    let text = Some("export class Cart {}\n");
    assert_eq!(c.source("webpack://app/./src/cart.ts"), text);
    assert_eq!(c.source("webpack://app/src/cart.ts"), text);
    assert_eq!(c.source("src/cart.ts"), text);
    assert_eq!(c.source_by_id(l.source_id), text);
    assert_eq!(c.source("src/cart"), None);
    assert_eq!(c.source("webpack://app/./src/none.ts"), None);
    assert_eq!(c.source(""), None);
    let none = c.lookup(0, 5).unwrap();
    assert!(!none.has_source);
    assert_eq!(c.source_count(), 2);
    assert_eq!(c.source_path(1), Some("webpack://app/./src/none.ts"));
}

#[test]
fn ignore_list_is_recorded() {
    let m = br#"{"version":3,"sources":["app.js","vendor.js"],"names":[],"mappings":"AAAA,KCAA",
        "ignoreList":[1]}"#;
    let bytes = build(None, m);
    let c = JsCache::parse(&bytes).unwrap();
    assert!(!c.lookup(0, 0).unwrap().ignore_listed);
    assert!(c.lookup(0, 5).unwrap().ignore_listed);
}

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
    ] {
        assert!(is_third_party(p), "{p}");
    }
    for p in [
        "../../src/cart.js",
        "webpack://app/./src/vendors.ts",
        "src/node_modules_helper.js",
        "webpack://app/./src/webpack.config.js",
        "https://cdn.example.com/app.js",
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
