//! CFI caches from every container format, and minidump reading on bad input.

use super::*;

fn cfi_of(file: &str) -> CfiFile {
    let bytes = build_cfi(&read(file), 0).unwrap_or_else(|e| panic!("{file}: {e}"));
    CfiFile::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn every_container_with_unwind_information_gives_cfi_records() {
    // ELF .eh_frame (also what strip keeps) and Breakpad STACK CFI records: the 12
    // functions of app.c and util.c (`readelf --debug-dump=frames` lists 12 FDEs).
    for file in ["out/c_dwarf5", "out/c_stripped_all", "out/c_dwarf5.sym"] {
        assert_eq!(cfi_of(file).ranges(), 12, "{file}");
    }
    // The Mach-O and PE fixtures are freestanding, built without unwind tables: a valid,
    // empty CFI cache (frames there fall back to frame pointers and scanning).
    for file in ["out/c_macho", "out/c_pe.exe", "out/c_pe.pdb"] {
        assert_eq!(cfi_of(file).ranges(), 0, "{file}");
    }
}

#[test]
fn a_separate_debug_file_has_no_eh_frame_of_its_own() {
    // objcopy --only-keep-debug leaves .eh_frame as NOBITS: the unwind rules are in the
    // stripped executable, which is why the service ranks executables first for CFI.
    assert_eq!(cfi_of("out/c_dwarf5.debug").ranges(), 0);
    assert_eq!(cfi_of("out/c_stripped_all").ranges(), 12);
}

#[test]
fn a_cache_of_another_version_or_garbage_is_rejected() {
    let mut bytes = build_cfi(&read("out/c_dwarf5"), 0).unwrap();
    assert!(CfiFile::parse(&bytes[1..]).is_err());
    bytes.splice(0..12, b"SOMETHING-EL".iter().copied());
    assert!(CfiFile::parse(&bytes).is_err());
    assert!(CfiFile::parse(b"").is_err());
}

#[test]
fn cfi_of_garbage_and_truncated_files_is_an_error_not_a_panic() {
    let elf = read("out/c_dwarf5");
    for cut in [0, 4, 64, 1000, elf.len() / 2] {
        let _ = build_cfi(&elf[..cut], 0);
    }
    assert!(build_cfi(b"not an object file at all", 0).is_err());
    assert!(matches!(
        build_cfi(&elf, 3),
        Err(NativeError::ObjectIndex { index: 3, .. })
    ));
}

#[test]
fn garbage_and_truncated_minidumps_are_errors() {
    assert!(read_modules(b"").is_err());
    assert!(read_modules(b"MDMP").is_err());
    assert!(read_modules(&[0u8; 4096]).is_err());
    assert!(walk(b"garbage", &Default::default()).is_err());
}

/// A minidump header and directory with one stream of `kind` holding `stream`.
fn dump_with_stream(kind: u32, stream: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(b"MDMP");
    d.extend_from_slice(&0xa793u32.to_le_bytes()); // version
    d.extend_from_slice(&1u32.to_le_bytes()); // stream count
    d.extend_from_slice(&32u32.to_le_bytes()); // directory RVA
    d.extend_from_slice(&[0u8; 16]); // checksum, time, flags
    d.extend_from_slice(&kind.to_le_bytes());
    d.extend_from_slice(&(stream.len() as u32).to_le_bytes());
    d.extend_from_slice(&44u32.to_le_bytes());
    d.extend_from_slice(stream);
    d
}

/// Found by `fuzz/fuzz_targets/minidump.rs` (`fuzz/regressions/minidump-handle-descriptors-oom.bin`):
/// a handle data stream of 2^32 - 1 descriptors of 0 bytes passes rust-minidump's bounds
/// check (count × 0 fits anywhere), and it reserves room for all of them before reading:
/// hundreds of GiB, so the allocation fails and the process aborts (no unwinding, no
/// `catch_unwind`). Before the check this test aborted the test binary.
#[test]
fn a_handle_stream_of_zero_byte_descriptors_is_refused_not_allocated() {
    let mut stream = Vec::new();
    stream.extend_from_slice(&12u32.to_le_bytes()); // size_of_header
    stream.extend_from_slice(&0u32.to_le_bytes()); // size_of_descriptor
    stream.extend_from_slice(&u32::MAX.to_le_bytes()); // number_of_descriptors
    let dump = dump_with_stream(0xc, &stream);
    let e = walk(&dump, &Default::default()).unwrap_err();
    assert!(e.to_string().contains("handle data stream"), "{e}");
    assert!(read_modules(&dump).is_err());
    // The fuzzer's own input (mode byte first).
    let found = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/regressions/minidump-handle-descriptors-oom.bin"
    ))
    .unwrap();
    assert!(walk(&found[1..], &Default::default()).is_err());
}

