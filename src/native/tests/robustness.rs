//! Damaged inputs: mutated debug files and caches must give an error or an answer, never a
//! panic out of `build_cache`/`parse`/`lookup`, and no panic from our own code at all.
//!
//! Test code only; it must stay deterministic (seeded), so any failure reproduces.

use super::read;
use crate::native::build::DwarfReader;
use crate::native::*;

/// Deterministic xorshift64*, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

thread_local! {
    /// Set while this thread runs damaged inputs: panics are recorded, not printed.
    static PANICS: std::cell::RefCell<Option<Vec<String>>> = const { std::cell::RefCell::new(None) };
}

/// Installs (once) a panic hook that records the location of panics on threads that asked
/// for it and defers to the default hook everywhere else.
fn record_panics_on_this_thread() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let recorded = PANICS.with(|panics| {
                let mut panics = panics.borrow_mut();
                match panics.as_mut() {
                    Some(list) => {
                        let location = info
                            .location()
                            .map(|l| format!("{}:{}", l.file(), l.line()))
                            .unwrap_or_default();
                        list.push(location);
                        true
                    }
                    None => false,
                }
            });
            if !recorded {
                default(info);
            }
        }));
    });
    PANICS.with(|panics| *panics.borrow_mut() = Some(Vec::new()));
}

/// Damaged debug files give an error or a cache and never panic out of `build_cache`. Panics
/// inside the parsers below us are turned into errors by `build_cache`'s guard; this test
/// checks that none of them comes from our own code.
#[test]
fn damaged_debug_files_do_not_panic() {
    record_panics_on_this_thread();
    let files = [
        "out/c_dwarf4",
        "out/c_dwarf5",
        "out/c_dwarf5.debug",
        "out/c_splitdwarf",
        "out/c_splitdwarf4",
        "out/c_gz_zlib",
        "out/c_gz_zlib_gnu",
        "out/cpp_dwarf5",
        "out/c_macho",
        "out/c_macho.dSYM/Contents/Resources/DWARF/c_macho",
        "out/c_pe.exe",
        "out/c_pe.pdb",
        "out/c_wasm.wasm",
        "out/c_dwarf5.sym",
        "out/c_pe.sym",
    ];
    let dwp = read("out/c_splitdwarf.dwp");
    let iterations: usize = std::env::var("NATIVE_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut outcomes = (0, 0);
    for file in files {
        let original = read(file);
        for i in 0..iterations {
            let mut data = original.clone();
            match i % 3 {
                // Truncate.
                0 => data.truncate(rng.below(data.len())),
                // Overwrite a few bytes with random values.
                1 => {
                    for _ in 0..1 + rng.below(8) {
                        let at = rng.below(data.len());
                        data[at] = rng.next() as u8;
                    }
                }
                // Overwrite a run with 0xff (large lengths and offsets).
                _ => {
                    let at = rng.below(data.len());
                    let end = (at + 1 + rng.below(16)).min(data.len());
                    data[at..end].fill(0xff);
                }
            }
            let mut input = BuildInput::new(&data);
            if file.contains("splitdwarf") {
                input.dwo_files = vec![&dwp];
            }
            if std::env::var("NATIVE_FUZZ_TRACE").is_ok() {
                eprintln!("{file} {i}"); // Names the variant if the process aborts.
            }
            let result = build_cache(&input);
            match result {
                Ok(bytes) => {
                    outcomes.0 += 1;
                    let cache = NativeCache::parse(&bytes).expect("our own cache parses");
                    for _ in 0..20 {
                        cache.lookup(rng.next() % 0x2000);
                    }
                }
                Err(_) => outcomes.1 += 1,
            }
        }
    }
    let panics = PANICS.with(|panics| panics.borrow_mut().take().unwrap_or_default());
    eprintln!(
        "damaged inputs: {} built, {} rejected ({} after a dependency panicked: {:?})",
        outcomes.0,
        outcomes.1,
        panics.len(),
        panics.iter().collect::<std::collections::BTreeSet<_>>()
    );
    let ours: Vec<_> = panics
        .iter()
        .filter(|p| p.contains("/src/native/"))
        .collect();
    assert!(ours.is_empty(), "panics in our code: {ours:?}");
}

/// Damaged caches are rejected by `parse` or answer lookups, never panic.
#[test]
fn damaged_caches_do_not_panic() {
    let bytes = build_cache(&BuildInput::new(&read("out/cpp_dwarf5"))).expect("build");
    let mut rng = Rng(42);
    for i in 0..2000 {
        let mut data = bytes.clone();
        match i % 3 {
            0 => data.truncate(rng.below(data.len())),
            1 => {
                let at = rng.below(data.len());
                data[at] = rng.next() as u8;
            }
            _ => {
                // Header fields: offsets and counts.
                let at = 16 + rng.below(64);
                data[at] = rng.next() as u8;
            }
        }
        if let Ok(cache) = NativeCache::parse(&data) {
            for _ in 0..20 {
                cache.lookup(rng.next() % 0x2000);
            }
        }
    }
}

/// Sets the `p_vaddr` of the first `PT_LOAD` program header of a little-endian ELF64.
fn set_first_load_vaddr(elf: &mut [u8], vaddr: u64) {
    let u16_at = |d: &[u8], at: usize| u16::from_le_bytes([d[at], d[at + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (entsize, count) = (u16_at(elf, 0x36), u16_at(elf, 0x38));
    let load = (0..count)
        .map(|i| phoff + i * entsize)
        .find(|&at| elf[at..at + 4] == 1u32.to_le_bytes())
        .expect("a PT_LOAD header");
    elf[load + 0x10..load + 0x18].copy_from_slice(&vaddr.to_le_bytes());
}

/// DWARF addresses are made relative by subtracting the load address. With a load address
/// inside a function (a forged program header), the function's start used to wrap around to
/// near `u64::MAX` while its end stayed small, and `end - begin` overflowed; line rows below
/// the base wrapped too and broke the sorted sequences. Rebasing is now checked: what would
/// fall below the base is dropped. Run unguarded, so a panic fails the test.
#[test]
fn a_load_address_inside_the_code_does_not_wrap_addresses() {
    let original = read("out/c_dwarf5");
    let mut built = 0;
    for vaddr in (0x1000..0x1400).step_by(8).chain([u64::MAX - 1, 1 << 63]) {
        let mut data = original.clone();
        set_first_load_vaddr(&mut data, vaddr);
        let input = BuildInput::new(&data);
        if let Ok(bytes) = crate::native::build::build_unguarded(&input, DwarfReader::Own) {
            built += 1;
            let cache = NativeCache::parse(&bytes).expect("our own cache parses");
            for addr in [0, 0x10, 0x100, 0x1000, u64::MAX] {
                cache.lookup(addr);
            }
        }
    }
    assert!(built > 0, "no variant built a cache");
}
