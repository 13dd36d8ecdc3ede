//! Debug-file detection and native cache build: ELF, Mach-O (fat too), PE, PDB, Breakpad,
//! WASM, split DWARF.
//!
//! Input: parts separated by `SEP`. The first part is the debug file; the others are given
//! both as split-DWARF `.dwo`/`.dwp` files and (the first of them) as the executable.
#![no_main]

mod panics;

use libfuzzer_sys::fuzz_target;
use tracemap::native::{build_cache, describe, is_debug_file, BuildInput, NativeCache};

const SEP: &[u8] = b"\0FUZZ-SEP\0";

fn split(mut data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    while let Some(i) = data.windows(SEP.len()).position(|w| w == SEP) {
        parts.push(&data[..i]);
        data = &data[i + SEP.len()..];
    }
    parts.push(data);
    parts
}

fuzz_target!(|data: &[u8]| {
    panics::abort_on_own_panics();
    let _ = NativeCache::parse(data).map(|c| exercise(&c));
    let parts = split(data);
    let debug_file = parts[0];
    let companions = &parts[1..];
    let _ = is_debug_file(debug_file);
    for part in companions {
        let _ = describe(part);
    }
    let objects = match describe(debug_file) {
        Ok(objects) => objects.len().max(1),
        Err(_) => 1,
    };
    for object_index in 0..objects.min(4) {
        let mut input = BuildInput {
            debug_file,
            object_index,
            executable: None,
            dwo_files: companions.to_vec(),
        };
        build_and_look_up(&input);
        if let Some(&exe) = companions.first() {
            input.executable = Some(exe);
            input.dwo_files.clear();
            build_and_look_up(&input);
        }
    }
});

fn build_and_look_up(input: &BuildInput) {
    let Ok(cache) = build_cache(input) else {
        return;
    };
    let parsed = NativeCache::parse(&cache).expect("a cache we just built parses");
    exercise(&parsed);
}

fn exercise(cache: &NativeCache) {
    let _ = cache.is_missing_split_dwarf();
    for addr in [
        0,
        1,
        0x1000,
        0x1139,
        0x1140,
        0x2000,
        0x10000,
        u64::MAX - 1,
        u64::MAX,
    ] {
        let _ = cache.lookup(addr);
    }
}
