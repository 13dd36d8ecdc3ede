//! Which debug file serves a module: by debug ID, else code ID, ranked (debug info >
//! Breakpad > symbol table), with its companion executable and split DWARF units; and the
//! SymCache built from them. Resolutions are remembered per process until the project's next
//! upload (or `cache.index_ttl`).

use std::sync::Arc;
use std::time::Instant;

use crate::app::App;
use crate::caches::{BuildError, Built};
use crate::kinds::{DebugFileFormat, ObjectKind};
use crate::store::{DebugFileEntry, Store, UploadManifest};
use crate::types::{ProjectId, Sha256};
use crate::wire::{
    Addr, DownloadStatus, FrameStatus, ModuleFeatures, ModuleStatus, NativeModule, SourceCandidate,
};

/// The debug file found for one module, or why none was.
pub struct ModuleResolution {
    pub(super) outcome: Result<ResolvedModule, ModuleFailure>,
    /// What the symbol sources were asked, and said (empty when the uploads served).
    pub(super) candidates: Vec<SourceCandidate>,
}

impl ModuleResolution {
    /// Bytes this resolution holds, for the resolution cache's byte budget.
    pub fn weight(&self) -> usize {
        512 + match &self.outcome {
            // The whole cache counts, mapped or not: a resolution keeps it alive.
            Ok(r) => r.cache.len() + r.file.name.len() + r.source_bundles.len() * 64,
            Err(f) => f.diagnostic.len(),
        } + self
            .candidates
            .iter()
            .map(|c| 64 + c.location.len())
            .sum::<usize>()
    }
}

/// How a module's debug file was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FoundBy {
    DebugId,
    /// The debug ID matched nothing; the code ID did.
    CodeId,
    /// Nothing uploaded: a symbol source had it.
    Source,
}

pub(super) struct ResolvedModule {
    /// The SymCache (a whole cache file, or the SymCache part of a source's answer).
    pub(super) cache: Arc<dyn std::ops::Deref<Target = [u8]> + Send + Sync>,
    pub(super) file: DebugFileEntry,
    pub(super) features: ModuleFeatures,
    /// Source bundles uploaded for the same debug ID, newest first.
    pub(super) source_bundles: Vec<Sha256>,
    /// The debug file itself, when its DWARF embeds the sources.
    pub(super) embedded_sources: Option<Sha256>,
    pub(super) found_by: FoundBy,
    /// DWO IDs of skeleton units whose split DWARF was not uploaded.
    pub(super) missing_dwo: Vec<String>,
}

#[derive(Clone)]
pub(super) struct ModuleFailure {
    pub(super) status: ModuleStatus,
    pub(super) diagnostic: String,
}

fn cache_key(file: &DebugFileEntry, executable: Option<&DebugFileEntry>, dwo: &[Sha256]) -> String {
    let mut key = format!(
        "native/v{}/{}-{}",
        crate::native::FORMAT_VERSION,
        file.sha256,
        file.object_index
    );
    if let Some(exe) = executable {
        key.push_str(&format!(
            "-x{}-{}",
            &exe.sha256.as_str()[..16],
            exe.object_index
        ));
    }
    for d in dwo {
        key.push('-');
        key.push_str(&d.as_str()[..16]);
    }
    key
}

/// Gets (or builds) the SymCache of a debug file, with the split DWARF units it needs and,
/// for a companion file (`.debug`, PDB, Breakpad), the executable whose section table
/// bounds symbols that have no size.
async fn file_cache(
    state: &App,
    project: &ProjectId,
    file: &DebugFileEntry,
    executable: Option<&DebugFileEntry>,
) -> Built {
    let SplitUnits { found: dwo, .. } = split_units(state, project, file).await;
    let key = cache_key(file, executable, &dwo);
    let store = state.store.clone();
    let tmp = state.config.tmp_dir();
    let file = file.clone();
    let executable = executable.cloned();
    state
        .caches
        .get_or_build(key, || async move {
            // Debug files can be large: stream them to local disk and map them, never
            // hold them in memory whole.
            let fetch = |sha: Sha256| fetch_blob(store.clone(), tmp.clone(), sha);
            let main = fetch(file.sha256.clone()).await?;
            let exe = match &executable {
                Some(e) => Some((fetch(e.sha256.clone()).await?, e.object_index)),
                None => None,
            };
            let mut dwo_paths = Vec::new();
            for d in dwo {
                dwo_paths.push(fetch(d).await?);
            }
            let object_index = file.object_index;
            tokio::task::spawn_blocking(move || {
                let main_map =
                    crate::ingest::Mapped::open(&main).map_err(BuildError::unavailable)?;
                let exe_map = match &exe {
                    Some((path, _)) => {
                        Some(crate::ingest::Mapped::open(path).map_err(BuildError::unavailable)?)
                    }
                    None => None,
                };
                let dwo_maps = dwo_paths
                    .iter()
                    .map(|p| crate::ingest::Mapped::open(p).map_err(BuildError::unavailable))
                    .collect::<Result<Vec<_>, _>>()?;
                let input = crate::native::BuildInput {
                    debug_file: &main_map,
                    object_index,
                    executable: exe_map.as_deref(),
                    dwo_files: dwo_maps.iter().map(|m| &m[..]).collect(),
                };
                crate::native::build_cache(&input).map_err(BuildError::invalid)
            })
            .await
            .map_err(BuildError::unavailable)?
        })
        .await
}

