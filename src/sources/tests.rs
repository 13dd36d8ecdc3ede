//! Layout paths against Symbolicator's documented examples, address checks, globs, and
//! decompression limits.

use super::layout::{locations, FileKind, ObjFormat, Query};
use super::source::glob_match;
use super::*;
use crate::config::Casing;

fn elf(build_id: &str, code_file: &str) -> Query {
    let code_id = debugid::CodeId::new(build_id.into());
    Query {
        format: ObjFormat::Elf,
        debug_id: crate::native::debug_id_from_build_id(&code_id),
        code_id: Some(code_id),
        code_file: Some(code_file.into()),
        debug_file: None,
    }
}

fn pe() -> Query {
    Query {
        format: ObjFormat::Pe,
        debug_id: Some("3003763b-afcb-4a97-aae3-28de8f188d7c-1".parse().unwrap()),
        code_id: Some(debugid::CodeId::new("5ab380779000".into())),
        code_file: Some("C:\\Windows\\System32\\Kernel32.dll".into()),
        debug_file: Some("wkernel32.pdb".into()),
    }
}

const BUILD_ID: &str = "180a373d6afbabf0eb1f09be1bc45bd796a71085";

#[test]
fn elf_paths_follow_each_layout() {
    let q = elf(BUILD_ID, "/usr/lib/libfoo.so");
    let at = |l, k| locations(l, Casing::Default, &q, k);
    assert_eq!(
        at(Layout::Native, FileKind::Code),
        ["18/0a373d6afbabf0eb1f09be1bc45bd796a71085"]
    );
    assert_eq!(
        at(Layout::Native, FileKind::Debug),
        ["18/0a373d6afbabf0eb1f09be1bc45bd796a71085.debug"]
    );
    // Symbolicator's proxy example: `_.debug/elf-buildid-sym-<id>/_.debug`.
    assert_eq!(
        at(Layout::Symstore, FileKind::Debug),
        [format!("_.debug/elf-buildid-sym-{BUILD_ID}/_.debug")]
    );
    assert_eq!(
        at(Layout::Symstore, FileKind::Code),
        [format!("libfoo.so/elf-buildid-{BUILD_ID}/libfoo.so")]
    );
    assert_eq!(
        at(Layout::Debuginfod, FileKind::Debug),
        [format!("{BUILD_ID}/debuginfo")]
    );
    assert_eq!(
        at(Layout::Debuginfod, FileKind::Code),
        [format!("{BUILD_ID}/executable")]
    );
    assert_eq!(
        at(Layout::Unified, FileKind::Debug),
        ["18/0a373d6afbabf0eb1f09be1bc45bd796a71085/debuginfo"]
    );
    // Breakpad: the code file's name + `.sym`, the ID's signature uppercase, age lowercase.
    assert_eq!(
        at(Layout::Breakpad, FileKind::Breakpad),
        ["libfoo.so/3D370A18FB6AF0ABEB1F09BE1BC45BD70/libfoo.so.sym"]
    );
    assert!(at(Layout::Breakpad, FileKind::Debug).is_empty());
}

#[test]
fn pe_and_pdb_paths_with_compressed_and_pointer_variants() {
    let q = pe();
    let at = |l, k| locations(l, Casing::Default, &q, k);
    // Symbolicator's proxy example: `wkernel32.pdb/ff9f…1/wkernel32.pdb` is SSQP (lowercase
    // signature); symstore writes the signature and age uppercase.
    assert_eq!(
        at(Layout::Symstore, FileKind::Debug),
        [
            "wkernel32.pdb/3003763BAFCB4A97AAE328DE8F188D7C1/wkernel32.pdb",
            "wkernel32.pdb/3003763BAFCB4A97AAE328DE8F188D7C1/wkernel32.pd_",
            "wkernel32.pdb/3003763BAFCB4A97AAE328DE8F188D7C1/file.ptr",
        ]
    );
    assert_eq!(
        at(Layout::Symstore, FileKind::Code)[0],
        "Kernel32.dll/5AB380779000/Kernel32.dll"
    );
    assert_eq!(
        at(Layout::SymstoreIndex2, FileKind::Code)[0],
        "Ke/Kernel32.dll/5AB380779000/Kernel32.dll"
    );
    assert_eq!(
        at(Layout::Ssqp, FileKind::Debug)[0],
        "wkernel32.pdb/3003763bafcb4a97aae328de8f188d7c1/wkernel32.pdb"
    );
    assert_eq!(
        at(Layout::Ssqp, FileKind::Code)[0],
        "kernel32.dll/5ab380779000/kernel32.dll"
    );
    assert_eq!(
        at(Layout::Breakpad, FileKind::Breakpad),
        ["wkernel32.pdb/3003763BAFCB4A97AAE328DE8F188D7C1/wkernel32.sym"]
    );
    assert_eq!(
        locations(Layout::Symstore, Casing::Lowercase, &q, FileKind::Code)[0],
        "kernel32.dll/5ab380779000/kernel32.dll"
    );
}

