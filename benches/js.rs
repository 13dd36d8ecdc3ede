//! Benchmarks of the JS lookup module on the large fixture bundle (`fixtures/js/out/large`:
//! 1.2 MB minified, 4.5 MB map, 1459 sources; see fixtures/js/README.md):
//! - building our cache, per MB of map, against parsing the map with the `sourcemap` crate and
//!   against building symbolic's `SourceMapCache`;
//! - warm lookups per position, ours against `sourcemap::SourceMap::lookup_token` (alone, and
//!   with the token's source, name and position read, which our lookup also returns).
//!
//! Run: `cargo bench --bench js -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use symbolic::sourcemapcache::SourceMapCacheWriter;
use tracemap::js::{build_cache, JsCache};

struct Fixture {
    minified: String,
    map: Vec<u8>,
}

fn fixture() -> Fixture {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/js/out/large"
    ));
    Fixture {
        minified: std::fs::read_to_string(dir.join("app.min.js")).expect("large fixture"),
        map: std::fs::read(dir.join("app.min.js.map")).expect("large fixture map"),
    }
}

fn regular(map: &[u8]) -> sourcemap::SourceMap {
    match sourcemap::decode_slice(map).expect("map parses") {
        sourcemap::DecodedMap::Regular(sm) => sm,
        _ => panic!("the large fixture is a regular map"),
    }
}

fn build(c: &mut Criterion) {
    let f = fixture();
    let ours = build_cache(Some(&f.minified), &f.map).expect("build");
    let mut smc = Vec::new();
    SourceMapCacheWriter::new(&f.minified, std::str::from_utf8(&f.map).unwrap())
        .unwrap()
        .serialize(&mut smc)
        .unwrap();
    eprintln!(
        "sizes: map {} B, our cache {} B ({:.2}x), symbolic SourceMapCache {} B ({:.2}x)",
        f.map.len(),
        ours.len(),
        ours.len() as f64 / f.map.len() as f64,
        smc.len(),
        smc.len() as f64 / f.map.len() as f64,
    );

    let mut group = c.benchmark_group("js_build");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(f.map.len() as u64));
    group.bench_function("sourcemap_decode_slice", |b| {
        b.iter(|| sourcemap::decode_slice(black_box(&f.map)).unwrap())
    });
    group.bench_function("tracemap_build_cache", |b| {
        b.iter(|| build_cache(Some(black_box(&f.minified)), black_box(&f.map)).unwrap())
    });
    group.bench_function("tracemap_build_cache_without_minified", |b| {
        b.iter(|| build_cache(None, black_box(&f.map)).unwrap())
    });
    group.bench_function("symbolic_sourcemapcache_build", |b| {
        let map = std::str::from_utf8(&f.map).unwrap();
        b.iter(|| {
            let mut out = Vec::new();
            SourceMapCacheWriter::new(black_box(&f.minified), black_box(map))
                .unwrap()
                .serialize(&mut out)
                .unwrap();
            out
        })
    });
    group.finish();
}

fn lookup(c: &mut Criterion) {
    let f = fixture();
    let bytes = build_cache(Some(&f.minified), &f.map).expect("build");
    let sm = regular(&f.map);
    // 10 000 positions spread over the map: every token's own column, and every other one
    // a column inside the token's range.
    let count = sm.get_token_count() as usize;
    let positions: Vec<(u32, u32)> = (0..10_000)
        .filter_map(|i| {
            let token = sm.get_token(i * count / 10_000)?;
            let (line, col) = token.get_dst();
            Some((line, col + (i as u32 % 2) * 3))
        })
        .collect();

    let mut group = c.benchmark_group("js_lookup");
    group.throughput(Throughput::Elements(positions.len() as u64));
    group.bench_function("tracemap_lookup", |b| {
        let cache = JsCache::parse(&bytes).unwrap();
        b.iter(|| {
            for &(line, col) in &positions {
                black_box(cache.lookup(black_box(line), black_box(col)));
            }
        })
    });
    group.bench_function("sourcemap_lookup_token", |b| {
        b.iter(|| {
            for &(line, col) in &positions {
                black_box(sm.lookup_token(black_box(line), black_box(col)));
            }
        })
    });
    // The same, also reading what our lookup returns (source path, name, original position).
    group.bench_function("sourcemap_lookup_token_resolved", |b| {
        b.iter(|| {
            for &(line, col) in &positions {
                if let Some(token) = sm.lookup_token(black_box(line), black_box(col)) {
                    black_box((
                        token.get_source(),
                        token.get_name(),
                        token.get_src_line(),
                        token.get_src_col(),
                    ));
                }
            }
        })
    });
    group.finish();

    c.bench_function("js_cache_parse", |b| {
        b.iter(|| JsCache::parse(black_box(&bytes)).unwrap())
    });
}

criterion_group!(benches, build, lookup);
criterion_main!(benches);