#[test]
fn crashpad_lists_longer_than_their_bytes_are_refused() {
    // MINIDUMP_CRASHPAD_INFO whose module list (at RVA 44 + 52) claims 2^30 links in 16 bytes.
    let mut stream = vec![0u8; 52];
    stream[44..48].copy_from_slice(&16u32.to_le_bytes());
    stream[48..52].copy_from_slice(&(44u32 + 52).to_le_bytes());
    stream.extend_from_slice(&(1u32 << 30).to_le_bytes());
    stream.extend_from_slice(&[0u8; 12]);
    let dump = dump_with_stream(0x4350_0001, &stream);
    let e = walk(&dump, &Default::default()).unwrap_err();
    assert!(e.to_string().contains("Crashpad module list"), "{e}");
}

/// Found by `fuzz/fuzz_targets/minidump.rs` (`fuzz/regressions/minidump-cfi-control-bytes.bin`): a
/// Breakpad file whose `STACK CFI` line holds control bytes (NUL, CR) made the whole CFI
/// cache unparseable (breakpad-symbols rejects a file for one bad line), so a cache we had
/// just built could not be read. Now the bad function's records are dropped, the rest kept.
#[test]
fn one_bad_stack_record_costs_only_its_function() {
    let sym = read("out/c_dwarf5.sym");
    let text = String::from_utf8(sym).unwrap();
    let mut bad = Vec::new();
    let mut broke = false;
    for line in text.lines() {
        if !broke && line.starts_with("STACK CFI ") && !line.starts_with("STACK CFI INIT ") {
            // A rule line of the first function with rules: its register name mangled.
            let addr = line.split_whitespace().nth(2).unwrap();
            bad.extend_from_slice(format!("STACK CFI {addr} .cfa").as_bytes());
            bad.extend_from_slice(b": $rsp 16 + \x01\x00\x00\r.ra: .cfa -8 + ^\n");
            broke = true;
            continue;
        }
        bad.extend_from_slice(line.as_bytes());
        bad.push(b'\n');
    }
    let cfi = CfiFile::parse(&build_cfi(&bad, 0).unwrap()).expect("a cache we built parses");
    assert_eq!(cfi.ranges(), 11);
    let found = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/regressions/minidump-cfi-control-bytes.bin"
    ))
    .unwrap();
    if let Ok(bytes) = build_cfi(&found[1..], 0) {
        CfiFile::parse(&bytes).expect("a cache we built parses");
    }
}