#[test]
fn macho_paths() {
    let q = Query {
        format: ObjFormat::MachO,
        debug_id: Some("67e9247c-814e-392b-a027-dbde6748fcbf".parse().unwrap()),
        code_id: None,
        code_file: Some("/usr/lib/libSystem.B.dylib".into()),
        debug_file: None,
    };
    assert_eq!(
        locations(Layout::Native, Casing::Default, &q, FileKind::Debug),
        ["67E9/247C/814E/392B/A027/DBDE6748FCBF"]
    );
    assert_eq!(
        locations(Layout::Native, Casing::Default, &q, FileKind::Code),
        ["67E9/247C/814E/392B/A027/DBDE6748FCBF.app"]
    );
    assert_eq!(
        locations(Layout::Symstore, Casing::Default, &q, FileKind::Debug),
        ["_.dwarf/mach-uuid-sym-67e9247c814e392ba027dbde6748fcbf/_.dwarf"]
    );
}

#[test]
fn forbidden_addresses() {
    let no = |s: &str| forbidden(s.parse().unwrap(), false);
    for private in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fd00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
    ] {
        assert!(no(private).is_some(), "{private} must be refused");
    }
    for public in [
        "93.184.216.34",
        "2606:2800:220:1:248:1893:25c8:1946",
        "8.8.8.8",
    ] {
        assert!(no(public).is_none(), "{public} is public");
    }
    // Allowing private addresses never allows cloud metadata.
    let yes = |s: &str| forbidden(s.parse().unwrap(), true);
    assert!(yes("127.0.0.1").is_none());
    assert!(yes("10.0.0.1").is_none());
    assert_eq!(yes("169.254.169.254"), Some("a cloud metadata address"));
    assert_eq!(yes("fd00:ec2::254"), Some("a cloud metadata address"));
    assert_eq!(
        yes("::ffff:169.254.169.254"),
        Some("a cloud metadata address")
    );
}

#[test]
fn urls_are_checked_before_any_connection() {
    let u = |s: &str| url::Url::parse(s).unwrap();
    assert!(net::check_url(&u("http://127.0.0.1:8080/x"), false).is_err());
    assert!(net::check_url(&u("http://[::1]/x"), false).is_err());
    assert!(net::check_url(&u("http://127.0.0.1:8080/x"), true).is_ok());
    assert!(net::check_url(&u("http://169.254.169.254/latest"), true).is_err());
    assert!(net::check_url(&u("file:///etc/passwd"), true).is_err());
    assert!(net::check_url(&u("https://symbols.example.com/x"), false).is_ok());
}

#[test]
fn globs() {
    assert!(glob_match("libc.so*", "libc.so.6"));
    assert!(glob_match("*.PDB", "wkernel32.pdb"));
    assert!(glob_match("lib?.so", "libc.so"));
    assert!(!glob_match("libc.so*", "libm.so.6"));
    assert!(glob_match("*", ""));
    assert!(!glob_match("a*b", "acd"));
}

#[test]
fn decompression_stops_at_the_limit() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let output = dir.path().join("out");
    // 1 MiB of zeros, gzip: a few KB that inflate past a 64 KiB limit.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 1 << 20]).unwrap();
    std::fs::write(&input, gz.finish().unwrap()).unwrap();
    assert_eq!(
        unpack::unpack(&input, &output, 64 << 10),
        Err(net::Miss::TooLarge(64 << 10))
    );
    assert_eq!(unpack::unpack(&input, &output, 2 << 20), Ok(true));
    assert_eq!(std::fs::metadata(&output).unwrap().len(), 1 << 20);
    // Not compressed: left alone.
    std::fs::write(&input, b"\x7fELF....").unwrap();
    assert_eq!(unpack::unpack(&input, &output, 1 << 20), Ok(false));
    // A CAB header that is not a CAB.
    std::fs::write(&input, b"MSCF garbage").unwrap();
    assert!(matches!(
        unpack::unpack(&input, &output, 1 << 20),
        Err(net::Miss::Error(_))
    ));
}
