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
    let mut out = format!("{CFI_MAGIC} {CFI_FORMAT_VERSION}\n").into_bytes();
    let mut writer = AsciiCfiWriter::new(&mut out);
    writer
        .process(&object)
        .map_err(|e| NativeError::Malformed(format!("unwind information: {}", error_chain(&e))))?;
    Ok(out)
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
