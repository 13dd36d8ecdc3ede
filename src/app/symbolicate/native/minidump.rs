//! Minidumps: read the dump's modules, find each module's unwind information (CFI) and
//! symbols, walk every thread off the async threads, then symbolicate the walked frames the
//! way `symbolicate/native` does (same module resolution, inline expansion, source context),
//! and add what the dump says (exception, system, annotations) and how each frame was found.
//!
//! Nothing here fails for a module: a module nobody uploaded is walked by frame pointers and
//! stack scanning, and its frames say why.

use std::collections::HashMap;
use std::sync::Arc;

use super::resolve::{resolve_module, Module};
use super::unwind::{resolve_unwind, UnwindResolution};
use super::{parse_modules, symbolicate, ModuleResolution};
use crate::app::App;
use crate::error::{ApiError, ErrorCode};
use crate::native::{DumpHeader, ModuleData, Trust, Walked};
use crate::types::ProjectId;
use crate::wire::{
    Addr, FrameOrder, MinidumpResponse, MinidumpThreadOut, NativeFrameIn, NativeModule,
    NativeRequest, NativeStacktrace, Options, RequestStatus, SystemInfoOut,
};

/// Modules resolved at once while a dump is prepared.
const RESOLVE_CONCURRENCY: usize = 8;

/// Walks and symbolicates a minidump received into `dump` (a local temp file, deleted when
/// this returns). Fails only for a dump that cannot be read and for the request limits.
pub async fn symbolicate_minidump(
    state: &App,
    project: &ProjectId,
    dump: tempfile::TempPath,
    options: Options,
) -> Result<MinidumpResponse, ApiError> {
    let limits = &state.config.limits;
    // One wait for symbol sources for the whole dump, however many modules it has.
    let deadline = std::time::Instant::now() + state.sources.fetching.request_wait;
    let dump = Arc::new(dump);
    let header: DumpHeader = {
        let dump = dump.clone();
        walk_blocking(state, move || {
            let map = crate::ingest::Mapped::open(&dump).map_err(unreadable)?;
            crate::native::read_modules(&map).map_err(invalid)
        })
        .await?
    };
    if header.modules.len() > limits.max_modules {
        return Err(ApiError::new(
            ErrorCode::TooManyModules,
            format!(
                "the minidump lists {} modules, over the limit of {} (limits.max_modules)",
                header.modules.len(),
                limits.max_modules
            ),
        ));
    }
    let wire: Vec<NativeModule> = header
        .modules
        .iter()
        .map(|m| NativeModule {
            kind: header.kind.to_owned(),
            code_id: m.code_id.clone(),
            debug_id: m.debug_id.clone(),
            code_file: Some(m.code_file.clone()),
            debug_file: m.debug_file.clone(),
            image_addr: Addr(m.base),
            image_size: Some(m.size),
            image_vmaddr: None,
            arch: Some(header.arch.clone()),
        })
        .collect();
    let (modules, _) = parse_modules(&wire);

    // Every module's symbols and CFI, before walking: the walker asks for them synchronously.
    let mut resolved: Vec<(Arc<ModuleResolution>, UnwindResolution)> =
        Vec::with_capacity(modules.len());
    for chunk in modules.chunks(RESOLVE_CONCURRENCY) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|m| resolve_both(state, project, m, deadline))
            .collect();
        resolved.extend(futures::future::join_all(batch).await);
    }
    let mut data: HashMap<u64, ModuleData> = HashMap::new();
    for (m, (symbols, unwind)) in modules.iter().zip(&resolved) {
        let symbols = symbols.outcome.as_ref().ok().map(|r| {
            let bytes: Arc<dyn std::ops::Deref<Target = [u8]> + Send + Sync> = r.cache.clone();
            bytes
        });
        data.insert(
            m.start,
            ModuleData {
                cfi: unwind.cfi(),
                symbols,
            },
        );
    }
    let walked: Walked = {
        let dump = dump.clone();
        walk_blocking(state, move || {
            let map = crate::ingest::Mapped::open(&dump).map_err(unreadable)?;
            crate::native::walk(&map, &data).map_err(invalid)
        })
        .await?
    };

    // The walked frames, symbolicated like any native request (callers adjusted to their call
    // instruction), within the frame limit.
    let mut budget = limits.max_frames;
    let mut cut: Vec<Option<String>> = Vec::with_capacity(walked.threads.len());
    let stacktraces = walked
        .threads
        .iter()
        .map(|t| {
            let take = t.frames.len().min(budget);
            budget -= take;
            cut.push((take < t.frames.len()).then(|| {
                format!(
                    "only the first {take} of {} frames were symbolicated (limits.max_frames \
                     for the whole dump)",
                    t.frames.len()
                )
            }));
            NativeStacktrace {
                thread_id: Some(u64::from(t.thread_id)),
                is_requesting: None,
                frames: t.frames[..take]
                    .iter()
                    .enumerate()
                    .map(|(i, f)| NativeFrameIn {
                        instruction_addr: Addr(f.address),
                        addr_mode: None,
                        adjust_instruction_addr: Some(i > 0 && f.trust != Trust::Context),
                        function: None,
                    })
                    .collect(),
            }
        })
        .collect();
    let request = NativeRequest {
        platform: None,
        modules: wire,
        stacktraces,
        options: Options {
            apply_source_context: options.apply_source_context,
            frame_order: Some(FrameOrder::CalleeFirst),
        },
    };
    let symbolicated = symbolicate(state, project, request).await?;

    let threads = symbolicated
        .stacktraces
        .into_iter()
        .zip(walked.threads.iter().zip(cut))
        .enumerate()
        .map(|(ti, (mut st, (t, cut)))| {
            for f in &mut st.frames {
                let Some(walked) = t.frames.get(f.original_index) else {
                    continue;
                };
                f.trust = Some(walked.trust.as_str());
                if walked.trust.is_scan() || walked.trust == Trust::FramePointer {
                    let why = why_not_cfi(t, f.original_index, &header, &resolved);
                    f.diagnostic = Some(match f.diagnostic.take() {
                        Some(d) => format!("{why}; {d}"),
                        None => why,
                    });
                }
            }
            MinidumpThreadOut {
                thread_id: t.thread_id,
                thread_name: t.name.clone(),
                is_requesting: walked.requesting_thread == Some(ti),
                frames: st.frames,
                diagnostic: cut.or_else(|| t.problem.clone()).or_else(|| {
                    walked.budget_exhausted.then(|| {
                        format!(
                            "the dump used up the walk's budget of {} symbol lookups \
                             (an implausibly deep or hostile stack): threads walked after \
                             that end early",
                            crate::native::WALK_BUDGET
                        )
                    })
                }),
            }
        })
        .collect();
    let mut modules_out = symbolicated.modules;
    for (out, (_, unwind)) in modules_out.iter_mut().zip(&resolved) {
        let (status, diagnostic) = unwind.status();
        out.unwind_status = Some(status);
        out.unwind_diagnostic = diagnostic;
    }
    Ok(MinidumpResponse {
        status: RequestStatus::Completed,
        crashed: walked.crashed,
        crash_reason: walked.crash_reason,
        crash_address: walked.crash_address.map(Addr),
        assertion: walked.assertion,
        system_info: SystemInfoOut {
            os_name: walked.os_name,
            os_version: walked.os_version,
            cpu_arch: walked.cpu_arch,
            cpu_info: walked.cpu_info,
            cpu_count: walked.cpu_count,
        },
        annotations: walked.annotations,
        stacktraces: threads,
        modules: modules_out,
    })
}

