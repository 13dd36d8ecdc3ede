//! Split DWARF inputs: the `.dwo` files and `.dwp` packages supplied with a debug file, indexed
//! by DWO ID, and the lookup of a skeleton unit's split unit in them.
//!
//! Loading goes through `load.rs` and package indexes through gimli's `DwarfPackage`; this
//! module never parses an index or a section itself, and never reads functions (`walk.rs`).

use std::collections::HashMap;

use gimli::UnitType;

use super::load::{Names, PackageSections, Sections, Slice};
use super::{malformed, Dwarf, Unit};
use crate::native::NativeError;

/// The split units we were given: loose `.dwo` files by DWO id, and `.dwp` packages.
pub(super) struct SplitInputs<'d> {
    dwo: Vec<Sections<'d>>,
    packages: Vec<PackageSections<'d>>,
}

impl<'d> SplitInputs<'d> {
    pub(super) fn load(files: &[&'d [u8]]) -> Result<Self, NativeError> {
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
pub(super) struct SplitIndex<'s> {
    inputs: &'s SplitInputs<'s>,
    /// DWO id → index of the `.dwo` file in `inputs.dwo`.
    dwo: HashMap<u64, usize>,
    packages: Vec<gimli::DwarfPackage<Slice<'s>>>,
}

impl<'s> SplitIndex<'s> {
    pub(super) fn new(inputs: &'s SplitInputs<'s>) -> Result<Self, NativeError> {
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

    /// The split unit with DWO ID `id` and its sections, linked to `parent`; `None` when no
    /// supplied file has it.
    pub(super) fn find(
        &self,
        id: gimli::DwoId,
        parent: &Dwarf<'s>,
    ) -> Result<Option<(Dwarf<'s>, Unit<'s>)>, NativeError> {
        let Some(dwarf) = self.sections(id, parent)? else {
            return Ok(None);
        };
        let mut headers = dwarf.units();
        while let Some(header) = headers
            .next()
            .map_err(|e| malformed(".dwo unit header", e))?
        {
            let unit_id = match header.type_() {
                UnitType::SplitCompilation(id) => Some(id),
                UnitType::Compilation => None,
                _ => continue,
            };
            let candidate = dwarf.unit(header).map_err(|e| malformed(".dwo unit", e))?;
            if unit_id.or(candidate.dwo_id) == Some(id) {
                return Ok(Some((dwarf, candidate)));
            }
        }
        Ok(None)
    }

    /// The sections of the `.dwo` file or package unit with DWO ID `id`, linked to `parent`.
    fn sections(
        &self,
        id: gimli::DwoId,
        parent: &Dwarf<'s>,
    ) -> Result<Option<Dwarf<'s>>, NativeError> {
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
