//! Loading DWARF sections for gimli: the one place that turns an object file (or one of
//! symbolic's containers) into `gimli::Dwarf` / `gimli::DwarfPackage`.
//!
//! Sections are found by their standard name through the `object` crate, which also maps them
//! to `.zdebug_*` (ELF) and `__debug_*` / `__zdebug_*` (Mach-O), and decompressed with
//! `uncompressed_data` (`SHF_COMPRESSED`, `.zdebug_*`), which reserves memory fallibly. A
//! missing section is empty. This module reads section bytes and nothing else: it never
//! interprets DWARF and never allocates what a header claims before `object` has checked it.

use std::borrow::Cow;

use gimli::{EndianSlice, RunTimeEndian, SectionId};
use object::{Object as _, ObjectSection as _};
use symbolic::debuginfo::dwarf::Dwarf as SymbolicDwarf;

use crate::native::NativeError;

pub(crate) type Slice<'s> = EndianSlice<'s, RunTimeEndian>;

/// Which names the sections have: the executable's `.debug_*`, or the `.debug_*.dwo` of a split
/// unit or package (sections without a `.dwo` name are then empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Names {
    Main,
    Dwo,
}

/// The byte order of `file`.
fn endian(file: &object::File<'_>) -> RunTimeEndian {
    if file.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    }
}

/// The (decompressed) data of DWARF section `id` in `file`, empty when absent.
fn section<'d>(
    file: &object::File<'d>,
    id: SectionId,
    names: Names,
) -> Result<Cow<'d, [u8]>, NativeError> {
    let name = match names {
        Names::Main => Some(id.name()),
        Names::Dwo => id.dwo_name(),
    };
    match name.and_then(|name| file.section_by_name(name)) {
        Some(section) => section.uncompressed_data().map_err(|e| {
            NativeError::Malformed(format!("section {}: {e}", name.unwrap_or_default()))
        }),
        None => Ok(Cow::Borrowed(&[])),
    }
}

/// All DWARF sections of one file, owned (decompressed) or borrowed.
pub(crate) struct Sections<'d> {
    sections: gimli::DwarfSections<Cow<'d, [u8]>>,
    endian: RunTimeEndian,
}

impl<'d> Sections<'d> {
    /// The sections of `file` named as `names` says.
    pub(crate) fn load(file: &object::File<'d>, names: Names) -> Result<Self, NativeError> {
        let sections = gimli::DwarfSections::load(|id| section(file, id, names))?;
        Ok(Sections {
            sections,
            endian: endian(file),
        })
    }

    /// The sections of a container symbolic parses and `object` does not handle the way
    /// symbolic does (PE, wasm custom sections).
    pub(crate) fn from_symbolic(dwarf: &impl SymbolicDwarf<'d>) -> Self {
        let loaded: Result<_, std::convert::Infallible> = gimli::DwarfSections::load(|id| {
            Ok(dwarf
                .section(&id.name()[1..])
                .map(|section| section.data)
                .unwrap_or_default())
        });
        let sections = match loaded {
            Ok(sections) => sections,
            Err(never) => match never {},
        };
        Sections {
            sections,
            endian: dwarf.endianity(),
        }
    }

    /// gimli's view of the sections.
    pub(crate) fn dwarf(&self) -> gimli::Dwarf<Slice<'_>> {
        self.sections
            .borrow(|data| EndianSlice::new(data, self.endian))
    }
}

/// The `.dwo` sections of a split DWARF package (`.dwp`), with its unit indexes.
pub(crate) struct PackageSections<'d> {
    sections: gimli::DwarfPackageSections<Cow<'d, [u8]>>,
    endian: RunTimeEndian,
}

/// Error type for gimli's package loader, which wants to build it from a `gimli::Error`.
struct LoadError(NativeError);

impl From<gimli::Error> for LoadError {
    fn from(error: gimli::Error) -> Self {
        LoadError(NativeError::Malformed(format!(".dwp index: {error}")))
    }
}

impl<'d> PackageSections<'d> {
    /// `Some` when `file` is a package (has a `.debug_cu_index`).
    pub(crate) fn load(file: &object::File<'d>) -> Result<Option<Self>, NativeError> {
        if file.section_by_name(".debug_cu_index").is_none() {
            return Ok(None);
        }
        let sections = gimli::DwarfPackageSections::load(|id| {
            section(file, id, Names::Dwo).map_err(LoadError)
        })
        .map_err(|LoadError(e)| e)?;
        Ok(Some(PackageSections {
            sections,
            endian: endian(file),
        }))
    }

    /// gimli's view of the package; parses (and checks) its unit indexes.
    pub(crate) fn package(&self) -> Result<gimli::DwarfPackage<Slice<'_>>, NativeError> {
        let endian = self.endian;
        self.sections
            .borrow(
                |data| EndianSlice::new(data, endian),
                EndianSlice::new(&[], endian),
            )
            .map_err(|e| NativeError::Malformed(format!(".dwp index: {e}")))
    }
}
