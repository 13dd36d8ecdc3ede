//! Durable state: content-addressed blobs and immutable upload manifests, all through the
//! `object_store` crate so the same code runs on a local directory and on S3-compatible
//! storage.
//!
//! Layout (keys):
//! ```text
//! blobs/sha256/ab/abcdef…                         file contents, content-addressed
//! projects/{p}/uploads/{ulid}.json                 UploadManifest: the commit point of an upload
//! projects/{p}/releases/{release}/{ulid}           pointer: upload belongs to release
//! projects/{p}/debug-ids/{debug_id}/{ulid}         pointer: upload has a file with this debug ID
//! projects/{p}/code-ids/{code_id}/{ulid}           pointer: upload has a debug file with this code ID
//! chunks/sha1/ab/abcdef…                           sentry-cli chunks (expire)
//! sentry/assemble/{kind}/{sha1}/{sha1}.json        sentry-cli assemble state
//! sentry/releases/{p}/{version}/{ulid}.json        sentry-cli release metadata, newest wins
//! ```
//! Invariants:
//! - Nothing is ever overwritten with different content: blobs are keyed by their hash and
//!   manifests by a fresh ULID. So no write can damage what is stored.
//! - An upload becomes visible when its manifest is written, which happens last. Pointers
//!   written before it point at nothing until then, and readers skip them. A crash leaves at
//!   most unreferenced blobs and dangling pointers, which [`Store::sweep`] removes later.
//! - Object stores make each single write visible only once complete (the local backend
//!   writes to a staging file and renames).
//!
//! This module knows nothing of HTTP and does no symbolication.

mod chunks;
mod model;
mod sweep;

use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::{Path, PathPart};
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

pub use chunks::CHUNK_TTL;
pub use model::*;
pub use sweep::SweepReport;

use crate::config::Config;
use crate::error::{ApiError, ErrorCode};
use crate::types::{ProjectId, Release, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object store: {0}")]
    Backend(#[from] object_store::Error),
    #[error("local file: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored object {key} is corrupt: {message}")]
    Corrupt { key: String, message: String },
    #[error("{0}")]
    Shared(String),
    #[error("cannot open store {url}: {message}")]
    Open { url: String, message: String },
}

/// The moment `age` ago: objects last modified before it are older than `age`.
pub(crate) fn cutoff(age: std::time::Duration) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::zero())
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // The message names the backend's trouble for the operator's logs; clients get the
        // code and retry.
        ApiError::new(ErrorCode::StoreUnavailable, format!("storage error: {e}"))
    }
}

/// Handle to the durable store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    description: String,
    /// The local directory backend, kept to fsync what it writes: `LocalFileSystem`
    /// renames a staged file into place without syncing it.
    local: Option<Arc<object_store::local::LocalFileSystem>>,
}

/// Size of the parts streamed to the object store for large blobs.
const PART_SIZE: usize = 8 << 20;

