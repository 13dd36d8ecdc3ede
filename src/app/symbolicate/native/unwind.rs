//! Which uploaded file unwinds a module's frames, and its CFI cache.
//!
//! A module's unwind information need not come from the file that symbolicates it: a
//! stripped executable keeps `.eh_frame` (what the runtime itself unwinds with), while its
//! separate `.debug` file has the DWARF but only an empty copy of `.eh_frame`. So the files
//! uploaded for the module are ranked for unwinding on their own: executables first (their
//! `.eh_frame`/compact unwind/`.pdata` is exact), then other files carrying unwind
//! information (`.debug_frame` in a debug file, a PDB's frame data, Breakpad `STACK`
//! records). The CFI cache is built once per file (content-addressed key), kept in the
//! derived-cache tier on disk and, parsed, in memory.

use std::sync::Arc;
use std::time::Instant;

use super::resolve::{candidates, describe_ids, fetch_blob, Module, ModuleFailure};
use crate::app::App;
use crate::caches::BuildError;
use crate::kinds::{DebugFileFormat, ObjectKind};
use crate::native::CfiFile;
use crate::store::DebugFileEntry;
use crate::types::ProjectId;
use crate::wire::ModuleStatus;

/// The CFI found for a module, or why none was.
pub struct UnwindResolution {
    /// The CFI and which file it came from (`name (format, kind)`).
    pub(super) outcome: Result<(Arc<CfiFile>, String), ModuleFailure>,
}

impl UnwindResolution {
    /// `unwind_status` and its diagnostic for the module list.
    pub fn status(&self) -> (ModuleStatus, Option<String>) {
        match &self.outcome {
            Ok((cfi, from)) => (
                ModuleStatus::Found,
                Some(format!(
                    "unwind information from {from}: {} functions",
                    cfi.ranges()
                )),
            ),
            Err(f) => (f.status, Some(f.diagnostic.clone())),
        }
    }

    pub fn cfi(&self) -> Option<Arc<CfiFile>> {
        self.outcome.as_ref().ok().map(|(c, _)| c.clone())
    }
}

/// How good a file is for unwinding (0: useless).
fn unwind_rank(d: &DebugFileEntry) -> u8 {
    if !d.features.unwind {
        return 0;
    }
    match d.format {
        DebugFileFormat::SourceBundle | DebugFileFormat::SplitDwarf => 0,
        DebugFileFormat::Elf | DebugFileFormat::MachO | DebugFileFormat::Pe
            if d.object_kind != ObjectKind::Debug =>
        {
            3
        }
        DebugFileFormat::Breakpad | DebugFileFormat::Pdb => 2,
        _ => 1,
    }
}

pub(super) async fn resolve_unwind(
    state: &App,
    project: &ProjectId,
    m: &Module,
    deadline: Instant,
) -> UnwindResolution {
    UnwindResolution {
        outcome: resolve(state, project, m, deadline).await,
    }
}

async fn resolve(
    state: &App,
    project: &ProjectId,
    m: &Module,
    deadline: Instant,
) -> Result<(Arc<CfiFile>, String), ModuleFailure> {
    match from_uploads(state, project, m).await {
        Err(f) if f.status == ModuleStatus::Missing => {
            let (found, said) = super::external::find(state, project, m, deadline).await;
            match found {
                Some(ext) => {
                    let cfi = parsed(state, ext.cfi_key(), Arc::new(ext.cfi()))
                        .await
                        .map_err(|e| ModuleFailure {
                            status: ModuleStatus::Malformed,
                            diagnostic: format!("CFI from source {}: {e}", ext.source()),
                        })?;
                    if cfi.ranges() == 0 {
                        return Err(ModuleFailure {
                            status: ModuleStatus::Missing,
                            diagnostic: format!(
                                "{}; source {} had the module but no unwind rules in {}",
                                f.diagnostic,
                                ext.source(),
                                ext.unwind_from()
                            ),
                        });
                    }
                    Ok((
                        cfi,
                        format!("{} (source {})", ext.unwind_from(), ext.source()),
                    ))
                }
                None if said.is_empty() => Err(f),
                None => Err(ModuleFailure {
                    status: f.status,
                    diagnostic: format!(
                        "{}; symbol sources: {}",
                        f.diagnostic,
                        super::external::summary(&said)
                    ),
                }),
            }
        }
        other => other,
    }
}

fn describe(file: &DebugFileEntry) -> String {
    format!(
        "{} ({}, {})",
        file.name,
        file.format.as_str(),
        if file.object_kind == ObjectKind::Debug {
            "debug companion"
        } else {
            "executable"
        }
    )
}

