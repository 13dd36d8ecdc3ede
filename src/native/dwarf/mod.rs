//! Our DWARF reader: DWARF units → symbolic `Function` trees, including split DWARF.
//!
//! We walk every unit with gimli and build each function with symbolic's `FunctionBuilder`, so
//! the result is what symbolic's own DWARF session produces and goes through the same SymCache
//! converter; naming, line attribution and inline nesting follow symbolic's rules:
//!
//! - a top-level function is named from the symbol table at its start address if there is a
//!   symbol there (except for units the Dart VM wrote), else from `DW_AT_linkage_name`, else
//!   `DW_AT_name`, following `DW_AT_abstract_origin`/`DW_AT_specification`;
//! - an inlined call is named by the linkage name of its origin, else its plain name;
//! - ranges starting at 0 (code removed by the linker) and empty or inverted ranges are
//!   dropped, a function range seen twice is kept only the first time, and units lld emptied
//!   (`DW_AT_low_pc` 0, no ranges) are skipped.
//!
//! Two things symbolic's session does not do:
//!
//! - Split DWARF. symbolic sees a skeleton unit (DWARF 5 `DW_UT_skeleton`, or DWARF 4 with the
//!   GNU `DW_AT_GNU_dwo_id`) as a unit without functions. We find its split unit by DWO id in
//!   the supplied `.dwo` files or `.dwp` packages and read the functions and inlined calls from
//!   there, with the line rows from the skeleton's line program in the main file (where DWARF
//!   keeps them) and `DW_AT_call_file` resolved against the `.dwo`'s own file table. A skeleton
//!   whose split unit is missing still has its line rows; they come back as "orphan lines" that
//!   `build.rs` attaches to the symbols covering them (symbol, file and line, no inlined frames:
//!   what llvm-symbolizer shows in that case too).
//! - Inlined calls whose range list is empty but whose own inlined calls have code (see
//!   [`Hollow`]): symbolic drops the whole subtree, we keep it the way addr2line and
//!   llvm-symbolizer show it.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

mod load;

use gimli::{constants, AttributeValue, Section as _, UnitOffset, UnitType};
use symbolic::common::{join_path, Language, Name, NameMangling};
use symbolic::debuginfo::function_builder::FunctionBuilder;
use symbolic::debuginfo::{FileInfo, Function, Object};

use super::NativeError;

use load::Slice;
pub(crate) use load::{Names, PackageSections, Sections};

type Dwarf<'s> = gimli::Dwarf<Slice<'s>>;
type Unit<'s> = gimli::Unit<Slice<'s>>;

/// Deepest chain of `DW_AT_abstract_origin`/`DW_AT_specification` we follow for a name (the
/// same limit as elfutils and symbolic).
const MAX_REFERENCE_DEPTH: u8 = 16;

/// Inlined calls nested deeper than this are dropped. Real code stays far below (rust_app's
/// deepest chain is 13); the SymCache converter recurses once per level, so a forged file with
/// a very deep chain would otherwise overflow the stack.
pub(crate) const MAX_INLINE_DEPTH: u32 = 256;

/// A line row of a skeleton unit whose split unit is missing.
#[derive(Debug, Clone)]
pub(crate) struct OrphanLine {
    /// Relative to the load address.
    pub address: u64,
    pub size: u64,
    /// Directory, already joined with the compilation directory.
    pub dir: String,
    pub name: String,
    pub line: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub missing_dwo_units: usize,
    /// Sorted by address.
    pub orphan_lines: Vec<OrphanLine>,
}

fn malformed(context: &str, error: impl std::fmt::Display) -> NativeError {
    NativeError::Malformed(format!("{context}: {error}"))
}

/// The DWARF sections of the debug file, read through symbolic's containers (ELF with
/// `SHF_COMPRESSED` or `.zdebug_*` sections, Mach-O, wasm custom sections, PE), decompressed.
pub(crate) struct MainSections<'d> {
    sections: Sections<'d>,
    /// Subtracted from DWARF addresses to make them relative to the image base: the load
    /// address, or for wasm minus the code section's file offset (as symbolic does).
    address_offset: i64,
}

impl<'d> MainSections<'d> {
    /// `Ok(None)` when the object cannot carry DWARF (PDB, Breakpad) or has no `.debug_info`.
    ///
    /// ELF and Mach-O sections are read with the `object` crate rather than symbolic: both
    /// decompress (`SHF_COMPRESSED`, `.zdebug_*`, `__zdebug_*`), but symbolic allocates the
    /// size a section header claims up front, which aborts the process on a forged header,
    /// while `object` reserves fallibly.
    pub(crate) fn load(object: &Object<'d>) -> Result<Option<Self>, NativeError> {
        let (sections, address_offset) = match object {
            Object::Elf(_) | Object::MachO(_) => {
                let file =
                    object::File::parse(object.data()).map_err(|e| malformed("object file", e))?;
                let sections = Sections::load(&file, Names::Main)?;
                (sections, object.load_address() as i64)
            }
            Object::Pe(pe) => (Sections::from_symbolic(pe), pe.load_address() as i64),
            Object::Wasm(wasm) => (Sections::from_symbolic(wasm), -(wasm.code_offset() as i64)),
            _ => return Ok(None),
        };
        let main = MainSections {
            sections,
            address_offset,
        };
        let has_units = !main.sections.dwarf().debug_info.reader().is_empty();
        Ok(has_units.then_some(main))
    }

