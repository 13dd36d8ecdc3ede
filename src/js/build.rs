//! Building the lookup cache from a source map (and, optionally, the minified file).
//!
//! Tokens come from the `sourcemap` crate, which resolves every segment of the map, into our
//! own index (`format.rs`); scope names come from `scopes.rs`.

use std::borrow::Cow;
use std::collections::HashMap;

use sourcemap::{DecodedMap, SourceMap, SourceMapBuilder, SourceMapHermes, SourceMapIndex};
use symbolic::sourcemapcache::{ScopeLookupResult, SourceMapCache};

use super::dart::DartAsyncNames;
use super::format::{
    CacheParts, ScopeOrigins, INDEX_WORDS, MAX_ID, NONE, RANGE_FLAG, RECORD_WORDS, SCOPE_ANONYMOUS,
    SCOPE_UNKNOWN, SOURCE_IGNORE_LISTED, SOURCE_WORDS,
};
use super::paths::normalize_source_path;
use super::scopes::{
    minified_scope_cache, original_scopes, MinifiedScopes, OriginalScopes, LOCAL_ANONYMOUS,
    LOCAL_UNKNOWN,
};
#[cfg(doc)]
use super::JsCache;
use super::JsError;

/// Generated lines beyond the map's own size that we accept. A regular map needs one byte
/// (`;`) per generated line, so only index-map section offsets can go past its length; this
/// bounds the line table a hostile offset could make us allocate.
const EXTRA_LINES: u64 = 1 << 20;

/// Builds the serialized lookup cache for one (minified source, map) pair. `minified` is
/// `None` when only the map was uploaded.
///
/// Function scopes come from the map's Hermes function maps if it has them, else from the
/// original sources it embeds (`sourcesContent`), else from `minified`; with none of these,
/// lookups still resolve positions but name no function ([`JsCache::scope_origins`] tells
/// which applied).
///
/// Accepts regular maps, index maps (`sections` with embedded maps, flattened here, each
/// section clipped at the next one's offset) and Hermes/Metro maps (`x_facebook_sources`).
pub fn build_cache(minified: Option<&str>, sourcemap: &[u8]) -> Result<Vec<u8>, JsError> {
    let decoded = sourcemap::decode_slice(sourcemap).map_err(malformed)?;
    let mut map = match decoded {
        DecodedMap::Regular(sm) => Flat::Regular(sm),
        DecodedMap::Index(index) => Flat::Regular(flatten(&index)?),
        DecodedMap::Hermes(smh) => Flat::Hermes(smh),
    };

    let token_count = map.sm().get_token_count();
    let lines = match token_count
        .checked_sub(1)
        .and_then(|i| map.sm().get_token(i as usize))
    {
        Some(last) => u64::from(last.get_dst_line()) + 1,
        None => 0,
    };
    let max_lines = (sourcemap.len() as u64 + EXTRA_LINES).min(u64::from(MAX_ID));
    if lines > max_lines {
        return Err(JsError::TooLarge(format!(
            "the map places mappings on generated line {lines}, far beyond what a map of {} bytes describes",
            sourcemap.len()
        )));
    }
    if token_count > MAX_ID {
        return Err(JsError::TooLarge(format!("{token_count} mappings")));
    }

    let mut strings = Strings::default();
    let (sources, source_index) = write_sources(map.sm(), &mut strings)?;

    // Scopes: Hermes function maps, else the original sources, else the minified source.
    // Stripping the sources content for the minified source's cache needs the map mutably, so
    // the original sources are parsed first.
    let mut origins = ScopeOrigins::default();
    let original = match &map {
        Flat::Regular(sm) => original_scopes(sm).unwrap_or_default(),
        Flat::Hermes(_) => OriginalScopes::default(),
    };
    origins.original_sources = original.per_source.iter().any(Option::is_some);
    let mut smc_bytes = None;
    if let (Flat::Regular(sm), Some(minified)) = (&mut map, minified) {
        if needs_minified_scopes(sm, &original) {
            match minified_scope_cache(sm, minified) {
                Ok(bytes) => smc_bytes = Some(bytes),
                Err(()) => origins.minified_source_failed = true,
            }
        }
    }
    let smc = smc_bytes.as_deref().map(SourceMapCache::parse);
    let minified_scopes = match &smc {
        Some(Ok(cache)) => {
            origins.minified_source = true;
            Some(MinifiedScopes::new(cache))
        }
        Some(Err(_)) => {
            origins.minified_source_failed = true;
            None
        }
        None => None,
    };
    let scopes = match &map {
        Flat::Hermes(smh) => {
            origins.hermes_function_maps = true;
            Scopes::Hermes(smh)
        }
        Flat::Regular(_) => Scopes::Parsed {
            original,
            minified: minified_scopes,
        },
    };
    let dart = DartAsyncNames::new(map.sm(), minified);
    let (line_starts, columns, records) =
        write_tokens(map.sm(), scopes, &dart, lines as usize, &mut strings)?;

    let (string_offsets, string_bytes) = strings.finish();
    Ok(CacheParts {
        flags: origins.to_flags(),
        line_starts,
        columns,
        records,
        sources,
        source_index,
        string_offsets,
        string_bytes,
    }
    .serialize())
}

