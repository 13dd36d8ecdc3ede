//! The serialized lookup cache: layout, writer and zero-copy reader.
//!
//! All integers are little-endian `u32`. The file is a 64-byte header followed by sections
//! whose sizes follow from the header's counts, in this order, with nothing in between:
//!
//! | section        | size (u32 words)          | contents                                      |
//! |----------------|---------------------------|-----------------------------------------------|
//! | header         | 16                        | magic `TMJS`, version, scope flags, counts    |
//! | line starts    | `lines + 1`               | index of the first token of generated line `l`|
//! | token columns  | `tokens`                  | generated column, ascending within a line     |
//! | token records  | `tokens * 5`              | source, line, column, name, scope             |
//! | sources        | `sources * 4`             | raw path, filename, content, flags            |
//! | source index   | `index * 2`               | (key string, source), sorted by key bytes     |
//! | string offsets | `strings + 1`             | byte offset of each string, then the end      |
//! | string bytes   | `string_bytes` bytes      | UTF-8                                         |
//!
//! Tokens are sorted by (generated line, column) with one token per position (the first one in
//! the map wins, as in `@jridgewell/trace-mapping`), so a lookup is two reads of the line starts
//! and a binary search over that line's columns. Columns and records are separate arrays so the
//! search touches only 4 bytes per probe. Every token of the map is kept, including those that
//! repeat the previous token's original location (symbolic's `SourceMapCache` drops those).
//!
//! A token record's source word is [`NONE`] for an unmapped token (a 1-field segment), else the
//! source index with [`RANGE_FLAG`] set for a range mapping (the original column then advances
//! with the generated column). Name is a string id or [`NONE`]; scope is a string id,
//! [`SCOPE_ANONYMOUS`] or [`SCOPE_UNKNOWN`].
//!
//! [`JsCache::parse`] checks the header and that the sizes add up to the buffer's length, in
//! constant time. Everything read afterwards is bounds-checked, and strings are UTF-8-checked
//! when read, so a corrupt cache yields `None`s, never a panic or undefined behaviour.

use super::{JsError, FORMAT_VERSION};

pub(crate) const MAGIC: [u8; 4] = *b"TMJS";
pub(crate) const HEADER_WORDS: usize = 16;
pub(crate) const RECORD_WORDS: usize = 5;
pub(crate) const SOURCE_WORDS: usize = 4;
pub(crate) const INDEX_WORDS: usize = 2;

/// "No value" for string ids, sources and names.
pub(crate) const NONE: u32 = u32::MAX;
/// Scope word: the token lies in an anonymous function.
pub(crate) const SCOPE_ANONYMOUS: u32 = u32::MAX - 1;
/// Scope word: no scope information (top level, or no minified source to parse).
pub(crate) const SCOPE_UNKNOWN: u32 = u32::MAX;
/// Largest usable string id or source index (the values above are sentinels).
pub(crate) const MAX_ID: u32 = u32::MAX - 2;
/// Set on a token record's source word for a range mapping.
pub(crate) const RANGE_FLAG: u32 = 1 << 31;

/// Header flags: where scope names came from (see [`ScopeOrigins`]).
const FLAG_SCOPES_MINIFIED: u32 = 1;
const FLAG_SCOPES_HERMES: u32 = 2;
const FLAG_SCOPES_MINIFIED_FAILED: u32 = 4;
const FLAG_SCOPES_ORIGINAL: u32 = 8;

/// Source flags.
pub(crate) const SOURCE_IGNORE_LISTED: u32 = 1;

// Header word positions.
const H_MAGIC: usize = 0;
const H_VERSION: usize = 1;
const H_FLAGS: usize = 2;
const H_LINES: usize = 3;
const H_TOKENS: usize = 4;
const H_SOURCES: usize = 5;
const H_INDEX: usize = 6;
const H_STRINGS: usize = 7;
const H_STRING_BYTES: usize = 8;

/// Everything the writer needs, already in final order.
pub(crate) struct CacheParts {
    pub flags: u32,
    pub line_starts: Vec<u32>,
    pub columns: Vec<u32>,
    pub records: Vec<u32>,
    pub sources: Vec<u32>,
    pub source_index: Vec<u32>,
    pub string_offsets: Vec<u32>,
    pub string_bytes: Vec<u8>,
}

