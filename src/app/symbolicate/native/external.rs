//! Modules nobody uploaded, served from the configured symbol sources (`crate::sources`).
//!
//! Per source, in order: a remembered miss is answered from memory; otherwise one cache
//! build (`caches::get_or_build`, keyed by source and module, so concurrent requests share
//! one download) fetches what the source has (debug file or Breakpad file, and the
//! executable), validates it, and turns it into one derived cache holding the SymCache, the
//! CFI and the record of what was tried. The build runs detached: a request waits at most
//! `fetching.request_wait`, then answers without it; the download finishes for the next one.

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::resolve::Module;
use crate::app::App;
use crate::caches::{BuildError, CacheBytes};
use crate::sources::{FileKind, ObjFormat, Query, Source};
use crate::types::ProjectId;
use crate::wire::{DownloadStatus, SourceCandidate};

/// Version of the container below; bump when its layout or what goes in it changes.
const FORMAT: u32 = 1;
const MAGIC: &[u8; 8] = b"TMSRC\0\0\x01";

/// What a source had for a module, as kept in the derived cache.
pub(super) struct External {
    /// The derived cache's key.
    key: String,
    bytes: Arc<CacheBytes>,
    meta: Meta,
    symcache: std::ops::Range<usize>,
    cfi: std::ops::Range<usize>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    source: String,
    /// Where the file the SymCache was built from came from.
    symbols_from: String,
    /// Where the CFI came from (the executable when the source had it).
    unwind_from: String,
    attempts: Vec<SourceCandidate>,
}

/// A slice of a cache file (the SymCache or CFI part of a source's container).
pub(super) struct Slice {
    bytes: Arc<CacheBytes>,
    range: std::ops::Range<usize>,
}

impl std::ops::Deref for Slice {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes.get(self.range.clone()).unwrap_or_default()
    }
}

impl External {
    pub(super) fn source(&self) -> &str {
        &self.meta.source
    }
    pub(super) fn symbols_from(&self) -> &str {
        &self.meta.symbols_from
    }
    pub(super) fn unwind_from(&self) -> &str {
        &self.meta.unwind_from
    }
    /// A key for the parsed CFI of this answer.
    pub(super) fn cfi_key(&self) -> String {
        format!("{}/cfi-parsed", self.key)
    }
    pub(super) fn attempts(&self) -> &[SourceCandidate] {
        &self.meta.attempts
    }
    pub(super) fn symcache(&self) -> Slice {
        Slice {
            bytes: self.bytes.clone(),
            range: self.symcache.clone(),
        }
    }
    pub(super) fn cfi(&self) -> Slice {
        Slice {
            bytes: self.bytes.clone(),
            range: self.cfi.clone(),
        }
    }

    fn parse(key: String, bytes: Arc<CacheBytes>) -> Option<External> {
        let b: &[u8] = &bytes;
        let rest = b.strip_prefix(MAGIC)?;
        let u64_at = |s: &[u8], at: usize| -> Option<usize> {
            let raw: [u8; 8] = s.get(at..at + 8)?.try_into().ok()?;
            usize::try_from(u64::from_le_bytes(raw)).ok()
        };
        let meta_len = u64_at(rest, 0)?;
        let meta: Meta = serde_json::from_slice(rest.get(8..8 + meta_len)?).ok()?;
        let mut at = (MAGIC.len() + 8 + meta_len).next_multiple_of(8);
        let sym_len = u64_at(b, at)?;
        let symcache = at + 8..at + 8 + sym_len;
        at = symcache.end.next_multiple_of(8);
        let cfi_len = u64_at(b, at)?;
        let cfi = at + 8..at + 8 + cfi_len;
        (cfi.end <= b.len()).then_some(External {
            key,
            bytes,
            meta,
            symcache,
            cfi,
        })
    }
}