fn malformed(e: sourcemap::Error) -> JsError {
    JsError::MalformedSourceMap(e.to_string())
}

/// A map with a single token list.
enum Flat {
    Regular(SourceMap),
    Hermes(SourceMapHermes),
}

impl Flat {
    fn sm(&self) -> &SourceMap {
        match self {
            Flat::Regular(sm) => sm,
            Flat::Hermes(smh) => smh,
        }
    }
}

enum Scopes<'a> {
    Hermes(&'a SourceMapHermes),
    Parsed {
        original: OriginalScopes,
        minified: Option<MinifiedScopes<'a>>,
    },
}

/// Whether some mapped token points into a source without original scopes.
fn needs_minified_scopes(sm: &SourceMap, original: &OriginalScopes) -> bool {
    let mut needed = vec![false; sm.get_source_count() as usize];
    for token in sm.tokens() {
        if let Some(n) = needed.get_mut(token.get_raw_token().src_id as usize) {
            *n = true;
        }
    }
    needed
        .iter()
        .enumerate()
        .any(|(id, &n)| n && original.per_source.get(id).is_none_or(Option::is_none))
}

/// Flattens an index map, with `@jridgewell/trace-mapping`'s semantics: sections in offset
/// order, each section's mappings clipped at the next section's offset.
fn flatten(index: &SourceMapIndex) -> Result<SourceMap, JsError> {
    let mut builder = SourceMapBuilder::new(index.get_file());
    let sections: Vec<_> = index.sections().collect();
    for (i, section) in sections.iter().enumerate() {
        let (off_line, off_col) = section.get_offset();
        let stop = sections.get(i + 1).map(|next| next.get_offset());
        let map: Cow<'_, SourceMap> = match section.get_sourcemap() {
            Some(DecodedMap::Regular(sm)) => Cow::Borrowed(sm),
            Some(DecodedMap::Index(nested)) => Cow::Owned(flatten(nested)?),
            Some(DecodedMap::Hermes(smh)) => Cow::Borrowed(&**smh),
            None => {
                return Err(JsError::UnsupportedSourceMap(format!(
                    "index map section {i} refers to {} instead of embedding its map",
                    section.get_url().unwrap_or("<no url>")
                )))
            }
        };
        let ignored: Vec<u32> = map.ignore_list().copied().collect();
        let mut source_ids = Vec::with_capacity(map.get_source_count() as usize);
        for (j, source) in map.sources().enumerate() {
            let id = builder.add_source(source);
            if let Some(contents) = map.get_source_contents(j as u32) {
                builder.set_source_contents(id, Some(contents));
            }
            if ignored.contains(&(j as u32)) {
                builder.add_to_ignore_list(id);
            }
            source_ids.push(id);
        }
        let name_ids: Vec<u32> = map.names().map(|name| builder.add_name(name)).collect();
        for token in map.tokens() {
            let (line, col) = token.get_dst();
            let line = line.checked_add(off_line);
            let col = if token.get_dst_line() == 0 {
                col.checked_add(off_col)
            } else {
                Some(col)
            };
            let (Some(line), Some(col)) = (line, col) else {
                return Err(JsError::TooLarge(format!(
                    "index map section {i} places mappings beyond line or column 2^32"
                )));
            };
            if stop.is_some_and(|stop| (line, col) >= stop) {
                break;
            }
            let raw = token.get_raw_token();
            builder.add_raw(
                line,
                col,
                token.get_src_line(),
                token.get_src_col(),
                source_ids.get(raw.src_id as usize).copied(),
                name_ids.get(raw.name_id as usize).copied(),
                token.is_range(),
            );
        }
    }
    Ok(builder.into_sourcemap())
}

