//! Naming DIEs: linkage name, else `DW_AT_name`, else the name of the abstract origin or
//! specification, following references within a unit and, through [`CrossUnits`], across
//! units of the main file (LTO).
//!
//! Only reads names; never decides which DIEs become functions (`walk.rs`), and gives up
//! (`None`) rather than fail on a broken reference, bounded by `MAX_REFERENCE_DEPTH`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use gimli::{constants, AttributeValue, UnitOffset};
use symbolic::common::{Name, NameMangling};

use super::load::Slice;
use super::walk::UnitContext;
use super::{text, Dwarf, Unit, MAX_REFERENCE_DEPTH};

/// Parsed units of the main file by `.debug_info` offset, for references across units
/// (`DW_FORM_ref_addr`, common with LTO).
pub(super) struct CrossUnits<'a, 's> {
    pub(super) dwarf: &'a Dwarf<'s>,
    pub(super) headers: Vec<gimli::UnitHeader<Slice<'s>>>,
    pub(super) units: RefCell<HashMap<usize, Rc<Unit<'s>>>>,
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

impl<'s> UnitContext<'_, 's> {
    /// The name of the DIE at `offset`: linkage name (mangled), else `DW_AT_name`, else the
    /// name of its abstract origin or specification.
    pub(super) fn die_name(
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
