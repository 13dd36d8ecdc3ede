//! The generic tier of derived caches: bytes built once by a caller-supplied build function,
//! kept on local disk under a quota with least-recently-used eviction, and held in memory by
//! moka, weighed in bytes. It knows nothing of what it caches (the JS and native caches are
//! built by `app::symbolicate`) and nothing of HTTP.
//!
//! A cache key names everything the bytes derive from: the kind, the format version of the
//! builder and the SHA-256 of every input. So a cache can never be stale: a re-upload with
//! other content has another key. Concurrent misses for one key build it once (moka's
//! `try_get_with` coalesces them). Builds run on the blocking pool, bounded by
//! `cache.build_workers`.
//!
//! Files on disk are written to a temporary name and renamed, then memory-mapped. Eviction
//! unlinks files; a mapping still in use stays valid until dropped.

use std::any::Any;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::Semaphore;

mod disk;

use crate::config::{cache_weight, Config, MemoryShare};
use crate::ingest::Mapped;
use disk::Disk;

/// Bytes of one derived cache: memory-mapped from disk (without its trailer), or owned.
pub struct CacheBytes {
    bytes: Mapped,
    len: usize,
}

impl std::ops::Deref for CacheBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// Why a derived cache could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// The inputs cannot be indexed (malformed, over a limit). Remembered: the inputs are
    /// content-addressed, so the same inputs fail the same way until the builder's format
    /// version changes.
    Invalid(Arc<str>),
    /// The inputs could not be read (store or local I/O). Not remembered: the next request
    /// tries again.
    Unavailable(Arc<str>),
}

impl BuildError {
    pub fn invalid(e: impl std::fmt::Display) -> Self {
        BuildError::Invalid(Arc::from(e.to_string()))
    }
    pub fn unavailable(e: impl std::fmt::Display) -> Self {
        BuildError::Unavailable(Arc::from(e.to_string()))
    }
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Invalid(m) => f.write_str(m),
            BuildError::Unavailable(m) => write!(f, "inputs could not be read: {m}"),
        }
    }
}

/// A build's outcome.
pub type Built = Result<Arc<CacheBytes>, BuildError>;

/// A derived value of any type and its weight in bytes.
type Derived = (Arc<dyn Any + Send + Sync>, u32);

pub struct Caches {
    disk: Arc<Disk>,
    memory: moka::future::Cache<String, Built>,
    /// Values derived from a stored file once and then looked up (e.g. every source of a
    /// source bundle), each with the weight its loader reported.
    derived: moka::future::Cache<String, Option<Derived>>,
    /// Whole text files (minified sources, original sources) for source context.
    texts: moka::future::Cache<String, Option<Arc<Text>>>,
    builders: Arc<Semaphore>,
    /// With `cache.shared`: the store, where built caches are also kept (`caches/{key}`).
    shared: Option<crate::store::Store>,
}

/// Caches whose key names all their inputs by content hash (and the format version), so the
/// same key means the same bytes on every replica. Symbol-source answers (`source/…`) are not:
/// what a source serves can change.
fn shareable(key: &str) -> bool {
    ["js/", "native/", "cfi/"]
        .iter()
        .any(|p| key.starts_with(p))
}

fn shared_path(key: &str) -> object_store::path::Path {
    object_store::path::Path::from(format!("caches/{key}"))
}

impl Caches {
    pub fn new(config: &Config) -> Caches {
        let share = |s| config.cache.memory_for(s);
        Caches {
            disk: Arc::new(Disk::new(config.cache_dir(), config.cache.disk_quota)),
            memory: moka::future::Cache::builder()
                .max_capacity(share(MemoryShare::CacheFiles))
                .weigher(|k: &String, v: &Built| {
                    let size = match v {
                        // The `CacheBytes` and its `Arc` beside the bytes.
                        Ok(b) => b.len() + 64,
                        Err(e) => e.to_string().len(),
                    };
                    cache_weight(size + k.len())
                })
                .build(),
            derived: moka::future::Cache::builder()
                .max_capacity(share(MemoryShare::Derived))
                .weigher(|k: &String, v: &Option<Derived>| {
                    cache_weight(k.len()).saturating_add(v.as_ref().map_or(0, |(_, w)| *w))
                })
                .build(),
            texts: moka::future::Cache::builder()
                .max_capacity(share(MemoryShare::Texts))
                .weigher(|k: &String, v: &Option<Arc<Text>>| {
                    cache_weight(
                        v.as_ref().map_or(0, |t| t.text.len() + t.lines.weight()) + k.len(),
                    )
                })
                .build(),
            builders: Arc::new(Semaphore::new(config.cache.build_workers)),
            shared: None,
        }
    }