    /// Whether symbolic's session may read this file when ours fails. Not for ELF and Mach-O:
    /// symbolic would decompress their sections with an unbounded allocation (see `load`).
    pub(crate) fn symbolic_may_retry(object: &Object<'_>) -> bool {
        !matches!(object, Object::Elf(_) | Object::MachO(_))
    }

    /// True when some unit is a split DWARF skeleton (DWARF 5 `DW_UT_skeleton`, or a DWARF 4
    /// unit with the GNU extension's `DW_AT_GNU_dwo_id`).
    pub(crate) fn has_split_units(&self) -> bool {
        let dwarf = self.sections.dwarf();
        let mut headers = dwarf.units();
        while let Ok(Some(header)) = headers.next() {
            match header.type_() {
                UnitType::Skeleton(_) => return true,
                UnitType::Compilation if header.version() < 5 => {
                    let Ok(abbrevs) = header.abbreviations(&dwarf.debug_abbrev) else {
                        continue;
                    };
                    let mut entries = header.entries(&abbrevs);
                    if let Ok(Some(root)) = entries.next_dfs() {
                        if root.attr(constants::DW_AT_GNU_dwo_id).is_some() {
                            return true;
                        }
                    }
                }
                _ => {}
            }
        }
        false
    }
}

/// The split units we were given: loose `.dwo` files by DWO id, and `.dwp` packages.
struct SplitInputs<'d> {
    dwo: Vec<Sections<'d>>,
    packages: Vec<PackageSections<'d>>,
}

impl<'d> SplitInputs<'d> {
    fn load(files: &[&'d [u8]]) -> Result<Self, NativeError> {
        let mut dwo = Vec::new();
        let mut packages = Vec::new();
        for (i, bytes) in files.iter().enumerate() {
            let file = object::File::parse(*bytes)
                .map_err(|e| malformed(&format!("split DWARF file #{i}"), e))?;
            match PackageSections::load(&file)? {
                Some(package) => packages.push(package),
                None => dwo.push(Sections::load(&file, Names::Dwo)?),
            }
        }
        Ok(SplitInputs { dwo, packages })
    }
}

/// The split units, parsed, borrowing [`SplitInputs`].
struct SplitIndex<'s> {
    inputs: &'s SplitInputs<'s>,
    /// DWO id → index of the `.dwo` file in `inputs.dwo`.
    dwo: HashMap<u64, usize>,
    packages: Vec<gimli::DwarfPackage<Slice<'s>>>,
}

impl<'s> SplitIndex<'s> {
    fn new(inputs: &'s SplitInputs<'s>) -> Result<Self, NativeError> {
        let mut dwo = HashMap::new();
        for (i, sections) in inputs.dwo.iter().enumerate() {
            let dwarf = sections.dwarf();
            let mut headers = dwarf.units();
            while let Some(header) = headers
                .next()
                .map_err(|e| malformed(".dwo unit header", e))?
            {
                let id = match header.type_() {
                    UnitType::SplitCompilation(id) => Some(id),
                    UnitType::Compilation => dwarf.unit(header).ok().and_then(|unit| unit.dwo_id),
                    _ => None,
                };
                if let Some(id) = id {
                    dwo.entry(id.0).or_insert(i);
                }
            }
        }
        let mut packages = Vec::new();
        for package in &inputs.packages {
            packages.push(package.package()?);
        }
        Ok(SplitIndex {
            inputs,
            dwo,
            packages,
        })
    }