async fn from_uploads(
    state: &App,
    project: &ProjectId,
    m: &Module,
) -> Result<(Arc<CfiFile>, String), ModuleFailure> {
    let (mut files, _) = candidates(state, project, m).await?;
    let ids = describe_ids(m);
    if files.is_empty() {
        return Err(ModuleFailure {
            status: ModuleStatus::Missing,
            diagnostic: format!("no file with {ids} was uploaded to project {project}"),
        });
    }
    // Best first; ties: newest first (the list is newest first; the sort is stable).
    files.sort_by_key(|f| std::cmp::Reverse(unwind_rank(f)));
    if !files.iter().any(|f| unwind_rank(f) > 0) {
        let names: Vec<String> = files
            .iter()
            .map(|f| format!("{} ({})", f.name, f.format.as_str()))
            .collect();
        return Err(ModuleFailure {
            status: ModuleStatus::Missing,
            diagnostic: format!(
                "none of the files uploaded for {ids} carries unwind information: {}; upload \
                 the executable (its .eh_frame is kept by strip) or a Breakpad file with STACK \
                 records",
                names.join(", ")
            ),
        });
    }
    // A file can claim unwind information and hold none (a `.debug` file's `.eh_frame` is
    // an empty copy): try the next one, and say which were tried.
    let mut tried = Vec::new();
    for file in files.iter().filter(|f| unwind_rank(f) > 0) {
        let cfi = cfi_of(state, file, &ids).await?;
        if cfi.ranges() > 0 {
            return Ok((cfi, describe(file)));
        }
        tried.push(format!("{} ({})", file.name, file.format.as_str()));
    }
    Err(ModuleFailure {
        status: ModuleStatus::Missing,
        diagnostic: format!(
            "the files uploaded for {ids} that claim unwind information have no unwind rules: \
             {}; upload the executable (its .eh_frame is kept by strip)",
            tried.join(", ")
        ),
    })
}

/// The parsed CFI cache of one file, built on first use.
async fn cfi_of(
    state: &App,
    best: &DebugFileEntry,
    ids: &str,
) -> Result<Arc<CfiFile>, ModuleFailure> {
    let key = format!(
        "cfi/v{}/{}-{}",
        crate::native::CFI_FORMAT_VERSION,
        best.sha256,
        best.object_index
    );
    let store = state.store.clone();
    let tmp = state.config.tmp_dir();
    let (sha, object_index) = (best.sha256.clone(), best.object_index);
    let built = state
        .caches
        .get_or_build(key.clone(), || async move {
            let path = fetch_blob(store, tmp, sha).await?;
            tokio::task::spawn_blocking(move || {
                let map = crate::ingest::Mapped::open(&path).map_err(BuildError::unavailable)?;
                crate::native::build_cfi(&map, object_index).map_err(BuildError::invalid)
            })
            .await
            .map_err(BuildError::unavailable)?
        })
        .await;
    let bytes = match built {
        Ok(bytes) => bytes,
        Err(e) => {
            let status = match e {
                BuildError::Unavailable(_) => ModuleStatus::FetchingFailed,
                _ => ModuleStatus::Malformed,
            };
            return Err(ModuleFailure {
                status,
                diagnostic: format!(
                    "unwind information of {} ({}) for {ids} could not be read: {e}",
                    best.name,
                    best.format.as_str()
                ),
            });
        }
    };
    parsed(state, format!("{key}/parsed"), bytes)
        .await
        .map_err(|e| ModuleFailure {
            status: ModuleStatus::Malformed,
            diagnostic: format!("CFI cache of {} unreadable: {e}", best.name),
        })
}

/// A CFI cache parsed once and kept in memory by `key`. The parse is deterministic in the
/// bytes, so its result (even a failure) is kept.
async fn parsed(
    state: &App,
    key: String,
    bytes: Arc<dyn std::ops::Deref<Target = [u8]> + Send + Sync>,
) -> Result<Arc<CfiFile>, String> {
    let parsed = state
        .caches
        .derived(key, async move {
            let weight = bytes.len() * 3;
            let parsed = tokio::task::spawn_blocking(move || CfiFile::parse(&bytes))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            Some((parsed.map(Arc::new), weight))
        })
        .await;
    match parsed.as_deref() {
        Some(Ok(cfi)) => Ok(cfi.clone()),
        Some(Err(e)) => Err(e.clone()),
        None => Err("could not be loaded".into()),
    }
}