/// Magic, then each part as `u64 length, bytes`, each part starting 8-byte aligned (the
/// SymCache must be): the JSON is padded with spaces, the SymCache with zeros.
fn encode(meta: &Meta, symcache: &[u8], cfi: &[u8]) -> Vec<u8> {
    let mut meta = serde_json::to_vec(meta).unwrap_or_default();
    meta.resize(meta.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(MAGIC.len() + 32 + meta.len() + symcache.len() + cfi.len());
    out.extend_from_slice(MAGIC);
    for part in [&meta[..], symcache, cfi] {
        out.extend_from_slice(&(part.len() as u64).to_le_bytes());
        out.extend_from_slice(part);
        out.resize(out.len().next_multiple_of(8), 0);
    }
    out
}

/// The query a module makes of the sources.
pub(super) fn query(m: &Module) -> Query {
    Query {
        format: ObjFormat::from_module_type(&m.wire.kind),
        debug_id: m.debug_id,
        code_id: m.code_id.clone(),
        code_file: m.wire.code_file.clone(),
        debug_file: m.wire.debug_file.clone(),
    }
}

/// The first source that has the module, with what every source before it said; or what
/// they all said. Downloads still running at `deadline` (one per request, shared by its
/// modules) are answered `pending` and go on in the background.
pub(super) async fn find(
    state: &App,
    project: &ProjectId,
    m: &Module,
    deadline: Instant,
) -> (Option<Arc<External>>, Vec<SourceCandidate>) {
    let q = query(m);
    let mut said = Vec::new();
    if q.debug_id.is_none() && q.code_id.is_none() {
        return (None, said);
    }
    for source in state.sources.for_project(project) {
        if !source.asks(&q) {
            continue;
        }
        if let Some(miss) = state.sources.remembered(&source, &q).await {
            said.extend(miss.attempts.iter().cloned().map(|mut a| {
                a.details = Some(match a.details {
                    Some(d) => format!("{d} (remembered)"),
                    None => "remembered".into(),
                });
                a
            }));
            continue;
        }
        match from_source(state, source.clone(), &q, deadline).await {
            Ok(found) => {
                said.extend(found.attempts().iter().cloned());
                return (Some(found), said);
            }
            Err(attempts) => said.extend(attempts),
        }
    }
    (None, said)
}

async fn from_source(
    state: &App,
    source: Arc<Source>,
    q: &Query,
    deadline: Instant,
) -> Result<Arc<External>, Vec<SourceCandidate>> {
    let key = format!(
        "source/v{FORMAT}-{}-{}/{}/{}",
        crate::native::FORMAT_VERSION,
        crate::native::CFI_FORMAT_VERSION,
        source.id,
        q.key()
    );
    // The warm path: the answer is in memory, nothing to wait for.
    if let Some(bytes) = state.caches.in_memory(&key).await {
        if let Some(found) = External::parse(key.clone(), bytes) {
            return Ok(Arc::new(found));
        }
    }
    let wait = state.sources.fetching.request_wait;
    let left = deadline.saturating_duration_since(Instant::now());
    let task = {
        let key = key.clone();
        let state = state.clone();
        let source = source.clone();
        let q = q.clone();
        tokio::spawn(async move {
            let failed: Arc<parking_lot::Mutex<Vec<SourceCandidate>>> = Arc::default();
            let record = failed.clone();
            let built = state
                .caches
                .get_or_build(key, || {
                    build(state.clone(), source.clone(), q.clone(), record)
                })
                .await;
            let attempts = std::mem::take(&mut *failed.lock());
            (built, attempts)
        })
    };
    let pending = |details: String| {
        vec![SourceCandidate {
            source: source.id.clone(),
            location: "(all locations)".into(),
            status: DownloadStatus::Pending,
            details: Some(details),
        }]
    };
    match tokio::time::timeout(left, task).await {
        Err(_) => Err(pending(format!(
            "still downloading after {wait:?} (fetching.request_wait); the download goes on \
             and the next request may have it"
        ))),
        Ok(Err(e)) => Err(pending(format!("the download task failed: {e}"))),
        Ok(Ok((Ok(bytes), _))) => External::parse(key, bytes).map(Arc::new).ok_or_else(|| {
            vec![SourceCandidate {
                source: source.id.clone(),
                location: "(cache)".into(),
                status: DownloadStatus::Error,
                details: Some("the cached answer of this source is unreadable".into()),
            }]
        }),
        Ok(Ok((Err(e), attempts))) if attempts.is_empty() => Err(vec![SourceCandidate {
            source: source.id.clone(),
            location: "(all locations)".into(),
            status: DownloadStatus::Error,
            details: Some(e.to_string()),
        }]),
        Ok(Ok((Err(_), attempts))) => Err(attempts),
    }
}

/// Fetches what `source` has and builds the container; on a miss, remembers it and says
/// what was tried through `record`. Failures are `Unavailable` so the cache tier does not
/// keep them: how long a miss is remembered is the sources' business.
async fn build(
    state: App,
    source: Arc<Source>,
    q: Query,
    record: Arc<parking_lot::Mutex<Vec<SourceCandidate>>>,
) -> Result<Vec<u8>, BuildError> {
    let tmp = state.config.tmp_dir();
    let mut fetched = state.sources.fetch(&source, &q, &tmp).await;
    let take = |kind: FileKind, files: &mut Vec<crate::sources::Download>| {
        files
            .iter()
            .position(|f| f.kind == kind)
            .map(|i| files.remove(i))
    };
    let debug = take(FileKind::Debug, &mut fetched.files)
        .or_else(|| take(FileKind::Breakpad, &mut fetched.files));
    let code = take(FileKind::Code, &mut fetched.files);
    if debug.is_none() && code.is_none() {
        state
            .sources
            .remember(&source, &q, fetched.attempts.clone())
            .await;
        *record.lock() = fetched.attempts;
        return Err(BuildError::unavailable(format!(
            "source {} does not have the module",
            source.id
        )));
    }
    let mut attempts = fetched.attempts;
    let id = source.id.clone();
    let result = tokio::task::spawn_blocking(move || {
        let open = |d: &crate::sources::Download| crate::ingest::Mapped::open(&d.path);
        let debug_map = debug
            .as_ref()
            .map(open)
            .transpose()
            .map_err(|e| e.to_string())?;
        let code_map = code
            .as_ref()
            .map(open)
            .transpose()
            .map_err(|e| e.to_string())?;
        let (main, companion, symbols_from) = match (&debug_map, &code_map) {
            (Some(d), c) => (d, c.as_deref(), debug.as_ref().map(|d| d.location.clone())),
            (None, Some(c)) => (c, None, code.as_ref().map(|c| c.location.clone())),
            (None, None) => return Err("nothing downloaded".to_owned()),
        };
        let input = crate::native::BuildInput {
            debug_file: main,
            object_index: 0,
            executable: companion,
            dwo_files: Vec::new(),
        };
        let symcache = crate::native::build_cache(&input).map_err(|e| e.to_string())?;
        // Unwind rules from the executable when there is one (`.eh_frame` survives strip),
        // else from the debug file.
        let (cfi_input, unwind_from) = match (&code_map, &debug_map) {
            (Some(c), _) => (&c[..], code.as_ref().map(|c| c.location.clone())),
            (None, Some(d)) => (&d[..], debug.as_ref().map(|d| d.location.clone())),
            (None, None) => return Err("nothing downloaded".to_owned()),
        };
        let cfi = crate::native::build_cfi(cfi_input, 0).unwrap_or_default();
        Ok((
            symcache,
            cfi,
            symbols_from.unwrap_or_default(),
            unwind_from.unwrap_or_default(),
        ))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    match result {
        Ok((symcache, cfi, symbols_from, unwind_from)) => Ok(encode(
            &Meta {
                source: id,
                symbols_from,
                unwind_from,
                attempts,
            },
            &symcache,
            &cfi,
        )),
        Err(e) => {
            attempts.push(SourceCandidate {
                source: id.clone(),
                location: "(downloaded files)".into(),
                status: DownloadStatus::Invalid,
                details: Some(format!("could not be processed: {e}")),
            });
            state.sources.remember(&source, &q, attempts.clone()).await;
            *record.lock() = attempts;
            Err(BuildError::unavailable(format!(
                "source {id}: the downloaded file could not be processed: {e}"
            )))
        }
    }
}

/// One line per source for a module's diagnostic: what each said.
pub(super) fn summary(attempts: &[SourceCandidate]) -> String {
    let mut per_source: Vec<(String, Vec<String>)> = Vec::new();
    for a in attempts {
        let status = match a.status {
            DownloadStatus::Ok => "ok",
            DownloadStatus::NotFound => "not found",
            DownloadStatus::Timeout => "timed out",
            DownloadStatus::TooLarge => "too large",
            DownloadStatus::Invalid => "invalid",
            DownloadStatus::Error => "error",
            DownloadStatus::Pending => "still downloading",
        };
        let entry = match &a.details {
            Some(d) => format!("{status} ({d})"),
            None => status.to_owned(),
        };
        match per_source.iter_mut().find(|(s, _)| *s == a.source) {
            Some((_, v)) => {
                if !v.contains(&entry) {
                    v.push(entry)
                }
            }
            None => per_source.push((a.source.clone(), vec![entry])),
        }
    }
    per_source
        .into_iter()
        .map(|(s, v)| format!("{s}: {}", v.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}
