//! Pure JavaScript source-map lookups: turns a position in a minified file into the original
//! file, line, column and enclosing function name, plus the helpers that present the result
//! (path normalization, third-party detection, source context).
//!
//! Two steps, matching how the service uses them:
//! - [`build_cache`] runs once per (minified file, source map) pair, at upload time or on the
//!   first miss, and returns the bytes of a self-contained lookup cache in our own versioned
//!   format ([`FORMAT_VERSION`]). It is CPU-heavy (it parses JavaScript to find function
//!   scopes: ~140 ms for a 4.5 MB map) and belongs on a blocking thread.
//! - [`JsCache::parse`] borrows those bytes (from a memory map or an `Arc<[u8]>`) in constant
//!   time without allocating, and [`JsCache::lookup`] answers a position in about 0.1 µs.
//!
//! This module does no I/O, knows nothing about HTTP, storage, async runtimes or wire types,
//! and never panics on input-derived data: a malformed map or a corrupt cache is an error (or
//! "not found"), not a crash. Its one side effect: [`build_cache`] parses JavaScript on a
//! scoped thread of its own with a stack sized from the input, because the parser recurses
//! per nesting level and a stack overflow would abort the whole process.
//!
//! Positions: [`JsCache::lookup`] takes 0-based generated line and column (UTF-16 code units,
//! as JavaScript engines count them) and returns 1-based original line and column.
//!
//! Why our own format rather than symbolic's `SourceMapCache` bytes: symbolic-sourcemapcache
//! 13.9 drops a mapping that is the first on its generated line when it repeats the previous
//! mapping's original location (its writer de-duplicates consecutive equal records across line
//! boundaries, and its lookup refuses a match from an earlier line), so positions on the
//! continuation lines of multi-line template literals come back unmapped. We take every token
//! from the `sourcemap` crate into our own index (`format.rs`). Scope names come preferably
//! from the original sources the map embeds, parsed by our own swc-based extraction in their
//! own syntax (`names.rs`: JS/JSX/TS/TSX, qualified names joined with `.`, V8's names for
//! property values), else from symbolic's scope analysis of the minified source (`scopes.rs`).
//!
//! Module map: `build.rs` (building), `format.rs` (layout and reader), `scopes.rs` (function
//! scopes per token), `names.rs` (scopes and names of one original source), `paths.rs` (source
//! path display), `context.rs` (source context lines), `dart.rs` (dart2js async bodies).

mod build;
mod comments;
mod context;
mod dart;
mod format;
mod names;
mod original;
mod paths;
mod scopes;
mod urls;

#[cfg(test)]
mod oracle_tests;
#[cfg(test)]
mod tests;

pub use build::build_cache;
pub use comments::{decode_data_url, scan_magic_comments, MagicComments};
pub use context::{source_context, LineIndex, SourceContext};
pub use format::{JsCache, JsLocation, JsScope, ScopeOrigins};
pub use original::OriginalFile;
pub use paths::{is_third_party, normalize_source_path};
pub use urls::{resolve_url, url_candidates, url_prefix_problem};

/// Version of the cache format written by [`build_cache`]. A cache with another version is
/// rejected by [`JsCache::parse`]; callers key stored caches by it.
///
/// Bump it whenever the bytes written for the same input change: the layout, but also the way
/// contents are derived (for example an upgrade of symbolic that names scopes differently).
/// 2: scope names of original sources from our own extraction (`names.rs`).
/// 3: dart2js async bodies (`$async$…`) named after their async function (`dart.rs`).
pub const FORMAT_VERSION: u32 = 3;

/// Why a cache could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum JsError {
    /// The source map is not valid JSON, has invalid mappings, or refers to sources or names
    /// that do not exist.
    #[error("malformed source map: {0}")]
    MalformedSourceMap(String),
    /// The source map is valid but uses a feature we cannot resolve without I/O, such as an
    /// index map whose sections refer to other maps by URL.
    #[error("unsupported source map: {0}")]
    UnsupportedSourceMap(String),
    /// The source map is too large for the cache format (more than 2^32 - 2 tokens, strings or
    /// bytes of strings) or declares far more generated lines than it could describe.
    #[error("source map too large: {0}")]
    TooLarge(String),
    /// The bytes are not a cache written by [`build_cache`].
    #[error("not a JS lookup cache: {0}")]
    InvalidCache(&'static str),
    /// The bytes are a cache of another [`FORMAT_VERSION`]; rebuild it.
    #[error("JS lookup cache has format version {found}, expected {expected}")]
    WrongVersion {
        /// The version found in the cache.
        found: u32,
        /// [`FORMAT_VERSION`].
        expected: u32,
    },
}
