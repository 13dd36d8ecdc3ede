//! Native lookup benchmarks (criterion; `cargo bench --bench native`).
//!
//! - `build`: `build_cache` on real fixtures, throughput in bytes of DWARF sections read.
//! - `lookup`: warm lookups of the same 10 000 addresses in `rust_app` (4.2 MB, DWARF 4, inline
//!   chains up to 13 deep) with our cache and with the `addr2line` crate's
//!   `Context::find_frames` on the same file, all producing demangled names, files and lines.
//!   Our cache stores names demangled at build time, so the like-for-like comparison is
//!   `addr2line_crate_predemangled`: `find_frames` with every name demangled once beforehand
//!   (a table keyed by the raw name, filled during the warm-up), as our build does.
//!   `addr2line_crate_demangle_per_lookup` demangles in every lookup, which is how the crate is
//!   usually called, but measures the demangler as much as the lookup.
//! - `parse`: `NativeCache::parse` of a cache already in memory.
//!
//! The address list is also written to `$TMPDIR/tracemap-native-bench-addrs.txt` (one hex
//! address per line) so the `llvm-symbolizer` and binutils `addr2line` processes can be timed
//! on the same input outside criterion.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use object::{Object, ObjectSection};
use tracemap::native::{build_cache, BuildInput, NativeCache};

fn fixture(relative: &str) -> Vec<u8> {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/native")
        .join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Total size of the (uncompressed) `.debug_*` sections.
fn debug_info_bytes(data: &[u8]) -> u64 {
    let file = object::File::parse(data).expect("object file");
    file.sections()
        .filter(|s| {
            s.name()
                .is_ok_and(|n| n.starts_with(".debug_") || n.starts_with(".zdebug_"))
        })
        .filter_map(|s| s.uncompressed_data().ok().map(|d| d.len() as u64))
        .sum()
}

/// 10 000 addresses inside `.text`: every 7th byte of the first functions, then a
/// deterministic pseudo-random spread over the whole section.
fn addresses(data: &[u8]) -> Vec<u64> {
    let file = object::File::parse(data).expect("object file");
    let text = file.section_by_name(".text").expect(".text");
    let (start, size) = (text.address(), text.size());
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut out: Vec<u64> = (0..2_000).map(|i| start + (i * 7) % size).collect();
    while out.len() < 10_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push(start + state % size);
    }
    out
}

fn bench_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for name in ["rust_app", "cpp_dwarf5"] {
        let data = fixture(&format!("out/{name}"));
        group.throughput(Throughput::Bytes(debug_info_bytes(&data)));
        group.bench_with_input(BenchmarkId::new("elf_dwarf", name), &data, |b, data| {
            b.iter(|| build_cache(&BuildInput::new(data)).expect("build"))
        });
    }
    let exe = fixture("out/c_splitdwarf");
    let dwp = fixture("out/c_splitdwarf.dwp");
    group.throughput(Throughput::Bytes(
        debug_info_bytes(&exe) + debug_info_bytes(&dwp),
    ));
    group.bench_function("split_dwarf/c_splitdwarf+dwp", |b| {
        b.iter(|| {
            let input = BuildInput {
                dwo_files: vec![&dwp],
                ..BuildInput::new(&exe)
            };
            build_cache(&input).expect("build")
        })
    });
    group.finish();
}

fn bench_lookup(c: &mut Criterion) {
    let data = fixture("out/rust_app");
    let addrs = addresses(&data);
    let list: String = addrs.iter().map(|a| format!("{a:#x}\n")).collect();
    let list_path = std::env::temp_dir().join("tracemap-native-bench-addrs.txt");
    if std::fs::write(&list_path, list).is_ok() {
        eprintln!("address list: {}", list_path.display());
    }

    let cache_bytes = build_cache(&BuildInput::new(&data)).expect("build");
    let cache = NativeCache::parse(&cache_bytes).expect("parse");
    let resolved = addrs
        .iter()
        .filter(|&&a| !cache.lookup(a).is_empty())
        .count();
    let frames: usize = addrs.iter().map(|&a| cache.lookup(a).len()).sum();
    eprintln!(
        "rust_app: {} of {} addresses resolve, {frames} frames in total",
        resolved,
        addrs.len()
    );

    // addr2line: same file, its own DWARF parsing; warmed up on every address first (it parses
    // units and functions lazily).
    let file = object::File::parse(&*data).expect("object");
    let endian = if file.is_little_endian() {
        addr2line::gimli::RunTimeEndian::Little
    } else {
        addr2line::gimli::RunTimeEndian::Big
    };
    let sections = addr2line::gimli::DwarfSections::load(|id| {
        Ok::<_, addr2line::gimli::Error>(
            file.section_by_name(id.name())
                .and_then(|s| s.uncompressed_data().ok())
                .unwrap_or(Cow::Borrowed(&[])),
        )
    })
    .expect("sections");
    let dwarf = sections.borrow(|s| addr2line::gimli::EndianSlice::new(s, endian));
    let context = addr2line::Context::from_dwarf(dwarf).expect("context");
    let addr2line_lookup = |addr: u64| -> usize {
        let mut count = 0;
        let mut frames = context.find_frames(addr).skip_all_loads().expect("frames");
        while let Ok(Some(frame)) = frames.next() {
            let function = frame.function.as_ref().and_then(|f| f.demangle().ok());
            let file = frame.location.as_ref().and_then(|l| l.file);
            let line = frame.location.as_ref().and_then(|l| l.line);
            black_box((function, file, line));
            count += 1;
        }
        count
    };
    let a2l_frames: usize = addrs.iter().map(|&a| addr2line_lookup(a)).sum();
    eprintln!("addr2line crate: {a2l_frames} frames in total");
    // Every function name the addresses reach, demangled once (what our build does).
    let mut demangled: HashMap<&[u8], String> = HashMap::new();
    for &addr in &addrs {
        let mut frames = context.find_frames(addr).skip_all_loads().expect("frames");
        while let Ok(Some(frame)) = frames.next() {
            if let Some(function) = &frame.function {
                let name = function
                    .demangle()
                    .map(|n| n.into_owned())
                    .unwrap_or_default();
                demangled.insert(function.name.slice(), name);
            }
        }
    }
    let addr2line_predemangled = |addr: u64| -> usize {
        let mut count = 0;
        let mut frames = context.find_frames(addr).skip_all_loads().expect("frames");
        while let Ok(Some(frame)) = frames.next() {
            let function = frame
                .function
                .as_ref()
                .and_then(|f| demangled.get(f.name.slice()));
            let file = frame.location.as_ref().and_then(|l| l.file);
            let line = frame.location.as_ref().and_then(|l| l.line);
            black_box((function, file, line));
            count += 1;
        }
        count
    };

    let mut group = c.benchmark_group("lookup");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(addrs.len() as u64));
    group.bench_function("tracemap/rust_app", |b| {
        b.iter(|| {
            for &addr in &addrs {
                black_box(cache.lookup(addr));
            }
        })
    });
    group.bench_function("addr2line_crate_predemangled/rust_app", |b| {
        b.iter(|| {
            for &addr in &addrs {
                black_box(addr2line_predemangled(addr));
            }
        })
    });
    group.bench_function("addr2line_crate_demangle_per_lookup/rust_app", |b| {
        b.iter(|| {
            for &addr in &addrs {
                black_box(addr2line_lookup(addr));
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("parse");
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("rust_app", |b| {
        b.iter(|| NativeCache::parse(black_box(&cache_bytes)).expect("parse"))
    });
    group.finish();
}

criterion_group!(benches, bench_build, bench_lookup);
criterion_main!(benches);
