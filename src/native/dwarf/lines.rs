//! Line programs: a unit's file table and its rows grouped into sequences, prepared the way
//! symbolic prepares them, and the rows of skeleton units whose split unit is missing
//! ("orphan lines").
//!
//! Only line tables; never DIEs. Addresses come out relative to the image base.

use std::borrow::Cow;

use gimli::Section as _;
use symbolic::common::join_path;
use symbolic::debuginfo::FileInfo;

use super::load::Slice;
use super::{malformed, text, Dwarf, OrphanLine, Rebase, Unit};
use crate::native::NativeError;

/// A line program's file table, resolved to (directory, name) byte strings.
pub(super) struct FileTable<'s> {
    /// Indexed by DWARF file index (0-based in DWARF 5, 1-based before; index 0 is `None` then).
    files: Vec<Option<(&'s [u8], &'s [u8])>>,
}

impl<'s> FileTable<'s> {
    pub(super) fn from_header(
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
    pub(super) fn split(
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

    pub(super) fn get(&self, index: u64) -> FileInfo<'s> {
        match usize::try_from(index).ok().and_then(|i| self.files.get(i)) {
            Some(Some((dir, name))) => FileInfo::new(Cow::Borrowed(*dir), Cow::Borrowed(*name)),
            _ => FileInfo::default(),
        }
    }
}

#[derive(Debug)]
pub(super) struct Row {
    pub(super) address: u64,
    pub(super) size: Option<u64>,
    pub(super) file_index: u64,
    pub(super) line: u64,
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
pub(super) struct LineTable<'s> {
    sequences: Vec<Sequence>,
    pub(super) files: FileTable<'s>,
}

impl<'s> LineTable<'s> {
    pub(super) fn new(
        dwarf: &Dwarf<'s>,
        unit: &Unit<'s>,
        load_address: Rebase,
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
                if let Some(size) = address.checked_sub(last.address) {
                    last.size = Some(size);
                }
            }
            if row.end_sequence() {
                if !rows.is_empty() {
                    let end = if address < prev_address {
                        prev_address.saturating_add(1)
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
                end: prev_address.saturating_add(1),
                rows,
            });
        }
        sequences.sort_by_key(|s| s.start);
        // Make addresses relative, dropping rows (and sequences) that would fall outside u64:
        // rebasing must not wrap, or a sequence's rows would no longer be sorted.
        sequences.retain_mut(|sequence| {
            sequence
                .rows
                .retain_mut(|row| match load_address.apply(row.address) {
                    Some(address) => {
                        row.address = address;
                        true
                    }
                    None => false,
                });
            let start = sequence.rows.first().map(|row| row.address);
            match (start, load_address.apply(sequence.end)) {
                (Some(start), Some(end)) if start <= end => {
                    (sequence.start, sequence.end) = (start, end);
                    true
                }
                _ => false,
            }
        });
        Ok(Some(LineTable { sequences, files }))
    }

    /// Rows overlapping `[begin, end)`: from the row covering `begin` up to the last row
    /// starting before `end`, in the first sequence that overlaps.
    pub(super) fn rows(&self, begin: u64, end: u64) -> &[Row] {
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

    /// Every row, as orphan lines (a skeleton unit whose split unit is missing).
    pub(super) fn orphans(&self, comp_dir: &[u8], out: &mut Vec<OrphanLine>) {
        self.orphans_outside(comp_dir, &[], out);
    }

    /// The parts of rows that no range of `covered` (sorted, disjoint) contains, as orphan
    /// lines: code that has line rows but no function DIE with an address. gcc 12 writes such
    /// code for functions folded by identical code folding (`-fipa-icf`): their DIEs lose their
    /// addresses, while the line table still describes the shared body.
    pub(super) fn orphans_outside(
        &self,
        comp_dir: &[u8],
        covered: &[(u64, u64)],
        out: &mut Vec<OrphanLine>,
    ) {
        for sequence in &self.sequences {
            for row in &sequence.rows {
                let (mut start, end) = (
                    row.address,
                    row.address.saturating_add(row.size.unwrap_or(1)),
                );
                let mut i = covered.partition_point(|r| r.1 <= start);
                while start < end {
                    let (gap_end, next) = match covered.get(i) {
                        Some(&(b, e)) if b <= start => {
                            start = e;
                            i += 1;
                            continue;
                        }
                        Some(&(b, _)) => (b.min(end), b),
                        None => (end, end),
                    };
                    self.push_orphan(comp_dir, row, start, gap_end, out);
                    start = next.max(gap_end);
                }
            }
        }
    }

    fn push_orphan(
        &self,
        comp_dir: &[u8],
        row: &Row,
        start: u64,
        end: u64,
        out: &mut Vec<OrphanLine>,
    ) {
        let (dir, name) = match self.files.files.get(row.file_index as usize) {
            Some(Some((dir, name))) => (*dir, *name),
            _ => (&[][..], &[][..]),
        };
        let dir = join_path(&text(comp_dir), &text(dir));
        let Some(size) = end.checked_sub(start) else {
            return;
        };
        out.push(OrphanLine {
            address: start,
            size,
            dir,
            name: text(name).into_owned(),
            line: row.line,
        });
    }
}
