//! Native frames: address → module (by image range) → debug file (by debug ID, else code ID)
//! → SymCache lookup, with caller adjustment and inline expansion.

use std::collections::HashMap;
use std::sync::Arc;

use crate::caches::{BuildError, Built, CacheBytes};
use crate::error::ApiError;
use crate::http::AppState;
use crate::kinds::DebugFileFormat;
use crate::store::{DebugFileEntry, Store, UploadManifest};
use crate::types::{parse_code_id, parse_debug_id, ProjectId, Sha256};
use crate::wire::{
    Addr, FrameOrder, ModuleFeatures, NativeFrameOut, NativeModule, NativeModuleOut, NativeRequest,
    NativeResponse, NativeStacktraceOut,
};

/// The debug file found for one module, or why none was.
pub struct ModuleResolution {
    outcome: Result<ResolvedModule, ModuleFailure>,
}

struct ResolvedModule {
    cache: Arc<CacheBytes>,
    file: DebugFileEntry,
    features: ModuleFeatures,
    /// Source bundles uploaded for the same debug ID, newest first.
    source_bundles: Vec<Sha256>,
    /// The debug file itself, when its DWARF embeds the sources.
    embedded_sources: Option<Sha256>,
    via: &'static str,
}

#[derive(Clone)]
struct ModuleFailure {
    status: &'static str,
    diagnostic: String,
}

pub(crate) fn cache_key(
    file: &DebugFileEntry,
    executable: Option<&DebugFileEntry>,
    dwo: &[Sha256],
) -> String {
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
    state: &AppState,
    project: &ProjectId,
    file: &DebugFileEntry,
    executable: Option<&DebugFileEntry>,
) -> Built {
    let mut dwo = Vec::new();
    if file.format != DebugFileFormat::SplitDwarf {
        for id in &file.dwo_ids {
            let Ok(n) = u64::from_str_radix(id, 16) else {
                continue;
            };
            let debug_id = crate::native::dwo_debug_id(n);
            if let Ok(manifests) = state.index.by_debug_id(project, &debug_id).await {
                if let Some(d) = manifests.iter().rev().find_map(|m| {
                    m.debug_files
                        .iter()
                        .find(|d| d.format == DebugFileFormat::SplitDwarf && d.dwo_ids.contains(id))
                }) {
                    if !dwo.contains(&d.sha256) {
                        dwo.push(d.sha256.clone());
                    }
                }
            }
        }
    }
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
            let fetch = |sha: Sha256| {
                let store = store.clone();
                let path = crate::ingest::tmp_path(&tmp);
                async move {
                    store
                        .download_to(&Store::blob_key(&sha), &path)
                        .await
                        .map_err(BuildError::unavailable)?
                        .then_some(())
                        .ok_or_else(|| {
                            BuildError::unavailable(format!("blob {sha} is missing from the store"))
                        })?;
                    let temp =
                        tempfile::TempPath::try_from_path(path).map_err(BuildError::unavailable)?;
                    Ok::<_, BuildError>(temp)
                }
            };
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

struct Module {
    index: usize,
    wire: NativeModule,
    start: u64,
    end: u64,
    debug_id: Option<debugid::DebugId>,
    code_id: Option<debugid::CodeId>,
    arch: String,
}

async fn resolve_module(
    state: &AppState,
    project: &ProjectId,
    m: &Module,
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
    let r = Arc::new(ModuleResolution {
        outcome: resolve_module_uncached(state, project, m).await,
    });
    state.native_resolutions.insert(key, r.clone()).await;
    r
}

async fn resolve_module_uncached(
    state: &AppState,
    project: &ProjectId,
    m: &Module,
) -> Result<ResolvedModule, ModuleFailure> {
    let store_err = |e: crate::store::StoreError| ModuleFailure {
        status: "fetching_failed",
        diagnostic: format!("store error: {e}"),
    };
    let mut candidates: Vec<DebugFileEntry> = Vec::new();
    let mut via = "debug-id";
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
                via = "code-id";
            }
        }
    }
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
            status: "missing",
            diagnostic: format!("no debug file with {ids} was uploaded to project {project}"),
        });
    };
    // A companion file gets the executable it belongs to, when uploaded.
    let executable = if best.object_kind == "dbg"
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
                    && c.object_kind != "dbg"
            })
            .cloned()
    } else {
        None
    };
    match file_cache(state, project, &best, executable.as_ref()).await {
        Ok(cache) => Ok(ResolvedModule {
            cache,
            embedded_sources: (best.features.sources
                && matches!(best.format, DebugFileFormat::Elf | DebugFileFormat::MachO))
            .then(|| best.sha256.clone()),
            file: best,
            features,
            source_bundles,
            via,
        }),
        Err(e @ BuildError::Unavailable(_)) => Err(ModuleFailure {
            status: "fetching_failed",
            diagnostic: format!(
                "debug file {} ({}) for {ids} could not be read: {e}",
                best.name,
                best.format.as_str()
            ),
        }),
        Err(e) => Err(ModuleFailure {
            status: "malformed",
            diagnostic: format!(
                "debug file {} ({}) for {ids} could not be processed: {e}",
                best.name,
                best.format.as_str()
            ),
        }),
    }
}

