//! The cache container and the lookup.
//!
//! Layout (integers little-endian):
//!
//! ```text
//!  0  magic            b"TMNATIVE"
//!  8  format_version   u32   (== FORMAT_VERSION)
//! 12  flags            u32   (bit 0: split DWARF units whose .dwo/.dwp was not supplied)
//! 16  symcache offset  u64   (8-byte aligned)
//! 24  symcache length  u64
//! 32  symbolic SymCache (format 9)
//! ```
//!
//! Inside the SymCache, names and paths are stored pre-processed so a lookup needs no other
//! table and no demangling (`build.rs`, `Encoder`):
//!
//! - function name: `demangled \0 raw \0 language`, or just `raw` when demangling changes
//!   nothing and no language is detected from the mangling; `language` is symbolic's name
//!   (`cpp`, `rust`, …) and only used when the SymCache's own language field is unknown
//!   (symbol-table entries);
//! - file: `abs_path \0 filename`; the directory and compilation directory fields are empty.
//!
//! No DWARF, PDB or Breakpad string can contain NUL, so the separator is unambiguous.
//!
//! The buffer must be 8-byte aligned, since the SymCache is read in place: an `Arc<[u8]>` and an
//! mmap always are, a `Vec<u8>` from the system allocator is in practice. `parse` checks.

use std::str::FromStr;

use symbolic::common::Language;
use symbolic::symcache::SymCache;

use super::build::base_name;
use super::{NativeError, NativeFrame, FORMAT_VERSION};

pub(crate) const MAGIC: &[u8; 8] = b"TMNATIVE";
pub(crate) const HEADER_LEN: usize = 32;
/// Flag: some split DWARF units had no matching `.dwo`/`.dwp`; their code resolves with line
/// information only (no inlined frames).
pub(crate) const FLAG_MISSING_DWO: u32 = 1;

/// Splits a stored path into `abs_path` and `filename` (see the module docs). A path without
/// the separator, which only a damaged cache holds, is named by its last component.
/// A frame from a stored function name (`display\0raw[\0language]`), the function's
/// language (or `Unknown`), its stored path and its line (0 = unknown). `sym_addr` is filled
/// in by the caller.
fn frame(name: &str, language: Language, path: Option<&str>, line: u32) -> NativeFrame {
    let mut parts = name.split('\0');
    let display = parts.next().unwrap_or_default();
    let raw = parts.next().unwrap_or(display);
    let lang = match language {
        Language::Unknown => parts
            .next()
            .and_then(|name| Language::from_str(name).ok())
            .unwrap_or(Language::Unknown),
        known => known,
    };
    let (abs_path, filename) = path.map(split_path).unzip();
    NativeFrame {
        function: display.to_owned(),
        symbol: (!raw.is_empty()).then(|| raw.to_owned()),
        sym_addr: 0,
        abs_path,
        filename,
        lineno: (line > 0).then_some(line),
        lang: (lang != Language::Unknown).then(|| lang.name().to_owned()),
    }
}

fn split_path(stored: &str) -> (String, String) {
    let (abs_path, filename) = match stored.split_once('\0') {
        Some(parts) => parts,
        None => (stored, base_name(stored).unwrap_or(stored)),
    };
    (abs_path.to_owned(), filename.to_owned())
}

/// A parsed cache, borrowing the bytes written by [`build_cache`](super::build_cache).
///
/// Parsing only validates the header and the SymCache's table bounds and copies nothing, so it
/// is cheap (tens of nanoseconds); lookups take `&self` and can run on many threads at once.
#[derive(Clone, Debug)]
pub struct NativeCache<'a> {
    symcache: SymCache<'a>,
    tables: Tables<'a>,
    flags: u32,
}

/// The tables of a SymCache v9, read in place for lookups.
///
/// symbolic's own lookup API only exposes a file as `full_path()`, which joins and cleans the
/// path on every call (a third of our lookup time); reading the tables directly returns the
/// pre-joined path as stored. The layout is symbolic's on-disk format 9 (`raw/v9.rs`): after
/// the 8-byte version info and the 72-byte header, the files (24 bytes each), functions (16),
/// source locations (16), ranges (4) and the string table, each table 8-byte aligned. A test
/// compares every lookup with symbolic's `SymCache::lookup`, so a layout change cannot go
/// unnoticed.
#[derive(Clone, Debug)]
struct Tables<'a> {
    files: &'a [u8],
    functions: &'a [u8],
    locations: &'a [u8],
    ranges: &'a [u8],
    strings: &'a [u8],
}

