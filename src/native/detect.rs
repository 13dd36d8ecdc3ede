//! Recognising native debug files and describing them for the manifest: format, kind,
//! architecture, debug ID, code ID, features, and for split DWARF the DWO IDs a file provides
//! (`.dwo`, `.dwp`) or needs (skeleton units of an executable).
//!
//! symbolic recognises and describes every container; split DWARF, which symbolic does not
//! read, is recognised with `object` + `gimli`.
//!
//! Pure, like the rest of `native`: bytes in, descriptions out. It never builds a cache, never
//! panics out on a hostile file (parser panics become [`DetectError::Malformed`]), and knows
//! nothing of uploads, storage or HTTP; callers map [`DetectError`] into their own errors.

use symbolic::debuginfo::{Archive, FileFormat, Object};

use crate::kinds::{DebugFileFormat, Features, ObjectKind};

use super::dwarf::{Names, PackageSections, Sections};
use super::NativeError;

/// One object of a debug file (a fat Mach-O has several).
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectFacts {
    pub format: DebugFileFormat,
    pub object_kind: ObjectKind,
    pub arch: String,
    pub debug_id: Option<debugid::DebugId>,
    pub code_id: Option<debugid::CodeId>,
    pub features: Features,
    /// The `object_index` to pass in [`BuildInput`](super::BuildInput).
    pub object_index: usize,
    /// DWO IDs, 16 lowercase hex digits: the split units a `.dwo`/`.dwp` provides, or those the
    /// skeleton units of an executable need.
    pub dwo_ids: Vec<String>,
}

/// Why a file could not be described.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    /// Not a debug file format we know.
    #[error("not a known debug file format (ELF, Mach-O, PE, PDB, Portable PDB, Breakpad, WASM, source bundle, split DWARF)")]
    UnknownFormat,
    /// The header says `format`, but the contents are broken.
    #[error("malformed {format} file: {message}")]
    Malformed {
        format: &'static str,
        message: String,
    },
    /// An object has no usable (non-nil) debug ID.
    #[error("the file has no debug ID")]
    MissingDebugId,
}

/// Whether `bytes` are a format we could store (cheap header check).
pub fn is_debug_file(bytes: &[u8]) -> bool {
    Archive::peek(bytes) != FileFormat::Unknown
}

/// Describes every object in a debug file. Errors when the format is unknown, the file is
/// malformed, or an object has no usable ID.
pub fn describe(bytes: &[u8]) -> Result<Vec<ObjectFacts>, DetectError> {
    // Parsers of hostile files panic now and then (the `pdb` crate, found by fuzzing):
    // such a file is malformed, not a reason to take a worker down.
    std::panic::catch_unwind(|| describe_unguarded(bytes)).unwrap_or_else(|_| {
        Err(DetectError::Malformed {
            format: "debug file",
            message: "the parser gave up on this file".into(),
        })
    })
}

fn describe_unguarded(bytes: &[u8]) -> Result<Vec<ObjectFacts>, DetectError> {
    let format = Archive::peek(bytes);
    if format == FileFormat::Unknown {
        return Err(DetectError::UnknownFormat);
    }
    if format == FileFormat::Elf {
        if let Some(split) = split_dwarf(bytes) {
            return split
                .map(|f| vec![f])
                .map_err(|message| DetectError::Malformed {
                    format: "split DWARF",
                    message,
                });
        }
    }
    let malformed = |message: String| DetectError::Malformed {
        format: format.name(),
        message,
    };
    let archive = Archive::parse_with_opts(bytes, super::build::parse_options())
        .map_err(|e| malformed(e.to_string()))?;
    let mut out = Vec::new();
    for (index, object) in archive.objects().enumerate() {
        let object = object.map_err(|e| malformed(e.to_string()))?;
        let mut facts = object_facts(&object, index)?;
        if matches!(facts.format, DebugFileFormat::Elf | DebugFileFormat::MachO)
            && facts.features.debug
            && !facts.features.sources
        {
            // symbolic does not see sources embedded in DWARF 5 line tables; we do.
            facts.features.sources = super::has_embedded_sources(object.data());
        }
        if facts.format == DebugFileFormat::Elf && facts.features.debug {
            // Skeleton units of split DWARF name the .dwo units this file needs.
            if let Ok(file) = object::File::parse(bytes) {
                facts.dwo_ids = hex_ids(&dwo_ids(&file, Names::Main).unwrap_or_default());
            }
        }
        out.push(facts);
    }
    if out.is_empty() {
        return Err(malformed("contains no objects".into()));
    }
    Ok(out)
}

fn object_facts(object: &Object<'_>, index: usize) -> Result<ObjectFacts, DetectError> {
    let debug_id = object.debug_id();
    if debug_id.is_nil() {
        return Err(DetectError::MissingDebugId);
    }
    let format = match object.file_format() {
        FileFormat::Breakpad => DebugFileFormat::Breakpad,
        FileFormat::Elf => DebugFileFormat::Elf,
        FileFormat::MachO => DebugFileFormat::MachO,
        FileFormat::Pdb => DebugFileFormat::Pdb,
        FileFormat::Pe => DebugFileFormat::Pe,
        FileFormat::SourceBundle => DebugFileFormat::SourceBundle,
        FileFormat::Wasm => DebugFileFormat::Wasm,
        FileFormat::PortablePdb => DebugFileFormat::PortablePdb,
        FileFormat::Unknown => return Err(DetectError::UnknownFormat),
    };
    Ok(ObjectFacts {
        format,
        object_kind: object_kind(object.kind()),
        arch: object.arch().name().to_owned(),
        debug_id: Some(debug_id),
        code_id: object.code_id(),
        features: Features {
            symtab: object.has_symbols(),
            debug: object.has_debug_info(),
            unwind: object.has_unwind_info(),
            sources: object.has_sources(),
        },
        object_index: index,
        dwo_ids: Vec::new(),
    })
}

