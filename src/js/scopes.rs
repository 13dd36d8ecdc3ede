//! Function scope names for tokens.
//!
//! Two sources of scopes, in order of preference:
//! 1. The original sources embedded in the map (`sourcesContent`), parsed by our own swc-based
//!    extraction (`names.rs`) in each file's own syntax (JavaScript with JSX, TypeScript, TSX).
//!    For each original file we look up the innermost function around every original position
//!    our tokens point to: that is the function the reported file and line belong to, even
//!    where the minifier inlined it into another function or dropped its name
//!    (`function redeem(){}` → `function(){}`), and its name is written as in the original
//!    code. Sources that parse in none of those syntaxes (Vue, Svelte files) fall through to
//!    the next step.
//! 2. The minified source, scopes mapped back through the map's `names` (what Sentry's
//!    Symbolicator does). The cache is built over a copy of the map without `sourcesContent`:
//!    its lookups UTF-8-check the matched file's whole source text on every call, which made
//!    them ~20x slower on large maps. symbolic's writer drops a token that repeats the last
//!    kept token's whole record across a line break (the bug this module exists to beat), so
//!    where its lookup finds nothing at a token's exact position, that token's scope is the
//!    previous one's, which we carry forward.
//!
//! The parser recurses once per nesting level of the code and a stack overflow aborts the
//! process, so parsing runs on its own thread with a stack sized from the input
//! ([`parser_stack_size`]); a panic in it only loses the scope names. swc's TypeScript parser
//! also backtracks exponentially on some input (nested `<(`: 351 bytes take 5.5 s, a few more
//! take hours) and offers no way to stop it, so the caller waits for a parser thread only
//! until [`PARSE_DEADLINE`], then goes on without scope names and leaves the thread to finish
//! on its own; while [`MAX_RUNAWAY`] such threads run, nothing new is parsed (the minified
//! source's scopes still apply).

use sourcemap::SourceMap;
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
            let path = sm.get_source(id as u32).unwrap_or_default().to_owned();
            work.push((id, path, text.to_owned(), list));
        }
    }
    let stack = work
        .iter()
        .filter_map(|(_, _, text, _)| parser_stack_size(text))
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
            .map(|(id, path, text, positions)| {
                // Sources too large to parse safely keep no scopes, and so does a source the
                // parser panics on (swc asserts on some hostile input): the others keep theirs.
                // Names it added before the panic stay in the table, unused.
                let scopes = parser_stack_size(&text).and_then(|_| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        scopes_in_source(&path, &text, &positions, &mut names)
                    }))
                    .ok()
                    .flatten()
                });
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

/// The scope at each position of one original file, or `None` when the file did not parse
/// in any syntax its path suggests (a Vue or Svelte file…).
fn scopes_in_source(
    path: &str,
    text: &str,
    positions: &[(u32, u32)],
    names: &mut NameTable,
) -> Option<Vec<u32>> {
    let scopes = super::names::function_scopes(path, text)?;
    let offsets = byte_offsets(text, positions);
    // Positions are sorted, so their offsets are too: one sweep with a stack of the scopes
    // open at the current offset (scopes are sorted by start, parents before children).
    let mut open: Vec<&super::names::Scope> = Vec::new();
    let mut next = 0;
    let mut out = Vec::with_capacity(positions.len());
    for offset in offsets {
        while let Some(scope) = scopes.get(next).filter(|s| s.start <= offset) {
            while open.last().is_some_and(|o| o.end <= scope.start) {
                open.pop();
            }
            open.push(scope);
            next += 1;
        }
        while open.last().is_some_and(|o| o.end <= offset) {
            open.pop();
        }
        out.push(match open.last() {
            Some(scope) => match &scope.name {
                Some(name) => names.id(name),
                None => LOCAL_ANONYMOUS,
            },
            None => LOCAL_UNKNOWN,
        });
    }
    Some(out)
}

/// Byte offsets of sorted (0-based line, 0-based UTF-16 column) positions in `text`; a column
/// past the end of its line gives the line's end.
fn byte_offsets(text: &str, positions: &[(u32, u32)]) -> Vec<u32> {
    let mut line_starts = vec![0usize];
    line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    positions
        .iter()
        .map(|&(line, column)| {
            let start = line_starts
                .get(line as usize)
                .copied()
                .unwrap_or(text.len());
            let end = line_starts
                .get(line as usize + 1)
                .copied()
                .unwrap_or(text.len());
            let mut units = 0u32;
            let mut offset = end;
            for (i, c) in text.get(start..end).unwrap_or_default().char_indices() {
                if units >= column {
                    offset = start + i;
                    break;
                }
                units += c.len_utf16() as u32;
            }
            u32::try_from(offset).unwrap_or(u32::MAX)
        })
        .collect()
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
    let minified = minified.to_owned();
    on_parser_thread(stack, move || {
        let writer = SourceMapCacheWriter::new(&minified, &json).map_err(|_| ())?;
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

/// How long a caller waits for a parser thread.
pub(crate) const PARSE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
/// Parser threads left running past their deadline, at most (the CPU they can take).
pub(crate) const MAX_RUNAWAY: usize = 1;

/// The process's parser threads.
static PARSERS: ParserThreads = ParserThreads::new(PARSE_DEADLINE, MAX_RUNAWAY);

/// Runs `f` on a new thread with the given stack, returning its result; `Err(())` when the
/// thread could not start, `f` panicked, or it did not finish within [`PARSE_DEADLINE`].
pub(crate) fn on_parser_thread<T: Send + 'static>(
    stack: usize,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ()> {
    PARSERS.run(stack, f)
}

/// Parser threads with a deadline, and a count of those still running past it.
pub(crate) struct ParserThreads {
    deadline: std::time::Duration,
    max_runaway: usize,
    runaway: std::sync::atomic::AtomicUsize,
}

const RUNNING: u8 = 0;
const DONE: u8 = 1;
const ABANDONED: u8 = 2;

impl ParserThreads {
    pub(crate) const fn new(deadline: std::time::Duration, max_runaway: usize) -> Self {
        ParserThreads {
            deadline,
            max_runaway,
            runaway: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Threads running past their deadline now.
    pub(crate) fn runaway(&self) -> usize {
        self.runaway.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn run<T: Send + 'static>(
        &'static self,
        stack: usize,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ()> {
        use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
        if self.runaway() >= self.max_runaway {
            return Err(());
        }
        let state = std::sync::Arc::new(AtomicU8::new(RUNNING));
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let thread_state = state.clone();
        std::thread::Builder::new()
            .name("js-scopes".to_owned())
            .stack_size(stack)
            .spawn(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
                // Only an abandoned thread was counted (before it was marked so).
                if thread_state.swap(DONE, SeqCst) == ABANDONED {
                    self.runaway.fetch_sub(1, SeqCst);
                }
                let _ = tx.send(result);
            })
            .map_err(|_| ())?;
        match rx.recv_timeout(self.deadline) {
            Ok(result) => result.map_err(|_| ()),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                self.runaway.fetch_add(1, SeqCst);
                if state
                    .compare_exchange(RUNNING, ABANDONED, SeqCst, SeqCst)
                    .is_err()
                {
                    // It finished just now.
                    self.runaway.fetch_sub(1, SeqCst);
                    return rx.recv().map_err(|_| ())?.map_err(|_| ());
                }
                Err(())
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(()),
        }
    }
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
