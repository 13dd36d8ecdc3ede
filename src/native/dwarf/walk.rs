//! The DIE walk: a unit's subprograms and inlined subroutines, in one pass over its raw
//! entries, into symbolic `FunctionBuilder`s (one per address range), with line rows attached
//! when a function's subtree ends, and hollow inlined calls (see [`Hollow`]) given their
//! descendants' ranges.
//!
//! Never reads line programs (`lines.rs`) or resolves names (`names.rs`) itself, and never
//! follows an inline chain deeper than `MAX_INLINE_DEPTH`.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use gimli::{constants, AttributeValue, UnitOffset};
use symbolic::common::{Language, Name, NameMangling};
use symbolic::debuginfo::function_builder::FunctionBuilder;
use symbolic::debuginfo::{FileInfo, Function};

use super::lines::{FileTable, LineTable};
use super::load::Slice;
use super::names::CrossUnits;
use super::{malformed, Dwarf, Rebase, Unit, MAX_INLINE_DEPTH};
use crate::native::NativeError;

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
            let Some(len) = end.checked_sub(begin) else {
                continue;
            };
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
                    len,
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

pub(super) struct UnitContext<'a, 's> {
    /// Where the DIEs are: the main file, or the split unit's `.dwo`/`.dwp`.
    pub(super) dwarf: &'a Dwarf<'s>,
    pub(super) unit: &'a Unit<'s>,
    /// The main file's units, when `unit` is one of them.
    pub(super) cross_units: Option<&'a CrossUnits<'a, 's>>,
    /// Name top-level functions from DWARF rather than from the symbol table.
    pub(super) prefer_dwarf_names: bool,
    /// Line rows; always from the main file.
    pub(super) lines: Option<&'a LineTable<'s>>,
    /// File table that `DW_AT_call_file` indexes.
    pub(super) call_files: Option<&'a FileTable<'s>>,
    pub(super) comp_dir: &'s [u8],
    pub(super) language: Language,
    pub(super) load_address: Rebase,
    pub(super) symbol_names: &'a HashMap<u64, &'a str>,
}

impl<'s> UnitContext<'_, 's> {
    pub(super) fn walk(
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
                    range_buf.retain(|&(begin, end)| {
                        end.checked_sub(begin)
                            .is_some_and(|len| seen_ranges.insert((begin, len)))
                    });
                    if range_buf.is_empty() {
                        stack.push((depth, Scope::Dead));
                        continue;
                    }
                    // The symbol at the entry point names the function: the first range of
                    // the DIE (gcc lists the hot part first), not the lowest one, which may be
                    // a `.cold` part placed before it (`main.cold` would name all of `main`).
                    let start = range_buf.first().map(|r| r.0).unwrap_or_default();
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
                        .filter_map(|(order, &(begin, end))| {
                            Some(FunctionRange {
                                begin,
                                end,
                                order,
                                builder: FunctionBuilder::new(
                                    name.clone(),
                                    self.comp_dir,
                                    begin,
                                    end.checked_sub(begin)?,
                                )
                                .max_inline_depth(Some(MAX_INLINE_DEPTH)),
                            })
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
            // Line rows clipped to the range, and where no row covers an address the unit's
            // file without a line (what addr2line reports there). symbolic drops a row that
            // starts before the function, so the row that covers the entry point from an
            // earlier address must start at `begin` instead, or the first instruction would
            // lose its line.
            let mut covered = begin;
            if let Some(lines) = self.lines {
                for row in lines.rows(begin, end) {
                    let row_end = row
                        .size
                        .map_or(end, |size| row.address.saturating_add(size))
                        .min(end);
                    let address = row.address.max(begin);
                    if row_end <= address {
                        continue;
                    }
                    if address > covered {
                        builder.add_leaf_line(
                            covered,
                            Some(address - covered),
                            self.unit_file(),
                            0,
                        );
                    }
                    builder.add_leaf_line(
                        address,
                        Some(row_end - address),
                        lines.files.get(row.file_index),
                        row.line,
                    );
                    covered = covered.max(row_end);
                }
            }
            if covered < end {
                builder.add_leaf_line(covered, Some(end - covered), self.unit_file(), 0);
            }
            sink(&builder.finish());
        }
    }

    /// The compilation unit's own file (`DW_AT_name` in `DW_AT_comp_dir`).
    fn unit_file(&self) -> FileInfo<'s> {
        match self.unit.name {
            Some(name) => FileInfo::new(Cow::Borrowed(self.comp_dir), Cow::Borrowed(name.slice())),
            None => FileInfo::default(),
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
            // `begin < end` holds after rebasing too (no wrapping); lengths are still taken
            // with `checked_sub` wherever these ranges go.
            if let (Some(begin), Some(end)) = (load_address.apply(begin), load_address.apply(end)) {
                out.push((begin, end));
            }
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
                    .or_else(|| attrs.high_pc_size.and_then(|size| low.checked_add(size)));
                if let Some(high) = high {
                    push(out, low, high);
                }
            }
        }
        Ok(())
    }
}