/// Writes the sources table and the sorted path index; copies `sourcesContent` into the
/// string table.
fn write_sources(sm: &SourceMap, strings: &mut Strings) -> Result<(Vec<u32>, Vec<u32>), JsError> {
    let count = sm.get_source_count();
    if count > MAX_ID {
        return Err(JsError::TooLarge(format!("{count} sources")));
    }
    let ignored: Vec<u32> = sm.ignore_list().copied().collect();
    let mut sources = Vec::with_capacity(count as usize * SOURCE_WORDS);
    // (key, priority, source): the raw path wins over a normalized form of another source.
    let mut keys: Vec<(String, u8, u32)> = Vec::new();
    for id in 0..count {
        let raw = sm.get_source(id).unwrap_or_default();
        let (abs_path, filename) = normalize_source_path(raw);
        let content = match sm.get_source_contents(id) {
            Some(text) => {
                keys.push((raw.to_owned(), 0, id));
                keys.push((abs_path, 1, id));
                keys.push((filename.clone(), 2, id));
                strings.push(text)?
            }
            None => NONE,
        };
        let flags = if ignored.contains(&id) {
            SOURCE_IGNORE_LISTED
        } else {
            0
        };
        sources.extend([
            strings.intern(raw)?,
            strings.intern(&filename)?,
            content,
            flags,
        ]);
    }
    keys.sort_unstable();
    keys.dedup_by(|b, a| a.0 == b.0);
    let mut index = Vec::with_capacity(keys.len() * INDEX_WORDS);
    for (key, _, id) in keys {
        index.extend([strings.intern(&key)?, id]);
    }
    Ok((sources, index))
}

type TokenTables = (Vec<u32>, Vec<u32>, Vec<u32>);