impl CacheParts {
    pub(crate) fn serialize(&self) -> Vec<u8> {
        let words = HEADER_WORDS
            + self.line_starts.len()
            + self.columns.len()
            + self.records.len()
            + self.sources.len()
            + self.source_index.len()
            + self.string_offsets.len();
        let mut out = Vec::with_capacity(words * 4 + self.string_bytes.len());
        let mut header = [0u32; HEADER_WORDS];
        header[H_MAGIC] = u32::from_le_bytes(MAGIC);
        header[H_VERSION] = FORMAT_VERSION;
        header[H_FLAGS] = self.flags;
        // The builder guarantees these fit: it refuses inputs with more than MAX_ID of anything.
        header[H_LINES] = self.line_starts.len().saturating_sub(1) as u32;
        header[H_TOKENS] = self.columns.len() as u32;
        header[H_SOURCES] = (self.sources.len() / SOURCE_WORDS) as u32;
        header[H_INDEX] = (self.source_index.len() / INDEX_WORDS) as u32;
        header[H_STRINGS] = self.string_offsets.len().saturating_sub(1) as u32;
        header[H_STRING_BYTES] = self.string_bytes.len() as u32;
        for section in [
            &header[..],
            &self.line_starts,
            &self.columns,
            &self.records,
            &self.sources,
            &self.source_index,
            &self.string_offsets,
        ] {
            for word in section {
                out.extend_from_slice(&word.to_le_bytes());
            }
        }
        out.extend_from_slice(&self.string_bytes);
        out
    }
}

/// A slice of little-endian `u32` words inside the cache.
#[derive(Clone, Copy)]
struct Words<'a>(&'a [u8]);

impl<'a> Words<'a> {
    #[inline]
    fn get(self, index: usize) -> Option<u32> {
        let start = index.checked_mul(4)?;
        let bytes = self.0.get(start..start.checked_add(4)?)?;
        Some(u32::from_le_bytes(bytes.try_into().ok()?))
    }
}

/// Where the scope names in a cache came from, to explain missing function names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScopeOrigins {
    /// Some scopes were found by parsing the original sources embedded in the map.
    pub original_sources: bool,
    /// Some scopes were found by parsing the minified source (for tokens whose original
    /// source is absent or not parsable JavaScript, e.g. TypeScript).
    pub minified_source: bool,
    /// The minified source was needed but could not be parsed.
    pub minified_source_failed: bool,
    /// Scopes came from the map's Hermes/Metro function maps (`x_facebook_sources`).
    pub hermes_function_maps: bool,
}

impl ScopeOrigins {
    pub(crate) fn to_flags(self) -> u32 {
        let mut flags = 0;
        for (set, flag) in [
            (self.original_sources, FLAG_SCOPES_ORIGINAL),
            (self.minified_source, FLAG_SCOPES_MINIFIED),
            (self.minified_source_failed, FLAG_SCOPES_MINIFIED_FAILED),
            (self.hermes_function_maps, FLAG_SCOPES_HERMES),
        ] {
            if set {
                flags |= flag;
            }
        }
        flags
    }

    fn from_flags(flags: u32) -> Self {
        Self {
            original_sources: flags & FLAG_SCOPES_ORIGINAL != 0,
            minified_source: flags & FLAG_SCOPES_MINIFIED != 0,
            minified_source_failed: flags & FLAG_SCOPES_MINIFIED_FAILED != 0,
            hermes_function_maps: flags & FLAG_SCOPES_HERMES != 0,
        }
    }
}

/// The function scope enclosing a looked-up position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsScope<'a> {
    /// A function with an original name, e.g. `Cart.addItem` or `new Cart`.
    Named(&'a str),
    /// A function without a name (an anonymous callback).
    Anonymous,
    /// Top level, or no scope information.
    Unknown,
}

/// The original location of a generated position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsLocation<'a> {
    /// The source path as the map names it, after `sourceRoot` joining
    /// (e.g. `webpack://app/./src/cart.ts` or `../src/cart.js`).
    pub abs_path: &'a str,
    /// The display name of the source: `normalize_source_path(abs_path).1`, precomputed.
    pub filename: &'a str,
    /// 1-based original line.
    pub line: u32,
    /// 1-based original column.
    pub column: u32,
    /// Original name of the enclosing function, when the scope is named (see [`scope`]).
    ///
    /// Deliberately not the token's own `names` entry when there is no scope: at a call site
    /// that entry names the *callee*, so it is the right fallback for the frame called from
    /// here, not for this one. On the fixture bundles without scope information, the calling
    /// frame's [`token_name`](Self::token_name) names 43% of functions right, the own token
    /// name 3%.
    ///
    /// [`scope`]: Self::scope
    pub function: Option<&'a str>,
    /// The enclosing scope as found in the minified source.
    pub scope: JsScope<'a>,
    /// The token's `names` entry: the original identifier at this position, if any (at a call
    /// site, usually the callee's name: the best name for the frame this one calls when that
    /// frame has no scope name).
    pub token_name: Option<&'a str>,
    /// Whether the map embedded the source text (`sourcesContent`), available from
    /// [`JsCache::source`] or [`JsCache::source_by_id`].
    pub has_source: bool,
    /// Whether the map lists this source in its `ignoreList` (`x_google_ignoreList`).
    pub ignore_listed: bool,
    /// Index of the source within the cache, for [`JsCache::source_by_id`].
    pub source_id: u32,
}