async fn resolve_both(
    state: &App,
    project: &ProjectId,
    m: &Module,
    deadline: std::time::Instant,
) -> (Arc<ModuleResolution>, UnwindResolution) {
    (
        resolve_module(state, project, m, deadline).await,
        resolve_unwind(state, project, m, deadline).await,
    )
}

/// Why frame `index` of a thread was not found with CFI: what the frame below it (its
/// callee, whose unwind rules would have found it) had.
fn why_not_cfi(
    thread: &crate::native::WalkedThread,
    index: usize,
    header: &DumpHeader,
    resolved: &[(Arc<ModuleResolution>, UnwindResolution)],
) -> String {
    let how = match thread.frames.get(index).map(|f| f.trust) {
        Some(Trust::FramePointer) => "found by following the frame pointer",
        _ => "found by scanning the stack (a guess)",
    };
    let callee = index.checked_sub(1).and_then(|i| thread.frames.get(i));
    match callee.map(|c| c.module) {
        Some(Some(m)) => {
            let name = header
                .modules
                .get(m)
                .map(|m| m.code_file.as_str())
                .unwrap_or("?");
            match resolved.get(m).map(|(_, u)| u.status()) {
                Some((crate::wire::ModuleStatus::Found, _)) => format!(
                    "{how}: the CFI of {name} has no rule for the callee's address {:#x}, \
                     or its rule gave no valid caller",
                    callee.map(|c| c.address).unwrap_or_default()
                ),
                Some((status, _)) => format!(
                    "{how}: no CFI for the callee's module {name} (unwind_status {}; its \
                     entry in `modules` says what was looked up)",
                    status.as_str(),
                ),
                None => format!("{how}: no CFI for the callee's module {name}"),
            }
        }
        Some(None) => format!("{how}: the callee's address is in no module of the dump"),
        None => how.to_owned(),
    }
}

fn unreadable(e: std::io::Error) -> ApiError {
    ApiError::new(
        ErrorCode::Internal,
        format!("the received minidump could not be read back: {e}"),
    )
}

fn invalid(e: crate::native::MinidumpError) -> ApiError {
    ApiError::new(ErrorCode::MinidumpInvalid, e.to_string())
}

/// Runs CPU work on the blocking pool, at most `cache.build_workers` at once. The permit
/// goes with the work: a request that times out does not free it while its walk still runs.
async fn walk_blocking<T, F>(state: &App, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    let permit = state
        .walkers
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(|e| ApiError::new(ErrorCode::Internal, format!("stack walk failed: {e}")))?
}
