//! Zip / artifact-bundle extraction, also behind Sentry's `SYSB` header.
//!
//! Input: the archive bytes. Seeds include zips with and without `SYSB\x02\0\0\0` in front.
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tracemap::ingest::zip::{extract, ZipLimits};

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir"))
}

fuzz_target!(|data: &[u8]| {
    let dir = dir();
    let mut input = tempfile::NamedTempFile::new_in(dir.path()).expect("temp file");
    input.write_all(data).expect("write input");
    input.flush().expect("flush input");
    let limits = ZipLimits {
        max_entries: 64,
        max_inflated: 4 << 20,
        max_file: 1 << 20,
    };
    if let Ok(extracted) = extract(input.path(), dir.path(), &limits) {
        for file in &extracted.files {
            let _ = file.file.map();
        }
    }
});
