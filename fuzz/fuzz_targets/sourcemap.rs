//! Source map parse + cache build + cache parse + lookups.
//!
//! Input: `minified JS \0 source map`, or a bare source map (no NUL byte: no minified file).
//! The raw input is also handed to `JsCache::parse` (caches are read back from disk).
#![no_main]

mod panics;

use libfuzzer_sys::fuzz_target;
use tracemap::js::{build_cache, JsCache};

fuzz_target!(|data: &[u8]| {
    panics::abort_on_own_panics();
    let _ = JsCache::parse(data).map(|c| exercise(&c));
    let (minified, map) = match data.iter().position(|&b| b == 0) {
        Some(i) => match std::str::from_utf8(&data[..i]) {
            Ok(m) => (Some(m), &data[i + 1..]),
            Err(_) => return,
        },
        None => (None, data),
    };
    let Ok(cache) = build_cache(minified, map) else {
        return;
    };
    let parsed = JsCache::parse(&cache).expect("a cache we just built parses");
    exercise(&parsed);
});

fn exercise(cache: &JsCache) {
    for (line, column) in [
        (0, 0),
        (1, 1),
        (1, 10),
        (1, 558),
        (2, 0),
        (5, 3),
        (u32::MAX, u32::MAX),
    ] {
        let _ = cache.lookup(line, column);
    }
    let _ = cache.scope_origins();
    let _ = cache.source("src/cart.js");
    for id in 0..cache.source_count().min(64) {
        let _ = cache.source_by_id(id);
        let _ = cache.has_source_content(id);
    }
    let _ = cache.token_count();
}