    /// The split unit's sections for `id`, linked to `parent`.
    fn find(&self, id: gimli::DwoId, parent: &Dwarf<'s>) -> Result<Option<Dwarf<'s>>, NativeError> {
        if let Some(sections) = self.dwo.get(&id.0).and_then(|&i| self.inputs.dwo.get(i)) {
            let mut dwarf = sections.dwarf();
            dwarf.make_dwo(parent);
            return Ok(Some(dwarf));
        }
        for package in &self.packages {
            if let Some(dwarf) = package
                .find_cu(id, parent)
                .map_err(|e| malformed(".dwp unit", e))?
            {
                return Ok(Some(dwarf));
            }
        }
        Ok(None)
    }
}

/// Walks every unit of the debug file (following skeletons into `dwo_files`) and calls `sink`
/// with each top-level function, its inlinees and line records, addresses relative to the image
/// base. `symbol_names` maps relative addresses to symbol-table names.
pub(crate) fn functions(
    main_sections: &MainSections<'_>,
    symbol_names: &HashMap<u64, &str>,
    dwo_files: &[&[u8]],
    mut sink: impl FnMut(&Function<'_>),
) -> Result<Outcome, NativeError> {
    let main = main_sections.sections.dwarf();
    let load_address = main_sections.address_offset as u64;
    let split_inputs = SplitInputs::load(dwo_files)?;
    let split = SplitIndex::new(&split_inputs)?;

    let mut outcome = Outcome::default();
    let mut seen_ranges = BTreeSet::new();
    let mut headers = Vec::new();
    let mut iter = main.units();
    while let Some(header) = iter.next().map_err(|e| malformed("unit header", e))? {
        headers.push(header);
    }
    let cross_units = CrossUnits {
        dwarf: &main,
        headers: headers.clone(),
        units: RefCell::new(HashMap::new()),
    };
    for header in headers {
        if !matches!(
            header.type_(),
            UnitType::Compilation | UnitType::Skeleton(_)
        ) {
            continue;
        }
        let unit = match main.unit(header) {
            Ok(unit) => unit,
            Err(gimli::Error::MissingUnitDie) => continue,
            Err(e) => return Err(malformed("compilation unit", e)),
        };
        // lld leaves units of code it removed with DW_AT_low_pc 0 and no ranges (symbolic
        // skips them too).
        if unit.low_pc == 0 && unit.dwo_id.is_none() && !unit_has_ranges(&unit) {
            continue;
        }
        let lines = LineTable::new(&main, &unit, load_address)?;
        let comp_dir: &[u8] = unit.comp_dir.map(|dir| dir.slice()).unwrap_or_default();

        let Some(dwo_id) = unit.dwo_id else {
            let language = unit_language(&unit);
            let ctx = UnitContext {
                dwarf: &main,
                unit: &unit,
                cross_units: Some(&cross_units),
                lines: lines.as_ref(),
                call_files: lines.as_ref().map(|l| &l.files),
                comp_dir,
                language,
                prefer_dwarf_names: is_dart(&main, &unit),
                load_address,
                symbol_names,
            };
            ctx.walk(&mut seen_ranges, &mut sink)?;
            continue;
        };

        let Some(split_dwarf) = split.find(dwo_id, &main)? else {
            outcome.missing_dwo_units += 1;
            if let Some(lines) = &lines {
                lines.orphans(comp_dir, &mut outcome.orphan_lines);
            }
            continue;
        };
        let mut split_unit = None;
        let mut split_headers = split_dwarf.units();
        while let Some(h) = split_headers
            .next()
            .map_err(|e| malformed(".dwo unit header", e))?
        {
            let unit_id = match h.type_() {
                UnitType::SplitCompilation(id) => Some(id),
                UnitType::Compilation => None,
                _ => continue,
            };
            let candidate = split_dwarf.unit(h).map_err(|e| malformed(".dwo unit", e))?;
            if unit_id.or(candidate.dwo_id) == Some(dwo_id) {
                split_unit = Some(candidate);
                break;
            }
        }
        let Some(mut split_unit) = split_unit else {
            outcome.missing_dwo_units += 1;
            if let Some(lines) = &lines {
                lines.orphans(comp_dir, &mut outcome.orphan_lines);
            }
            continue;
        };
        split_unit.copy_relocated_attributes(&unit);
        // DW_AT_call_file in the split unit indexes the .dwo's own line table header
        // (.debug_line.dwo, which has no rows); fall back to the skeleton's table.
        let dwo_files = FileTable::split(&split_dwarf, &split_unit, &unit)?;
        let language = unit_language(&split_unit);
        let ctx = UnitContext {
            dwarf: &split_dwarf,
            unit: &split_unit,
            cross_units: None,
            prefer_dwarf_names: false,
            lines: lines.as_ref(),
            call_files: dwo_files.as_ref().or(lines.as_ref().map(|l| &l.files)),
            comp_dir,
            language,
            load_address,
            symbol_names,
        };
        ctx.walk(&mut seen_ranges, &mut sink)?;
    }
    outcome
        .orphan_lines
        .sort_by_key(|line| (line.address, line.size));
    Ok(outcome)
}

/// Parsed units of the main file by `.debug_info` offset, for references across units
/// (`DW_FORM_ref_addr`, common with LTO).
struct CrossUnits<'a, 's> {
    dwarf: &'a Dwarf<'s>,
    headers: Vec<gimli::UnitHeader<Slice<'s>>>,
    units: RefCell<HashMap<usize, Rc<Unit<'s>>>>,
}

impl<'s> CrossUnits<'_, 's> {
    fn find(&self, target: gimli::DebugInfoOffset) -> Option<(Rc<Unit<'s>>, UnitOffset)> {
        let i = self
            .headers
            .partition_point(|h| h.offset().0 <= target.0)
            .checked_sub(1)?;
        let header = self.headers.get(i)?;
        let offset = target.to_unit_offset(header)?;
        let key = header.offset().0;
        if let Some(unit) = self.units.borrow().get(&key) {
            return Some((unit.clone(), offset));
        }
        let unit = Rc::new(self.dwarf.unit(*header).ok()?);
        let mut units = self.units.borrow_mut();
        // References mostly point into a few units; keep memory bounded on huge LTO builds.
        if units.len() >= 256 {
            units.clear();
        }
        units.insert(key, unit.clone());
        Some((unit, offset))
    }
}

fn unit_has_ranges(unit: &Unit<'_>) -> bool {
    let mut entries = unit.entries();
    matches!(entries.next_dfs(), Ok(Some(root)) if root.attr(constants::DW_AT_ranges).is_some())
}

/// Dart's mangling is lossy, so for units the Dart VM produced the DWARF names are better than
/// the symbol table's (symbolic makes the same exception).
fn is_dart(dwarf: &Dwarf<'_>, unit: &Unit<'_>) -> bool {
    let mut entries = unit.entries();
    let Ok(Some(root)) = entries.next_dfs() else {
        return false;
    };
    root.attr_value(constants::DW_AT_producer)
        .and_then(|value| dwarf.attr_string(unit, value).ok())
        .is_some_and(|producer| producer.slice() == b"Dart VM")
}

fn unit_language(unit: &Unit<'_>) -> Language {
    let mut entries = unit.entries();
    let language = match entries.next_dfs() {
        Ok(Some(root)) => root.attr_value(constants::DW_AT_language),
        _ => None,
    };
    match language {
        Some(AttributeValue::Language(lang)) => language_from_dwarf(lang),
        _ => Language::Unknown,
    }
}

/// Same mapping as symbolic's.
fn language_from_dwarf(language: gimli::DwLang) -> Language {
    match language {
        constants::DW_LANG_C
        | constants::DW_LANG_C11
        | constants::DW_LANG_C89
        | constants::DW_LANG_C99 => Language::C,
        constants::DW_LANG_C_plus_plus
        | constants::DW_LANG_C_plus_plus_03
        | constants::DW_LANG_C_plus_plus_11
        | constants::DW_LANG_C_plus_plus_14 => Language::Cpp,
        constants::DW_LANG_D => Language::D,
        constants::DW_LANG_Go => Language::Go,
        constants::DW_LANG_ObjC => Language::ObjC,
        constants::DW_LANG_ObjC_plus_plus => Language::ObjCpp,
        constants::DW_LANG_Rust => Language::Rust,
        constants::DW_LANG_Swift => Language::Swift,
        _ => Language::Unknown,
    }
}

fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// A line program's file table, resolved to (directory, name) byte strings.
struct FileTable<'s> {
    /// Indexed by DWARF file index (0-based in DWARF 5, 1-based before; index 0 is `None` then).
    files: Vec<Option<(&'s [u8], &'s [u8])>>,
}

