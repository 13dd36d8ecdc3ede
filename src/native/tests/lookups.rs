//! What lookups return on the fixtures: names, paths, languages, symbol-only frames, misses,
//! degraded split DWARF, errors, fat Mach-O selection, cache versioning, embedded sources.
//!
//! Test code only; the oracle comparison lives in `oracle.rs`.

use super::{cache_for, read};
use crate::native::*;

#[test]
fn frames_carry_symbol_demangled_name_paths_and_language() {
    let bytes = cache_for("out/cpp_dwarf5");
    let cache = NativeCache::parse(&bytes).expect("parse");
    assert_eq!(cache.arch(), "x86_64");
    let frames = cache.lookup(0x109f);
    assert_eq!(
        frames,
        vec![
            NativeFrame {
                function: "tracemap::stats::scale<long>(long, int)".into(),
                symbol: Some("_ZN8tracemap5stats5scaleIlEET_S2_i".into()),
                sym_addr: 0x1040,
                abs_path: Some("/build/src/cpp/app.cpp".into()),
                filename: Some("src/cpp/app.cpp".into()),
                lineno: Some(93),
                lang: Some("cpp".into()),
            },
            NativeFrame {
                function: "main".into(),
                symbol: Some("main".into()),
                sym_addr: 0x1040,
                abs_path: Some("/build/src/cpp/app.cpp".into()),
                filename: Some("src/cpp/app.cpp".into()),
                lineno: Some(121),
                lang: Some("cpp".into()),
            },
        ]
    );
}

#[test]
fn rust_names_are_demangled_without_hash_and_filenames_are_relative_to_the_unit() {
    let bytes = cache_for("out/rust_app");
    let cache = NativeCache::parse(&bytes).expect("parse");
    let frames = cache.lookup(0x13b87);
    let names: Vec<_> = frames.iter().map(|f| f.function.as_str()).collect();
    assert_eq!(
        names,
        [
            "<u64>::wrapping_mul",
            "main::mul_checked",
            "<main::Tri as main::Shape>::area"
        ]
    );
    assert_eq!(
        frames[2].symbol.as_deref(),
        Some("_ZN41_$LT$main..Tri$u20$as$u20$main..Shape$GT$4area17hb1c83746337a2909E")
    );
    // std code inlined into the main crate is not below the unit's compilation directory
    // (/build): base name.
    assert_eq!(frames[0].filename.as_deref(), Some("uint_macros.rs"));
    assert_eq!(frames[1].filename.as_deref(), Some("src/rust/main.rs"));
    assert!(frames
        .iter()
        .all(|f| f.lang.as_deref() == Some("rust") && f.sym_addr == 0x13b80));
}

#[test]
fn symbol_table_only_frames_have_no_location() {
    let bytes = cache_for("out/c_symtab");
    let cache = NativeCache::parse(&bytes).expect("parse");
    let frames = cache.lookup(0x1190);
    assert_eq!(frames.len(), 1, "{frames:?}");
    let frame = &frames[0];
    assert_eq!(frame.function, "op_add");
    assert_eq!(frame.symbol.as_deref(), Some("op_add"));
    assert_eq!(frame.sym_addr, 0x1180);
    assert_eq!(
        (&frame.abs_path, &frame.filename, frame.lineno),
        (&None, &None, None)
    );
}

#[test]
fn addresses_outside_functions_resolve_to_nothing() {
    let bytes = cache_for("out/c_dwarf5");
    let cache = NativeCache::parse(&bytes).expect("parse");
    // ELF header, PLT stub, padding after op_add, .rodata, past the end, u32 overflow.
    for addr in [
        0x0,
        0x1020,
        0x1196,
        0x2000,
        0x1385,
        0xffff_fff0,
        0x1_0000_1180,
    ] {
        assert_eq!(cache.lookup(addr), Vec::new(), "{addr:#x}");
    }
    assert!(!cache.lookup(0x1180).is_empty());
}

#[test]
fn split_dwarf_without_its_dwo_degrades_to_lines_and_says_so() {
    let exe = read("out/c_splitdwarf");
    let full = build_cache(&BuildInput {
        dwo_files: vec![&read("out/c_splitdwarf.dwp")],
        ..BuildInput::new(&exe)
    })
    .expect("build");
    assert!(!NativeCache::parse(&full)
        .expect("parse")
        .is_missing_split_dwarf());
    // The DWARF 4 package belongs to another binary: ignored.
    let wrong = read("out/c_splitdwarf4.dwp");
    let bytes = build_cache(&BuildInput {
        dwo_files: vec![&wrong],
        ..BuildInput::new(&exe)
    })
    .expect("build");
    let cache = NativeCache::parse(&bytes).expect("parse");
    assert!(cache.is_missing_split_dwarf());
    // 0x105f is square:12 <- poly:17 <- main:70 with the .dwp. Without it, the skeleton's line
    // table still gives the innermost line, attributed to the symbol (as llvm-symbolizer does).
    let frames = cache.lookup(0x105f);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(
        (frames[0].function.as_str(), frames[0].lineno),
        ("main", Some(12))
    );
    assert_eq!(frames[0].abs_path.as_deref(), Some("/build/src/c/app.c"));
}

