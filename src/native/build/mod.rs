//! Building a cache: debug file (+ companions) → functions and symbols → SymCache → bytes.
//!
//! The functions (with their line records and inlinees) come from our DWARF reader
//! (`dwarf/`) for DWARF in ELF, Mach-O, wasm and PE files, and from symbolic's debug session
//! for PDB and Breakpad files (and for wasm/PE DWARF our reader fails on). Names and paths are
//! rewritten on their way in (`Encoder`). Symbols are added by us rather than by
//! `SymCacheConverter::process_object`, for two reasons:
//!
//! 1. symbolic lets a symbol without a size (`_init`, Breakpad `PUBLIC` records, PDB publics)
//!    extend to the next symbol, or forever after the last one, so PLT stubs, padding and data
//!    would resolve to the nearest symbol. We bound each symbol by its size, else by the next
//!    symbol or function and the end of its executable section.
//! 2. A symbol inside a function that has debug information would split that function's line
//!    records at the symbol's address. We only add symbols where no debug function covers them.
//!
//! Pieces: `encode` (names and paths as stored), `symbols` (symbol tables and the extents that
//! bound them); this file picks the readers and feeds the converter. Building never does I/O
//! and never panics out: parser panics below us become [`NativeError::Malformed`].

use std::borrow::Cow;

use object::{Object as _, ObjectSection as _};
use symbolic::common::{Language, Name, NameMangling};
use symbolic::debuginfo::{
    Archive, FileFormat, Function, Object, ObjectDebugSession, ParseObjectOptions, Symbol,
};
use symbolic::symcache::SymCacheConverter;

mod encode;
mod symbols;

use encode::Encoder;
pub(crate) use encode::{abs_path, base_name};
#[cfg(test)]
pub(crate) use symbols::wasm_function_bodies;
use symbols::{breakpad_stack_extents, executable_sections, is_non_function_symbol, SymbolList};

use super::cache::{FLAG_MISSING_DWO, HEADER_LEN, MAGIC};
use super::dwarf::{self, merge_ranges, OrphanLine};
use super::{BuildInput, NativeError, FORMAT_VERSION};

/// Builds the lookup cache for one module. See [`BuildInput`] for what goes in and the module
/// docs for the address space of the result.
///
/// Costs roughly linear time in the size of the debug information and memory proportional to
/// the number of distinct names; the input is only read (mmap it).
pub fn build_cache(input: &BuildInput) -> Result<Vec<u8>, NativeError> {
    build_cache_with(input, DwarfReader::Own)
}

/// Which reader turns DWARF that is not split into functions. Split DWARF always uses ours.
///
/// `Own` is the default: on every fixture it produces the same lookups as symbolic's session
/// except where symbolic drops inlined calls nested in an inlined call with an empty range
/// list (see `dwarf::walk::Hollow`), and it builds faster. If it fails on a file, symbolic's session
/// gets a second try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DwarfReader {
    /// Kept for the diagnostic comparison in the tests.
    #[cfg_attr(not(test), allow(dead_code))]
    Symbolic,
    Own,
}

pub(crate) fn build_cache_with(
    input: &BuildInput,
    reader: DwarfReader,
) -> Result<Vec<u8>, NativeError> {
    // Our code does not panic on bad input, but the parsers below us (goblin, pdb, gimli,
    // wasmparser, symbolic) are large and see untrusted files: a panic in one of them becomes
    // an error for this file rather than a crashed worker.
    let build = std::panic::AssertUnwindSafe(|| build_unguarded(input, reader));
    std::panic::catch_unwind(build).unwrap_or_else(|payload| Err(panicked(payload)))
}