impl<'s> FileTable<'s> {
    fn from_header(
        dwarf: &Dwarf<'s>,
        unit: &Unit<'s>,
        header: &gimli::LineProgramHeader<Slice<'s>>,
    ) -> Self {
        let count = header.file_names().len() as u64 + 1;
        let files = (0..count)
            .map(|index| {
                let file = header.file(index)?;
                let dir = file
                    .directory(header)
                    .and_then(|attr| dwarf.attr_string(unit, attr).ok())
                    .map(|s| s.slice())
                    .unwrap_or_default();
                let name = dwarf.attr_string(unit, file.path_name()).ok()?.slice();
                Some((dir, name))
            })
            .collect();
        FileTable { files }
    }

    /// The file table of a split unit's `.debug_line.dwo` contribution, if it has one.
    fn split(
        dwarf: &Dwarf<'s>,
        split_unit: &Unit<'s>,
        skeleton: &Unit<'s>,
    ) -> Result<Option<Self>, NativeError> {
        let section: &[u8] = dwarf.debug_line.reader().slice();
        if section.is_empty() {
            return Ok(None);
        }
        let program = match dwarf.debug_line.program(
            gimli::DebugLineOffset(0),
            split_unit.header.address_size(),
            skeleton.comp_dir,
            skeleton.name,
        ) {
            Ok(program) => program,
            Err(_) => return Ok(None),
        };
        Ok(Some(FileTable::from_header(
            dwarf,
            split_unit,
            program.header(),
        )))
    }

    fn get(&self, index: u64) -> FileInfo<'s> {
        match usize::try_from(index).ok().and_then(|i| self.files.get(i)) {
            Some(Some((dir, name))) => FileInfo::new(Cow::Borrowed(*dir), Cow::Borrowed(*name)),
            _ => FileInfo::default(),
        }
    }
}

#[derive(Debug)]
struct Row {
    address: u64,
    size: Option<u64>,
    file_index: u64,
    line: u64,
}

#[derive(Debug)]
struct Sequence {
    start: u64,
    end: u64,
    rows: Vec<Row>,
}