/// CFI of the formats the native fixtures lack unwind tables for, against the tools'
/// own listing of which functions have unwind information (`fixtures/unwind`: PE `.pdata`
/// from `llvm-objdump --unwind-info`, Mach-O compact unwind (x86_64 with `__eh_frame`,
/// arm64), ELF `.debug_frame` only from `readelf --debug-dump=frames`): the same function
/// starts, image-relative.
#[test]
fn pe_macho_and_debug_frame_unwind_info_covers_the_functions_the_tools_list() {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/unwind"));
    let oracle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("oracle/unwind.json")).unwrap()).unwrap();
    for file in [
        "out/pe_unwind.exe",
        "out/pe_unwind_rdata.exe",
        "out/macho_unwind",
        "out/macho_unwind_arm64",
        "out/elf_debug_frame",
    ] {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let cache = build_cfi(&bytes, 0).unwrap_or_else(|e| panic!("{file}: {e}"));
        let text = String::from_utf8_lossy(&cache);
        let mut ours: Vec<u64> = text
            .lines()
            .filter_map(|l| l.strip_prefix("STACK CFI INIT "))
            .filter_map(|l| u64::from_str_radix(l.split_whitespace().next()?, 16).ok())
            .collect();
        ours.sort_unstable();
        let mut expected: Vec<u64> = oracle["files"][file]["unwind_functions"]
            .as_array()
            .unwrap_or_else(|| panic!("{file} in the oracle"))
            .iter()
            .map(|f| {
                u64::from_str_radix(f["start"].as_str().unwrap().trim_start_matches("0x"), 16)
                    .unwrap()
            })
            .collect();
        expected.sort_unstable();
        assert!(!expected.is_empty(), "{file}");
        assert_eq!(ours, expected, "{file}");
        assert_eq!(
            CfiFile::parse(&cache).unwrap().ranges(),
            expected.len(),
            "{file}"
        );
    }
}

/// The walk's lookup budget ends every thread's walk once it is used up, and says so; the
/// real 20-thread dump stays far inside it.
#[test]
fn a_walk_stops_at_its_lookup_budget() {
    let dir = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/minidump/out"
    ));
    let program = std::fs::read(dir.join("c_threads20")).unwrap();
    let dump = std::fs::read(dir.join("c_threads20.dmp")).unwrap();
    let header = read_modules(&dump).unwrap();
    let base = header
        .modules
        .iter()
        .find(|m| m.code_file.ends_with("/c_threads20"))
        .unwrap()
        .base;
    let data = ModuleData {
        cfi: Some(std::sync::Arc::new(
            CfiFile::parse(&build_cfi(&program, 0).unwrap()).unwrap(),
        )),
        symbols: Some(std::sync::Arc::new(
            build_cache(&BuildInput::new(&program)).unwrap(),
        )),
    };
    let modules: std::collections::HashMap<u64, ModuleData> = [(base, data)].into();
    let full = walk(&dump, &modules).unwrap();
    assert!(!full.budget_exhausted);
    let frames = |w: &Walked| w.threads.iter().map(|t| t.frames.len()).sum::<usize>();
    assert!(frames(&full) > 100, "{}", frames(&full));
    let cut = super::super::minidump::walk_with(&dump, &modules, 20).unwrap();
    assert!(cut.budget_exhausted);
    assert!(
        frames(&cut) < frames(&full) / 2,
        "{} of {}",
        frames(&cut),
        frames(&full)
    );
    // Every thread still has its context frame.
    assert!(cut.threads.iter().all(|t| !t.frames.is_empty()));
}

/// Each list of a dump is read whole, a few hundred bytes per entry: a dump of 512 MiB of
/// 48-byte thread entries would take gigabytes. Counts past the limits are refused.
#[test]
fn lists_longer_than_any_real_dump_are_refused() {
    for (kind, count) in [
        (3u32, 1u32 << 20),
        (4, 1 << 17),
        (5, (1 << 20) + 1),
        (0x18, 1 << 20),
    ] {
        let mut stream = count.to_le_bytes().to_vec();
        stream.extend_from_slice(&[0u8; 64]);
        let dump = dump_with_stream(kind, &stream);
        let e = walk(&dump, &Default::default()).unwrap_err();
        assert!(e.to_string().contains("entries"), "{kind:#x}: {e}");
    }
    // The real dumps pass.
    let dir = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/minidump/out"
    ));
    for dump in ["c_threads20.dmp", "many_modules.dmp", "arm64_chain.dmp"] {
        read_modules(&std::fs::read(dir.join(dump)).unwrap()).unwrap();
    }
}
