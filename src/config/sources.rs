//! `[[sources]]`: external symbol sources tried after a project's own uploads, and
//! `[fetching]`: how their answers are remembered and waited for. Names and layouts follow
//! Symbolicator's, so an operator's existing source list translates one to one.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::de_bytes;

/// One external symbol source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Names the source in diagnostics and cache keys: `[A-Za-z0-9_.-]`, unique.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: SourceType,
    /// `http`: the base URL (paths of the layout are appended). `debuginfod`: one server
    /// (or use `urls`).
    #[serde(default)]
    pub url: Option<String>,
    /// `debuginfod`: servers tried in order.
    #[serde(default)]
    pub urls: Vec<String>,
    /// `http`, `s3`, `gcs`: how files are laid out (default `native`).
    #[serde(default)]
    pub layout: Option<Layout>,
    /// `default` (as the layout defines), `lowercase` or `uppercase`.
    #[serde(default)]
    pub casing: Casing,
    /// `filesystem`: a local directory laid out like a symbol server.
    #[serde(default)]
    pub path: Option<String>,
    /// `s3`, `gcs`: the bucket, and (also `filesystem`) a key prefix.
    #[serde(default)]
    pub bucket: Option<String>,
    #[serde(default)]
    pub prefix: String,
    /// `s3`: region and endpoint (an S3-compatible server), credentials.
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub access_key: Option<String>,
    #[serde(default)]
    pub secret_key: Option<String>,
    /// `gcs`: a service account key file.
    #[serde(default)]
    pub service_account_path: Option<String>,
    /// Headers sent with every request (`Authorization` for a private server).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Connecting, per attempt. Default `5s`.
    #[serde(default = "connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// One whole download. Default `60s`.
    #[serde(default = "timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Largest file taken from this source (after decompression). Default `2GiB`.
    #[serde(default = "max_size", deserialize_with = "de_bytes")]
    pub max_size: u64,
    /// Allow loopback, private, link-local and metadata addresses (default false: a DNS
    /// answer or redirect into the internal network is refused).
    #[serde(default)]
    pub allow_private: bool,
    /// Which lookups go to this source at all.
    #[serde(default)]
    pub filters: SourceFilters,
    /// Projects that use this source (empty: all projects).
    #[serde(default)]
    pub projects: Vec<String>,
}

fn connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn timeout() -> Duration {
    Duration::from_secs(60)
}
fn max_size() -> u64 {
    2 << 30
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceType {
    Debuginfod,
    Http,
    S3,
    Gcs,
    Filesystem,
}

/// Symbolicator's layouts (see README, Symbol sources, for the paths of each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    Native,
    Symstore,
    SymstoreIndex2,
    Ssqp,
    Breakpad,
    Debuginfod,
    Unified,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Casing {
    #[default]
    Default,
    Lowercase,
    Uppercase,
}

/// A lookup goes to a source only if it passes every filter that is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFilters {
    /// File types: `elf_code`, `elf_debug`, `macho_code`, `macho_debug`, `pe`, `pdb`,
    /// `breakpad`, `wasm_code`, `wasm_debug` (Symbolicator's names).
    #[serde(default)]
    pub filetypes: Vec<String>,
    /// Glob patterns (`*`, `?`, case-insensitive) one of which the module's code or debug file
    /// name must match, e.g. `libc.so*`.
    #[serde(default)]
    pub path_patterns: Vec<String>,
    /// Hex prefixes one of which the debug ID (or code ID) must start with.
    #[serde(default)]
    pub debug_id_prefixes: Vec<String>,
}

/// The file types a filter may name.
pub const FILETYPES: &[&str] = &[
    "elf_code",
    "elf_debug",
    "macho_code",
    "macho_debug",
    "pe",
    "pdb",
    "breakpad",
    "wasm_code",
    "wasm_debug",
];

/// How fetched answers are remembered and waited for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchingConfig {
    /// How long "not found" (404) is remembered per source and file. Default `1h`.
    #[serde(with = "humantime_serde")]
    pub notfound_ttl: Duration,
    /// How long an error (5xx, timeout, refused, invalid file) is remembered. Default `5m`.
    #[serde(with = "humantime_serde")]
    pub error_ttl: Duration,
    /// How long a request waits for downloads before answering without them (they go on
    /// and serve the next request). Default `10s`.
    #[serde(with = "humantime_serde")]
    pub request_wait: Duration,
    /// Downloads at once, over all sources. Default 8.
    pub max_concurrent_downloads: usize,
    /// Redirects followed per download, each re-checked. Default 5.
    pub max_redirects: usize,
}

impl Default for FetchingConfig {
    fn default() -> Self {
        FetchingConfig {
            notfound_ttl: Duration::from_secs(3600),
            error_ttl: Duration::from_secs(300),
            request_wait: Duration::from_secs(10),
            max_concurrent_downloads: 8,
            max_redirects: 5,
        }
    }
}

impl SourceConfig {
    /// What is wrong with this source, if anything.
    pub fn problem(&self) -> Option<String> {
        let id = &self.id;
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Some(format!(
                "source id {id:?}: use letters, digits, '_', '-', '.'"
            ));
        }
        let url_ok = |u: &str| {
            url::Url::parse(u)
                .ok()
                .is_some_and(|u| matches!(u.scheme(), "http" | "https"))
        };
        match self.kind {
            SourceType::Debuginfod => {
                if self.url.is_none() && self.urls.is_empty() {
                    return Some(format!(
                        "source {id}: a debuginfod source needs url or urls"
                    ));
                }
                if let Some(bad) = self.url.iter().chain(&self.urls).find(|u| !url_ok(u)) {
                    return Some(format!("source {id}: {bad:?} is not an http(s) URL"));
                }
            }
            SourceType::Http => match &self.url {
                Some(u) if url_ok(u) => {}
                Some(u) => return Some(format!("source {id}: {u:?} is not an http(s) URL")),
                None => return Some(format!("source {id}: an http source needs url")),
            },
            SourceType::S3 | SourceType::Gcs => {
                if self.bucket.as_deref().unwrap_or("").is_empty() {
                    return Some(format!("source {id}: a bucket source needs bucket"));
                }
            }
            SourceType::Filesystem => {
                if self.path.as_deref().unwrap_or("").is_empty() {
                    return Some(format!("source {id}: a filesystem source needs path"));
                }
            }
        }
        if let Some(bad) = self
            .filters
            .filetypes
            .iter()
            .find(|t| !FILETYPES.contains(&t.as_str()))
        {
            return Some(format!(
                "source {id}: unknown filetype {bad:?} (one of {})",
                FILETYPES.join(", ")
            ));
        }
        if let Some(bad) = self
            .filters
            .debug_id_prefixes
            .iter()
            .find(|p| !p.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        {
            return Some(format!("source {id}: debug ID prefix {bad:?} is not hex"));
        }
        for p in &self.projects {
            if crate::types::ProjectId::parse(p).is_err() {
                return Some(format!("source {id}: invalid project {p:?}"));
            }
        }
        None
    }
}
