//! The cache container: a SymCache plus the side tables lookups need, and the lookup itself.
//!
//! Layout (all integers little-endian; offsets from the start of the buffer):
//!
//! ```text
//!  0  magic            b"TMNATIVE"
//!  8  format_version   u32   (== FORMAT_VERSION)
//! 12  flags            u32   (bit 0: split DWARF units whose .dwo/.dwp was not supplied)
//! 16  symcache         u64 offset, u64 length   symbolic SymCache v9, 8-byte aligned
//! 32  names            u64 offset, u64 count    NameEntry[count], sorted by (hash, raw name)
//! 48  comp_dirs        u64 offset, u64 count    StrRef[count], sorted by bytes
//! 64  strings          u64 offset, u64 length   UTF-8 blob the entries point into
//! 80  (end of header)
//!
//! NameEntry (24 bytes): hash u64 (FNV-1a of the raw name), raw StrRef, demangled StrRef;
//!                       then language u32 and 4 bytes padding (32 bytes in total)
//! StrRef (8 bytes):     offset u32 into strings, length u32
//! ```
//!
//! `names` holds, for every function or symbol name whose demangled form differs from the raw
//! one, the demangled form and the detected language. `comp_dirs` holds the compilation
//! directories, used to derive `filename` from `abs_path`.
//!
//! The buffer must be 8-byte aligned (a `Vec<u8>`, an `Arc<[u8]>` and an mmap all are); the
//! SymCache inside is read in place.

use symbolic::common::Language;
use symbolic::symcache::SymCache;

use super::{NativeError, NativeFrame, FORMAT_VERSION};

pub(crate) const MAGIC: &[u8; 8] = b"TMNATIVE";
pub(crate) const HEADER_LEN: usize = 80;
pub(crate) const NAME_ENTRY_LEN: usize = 32;
pub(crate) const STR_REF_LEN: usize = 8;
/// Flag: some split DWARF units had no matching `.dwo`/`.dwp`; their code resolves with line
/// information only (no inlined frames).
pub(crate) const FLAG_MISSING_DWO: u32 = 1;

/// A parsed cache, borrowing the bytes written by [`build_cache`](super::build_cache).
///
/// Parsing only validates the header and the table bounds; it copies nothing, so it is cheap
/// enough to do per request, though holding one per cached buffer is cheaper still.
#[derive(Clone)]
pub struct NativeCache<'a> {
    symcache: SymCache<'a>,
    flags: u32,
    names: &'a [u8],
    comp_dirs: &'a [u8],
    strings: &'a [u8],
}

impl std::fmt::Debug for NativeCache<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeCache")
            .field("symcache", &self.symcache)
            .field("flags", &self.flags)
            .field("names", &(self.names.len() / NAME_ENTRY_LEN))
            .field("comp_dirs", &(self.comp_dirs.len() / STR_REF_LEN))
            .finish()
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
    bytes
        .get(start..end)
        .ok_or_else(|| invalid(format!("{what} [{start}, {end}) is past the end ({})", bytes.len())))
}

