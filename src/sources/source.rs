//! One configured source: its backend (HTTP with checked outbound connections, or an
//! object store bucket), where its layout keeps a module's files, its filters, and one
//! download.

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;

use super::layout::{self, basename, FileKind, Query};
use super::{net, Backend, Source};
use crate::config::{Casing, FetchingConfig, Layout, SourceConfig, SourceType};

impl Source {
    pub(super) fn new(config: &SourceConfig, fetching: &FetchingConfig) -> Result<Source, String> {
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

    pub(super) fn layout(&self) -> Layout {
        match &self.backend {
            Backend::Http { layout, .. } | Backend::Bucket { layout, .. } => *layout,
            Backend::Broken(_) => Layout::Native,
        }
    }

    pub(super) fn locations(&self, query: &Query, kind: FileKind) -> Vec<String> {
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
    pub(super) fn relative(&self, path: &str) -> String {
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
    pub(super) fn show(&self, location: &str) -> String {
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
    pub(super) fn accepts(&self, query: &Query, kind: FileKind) -> bool {
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
    pub(super) async fn get(&self, location: &str, path: &Path) -> Result<u64, net::Miss> {
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
pub(super) fn glob_match(pattern: &str, text: &str) -> bool {
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
