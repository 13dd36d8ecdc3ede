//! Minidumps and unwind rules: the dump reader and stack walker on hostile dumps, and the
//! CFI conversion and evaluator on hostile debug files (a Breakpad `.sym` with `STACK CFI`
//! records reaches breakpad-symbols' parser and evaluator as uploaded).
//!
//! Input: the first byte picks the mode. Even: the rest is a minidump, walked with the real
//! CFI and SymCache of `fixtures/minidump/out/c_crash` given to every module it lists. Odd:
//! the rest is a debug file; its CFI (if it converts) unwinds the real `c_crash.dmp`.
#![no_main]

mod panics;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use tracemap::native::{build_cache, build_cfi, read_modules, walk, BuildInput, CfiFile, ModuleData};

const PROGRAM: &[u8] = include_bytes!("../../fixtures/minidump/out/c_crash");
const DUMP: &[u8] = include_bytes!("../../fixtures/minidump/out/c_crash.dmp");

fn program() -> &'static ModuleData {
    static DATA: OnceLock<ModuleData> = OnceLock::new();
    DATA.get_or_init(|| ModuleData {
        cfi: Some(Arc::new(
            CfiFile::parse(&build_cfi(PROGRAM, 0).expect("fixture CFI")).expect("parses"),
        )),
        symbols: Some(Arc::new(build_cache(&BuildInput::new(PROGRAM)).expect("fixture cache"))),
    })
}

fuzz_target!(|data: &[u8]| {
    panics::abort_on_own_panics();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let Ok(header) = read_modules(rest) else {
            let _ = walk(rest, &HashMap::new());
            return;
        };
        let modules: HashMap<u64, ModuleData> = header
            .modules
            .iter()
            .take(64)
            .map(|m| (m.base, program().clone()))
            .collect();
        let _ = walk(rest, &modules);
    } else {
        let Ok(bytes) = build_cfi(rest, 0) else {
            return;
        };
        let cfi = CfiFile::parse(&bytes).expect("a cache we just built parses");
        let header = read_modules(DUMP).expect("fixture dump");
        let cfi = Arc::new(cfi);
        let modules: HashMap<u64, ModuleData> = header
            .modules
            .iter()
            .map(|m| {
                (
                    m.base,
                    ModuleData {
                        cfi: Some(cfi.clone()),
                        symbols: None,
                    },
                )
            })
            .collect();
        let _ = walk(DUMP, &modules);
    }
});
