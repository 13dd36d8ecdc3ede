//! What goes into the SymCache, rewritten so a lookup needs no side table: names demangled
//! once (with the raw name and language beside them), paths joined and cleaned once, PE/PDB C
//! names undecorated. See `cache.rs` for the encoding it must stay in step with.
//!
//! Pure string work; never reads a debug file and never changes what a name or path means,
//! only how it is stored.

use std::borrow::Cow;
use std::collections::HashMap;

use symbolic::common::{clean_path, join_path, Language, Name};
use symbolic::demangle::Demangle;
use symbolic::symcache::transform::{self, Transformer};

use crate::native::DEMANGLE_OPTIONS;

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

/// Rewrites names and paths on their way into the SymCache so that a lookup needs no side
/// tables (see `cache.rs` for the encoding):
///
/// - a function name becomes `demangled \0 raw \0 language` (only `raw` when demangling
///   changes nothing), demangled once here rather than on every lookup, where demangling a
///   long C++ name would cost more than the rest of the lookup;
/// - a file becomes `abs_path \0 filename`, with `abs_path` already joined and cleaned.
///
/// PE/PDB C names are undecorated first (`_foo@8` → `foo`), the rule symbolic applies in
/// `process_object`.
pub(super) struct Encoder {
    windows: bool,
    names: HashMap<String, String>,
    paths: HashMap<String, String>,
    key: String,
}

impl Encoder {
    /// An encoder for a PE/PDB file (`windows`: undecorate C names) or any other.
    pub(super) fn new(windows: bool) -> Self {
        Encoder {
            windows,
            names: HashMap::new(),
            paths: HashMap::new(),
            key: String::new(),
        }
    }

    fn encode_name(&self, raw: &str) -> String {
        let raw = if self.windows {
            undecorate_windows(raw)
        } else {
            raw
        };
        let name = Name::from(raw);
        let demangled = name.try_demangle(DEMANGLE_OPTIONS);
        let language = name.detect_language();
        if demangled == raw && language == Language::Unknown {
            return raw.to_owned();
        }
        let mut encoded = String::with_capacity(demangled.len() + raw.len() + 8);
        encoded.push_str(&demangled);
        encoded.push('\0');
        encoded.push_str(raw);
        if language != Language::Unknown {
            encoded.push('\0');
            encoded.push_str(language.name());
        }
        encoded
    }

    fn encode_path(comp_dir: &str, directory: &str, name: &str) -> String {
        let abs_path = abs_path(comp_dir, directory, name);
        let comp_dir = comp_dir.trim_end_matches(['/', '\\']);
        let relative = abs_path
            .strip_prefix(comp_dir)
            .filter(|_| !comp_dir.is_empty())
            .and_then(|rest| rest.strip_prefix(['/', '\\']))
            .filter(|rest| !rest.is_empty());
        let filename = relative
            .or_else(|| base_name(&abs_path))
            .unwrap_or_default();
        format!("{abs_path}\0{filename}")
    }
}

/// The absolute path of a source file as lookups report it: the compilation directory joined
/// with the file's directory and name, `.`/`..` cleaned (symbolic's `join_path`/`clean_path`).
/// Everything that matches paths from lookups (embedded sources) goes through this.
pub(crate) fn abs_path(comp_dir: &str, directory: &str, name: &str) -> String {
    clean_path(&join_path(&join_path(comp_dir, directory), name)).into_owned()
}

/// The last component of a path (after `/` or `\`).
pub(crate) fn base_name(path: &str) -> Option<&str> {
    path.rsplit(['/', '\\'])
        .next()
        .filter(|base| !base.is_empty())
}

impl Transformer for Encoder {
    fn transform_function<'f>(
        &'f mut self,
        mut f: transform::Function<'f>,
    ) -> transform::Function<'f> {
        if !self.names.contains_key(f.name.as_ref()) {
            let encoded = self.encode_name(&f.name);
            self.names.insert(f.name.clone().into_owned(), encoded);
        }
        if let Some(encoded) = self.names.get(f.name.as_ref()) {
            f.name = Cow::Borrowed(encoded.as_str());
        }
        f
    }

    fn transform_source_location<'f>(
        &'f mut self,
        mut location: transform::SourceLocation<'f>,
    ) -> transform::SourceLocation<'f> {
        let file = &location.file;
        let comp_dir = file.comp_dir.as_deref().unwrap_or_default();
        let directory = file.directory.as_deref().unwrap_or_default();
        self.key.clear();
        for part in [comp_dir, "\0", directory, "\0", &file.name] {
            self.key.push_str(part);
        }
        if !self.paths.contains_key(self.key.as_str()) {
            let encoded = Self::encode_path(comp_dir, directory, &file.name);
            self.paths.insert(self.key.clone(), encoded);
        }
        if let Some(encoded) = self.paths.get(self.key.as_str()) {
            location.file.name = Cow::Borrowed(encoded.as_str());
            location.file.directory = None;
            location.file.comp_dir = None;
        }
        location
    }
}