/// Streams a stored blob to a local temp file (debug files can be large: they are mapped
/// from disk, never held in memory whole).
pub(super) async fn fetch_blob(
    store: Store,
    tmp: std::path::PathBuf,
    sha: Sha256,
) -> Result<tempfile::TempPath, BuildError> {
    let path = crate::ingest::tmp_path(&tmp);
    store
        .download_to(&Store::blob_key(&sha), &path)
        .await
        .map_err(BuildError::unavailable)?
        .then_some(())
        .ok_or_else(|| BuildError::unavailable(format!("blob {sha} is missing from the store")))?;
    tempfile::TempPath::try_from_path(path).map_err(BuildError::unavailable)
}

/// The split DWARF a debug file's skeleton units name: the uploaded `.dwo`/`.dwp` files
/// that provide them, and the DWO IDs (hex) nothing uploaded to the project provides.
pub(crate) struct SplitUnits {
    pub(crate) found: Vec<Sha256>,
    pub(crate) missing: Vec<String>,
}

pub(crate) async fn split_units(
    state: &App,
    project: &ProjectId,
    file: &DebugFileEntry,
) -> SplitUnits {
    let mut units = SplitUnits {
        found: Vec::new(),
        missing: Vec::new(),
    };
    if file.format == DebugFileFormat::SplitDwarf {
        return units;
    }
    // A `.dwp` is findable by the ID of its first unit only: what a found file provides is
    // read from its own list.
    let mut provided: Vec<String> = Vec::new();
    for id in &file.dwo_ids {
        if provided.contains(id) {
            continue;
        }
        let Ok(n) = u64::from_str_radix(id, 16) else {
            continue;
        };
        let debug_id = crate::native::dwo_debug_id(n);
        let provider = match state.index.by_debug_id(project, &debug_id).await {
            Ok(manifests) => manifests.iter().rev().find_map(|m| {
                m.debug_files
                    .iter()
                    .find(|d| d.format == DebugFileFormat::SplitDwarf && d.dwo_ids.contains(id))
                    .cloned()
            }),
            Err(_) => None,
        };
        match provider {
            Some(d) => {
                provided.extend(d.dwo_ids.iter().cloned());
                if !units.found.contains(&d.sha256) {
                    units.found.push(d.sha256);
                }
            }
            None => units.missing.push(id.clone()),
        }
    }
    units.missing.retain(|id| !provided.contains(id));
    units
}

/// How good a debug file is for lookups: debug info beats a symbol table.
fn rank(d: &DebugFileEntry) -> u8 {
    match d.format {
        DebugFileFormat::SourceBundle | DebugFileFormat::SplitDwarf => 0,
        DebugFileFormat::Pe if !d.features.debug => 1,
        _ if d.features.debug => 4,
        DebugFileFormat::Breakpad => 3,
        _ if d.features.symtab => 2,
        _ => 1,
    }
}

/// A module of the request, with its IDs parsed and its image range.
pub(super) struct Module {
    pub(super) index: usize,
    pub(super) wire: NativeModule,
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) debug_id: Option<debugid::DebugId>,
    pub(super) code_id: Option<debugid::CodeId>,
    pub(super) arch: String,
}

/// `deadline`: when the request stops waiting for symbol sources (see `external::find`).
pub(super) async fn resolve_module(
    state: &App,
    project: &ProjectId,
    m: &Module,
    deadline: Instant,
) -> Arc<ModuleResolution> {
    let key = format!(
        "{project}\u{0}{}\u{0}{}\u{0}{}",
        state.index.generation(project),
        m.debug_id.map(|d| d.to_string()).unwrap_or_default(),
        m.code_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default()
    );
    if let Some(r) = state.native_resolutions.get(&key).await {
        return r;
    }
    let r = Arc::new(resolve_module_uncached(state, project, m, deadline).await);
    // A download still running is not an answer to keep: the next request asks again.
    if !r
        .candidates
        .iter()
        .any(|c| c.status == DownloadStatus::Pending)
    {
        state.native_resolutions.insert(key, r.clone()).await;
    }
    r
}

