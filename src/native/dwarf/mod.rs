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
//!   `walk::Hollow`): symbolic drops the whole subtree, we keep it the way addr2line and
//!   llvm-symbolizer show it.
//!
//! Pieces: `load` (sections → gimli), `split` (`.dwo`/`.dwp` by DWO ID), `walk` (DIEs →
//! function builders), `names` (DIE names), `lines` (line programs); this file holds the unit
//! loop that ties them together. Nothing here writes a cache or does I/O, and nothing panics on
//! input: malformed DWARF is a [`NativeError::Malformed`].

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

mod lines;
mod load;
mod names;
mod split;
mod walk;

use gimli::{constants, AttributeValue, Section as _, UnitType};
use symbolic::common::Language;
use symbolic::debuginfo::{Function, Object};

use super::NativeError;

use lines::{FileTable, LineTable};
use load::Slice;
pub(crate) use load::{Names, PackageSections, Sections};
use names::CrossUnits;
use split::{SplitIndex, SplitInputs};
pub(crate) use walk::merge_ranges;
use walk::UnitContext;

pub(super) type Dwarf<'s> = gimli::Dwarf<Slice<'s>>;
pub(super) type Unit<'s> = gimli::Unit<Slice<'s>>;

/// Deepest chain of `DW_AT_abstract_origin`/`DW_AT_specification` we follow for a name (the
/// same limit as elfutils and symbolic).
pub(super) const MAX_REFERENCE_DEPTH: u8 = 16;

/// Inlined calls nested deeper than this are dropped. Real code stays far below (rust_app's
/// deepest chain is 13); the SymCache converter recurses once per level, so a forged file with
/// a very deep chain would otherwise overflow the stack.
pub(crate) const MAX_INLINE_DEPTH: u32 = 256;

/// A line row (or the part of one) that no function DIE covers: every row of a skeleton unit
/// whose split unit is missing, and rows of code whose DIE has no address (see
/// `LineTable::orphans_outside`). The builder gives them to the symbols covering them.
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

pub(super) fn malformed(context: &str, error: impl std::fmt::Display) -> NativeError {
    NativeError::Malformed(format!("{context}: {error}"))
}

/// The DWARF sections of the debug file, read through symbolic's containers (ELF with
/// `SHF_COMPRESSED` or `.zdebug_*` sections, Mach-O, wasm custom sections, PE), decompressed.
pub(crate) struct MainSections<'d> {
    sections: Sections<'d>,
    /// Subtracted from DWARF addresses to make them relative to the image base: the load
    /// address, or for wasm minus the code section's file offset (as symbolic does).
    address_offset: i128,
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
                (sections, i128::from(object.load_address()))
            }
            Object::Pe(pe) => (Sections::from_symbolic(pe), i128::from(pe.load_address())),
            Object::Wasm(wasm) => (
                Sections::from_symbolic(wasm),
                -i128::from(wasm.code_offset()),
            ),
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

/// Turns the absolute addresses DWARF records into addresses relative to the image base:
/// `address - offset`, where the offset is the load address, or for wasm minus the code
/// section's file offset. Computed wide and checked: forged DWARF puts addresses below the
/// base or near `u64::MAX`, and a wrapped address would break the `begin < end` every range
/// and line sequence relies on.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rebase(pub(super) i128);

impl Rebase {
    /// The relative address, or `None` when it would fall below 0 or past `u64::MAX` (no
    /// lookup can reach such an address; the range or row is dropped).
    pub(super) fn apply(self, address: u64) -> Option<u64> {
        u64::try_from(i128::from(address) - self.0).ok()
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
    let load_address = Rebase(main_sections.address_offset);
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
            let mut unit_ranges = Vec::new();
            ctx.walk(&mut seen_ranges, &mut |function: &Function<'_>| {
                unit_ranges.push((function.address, function.end_address()));
                sink(function);
            })?;
            if let Some(lines) = &lines {
                let covered = walk::merge_ranges(unit_ranges);
                lines.orphans_outside(comp_dir, &covered, &mut outcome.orphan_lines);
            }
            continue;
        };

        let Some((split_dwarf, mut split_unit)) = split.find(dwo_id, &main)? else {
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
        let mut unit_ranges = Vec::new();
        ctx.walk(&mut seen_ranges, &mut |function: &Function<'_>| {
            unit_ranges.push((function.address, function.end_address()));
            sink(function);
        })?;
        if let Some(lines) = &lines {
            let covered = walk::merge_ranges(unit_ranges);
            lines.orphans_outside(comp_dir, &covered, &mut outcome.orphan_lines);
        }
    }
    outcome
        .orphan_lines
        .sort_by_key(|line| (line.address, line.size));
    Ok(outcome)
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

pub(super) fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}
