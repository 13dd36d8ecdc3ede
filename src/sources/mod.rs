//! External symbol sources: debuginfod servers, HTTP symbol servers (Microsoft symstore,
//! SSQP, Breakpad, GDB/LLDB, unified layouts) and buckets (S3, GCS, a local directory),
//! tried in their configured order for modules nobody uploaded.
//!
//! This layer downloads and validates; it keeps nothing but remembered misses. Callers (the
//! service layer) build derived caches from what it fetched, through the cache tier, which
//! also makes concurrent requests for one module share one download.
//!
//! - `layout`: the paths of each layout (pure).
//! - `net`: outbound HTTP that cannot be pointed at the internal network; bodies streamed to
//!   disk under a size limit.
//! - `unpack`: CAB (`foo.pd_`), gzip, zstd, zlib, decompressed under the same limit.

mod layout;
mod net;
mod source;
mod unpack;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use tokio::sync::Semaphore;

pub use layout::{basename, FileKind, ObjFormat, Query};
pub use net::forbidden;

use crate::config::{Config, FetchingConfig, Layout, SourceConfig};
use crate::types::ProjectId;
use crate::wire::{DownloadStatus, SourceCandidate};

/// The configured sources and what they recently did not have.
pub struct Sources {
    list: Vec<Arc<Source>>,
    misses: moka::future::Cache<String, Arc<Remembered>>,
    downloads: Arc<Semaphore>,
    pub fetching: FetchingConfig,
}

/// A miss kept until `until`: the attempts that made it.
pub struct Remembered {
    pub attempts: Vec<SourceCandidate>,
    until: Instant,
}

struct Expiry;

impl moka::Expiry<String, Arc<Remembered>> for Expiry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<Remembered>,
        now: Instant,
    ) -> Option<Duration> {
        Some(value.until.saturating_duration_since(now))
    }
}

/// One source.
pub struct Source {
    pub id: String,
    config: SourceConfig,
    backend: Backend,
}

enum Backend {
    /// Bases the layout's paths are appended to (debuginfod: each server's `buildid/`).
    Http {
        client: reqwest::Client,
        bases: Vec<url::Url>,
        layout: Layout,
    },
    Bucket {
        store: Arc<dyn ObjectStore>,
        layout: Layout,
    },
    /// Could not be set up (the reason); every lookup says so.
    Broken(String),
}

/// A file a source had for a module, downloaded (and decompressed) to a local temp file.
pub struct Download {
    pub kind: FileKind,
    pub path: tempfile::TempPath,
    /// Where it came from (URL or bucket key), for diagnostics.
    pub location: String,
}

/// What one source had for a module: its files and every location tried.
pub struct Fetched {
    pub files: Vec<Download>,
    pub attempts: Vec<SourceCandidate>,
}

impl Sources {
    /// The configured sources. One that cannot be set up (a bucket client that does not
    /// build) stays in the list and answers every lookup with the reason.
    pub fn new(config: &Config) -> Sources {
        let list = config
            .sources
            .iter()
            .map(|c| {
                Arc::new(Source::new(c, &config.fetching).unwrap_or_else(|e| {
                    tracing::error!(source = %c.id, error = %e, "symbol source unusable");
                    Source {
                        id: c.id.clone(),
                        config: c.clone(),
                        backend: Backend::Broken(e),
                    }
                }))
            })
            .collect();
        Sources {
            list,
            misses: moka::future::Cache::builder()
                .max_capacity(100_000)
                .expire_after(Expiry)
                .build(),
            downloads: Arc::new(Semaphore::new(config.fetching.max_concurrent_downloads)),
            fetching: config.fetching.clone(),
        }
    }

    /// The sources a project uses, in order.
    pub fn for_project(&self, project: &ProjectId) -> Vec<Arc<Source>> {
        self.list
            .iter()
            .filter(|s| {
                s.config.projects.is_empty()
                    || s.config.projects.iter().any(|p| p == project.as_str())
            })
            .cloned()
            .collect()
    }