/// A unit's line rows grouped into sequences, as symbolic prepares them (same rules: rows at
/// address 0 are dropped, rows at the same address keep the last one, each row's size reaches
/// the next row).
struct LineTable<'s> {
    sequences: Vec<Sequence>,
    files: FileTable<'s>,
}

impl<'s> LineTable<'s> {
    fn new(
        dwarf: &Dwarf<'s>,
        unit: &Unit<'s>,
        load_address: u64,
    ) -> Result<Option<Self>, NativeError> {
        let Some(program) = unit.line_program.clone() else {
            return Ok(None);
        };
        let files = FileTable::from_header(dwarf, unit, program.header());
        let mut sequences = Vec::new();
        let mut rows: Vec<Row> = Vec::new();
        let mut prev_address = 0;
        let mut state = program.rows();
        while let Some((_, row)) = state.next_row().map_err(|e| malformed("line program", e))? {
            let address = row.address();
            if address == 0 {
                continue;
            }
            if let Some(last) = rows.last_mut() {
                if address >= last.address {
                    last.size = Some(address - last.address);
                }
            }
            if row.end_sequence() {
                if !rows.is_empty() {
                    let end = if address < prev_address {
                        prev_address + 1
                    } else {
                        address
                    };
                    sequences.push(Sequence {
                        start: rows[0].address,
                        end,
                        rows: std::mem::take(&mut rows),
                    });
                }
                prev_address = 0;
            } else if address >= prev_address {
                let file_index = row.file_index();
                let line = row.line().map_or(0, |l| l.get());
                match rows.last_mut() {
                    Some(last) if last.address == address => {
                        last.file_index = file_index;
                        last.line = line;
                    }
                    _ => rows.push(Row {
                        address,
                        size: None,
                        file_index,
                        line,
                    }),
                }
                prev_address = address;
            }
        }
        if !rows.is_empty() {
            sequences.push(Sequence {
                start: rows[0].address,
                end: prev_address + 1,
                rows,
            });
        }
        sequences.sort_by_key(|s| s.start);
        // Make addresses relative.
        for sequence in &mut sequences {
            sequence.start = sequence.start.wrapping_sub(load_address);
            sequence.end = sequence.end.wrapping_sub(load_address);
            for row in &mut sequence.rows {
                row.address = row.address.wrapping_sub(load_address);
            }
        }
        Ok(Some(LineTable { sequences, files }))
    }

    /// Rows overlapping `[begin, end)`: from the row covering `begin` up to the last row
    /// starting before `end`, in the first sequence that overlaps.
    fn rows(&self, begin: u64, end: u64) -> &[Row] {
        // Sequences are sorted by start and, in well-formed DWARF, disjoint: the first one that
        // overlaps `[begin, end)` is the one containing `begin`, or else the next one.
        let next = self.sequences.partition_point(|s| s.start <= begin);
        let candidates = self.sequences[next.saturating_sub(1)..].iter().take(2);
        for sequence in candidates {
            if begin >= sequence.end || sequence.start >= end {
                continue;
            }
            let from = match sequence.rows.binary_search_by_key(&begin, |r| r.address) {
                Ok(i) => i,
                Err(0) => 0,
                Err(i) => i - 1,
            };
            let len = match sequence.rows[from..].binary_search_by_key(&end, |r| r.address) {
                Ok(i) | Err(i) => i,
            };
            return &sequence.rows[from..from + len];
        }
        &[]
    }

    fn orphans(&self, comp_dir: &[u8], out: &mut Vec<OrphanLine>) {
        for sequence in &self.sequences {
            for row in &sequence.rows {
                let size = row.size.unwrap_or(1);
                let (dir, name) = match self.files.files.get(row.file_index as usize) {
                    Some(Some((dir, name))) => (*dir, *name),
                    _ => (&[][..], &[][..]),
                };
                let dir = join_path(&text(comp_dir), &text(dir));
                out.push(OrphanLine {
                    address: row.address,
                    size,
                    dir,
                    name: text(name).into_owned(),
                    line: row.line,
                });
            }
        }
    }
}

/// Attributes of a subprogram or inlined-subroutine DIE that we need.
#[derive(Default)]
struct DieAttrs<'s> {
    low_pc: Option<u64>,
    high_pc: Option<u64>,
    high_pc_size: Option<u64>,
    ranges: Option<AttributeValue<Slice<'s>>>,
    call_file: Option<u64>,
    call_line: Option<u64>,
}

enum Scope<'s> {
    /// A top-level function being built: one builder per address range, sorted by address.
    Function(Vec<FunctionRange<'s>>),
    /// An inlined call.
    Inlinee,
    /// An inlined call without code of its own whose subtree may still hold inlined calls
    /// with code; see [`Hollow`].
    Hollow(Box<Hollow<'s>>),
    /// A subtree whose inlined calls we ignore (function without code, e.g. removed by the
    /// linker), but whose nested functions we still read.
    Dead,
}

/// One address range of a top-level function (symbolic makes each its own `Function`).
struct FunctionRange<'s> {
    begin: u64,
    end: u64,
    /// Position in the DIE's range list: functions are emitted in this order.
    order: usize,
    builder: FunctionBuilder<'s>,
}

