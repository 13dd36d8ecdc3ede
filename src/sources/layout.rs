//! Where a source keeps a file: the paths of each layout, as Symbolicator documents them
//! ("Symbol Server Compatibility"), so an existing symbol server or bucket works unchanged.
//!
//! | layout | ELF | Mach-O | PE / PDB | Breakpad |
//! |---|---|---|---|---|
//! | `native` | GDB: `nn/rest` (code), `nn/rest.debug` | LLDB: `XXXX/XXXX/XXXX/XXXX/XXXX/XXXXXXXXXXXX[.app]` | symstore | `name/ID/name.sym` |
//! | `symstore`, `symstore_index2`, `ssqp` | `name/elf-buildid-ID/name`, `_.debug/elf-buildid-sym-ID/_.debug` | `name/mach-uuid-ID/name`, `_.dwarf/mach-uuid-sym-ID/_.dwarf` | `name.exe/TIMESTAMPsize/name.exe`, `name.pdb/SIGNATUREAGE/name.pdb` | `name/ID/name.sym` |
//! | `debuginfod` | `ID/executable`, `ID/debuginfo` | – | – | – |
//! | `unified` | `nn/rest/executable`, `…/debuginfo`, `…/breakpad` (all kinds) | | | |
//!
//! `symstore_index2` puts the first two characters of the file name in front
//! (`fo/foo.exe/…`); `ssqp` lowercases file names. PE and PDB files on a symstore may also be
//! CAB-compressed under a name ending in `_` (`foo.pd_`), or replaced by a `file.ptr`.

use debugid::{CodeId, DebugId};

use crate::config::{Casing, Layout};

/// The object format of the module being looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjFormat {
    Elf,
    MachO,
    Pe,
    Wasm,
    Unknown,
}

impl ObjFormat {
    /// From the `type` of a module in a request (`elf`, `macho`, `pe`, `wasm`, …).
    pub fn from_module_type(t: &str) -> ObjFormat {
        match t.to_ascii_lowercase().as_str() {
            "elf" => ObjFormat::Elf,
            "macho" => ObjFormat::MachO,
            "pe" | "pe_dotnet" => ObjFormat::Pe,
            "wasm" => ObjFormat::Wasm,
            _ => ObjFormat::Unknown,
        }
    }
}

/// Which file of a module a location holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// Debug information (ELF/Mach-O debug companion, PDB).
    Debug,
    /// The executable or library itself (unwind tables, symbol table).
    Code,
    /// A Breakpad `.sym` file.
    Breakpad,
}

/// What is looked up: a module's identity.
#[derive(Debug, Clone)]
pub struct Query {
    pub format: ObjFormat,
    pub debug_id: Option<DebugId>,
    pub code_id: Option<CodeId>,
    pub code_file: Option<String>,
    pub debug_file: Option<String>,
}