    /// Keeps built caches in `store` too, and looks there before building (`cache.shared`).
    pub fn share_through(mut self, store: crate::store::Store) -> Caches {
        self.shared = Some(store);
        self
    }

    /// A shared cache from the store, checked against the SHA-256 stored after it.
    async fn load_shared(&self, key: &str) -> Option<Vec<u8>> {
        use sha2::Digest;
        let store = self.shared.as_ref().filter(|_| shareable(key))?;
        let bytes = match store.get_bytes(&shared_path(key)).await {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, key, "shared cache unreadable; building");
                return None;
            }
        };
        let split = bytes.len().checked_sub(32)?;
        let (data, digest) = bytes.split_at(split);
        if sha2::Sha256::digest(data).as_slice() != digest {
            tracing::warn!(key, "shared cache damaged; building");
            return None;
        }
        Some(data.to_vec())
    }

    /// Puts a built cache in the store, in the background (best effort: a replica that
    /// cannot share still serves).
    fn share(&self, key: &str, data: &[u8]) {
        use sha2::Digest;
        let Some(store) = self.shared.clone().filter(|_| shareable(key)) else {
            return;
        };
        let mut bytes = data.to_vec();
        bytes.extend_from_slice(&sha2::Sha256::digest(data));
        let key = key.to_owned();
        tokio::spawn(async move {
            if let Err(e) = store.put_bytes(&shared_path(&key), bytes).await {
                tracing::warn!(error = %e, key, "cannot share cache");
            }
        });
    }

    /// The cache for `key` if it is in memory now (no disk read, no build).
    pub async fn in_memory(&self, key: &str) -> Option<Arc<CacheBytes>> {
        match self.memory.get(key).await {
            Some(Ok(bytes)) => Some(bytes),
            _ => None,
        }
    }

    /// Returns the cache for `key`, from memory, else from disk, else by running `build`
    /// (at most `build_workers` at a time; concurrent callers for one key share one build).
    pub async fn get_or_build<F, Fut>(&self, key: String, build: F) -> Built
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<u8>, BuildError>>,
    {
        let m = crate::metrics::global();
        let kind = cache_kind(&key);
        if let Some(hit) = self.memory.get(&key).await {
            m.cache_lookups
                .get_or_create(&crate::metrics::CacheLabels {
                    cache: kind,
                    result: "memory",
                })
                .inc();
            return hit;
        }
        let outcome = self
            .memory
            .try_get_with(key.clone(), async {
                let opened = {
                    let (disk, key) = (self.disk.clone(), key.clone());
                    tokio::task::spawn_blocking(move || disk.open(&key)).await
                };
                if let Ok(Some((bytes, len))) = opened {
                    m.cache_lookups
                        .get_or_create(&crate::metrics::CacheLabels {
                            cache: kind,
                            result: "disk",
                        })
                        .inc();
                    return Ok(Ok(Arc::new(CacheBytes { bytes, len })));
                }
                if let Some(bytes) = self.load_shared(&key).await {
                    m.cache_lookups
                        .get_or_create(&crate::metrics::CacheLabels {
                            cache: kind,
                            result: "shared",
                        })
                        .inc();
                    let (disk, key) = (self.disk.clone(), key.clone());
                    let cached =
                        tokio::task::spawn_blocking(move || match disk.store(&key, &bytes) {
                            Ok((bytes, len)) => CacheBytes { bytes, len },
                            Err(_) => {
                                let len = bytes.len();
                                CacheBytes {
                                    bytes: Mapped::owned(bytes),
                                    len,
                                }
                            }
                        })
                        .await
                        .map_err(|e| Arc::<str>::from(e.to_string()))?;
                    return Ok(Ok(Arc::new(cached)));
                }
                let _permit = self.builders.acquire().await;
                m.cache_lookups
                    .get_or_create(&crate::metrics::CacheLabels {
                        cache: kind,
                        result: "built",
                    })
                    .inc();
                m.cache_builds
                    .get_or_create(&crate::metrics::KindLabel { kind })
                    .inc();
                let started = std::time::Instant::now();
                let bytes = match build().await {
                    Ok(bytes) => bytes,
                    Err(BuildError::Unavailable(e)) => return Err(e),
                    Err(invalid) => return Ok(Err(invalid)),
                };
                tracing::debug!(
                    key,
                    size = bytes.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "built cache"
                );
                crate::crash::point("cache:built");
                self.share(&key, &bytes);
                let (disk, key) = (self.disk.clone(), key.clone());
                let cached = tokio::task::spawn_blocking(move || {
                    match disk.store(&key, &bytes) {
                        Ok((bytes, len)) => CacheBytes { bytes, len },
                        Err(e) => {
                            // A full or read-only disk must not stop lookups: keep it in
                            // memory.
                            tracing::warn!(error = %e, key, "cannot write cache file");
                            let len = bytes.len();
                            CacheBytes {
                                bytes: Mapped::owned(bytes),
                                len,
                            }
                        }
                    }
                })
                .await
                .map_err(|e| Arc::<str>::from(e.to_string()))?;
                Ok::<Built, Arc<str>>(Ok(Arc::new(cached)))
            })
            .await;
        // Unavailable inputs are not cached (moka keeps no entry for an error).
        outcome.unwrap_or_else(|e| Err(BuildError::Unavailable(Arc::from(e.to_string()))))
    }

    /// Keeps the disk cache under its quota (least recently used files go first). Runs on
    /// the blocking pool.
    pub async fn enforce_quota(&self) {
        let disk = self.disk.clone();
        let _ = tokio::task::spawn_blocking(move || disk.enforce_quota()).await;
    }

    /// Publishes cache sizes to the metrics registry.
    pub fn report_sizes(&self) {
        let m = crate::metrics::global();
        crate::metrics::report_cache_memory("cache_files", self.memory.weighted_size());
        crate::metrics::report_cache_memory("derived", self.derived.weighted_size());
        crate::metrics::report_cache_memory("texts", self.texts.weighted_size());
        m.cache_disk_bytes
            .set(self.disk.bytes.load(Ordering::Relaxed).min(i64::MAX as u64) as i64);
    }

    /// A value derived once from stored files, by a key the caller chooses (prefix it by
    /// what it is), loaded by `load` on a miss (concurrent misses share one load). `load`
    /// returns the value and its weight in bytes; `None` (nothing there) is remembered too.
    pub async fn derived<T, F>(&self, key: String, load: F) -> Option<Arc<T>>
    where
        T: Send + Sync + 'static,
        F: std::future::Future<Output = Option<(T, usize)>>,
    {
        let value = self
            .derived
            .get_with(key, async move {
                load.await.map(|(v, weight)| {
                    let v: Arc<dyn Any + Send + Sync> = Arc::new(v);
                    (v, weight.min(u32::MAX as usize) as u32)
                })
            })
            .await?;
        value.0.downcast::<T>().ok()
    }

    /// A text file for source context, by a key the caller chooses, loaded by `load` on a
    /// miss (concurrent misses share one load; `load` builds the [`Text`] off the async
    /// threads) and cached in memory with its line index.
    /// `None` (nothing to load) is cached too, until evicted.
    pub async fn text<F>(&self, key: String, load: F) -> Option<Arc<Text>>
    where
        F: std::future::Future<Output = Option<Text>>,
    {
        self.texts
            .get_with(key, async move { load.await.map(Arc::new) })
            .await
    }
}

