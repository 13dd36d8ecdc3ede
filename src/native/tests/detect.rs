//! Describing debug files without building a cache: formats, IDs, features, DWO IDs of split
//! DWARF, ELF debug IDs from build IDs, wasm function bodies.
//!
//! Test code only.

use super::read;
use crate::native::*;

#[test]
fn describe_reports_ids_and_features() {
    let objects = describe(&read("out/c_dwarf5")).expect("describe");
    assert_eq!(objects.len(), 1);
    let elf = &objects[0];
    assert_eq!(
        elf.debug_id.map(|id| id.to_string()).as_deref(),
        Some("339d67d0-6e29-287b-2408-1344f4ea7744")
    );
    assert_eq!(
        elf.code_id.as_ref().map(|id| id.as_str()),
        Some("d0679d33296e7b2824081344f4ea774400bc85b9")
    );
    assert_eq!(
        (elf.format, elf.arch.as_str()),
        (crate::kinds::DebugFileFormat::Elf, "x86_64")
    );
    assert!(elf.features.debug && elf.features.symtab && elf.features.unwind);

    let stripped = &describe(&read("out/c_stripped_all")).expect("describe")[0];
    assert_eq!(stripped.debug_id, elf.debug_id);
    assert!(!stripped.features.debug);

    let pdb = &describe(&read("out/c_pe.pdb")).expect("describe")[0];
    let pe = &describe(&read("out/c_pe.exe")).expect("describe")[0];
    assert_eq!(pdb.debug_id, pe.debug_id);
    assert_eq!(pdb.format, crate::kinds::DebugFileFormat::Pdb);

    assert!(!is_debug_file(b"nope"));
    assert_eq!(describe(b"nope"), Err(DetectError::UnknownFormat));
}

/// Split DWARF: a package provides exactly the DWO IDs its executable's skeletons need (DWARF 5
/// and the GNU DWARF 4 extension), and so do its loose `.dwo` files together.
#[test]
fn describe_lists_dwo_ids_of_packages_units_and_skeletons() {
    for name in ["c_splitdwarf", "c_splitdwarf4"] {
        let exe = &describe(&read(&format!("out/{name}"))).expect("exe")[0];
        assert_eq!(exe.dwo_ids.len(), 2, "{name}");
        let dwp = &describe(&read(&format!("out/{name}.dwp"))).expect("dwp")[0];
        assert_eq!(
            (dwp.format, dwp.object_kind.as_str()),
            (crate::kinds::DebugFileFormat::SplitDwarf, "dwp")
        );
        assert_eq!(dwp.dwo_ids, exe.dwo_ids, "{name}.dwp");
        let mut loose: Vec<String> = ["app", "util"]
            .iter()
            .flat_map(|unit| {
                let dwo = describe(&read(&format!("out/{name}-{unit}.dwo"))).expect("dwo");
                assert_eq!(dwo[0].object_kind, crate::kinds::ObjectKind::Dwo);
                assert_eq!(
                    dwo[0].debug_id,
                    Some(dwo_debug_id(
                        u64::from_str_radix(&dwo[0].dwo_ids[0], 16).expect("hex")
                    ))
                );
                dwo[0].dwo_ids.clone()
            })
            .collect();
        loose.sort();
        assert_eq!(loose, exe.dwo_ids, "{name}-*.dwo");
    }
}

/// Function bodies of a wasm module are file offsets without their size prefix, back to back
/// up to the end of the code section.
#[test]
fn wasm_function_bodies_are_file_offsets_without_size_prefix() {
    let wasm = read("out/c_wasm.wasm");
    let (payload, end) = wasmparser::Parser::new(0)
        .parse_all(&wasm)
        .find_map(|payload| match payload.expect("valid wasm") {
            wasmparser::Payload::CodeSectionStart { range, .. } => {
                Some((range.start as u64, range.end as u64))
            }
            _ => None,
        })
        .expect("code section");
    let bodies = build::wasm_function_bodies(&wasm).expect("bodies");
    assert!(bodies.len() > 1);
    // The count and the first size prefix are one byte each in this small module.
    assert_eq!(bodies[0].0, payload + 2);
    for pair in bodies.windows(2) {
        assert!(pair[0].1 < pair[1].0, "{pair:?}");
    }
    assert_eq!(bodies.last().map(|b| b.1), Some(end));
    // A code section cut short is malformed.
    let cut = usize::try_from(end - 5).expect("offset");
    assert_eq!(build::wasm_function_bodies(&wasm[..cut]), None);
    assert_eq!(build::wasm_function_bodies(b"\0asm\x01\0\0\0"), None);
}

#[test]
fn elf_debug_ids_derive_from_build_ids() {
    let id = |code_id: &str| debug_id_from_build_id(&debugid::CodeId::new(code_id.to_owned()));
    // c_dwarf5's build ID and the debug ID symbolic reads from the file.
    assert_eq!(
        id("d0679d33296e7b2824081344f4ea774400bc85b9").map(|d| d.to_string()),
        Some("339d67d0-6e29-287b-2408-1344f4ea7744".to_owned())
    );
    assert_eq!(
        id("01020304").map(|d| d.to_string()),
        Some("04030201-0000-0000-0000-000000000000".to_owned())
    );
    assert_eq!(id("not hex"), None);
}