    fn miss_key(source: &Source, query: &Query) -> String {
        format!("{}\u{0}{}", source.id, query.key())
    }

    /// The attempts of a recent miss of `source` for this module, if it is remembered.
    pub async fn remembered(&self, source: &Source, query: &Query) -> Option<Arc<Remembered>> {
        self.misses.get(&Self::miss_key(source, query)).await
    }

    /// Remembers a miss: for `fetching.notfound_ttl` when every location said not found,
    /// else (errors, timeouts, invalid files) for `fetching.error_ttl`.
    pub async fn remember(&self, source: &Source, query: &Query, attempts: Vec<SourceCandidate>) {
        let all_notfound = attempts
            .iter()
            .all(|a| a.status == DownloadStatus::NotFound);
        let ttl = if all_notfound {
            self.fetching.notfound_ttl
        } else {
            self.fetching.error_ttl
        };
        let value = Arc::new(Remembered {
            attempts,
            until: Instant::now() + ttl,
        });
        self.misses
            .insert(Self::miss_key(source, query), value)
            .await;
    }

    /// Downloads what `source` has for a module (debug file, else Breakpad file; and the
    /// executable), each validated against the module's IDs.
    pub async fn fetch(&self, source: &Source, query: &Query, tmp: &Path) -> Fetched {
        let mut fetched = Fetched {
            files: Vec::new(),
            attempts: Vec::new(),
        };
        if let Err(e) = tokio::fs::create_dir_all(tmp).await {
            fetched.attempts.push(SourceCandidate {
                source: source.id.clone(),
                location: tmp.display().to_string(),
                status: DownloadStatus::Error,
                details: Some(format!("cannot create the download directory: {e}")),
            });
            return fetched;
        }
        for kind in [FileKind::Debug, FileKind::Breakpad, FileKind::Code] {
            if kind == FileKind::Breakpad && fetched.files.iter().any(|f| f.kind == FileKind::Debug)
            {
                continue;
            }
            if !source.accepts(query, kind) {
                continue;
            }
            for location in source.locations(query, kind) {
                let outcome = self.fetch_one(source, query, kind, &location, tmp).await;
                let candidate = match &outcome {
                    Ok((_, c)) | Err(c) => c,
                };
                crate::metrics::global()
                    .source_requests
                    .get_or_create(&crate::metrics::SourceLabels {
                        source: source.id.clone(),
                        status: candidate.status.as_str(),
                    })
                    .inc();
                match outcome {
                    Ok((download, candidate)) => {
                        fetched.attempts.push(candidate);
                        fetched.files.push(download);
                        break;
                    }
                    Err(candidate) => fetched.attempts.push(candidate),
                }
            }
        }
        fetched
    }

