//! Sources embedded in DWARF 5 line tables (clang `-gembed-source`, `DW_LNCT_LLVM_source`),
//! which symbolic does not read. ELF and Mach-O only.
//!
//! Paths are keyed exactly as lookups report them (`build::abs_path`), and a requested path is
//! cleaned the same way, so the two always agree. Never reads files from disk: the source
//! text comes only from the debug file's line tables.

use symbolic::common::clean_path;

use super::build::abs_path;
use super::dwarf::{Names, Sections};
use super::NativeError;

/// Calls `visit(path, source)` for every file entry of every line table that embeds its
/// source; stops early when `visit` returns `true`. Paths are made absolute with
/// [`abs_path`], the function that makes the paths lookups report.
fn each_embedded(
    data: &[u8],
    mut visit: impl FnMut(&str, &str) -> bool,
) -> Result<(), NativeError> {
    let malformed = |e: &dyn std::fmt::Display| NativeError::Malformed(e.to_string());
    let Ok(file) = object::File::parse(data) else {
        return Ok(());
    };
    let sections = Sections::load(&file, Names::Main)?;
    let dwarf = sections.dwarf();
    let mut units = dwarf.units();
    while let Some(header) = units.next().map_err(|e| malformed(&e))? {
        let unit = dwarf.unit(header).map_err(|e| malformed(&e))?;
        let Some(program) = unit.line_program.clone() else {
            continue;
        };
        let header = program.header();
        let comp_dir = unit
            .comp_dir
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_default();
        for entry in header.file_names() {
            let Some(source) = entry.source() else {
                continue;
            };
            let text = dwarf
                .attr_string(&unit, source)
                .map_err(|e| malformed(&e))?;
            if text.is_empty() {
                continue;
            }
            let name = dwarf
                .attr_string(&unit, entry.path_name())
                .map_err(|e| malformed(&e))?;
            let dir = match entry.directory(header) {
                Some(d) => dwarf
                    .attr_string(&unit, d)
                    .map_err(|e| malformed(&e))?
                    .to_string_lossy()
                    .into_owned(),
                None => String::new(),
            };
            let path = abs_path(&comp_dir, &dir, &name.to_string_lossy());
            if visit(&path, &text.to_string_lossy()) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Whether the file embeds any source text in its line tables.
pub(crate) fn has_embedded_sources(data: &[u8]) -> bool {
    let mut found = false;
    let _ = each_embedded(data, |_, _| {
        found = true;
        true
    });
    found
}

/// The embedded source of `path` (as a lookup reports it), if the file has it.
#[cfg(test)]
pub fn embedded_source(data: &[u8], path: &str) -> Result<Option<String>, NativeError> {
    let want = clean_path(path);
    let mut found = None;
    each_embedded(data, |p, text| {
        if p == want {
            found = Some(text.to_owned());
            true
        } else {
            false
        }
    })?;
    Ok(found)
}

/// Every embedded source of the file, keyed by [`source_key`] of its path (first entry wins),
/// read in one pass: the service derives this once per debug file, then looks paths up.
pub fn embedded_sources(data: &[u8]) -> Result<Vec<(String, String)>, NativeError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    each_embedded(data, |p, text| {
        if seen.insert(p.to_owned()) {
            out.push((p.to_owned(), text.to_owned()));
        }
        false
    })?;
    Ok(out)
}

/// The key under which a path's embedded source is found: the path cleaned as lookups
/// report paths.
pub fn source_key(path: &str) -> String {
    clean_path(path).into_owned()
}