pub(crate) fn build_unguarded(
    input: &BuildInput,
    reader: DwarfReader,
) -> Result<Vec<u8>, NativeError> {
    let archive = Archive::parse_with_opts(input.debug_file, parse_options())
        .map_err(|e| classify_parse_error(&e, input.debug_file))?;
    let count = archive.object_count();
    let object = archive
        .object_by_index(input.object_index)
        .map_err(|e| NativeError::Malformed(error_chain(&e)))?
        .ok_or(NativeError::ObjectIndex {
            index: input.object_index,
            count,
        })?;
    check_supported(&object)?;
    check_compressed_sections(&object)?;

    let executable = match input.executable {
        Some(bytes) => Some(companion_object(bytes, &object)?),
        None => None,
    };

    // The symbol table: the debug file's, completed by the executable's.
    let mut symbols = SymbolList::default();
    symbols.extend(object.symbols());
    symbols.extend_sizes(breakpad_stack_extents(&object));
    if let Some(exe) = &executable {
        symbols.extend(exe.symbols());
    }

    // Functions with debug information: our DWARF reader where there is DWARF, else (or if it
    // fails on wasm/PE DWARF) symbolic's session.
    let mut builder = Builder::new(&object);
    let mut orphan_lines = Vec::new();
    let mut read = false;
    if let Some(sections) = dwarf::MainSections::load(&object)? {
        let split = sections.has_split_units();
        if reader == DwarfReader::Own || split {
            let result = dwarf::functions(
                &sections,
                &symbols.by_address(),
                &input.dwo_files,
                |function| builder.add_function(function),
            );
            match result {
                Ok(outcome) => {
                    if outcome.missing_dwo_units > 0 {
                        builder.flags |= FLAG_MISSING_DWO;
                    }
                    orphan_lines = outcome.orphan_lines;
                    read = true;
                }
                // symbolic cannot follow split units, and for ELF and Mach-O it would
                // decompress sections unsafely (see `dwarf::MainSections::load`).
                Err(e) if split || !dwarf::MainSections::symbolic_may_retry(&object) => {
                    return Err(e)
                }
                Err(_) => builder = Builder::new(&object),
            }
        }
    }
    if !read {
        let session = object
            .debug_session()
            .map_err(|e| NativeError::Malformed(error_chain(&e)))?;
        add_session_functions(&session, &mut builder)?;
    }

    // Executable sections bound symbols without a size.
    let sections = executable_sections(&object)
        .or_else(|| executable.as_ref().and_then(executable_sections))
        .unwrap_or_default();
    builder.add_symbols(symbols, &sections, &orphan_lines);
    builder.finish()
}

/// symbolic's options: Breakpad inline records nested deeper than our DWARF limit are dropped
/// (the SymCache converter recurses once per level).
/// The largest decompressed section symbolic may reserve for (it allocates the size a
/// compressed section's header claims before decoding; an unsatisfiable claim would abort
/// the process). Our own DWARF loader never trusts the header (`dwarf::load`).
const MAX_DECOMPRESSED_SECTION: usize = 4 << 30;

pub(crate) fn parse_options() -> ParseObjectOptions {
    let mut options = ParseObjectOptions::default();
    options.max_inline_depth = Some(dwarf::MAX_INLINE_DEPTH);
    options.max_decompressed_section_size = Some(MAX_DECOMPRESSED_SECTION);
    options
}

pub(crate) fn panicked(payload: Box<dyn std::any::Any + Send>) -> NativeError {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    NativeError::Malformed(format!("a parser panicked on this file: {message}"))
}

fn add_session_functions(
    session: &ObjectDebugSession<'_>,
    builder: &mut Builder<'_>,
) -> Result<(), NativeError> {
    for function in session.functions() {
        let function = function.map_err(|e| NativeError::Malformed(error_chain(&e)))?;
        builder.add_function(&function);
    }
    Ok(())
}

/// Full `Display` of an error and its sources, `a: b: c`.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

pub(crate) fn classify_parse_error(error: &dyn std::error::Error, data: &[u8]) -> NativeError {
    match Archive::peek(data) {
        FileFormat::Unknown => NativeError::Unsupported("unknown file format".to_owned()),
        format => NativeError::Malformed(format!("{}: {}", format.name(), error_chain(error))),
    }
}