    async fn fetch_one(
        &self,
        source: &Source,
        query: &Query,
        kind: FileKind,
        location: &str,
        tmp: &Path,
    ) -> Result<(Download, SourceCandidate), SourceCandidate> {
        let shown = source.show(location);
        let candidate = |status: DownloadStatus, details: Option<String>| SourceCandidate {
            source: source.id.clone(),
            location: shown.clone(),
            status,
            details,
        };
        let miss = |m: net::Miss| match m {
            net::Miss::NotFound => candidate(DownloadStatus::NotFound, None),
            net::Miss::Timeout => candidate(
                DownloadStatus::Timeout,
                Some(format!("no answer within {:?}", source.config.timeout)),
            ),
            net::Miss::TooLarge(limit) => candidate(
                DownloadStatus::TooLarge,
                Some(format!(
                    "larger than the source's max_size of {limit} bytes"
                )),
            ),
            net::Miss::Error(e) => candidate(DownloadStatus::Error, Some(e)),
        };
        let raw = tempfile::TempPath::try_from_path(crate::ingest::tmp_path(tmp))
            .map_err(|e| candidate(DownloadStatus::Error, Some(e.to_string())))?;
        {
            let _permit = self.downloads.acquire().await.map_err(|e| {
                candidate(DownloadStatus::Error, Some(format!("shutting down: {e}")))
            })?;
            let get = source.get(location, &raw);
            match tokio::time::timeout(source.config.timeout, get).await {
                Ok(Ok(_)) => {}
                Ok(Err(m)) => return Err(miss(m)),
                Err(_) => return Err(miss(net::Miss::Timeout)),
            }
        }
        // A symstore `file.ptr` names where the file really is.
        if location.ends_with("file.ptr") {
            let text = std::fs::read_to_string(&raw).unwrap_or_default();
            let text = text.trim();
            return match text.strip_prefix("PATH:") {
                Some(target) if !target.starts_with("\\\\") && !target.contains("..") => {
                    let target = target.replace('\\', "/");
                    let target = source.relative(target.trim_start_matches('/'));
                    let next = Box::pin(self.fetch_one(source, query, kind, &target, tmp)).await;
                    next.map_err(|mut c| {
                        c.details = Some(format!(
                            "{} (file.ptr at {shown} pointed here)",
                            c.details.unwrap_or_default()
                        ));
                        c
                    })
                }
                Some(target) => Err(candidate(
                    DownloadStatus::NotFound,
                    Some(format!(
                        "file.ptr points to {target:?}, which is not on this source"
                    )),
                )),
                None => Err(candidate(
                    DownloadStatus::NotFound,
                    Some(format!(
                        "file.ptr says {:?}",
                        text.chars().take(200).collect::<String>()
                    )),
                )),
            };
        }
        let max = source.config.max_size;
        let unpacked = tempfile::TempPath::try_from_path(crate::ingest::tmp_path(tmp))
            .map_err(|e| candidate(DownloadStatus::Error, Some(e.to_string())))?;
        let (raw_path, unpacked_path) = (raw.to_path_buf(), unpacked.to_path_buf());
        let did =
            tokio::task::spawn_blocking(move || unpack::unpack(&raw_path, &unpacked_path, max))
                .await
                .map_err(|e| candidate(DownloadStatus::Error, Some(e.to_string())))?
                .map_err(miss)?;
        let path = if did { unpacked } else { raw };
        let check_path: PathBuf = path.to_path_buf();
        let q = query.clone();
        let valid = tokio::task::spawn_blocking(move || validate(&check_path, &q, kind))
            .await
            .map_err(|e| candidate(DownloadStatus::Error, Some(e.to_string())))?;
        match valid {
            Ok(()) => Ok((
                Download {
                    kind,
                    path,
                    location: shown.clone(),
                },
                candidate(DownloadStatus::Ok, None),
            )),
            Err(why) => Err(candidate(DownloadStatus::Invalid, Some(why))),
        }
    }
}

/// Checks that a downloaded file is what was asked for: a debug file we can read whose debug
/// ID (or, for an executable, code ID) is the module's.
fn validate(path: &Path, query: &Query, kind: FileKind) -> Result<(), String> {
    let map = crate::ingest::Mapped::open(path).map_err(|e| e.to_string())?;
    let objects = crate::native::describe(&map).map_err(|e| e.to_string())?;
    let matches = objects
        .iter()
        .any(|o| match (kind, &query.code_id, query.debug_id) {
            (FileKind::Code, Some(code), _) if o.code_id.is_some() => {
                o.code_id.as_ref() == Some(code)
            }
            (_, _, Some(debug)) => o.debug_id == Some(debug),
            (_, Some(code), None) => o.code_id.as_ref() == Some(code),
            _ => false,
        });
    if matches {
        return Ok(());
    }
    let got: Vec<String> = objects
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o.format.as_str(),
                o.debug_id
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "without debug ID".into())
            )
        })
        .collect();
    Err(format!(
        "the file is {}, not the module's (debug ID {}, code ID {})",
        got.join(", "),
        query.debug_id.map(|d| d.to_string()).unwrap_or_default(),
        query
            .code_id
            .as_ref()
            .map(|c| c.as_str())
            .unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests;
