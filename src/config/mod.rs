//! Service configuration: one documented struct, read from a TOML file, overridden by
//! `TRACEMAP_*` environment variables and then by CLI flags, validated before anything starts.
//!
//! Precedence, lowest first: built-in defaults → TOML file → environment → CLI flags.
//! Environment variables map onto keys with `__` as the section separator:
//! `TRACEMAP_LISTEN=0.0.0.0:7878`, `TRACEMAP_LIMITS__MAX_UPLOAD_BYTES=1GiB`,
//! `TRACEMAP_CACHE__DISK_QUOTA=20GiB`. They are applied to the TOML tree before it is
//! deserialised, so an environment variable naming an unknown key is rejected exactly like the
//! same key in the file.
//!
//! This module never prints secrets: `Debug` for tokens is redacted.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The default port: 7878, loopback only unless tokens are configured.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:7878`. A non-loopback address is refused
    /// unless at least one token is configured.
    pub listen: SocketAddr,
    /// Root of everything Tracemap keeps on local disk. Default `./tracemap-data`.
    pub data_dir: PathBuf,
    /// The URL clients use to reach this server (used in sentry-cli's chunk-upload
    /// options). Default: derived from the request's `Host` header.
    pub public_url: Option<String>,
    /// `text` (default) or `json` log lines on stderr.
    pub log_format: LogFormat,
    pub store: StoreConfig,
    pub cache: CacheConfig,
    pub limits: Limits,
    pub auth: AuthConfig,
    /// External symbol sources, tried in order after the project's own uploads.
    pub sources: Vec<SourceConfig>,
    pub fetching: FetchingConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("constant address parses"),
            data_dir: PathBuf::from("tracemap-data"),
            public_url: None,
            log_format: LogFormat::Text,
            store: StoreConfig::default(),
            cache: CacheConfig::default(),
            limits: Limits::default(),
            auth: AuthConfig::default(),
            sources: Vec::new(),
            fetching: FetchingConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Where durable state lives.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `None` (default): a local directory, `{data_dir}/store`. Otherwise an object store URL
    /// understood by the `object_store` crate: `file:///abs/path`, `s3://bucket/prefix`,
    /// `gs://bucket`, `az://container`, `memory:///` (tests only: nothing survives a restart).
    pub url: Option<String>,
    /// Options passed to the object store builder, e.g. for S3-compatible servers:
    /// `endpoint`, `region`, `access_key_id`, `secret_access_key`, `allow_http`.
    /// Values are never logged.
    #[serde(default)]
    pub options: BTreeMap<String, Secret>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Directory of derived caches (SourceMapCache, SymCache). Default `{data_dir}/cache`.
    pub dir: Option<PathBuf>,
    /// Disk quota for derived caches; least recently used files are evicted past it.
    /// Default `10GiB`.
    #[serde(deserialize_with = "de_bytes")]
    pub disk_quota: u64,
    /// Memory held by loaded caches and indexes, weighed in bytes. Default `1GiB`.
    #[serde(deserialize_with = "de_bytes")]
    pub memory: u64,
    /// Also keep derived caches in the store (under `caches/`), so a replica that never built
    /// one loads it from the bucket instead of building it: a new replica answers its first
    /// request warm. Safe because cache keys name their inputs' hashes and format versions.
    /// Default false.
    pub shared: bool,
    /// How long a replica trusts its in-memory release and debug-ID index before it
    /// re-reads the store. Uploads to this replica invalidate at once; this bounds how
    /// late another replica sees them. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub index_ttl: Duration,
    /// Background workers that build derived caches after an upload. Default 2.
    pub build_workers: usize,
}

/// The in-memory caches, each given a fixed share of `cache.memory`: together they hold at
/// most that budget (weighed in bytes, including each entry's own overhead), so the
/// configured number is the whole answer to "how much memory do the caches take".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryShare {
    /// Loaded derived caches (SourceMapCache, SymCache), mapped or read.
    CacheFiles,
    /// Values derived once from stored files (a source bundle's index, line indexes).
    Derived,
    /// Whole text files for source context.
    Texts,
    /// Upload manifests.
    Manifests,
    /// Release URL indexes.
    ReleaseIndexes,
    /// Debug-ID and code-ID pointer lists.
    Pointers,
    /// JS artifact resolutions.
    JsResolutions,
    /// Native module resolutions.
    NativeResolutions,
}