async fn resolve_module_uncached(
    state: &App,
    project: &ProjectId,
    m: &Module,
    deadline: Instant,
) -> ModuleResolution {
    match from_uploads(state, project, m).await {
        Err(f) if f.status == ModuleStatus::Missing => {
            let (found, said) = super::external::find(state, project, m, deadline).await;
            let outcome = match found {
                Some(ext) => Ok(from_source(&ext, m)),
                None if said.is_empty() => Err(f),
                None => Err(ModuleFailure {
                    status: if said.iter().all(|c| c.status == DownloadStatus::NotFound) {
                        ModuleStatus::Missing
                    } else {
                        ModuleStatus::FetchingFailed
                    },
                    diagnostic: format!(
                        "{}; symbol sources: {}",
                        f.diagnostic,
                        super::external::summary(&said)
                    ),
                }),
            };
            ModuleResolution {
                outcome,
                candidates: said,
            }
        }
        outcome => ModuleResolution {
            outcome,
            candidates: Vec::new(),
        },
    }
}

/// A module served by a symbol source.
fn from_source(ext: &Arc<super::external::External>, m: &Module) -> ResolvedModule {
    use sha2::Digest;
    let name = ext.symbols_from().to_owned();
    let sha = Sha256::from_digest(&sha2::Sha256::digest(name.as_bytes()));
    ResolvedModule {
        cache: Arc::new(ext.symcache()),
        file: DebugFileEntry {
            name: format!("{} from source {}", name, ext.source()),
            sha256: sha,
            size: 0,
            format: match m.wire.kind.as_str() {
                "macho" => DebugFileFormat::MachO,
                "pe" => DebugFileFormat::Pdb,
                _ => DebugFileFormat::Elf,
            },
            object_kind: ObjectKind::Debug,
            arch: m.arch.clone(),
            debug_id: m.debug_id,
            code_id: m.code_id.clone(),
            features: Default::default(),
            object_index: 0,
            dwo_ids: Vec::new(),
        },
        features: ModuleFeatures {
            has_debug_info: true,
            has_unwind_info: !ext.cfi().is_empty(),
            has_symbols: true,
            has_sources: false,
        },
        source_bundles: Vec::new(),
        embedded_sources: None,
        found_by: FoundBy::Source,
        missing_dwo: Vec::new(),
    }
}

async fn from_uploads(
    state: &App,
    project: &ProjectId,
    m: &Module,
) -> Result<ResolvedModule, ModuleFailure> {
    let (mut candidates, found_by) = candidates(state, project, m).await?;
    let source_bundles: Vec<Sha256> = candidates
        .iter()
        .filter(|c| c.format == DebugFileFormat::SourceBundle)
        .map(|c| c.sha256.clone())
        .collect();
    let mut features = ModuleFeatures::default();
    for c in &candidates {
        features.has_debug_info |= c.features.debug && rank(c) > 0;
        features.has_symbols |= c.features.symtab;
        features.has_unwind_info |= c.features.unwind;
        features.has_sources |= c.features.sources;
    }
    // Best first; ties: newest first (candidates are newest first already; sort is stable).
    candidates.sort_by_key(|c| std::cmp::Reverse(rank(c)));
    let ids = describe_ids(m);
    let all = candidates.clone();
    let Some(best) = candidates.into_iter().find(|c| rank(c) > 0) else {
        return Err(ModuleFailure {
            status: ModuleStatus::Missing,
            diagnostic: format!("no debug file with {ids} was uploaded to project {project}"),
        });
    };
    // A companion file gets the executable it belongs to, when uploaded.
    let executable = if best.object_kind == ObjectKind::Debug
        || matches!(
            best.format,
            DebugFileFormat::Breakpad | DebugFileFormat::Pdb
        ) {
        all.iter()
            .find(|c| {
                c.sha256 != best.sha256
                    && matches!(
                        c.format,
                        DebugFileFormat::Elf | DebugFileFormat::MachO | DebugFileFormat::Pe
                    )
                    && c.object_kind != ObjectKind::Debug
            })
            .cloned()
    } else {
        None
    };
    let missing_dwo = split_units(state, project, &best).await.missing;
    match file_cache(state, project, &best, executable.as_ref()).await {
        Ok(cache) => Ok(ResolvedModule {
            missing_dwo,
            cache,
            embedded_sources: (best.features.sources
                && matches!(best.format, DebugFileFormat::Elf | DebugFileFormat::MachO))
            .then(|| best.sha256.clone()),
            file: best,
            features,
            source_bundles,
            found_by,
        }),
        Err(e @ BuildError::Unavailable(_)) => Err(ModuleFailure {
            status: ModuleStatus::FetchingFailed,
            diagnostic: format!(
                "debug file {} ({}) for {ids} could not be read: {e}",
                best.name,
                best.format.as_str()
            ),
        }),
        Err(e) => Err(ModuleFailure {
            status: ModuleStatus::Malformed,
            diagnostic: format!(
                "debug file {} ({}) for {ids} could not be processed: {e}",
                best.name,
                best.format.as_str()
            ),
        }),
    }
}