fn hex_ids(ids: &[u64]) -> Vec<String> {
    ids.iter().map(|id| format!("{id:016x}")).collect()
}

/// The debug ID of an ELF file from its GNU build ID (the code ID), as Sentry and symbolic
/// define it: the first 16 bytes (zero-padded), read as a little-endian GUID with age 0. `None`
/// when the code ID is not hex.
pub fn debug_id_from_build_id(code_id: &debugid::CodeId) -> Option<debugid::DebugId> {
    let bytes = hex::decode(code_id.as_str()).ok()?;
    let mut guid = [0u8; 16];
    let n = bytes.len().min(16);
    guid[..n].copy_from_slice(bytes.get(..n)?);
    debugid::DebugId::from_guid_age(&guid, 0).ok()
}

/// The debug ID under which a split DWARF unit with `dwo_id` is indexed: the 8 bytes of the
/// DWO ID, big-endian, followed by eight zero bytes.
pub fn dwo_debug_id(dwo_id: u64) -> debugid::DebugId {
    debugid::DebugId::from_uuid(uuid::Uuid::from_u64_pair(dwo_id, 0))
}
/// `Some` when the ELF file is a split DWARF object (`.dwo`) or package (`.dwp`).
fn split_dwarf(bytes: &[u8]) -> Option<Result<ObjectFacts, String>> {
    use object::Object as _;
    let file = object::File::parse(bytes).ok()?;
    file.section_by_name(".debug_info.dwo")?;
    let is_package = file.section_by_name(".debug_cu_index").is_some();
    Some((|| {
        let ids = dwo_ids(&file, Names::Dwo)?;
        let first = *ids
            .first()
            .ok_or_else(|| "no split compilation unit with a DWO ID".to_owned())?;
        Ok(ObjectFacts {
            format: DebugFileFormat::SplitDwarf,
            object_kind: if is_package {
                ObjectKind::Dwp
            } else {
                ObjectKind::Dwo
            },
            arch: format!("{:?}", file.architecture()).to_ascii_lowercase(),
            debug_id: Some(dwo_debug_id(first)),
            code_id: None,
            features: Features {
                debug: true,
                ..Features::default()
            },
            object_index: 0,
            dwo_ids: hex_ids(&ids),
        })
    })())
}

/// DWO IDs of the split (or skeleton) compilation units, from the DWARF 5 unit header or,
/// for GNU DWARF 4 split units, the `DW_AT_GNU_dwo_id` attribute: with [`Names::Dwo`] those a
/// `.dwo` or `.dwp` provides (for a package, the units listed in its `.debug_cu_index`, each
/// read through gimli's `DwarfPackage`), with [`Names::Main`] those an executable's skeletons
/// need.
fn dwo_ids(file: &object::File<'_>, names: Names) -> Result<Vec<u64>, String> {
    let sections = Sections::load(file, names).map_err(message)?;
    let dwarf = sections.dwarf();
    let package = match names {
        Names::Dwo => PackageSections::load(file).map_err(message)?,
        Names::Main => None,
    };
    let mut ids = Vec::new();
    if let Some(package) = package {
        let package = package.package().map_err(message)?;
        for row in 1..=package.cu_index.unit_count() {
            let unit = package
                .cu_sections(row, &dwarf)
                .map_err(|e| format!(".debug_cu_index row {row}: {e}"))?;
            unit_dwo_ids(&unit, &mut ids)?;
        }
    } else {
        unit_dwo_ids(&dwarf, &mut ids)?;
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// The message of a [`NativeError`], without its prefix.
fn message(error: NativeError) -> String {
    match error {
        NativeError::Malformed(message) | NativeError::Unsupported(message) => message,
        other => other.to_string(),
    }
}

/// Appends the DWO IDs of the units in `dwarf` to `ids`.
fn unit_dwo_ids<R: gimli::Reader>(
    dwarf: &gimli::Dwarf<R>,
    ids: &mut Vec<u64>,
) -> Result<(), String> {
    let mut units = dwarf.units();
    while let Some(header) = units.next().map_err(|e| e.to_string())? {
        if let gimli::UnitType::SplitCompilation(id) | gimli::UnitType::Skeleton(id) =
            header.type_()
        {
            ids.push(id.0);
            continue;
        }
        let unit = dwarf.unit(header).map_err(|e| e.to_string())?;
        let mut entries = unit.entries();
        if let Some(entry) = entries.next_dfs().map_err(|e| e.to_string())? {
            match entry.attr_value(gimli::DW_AT_GNU_dwo_id) {
                Some(gimli::AttributeValue::DwoId(id)) => ids.push(id.0),
                Some(gimli::AttributeValue::Udata(id)) => ids.push(id),
                _ => {}
            }
        }
    }
    Ok(())
}

/// symbolic's object kind in our vocabulary.
fn object_kind(kind: symbolic::debuginfo::ObjectKind) -> ObjectKind {
    use symbolic::debuginfo::ObjectKind as K;
    match kind {
        K::Executable => ObjectKind::Executable,
        K::Library => ObjectKind::Library,
        K::Debug => ObjectKind::Debug,
        K::Relocatable => ObjectKind::Relocatable,
        K::Dump => ObjectKind::Dump,
        K::Sources => ObjectKind::Sources,
        _ => ObjectKind::Other,
    }
}