impl MemoryShare {
    /// The share, in 32nds of the budget (they add up to 32).
    fn parts(self) -> u64 {
        match self {
            MemoryShare::CacheFiles => 11,
            MemoryShare::Derived => 4,
            MemoryShare::Texts => 4,
            MemoryShare::Manifests => 4,
            MemoryShare::ReleaseIndexes => 3,
            MemoryShare::Pointers => 2,
            MemoryShare::JsResolutions => 2,
            MemoryShare::NativeResolutions => 2,
        }
    }
}

/// What one cache entry costs beside the value and key bytes a weigher counts: moka's entry
/// (node, deque links, hash-table slot, frequency sketch), the key's `String` header and the
/// value's `Arc`. Measured with a counting allocator: 349 bytes per entry of a moka 0.12
/// future cache keyed by a 64-byte `String` with an `Arc` value, 285 without the key bytes;
/// rounded up for allocator size classes.
const CACHE_ENTRY_OVERHEAD: usize = 320;

/// A moka weight for an entry whose key and value hold `bytes`: the entry's overhead
/// included, saturated at `u32::MAX`.
pub fn cache_weight(bytes: usize) -> u32 {
    bytes
        .saturating_add(CACHE_ENTRY_OVERHEAD)
        .min(u32::MAX as usize) as u32
}

impl CacheConfig {
    /// The bytes of `cache.memory` that one in-memory cache may hold.
    pub fn memory_for(&self, share: MemoryShare) -> u64 {
        self.memory / 32 * share.parts()
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            dir: None,
            disk_quota: 10 << 30,
            memory: 1 << 30,
            shared: false,
            index_ttl: Duration::from_secs(10),
            build_workers: 2,
        }
    }
}

/// Every limit is a clear 4xx when exceeded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest upload request body. Default `2GiB`.
    #[serde(deserialize_with = "de_bytes")]
    pub max_upload_bytes: u64,
    /// Largest single file, after inflating it from a zip. Default `1GiB`.
    #[serde(deserialize_with = "de_bytes")]
    pub max_file_bytes: u64,
    /// Largest source map we parse and index. Default `256MiB`.
    #[serde(deserialize_with = "de_bytes")]
    pub max_sourcemap_bytes: u64,
    /// Most entries in one zip. Default 100000.
    pub max_zip_entries: usize,
    /// Most bytes all entries of one zip may inflate to. Default `4GiB`.
    #[serde(deserialize_with = "de_bytes")]
    pub max_inflated_bytes: u64,
    /// Largest symbolicate request body. Default `16MiB`.
    #[serde(deserialize_with = "de_bytes")]
    pub max_symbolicate_bytes: u64,
    /// Largest minidump (the `upload_file_minidump` part, streamed to a temp file).
    /// Default `100MiB` (Sentry's own limit for minidump attachments).
    #[serde(deserialize_with = "de_bytes")]
    pub max_minidump_bytes: u64,
    /// Most frames in one symbolicate request, over all stack traces. Default 20000.
    pub max_frames: usize,
    /// Most modules in one native symbolicate request. Default 5000.
    pub max_modules: usize,
    /// Symbolicate requests served at once; more wait a second, then get 503. Default 512.
    pub max_concurrent_requests: usize,
    /// Time limit of one symbolicate request. Default `60s`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Largest JSON body of the sentry-cli routes (assemble, releases). Default `4MiB`.
    #[serde(deserialize_with = "de_bytes")]
    pub max_json_bytes: u64,
    /// Upload, sentry-cli and catalogue requests served at once; more wait a second, then
    /// get 503. Default 32.
    pub max_concurrent_uploads: usize,
    /// Time limit of one upload (or listing) request. Default `1h`.
    #[serde(with = "humantime_serde")]
    pub upload_timeout: Duration,
    /// A sentry-cli assembly whose state was not refreshed for this long (its process died,
    /// on any replica) is restarted by the next assemble call. Default `60s`; running
    /// assemblies refresh every 15 s.
    #[serde(with = "humantime_serde")]
    pub assemble_stalled_after: Duration,
    /// Time a client has to send a request's headers (cuts off slow-loris clients).
    /// Default `10s`.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_upload_bytes: 2 << 30,
            max_file_bytes: 1 << 30,
            max_sourcemap_bytes: 256 << 20,
            max_zip_entries: 100_000,
            max_inflated_bytes: 4 << 30,
            max_symbolicate_bytes: 16 << 20,
            max_minidump_bytes: 100 << 20,
            max_frames: 20_000,
            max_modules: 5_000,
            max_concurrent_requests: 512,
            request_timeout: Duration::from_secs(60),
            max_json_bytes: 4 << 20,
            max_concurrent_uploads: 32,
            upload_timeout: Duration::from_secs(3600),
            header_read_timeout: Duration::from_secs(10),
            assemble_stalled_after: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Bearer tokens. With none, every request is allowed and the server binds loopback only.
    pub tokens: Vec<TokenConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// A name for logs and metrics; the secret itself is never printed.
    pub name: String,
    /// The bearer token (at least 16 characters).
    pub token: Secret,
    /// Any of `upload`, `symbolicate`, `admin`.
    pub scopes: Vec<Scope>,
    /// Projects this token may use; absent means every project.
    #[serde(default)]
    pub projects: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Upload artifacts and debug files; list and read them.
    Upload,
    /// Call the symbolicate endpoints.
    Symbolicate,
    /// Everything, including deletes and maintenance.
    Admin,
}

