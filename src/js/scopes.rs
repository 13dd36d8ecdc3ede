//! Function scope names for tokens, from symbolic's `SourceMapCache` (which finds scopes with
//! the swc JavaScript parser, via the `js-source-scopes` crate).
//!
//! Two sources of scopes, in order of preference:
//! 1. The original sources embedded in the map (`sourcesContent`). For each original file we
//!    build a `SourceMapCache` over the file itself and an identity map with one token at each
//!    original position our tokens point to, so its scope lookup answers "which function of
//!    the original file encloses this original position". That is the function the reported
//!    file and line belong to, even where the minifier inlined it into another function or
//!    dropped its name (`function redeem(){}` → `function(){}`), and its name is written as in
//!    the original code. Sources that are not JavaScript the parser accepts (TypeScript, JSX,
//!    Vue files) fall through to the next step; a probe function appended to each source
//!    tells such a parse failure apart from a file whose positions are all top-level code
//!    (symbolic swallows parse errors).
//! 2. The minified source, scopes mapped back through the map's `names` (what Sentry's
//!    Symbolicator does). The cache is built over a copy of the map without `sourcesContent`:
//!    its lookups UTF-8-check the matched file's whole source text on every call, which made
//!    them ~20x slower on large maps. symbolic's writer drops a token that repeats the last
//!    kept token's whole record across a line break (the bug this module exists to beat), so
//!    where its lookup finds nothing at a token's exact position, that token's scope is the
//!    previous one's, which we carry forward.
//!
//! The parser recurses once per nesting level of the code and a stack overflow aborts the
//! process, so parsing runs on a scoped thread with a stack sized from the input
//! ([`parser_stack_size`]); a panic in it only loses the scope names.

use sourcemap::{SourceMap, SourceMapBuilder};
use symbolic::sourcemapcache::{
    ScopeLookupResult, SourceMapCache, SourceMapCacheWriter, SourcePosition,
};

/// Stack for a parser thread, on top of what the input needs. Measured on swc_ecma_parser 27
/// (release build): a bracket, brace or arrow-function level costs 2-4 KiB of stack; a prefix
/// or right-associative operator level (`!`, `new`, `a=`, `a?b:`) at most 512 bytes and needs
/// at least one byte of source; left-deep chains (`a+b+…`, `a.b.c…`) about 130 bytes per level
/// of two or more bytes.
const PARSER_BASE_STACK: u64 = 32 << 20;
const STACK_PER_NESTING_LEVEL: u64 = 4 << 10;
const STACK_PER_SOURCE_BYTE: u64 = 512;
/// Inputs that would need more stack than this are not parsed (they go without scope names).
/// It is address space, not memory: a thread touches only the stack it uses.
const MAX_PARSER_STACK: u64 = 8 << 30;

/// A scope in a local form: an index into [`OriginalScopes::names`], or one of these.
pub(crate) const LOCAL_ANONYMOUS: u32 = u32::MAX - 1;
pub(crate) const LOCAL_UNKNOWN: u32 = u32::MAX;

/// Scopes of the original sources at the original positions tokens point to.
#[derive(Default)]
pub(crate) struct OriginalScopes {
    /// Scope names, referenced by index.
    pub names: Vec<String>,
    /// Per source index: `None` when the source has no content or did not parse.
    pub per_source: Vec<Option<SourceScopes>>,
}

pub(crate) struct SourceScopes {
    /// Sorted, unique original (line, column) positions.
    positions: Vec<(u32, u32)>,
    /// The scope at each position (an index into `names`, [`LOCAL_ANONYMOUS`] or
    /// [`LOCAL_UNKNOWN`]).
    scopes: Vec<u32>,
}

impl OriginalScopes {
    /// The scope at an original position, or `None` when that source has no scope information.
    pub(crate) fn get(&self, source: u32, line: u32, column: u32) -> Option<u32> {
        let s = self.per_source.get(source as usize)?.as_ref()?;
        let i = s.positions.binary_search(&(line, column)).ok()?;
        s.scopes.get(i).copied()
    }
}