/// Every file uploaded for a module's debug ID (newest first), or, when none of those is a
/// debug file, for its code ID.
pub(super) async fn candidates(
    state: &App,
    project: &ProjectId,
    m: &Module,
) -> Result<(Vec<DebugFileEntry>, FoundBy), ModuleFailure> {
    let store_err = |e: crate::store::StoreError| ModuleFailure {
        status: ModuleStatus::FetchingFailed,
        diagnostic: format!("store error: {e}"),
    };
    let mut candidates: Vec<DebugFileEntry> = Vec::new();
    let mut found_by = FoundBy::DebugId;
    if let Some(id) = m.debug_id {
        let manifests = state
            .index
            .by_debug_id(project, &id)
            .await
            .map_err(store_err)?;
        for manifest in manifests.iter().rev() {
            candidates.extend(
                manifest
                    .debug_files
                    .iter()
                    .filter(|d| d.debug_id == Some(id))
                    .cloned(),
            );
        }
    }
    if candidates.iter().all(|c| rank(c) == 0) {
        if let Some(code_id) = &m.code_id {
            let manifests = state
                .index
                .by_code_id(project, code_id)
                .await
                .map_err(store_err)?;
            let before = candidates.len();
            for manifest in manifests.iter().rev() {
                candidates.extend(
                    manifest
                        .debug_files
                        .iter()
                        .filter(|d| d.code_id.as_ref() == Some(code_id))
                        .cloned(),
                );
            }
            if candidates.len() > before {
                found_by = FoundBy::CodeId;
            }
        }
    }
    Ok((candidates, found_by))
}

pub(super) fn describe_ids(m: &Module) -> String {
    match (&m.debug_id, &m.code_id) {
        (Some(d), Some(c)) => format!("debug ID {d} or code ID {c}"),
        (Some(d), None) => format!("debug ID {d}"),
        (None, Some(c)) => format!("code ID {c}"),
        (None, None) => "no debug ID or code ID".into(),
    }
}

impl ModuleFailure {
    /// What the module's failure means for each of its frames.
    pub(super) fn frame_status(&self) -> FrameStatus {
        match self.status {
            ModuleStatus::Malformed => FrameStatus::Malformed,
            _ => FrameStatus::Missing,
        }
    }
}

/// After an upload: resolve each uploaded debug ID as a request would, which builds the
/// SymCache the next request needs (with the same key: companions, split units and all),
/// and the CFI cache a minidump needs.
pub async fn prewarm(state: &App, manifest: &UploadManifest) {
    let mut seen = std::collections::HashSet::new();
    for d in &manifest.debug_files {
        let Some(debug_id) = d.debug_id else { continue };
        if rank(d) == 0 || !seen.insert(debug_id) {
            continue;
        }
        let module = Module {
            index: 0,
            wire: NativeModule {
                kind: "unknown".into(),
                code_id: None,
                debug_id: None,
                code_file: None,
                debug_file: None,
                image_addr: Addr(0),
                image_size: None,
                image_vmaddr: None,
                arch: None,
            },
            start: 0,
            end: u64::MAX,
            debug_id: Some(debug_id),
            code_id: d.code_id.clone(),
            arch: d.arch.clone(),
        };
        let deadline = Instant::now() + state.sources.fetching.request_wait;
        let _ = resolve_module(state, &manifest.project, &module, deadline).await;
        // And the CFI a minidump of this module would unwind with.
        if d.features.unwind {
            let _ =
                super::unwind::resolve_unwind(state, &manifest.project, &module, deadline).await;
        }
    }
}