/// A parsed view over cache bytes written by [`build_cache`](super::build_cache).
///
/// Construction is constant time and allocation-free, so it is fine to parse per request.
#[derive(Clone, Copy)]
pub struct JsCache<'a> {
    flags: u32,
    num_lines: u32,
    num_tokens: u32,
    num_sources: u32,
    num_index: u32,
    num_strings: u32,
    line_starts: Words<'a>,
    columns: Words<'a>,
    records: Words<'a>,
    sources: Words<'a>,
    source_index: Words<'a>,
    string_offsets: Words<'a>,
    string_bytes: &'a [u8],
}

impl std::fmt::Debug for JsCache<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsCache")
            .field("lines", &self.num_lines)
            .field("tokens", &self.num_tokens)
            .field("sources", &self.num_sources)
            .field("strings", &self.num_strings)
            .field("scopes", &self.scope_origins())
            .finish()
    }
}

impl<'a> JsCache<'a> {
    /// Borrows cache bytes, checking the header and that the section sizes add up to the
    /// buffer's length.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, JsError> {
        let header = Words(
            bytes
                .get(..HEADER_WORDS * 4)
                .ok_or(JsError::InvalidCache("shorter than the header"))?,
        );
        let word = |i| header.get(i).unwrap_or(0);
        if word(H_MAGIC).to_le_bytes() != MAGIC {
            return Err(JsError::InvalidCache("wrong magic"));
        }
        if word(H_VERSION) != FORMAT_VERSION {
            return Err(JsError::WrongVersion {
                found: word(H_VERSION),
                expected: FORMAT_VERSION,
            });
        }
        let (num_lines, num_tokens, num_sources, num_index, num_strings) = (
            word(H_LINES),
            word(H_TOKENS),
            word(H_SOURCES),
            word(H_INDEX),
            word(H_STRINGS),
        );
        // Section sizes in bytes, computed in u64 so no count can overflow them.
        let sizes = [
            (u64::from(num_lines) + 1) * 4,
            u64::from(num_tokens) * 4,
            u64::from(num_tokens) * RECORD_WORDS as u64 * 4,
            u64::from(num_sources) * SOURCE_WORDS as u64 * 4,
            u64::from(num_index) * INDEX_WORDS as u64 * 4,
            (u64::from(num_strings) + 1) * 4,
            u64::from(word(H_STRING_BYTES)),
        ];
        let expected = HEADER_WORDS as u64 * 4 + sizes.iter().sum::<u64>();
        if expected != bytes.len() as u64 {
            return Err(JsError::InvalidCache(
                "length does not match the header (truncated or corrupt)",
            ));
        }
        // All sizes fit in usize now: their sum equals a slice length.
        let mut rest = &bytes[HEADER_WORDS * 4..];
        let mut take = |size: u64| {
            let (section, tail) = rest.split_at(size as usize);
            rest = tail;
            section
        };
        let line_starts = Words(take(sizes[0]));
        let columns = Words(take(sizes[1]));
        let records = Words(take(sizes[2]));
        let sources = Words(take(sizes[3]));
        let source_index = Words(take(sizes[4]));
        let string_offsets = Words(take(sizes[5]));
        let string_bytes = take(sizes[6]);
        Ok(Self {
            flags: word(H_FLAGS),
            num_lines,
            num_tokens,
            num_sources,
            num_index,
            num_strings,
            line_starts,
            columns,
            records,
            sources,
            source_index,
            string_offsets,
            string_bytes,
        })
    }

    /// Looks up a 0-based generated line and column (UTF-16 code units).
    ///
    /// Returns the location of the nearest token at or before `column` on the same line;
    /// `None` when the line has no token at or before the column, or that token is unmapped.
    pub fn lookup(&self, line: u32, column: u32) -> Option<JsLocation<'a>> {
        if line >= self.num_lines {
            return None;
        }
        let start = self.line_starts.get(line as usize)?;
        let end = self
            .line_starts
            .get(line as usize + 1)?
            .min(self.num_tokens);
        if start >= end {
            return None;
        }
        // The last token in [start, end) whose column is at most `column`.
        let columns = self
            .columns
            .0
            .get(start as usize * 4..end as usize * 4)?
            .as_chunks::<4>()
            .0;
        match columns.partition_point(|c| u32::from_le_bytes(*c) <= column) {
            0 => None,
            after => self.resolve_token(start as usize + after - 1, column),
        }
    }

    fn resolve_token(&self, token: usize, column: u32) -> Option<JsLocation<'a>> {
        let start = token.checked_mul(RECORD_WORDS * 4)?;
        let record = self.records.0.get(start..start + RECORD_WORDS * 4)?;
        let [source_word, src_line, src_col, name, scope] = match record.as_chunks::<4>().0 {
            [a, b, c, d, e] => [a, b, c, d, e].map(|w| u32::from_le_bytes(*w)),
            _ => return None,
        };
        if source_word == NONE {
            return None;
        }
        let source_id = source_word & !RANGE_FLAG;
        let mut src_col = src_col;
        if source_word & RANGE_FLAG != 0 {
            let generated = self.columns.get(token)?;
            src_col = src_col.saturating_add(column.saturating_sub(generated));
        }
        let token_name = self.opt_string(name);
        let scope = match scope {
            SCOPE_UNKNOWN => JsScope::Unknown,
            SCOPE_ANONYMOUS => JsScope::Anonymous,
            id => self.string(id).map_or(JsScope::Unknown, JsScope::Named),
        };
        let function = match scope {
            JsScope::Named(name) => Some(name),
            JsScope::Anonymous | JsScope::Unknown => None,
        };
        let source = self.source_record(source_id)?;
        Some(JsLocation {
            abs_path: source.raw_path,
            filename: source.filename,
            line: src_line.saturating_add(1),
            column: src_col.saturating_add(1),
            function,
            scope,
            token_name,
            has_source: source.content != NONE,
            ignore_listed: source.flags & SOURCE_IGNORE_LISTED != 0,
            source_id,
        })
    }

    /// Source text of an original file, if the map embedded it. `path` may be the raw path
    /// ([`JsLocation::abs_path`]), its normalized form or its filename
    /// (see [`normalize_source_path`](super::normalize_source_path)).
    pub fn source(&self, path: &str) -> Option<&'a str> {
        let key = path.as_bytes();
        // Lower bound over the sorted (key, source) pairs.
        let (mut lo, mut hi) = (0u32, self.num_index);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let mid_key = self.string_bytes_of(self.source_index.get(mid as usize * 2)?)?;
            if mid_key < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo >= self.num_index {
            return None;
        }
        let found = self.string_bytes_of(self.source_index.get(lo as usize * 2)?)?;
        if found != key {
            return None;
        }
        self.source_by_id(self.source_index.get(lo as usize * 2 + 1)?)
    }

    /// Source text of the source with the given index ([`JsLocation::source_id`]).
    pub fn source_by_id(&self, source_id: u32) -> Option<&'a str> {
        self.opt_string(self.source_record(source_id)?.content)
    }

    /// Whether the map carries the content of source `source_id` (`sourcesContent`), without
    /// reading it.
    pub fn has_source_content(&self, source_id: u32) -> bool {
        self.source_record(source_id)
            .is_some_and(|r| r.content != NONE)
    }

    /// Number of sources the map lists.
    pub fn source_count(&self) -> u32 {
        self.num_sources
    }

    /// The raw path (after `sourceRoot` joining) of the source with the given index.
    #[cfg(test)]
    pub fn source_path(&self, source_id: u32) -> Option<&'a str> {
        Some(self.source_record(source_id)?.raw_path)
    }

    /// Number of tokens (mapping segments) in the cache.
    pub fn token_count(&self) -> u32 {
        self.num_tokens
    }

    /// Where function scope names came from; tells a caller why names may be missing.
    pub fn scope_origins(&self) -> ScopeOrigins {
        ScopeOrigins::from_flags(self.flags)
    }

    fn source_record(&self, source_id: u32) -> Option<SourceRecord<'a>> {
        if source_id >= self.num_sources {
            return None;
        }
        let base = source_id as usize * SOURCE_WORDS;
        Some(SourceRecord {
            raw_path: self.string(self.sources.get(base)?)?,
            filename: self.string(self.sources.get(base + 1)?)?,
            content: self.sources.get(base + 2)?,
            flags: self.sources.get(base + 3)?,
        })
    }

    fn opt_string(&self, id: u32) -> Option<&'a str> {
        if id == NONE {
            None
        } else {
            self.string(id)
        }
    }

    fn string(&self, id: u32) -> Option<&'a str> {
        std::str::from_utf8(self.string_bytes_of(id)?).ok()
    }

    fn string_bytes_of(&self, id: u32) -> Option<&'a [u8]> {
        if id >= self.num_strings {
            return None;
        }
        let start = self.string_offsets.get(id as usize)? as usize;
        let end = self.string_offsets.get(id as usize + 1)? as usize;
        self.string_bytes.get(start..end)
    }
}

struct SourceRecord<'a> {
    raw_path: &'a str,
    filename: &'a str,
    content: u32,
    flags: u32,
}
