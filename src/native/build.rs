//! Building a cache: debug file (+ companions) → SymCache + side tables → bytes.
//!
//! The functions (with their line records and inlinees) come from symbolic's debug session for
//! every format it reads, or from our own DWARF walker (`dwarf.rs`) when the file holds split
//! DWARF skeleton units, which symbolic cannot follow to their `.dwo`/`.dwp`. Symbols are added
//! by us rather than by `SymCacheConverter::process_object`, for two reasons:
//!
//! 1. symbolic lets a symbol without a size (`_init`, Breakpad `PUBLIC` records, PDB publics)
//!    extend to the next symbol, or forever after the last one, so PLT stubs, padding and data
//!    would resolve to the nearest symbol. We bound each symbol by its size, else by the next
//!    symbol or function and the end of its executable section.
//! 2. A symbol inside a function that has debug information would split that function's line
//!    records at the symbol's address. We only add symbols where no debug function covers them.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use object::{Object as _, ObjectSection as _};
use symbolic::common::{Language, Name, NameMangling};
use symbolic::debuginfo::{
    Archive, FileFormat, Function, Object, ObjectDebugSession, Symbol,
};
use symbolic::demangle::Demangle;
use symbolic::symcache::transform::{self, Transformer};
use symbolic::symcache::SymCacheConverter;

use super::cache::{fnv1a, FLAG_MISSING_DWO, HEADER_LEN, MAGIC, NAME_ENTRY_LEN, STR_REF_LEN};
use super::dwarf::{self, OrphanLine};
use super::{BuildInput, NativeError, DEMANGLE_OPTIONS, FORMAT_VERSION};

/// Builds the lookup cache for one module. See [`BuildInput`] for what goes in and the module
/// docs for the address space of the result.
///
/// Costs roughly linear time in the size of the debug information and memory proportional to
/// the number of distinct names; the input is only read (mmap it).
pub fn build_cache(input: &BuildInput) -> Result<Vec<u8>, NativeError> {
    build_cache_with(input, DwarfReader::Symbolic)
}

/// Which reader handles DWARF that is not split (split DWARF always uses ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DwarfReader {
    Symbolic,
    Own,
}