/// An inlined call whose range list is empty. gcc 12 writes such lists for DWARF 4 when a
/// range starts at the unit's base address (the pair (0, 0) ends the list), while the calls
/// inlined into it keep their ranges. addr2line and llvm-symbolizer still show it as the
/// caller of those calls (they walk up the DIE tree), so we give it the union of its
/// descendants' ranges when its subtree ends. symbolic drops the whole subtree instead.
struct Hollow<'s> {
    name: Name<'s>,
    call_file: FileInfo<'s>,
    call_line: u64,
    inline_depth: u32,
    ranges: Vec<(u64, u64)>,
}

/// The index of the innermost top-level function on `stack` and the inline depth a call
/// inlined at the top of the stack has in it (0 = called directly by the function). `None`
/// inside a dead subtree or outside any function.
fn enclosing_function(stack: &[(isize, Scope<'_>)]) -> Option<(usize, u32)> {
    let mut inline_depth = 0;
    for (i, (_, scope)) in stack.iter().enumerate().rev() {
        match scope {
            Scope::Inlinee | Scope::Hollow(_) => inline_depth += 1,
            Scope::Function(_) => return Some((i, inline_depth)),
            Scope::Dead => return None,
        }
    }
    None
}

/// Adds an inlined call with `ranges` to the builders of the function at `stack[function]`, and
/// records the ranges in every hollow inlined call it is nested in.
fn add_inlinee<'s>(
    stack: &mut [(isize, Scope<'s>)],
    function: usize,
    inline_depth: u32,
    name: &Name<'s>,
    call_file: &FileInfo<'s>,
    call_line: u64,
    ranges: &[(u64, u64)],
) {
    let Some((before, after)) = stack.split_at_mut_checked(function + 1) else {
        return;
    };
    if let Some((_, Scope::Function(builders))) = before.last_mut() {
        for &(begin, end) in ranges {
            let containing = builders
                .partition_point(|range| range.begin <= begin)
                .checked_sub(1)
                .and_then(|i| builders.get_mut(i))
                .filter(|range| begin < range.end);
            if let Some(FunctionRange { builder, .. }) = containing {
                builder.add_inlinee(
                    inline_depth,
                    name.clone(),
                    begin,
                    end - begin,
                    call_file.clone(),
                    call_line,
                );
            }
        }
    }
    for (_, scope) in after {
        if let Scope::Hollow(hollow) = scope {
            hollow.ranges.extend_from_slice(ranges);
        }
    }
}

/// Sorts and merges overlapping or touching ranges.
pub(crate) fn merge_ranges(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (begin, end) in ranges {
        match merged.last_mut() {
            Some(last) if begin <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((begin, end)),
        }
    }
    merged
}

struct UnitContext<'a, 's> {
    /// Where the DIEs are: the main file, or the split unit's `.dwo`/`.dwp`.
    dwarf: &'a Dwarf<'s>,
    unit: &'a Unit<'s>,
    /// The main file's units, when `unit` is one of them.
    cross_units: Option<&'a CrossUnits<'a, 's>>,
    /// Name top-level functions from DWARF rather than from the symbol table.
    prefer_dwarf_names: bool,
    /// Line rows; always from the main file.
    lines: Option<&'a LineTable<'s>>,
    /// File table that `DW_AT_call_file` indexes.
    call_files: Option<&'a FileTable<'s>>,
    comp_dir: &'s [u8],
    language: Language,
    load_address: u64,
    symbol_names: &'a HashMap<u64, &'a str>,
}

impl<'s> UnitContext<'_, 's> {
    fn walk(
        &self,
        seen_ranges: &mut BTreeSet<(u64, u64)>,
        sink: &mut impl FnMut(&Function<'_>),
    ) -> Result<(), NativeError> {
        let mut entries = self
            .unit
            .entries_raw(None)
            .map_err(|e| malformed("unit entries", e))?;
        let mut stack: Vec<(isize, Scope<'s>)> = Vec::new();
        let mut names: HashMap<UnitOffset, Option<Name<'s>>> = HashMap::new();
        let mut range_buf = Vec::new();
        while !entries.is_empty() {
            let offset = entries.next_offset();
            let depth = entries.next_depth();
            let Some(abbrev) = entries
                .read_abbreviation()
                .map_err(|e| malformed("DIE abbreviation", e))?
            else {
                continue;
            };
            while stack.last().is_some_and(|(d, _)| *d >= depth) {
                if let Some((_, scope)) = stack.pop() {
                    self.close(&mut stack, scope, sink);
                }
            }
            match abbrev.tag() {
                constants::DW_TAG_subprogram => {
                    let attrs = self.read_attrs(&mut entries, abbrev)?;
                    self.ranges(&attrs, &mut range_buf)?;
                    range_buf.retain(|&(begin, end)| seen_ranges.insert((begin, end - begin)));
                    if range_buf.is_empty() {
                        stack.push((depth, Scope::Dead));
                        continue;
                    }
                    let start = range_buf.iter().map(|r| r.0).min().unwrap_or_default();
                    let symbol = if self.prefer_dwarf_names {
                        None
                    } else {
                        self.symbol_names.get(&start)
                    };
                    let name = match symbol {
                        Some(symbol) => Name::new(
                            Cow::Owned((*symbol).to_owned()),
                            NameMangling::Mangled,
                            self.language,
                        ),
                        None => self.die_name(offset, &mut names).unwrap_or_else(|| {
                            Name::new("", NameMangling::Unmangled, self.language)
                        }),
                    };
                    let mut builders: Vec<_> = range_buf
                        .iter()
                        .enumerate()
                        .map(|(order, &(begin, end))| FunctionRange {
                            begin,
                            end,
                            order,
                            builder: FunctionBuilder::new(
                                name.clone(),
                                self.comp_dir,
                                begin,
                                end - begin,
                            )
                            .max_inline_depth(Some(MAX_INLINE_DEPTH)),
                        })
                        .collect();
                    builders.sort_by_key(|range| range.begin);
                    stack.push((depth, Scope::Function(builders)));
                }
                constants::DW_TAG_inlined_subroutine => {
                    let Some((function, inline_depth)) = enclosing_function(&stack) else {
                        entries
                            .skip_attributes(abbrev.attributes())
                            .map_err(|e| malformed("DIE attributes", e))?;
                        stack.push((depth, Scope::Dead));
                        continue;
                    };
                    let attrs = self.read_attrs(&mut entries, abbrev)?;
                    self.ranges(&attrs, &mut range_buf)?;
                    let name = self
                        .die_name(offset, &mut names)
                        .unwrap_or_else(|| Name::new("", NameMangling::Unmangled, self.language));
                    let call_file = match (attrs.call_file, self.call_files) {
                        (Some(index), Some(files)) => files.get(index),
                        _ => FileInfo::default(),
                    };
                    let call_line = attrs.call_line.unwrap_or(0);
                    if range_buf.is_empty() {
                        let hollow = Hollow {
                            name,
                            call_file,
                            call_line,
                            inline_depth,
                            ranges: Vec::new(),
                        };
                        stack.push((depth, Scope::Hollow(Box::new(hollow))));
                        continue;
                    }
                    add_inlinee(
                        &mut stack,
                        function,
                        inline_depth,
                        &name,
                        &call_file,
                        call_line,
                        &range_buf,
                    );
                    stack.push((depth, Scope::Inlinee));
                }
                _ => entries
                    .skip_attributes(abbrev.attributes())
                    .map_err(|e| malformed("DIE attributes", e))?,
            }
        }
        while let Some((_, scope)) = stack.pop() {
            self.close(&mut stack, scope, sink);
        }
        Ok(())
    }

    /// Ends a scope whose subtree has been read: emits a finished function, or gives a hollow
    /// inlined call the ranges of its descendants.
    fn close(
        &self,
        stack: &mut Vec<(isize, Scope<'s>)>,
        scope: Scope<'s>,
        sink: &mut impl FnMut(&Function<'_>),
    ) {
        let builders = match scope {
            Scope::Function(builders) => builders,
            Scope::Hollow(hollow) => {
                let ranges = merge_ranges(hollow.ranges);
                if let Some((function, _)) = enclosing_function(stack) {
                    add_inlinee(
                        stack,
                        function,
                        hollow.inline_depth,
                        &hollow.name,
                        &hollow.call_file,
                        hollow.call_line,
                        &ranges,
                    );
                }
                return;
            }
            Scope::Inlinee | Scope::Dead => return,
        };
        let mut builders = builders;
        builders.sort_by_key(|range| range.order);
        for FunctionRange {
            begin,
            end,
            mut builder,
            ..
        } in builders
        {
            if let Some(lines) = self.lines {
                for row in lines.rows(begin, end) {
                    builder.add_leaf_line(
                        row.address,
                        row.size,
                        lines.files.get(row.file_index),
                        row.line,
                    );
                }
            }
            sink(&builder.finish());
        }
    }

    fn read_attrs(
        &self,
        entries: &mut gimli::EntriesRaw<'_, Slice<'s>>,
        abbrev: &gimli::Abbreviation,
    ) -> Result<DieAttrs<'s>, NativeError> {
        let mut attrs = DieAttrs::default();
        for spec in abbrev.attributes() {
            let attr = entries
                .read_attribute(*spec)
                .map_err(|e| malformed("DIE attribute", e))?;
            match attr.name() {
                constants::DW_AT_low_pc => attrs.low_pc = self.address(attr.value())?,
                constants::DW_AT_high_pc => match attr.value() {
                    AttributeValue::Udata(size) => attrs.high_pc_size = Some(size),
                    value => attrs.high_pc = self.address(value)?,
                },
                constants::DW_AT_ranges => attrs.ranges = Some(attr.value()),
                constants::DW_AT_call_file => {
                    if let AttributeValue::FileIndex(index) = attr.value() {
                        attrs.call_file = Some(index);
                    }
                }
                constants::DW_AT_call_line => attrs.call_line = attr.udata_value(),
                _ => {}
            }
        }
        Ok(attrs)
    }

    fn address(&self, value: AttributeValue<Slice<'s>>) -> Result<Option<u64>, NativeError> {
        self.dwarf
            .attr_address(self.unit, value)
            .map_err(|e| malformed("address attribute", e))
    }

    /// The DIE's address ranges, relative, in `out`; dropped: ranges at 0 (removed code),
    /// empty and inverted ranges, and the "tombstone" addresses linkers write for removed code.
    fn ranges(&self, attrs: &DieAttrs<'s>, out: &mut Vec<(u64, u64)>) -> Result<(), NativeError> {
        out.clear();
        let load_address = self.load_address;
        let push = |out: &mut Vec<(u64, u64)>, begin: u64, end: u64| {
            if begin == 0 || begin >= end || begin >= u64::MAX - 1 {
                return;
            }
            out.push((
                begin.wrapping_sub(load_address),
                end.wrapping_sub(load_address),
            ));
        };
        if let Some(value) = attrs.ranges {
            if let Some(mut ranges) = self
                .dwarf
                .attr_ranges(self.unit, value)
                .map_err(|e| malformed("range list", e))?
            {
                loop {
                    match ranges.next() {
                        Ok(Some(range)) => push(out, range.begin, range.end),
                        Ok(None) => break,
                        // emscripten writes inverted ranges that gimli reports this way;
                        // symbolic ends the list there too.
                        Err(gimli::Error::InvalidCfiSetLoc(_)) => break,
                        Err(e) => return Err(malformed("range list", e)),
                    }
                }
            }
        }
        if out.is_empty() {
            if let Some(low) = attrs.low_pc {
                let high = attrs
                    .high_pc
                    .or_else(|| attrs.high_pc_size.map(|size| low.wrapping_add(size)));
                if let Some(high) = high {
                    push(out, low, high);
                }
            }
        }
        Ok(())
    }

    /// The name of the DIE at `offset`: linkage name (mangled), else `DW_AT_name`, else the
    /// name of its abstract origin or specification.
    fn die_name(
        &self,
        offset: UnitOffset,
        cache: &mut HashMap<UnitOffset, Option<Name<'s>>>,
    ) -> Option<Name<'s>> {
        if let Some(name) = cache.get(&offset) {
            return name.clone();
        }
        let name = self.resolve_name(self.unit, offset, MAX_REFERENCE_DEPTH);
        cache.insert(offset, name.clone());
        name
    }

    fn resolve_name(&self, unit: &Unit<'s>, offset: UnitOffset, depth: u8) -> Option<Name<'s>> {
        let entry = unit.entry(offset).ok()?;
        let mut plain = None;
        let mut reference = None;
        for attr in entry.attrs() {
            match attr.name() {
                constants::DW_AT_linkage_name | constants::DW_AT_MIPS_linkage_name => {
                    let name = self.dwarf.attr_string(unit, attr.value()).ok()?;
                    return Some(Name::new(
                        text(name.slice()),
                        NameMangling::Mangled,
                        self.language,
                    ));
                }
                constants::DW_AT_name => plain = Some(attr.value()),
                constants::DW_AT_abstract_origin | constants::DW_AT_specification => {
                    reference = Some(attr.value())
                }
                _ => {}
            }
        }
        if let Some(value) = plain {
            let name = self.dwarf.attr_string(unit, value).ok()?;
            return Some(Name::new(
                text(name.slice()),
                NameMangling::Unmangled,
                self.language,
            ));
        }
        if depth == 0 {
            return None;
        }
        match reference? {
            AttributeValue::UnitRef(target) if target != offset => {
                self.resolve_name(unit, target, depth - 1)
            }
            AttributeValue::DebugInfoRef(target) => {
                if let Some(local) = target.to_unit_offset(&unit.header) {
                    return self.resolve_name(unit, local, depth - 1);
                }
                let (other, target) = self.unit_containing(target)?;
                self.resolve_name(&other, target, depth - 1)
            }
            _ => None,
        }
    }

    /// The unit of this file containing `.debug_info` offset `target` (cross-unit references,
    /// which LTO produces).
    fn unit_containing(
        &self,
        target: gimli::DebugInfoOffset,
    ) -> Option<(Rc<Unit<'s>>, UnitOffset)> {
        if let Some(cross_units) = self.cross_units {
            return cross_units.find(target);
        }
        let mut headers = self.dwarf.units();
        while let Ok(Some(header)) = headers.next() {
            if let Some(offset) = target.to_unit_offset(&header) {
                return Some((Rc::new(self.dwarf.unit(header).ok()?), offset));
            }
        }
        None
    }
}