/// Largest uncompressed size a compressed section may claim: what its format can reach from the
/// compressed bytes (deflate tops out near 1032:1; zstd's RLE blocks near 32768:1), plus slack.
fn max_uncompressed_size(format: object::CompressionFormat, compressed: usize) -> u64 {
    let ratio = match format {
        object::CompressionFormat::Zlib => 1100,
        _ => 33_000,
    };
    (compressed as u64)
        .saturating_mul(ratio)
        .saturating_add(1 << 20)
}

/// Rejects compressed debug sections whose header claims a size their data cannot inflate to.
/// symbolic allocates the claimed size up front, so a forged header (a few bytes) would make
/// the process abort on a failed multi-terabyte allocation, which no `catch_unwind` stops.
fn check_compressed_sections(object: &Object<'_>) -> Result<(), NativeError> {
    if !matches!(object.file_format(), FileFormat::Elf | FileFormat::MachO) {
        return Ok(());
    }
    let Ok(file) = object::File::parse(object.data()) else {
        return Ok(()); // symbolic parsed it; it will report what is wrong, if anything.
    };
    for section in file.sections() {
        let Ok(compressed) = section.compressed_data() else {
            continue;
        };
        if compressed.format == object::CompressionFormat::None {
            continue;
        }
        let limit = max_uncompressed_size(compressed.format, compressed.data.len());
        if compressed.uncompressed_size > limit {
            return Err(NativeError::Malformed(format!(
                "section {} claims {} bytes uncompressed from {} compressed bytes",
                section.name().unwrap_or("?"),
                compressed.uncompressed_size,
                compressed.data.len()
            )));
        }
    }
    Ok(())
}

fn check_supported(object: &Object<'_>) -> Result<(), NativeError> {
    match object.file_format() {
        FileFormat::Elf
        | FileFormat::MachO
        | FileFormat::Pe
        | FileFormat::Pdb
        | FileFormat::Breakpad
        | FileFormat::Wasm => Ok(()),
        other => Err(NativeError::Unsupported(format!(
            "{} files carry no native debug information",
            other.name()
        ))),
    }
}

/// The object in `bytes` that belongs with `debug`: same debug ID if one matches (fat
/// archives), else the same architecture, else the first.
fn companion_object<'d>(bytes: &'d [u8], debug: &Object<'_>) -> Result<Object<'d>, NativeError> {
    let archive = Archive::parse_with_opts(bytes, parse_options())
        .map_err(|e| classify_parse_error(&e, bytes))?;
    let mut first = None;
    let mut same_arch = None;
    for object in archive.objects() {
        let object = object
            .map_err(|e| NativeError::Malformed(format!("executable: {}", error_chain(&e))))?;
        if object.debug_id() == debug.debug_id() && !debug.debug_id().is_nil() {
            return Ok(object);
        }
        if same_arch.is_none() && object.arch() == debug.arch() {
            same_arch = Some(object);
        } else if first.is_none() {
            first = Some(object);
        }
    }
    same_arch
        .or(first)
        .ok_or_else(|| NativeError::Malformed("executable contains no object".to_owned()))
}

struct Builder<'a> {
    converter: SymCacheConverter<'a>,
    flags: u32,
    /// `[start, end)` of every top-level function with debug information.
    function_ranges: Vec<(u64, u64)>,
}

impl<'a> Builder<'a> {
    fn new(object: &Object<'_>) -> Self {
        let windows = matches!(object.file_format(), FileFormat::Pe | FileFormat::Pdb);
        let mut converter = SymCacheConverter::new();
        converter.set_arch(object.arch());
        converter.set_debug_id(object.debug_id());
        converter.add_transformer(Encoder::new(windows));
        Builder {
            converter,
            flags: 0,
            function_ranges: Vec::new(),
        }
    }

    fn add_function(&mut self, function: &Function<'_>) {
        if function.size == 0 {
            return;
        }
        self.function_ranges
            .push((function.address, function.end_address()));
        self.converter.process_symbolic_function(function);
    }

