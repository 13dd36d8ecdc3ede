//! In-memory views of the store that lookups need: a release's URL index (the merge of its
//! upload manifests, newest upload wins per URL) and the uploads behind a debug ID or code ID.
//!
//! Freshness: every view is keyed by the project's *generation*, a counter this node bumps
//! on every upload or delete it takes, so its own changes take effect on the next request.
//! Other replicas see them after at most `cache.index_ttl`. Manifests are immutable, so they
//! are cached without expiry (weighed by size, evicted by LRU).

use std::collections::HashMap;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use parking_lot::Mutex;

use crate::config::{cache_weight, CacheConfig, MemoryShare};
use crate::store::{ArtifactEntry, Store, StoreError, UploadId, UploadManifest};
use crate::types::{ArtifactUrl, Dist, ProjectId, Release};

/// One artifact as a release's index sees it.
#[derive(Debug, Clone)]
pub struct IndexedArtifact {
    pub entry: ArtifactEntry,
    pub upload: UploadId,
    pub dist: Option<Dist>,
}

/// The URL index of one release: newest upload wins per (dist, URL).
#[derive(Debug, Default)]
pub struct ReleaseIndex {
    pub files: HashMap<(Option<Dist>, ArtifactUrl), IndexedArtifact>,
    pub uploads: usize,
}

impl ReleaseIndex {
    pub fn get(&self, dist: Option<&Dist>, url: &str) -> Option<&IndexedArtifact> {
        let url = ArtifactUrl::parse(url).ok()?;
        self.files.get(&(dist.cloned(), url))
    }

    /// URLs in this release (any dist) whose file name equals `name`: for diagnostics.
    pub fn similar_urls(&self, name: &str, limit: usize) -> Vec<String> {
        let mut v: Vec<String> = self
            .files
            .keys()
            .filter(|(_, u)| u.as_str().rsplit('/').next() == Some(name))
            .map(|(d, u)| match d {
                Some(d) => format!("{u} (dist {d})"),
                None => u.to_string(),
            })
            .collect();
        v.sort();
        v.truncate(limit);
        v
    }

    /// Bytes this index holds, roughly: per file its hash-table slot (key and value, one
    /// control byte) and the strings it owns.
    fn heap_size(&self) -> usize {
        let slot = std::mem::size_of::<(Option<Dist>, ArtifactUrl)>()
            + std::mem::size_of::<IndexedArtifact>()
            + 1;
        std::mem::size_of::<Self>()
            + self.files.capacity() * slot
            + self
                .files
                .iter()
                .map(|((d, u), a)| {
                    d.as_ref().map_or(0, |d| d.as_str().len()) * 2
                        + u.as_str().len()
                        + a.entry.heap_size()
                        - std::mem::size_of::<ArtifactEntry>()
                })
                .sum::<usize>()
    }

    fn build(manifests: &[Arc<UploadManifest>]) -> ReleaseIndex {
        let mut files = HashMap::new();
        for m in manifests {
            for url in &m.deleted_urls {
                files.remove(&(m.dist.clone(), url.clone()));
            }
            for a in &m.artifacts {
                files.insert(
                    (m.dist.clone(), a.url.clone()),
                    IndexedArtifact {
                        entry: a.clone(),
                        upload: m.id,
                        dist: m.dist.clone(),
                    },
                );
            }
        }
        ReleaseIndex {
            files,
            uploads: manifests.len(),
        }
    }
}

pub struct Index {
    store: Store,
    generations: Mutex<HashMap<ProjectId, u64>>,
    manifests: moka::future::Cache<(ProjectId, UploadId), Arc<UploadManifest>>,
    releases: moka::future::Cache<(ProjectId, Release, u64), Arc<ReleaseIndex>>,
    pointers: moka::future::Cache<(String, u64), Arc<Vec<Arc<UploadManifest>>>>,
}

impl Index {
    pub fn new(store: Store, config: &CacheConfig) -> Index {
        let ttl = config.index_ttl;
        Index {
            store,
            generations: Mutex::new(HashMap::new()),
            manifests: moka::future::Cache::builder()
                .max_capacity(config.memory_for(MemoryShare::Manifests))
                .weigher(|(p, _): &(ProjectId, UploadId), m: &Arc<UploadManifest>| {
                    cache_weight(p.as_str().len() + m.heap_size())
                })
                .build(),
            releases: moka::future::Cache::builder()
                .max_capacity(config.memory_for(MemoryShare::ReleaseIndexes))
                .weigher(
                    |(p, r, _): &(ProjectId, Release, u64), i: &Arc<ReleaseIndex>| {
                        cache_weight(p.as_str().len() + r.as_str().len() + i.heap_size())
                    },
                )
                .time_to_live(ttl)
                .build(),
            // Keyed by client-chosen IDs; the manifests listed are counted whole (the
            // manifest cache may have dropped them while this list keeps them).
            pointers: moka::future::Cache::builder()
                .max_capacity(config.memory_for(MemoryShare::Pointers))
                .weigher(|k: &(String, u64), v: &Arc<Vec<Arc<UploadManifest>>>| {
                    cache_weight(
                        k.0.len() + 32 + v.iter().map(|m| 8 + m.heap_size()).sum::<usize>(),
                    )
                })
                .time_to_live(ttl)
                .build(),
        }
    }

