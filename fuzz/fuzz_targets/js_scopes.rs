//! Scope extraction from original JS/TS/JSX/TSX sources.
//!
//! Input: one byte choosing the file extension, then the source text (UTF-8).
#![no_main]

mod panics;

use libfuzzer_sys::fuzz_target;
use tracemap::js::OriginalFile;

const PATHS: [&str; 5] = [
    "src/a.js",
    "src/a.ts",
    "src/a.tsx",
    "src/a.jsx",
    "src/a.mjs",
];

fuzz_target!(|data: &[u8]| {
    panics::abort_on_own_panics();
    let Some((&kind, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let path = PATHS[usize::from(kind) % PATHS.len()];
    let Some(file) = OriginalFile::parse(path, text) else {
        return;
    };
    let _ = file.weight();
    let lines = u32::try_from(text.lines().count()).unwrap_or(u32::MAX);
    for line in (1..=lines.min(200)).chain([0, lines.saturating_add(1), u32::MAX]) {
        for column in [0, 1, 2, 5, 17, 80, u32::MAX] {
            let _ = file.scope_at(line, column);
        }
    }
});