#[test]
fn errors_say_what_is_wrong() {
    assert!(matches!(
        build_cache(&BuildInput::new(b"definitely not a debug file")),
        Err(NativeError::Unsupported(_))
    ));
    let mut truncated = read("out/c_dwarf5");
    truncated.truncate(100);
    assert!(build_cache(&BuildInput::new(&truncated)).is_err());
    let data = read("out/c_dwarf5");
    let input = BuildInput {
        object_index: 1,
        ..BuildInput::new(&data)
    };
    assert!(matches!(
        build_cache(&input),
        Err(NativeError::ObjectIndex { index: 1, count: 1 })
    ));
}

/// A fat (universal) Mach-O around the dSYM's DWARF file: `object_index` picks the slice.
#[test]
fn fat_mach_o_objects_are_selected_by_index() {
    let thin = read("out/c_macho.dSYM/Contents/Resources/DWARF/c_macho");
    let offset = 0x1000usize;
    let mut fat = Vec::new();
    fat.extend_from_slice(&0xcafe_babe_u32.to_be_bytes());
    fat.extend_from_slice(&1u32.to_be_bytes());
    fat.extend_from_slice(&0x0100_0007_u32.to_be_bytes()); // CPU_TYPE_X86_64
    fat.extend_from_slice(&3u32.to_be_bytes()); // CPU_SUBTYPE_X86_64_ALL
    fat.extend_from_slice(&(offset as u32).to_be_bytes());
    fat.extend_from_slice(&(thin.len() as u32).to_be_bytes());
    fat.extend_from_slice(&12u32.to_be_bytes()); // 2^12 alignment
    fat.resize(offset, 0);
    fat.extend_from_slice(&thin);

    let bytes = build_cache(&BuildInput::new(&fat)).expect("build");
    let cache = NativeCache::parse(&bytes).expect("parse");
    let direct = cache_for("out/c_macho.dSYM/Contents/Resources/DWARF/c_macho");
    let direct = NativeCache::parse(&direct).expect("parse");
    for addr in (0..0x800).step_by(3) {
        assert_eq!(cache.lookup(addr), direct.lookup(addr), "{addr:#x}");
    }
    let input = BuildInput {
        object_index: 1,
        ..BuildInput::new(&fat)
    };
    assert!(matches!(
        build_cache(&input),
        Err(NativeError::ObjectIndex { index: 1, count: 1 })
    ));
}

#[test]
fn caches_of_another_version_or_misaligned_are_rejected() {
    let bytes = cache_for("out/c_dwarf5");
    assert!(NativeCache::parse(&bytes).is_ok());

    let mut other_version = bytes.clone();
    other_version[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    assert!(matches!(
        NativeCache::parse(&other_version),
        Err(NativeError::InvalidCache(message)) if message.contains("version")
    ));

    // Copy into a buffer at an odd address.
    let mut shifted = vec![0u8; bytes.len() + 1];
    shifted[1..].copy_from_slice(&bytes);
    assert!(NativeCache::parse(&shifted[1..]).is_err());

    assert!(NativeCache::parse(b"TMNATIVE").is_err());
    assert!(NativeCache::parse(&[]).is_err());
}

/// Embedded sources are found under the path a lookup reports, and under any spelling of it
/// that cleans to the same path: both sides go through symbolic's `join_path`/`clean_path`.
#[test]
fn embedded_sources_are_found_by_the_path_lookups_report() {
    let data = read("out/c_embedsrc");
    assert!(has_embedded_sources(&data));
    let bytes = build_cache(&BuildInput::new(&data)).expect("build");
    let cache = NativeCache::parse(&bytes).expect("parse");
    let path = (0x1100u64..0x1400)
        .flat_map(|addr| cache.lookup(addr))
        .find_map(|frame| frame.abs_path)
        .expect("a frame with a path");
    let source = embedded_source(&data, &path).expect("read");
    assert!(source.is_some_and(|text| !text.is_empty()), "{path}");
    let (dir, file) = path.rsplit_once('/').expect("absolute path");
    let spelled = format!("{dir}/./sub/../{file}");
    assert_eq!(
        embedded_source(&data, &spelled).expect("read"),
        embedded_source(&data, &path).expect("read")
    );
    assert_eq!(embedded_source(&data, "/nowhere/x.c").expect("read"), None);
}