    fn add_symbols(
        &mut self,
        mut symbols: SymbolList<'_>,
        sections: &[(u64, u64)],
        orphan_lines: &[OrphanLine],
    ) {
        symbols.normalize();
        let sections = merge_ranges(sections.to_vec());
        let sections = sections.as_slice();
        let covered = merge_ranges(std::mem::take(&mut self.function_ranges));
        let symbols = &symbols.symbols;
        for (i, (address, size, name)) in symbols.iter().enumerate() {
            let address = *address;
            let section = sections
                .get(sections.partition_point(|r| r.0 <= address).wrapping_sub(1))
                .filter(|(_, end)| address < *end);
            if !sections.is_empty() && section.is_none() {
                continue; // Not code.
            }
            if covered_by(&covered, address) {
                continue; // Debug information describes this code.
            }
            if is_non_function_symbol(name) {
                continue; // Only bounds the symbol before it.
            }
            let mut end = if *size > 0 {
                address.saturating_add(*size)
            } else {
                // Up to the next symbol or function, whichever comes first.
                // `symbols` is sorted and has one entry per address; `covered` is sorted.
                let next_symbol = symbols.get(i + 1).map(|s| s.0);
                let next_function = covered
                    .get(covered.partition_point(|r| r.0 <= address))
                    .map(|r| r.0);
                match (next_symbol, next_function) {
                    (Some(a), Some(b)) => a.min(b),
                    (a, b) => a.or(b).unwrap_or(u64::MAX),
                }
            };
            if let Some((_, section_end)) = section {
                end = end.min(*section_end);
            }
            // 0 means "unbounded" to the converter.
            let size = if end == u64::MAX { 0 } else { end - address };
            let lines = orphan_lines_in(orphan_lines, address, end);
            if lines.is_empty() {
                self.converter.process_symbolic_symbol(&Symbol {
                    name: Some(Cow::Borrowed(name.as_ref())),
                    address,
                    size,
                });
            } else {
                let function = Function {
                    address,
                    size: end.saturating_sub(address),
                    name: Name::new(name.as_ref(), NameMangling::Unknown, Language::Unknown),
                    compilation_dir: &[],
                    lines,
                    inlinees: Vec::new(),
                    inline: false,
                };
                self.converter.process_symbolic_function(&function);
            }
        }
    }

    fn finish(self) -> Result<Vec<u8>, NativeError> {
        let mut symcache = Vec::new();
        self.converter
            .serialize(&mut symcache)
            .map_err(|e| NativeError::Malformed(format!("writing the SymCache: {e}")))?;
        let mut out = Vec::with_capacity(HEADER_LEN + symcache.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&(HEADER_LEN as u64).to_le_bytes());
        out.extend_from_slice(&(symcache.len() as u64).to_le_bytes());
        debug_assert_eq!(out.len(), HEADER_LEN);
        out.extend_from_slice(&symcache);
        Ok(out)
    }
}

fn covered_by(merged: &[(u64, u64)], address: u64) -> bool {
    let i = merged.partition_point(|r| r.0 <= address);
    i > 0 && address < merged[i - 1].1
}

/// The orphan line records (rows no function DIE covers, see `OrphanLine`) inside `[start, end)`,
/// clipped to it.
fn orphan_lines_in<'l>(
    lines: &'l [OrphanLine],
    start: u64,
    end: u64,
) -> Vec<symbolic::debuginfo::LineInfo<'l>> {
    let first = lines.partition_point(|l| l.address.saturating_add(l.size) <= start);
    lines[first..]
        .iter()
        .take_while(|l| l.address < end)
        .filter(|l| l.address.saturating_add(l.size) > start)
        .map(|l| {
            let address = l.address.max(start);
            let line_end = l.address.saturating_add(l.size).min(end);
            symbolic::debuginfo::LineInfo {
                address,
                size: Some(line_end - address),
                file: symbolic::debuginfo::FileInfo::new(
                    Cow::Borrowed(l.dir.as_bytes()),
                    Cow::Borrowed(l.name.as_bytes()),
                ),
                line: l.line,
            }
        })
        .collect()
}