pub(crate) fn build_cache_with(
    input: &BuildInput,
    reader: DwarfReader,
) -> Result<Vec<u8>, NativeError> {
    let archive = Archive::parse(input.debug_file).map_err(|e| classify_parse_error(&e, input.debug_file))?;
    let count = archive.object_count();
    let object = archive
        .object_by_index(input.object_index)
        .map_err(|e| NativeError::Malformed(error_chain(&e)))?
        .ok_or(NativeError::ObjectIndex {
            index: input.object_index,
            count,
        })?;
    check_supported(&object)?;

    let executable = match input.executable {
        Some(bytes) => Some(companion_object(bytes, &object)?),
        None => None,
    };

    let windows = matches!(object.file_format(), FileFormat::Pe | FileFormat::Pdb);
    let mut builder = Builder::new(windows);
    builder.converter.set_arch(object.arch());
    builder.converter.set_debug_id(object.debug_id());

    // The symbol table: the debug file's, completed by the executable's.
    let mut symbols = SymbolList::default();
    symbols.extend(object.symbols());
    symbols.extend_sizes(breakpad_stack_extents(&object));
    if let Some(exe) = &executable {
        symbols.extend(exe.symbols());
    }

    // Functions with debug information.
    let mut orphan_lines = Vec::new();
    let own_reader = dwarf::MainSections::load(&object)
        .filter(|sections| reader == DwarfReader::Own || sections.has_split_units());
    match own_reader {
        Some(sections) => {
            let outcome = dwarf::functions(
                &sections,
                &symbols.by_address(),
                &input.dwo_files,
                |function| builder.add_function(function),
            )?;
            if outcome.missing_dwo_units > 0 {
                builder.flags |= FLAG_MISSING_DWO;
            }
            orphan_lines = outcome.orphan_lines;
        }
        None => {
            let session = object
                .debug_session()
                .map_err(|e| NativeError::Malformed(error_chain(&e)))?;
            add_session_functions(&session, &mut builder)?;
        }
    }

    // Executable sections bound symbols without a size.
    let sections = executable_sections(&object)
        .or_else(|| executable.as_ref().and_then(executable_sections))
        .unwrap_or_default();
    builder.add_symbols(symbols, &sections, &orphan_lines);
    builder.finish()
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

fn classify_parse_error(error: &dyn std::error::Error, data: &[u8]) -> NativeError {
    match Archive::peek(data) {
        FileFormat::Unknown => NativeError::Unsupported("unknown file format".to_owned()),
        format => NativeError::Malformed(format!("{}: {}", format.name(), error_chain(error))),
    }
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
    let archive = Archive::parse(bytes).map_err(|e| classify_parse_error(&e, bytes))?;
    let mut first = None;
    let mut same_arch = None;
    for object in archive.objects() {
        let object = object.map_err(|e| NativeError::Malformed(format!("executable: {}", error_chain(&e))))?;
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

/// Executable section ranges of `object`, relative to its load address, sorted. `None` when the
/// format has no section table we can read (PDB, Breakpad, wasm) or none is executable.
fn executable_sections(object: &Object<'_>) -> Option<Vec<(u64, u64)>> {
    if object.file_format() == FileFormat::Wasm {
        return wasm_function_bodies(object.data());
    }
    if !matches!(
        object.file_format(),
        FileFormat::Elf | FileFormat::MachO | FileFormat::Pe
    ) {
        return None;
    }
    let file = object::File::parse(object.data()).ok()?;
    let load_address = object.load_address();
    let mut ranges: Vec<(u64, u64)> = file
        .sections()
        .filter(|section| is_executable(section.flags()))
        .filter_map(|section| {
            let start = section.address().checked_sub(load_address)?;
            let end = start.checked_add(section.size())?;
            (end > start).then_some((start, end))
        })
        .collect();
    ranges.sort_unstable();
    (!ranges.is_empty()).then_some(ranges)
}

/// The function bodies of a wasm module, as file offsets (symbolic's address space for wasm),
/// each without the size prefix that precedes it. symbolic sizes wasm symbols up to the next
/// body, so the next function's size prefix would otherwise resolve to the previous function.
fn wasm_function_bodies(data: &[u8]) -> Option<Vec<(u64, u64)>> {
    fn leb(data: &[u8], pos: &mut usize) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *data.get(*pos)?;
            *pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    let mut pos = 8; // magic and version
    while pos < data.len() {
        let id = *data.get(pos)?;
        pos += 1;
        let size = usize::try_from(leb(data, &mut pos)?).ok()?;
        let end = pos.checked_add(size)?;
        if id != 10 {
            pos = end;
            continue;
        }
        let count = leb(data, &mut pos)?;
        let mut bodies = Vec::new();
        for _ in 0..count {
            let body_size = usize::try_from(leb(data, &mut pos)?).ok()?;
            let body_end = pos.checked_add(body_size)?;
            if body_end > end {
                return None;
            }
            bodies.push((pos as u64, body_end as u64));
            pos = body_end;
        }
        return (!bodies.is_empty()).then_some(bodies);
    }
    None
}

/// Names of symbols that mark something other than a function: they bound the symbol before
/// them but resolve nothing themselves.
///
/// - dump_syms writes `PUBLIC` records named `<unknown in foo.pdb>` after the last function of
///   a PE and `<.plt ELF section in libfoo.so>` for PLT sections: placeholders, not functions.
/// - The Mach-O header symbols (`__mh_execute_header`, …) point at the load commands at the
///   start of `__TEXT`.
fn is_non_function_symbol(name: &str) -> bool {
    if name.starts_with('<')
        && name.ends_with('>')
        && (name.starts_with("<unknown in ") || name.contains(" section in "))
    {
        return true;
    }
    matches!(
        name.trim_start_matches('_'),
        "mh_execute_header"
            | "mh_dylib_header"
            | "mh_bundle_header"
            | "mh_dylinker_header"
            | "mh_preload_header"
            | "mh_kext_header"
    )
}

/// Code extents recorded in Breakpad `STACK CFI INIT` / `STACK WIN` records, by start address.
/// They give `PUBLIC` records (which have no size) an end.
fn breakpad_stack_extents(object: &Object<'_>) -> HashMap<u64, u64> {
    use symbolic::debuginfo::breakpad::BreakpadStackRecord;
    let mut extents = HashMap::new();
    let Object::Breakpad(breakpad) = object else {
        return extents;
    };
    for record in breakpad.stack_records().flatten() {
        let (start, size) = match record {
            BreakpadStackRecord::Cfi(cfi) => (cfi.start, cfi.size),
            BreakpadStackRecord::Win(win) => (u64::from(win.code_start), u64::from(win.code_size)),
        };
        let entry = extents.entry(start).or_insert(0);
        *entry = (*entry).max(size);
    }
    extents
}

fn is_executable(flags: object::SectionFlags) -> bool {
    match flags {
        object::SectionFlags::Elf { sh_flags } => {
            let alloc_exec = u64::from(object::elf::SHF_ALLOC | object::elf::SHF_EXECINSTR);
            sh_flags & alloc_exec == alloc_exec
        }
        object::SectionFlags::MachO { flags } => {
            flags & (object::macho::S_ATTR_PURE_INSTRUCTIONS | object::macho::S_ATTR_SOME_INSTRUCTIONS)
                != 0
        }
        object::SectionFlags::Coff { characteristics } => {
            characteristics
                & (object::pe::IMAGE_SCN_MEM_EXECUTE | object::pe::IMAGE_SCN_CNT_CODE)
                != 0
        }
        _ => false,
    }
}

/// Symbols of the debug file and the executable, deduplicated by address.
#[derive(Default)]
pub(crate) struct SymbolList<'d> {
    symbols: Vec<(u64, u64, Cow<'d, str>)>,
}

impl<'d> SymbolList<'d> {
    fn extend(&mut self, symbols: impl Iterator<Item = Symbol<'d>>) {
        for symbol in symbols {
            if let Some(name) = symbol.name.filter(|name| !name.is_empty()) {
                self.symbols.push((symbol.address, symbol.size, name));
            }
        }
    }

    /// Gives sizes to symbols that have none, from another source of code extents.
    fn extend_sizes(&mut self, extents: HashMap<u64, u64>) {
        for symbol in &mut self.symbols {
            if symbol.1 == 0 {
                symbol.1 = extents.get(&symbol.0).copied().unwrap_or(0);
            }
        }
    }

    /// Sorted by address; per address the first name seen (debug file before executable, and
    /// the symbol table's order) with the largest size.
    fn normalize(&mut self) {
        // Stable sort keeps the insertion order among equal addresses.
        self.symbols.sort_by_key(|s| s.0);
        let mut out: Vec<(u64, u64, Cow<'d, str>)> = Vec::with_capacity(self.symbols.len());
        for (address, size, name) in self.symbols.drain(..) {
            match out.last_mut() {
                Some(last) if last.0 == address => last.1 = last.1.max(size),
                _ => out.push((address, size, name)),
            }
        }
        self.symbols = out;
    }

    /// Name lookup by exact address, for naming DWARF functions like symbolic does.
    fn by_address(&mut self) -> HashMap<u64, &str> {
        self.normalize();
        self.symbols
            .iter()
            .map(|(address, _, name)| (*address, name.as_ref()))
            .collect()
    }
}

/// Undecorates C names in PE/PDB files (`_foo`, `_foo@8`, `@foo@8`, `foo@@8`), the same rule as
/// symbolic applies in `process_object` (from Mozilla's dump_syms).
fn undecorate_windows(name: &str) -> &str {
    if name.starts_with('?') || name.contains([':', '(', '<']) {
        return name;
    }
    if let Some((base, size)) = name.rsplit_once("@@") {
        if size.parse::<u32>().is_ok() {
            return base;
        }
    }
    if let Some(rest) = name.strip_prefix(['_', '@']) {
        if let Some((base, size)) = rest.rsplit_once('@') {
            if size.parse::<u32>().is_ok() {
                return base;
            }
        }
        if name.starts_with('_') {
            return rest;
        }
    }
    name
}

struct UndecorateWindows;

impl Transformer for UndecorateWindows {
    fn transform_function<'f>(&'f mut self, mut f: transform::Function<'f>) -> transform::Function<'f> {
        let undecorated = undecorate_windows(&f.name);
        if undecorated.len() != f.name.len() {
            f.name = Cow::Owned(undecorated.to_owned());
        }
        f
    }
}

struct Builder<'a> {
    converter: SymCacheConverter<'a>,
    windows: bool,
    flags: u32,
    /// Raw name → demangled name and detected language, when demangling changes it.
    names: HashMap<String, Option<(String, Language)>>,
    comp_dirs: BTreeSet<String>,
    /// `[start, end)` of every top-level function with debug information.
    function_ranges: Vec<(u64, u64)>,
}

impl<'a> Builder<'a> {
    fn new(windows: bool) -> Self {
        let mut converter = SymCacheConverter::new();
        if windows {
            converter.add_transformer(UndecorateWindows);
        }
        Builder {
            converter,
            windows,
            flags: 0,
            names: HashMap::new(),
            comp_dirs: BTreeSet::new(),
            function_ranges: Vec::new(),
        }
    }

    fn add_function(&mut self, function: &Function<'_>) {
        if function.size == 0 {
            return;
        }
        self.function_ranges
            .push((function.address, function.end_address()));
        let comp_dir = super::lossy(function.compilation_dir);
        let comp_dir = comp_dir.trim_end_matches(['/', '\\']);
        if !comp_dir.is_empty() && !self.comp_dirs.contains(comp_dir) {
            self.comp_dirs.insert(comp_dir.to_owned());
        }
        self.record_names(function);
        self.converter.process_symbolic_function(function);
    }

    fn record_names(&mut self, function: &Function<'_>) {
        self.record_name(function.name.as_str(), function.name.language());
        for inlinee in &function.inlinees {
            self.record_names(inlinee);
        }
    }

    fn record_name(&mut self, raw: &str, language: Language) {
        let raw = if self.windows { undecorate_windows(raw) } else { raw };
        if raw.is_empty() || self.names.contains_key(raw) {
            return;
        }
        let name = Name::new(raw, NameMangling::Unknown, language);
        let demangled = name.try_demangle(DEMANGLE_OPTIONS);
        let entry = (demangled != raw).then(|| (demangled.into_owned(), name.detect_language()));
        self.names.insert(raw.to_owned(), entry);
    }

    fn add_symbols(
        &mut self,
        mut symbols: SymbolList<'_>,
        sections: &[(u64, u64)],
        orphan_lines: &[OrphanLine],
    ) {
        symbols.normalize();
        let covered = merge_ranges(std::mem::take(&mut self.function_ranges));
        let symbols = &symbols.symbols;
        for (i, (address, size, name)) in symbols.iter().enumerate() {
            let address = *address;
            let section = sections
                .iter()
                .find(|(start, end)| *start <= address && address < *end);
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
            // Sizes past 4 GiB cannot be represented; 0 means "unbounded" to the converter.
            let size = if end == u64::MAX { 0 } else { end - address };
            self.record_name(name, Language::Unknown);
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

        let mut strings = StringBlob::default();
        let mut names: Vec<(u64, (u32, u32), (u32, u32), u32)> = Vec::new();
        for (raw, entry) in &self.names {
            if let Some((demangled, language)) = entry {
                names.push((
                    fnv1a(raw.as_bytes()),
                    strings.add(raw)?,
                    strings.add(demangled)?,
                    *language as u32,
                ));
            }
        }
        // Sorted by hash, then by raw name so equal hashes are in a defined order.
        names.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| strings.get(a.1).cmp(strings.get(b.1)))
        });
        let mut comp_dirs = Vec::new();
        for dir in &self.comp_dirs {
            comp_dirs.push(strings.add(dir)?);
        }

        let names_offset = HEADER_LEN;
        let comp_dirs_offset = names_offset + names.len() * NAME_ENTRY_LEN;
        let strings_offset = comp_dirs_offset + comp_dirs.len() * STR_REF_LEN;
        let symcache_offset = (strings_offset + strings.bytes.len()).next_multiple_of(8);
        let total = symcache_offset + symcache.len();

        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        for value in [
            symcache_offset,
            symcache.len(),
            names_offset,
            names.len(),
            comp_dirs_offset,
            comp_dirs.len(),
            strings_offset,
            strings.bytes.len(),
        ] {
            out.extend_from_slice(&(value as u64).to_le_bytes());
        }
        debug_assert_eq!(out.len(), HEADER_LEN);
        for (hash, raw, demangled, language) in &names {
            out.extend_from_slice(&hash.to_le_bytes());
            for value in [raw.0, raw.1, demangled.0, demangled.1, *language, 0] {
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        for (offset, len) in &comp_dirs {
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
        }
        out.extend_from_slice(&strings.bytes);
        out.resize(symcache_offset, 0);
        out.extend_from_slice(&symcache);
        Ok(out)
    }
}

#[derive(Default)]
struct StringBlob {
    bytes: Vec<u8>,
}

impl StringBlob {
    fn add(&mut self, s: &str) -> Result<(u32, u32), NativeError> {
        let too_large = || NativeError::TooLarge("name table exceeds 4 GiB".to_owned());
        let offset = u32::try_from(self.bytes.len()).map_err(|_| too_large())?;
        let len = u32::try_from(s.len()).map_err(|_| too_large())?;
        self.bytes.extend_from_slice(s.as_bytes());
        Ok((offset, len))
    }

    fn get(&self, (offset, len): (u32, u32)) -> &[u8] {
        self.bytes
            .get(offset as usize..offset as usize + len as usize)
            .unwrap_or_default()
    }
}

/// Sorts and merges overlapping or touching ranges.
fn merge_ranges(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

fn covered_by(merged: &[(u64, u64)], address: u64) -> bool {
    let i = merged.partition_point(|r| r.0 <= address);
    i > 0 && address < merged[i - 1].1
}

/// The orphan line records (split DWARF units without their .dwo) inside `[start, end)`,
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
