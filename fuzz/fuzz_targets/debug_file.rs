//! Debug-file detection and native cache build: ELF, Mach-O (fat too), PE, PDB, Breakpad,
//! WASM, split DWARF.
//!
//! Input: parts separated by `SEP`. The first part is the debug file; the others are given
//! both as split-DWARF `.dwo`/`.dwp` files and (the first of them) as the executable.
#![no_main]

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

/// `build_cache` turns panics of the parsers below it (goblin, pdb, gimli, symbolic…) into
/// errors by design; libfuzzer-sys's hook would abort on them anyway. This hook aborts only on
/// panics located outside the cargo registry (our own code, or std called from it), and lets
/// the others unwind into `build_cache`'s guard. A dependency's panic that escapes the guard
/// still ends the run (libfuzzer-sys aborts on a panic out of the target).
fn abort_on_own_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_dependency = info
                .location()
                .is_some_and(|l| l.file().contains("/.cargo/registry/"));
            if !in_dependency {
                default(info);
                std::process::abort();
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    abort_on_own_panics();
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