/// FNV-1a, 64 bit: stable across builds and platforms, unlike std's hasher.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
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
        if bytes.as_ptr() as usize % 8 != 0 {
            return Err(invalid("cache buffer is not 8-byte aligned"));
        }
        let flags = read_u32(bytes, 12);
        let symcache_bytes = region(bytes, read_u64(bytes, 16), read_u64(bytes, 24), "symcache")?;
        let names_count = read_u64(bytes, 40);
        let names = region(
            bytes,
            read_u64(bytes, 32),
            names_count.saturating_mul(NAME_ENTRY_LEN as u64),
            "name table",
        )?;
        let comp_dirs_count = read_u64(bytes, 56);
        let comp_dirs = region(
            bytes,
            read_u64(bytes, 48),
            comp_dirs_count.saturating_mul(STR_REF_LEN as u64),
            "comp_dir table",
        )?;
        let strings = region(bytes, read_u64(bytes, 64), read_u64(bytes, 72), "strings")?;
        let symcache = SymCache::parse(symcache_bytes)
            .map_err(|e| invalid(format!("embedded SymCache: {e}")))?;
        if !symcache.is_latest() {
            return Err(invalid(format!(
                "embedded SymCache has version {}",
                symcache.version()
            )));
        }
        Ok(NativeCache {
            symcache,
            flags,
            names,
            comp_dirs,
            strings,
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
        let locations: Vec<_> = self.symcache.lookup(addr).collect();
        let Some(outermost) = locations.last() else {
            return Vec::new();
        };
        let sym_addr = u64::from(outermost.function().entry_pc());
        locations
            .iter()
            .map(|location| {
                let function = location.function();
                let raw = function.name();
                let (demangled, detected) = match self.find_name(raw) {
                    Some((demangled, lang)) => (demangled, lang),
                    None => (raw, Language::Unknown),
                };
                let lang = match function.language() {
                    Language::Unknown => detected,
                    lang => lang,
                };
                let abs_path = location.file().map(|file| file.full_path());
                let filename = abs_path.as_deref().map(|path| self.relative_filename(path));
                let line = location.line();
                NativeFrame {
                    function: demangled.to_owned(),
                    symbol: (!raw.is_empty()).then(|| raw.to_owned()),
                    sym_addr,
                    abs_path,
                    filename,
                    lineno: (line > 0).then_some(line),
                    lang: (lang != Language::Unknown).then(|| lang.name().to_owned()),
                }
            })
            .collect()
    }

    fn string(&self, at: usize, table: &[u8]) -> &'a str {
        let offset = read_u32(table, at) as usize;
        let len = read_u32(table, at + 4) as usize;
        self.strings
            .get(offset..offset.saturating_add(len))
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .unwrap_or("")
    }

    /// The demangled form and detected language of `raw`, if it differs from `raw`.
    fn find_name(&self, raw: &str) -> Option<(&'a str, Language)> {
        let count = self.names.len() / NAME_ENTRY_LEN;
        let hash = fnv1a(raw.as_bytes());
        let entry_hash = |i: usize| read_u64(self.names, i * NAME_ENTRY_LEN);
        // First entry with entry_hash >= hash.
        let (mut lo, mut hi) = (0, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if entry_hash(mid) < hash {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let names = self.names;
        (lo..count)
            .take_while(|&i| entry_hash(i) == hash)
            .find(|&i| self.string(i * NAME_ENTRY_LEN + 8, names) == raw)
            .map(|i| {
                let at = i * NAME_ENTRY_LEN;
                let demangled = self.string(at + 16, names);
                let lang = Language::from_u32(read_u32(names, at + 24));
                (demangled, lang)
            })
    }

    /// `path` relative to the longest compilation directory it lies below, else its base name.
    fn relative_filename(&self, path: &str) -> String {
        let count = self.comp_dirs.len() / STR_REF_LEN;
        if count > 0 {
            // Try every ancestor directory of `path`, longest first.
            let separators = path.char_indices().rev().filter(|&(_, c)| c == '/' || c == '\\');
            for (i, _) in separators {
                let prefix = &path[..i];
                if prefix.is_empty() {
                    continue;
                }
                let (mut lo, mut hi) = (0, count);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    match self.string(mid * STR_REF_LEN, self.comp_dirs).cmp(prefix) {
                        std::cmp::Ordering::Less => lo = mid + 1,
                        std::cmp::Ordering::Greater => hi = mid,
                        std::cmp::Ordering::Equal => return path[i + 1..].to_owned(),
                    }
                }
            }
        }
        let base = path
            .rsplit(['/', '\\'])
            .next()
            .filter(|base| !base.is_empty())
            .unwrap_or(path);
        base.to_owned()
    }
}
