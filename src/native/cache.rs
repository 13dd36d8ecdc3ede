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
//! table and no demangling (`build/encode.rs`):
//!
//! - function name: `demangled \0 raw \0 language`, or just `raw` when demangling changes
//!   nothing and no language is detected from the mangling; `language` is symbolic's name
//!   (`cpp`, `rust`, …) and only used when the SymCache's own language field is unknown
//!   (symbol-table entries);
//! - file: `abs_path \0 filename`; the directory and compilation directory fields are empty.
//!
//! No DWARF, PDB or Breakpad string can contain NUL, so the separator is unambiguous.
//!
//! Lookups go through symbolic's public `SymCache::lookup`; this module never reads
//! symbolic's on-disk tables itself. A file comes back through `File::full_path`, which joins
//! the empty directories with our stored `abs_path \0 filename` and cleans it, leaving it as
//! stored (the path was cleaned when the cache was built).
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

/// Splits a stored path into `abs_path` and `filename` (see the module docs). A path without
/// the separator, which only a damaged cache holds, is named by its last component.
fn split_path(stored: &str) -> (String, String) {
    let (abs_path, filename) = match stored.split_once('\0') {
        Some(parts) => parts,
        None => (stored, base_name(stored).unwrap_or(stored)),
    };
    (abs_path.to_owned(), filename.to_owned())
}

/// A parsed cache, borrowing the bytes written by [`build_cache`](super::build_cache).
///
/// Parsing only validates our header and lets symbolic validate the SymCache's table bounds; it
/// copies nothing, so it is cheap; lookups take `&self` and can run on many threads at once.
#[derive(Clone, Debug)]
pub struct NativeCache<'a> {
    symcache: SymCache<'a>,
    flags: u32,
}

/// Deepest inline chain we follow; deeper ones only come from corrupt caches (cycles).
const MAX_CHAIN: usize = 4096;

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
        Ok(NativeCache { symcache, flags })
    }

    /// The architecture recorded in the debug file (`x86_64`, `arm64`, …).
    #[cfg(test)]
    pub(crate) fn arch(&self) -> &'static str {
        self.symcache.arch().name()
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
        let mut frames: Vec<NativeFrame> = Vec::new();
        let mut outermost_entry = 0;
        for location in self.symcache.lookup(addr).take(MAX_CHAIN) {
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
        // Inlined frames report the function they were inlined into, like a symbol table would.
        for frame in &mut frames {
            frame.sym_addr = u64::from(outermost_entry);
        }
        frames
    }
}
