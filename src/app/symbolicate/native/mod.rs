//! Native frames: address → module (by image range) → debug file (by debug ID, else code ID)
//! → SymCache lookup, with caller adjustment and inline expansion.

mod external;
mod minidump;
mod resolve;
mod unwind;

use std::collections::HashMap;
use std::sync::Arc;

pub use minidump::symbolicate_minidump;
pub(crate) use resolve::split_units;
pub use resolve::{prewarm, ModuleResolution};
use resolve::{resolve_module, FoundBy, Module, ResolvedModule};

use super::ContextLines;
use crate::app::App;
use crate::error::{ApiError, ErrorCode};
use crate::types::{parse_code_id, parse_debug_id, ProjectId};
use crate::wire::{
    Addr, FrameOrder, FrameStatus, ModuleFeatures, ModuleStatus, NativeFrameOut, NativeModule,
    NativeModuleOut, NativeRequest, NativeResponse, NativeStacktraceOut, RequestStatus,
};

/// Symbolicates a native request. Never fails for per-frame problems.
pub async fn symbolicate(
    state: &App,
    project: &ProjectId,
    request: NativeRequest,
) -> Result<NativeResponse, ApiError> {
    let limits = &state.config.limits;
    let total: usize = request.stacktraces.iter().map(|s| s.frames.len()).sum();
    if total > limits.max_frames {
        return Err(ApiError::new(
            ErrorCode::TooManyFrames,
            format!(
                "request has {total} frames, over the limit of {}",
                limits.max_frames
            ),
        ));
    }
    if request.modules.len() > limits.max_modules {
        return Err(ApiError::new(
            ErrorCode::TooManyModules,
            format!(
                "request has {} modules, over the limit of {}",
                request.modules.len(),
                limits.max_modules
            ),
        ));
    }
    // One wait for symbol sources for the whole request, however many modules need them.
    let deadline = std::time::Instant::now() + state.sources.fetching.request_wait;
    let (modules, mut module_notes) = parse_modules(&request.modules);
    let mut by_addr: Vec<usize> = (0..modules.len()).collect();
    by_addr.sort_by_key(|&i| modules[i].start);
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
    let context = ContextLines::from_option(request.options.apply_source_context);
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
                    counter.add(FrameStatus::UnknownImage.as_str());
                    out.push(NativeFrameOut {
                        status: FrameStatus::UnknownImage,
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
                    let r = resolve_module(state, project, module, deadline).await;
                    used.insert(mi, r.clone());
                    r
                }
            };
            let package = module.wire.code_file.clone();
            let resolved = match &resolution.outcome {
                Ok(r) => r,
                Err(f) => {
                    counter.add(f.frame_status().as_str());
                    out.push(NativeFrameOut {
                        status: f.frame_status(),
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
                        status: FrameStatus::Malformed,
                        package,
                        diagnostic: Some(format!("cache unreadable: {e}")),
                        ..base
                    });
                    continue;
                }
            };
            if frames.is_empty() {
                counter.add(FrameStatus::MissingSymbol.as_str());
                out.push(NativeFrameOut {
                    status: FrameStatus::MissingSymbol,
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
            counter.add(FrameStatus::Symbolicated.as_str());
            for f in frames {
                let mut o = NativeFrameOut {
                    status: FrameStatus::Symbolicated,
                    function: Some(f.function),
                    symbol: f.symbol,
                    sym_addr: Some(Addr(module.start.wrapping_add(f.sym_addr))),
                    filename: f.filename,
                    abs_path: f.abs_path,
                    lineno: f.lineno,
                    lang: f.lang,
                    package: package.clone(),
                    diagnostic: (!resolved.missing_dwo.is_empty())
                        .then(|| split_dwarf_note(&resolved.missing_dwo)),
                    ..base.clone()
                };
                if context == ContextLines::Apply
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
                    ModuleStatus::Unused,
                    ModuleFeatures::default(),
                    module_notes.remove(&m.index),
                ),
                Some(r) => match &r.outcome {
                    Ok(r) if !r.missing_dwo.is_empty() => (
                        ModuleStatus::SplitDwarfMissing,
                        r.features,
                        Some(split_dwarf_note(&r.missing_dwo)),
                    ),
                    Ok(r) => (
                        ModuleStatus::Found,
                        r.features,
                        match r.found_by {
                            FoundBy::CodeId => Some(format!(
                                "found by code ID; debug ID {} did not match",
                                m.debug_id.map(|d| d.to_string()).unwrap_or_default()
                            )),
                            FoundBy::Source => Some(format!(
                                "not uploaded; found on a symbol source: {}",
                                r.file.name
                            )),
                            FoundBy::DebugId => None,
                        },
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
                candidates: used
                    .get(&m.index)
                    .map(|r| r.candidates.clone())
                    .unwrap_or_default(),
                unwind_status: None,
                unwind_diagnostic: None,
            }
        })
        .collect();
    Ok(NativeResponse {
        status: RequestStatus::Completed,
        stacktraces,
        modules: modules_out,
    })
}

/// The request's modules with their IDs parsed and their image ranges (a module without a
/// size ends where the next begins), and a note for each module whose IDs did not parse.
fn parse_modules(wire: &[NativeModule]) -> (Vec<Module>, HashMap<usize, String>) {
    let mut modules: Vec<Module> = Vec::with_capacity(wire.len());
    let mut module_notes: HashMap<usize, String> = HashMap::new();
    for (index, w) in wire.iter().enumerate() {
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
    (modules, module_notes)
}

async fn source_context(
    state: &App,
    resolved: &ResolvedModule,
    path: &str,
    line: u32,
    out: &mut NativeFrameOut,
) {
    let mut text = None;
    for bundle in &resolved.source_bundles {
        text = super::sources::bundle_source(state, bundle, path).await;
        if text.is_some() {
            break;
        }
    }
    if text.is_none() {
        if let Some(sha) = &resolved.embedded_sources {
            text = super::sources::embedded_source(state, sha, path).await;
        }
    }
    if let Some(ctx) = text.and_then(|t| t.context(line, 0)) {
        out.pre_context = Some(ctx.pre_context);
        out.context_line = Some(ctx.context_line);
        out.post_context = Some(ctx.post_context);
    }
}

/// What a missing split DWARF unit means for a module's answers.
fn split_dwarf_note(missing: &[String]) -> String {
    format!(
        "the split DWARF of this module (DWO IDs {}) was not uploaded: upload its .dwo or .dwp \
         files; until then frames in those units have no inlined calls and their lines may \
         be an inlined callee's",
        missing.join(", ")
    )
}