/// Finds the scopes of every original position the map's tokens point into, for every source
/// with content. `Err(())` when the parser thread could not run at all.
pub(crate) fn original_scopes(sm: &SourceMap) -> Result<OriginalScopes, ()> {
    let count = sm.get_source_count() as usize;
    let mut positions: Vec<Vec<(u32, u32)>> = vec![Vec::new(); count];
    for token in sm.tokens() {
        let raw = token.get_raw_token();
        if let Some(list) = positions.get_mut(raw.src_id as usize) {
            list.push((raw.src_line, raw.src_col));
        }
    }
    let mut work = Vec::new();
    for (id, mut list) in positions.into_iter().enumerate() {
        let content = sm.get_source_contents(id as u32);
        let Some(text) = content else { continue };
        // Positions past the file's end (a corrupt map) would make the identity map, which
        // spells out every line, as large as the line number.
        let lines = text.bytes().filter(|&b| b == b'\n').count() as u64 + 1;
        list.retain(|&(line, _)| u64::from(line) < lines);
        if !list.is_empty() {
            list.sort_unstable();
            list.dedup();
            work.push((id, text, list));
        }
    }
    let stack = work
        .iter()
        .filter_map(|(_, text, _)| parser_stack_size(text))
        .max()
        .unwrap_or(PARSER_BASE_STACK as usize);
    let mut out = OriginalScopes {
        names: Vec::new(),
        per_source: (0..count).map(|_| None).collect(),
    };
    if work.is_empty() {
        return Ok(out);
    }
    let results = on_parser_thread(stack, || {
        let mut names = NameTable::default();
        let results: Vec<_> = work
            .into_iter()
            .map(|(id, text, positions)| {
                // Sources too large to parse safely keep no scopes.
                let scopes = parser_stack_size(text)
                    .and_then(|_| scopes_in_source(text, &positions, &mut names));
                (id, scopes.map(|scopes| SourceScopes { positions, scopes }))
            })
            .collect();
        (names.names, results)
    })?;
    out.names = results.0;
    for (id, scopes) in results.1 {
        if let Some(slot) = out.per_source.get_mut(id) {
            *slot = scopes;
        }
    }
    Ok(out)
}

/// Appended to every original source so a parse failure can be told from a file whose
/// positions are all top-level code: symbolic swallows parse errors and then reports every
/// position as outside any function, so we ask it for one position that is surely inside one.
const PROBE: &str = "\n;function __tracemapProbe(){0}";
/// Column of the `0` inside the probe's body, on the probe's line.
const PROBE_COLUMN: u32 = 28;
const PROBE_NAME: &str = "__tracemapProbe";

/// The scope at each position of one original file, or `None` when the file did not parse
/// (TypeScript, JSX, a Vue file…).
fn scopes_in_source(
    text: &str,
    positions: &[(u32, u32)],
    names: &mut NameTable,
) -> Option<Vec<u32>> {
    let probe_line = u32::try_from(text.bytes().filter(|&b| b == b'\n').count() + 1).ok()?;
    let mut identity = SourceMapBuilder::new(None);
    let id = identity.add_source("original");
    for &(line, column) in positions.iter().chain([&(probe_line, PROBE_COLUMN)]) {
        identity.add_raw(line, column, line, column, Some(id), None, false);
    }
    let mut json = Vec::new();
    identity.into_sourcemap().to_writer(&mut json).ok()?;
    let json = String::from_utf8(json).ok()?;
    let mut probed = String::with_capacity(text.len() + PROBE.len());
    probed.push_str(text);
    probed.push_str(PROBE);
    let mut bytes = Vec::new();
    SourceMapCacheWriter::new(&probed, &json)
        .ok()?
        .serialize(&mut bytes)
        .ok()?;
    let cache = SourceMapCache::parse(&bytes).ok()?;
    let scope_at = |line, column| {
        cache
            .lookup(SourcePosition::new(line, column))
            .map_or(ScopeLookupResult::Unknown, |l| l.scope())
    };
    if scope_at(probe_line, PROBE_COLUMN) != ScopeLookupResult::NamedScope(PROBE_NAME) {
        return None;
    }
    let scopes = positions
        .iter()
        .map(|&(line, column)| match scope_at(line, column) {
            ScopeLookupResult::NamedScope(name) => names.id(name),
            ScopeLookupResult::AnonymousScope => LOCAL_ANONYMOUS,
            ScopeLookupResult::Unknown => LOCAL_UNKNOWN,
        })
        .collect();
    Some(scopes)
}