    /// Publishes the index caches' sizes to the metrics registry.
    pub fn report_sizes(&self) {
        crate::metrics::report_cache_memory("manifests", self.manifests.weighted_size());
        crate::metrics::report_cache_memory("release_indexes", self.releases.weighted_size());
        crate::metrics::report_cache_memory("pointers", self.pointers.weighted_size());
    }

    /// The project's generation: bumped by every write this node takes.
    pub fn generation(&self, project: &ProjectId) -> u64 {
        *self.generations.lock().get(project).unwrap_or(&0)
    }

    /// Call after any write to a project: the next lookup re-reads the store.
    pub fn invalidate(&self, project: &ProjectId) {
        *self.generations.lock().entry(project.clone()).or_insert(0) += 1;
    }

    pub async fn manifest(
        &self,
        project: &ProjectId,
        id: UploadId,
    ) -> Result<Option<Arc<UploadManifest>>, StoreError> {
        if let Some(m) = self.manifests.get(&(project.clone(), id)).await {
            return Ok(Some(m));
        }
        let Some(m) = self.store.load_manifest(project, &id).await? else {
            return Ok(None);
        };
        let m = Arc::new(m);
        self.manifests
            .insert((project.clone(), id), m.clone())
            .await;
        Ok(Some(m))
    }

    /// Loads the manifests of the uploads a pointer prefix names, oldest first, skipping
    /// dangling pointers (uploads not committed, or deleted).
    async fn manifests_at(
        &self,
        project: &ProjectId,
        prefix: &object_store::path::Path,
    ) -> Result<Vec<Arc<UploadManifest>>, StoreError> {
        let ids = self.store.pointer_ids(prefix).await?;
        let loaded: Vec<Option<Arc<UploadManifest>>> = futures::stream::iter(ids)
            .map(|id| self.manifest(project, id))
            .buffered(16)
            .try_collect()
            .await?;
        Ok(loaded.into_iter().flatten().collect())
    }

    pub async fn release(
        &self,
        project: &ProjectId,
        release: &Release,
    ) -> Result<Arc<ReleaseIndex>, StoreError> {
        let key = (project.clone(), release.clone(), self.generation(project));
        self.releases
            .try_get_with(key, async {
                let manifests = self
                    .manifests_at(project, &Store::release_prefix(project, release))
                    .await?;
                Ok::<_, StoreError>(Arc::new(ReleaseIndex::build(&manifests)))
            })
            .await
            .map_err(unshare)
    }

    /// Uploads holding a file with this debug ID, oldest first.
    pub async fn by_debug_id(
        &self,
        project: &ProjectId,
        debug_id: &debugid::DebugId,
    ) -> Result<Arc<Vec<Arc<UploadManifest>>>, StoreError> {
        let prefix = Store::debug_id_prefix(project, debug_id);
        self.cached_pointers(project, prefix).await
    }

    /// Uploads holding a debug file with this code ID, oldest first.
    pub async fn by_code_id(
        &self,
        project: &ProjectId,
        code_id: &debugid::CodeId,
    ) -> Result<Arc<Vec<Arc<UploadManifest>>>, StoreError> {
        let prefix = Store::code_id_prefix(project, code_id);
        self.cached_pointers(project, prefix).await
    }

    async fn cached_pointers(
        &self,
        project: &ProjectId,
        prefix: object_store::path::Path,
    ) -> Result<Arc<Vec<Arc<UploadManifest>>>, StoreError> {
        let key = (prefix.to_string(), self.generation(project));
        self.pointers
            .try_get_with(key, async {
                Ok::<_, StoreError>(Arc::new(self.manifests_at(project, &prefix).await?))
            })
            .await
            .map_err(unshare)
    }
}

/// moka shares one error among all waiters; give each an owned copy.
fn unshare(e: Arc<StoreError>) -> StoreError {
    match Arc::try_unwrap(e) {
        Ok(e) => e,
        Err(shared) => StoreError::Shared(shared.to_string()),
    }
}
