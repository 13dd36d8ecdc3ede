//! Symbol tables and code extents: the debug file's and the executable's symbols merged and
//! deduplicated, and what bounds a symbol without a size (executable sections, wasm function
//! bodies, Breakpad stack records, marker symbols).
//!
//! Only collects and bounds; never decides which symbols enter the cache (the `Builder` in
//! `mod.rs` does) and never parses a container by hand (`object`, `wasmparser`, symbolic).

use std::borrow::Cow;
use std::collections::HashMap;

use object::{Object as _, ObjectSection as _};
use symbolic::debuginfo::{FileFormat, Object, Symbol};

/// Executable section ranges of `object`, relative to its load address, sorted. `None` when the
/// format has no section table we can read (PDB, Breakpad, wasm) or none is executable.
pub(super) fn executable_sections(object: &Object<'_>) -> Option<Vec<(u64, u64)>> {
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
/// Only the first code section counts; `None` when there is none, it is empty or malformed.
pub(crate) fn wasm_function_bodies(data: &[u8]) -> Option<Vec<(u64, u64)>> {
    use wasmparser::{BinaryReader, CodeSectionReader, Parser, Payload};
    for payload in Parser::new(0).parse_all(data) {
        let Payload::CodeSectionStart { range, .. } = payload.ok()? else {
            continue;
        };
        let section = data.get(range.clone())?;
        let reader = CodeSectionReader::new(BinaryReader::new(section, range.start)).ok()?;
        let bodies = reader
            .into_iter()
            .map(|body| {
                body.ok()
                    .map(|b| (b.range().start as u64, b.range().end as u64))
            })
            .collect::<Option<Vec<_>>>()?;
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
pub(super) fn is_non_function_symbol(name: &str) -> bool {
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
pub(super) fn breakpad_stack_extents(object: &Object<'_>) -> HashMap<u64, u64> {
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
            flags
                & (object::macho::S_ATTR_PURE_INSTRUCTIONS
                    | object::macho::S_ATTR_SOME_INSTRUCTIONS)
                != 0
        }
        object::SectionFlags::Coff { characteristics } => {
            characteristics & (object::pe::IMAGE_SCN_MEM_EXECUTE | object::pe::IMAGE_SCN_CNT_CODE)
                != 0
        }
        _ => false,
    }
}

/// Symbols of the debug file and the executable, deduplicated by address.
#[derive(Default)]
pub(crate) struct SymbolList<'d> {
    pub(super) symbols: Vec<(u64, u64, Cow<'d, str>)>,
}

impl<'d> SymbolList<'d> {
    pub(super) fn extend(&mut self, symbols: impl Iterator<Item = Symbol<'d>>) {
        for symbol in symbols {
            if let Some(name) = symbol.name.filter(|name| !name.is_empty()) {
                self.symbols.push((symbol.address, symbol.size, name));
            }
        }
    }

    /// Gives sizes to symbols that have none, from another source of code extents.
    pub(super) fn extend_sizes(&mut self, extents: HashMap<u64, u64>) {
        for symbol in &mut self.symbols {
            if symbol.1 == 0 {
                symbol.1 = extents.get(&symbol.0).copied().unwrap_or(0);
            }
        }
    }

    /// Sorted by address; per address the first name seen (debug file before executable, and
    /// the symbol table's order) with the largest size.
    pub(super) fn normalize(&mut self) {
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
    pub(super) fn by_address(&mut self) -> HashMap<u64, &str> {
        self.normalize();
        self.symbols
            .iter()
            .map(|(address, _, name)| (*address, name.as_ref()))
            .collect()
    }
}