const FILE_LEN: usize = 24;
const FUNCTION_LEN: usize = 16;
const LOCATION_LEN: usize = 16;
const RANGE_LEN: usize = 4;
/// Deepest inline chain we follow; deeper ones only come from corrupt caches (cycles).
const MAX_CHAIN: usize = 4096;

impl<'a> Tables<'a> {
    fn parse(symcache: &'a [u8]) -> Result<Self, NativeError> {
        if symcache.get(..4) != Some(b"SYMC".as_slice()) || read_u32(symcache, 4) != 9 {
            return Err(invalid("embedded cache is not a little-endian SymCache v9"));
        }
        let count = |at: usize| read_u32(symcache, at) as u64;
        let (num_files, num_functions) = (count(44), count(48));
        let (num_locations, num_ranges, string_bytes) = (count(52), count(56), count(60));
        if num_ranges > num_locations {
            return Err(invalid("SymCache has more ranges than source locations"));
        }
        let mut pos = 80u64;
        let mut table = |len: u64, what: &str| -> Result<&'a [u8], NativeError> {
            let start = pos.next_multiple_of(8);
            let slice = region(symcache, start, len, what)?;
            pos = start + len;
            Ok(slice)
        };
        Ok(Tables {
            files: table(num_files * FILE_LEN as u64, "SymCache files")?,
            functions: table(num_functions * FUNCTION_LEN as u64, "SymCache functions")?,
            locations: table(num_locations * LOCATION_LEN as u64, "SymCache locations")?,
            ranges: table(num_ranges * RANGE_LEN as u64, "SymCache ranges")?,
            strings: table(string_bytes, "SymCache strings")?,
        })
    }

    /// Index of the source location covering `addr`, if any.
    fn location_for(&self, addr: u64) -> Option<usize> {
        let addr = u32::try_from(addr).ok()?;
        let num_ranges = self.ranges.len() / RANGE_LEN;
        // Index of the last range starting at or before `addr`.
        let (mut lo, mut hi) = (0, num_ranges);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if read_u32(self.ranges, mid * RANGE_LEN) <= addr {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let range = lo.checked_sub(1)?;
        let first_range_location = self.locations.len() / LOCATION_LEN - num_ranges;
        let index = first_range_location + range;
        // The sentinel "no location" marks the end of a function or symbol.
        let at = index * LOCATION_LEN;
        let no_location = (0..4).all(|i| read_u32(self.locations, at + i * 4) == u32::MAX);
        (!no_location).then_some(index)
    }

    /// A string of the string table: LEB128 length, then the bytes.
    fn string(&self, offset: u32) -> Option<&'a str> {
        let mut pos = offset as usize;
        let mut len = 0usize;
        for shift in (0..35).step_by(7) {
            let byte = *self.strings.get(pos)?;
            pos += 1;
            len |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                let bytes = self.strings.get(pos..pos.checked_add(len)?)?;
                return std::str::from_utf8(bytes).ok();
            }
        }
        None
    }
}

fn invalid(message: impl Into<String>) -> NativeError {
    NativeError::InvalidCache(message.into())
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .unwrap_or(0)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

/// The sub-slice `[offset, offset + len)` of `bytes`, or an error naming `what`.
fn region<'a>(bytes: &'a [u8], offset: u64, len: u64, what: &str) -> Result<&'a [u8], NativeError> {
    let start = usize::try_from(offset).map_err(|_| invalid(format!("{what} offset overflows")))?;
    let len = usize::try_from(len).map_err(|_| invalid(format!("{what} length overflows")))?;
    let end = start
        .checked_add(len)
        .ok_or_else(|| invalid(format!("{what} range overflows")))?;
    bytes.get(start..end).ok_or_else(|| {
        invalid(format!(
            "{what} [{start}, {end}) is past the end ({})",
            bytes.len()
        ))
    })
}