/// Writes line starts, token columns and token records, one token per generated position
/// (the first one wins).
fn write_tokens(
    sm: &SourceMap,
    mut scopes: Scopes<'_>,
    dart: &DartAsyncNames,
    lines: usize,
    strings: &mut Strings,
) -> Result<TokenTables, JsError> {
    let count = sm.get_token_count() as usize;
    let mut line_starts = Vec::with_capacity(lines + 1);
    let mut columns = Vec::with_capacity(count);
    let mut records = Vec::with_capacity(count * RECORD_WORDS);
    let mut name_ids = vec![NONE; sm.get_name_count() as usize];
    let mut scope_names = ScopeNames::default();
    // Original scope names by their local index, interned on first use.
    let mut original_ids = match &scopes {
        Scopes::Parsed { original, .. } => vec![NONE; original.names.len()],
        Scopes::Hermes(_) => Vec::new(),
    };
    let source_count = sm.get_source_count();
    let mut previous = None;
    for token in sm.tokens() {
        let (line, col) = token.get_dst();
        if previous == Some((line, col)) {
            continue;
        }
        previous = Some((line, col));
        while line_starts.len() <= line as usize {
            line_starts.push(columns.len() as u32);
        }
        columns.push(col);
        let raw = token.get_raw_token();
        if raw.src_id == NONE || raw.src_id >= source_count {
            records.extend([NONE, NONE, NONE, NONE, SCOPE_UNKNOWN]);
            continue;
        }
        let source = raw.src_id | if token.is_range() { RANGE_FLAG } else { 0 };
        let name = match token.get_name() {
            Some(name) => match name_ids.get_mut(raw.name_id as usize) {
                Some(id) if *id != NONE => *id,
                Some(id) => {
                    *id = strings.intern(name)?;
                    *id
                }
                None => strings.intern(name)?,
            },
            None => NONE,
        };
        let scope = match &mut scopes {
            // sourcemap's lookup adds 1 to the token's original line unchecked (an overflow
            // panic with overflow checks, a wrong answer without): a map can say line
            // `u32::MAX`, and no function map describes that line anyway.
            Scopes::Hermes(_) if raw.src_line == u32::MAX => SCOPE_UNKNOWN,
            Scopes::Hermes(smh) => match smh.get_scope_for_token(token) {
                Some(name) => scope_names.id(name, strings)?,
                None => SCOPE_UNKNOWN,
            },
            Scopes::Parsed { original, minified } => {
                // Always advance the minified scopes: they carry state from token to token.
                let from_minified = minified.as_mut().map(|m| m.at(line, col));
                match original.get(raw.src_id, raw.src_line, raw.src_col) {
                    Some(LOCAL_UNKNOWN) => SCOPE_UNKNOWN,
                    Some(LOCAL_ANONYMOUS) => SCOPE_ANONYMOUS,
                    Some(local) => match original_ids.get_mut(local as usize) {
                        Some(id) if *id != NONE => *id,
                        Some(id) => {
                            *id = strings.intern(&original.names[local as usize])?;
                            *id
                        }
                        None => SCOPE_UNKNOWN,
                    },
                    None => match from_minified {
                        Some(ScopeLookupResult::NamedScope(name)) => {
                            scope_names.id(dart.name(name), strings)?
                        }
                        Some(ScopeLookupResult::AnonymousScope) => SCOPE_ANONYMOUS,
                        Some(ScopeLookupResult::Unknown) | None => SCOPE_UNKNOWN,
                    },
                }
            }
        };
        records.extend([source, raw.src_line, raw.src_col, name, scope]);
    }
    while line_starts.len() <= lines {
        line_starts.push(columns.len() as u32);
    }
    Ok((line_starts, columns, records))
}

/// Interns scope names, remembering the last one: consecutive tokens mostly share a scope.
#[derive(Default)]
struct ScopeNames {
    last: Option<(String, u32)>,
}

impl ScopeNames {
    fn id(&mut self, name: &str, strings: &mut Strings) -> Result<u32, JsError> {
        if let Some((last, id)) = &self.last {
            if last == name {
                return Ok(*id);
            }
        }
        let id = strings.intern(name)?;
        self.last = Some((name.to_owned(), id));
        Ok(id)
    }
}

/// The string table under construction: short strings are de-duplicated, source texts are not.
#[derive(Default)]
struct Strings {
    bytes: Vec<u8>,
    offsets: Vec<u32>,
    ids: HashMap<Box<str>, u32>,
}

impl Strings {
    fn intern(&mut self, s: &str) -> Result<u32, JsError> {
        if let Some(&id) = self.ids.get(s) {
            return Ok(id);
        }
        let id = self.push(s)?;
        self.ids.insert(s.into(), id);
        Ok(id)
    }

    fn push(&mut self, s: &str) -> Result<u32, JsError> {
        let id = self.offsets.len() as u32;
        let end = self.bytes.len() as u64 + s.len() as u64;
        if id >= MAX_ID || end > u64::from(u32::MAX) {
            return Err(JsError::TooLarge(
                "more than 4 GiB of names, paths and sources".to_owned(),
            ));
        }
        self.offsets.push(self.bytes.len() as u32);
        self.bytes.extend_from_slice(s.as_bytes());
        Ok(id)
    }

    fn finish(mut self) -> (Vec<u32>, Vec<u8>) {
        self.offsets.push(self.bytes.len() as u32);
        (self.offsets, self.bytes)
    }
}
