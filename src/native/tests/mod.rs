//! Tests of the `native` module against the fixtures in `fixtures/native` (see its README).
//!
//! - `oracle`: every fixture against binutils `addr2line` and `llvm-symbolizer` (with
//!   `compare` for how frames are compared);
//! - `lookups`: what a lookup returns, degraded split DWARF, errors, cache versions;
//! - `detect`: describing debug files (IDs, features, DWO IDs, wasm bodies);
//! - `robustness`: damaged debug files and caches never panic.
//!
//! Test code only: fixtures are read from disk here and nowhere in `native` itself.

mod compare;
mod detect;
mod lookups;
mod oracle;
mod robustness;
mod unwind;

use std::path::{Path, PathBuf};

use super::*;

pub(super) fn fixtures() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/native")).to_path_buf()
}

pub(super) fn read(relative: &str) -> Vec<u8> {
    let path = fixtures().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading fixture {}: {e}", path.display()))
}

pub(super) fn cache_for(file: &str) -> Vec<u8> {
    build_cache(&BuildInput::new(&read(file))).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn caches_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<NativeCache<'static>>();
    assert_send_sync::<NativeFrame>();
    assert_send_sync::<NativeError>();
}

#[test]
fn caller_address_follows_the_architecture() {
    // x86: one byte back, no alignment.
    assert_eq!(caller_address(0x1005, "x86_64"), 0x1004);
    assert_eq!(caller_address(0x1005, "x86"), 0x1004);
    assert_eq!(caller_address(0x1005, "amd64"), 0x1004);
    // arm64: align to 4, one instruction back.
    assert_eq!(caller_address(0x1008, "arm64"), 0x1004);
    assert_eq!(caller_address(0x100b, "arm64"), 0x1004);
    assert_eq!(caller_address(0x1008, "aarch64"), 0x1004);
    assert_eq!(caller_address(0x1008, "arm64e"), 0x1004);
    // arm (thumb): align to 2, back 2.
    assert_eq!(caller_address(0x1007, "arm"), 0x1004);
    assert_eq!(caller_address(0x1006, "armv7"), 0x1004);
    // mips: two instructions (delay slot).
    assert_eq!(caller_address(0x1010, "mips"), 0x1008);
    // wasm: call-site offsets already, unchanged.
    assert_eq!(caller_address(0x1a8, "wasm32"), 0x1a8);
    // Unknown: inside the previous byte; never underflows.
    assert_eq!(caller_address(0x1005, "sparc"), 0x1004);
    assert_eq!(caller_address(0, "x86_64"), 0);
    assert_eq!(caller_address(2, "arm64"), 0);
}

#[test]
fn demangles_the_usual_languages() {
    assert_eq!(demangle("_ZN3foo3barEi"), "foo::bar(int)");
    assert_eq!(
        demangle("_ZN41_$LT$main..Tri$u20$as$u20$main..Shape$GT$4area17hb1c83746337a2909E"),
        "<main::Tri as main::Shape>::area"
    );
    assert_eq!(demangle("_RNvCs1234_7mycrate3foo"), "mycrate::foo");
    assert_eq!(demangle("?foo@@YAHH@Z"), "foo(int)");
    assert_eq!(demangle("$s4main3FooV3baryyF"), "Foo.bar()");
    assert_eq!(demangle("main"), "main");
    assert_eq!(demangle(""), "");
}

#[test]
fn architecture_aliases() {
    use symbolic::common::Arch;
    assert_eq!(parse_arch("aarch64"), Arch::Arm64);
    assert_eq!(parse_arch("i686"), Arch::X86);
    assert_eq!(parse_arch("armv7l"), Arch::ArmV7);
    assert_eq!(parse_arch("x86_64"), Arch::Amd64);
    assert_eq!(parse_arch("nonsense"), Arch::Unknown);
}
