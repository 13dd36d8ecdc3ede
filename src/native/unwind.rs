//! Unwind information for stack walking: the call frame information (CFI) of one debug file,
//! converted once by symbolic-cfi into Breakpad `STACK CFI` / `STACK WIN` records, and
//! evaluated by breakpad-symbols' CFI interpreter when a minidump's stacks are walked.
//!
//! What each format contributes (symbolic-cfi reads them all):
//! - ELF: `.eh_frame` (kept by `strip`, so a stripped executable still unwinds) and
//!   `.debug_frame` (usually only in unstripped files or the separate `.debug` file);
//! - Mach-O: compact unwind (`__unwind_info`) and `__eh_frame`;
//! - PE: `.pdata`/`.xdata` (x64 unwind codes); PDB: frame data (`STACK WIN`);
//! - Breakpad `.sym`: its own `STACK CFI` and `STACK WIN` records, copied.
//!
//! The cache is the record text behind a one-line header of ours (`CFI_MAGIC` and the
//! version), so a cache from another version is rebuilt, never misread. Addresses in it are
//! relative to the image base, like [`super::NativeCache`].

use breakpad_symbols::SymbolFile;
use symbolic::cfi::AsciiCfiWriter;
use symbolic::debuginfo::Archive;

use super::build::{classify_parse_error, error_chain, panicked, parse_options};
use super::NativeError;

/// Version of the CFI cache: bump when the bytes [`build_cfi`] writes for the same input change.
pub const CFI_FORMAT_VERSION: u32 = 1;

const CFI_MAGIC: &str = "TRACEMAP-CFI";

/// Converts the unwind information of object `object_index` of a debug file into a CFI cache.
/// A file without unwind information gives a cache with no records (valid, walks nothing).
pub fn build_cfi(data: &[u8], object_index: usize) -> Result<Vec<u8>, NativeError> {
    let build = std::panic::AssertUnwindSafe(|| build_cfi_unguarded(data, object_index));
    std::panic::catch_unwind(build).unwrap_or_else(|payload| Err(panicked(payload)))
}

fn build_cfi_unguarded(data: &[u8], object_index: usize) -> Result<Vec<u8>, NativeError> {
    let archive = Archive::parse_with_opts(data, parse_options())
        .map_err(|e| classify_parse_error(&e, data))?;
    let count = archive.object_count();
    let object = archive
        .object_by_index(object_index)
        .map_err(|e| NativeError::Malformed(error_chain(&e)))?
        .ok_or(NativeError::ObjectIndex {
            index: object_index,
            count,
        })?;
    let mut records = Vec::new();
    let mut writer = AsciiCfiWriter::new(&mut records);
    writer
        .process(&object)
        .map_err(|e| NativeError::Malformed(format!("unwind information: {}", error_chain(&e))))?;
    let mut out = format!("{CFI_MAGIC} {CFI_FORMAT_VERSION}\n").into_bytes();
    out.extend_from_slice(&parseable(records));
    Ok(out)
}

/// The records breakpad-symbols can parse. It rejects a whole file for one bad line, and a
/// Breakpad upload's `STACK` lines are copied through as they are (fuzzing found one with
/// NUL and CR bytes inside a rule): when the whole does not parse, each function's group of records
/// (`STACK CFI INIT` and its `STACK CFI` lines; each `STACK WIN` line) is kept only if it
/// parses on its own.
fn parseable(records: Vec<u8>) -> Vec<u8> {
    if records.is_empty() || SymbolFile::from_bytes(&records).is_ok() {
        return records;
    }
    let mut groups: Vec<Vec<u8>> = Vec::new();
    for line in records.split_inclusive(|&b| b == b'\n') {
        match groups.last_mut() {
            Some(group)
                if line.starts_with(b"STACK CFI ") && !line.starts_with(b"STACK CFI INIT ") =>
            {
                group.extend_from_slice(line)
            }
            _ => groups.push(line.to_vec()),
        }
    }
    groups
        .into_iter()
        .filter(|g| SymbolFile::from_bytes(g).is_ok())
        .flatten()
        .collect()
}

/// A parsed CFI cache, ready to unwind frames of its module.
pub struct CfiFile {
    /// `None` when the file had no unwind rules (breakpad-symbols rejects an empty file).
    symbols: Option<SymbolFile>,
    records: usize,
}

impl CfiFile {
    /// Parses a cache written by [`build_cfi`] (any other bytes are an error).
    pub fn parse(bytes: &[u8]) -> Result<CfiFile, NativeError> {
        let header = format!("{CFI_MAGIC} {CFI_FORMAT_VERSION}\n");
        let records = bytes
            .strip_prefix(header.as_bytes())
            .ok_or_else(|| NativeError::InvalidCache("not a CFI cache of this version".into()))?;
        let count = records
            .split(|&b| b == b'\n')
            .filter(|line| line.starts_with(b"STACK CFI INIT ") || line.starts_with(b"STACK WIN "))
            .count();
        let symbols = match count {
            0 => None,
            _ => Some(
                SymbolFile::from_bytes(records)
                    .map_err(|e| NativeError::InvalidCache(format!("CFI records: {e}")))?,
            ),
        };
        Ok(CfiFile {
            symbols,
            records: count,
        })
    }

    /// Number of functions with unwind rules (0: the file carried no CFI).
    pub fn ranges(&self) -> usize {
        self.records
    }

    pub(crate) fn symbols(&self) -> Option<&SymbolFile> {
        self.symbols.as_ref()
    }
}