impl<'a> NativeCache<'a> {
    /// Borrows a cache written by [`build_cache`](super::build_cache).
    ///
    /// Fails with [`NativeError::InvalidCache`] when the bytes are not a cache, come from another
    /// [`FORMAT_VERSION`], are truncated, or are not 8-byte aligned.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, NativeError> {
        if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
            return Err(invalid("not a Tracemap native cache (bad magic)"));
        }
        let version = read_u32(bytes, 8);
        if version != FORMAT_VERSION {
            return Err(invalid(format!(
                "cache format version {version}, expected {FORMAT_VERSION}"
            )));
        }
        if !(bytes.as_ptr() as usize).is_multiple_of(8) {
            return Err(invalid("cache buffer is not 8-byte aligned"));
        }
        let flags = read_u32(bytes, 12);
        let symcache_bytes = region(bytes, read_u64(bytes, 16), read_u64(bytes, 24), "symcache")?;
        let symcache = SymCache::parse(symcache_bytes)
            .map_err(|e| invalid(format!("embedded SymCache: {e}")))?;
        if !symcache.is_latest() {
            return Err(invalid(format!(
                "embedded SymCache has version {}",
                symcache.version()
            )));
        }
        let tables = Tables::parse(symcache_bytes)?;
        Ok(NativeCache {
            symcache,
            tables,
            flags,
        })
    }

    /// The architecture recorded in the debug file (`x86_64`, `arm64`, …).
    pub fn arch(&self) -> &'static str {
        self.symcache.arch().name()
    }

    /// The debug ID of the debug file the cache was built from (Breakpad/Sentry form).
    pub fn debug_id(&self) -> String {
        self.symcache.debug_id().to_string()
    }

    /// True when some split DWARF units had neither `.dwo` nor `.dwp` at build time: addresses
    /// in those units resolve to symbol names and lines, without inlined frames.
    pub fn is_missing_split_dwarf(&self) -> bool {
        self.flags & FLAG_MISSING_DWO != 0
    }

    /// Resolves `addr` (relative to the image base, see the module docs) to its frames,
    /// innermost first; inlined calls come before the function they were inlined into.
    ///
    /// An empty vector means the address is not covered: outside every function and symbol
    /// (padding, PLT stubs, data, past the end of the code). It never falls back to the nearest
    /// symbol for such an address.
    pub fn lookup(&self, addr: u64) -> Vec<NativeFrame> {
        let tables = &self.tables;
        let mut frames: Vec<NativeFrame> = Vec::new();
        let mut next = tables.location_for(addr);
        let mut outermost_entry = 0;
        while let Some(index) = next {
            if frames.len() >= MAX_CHAIN {
                break;
            }
            let at = index.saturating_mul(LOCATION_LEN);
            let Some(location) = tables.locations.get(at..at.saturating_add(LOCATION_LEN)) else {
                break;
            };
            let (file_index, line) = (read_u32(location, 0), read_u32(location, 4));
            let (function_index, inlined_into) = (read_u32(location, 8), read_u32(location, 12));
            next = (inlined_into != u32::MAX).then_some(inlined_into as usize);

            let function = tables
                .functions
                .get((function_index as usize).saturating_mul(FUNCTION_LEN)..)
                .filter(|f| f.len() >= FUNCTION_LEN);
            let name = function
                .and_then(|f| tables.string(read_u32(f, 0)))
                .unwrap_or("?");
            outermost_entry = function.map_or(u32::MAX, |f| read_u32(f, 8));
            let stored_lang = function.map_or(u32::MAX, |f| read_u32(f, 12));

            let path = tables
                .files
                .get((file_index as usize).saturating_mul(FILE_LEN)..)
                .filter(|f| f.len() >= FILE_LEN)
                .and_then(|f| tables.string(read_u32(f, 8)))
                .filter(|path| !path.is_empty());
            frames.push(frame(name, Language::from_u32(stored_lang), path, line));
        }
        // Inlined frames report the function they were inlined into, like a symbol table would.
        for frame in &mut frames {
            frame.sym_addr = u64::from(outermost_entry);
        }
        frames
    }

    /// The same lookup through symbolic's `SymCache::lookup`, to check our reading of the
    /// tables against symbolic's.
    #[cfg(test)]
    pub(crate) fn lookup_with_symbolic(&self, addr: u64) -> Vec<NativeFrame> {
        let mut frames: Vec<NativeFrame> = Vec::new();
        let mut outermost_entry = 0;
        for location in self.symcache.lookup(addr) {
            let function = location.function();
            outermost_entry = function.entry_pc();
            let path = location.file().map(|file| file.full_path());
            let path = path.filter(|p| !p.is_empty());
            frames.push(frame(
                function.name(),
                function.language(),
                path.as_deref(),
                location.line(),
            ));
        }
        for frame in &mut frames {
            frame.sym_addr = u64::from(outermost_entry);
        }
        frames
    }
}