/// Builds a `SourceMapCache` over the minified source and `map` without sources content.
/// `Err(())` when scopes are unavailable: the source is too large to parse safely, the parser
/// thread could not start, or the writer failed or panicked.
pub(crate) fn minified_scope_cache(sm: &mut SourceMap, minified: &str) -> Result<Vec<u8>, ()> {
    let stack = parser_stack_size(minified).ok_or(())?;
    // Our string table already holds the sources content; the scope cache does not need it.
    for id in 0..sm.get_source_count() {
        sm.set_source_contents(id, None);
    }
    let mut json = Vec::new();
    sm.to_writer(&mut json).map_err(|_| ())?;
    let json = String::from_utf8(json).map_err(|_| ())?;
    on_parser_thread(stack, || {
        let writer = SourceMapCacheWriter::new(minified, &json).map_err(|_| ())?;
        let mut bytes = Vec::new();
        writer.serialize(&mut bytes).map_err(|_| ())?;
        Ok(bytes)
    })?
}

/// The scope of a token from the minified source's cache, carrying the previous scope over
/// the tokens the cache dropped (see the module docs).
pub(crate) struct MinifiedScopes<'a> {
    cache: &'a SourceMapCache<'a>,
    carried: ScopeLookupResult<'a>,
}

impl<'a> MinifiedScopes<'a> {
    pub(crate) fn new(cache: &'a SourceMapCache<'a>) -> Self {
        Self {
            cache,
            carried: ScopeLookupResult::Unknown,
        }
    }

    /// The scope at a token's generated position. Call for every mapped token, in order.
    pub(crate) fn at(&mut self, line: u32, column: u32) -> ScopeLookupResult<'a> {
        if let Some(found) = self.cache.lookup(SourcePosition::new(line, column)) {
            self.carried = found.scope();
        }
        self.carried
    }
}

/// Runs `f` on a new thread with the given stack, returning its result; `Err(())` when the
/// thread could not start or `f` panicked.
fn on_parser_thread<T: Send>(stack: usize, f: impl FnOnce() -> T + Send) -> Result<T, ()> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("js-scopes".to_owned())
            .stack_size(stack)
            .spawn_scoped(scope, f)
            .map_err(|_| ())?
            .join()
            .map_err(|_| ())
    })
}

/// An upper bound of the stack the parser needs for `source` (see [`PARSER_BASE_STACK`]),
/// or `None` when that is more than [`MAX_PARSER_STACK`].
pub(crate) fn parser_stack_size(source: &str) -> Option<usize> {
    let (mut depth, mut max_depth) = (0u64, 0u64);
    let (mut arrows, mut max_arrows) = (0u64, 0u64);
    let mut previous = 0u8;
    for b in source.bytes() {
        match b {
            // Counted naively (brackets in strings and comments count too), which can only
            // overestimate.
            b'(' | b'[' | b'{' => {
                depth += 1;
                max_depth = max_depth.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        // Chains of arrow functions without braces (`a=>b=>c=>…`) nest without brackets.
        match b {
            b'>' if previous == b'=' => {
                arrows += 1;
                max_arrows = max_arrows.max(arrows);
            }
            b';' | b',' | b'{' | b'}' | b'[' | b']' => arrows = 0,
            _ => {}
        }
        previous = b;
    }
    let stack = PARSER_BASE_STACK
        + (max_depth + max_arrows) * STACK_PER_NESTING_LEVEL
        + source.len() as u64 * STACK_PER_SOURCE_BYTE;
    if stack > MAX_PARSER_STACK {
        return None;
    }
    usize::try_from(stack).ok()
}

/// Scope names de-duplicated into local indices.
#[derive(Default)]
struct NameTable {
    names: Vec<String>,
    ids: std::collections::HashMap<String, u32>,
}

impl NameTable {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        if id >= LOCAL_ANONYMOUS {
            return LOCAL_UNKNOWN;
        }
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }
}