/// A string that never appears in `Debug` output or logs.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // The I/O error is part of the sentence and deliberately not a `source`: a chain printed
    // with `{:#}` would say it twice.
    #[error("cannot read config file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("invalid config: {0}")]
    Parse(String),
    #[error("invalid environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// Flags given on the command line; `None` means "not given".
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub store_url: Option<String>,
    pub log_format: Option<LogFormat>,
}

impl Config {
    /// Loads the configuration: defaults, then `file`, then `env` (`TRACEMAP_*` pairs), then
    /// `overrides`; validates the result.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut tree = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
                    path: path.to_owned(),
                    error,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut tree, env)?;
        // The path of the key a value failed at (`limits.max_frames`), so the message names it.
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(tree))
            .map_err(|e: serde_path_to_error::Error<toml::de::Error>| {
                let message = e.inner().message().to_owned();
                match e.path().to_string().as_str() {
                    "." => ConfigError::Parse(message),
                    key => ConfigError::Parse(format!("{key}: {message}")),
                }
            })?;
        if let Some(listen) = overrides.listen {
            config.listen = listen;
        }
        if let Some(dir) = &overrides.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &overrides.store_url {
            config.store.url = Some(url.clone());
        }
        if let Some(format) = overrides.log_format {
            config.log_format = format;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the invariants the rest of the code relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.auth.tokens.is_empty() && !self.listen.ip().is_loopback() {
            return invalid(format!(
                "listen = {} is not a loopback address and no [[auth.tokens]] are configured; \
                 refusing to serve unauthenticated on the network",
                self.listen
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for token in &self.auth.tokens {
            if token.token.0.len() < 16 {
                return invalid(format!(
                    "token {:?} is shorter than 16 characters",
                    token.name
                ));
            }
            if token.scopes.is_empty() {
                return invalid(format!("token {:?} has no scopes", token.name));
            }
            if !seen.insert(token.token.0.as_str()) {
                return invalid(format!("token {:?} is configured twice", token.name));
            }
            for p in token.projects.iter().flatten() {
                if crate::types::ProjectId::parse(p).is_err() {
                    return invalid(format!("token {:?}: invalid project {p:?}", token.name));
                }
            }
        }
        if self.cache.build_workers == 0 {
            return invalid("cache.build_workers must be at least 1".into());
        }
        if self.limits.max_frames == 0 || self.limits.max_concurrent_requests == 0 {
            return invalid(
                "limits.max_frames and limits.max_concurrent_requests must be > 0".into(),
            );
        }
        if let Some(url) = &self.public_url {
            if url::Url::parse(url).is_err() {
                return invalid(format!("public_url {url:?} is not a URL"));
            }
        }
        let mut ids = std::collections::HashSet::new();
        for source in &self.sources {
            if let Some(problem) = source.problem() {
                return invalid(problem);
            }
            if !ids.insert(source.id.as_str()) {
                return invalid(format!("source id {:?} is configured twice", source.id));
            }
        }
        if self.fetching.max_concurrent_downloads == 0 {
            return invalid("fetching.max_concurrent_downloads must be at least 1".into());
        }
        Ok(())
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.cache
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("cache"))
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.data_dir.join("tmp")
    }
}

/// `TRACEMAP_*` variables that are not config keys: the log filter, the config file path,
/// and the CLI client's settings. `TRACEMAP_TEST_*` variables belong to the test suite.
const NOT_CONFIG: &[&str] = &["LOG", "CONFIG", "URL", "TOKEN", "PROJECT", "RELEASE"];

/// Applies `TRACEMAP_A__B=value` onto `tree` as `a.b = value`. The value is read as a TOML
/// value when it is one (numbers, booleans, arrays), else as a string.
fn apply_env(
    tree: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (var, value) in env {
        let Some(rest) = var.strip_prefix("TRACEMAP_") else {
            continue;
        };
        if NOT_CONFIG.contains(&rest) || rest.starts_with("TEST_") {
            continue;
        }
        if rest.is_empty() {
            continue;
        }
        let keys: Vec<String> = rest.split("__").map(|k| k.to_ascii_lowercase()).collect();
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(value.clone()));
        let mut table = &mut *tree;
        let (last, parents) = keys.split_last().expect("split produces at least one key");
        for key in parents {
            let entry = table
                .entry(key.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = entry.as_table_mut().ok_or_else(|| ConfigError::Env {
                var: var.clone(),
                message: format!("`{key}` is not a section"),
            })?;
        }
        table.insert(last.clone(), parsed);
    }
    Ok(())
}

/// Parses `1024`, `"512KiB"`, `"10MB"`, `"2GiB"`.
/// Parses a size: a number, optionally with a fraction (`1.5GiB`), and an optional unit
/// (`B`, `KB`/`KiB`, `MB`/`MiB`, `GB`/`GiB`, `TB`/`TiB`; any case). Fractions of a byte are
/// dropped.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let not_a_size = || format!("{s:?} is not a size like 512MiB or 1.5GiB");
    let (whole, fraction) = num.split_once('.').unwrap_or((num, ""));
    if whole.is_empty() || fraction.contains('.') || fraction.len() > 9 {
        return Err(not_a_size());
    }
    let whole: u64 = whole.parse().map_err(|_| not_a_size())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        other => return Err(format!("unknown size unit {other:?} in {s:?}")),
    };
    // The fraction in integers: digits × unit / 10^digits (at most 9 digits, so no overflow
    // in u128).
    let fraction_bytes = if fraction.is_empty() {
        0
    } else {
        let digits: u128 = fraction.parse().map_err(|_| not_a_size())?;
        let scale = 10u128.pow(fraction.len() as u32);
        u64::try_from(digits * u128::from(mult) / scale).map_err(|_| not_a_size())?
    };
    whole
        .checked_mul(mult)
        .and_then(|n| n.checked_add(fraction_bytes))
        .ok_or_else(|| format!("size {s:?} is too large"))
}

fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Str(String),
    }
    match Raw::deserialize(d)? {
        Raw::Int(n) => Ok(n),
        Raw::Str(s) => parse_bytes(&s).map_err(serde::de::Error::custom),
    }
}

mod sources;
pub use sources::{
    Casing, FetchingConfig, Layout, SourceConfig, SourceFilters, SourceType, FILETYPES,
};

#[cfg(test)]
mod tests;