/// A text file held for source context, with its line index.
pub struct Text {
    pub text: String,
    pub lines: crate::js::LineIndex,
}

impl Text {
    pub fn new(text: String) -> Text {
        let lines = crate::js::LineIndex::new(&text);
        Text { text, lines }
    }

    pub fn context(&self, line: u32, column: u32) -> Option<crate::js::SourceContext> {
        self.lines.context(&self.text, line, column, 5)
    }

    /// Why a 0-based (line, UTF-16 column) cannot be a position in this text, if it cannot:
    /// the line is past the end, or the column past the end of its line.
    pub fn position_problem(&self, line: u32, column: u32) -> Option<String> {
        let Some(len) = self.lines.line_len_utf16(&self.text, line as usize) else {
            return Some(format!(
                "the file has {} lines, so line {} does not exist",
                self.lines.line_count(),
                u64::from(line) + 1
            ));
        };
        (column as usize >= len.max(1)).then(|| {
            format!(
                "line {} has {len} characters, so column {} is past its end",
                u64::from(line) + 1,
                u64::from(column) + 1
            )
        })
    }
}

fn cache_kind(key: &str) -> &'static str {
    if key.starts_with("js") {
        "sourcemap"
    } else if key.starts_with("native") {
        "symcache"
    } else if key.starts_with("cfi") {
        "cfi"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests;
