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
mod unpack;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use tokio::sync::Semaphore;

pub use layout::{basename, FileKind, ObjFormat, Query};
pub use net::forbidden;

use crate::config::{Casing, Config, FetchingConfig, Layout, SourceConfig, SourceType};
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
                match self.fetch_one(source, query, kind, &location, tmp).await {
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

impl Source {
    fn new(config: &SourceConfig, fetching: &FetchingConfig) -> Result<Source, String> {
        let id = config.id.clone();
        let http = |bases: Vec<url::Url>, layout: Layout| -> Result<Backend, String> {
            Ok(Backend::Http {
                client: net::client(
                    config.allow_private,
                    config.connect_timeout,
                    fetching.max_redirects,
                )
                .map_err(|e| format!("source {id}: {e}"))?,
                bases,
                layout,
            })
        };
        let parse = |u: &str| -> Result<url::Url, String> {
            let with_slash = if u.ends_with('/') {
                u.to_owned()
            } else {
                format!("{u}/")
            };
            url::Url::parse(&with_slash).map_err(|e| format!("source {id}: {u:?}: {e}"))
        };
        let layout = config.layout.unwrap_or(Layout::Native);
        let backend = match config.kind {
            SourceType::Debuginfod => {
                let bases = config
                    .url
                    .iter()
                    .chain(&config.urls)
                    .map(|u| parse(u).and_then(|b| b.join("buildid/").map_err(|e| e.to_string())))
                    .collect::<Result<Vec<_>, _>>()?;
                http(bases, Layout::Debuginfod)?
            }
            SourceType::Http => {
                let base = parse(config.url.as_deref().unwrap_or_default())?;
                http(vec![base], layout)?
            }
            SourceType::S3 | SourceType::Gcs | SourceType::Filesystem => Backend::Bucket {
                store: bucket(config)?,
                layout,
            },
        };
        Ok(Source {
            id: config.id.clone(),
            config: config.clone(),
            backend,
        })
    }

    fn layout(&self) -> Layout {
        match &self.backend {
            Backend::Http { layout, .. } | Backend::Bucket { layout, .. } => *layout,
            Backend::Broken(_) => Layout::Native,
        }
    }

    fn locations(&self, query: &Query, kind: FileKind) -> Vec<String> {
        let casing = if self.config.kind == SourceType::Debuginfod {
            Casing::Default
        } else {
            self.config.casing
        };
        let paths = layout::locations(self.layout(), casing, query, kind);
        match &self.backend {
            // Each debuginfod server is tried in turn.
            Backend::Http { bases, .. } => bases
                .iter()
                .flat_map(|b| paths.iter().filter_map(move |p| b.join(p).ok()))
                .map(|u| u.to_string())
                .collect(),
            Backend::Broken(_) => paths.into_iter().take(1).collect(),
            Backend::Bucket { .. } => paths
                .into_iter()
                .map(|p| {
                    if self.config.prefix.is_empty() {
                        p
                    } else {
                        format!("{}/{p}", self.config.prefix.trim_end_matches('/'))
                    }
                })
                .collect(),
        }
    }

    /// A path relative to the source's root as a location (what a `file.ptr` names).
    fn relative(&self, path: &str) -> String {
        match &self.backend {
            Backend::Http { bases, .. } => bases
                .first()
                .and_then(|b| b.join(path).ok())
                .map(|u| u.to_string())
                .unwrap_or_else(|| path.to_owned()),
            _ if self.config.prefix.is_empty() => path.to_owned(),
            _ => format!("{}/{path}", self.config.prefix.trim_end_matches('/')),
        }
    }

    /// A location as diagnostics show it (a bucket key with its bucket).
    fn show(&self, location: &str) -> String {
        match (&self.backend, self.config.kind) {
            (Backend::Bucket { .. }, SourceType::S3) => format!(
                "s3://{}/{location}",
                self.config.bucket.as_deref().unwrap_or_default()
            ),
            (Backend::Bucket { .. }, SourceType::Gcs) => format!(
                "gs://{}/{location}",
                self.config.bucket.as_deref().unwrap_or_default()
            ),
            _ => location.to_owned(),
        }
    }

    /// Whether this source would be asked anything for this module (its filters let some
    /// kind through, and its layout has a place for it).
    pub fn asks(&self, query: &Query) -> bool {
        [FileKind::Debug, FileKind::Breakpad, FileKind::Code]
            .into_iter()
            .any(|k| self.accepts(query, k) && !self.locations(query, k).is_empty())
    }

    /// Whether this source's filters let a lookup of `kind` of this module through.
    fn accepts(&self, query: &Query, kind: FileKind) -> bool {
        let f = &self.config.filters;
        if !f.filetypes.is_empty() && !f.filetypes.iter().any(|t| t == query.filetype(kind)) {
            return false;
        }
        if !f.path_patterns.is_empty() {
            let names: Vec<&str> = query
                .code_file
                .iter()
                .chain(query.debug_file.iter())
                .map(String::as_str)
                .collect();
            let hit = f.path_patterns.iter().any(|p| {
                names
                    .iter()
                    .any(|n| glob_match(p, n) || glob_match(p, &basename(n)))
            });
            if !hit {
                return false;
            }
        }
        if !f.debug_id_prefixes.is_empty() {
            let ids: Vec<String> = query
                .debug_id
                .iter()
                .map(|d| d.to_string().replace('-', ""))
                .chain(query.code_id.iter().map(|c| c.as_str().to_owned()))
                .collect();
            let hit = f.debug_id_prefixes.iter().any(|p| {
                let p = p.replace('-', "").to_ascii_lowercase();
                ids.iter().any(|id| id.to_ascii_lowercase().starts_with(&p))
            });
            if !hit {
                return false;
            }
        }
        true
    }

    /// Downloads one location into `path`.
    async fn get(&self, location: &str, path: &Path) -> Result<u64, net::Miss> {
        let max = self.config.max_size;
        match &self.backend {
            Backend::Http { client, .. } => {
                let url = url::Url::parse(location).map_err(|e| net::Miss::Error(e.to_string()))?;
                let headers: Vec<(String, String)> = self
                    .config
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                net::download(client, url, &headers, self.config.allow_private, max, path).await
            }
            Backend::Bucket { store, .. } => {
                let key = object_store::path::Path::from(location);
                let result = match store.get(&key).await {
                    Ok(r) => r,
                    Err(object_store::Error::NotFound { .. }) => return Err(net::Miss::NotFound),
                    Err(e) => return Err(net::Miss::Error(e.to_string())),
                };
                if result.meta.size > max {
                    return Err(net::Miss::TooLarge(max));
                }
                net::write_stream(result.into_stream(), max, path).await
            }
            Backend::Broken(why) => Err(net::Miss::Error(format!("source unusable: {why}"))),
        }
    }
}

/// The object store of a bucket source.
fn bucket(config: &SourceConfig) -> Result<Arc<dyn ObjectStore>, String> {
    let id = &config.id;
    let bucket = config.bucket.as_deref().unwrap_or_default();
    if config.kind == SourceType::Filesystem {
        let dir = config.path.as_deref().unwrap_or_default();
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| format!("source {id}: {dir}: {e}"))?;
        return Ok(Arc::new(store));
    }
    let mut options: Vec<(String, String)> = Vec::new();
    let mut opt = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            options.push((k.to_owned(), v.clone()));
        }
    };
    let url = match config.kind {
        SourceType::Gcs => {
            opt("google_service_account", &config.service_account_path);
            format!("gs://{bucket}")
        }
        _ => {
            opt("aws_region", &config.region);
            opt("aws_endpoint", &config.endpoint);
            opt("aws_access_key_id", &config.access_key);
            opt("aws_secret_access_key", &config.secret_key);
            if let Some(endpoint) = &config.endpoint {
                if let Ok(u) = url::Url::parse(endpoint) {
                    net::check_url(&u, config.allow_private)
                        .map_err(|e| format!("source {id}: endpoint {e}"))?;
                    if u.scheme() == "http" {
                        options.push(("aws_allow_http".into(), "true".into()));
                    }
                }
            }
            format!("s3://{bucket}")
        }
    };
    let url = url::Url::parse(&url).map_err(|e| format!("source {id}: {e}"))?;
    let (store, _) =
        object_store::parse_url_opts(&url, options).map_err(|e| format!("source {id}: {e}"))?;
    Ok(Arc::from(store))
}

/// `*` and `?` globs, case-insensitive.
fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests;