impl Query {
    /// Symbolicator's file type name of one kind of file of this module (`elf_code`, `pdb`, …).
    pub fn filetype(&self, kind: FileKind) -> &'static str {
        match (self.format, kind) {
            (_, FileKind::Breakpad) => "breakpad",
            (ObjFormat::Elf, FileKind::Code) => "elf_code",
            (ObjFormat::Elf, FileKind::Debug) => "elf_debug",
            (ObjFormat::MachO, FileKind::Code) => "macho_code",
            (ObjFormat::MachO, FileKind::Debug) => "macho_debug",
            (ObjFormat::Pe, FileKind::Code) => "pe",
            (ObjFormat::Pe, FileKind::Debug) => "pdb",
            (ObjFormat::Wasm, FileKind::Code) => "wasm_code",
            (ObjFormat::Wasm, FileKind::Debug) => "wasm_debug",
            (ObjFormat::Unknown, _) => "unknown",
        }
    }

    /// A key naming this module's identity (for caches of answers).
    pub fn key(&self) -> String {
        format!(
            "{:?}/{}/{}",
            self.format,
            self.debug_id.map(|d| d.to_string()).unwrap_or_default(),
            self.code_id
                .as_ref()
                .map(|c| c.as_str())
                .unwrap_or_default()
        )
    }

    fn code_name(&self) -> Option<String> {
        self.code_file
            .as_deref()
            .map(basename)
            .filter(|n| !n.is_empty())
    }

    fn debug_name(&self) -> Option<String> {
        self.debug_file
            .as_deref()
            .map(basename)
            .filter(|n| !n.is_empty())
            .or_else(|| self.code_name())
    }

    /// The ELF build ID / Mach-O UUID / wasm build ID, lowercase hex.
    fn build_id(&self) -> Option<String> {
        match (&self.code_id, self.format) {
            (Some(c), _) if !c.as_str().is_empty() => Some(c.as_str().to_ascii_lowercase()),
            (None, ObjFormat::MachO) => self.debug_id.map(|d| d.uuid().simple().to_string()),
            _ => None,
        }
    }

    /// The Mach-O UUID (lowercase hex, no dashes).
    fn mach_uuid(&self) -> Option<String> {
        self.debug_id
            .map(|d| d.uuid().simple().to_string())
            .or_else(|| self.build_id())
            .filter(|u| u.len() == 32)
    }

    /// PDB signature and age: `SIGNATUREAGE`, both uppercase hex (age not padded).
    fn pdb_id(&self) -> Option<String> {
        self.debug_id
            .map(|d| format!("{}{:X}", d.uuid().simple(), d.appendix()).to_ascii_uppercase())
    }

    /// PE `TIMESTAMPsize`: the timestamp uppercase, the size lowercase.
    fn pe_id(&self) -> Option<String> {
        let c = self.code_id.as_ref()?.as_str();
        (c.len() > 8).then(|| {
            format!(
                "{}{}",
                c[..8].to_ascii_uppercase(),
                c[8..].to_ascii_lowercase()
            )
        })
    }

    /// The Breakpad ID: signature uppercase, age lowercase.
    fn breakpad_id(&self) -> Option<String> {
        self.debug_id.map(|d| {
            format!(
                "{}{:x}",
                d.uuid().simple().to_string().to_ascii_uppercase(),
                d.appendix()
            )
        })
    }
}

/// The base name of a path written on any platform.
pub fn basename(path: &str) -> String {
    path.rsplit(['/', '\\']).next().unwrap_or(path).to_owned()
}

/// The Breakpad file name: `.pdb`, `.exe`, `.dll` replaced by `.sym`, else `.sym` appended.
fn sym_name(debug_name: &str) -> String {
    let lower = debug_name.to_ascii_lowercase();
    for ext in [".pdb", ".exe", ".dll"] {
        if lower.ends_with(ext) {
            return format!("{}.sym", &debug_name[..debug_name.len() - ext.len()]);
        }
    }
    format!("{debug_name}.sym")
}

/// The paths where `layout` keeps `kind` of this module, best first (CAB-compressed and
/// `file.ptr` variants of PE/PDB files after the plain name). Empty when the layout has no
/// place for it or the module lacks the identifier it needs.
pub fn locations(layout: Layout, casing: Casing, q: &Query, kind: FileKind) -> Vec<String> {
    let mut out = match layout {
        Layout::Native => native(q, kind),
        Layout::Symstore | Layout::SymstoreIndex2 | Layout::Ssqp => symstore(q, kind),
        Layout::Breakpad => breakpad(q, kind).into_iter().collect(),
        Layout::Debuginfod => debuginfod(q, kind).into_iter().collect(),
        Layout::Unified => unified(q, kind).into_iter().collect(),
    };
    if layout == Layout::Ssqp {
        out = out.into_iter().map(|p| ssqp_case(&p)).collect();
    }
    if layout == Layout::SymstoreIndex2 {
        out = out
            .into_iter()
            .map(|p| {
                let prefix: String = p.chars().take(2).collect();
                format!("{prefix}/{p}")
            })
            .collect();
    }
    match casing {
        Casing::Default => out,
        Casing::Lowercase => out.into_iter().map(|p| p.to_ascii_lowercase()).collect(),
        Casing::Uppercase => out.into_iter().map(|p| p.to_ascii_uppercase()).collect(),
    }
}