fn describe_ids(m: &Module) -> String {
    match (&m.debug_id, &m.code_id) {
        (Some(d), Some(c)) => format!("debug ID {d} or code ID {c}"),
        (Some(d), None) => format!("debug ID {d}"),
        (None, Some(c)) => format!("code ID {c}"),
        (None, None) => "no debug ID or code ID".into(),
    }
}

/// Symbolicates a native request. Never fails for per-frame problems.
pub async fn symbolicate(
    state: &AppState,
    project: &ProjectId,
    request: NativeRequest,
) -> Result<NativeResponse, ApiError> {
    let limits = &state.config.limits;
    let total: usize = request.stacktraces.iter().map(|s| s.frames.len()).sum();
    if total > limits.max_frames {
        return Err(ApiError::too_large(
            "too_many_frames",
            format!(
                "request has {total} frames, over the limit of {}",
                limits.max_frames
            ),
        ));
    }
    if request.modules.len() > limits.max_modules {
        return Err(ApiError::too_large(
            "too_many_modules",
            format!(
                "request has {} modules, over the limit of {}",
                request.modules.len(),
                limits.max_modules
            ),
        ));
    }
    let mut modules: Vec<Module> = Vec::with_capacity(request.modules.len());
    let mut module_notes: HashMap<usize, String> = HashMap::new();
    for (index, w) in request.modules.iter().enumerate() {
        let debug_id = match w.debug_id.as_deref().map(parse_debug_id) {
            Some(Ok(id)) => Some(id),
            Some(Err(e)) => {
                module_notes.insert(index, e.to_string());
                None
            }
            None => None,
        };
        let code_id = match w
            .code_id
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(parse_code_id)
        {
            Some(Ok(id)) => Some(id),
            Some(Err(e)) => {
                module_notes.insert(index, e.to_string());
                None
            }
            None => None,
        };
        // ELF modules without a debug ID: derive it from the build ID as Sentry does.
        let debug_id = debug_id.or_else(|| {
            (w.kind == "elf")
                .then(|| {
                    code_id
                        .as_ref()
                        .and_then(crate::native::debug_id_from_build_id)
                })
                .flatten()
        });
        let start = w.image_addr.0;
        let end = match w.image_size {
            Some(size) if size > 0 => start.saturating_add(size),
            _ => u64::MAX,
        };
        modules.push(Module {
            index,
            wire: w.clone(),
            start,
            end,
            debug_id,
            code_id,
            arch: w.arch.clone().unwrap_or_default(),
        });
    }
    // Lookup order by start address; a module without a size ends where the next begins.
    let mut by_addr: Vec<usize> = (0..modules.len()).collect();
    by_addr.sort_by_key(|&i| modules[i].start);
    for w in 0..by_addr.len() {
        let i = by_addr[w];
        if modules[i].end == u64::MAX {
            if let Some(&next) = by_addr.get(w + 1) {
                modules[i].end = modules[next].start;
            }
        }
    }
    let find = |addr: u64| -> Option<usize> {
        // The last module starting at or below addr that also contains it; with
        // overlapping modules, the one starting closest below wins.
        let pos = by_addr.partition_point(|&i| modules[i].start <= addr);
        by_addr[..pos]
            .iter()
            .rev()
            .find(|&&i| addr < modules[i].end)
            .copied()
    };

    let order = request
        .options
        .frame_order
        .unwrap_or(FrameOrder::CalleeFirst);
    let context = request.options.apply_source_context;
    let mut used: HashMap<usize, Arc<ModuleResolution>> = HashMap::new();
    let mut stacktraces = Vec::with_capacity(request.stacktraces.len());
    let mut counter = super::FrameCounter::new("native");

    for st in request.stacktraces {
        let n = st.frames.len();
        let mut out = Vec::with_capacity(n);
        for (i, frame) in st.frames.iter().enumerate() {
            let crashing = match order {
                FrameOrder::CalleeFirst => i == 0,
                FrameOrder::CallerFirst => i + 1 == n,
            };
            let base = NativeFrameOut {
                original_index: i,
                instruction_addr: frame.instruction_addr,
                addr_mode: frame.addr_mode.clone(),
                ..Default::default()
            };
            // Which module, and the address relative to its image.
            let located: Result<(usize, u64), String> = match frame.addr_mode.as_deref() {
                None | Some("abs") => find(frame.instruction_addr.0)
                    .map(|m| (m, frame.instruction_addr.0 - modules[m].start))
                    .ok_or_else(|| {
                        format!(
                            "no module in the request covers {:#x}",
                            frame.instruction_addr.0
                        )
                    }),
                Some(mode) => match mode
                    .strip_prefix("rel:")
                    .and_then(|n| n.parse::<usize>().ok())
                {
                    Some(m) if m < modules.len() => Ok((m, frame.instruction_addr.0)),
                    Some(m) => Err(format!(
                        "addr_mode {mode:?} names module {m}, but the request has {}",
                        modules.len()
                    )),
                    None => Err(format!(
                        "addr_mode {mode:?} is neither \"abs\" nor \"rel:N\""
                    )),
                },
            };
            let (mi, rel) = match located {
                Ok(x) => x,
                Err(d) => {
                    counter.add("unknown_image");
                    out.push(NativeFrameOut {
                        status: "unknown_image",
                        function: frame.function.clone(),
                        diagnostic: Some(d),
                        ..base
                    });
                    continue;
                }
            };
            let module = &modules[mi];
            let adjust = frame.adjust_instruction_addr.unwrap_or(!crashing);
            let lookup_addr = if adjust {
                crate::native::caller_address(rel, &module.arch)
            } else {
                rel
            };
            let resolution = match used.get(&mi) {
                Some(r) => r.clone(),
                None => {
                    let r = resolve_module(state, project, module).await;
                    used.insert(mi, r.clone());
                    r
                }
            };
            let package = module.wire.code_file.clone();
            let resolved = match &resolution.outcome {
                Ok(r) => r,
                Err(f) => {
                    counter.add(f.status_for_frame());
                    out.push(NativeFrameOut {
                        status: f.status_for_frame(),
                        package,
                        function: frame.function.clone(),
                        diagnostic: Some(f.diagnostic.clone()),
                        ..base
                    });
                    continue;
                }
            };
            let frames = match crate::native::NativeCache::parse(&resolved.cache) {
                Ok(c) => c.lookup(lookup_addr),
                Err(e) => {
                    out.push(NativeFrameOut {
                        status: "malformed",
                        package,
                        diagnostic: Some(format!("cache unreadable: {e}")),
                        ..base
                    });
                    continue;
                }
            };
            if frames.is_empty() {
                counter.add("missing_symbol");
                out.push(NativeFrameOut {
                    status: "missing_symbol",
                    package,
                    function: frame.function.clone(),
                    diagnostic: Some(format!(
                        "debug file {} ({}) found, but no function covers offset {:#x} (image {:#x} + {:#x}{})",
                        resolved.file.name,
                        resolved.file.format.as_str(),
                        lookup_addr,
                        module.start,
                        rel,
                        if adjust { ", adjusted to the call instruction" } else { "" }
                    )),
                    ..base
                });
                continue;
            }
            counter.add("symbolicated");
            for f in frames {
                let mut o = NativeFrameOut {
                    status: "symbolicated",
                    function: Some(f.function),
                    symbol: f.symbol,
                    sym_addr: Some(Addr(module.start.wrapping_add(f.sym_addr))),
                    filename: f.filename,
                    abs_path: f.abs_path,
                    lineno: f.lineno,
                    lang: f.lang,
                    package: package.clone(),
                    ..base.clone()
                };
                if context
                    && (!resolved.source_bundles.is_empty() || resolved.embedded_sources.is_some())
                {
                    if let (Some(path), Some(line)) = (o.abs_path.clone(), o.lineno) {
                        source_context(state, resolved, &path, line, &mut o).await;
                    }
                }
                out.push(o);
            }
        }
        stacktraces.push(NativeStacktraceOut {
            thread_id: st.thread_id,
            is_requesting: st.is_requesting,
            frames: out,
        });
    }

    let modules_out = modules
        .into_iter()
        .map(|m| {
            let (status, features, diagnostic) = match used.get(&m.index) {
                None => (
                    "unused",
                    ModuleFeatures::default(),
                    module_notes.remove(&m.index),
                ),
                Some(r) => match &r.outcome {
                    Ok(r) => (
                        "found",
                        r.features,
                        (r.via == "code-id").then(|| {
                            format!(
                                "found by code ID; debug ID {} did not match",
                                m.debug_id.map(|d| d.to_string()).unwrap_or_default()
                            )
                        }),
                    ),
                    Err(f) => (
                        f.status,
                        ModuleFeatures::default(),
                        Some(f.diagnostic.clone()),
                    ),
                },
            };
            NativeModuleOut {
                debug_status: status,
                features,
                module: m.wire,
                diagnostic,
            }
        })
        .collect();
    Ok(NativeResponse {
        status: "completed",
        stacktraces,
        modules: modules_out,
    })
}

impl ModuleFailure {
    fn status_for_frame(&self) -> &'static str {
        match self.status {
            "malformed" => "malformed",
            _ => "missing",
        }
    }
}

async fn source_context(
    state: &AppState,
    resolved: &ResolvedModule,
    path: &str,
    line: u32,
    out: &mut NativeFrameOut,
) {
    let mut text = None;
    for bundle in &resolved.source_bundles {
        text = state.caches.bundle_source(bundle, path).await;
        if text.is_some() {
            break;
        }
    }
    if text.is_none() {
        if let Some(sha) = &resolved.embedded_sources {
            text = state.caches.embedded_source(sha, path).await;
        }
    }
    if let Some(ctx) = text.and_then(|t| t.context(line, 0)) {
        out.pre_context = Some(ctx.pre_context);
        out.context_line = Some(ctx.context_line);
        out.post_context = Some(ctx.post_context);
    }
}

/// After an upload: resolve each uploaded debug ID as a request would, which builds the
/// SymCache the next request needs (with the same key: companions, split units and all).
pub async fn prewarm(state: &AppState, manifest: &UploadManifest) {
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
        let _ = resolve_module(state, &manifest.project, &module).await;
    }
}
