//! The vocabulary of what is stored: kinds of JS artifacts and of native debug files, and
//! what a debug file offers. Serialised once, here; every layer names them from here.

use serde::{Deserialize, Serialize};

/// What a JS-side artifact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    MinifiedSource,
    SourceMap,
    /// An original source file (context when a map has no `sourcesContent`).
    Source,
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::MinifiedSource => "minified_source",
            ArtifactKind::SourceMap => "source_map",
            ArtifactKind::Source => "source",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "minified_source" | "minified" => Some(ArtifactKind::MinifiedSource),
            "source_map" | "sourcemap" => Some(ArtifactKind::SourceMap),
            "source" => Some(ArtifactKind::Source),
            _ => None,
        }
    }
}

/// What kind of native debug file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DebugFileFormat {
    Elf,
    MachO,
    Pe,
    Pdb,
    PortablePdb,
    Breakpad,
    Wasm,
    SourceBundle,
    /// Split DWARF: a `.dwo` unit or a `.dwp` package, found by DWO ID.
    SplitDwarf,
}

impl DebugFileFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DebugFileFormat::Elf => "elf",
            DebugFileFormat::MachO => "macho",
            DebugFileFormat::Pe => "pe",
            DebugFileFormat::Pdb => "pdb",
            DebugFileFormat::PortablePdb => "portablepdb",
            DebugFileFormat::Breakpad => "breakpad",
            DebugFileFormat::Wasm => "wasm",
            DebugFileFormat::SourceBundle => "sourcebundle",
            DebugFileFormat::SplitDwarf => "split_dwarf",
        }
    }
}

/// What an object inside a debug file is, as symbolic names it (plus split DWARF's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// An executable.
    #[serde(rename = "exe")]
    Executable,
    /// A shared library.
    #[serde(rename = "lib")]
    Library,
    /// A separate debug companion (`.debug`, dSYM, PDB, Breakpad).
    #[serde(rename = "dbg")]
    Debug,
    /// A relocatable object file.
    #[serde(rename = "rel")]
    Relocatable,
    /// A core dump.
    Dump,
    /// A source bundle.
    #[serde(rename = "src")]
    Sources,
    /// A split DWARF unit.
    Dwo,
    /// A split DWARF package.
    Dwp,
    /// Anything else (also what older manifests recorded under a name we do not know).
    #[serde(other)]
    Other,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Executable => "exe",
            ObjectKind::Library => "lib",
            ObjectKind::Debug => "dbg",
            ObjectKind::Relocatable => "rel",
            ObjectKind::Dump => "dump",
            ObjectKind::Sources => "src",
            ObjectKind::Dwo => "dwo",
            ObjectKind::Dwp => "dwp",
            ObjectKind::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Features {
    pub symtab: bool,
    pub debug: bool,
    pub unwind: bool,
    pub sources: bool,
}

impl Features {
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.symtab {
            v.push("symtab");
        }
        if self.debug {
            v.push("debug");
        }
        if self.unwind {
            v.push("unwind");
        }
        if self.sources {
            v.push("sources");
        }
        v
    }
}

/// Whether the file starts like a zip (with or without the `SYSB` header).
pub fn looks_like_zip(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04")
        || head.starts_with(b"PK\x05\x06")
        || (head.starts_with(b"SYSB") && head.get(8..12) == Some(b"PK\x03\x04"))
}