/// SSQP: file names lowercase; the ID segment keeps its case rules (lowercase, except a PDB
/// age, which symstore already wrote uppercase: SSQP keeps the age uppercase).
fn ssqp_case(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i == 1 && parts.len() == 3 && !p.contains('-') && p.len() > 32 {
                // A PDB `SIGNATUREAGE`: signature lowercase, age uppercase.
                format!("{}{}", p[..32].to_ascii_lowercase(), &p[32..])
            } else {
                p.to_ascii_lowercase()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn breakpad(q: &Query, kind: FileKind) -> Option<String> {
    if kind != FileKind::Breakpad {
        return None;
    }
    let name = q.debug_name()?;
    Some(format!("{name}/{}/{}", q.breakpad_id()?, sym_name(&name)))
}

fn with_cab_variants(path: String, name: &str) -> Vec<String> {
    let dir = &path[..path.len() - name.len()];
    let mut compressed = name.to_owned();
    compressed.pop();
    compressed.push('_');
    vec![
        path.clone(),
        format!("{dir}{compressed}"),
        format!("{dir}file.ptr"),
    ]
}

fn symstore(q: &Query, kind: FileKind) -> Vec<String> {
    if kind == FileKind::Breakpad {
        return breakpad(q, kind).into_iter().collect();
    }
    let path = match (q.format, kind) {
        (ObjFormat::Pe, FileKind::Code) => {
            let (Some(name), Some(id)) = (q.code_name(), q.pe_id()) else {
                return Vec::new();
            };
            return with_cab_variants(format!("{name}/{id}/{name}"), &name);
        }
        (ObjFormat::Pe, FileKind::Debug) => {
            let (Some(name), Some(id)) = (q.debug_name(), q.pdb_id()) else {
                return Vec::new();
            };
            return with_cab_variants(format!("{name}/{id}/{name}"), &name);
        }
        (ObjFormat::Elf, FileKind::Code) => q
            .code_name()
            .zip(q.build_id())
            .map(|(name, id)| format!("{name}/elf-buildid-{id}/{name}")),
        (ObjFormat::Elf, FileKind::Debug) => q
            .build_id()
            .map(|id| format!("_.debug/elf-buildid-sym-{id}/_.debug")),
        (ObjFormat::MachO, FileKind::Code) => q
            .code_name()
            .zip(q.mach_uuid())
            .map(|(name, id)| format!("{name}/mach-uuid-{id}/{name}")),
        (ObjFormat::MachO, FileKind::Debug) => q
            .mach_uuid()
            .map(|id| format!("_.dwarf/mach-uuid-sym-{id}/_.dwarf")),
        _ => None,
    };
    path.into_iter().collect()
}

fn native(q: &Query, kind: FileKind) -> Vec<String> {
    match (q.format, kind) {
        (_, FileKind::Breakpad) | (ObjFormat::Pe, _) => symstore(q, kind),
        (ObjFormat::Elf, FileKind::Code) => q
            .build_id()
            .filter(|id| id.len() > 2)
            .map(|id| format!("{}/{}", &id[..2], &id[2..]))
            .into_iter()
            .collect(),
        (ObjFormat::Elf | ObjFormat::Wasm, FileKind::Debug) => q
            .build_id()
            .filter(|id| id.len() > 2)
            .map(|id| format!("{}/{}.debug", &id[..2], &id[2..]))
            .into_iter()
            .collect(),
        (ObjFormat::MachO, _) => {
            let Some(u) = q.mach_uuid().map(|u| u.to_ascii_uppercase()) else {
                return Vec::new();
            };
            let base = format!(
                "{}/{}/{}/{}/{}/{}",
                &u[0..4],
                &u[4..8],
                &u[8..12],
                &u[12..16],
                &u[16..20],
                &u[20..]
            );
            vec![if kind == FileKind::Code {
                format!("{base}.app")
            } else {
                base
            }]
        }
        _ => Vec::new(),
    }
}

fn debuginfod(q: &Query, kind: FileKind) -> Option<String> {
    if q.format != ObjFormat::Elf {
        return None;
    }
    let id = q.build_id()?;
    match kind {
        FileKind::Code => Some(format!("{id}/executable")),
        FileKind::Debug => Some(format!("{id}/debuginfo")),
        FileKind::Breakpad => None,
    }
}

fn unified(q: &Query, kind: FileKind) -> Option<String> {
    let id = match q.format {
        ObjFormat::Elf | ObjFormat::Wasm => q.build_id()?,
        ObjFormat::MachO => q.mach_uuid()?,
        ObjFormat::Pe | ObjFormat::Unknown => q.pdb_id()?.to_ascii_lowercase(),
    };
    if id.len() <= 2 {
        return None;
    }
    let leaf = match kind {
        FileKind::Code => "executable",
        FileKind::Debug => "debuginfo",
        FileKind::Breakpad => "breakpad",
    };
    Some(format!("{}/{}/{leaf}", &id[..2], &id[2..]))
}