impl Store {
    /// Opens the store the configuration names: `store.url`, or `{data_dir}/store`.
    pub fn open(config: &Config) -> Result<Store, StoreError> {
        match &config.store.url {
            None => {
                let dir = config.data_dir.join("store");
                std::fs::create_dir_all(&dir)?;
                Self::local(&dir)
            }
            Some(raw) if FsPath::new(raw).is_absolute() => {
                // An absolute path is a local directory, as `file:///…` is.
                let dir = FsPath::new(raw);
                std::fs::create_dir_all(dir)?;
                Self::local(dir)
            }
            Some(raw) => {
                let url = url::Url::parse(raw).map_err(|e| StoreError::Open {
                    url: raw.clone(),
                    message: match e {
                        url::ParseError::RelativeUrlWithoutBase => "neither a URL \
                            (s3://bucket/prefix, gs://…, az://…, file:///path) nor an absolute \
                            path to a local directory"
                            .into(),
                        other => other.to_string(),
                    },
                })?;
                if url.scheme() == "file" {
                    let dir = url.to_file_path().map_err(|_| StoreError::Open {
                        url: raw.clone(),
                        message: "not a local path".into(),
                    })?;
                    std::fs::create_dir_all(&dir)?;
                    return Self::local(&dir);
                }
                let options = config
                    .store
                    .options
                    .iter()
                    .map(|(k, v)| (k.clone(), v.0.clone()));
                let (store, prefix) =
                    object_store::parse_url_opts(&url, options).map_err(|e| StoreError::Open {
                        url: raw.clone(),
                        message: e.to_string(),
                    })?;
                let inner: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
                    Arc::from(store)
                } else {
                    Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
                };
                Ok(Store {
                    inner,
                    // Where the data is, prefix included; never credentials (no user info).
                    description: format!(
                        "{}://{}{}",
                        url.scheme(),
                        url.host_str().unwrap_or(""),
                        url.path().trim_end_matches('/')
                    ),
                    local: None,
                })
            }
        }
    }

    pub fn local(dir: &FsPath) -> Result<Store, StoreError> {
        let fs = Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(dir)?
                .with_automatic_cleanup(true),
        );
        Ok(Store {
            inner: fs.clone(),
            description: format!("local directory {}", dir.display()),
            local: Some(fs),
        })
    }

    /// A store in memory, for unit tests.
    #[cfg(test)]
    pub fn in_memory() -> Store {
        Store {
            inner: Arc::new(object_store::memory::InMemory::new()),
            description: "in-memory".into(),
            local: None,
        }
    }

    pub fn describe(&self) -> &str {
        &self.description
    }

    pub fn raw(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// Checks that the store answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let prefix = Path::from("projects");
        let mut stream = self.inner.list(Some(&prefix));
        if let Some(r) = stream.next().await {
            r?;
        }
        Ok(())
    }

    // ---- blobs -------------------------------------------------------------------------

    pub fn blob_key(sha: &Sha256) -> Path {
        let s = sha.as_str();
        Path::from_iter(["blobs", "sha256", &s[..2], s])
    }

    /// Where a sweep puts a blob no manifest referenced, before it is deleted for good (see
    /// `sweep`): `trash/sha256/ab/abcdef…`.
    pub(crate) fn trash_key_of(blob: &Path) -> Option<Path> {
        let mut parts = blob.parts();
        if parts.next()?.as_ref() != "blobs" {
            return None;
        }
        Some(Path::from_iter(
            std::iter::once(object_store::path::PathPart::from("trash")).chain(parts),
        ))
    }

    pub async fn exists(&self, key: &Path) -> Result<bool, StoreError> {
        match self.inner.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.count_error(e.into())),
        }
    }

    /// Stores the local file at `file` as the blob `sha` (its SHA-256, computed by the
    /// caller while receiving it). Skips the write when the blob exists. Streams in parts;
    /// never holds the whole file in memory. Returns whether a new blob was written.
    pub async fn put_blob_file(
        &self,
        sha: &Sha256,
        file: &FsPath,
        size: u64,
    ) -> Result<bool, StoreError> {
        let key = Self::blob_key(sha);
        if self.exists(&key).await? {
            return Ok(false);
        }
        self.put_file(&key, file, size).await?;
        crate::metrics::global().stored_bytes.inc_by(size);
        Ok(true)
    }

    /// Writes the local file to `key`, in one request when small, else as a multipart upload.
    pub async fn put_file(&self, key: &Path, file: &FsPath, size: u64) -> Result<(), StoreError> {
        let mut f = tokio::fs::File::open(file).await?;
        if size <= PART_SIZE as u64 {
            let mut buf = Vec::with_capacity(size as usize);
            f.read_to_end(&mut buf).await?;
            self.inner
                .put(key, PutPayload::from(buf))
                .await
                .map_err(|e| self.count_error(e.into()))?;
            return self.sync(key).await;
        }
        let upload = self
            .inner
            .put_multipart(key)
            .await
            .map_err(|e| self.count_error(e.into()))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            writer
                .wait_for_capacity(4)
                .await
                .map_err(|e| self.count_error(e.into()))?;
            writer.write(&buf[..n]);
        }
        writer
            .finish()
            .await
            .map_err(|e| self.count_error(e.into()))?;
        self.sync(key).await
    }

    /// An object's content. A blob a sweep quarantined is still read (from the trash).
    pub async fn get_bytes(&self, key: &Path) -> Result<Option<Bytes>, StoreError> {
        match self.get_or_trash(key).await {
            Ok(r) => Ok(Some(
                r.bytes().await.map_err(|e| self.count_error(e.into()))?,
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.count_error(e.into())),
        }
    }

    /// Streams a blob's content (for downloads).
    pub async fn get_stream(
        &self,
        key: &Path,
    ) -> Result<
        Option<(
            u64,
            futures::stream::BoxStream<'static, Result<Bytes, object_store::Error>>,
        )>,
        StoreError,
    > {
        match self.get_or_trash(key).await {
            Ok(r) => {
                let size = r.meta.size;
                Ok(Some((size, r.into_stream())))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.count_error(e.into())),
        }
    }

    /// `get`, falling back to the trash for a blob: an upload that found a blob present and
    /// committed a manifest after a sweep quarantined it reads it there until the next sweep
    /// restores it.
    async fn get_or_trash(
        &self,
        key: &Path,
    ) -> Result<object_store::GetResult, object_store::Error> {
        match self.inner.get(key).await {
            Err(object_store::Error::NotFound { .. }) => match Self::trash_key_of(key) {
                Some(trash) => self.inner.get(&trash).await,
                None => self.inner.get(key).await,
            },
            other => other,
        }
    }

    /// Moves an object (rename where the backend has one, else copy and delete).
    pub(crate) async fn rename(&self, from: &Path, to: &Path) -> Result<(), StoreError> {
        self.inner
            .rename(from, to)
            .await
            .map_err(|e| self.count_error(e.into()))
    }

    /// Copies a blob to a local file, streaming (for building derived caches from large
    /// debug files without holding them in memory). Writes to a temporary name in the same
    /// directory and renames, so `dest` is either absent or complete.
    pub async fn download_to(&self, key: &Path, dest: &FsPath) -> Result<bool, StoreError> {
        use tokio::io::AsyncWriteExt;
        let Some((_, mut stream)) = self.get_stream(key).await? else {
            return Ok(false);
        };
        let dir = dest.parent().unwrap_or(FsPath::new("."));
        tokio::fs::create_dir_all(dir).await?;
        let tmp = dir.join(format!(".{}.partial", ulid::Ulid::new()));
        let mut f = tokio::fs::File::create(&tmp).await?;
        let result: Result<(), StoreError> = async {
            while let Some(chunk) = stream.next().await {
                f.write_all(&chunk.map_err(|e| self.count_error(e.into()))?)
                    .await?;
            }
            f.flush().await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        tokio::fs::rename(&tmp, dest).await?;
        Ok(true)
    }

    // ---- small objects ---------------------------------------------------------------

    pub async fn put_bytes(&self, key: &Path, bytes: impl Into<Bytes>) -> Result<(), StoreError> {
        self.inner
            .put(key, PutPayload::from(bytes.into()))
            .await
            .map_err(|e| self.count_error(e.into()))?;
        self.sync(key).await
    }

    /// Makes a write durable before the caller goes on: on the local backend, fsyncs the
    /// file and its directory (object stores acknowledge only durable writes themselves).
    /// Every write goes through here, so a manifest, written last, is never on disk while
    /// a blob or pointer it needs is still only in the page cache.
    async fn sync(&self, key: &Path) -> Result<(), StoreError> {
        let Some(local) = &self.local else {
            return Ok(());
        };
        let path = local
            .path_to_filesystem(key)
            .map_err(|e| self.count_error(e.into()))?;
        tokio::task::spawn_blocking(move || {
            std::fs::File::open(&path)?.sync_all()?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok::<(), std::io::Error>(())
        })
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))??;
        Ok(())
    }

    pub async fn put_json<T: serde::Serialize>(
        &self,
        key: &Path,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
            key: key.to_string(),
            message: e.to_string(),
        })?;
        self.put_bytes(key, bytes).await
    }

    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &Path,
    ) -> Result<Option<T>, StoreError> {
        let Some(bytes) = self.get_bytes(key).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                key: key.to_string(),
                message: e.to_string(),
            })
    }

    pub async fn delete(&self, key: &Path) -> Result<(), StoreError> {
        match self.inner.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.count_error(e.into())),
        }
    }

    /// Every object below `prefix` (recursive).
    pub async fn list(&self, prefix: &Path) -> Result<Vec<object_store::ObjectMeta>, StoreError> {
        self.inner
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(|e| self.count_error(e.into()))
    }

    /// The decoded names of the "directories" directly below `prefix`.
    pub async fn list_dirs(&self, prefix: &Path) -> Result<Vec<String>, StoreError> {
        let result = self
            .inner
            .list_with_delimiter(Some(prefix))
            .await
            .map_err(|e| self.count_error(e.into()))?;
        Ok(result
            .common_prefixes
            .iter()
            .filter_map(|p| p.parts().last().map(|part| decode_part(&part)))
            .collect())
    }

    fn count_error(&self, e: StoreError) -> StoreError {
        crate::metrics::global().store_errors.inc();
        e
    }

    // ---- keys -------------------------------------------------------------------------

    pub fn project_prefix(project: &ProjectId) -> Path {
        Path::from_iter(["projects", project.as_str()])
    }

    pub fn manifest_key(project: &ProjectId, upload: &UploadId) -> Path {
        Self::project_prefix(project)
            .child("uploads")
            .child(format!("{upload}.json"))
    }

    pub fn releases_prefix(project: &ProjectId) -> Path {
        Self::project_prefix(project).child("releases")
    }

    pub fn release_prefix(project: &ProjectId, release: &Release) -> Path {
        Self::releases_prefix(project).child(PathPart::from(release.as_str()))
    }

    pub fn debug_id_prefix(project: &ProjectId, debug_id: &debugid::DebugId) -> Path {
        Self::project_prefix(project)
            .child("debug-ids")
            .child(debug_id.to_string().to_ascii_lowercase())
    }

    pub fn code_id_prefix(project: &ProjectId, code_id: &debugid::CodeId) -> Path {
        Self::project_prefix(project)
            .child("code-ids")
            .child(code_id.as_str().to_ascii_lowercase())
    }

    // ---- uploads ----------------------------------------------------------------------

    /// Publishes an upload whose blobs are already stored: pointers first, the manifest last.
    /// The upload is visible to readers from the moment the manifest exists.
    pub async fn commit_upload(&self, manifest: &UploadManifest) -> Result<(), StoreError> {
        let id = manifest.id.to_string();
        let pointers = manifest.pointer_keys();
        futures::stream::iter(pointers.into_iter().map(|prefix| {
            let key = prefix.child(id.as_str());
            async move { self.put_bytes(&key, Bytes::new()).await }
        }))
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
        crate::crash::point("upload:pointers");
        crate::crash::point("upload:before_manifest");
        self.put_json(
            &Self::manifest_key(&manifest.project, &manifest.id),
            manifest,
        )
        .await?;
        crate::crash::point("upload:after_manifest");
        Ok(())
    }

    pub async fn load_manifest(
        &self,
        project: &ProjectId,
        id: &UploadId,
    ) -> Result<Option<UploadManifest>, StoreError> {
        self.get_json(&Self::manifest_key(project, id)).await
    }

    /// The upload IDs a pointer prefix names (releases/{r}/, debug-ids/{id}/, …), oldest first.
    pub async fn pointer_ids(&self, prefix: &Path) -> Result<Vec<UploadId>, StoreError> {
        let mut ids: Vec<UploadId> = self
            .list(prefix)
            .await?
            .into_iter()
            .filter_map(|m| m.location.filename().and_then(|f| f.parse().ok()))
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Every release of a project that has at least one pointer.
    pub async fn list_releases(&self, project: &ProjectId) -> Result<Vec<String>, StoreError> {
        let mut releases = self.list_dirs(&Self::releases_prefix(project)).await?;
        releases.sort();
        Ok(releases)
    }

    /// Deletes the pointers of a release, and the debug-ID and code-ID pointers of its
    /// uploads, so nothing of it is found any more. Manifests and blobs are left to the sweep.
    pub async fn delete_release(
        &self,
        project: &ProjectId,
        release: &Release,
    ) -> Result<usize, StoreError> {
        let prefix = Self::release_prefix(project, release);
        let ids = self.pointer_ids(&prefix).await?;
        for id in &ids {
            if let Some(manifest) = self.load_manifest(project, id).await? {
                for p in manifest.pointer_keys() {
                    self.delete(&p.child(id.to_string())).await?;
                }
            }
            self.delete(&prefix.child(id.to_string())).await?;
        }
        Ok(ids.len())
    }

    /// Removes what no live upload references; see [`sweep`].
    /// `purge_after` must exceed the longest upload (`limits.upload_timeout`).
    pub async fn sweep(
        &self,
        grace: std::time::Duration,
        purge_after: std::time::Duration,
    ) -> Result<SweepReport, StoreError> {
        sweep::run(self, grace, purge_after).await
    }
}

fn decode_part(part: &PathPart<'_>) -> String {
    percent_encoding::percent_decode_str(part.as_ref())
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests;
