//! sentry-cli chunks: pieces of a file, content-addressed by SHA-1, kept until the file they
//! belong to is assembled and then until they expire. Stored like everything else, so a
//! restart or another replica finds them.

use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path;

use super::{cutoff, Store, StoreError};

/// How long chunks are kept (as sentry-cli expects: it may upload chunks and assemble them
/// much later). Sweeps never remove younger chunks, whatever their grace period.
pub const CHUNK_TTL: Duration = Duration::from_secs(24 * 3600);

/// The key of a chunk. `sha1` must be 40 lowercase hex digits (checked by the caller).
fn chunk_key(sha1: &str) -> Path {
    let fan_out = sha1.get(..2).unwrap_or("00");
    Path::from_iter(["chunks", "sha1", fan_out, sha1])
}

impl Store {
    pub async fn has_chunk(&self, sha1: &str) -> Result<bool, StoreError> {
        self.exists(&chunk_key(sha1)).await
    }

    /// Stores a verified chunk (a duplicate is a no-op: the content is the same).
    pub async fn put_chunk(&self, sha1: &str, data: Bytes) -> Result<(), StoreError> {
        let key = chunk_key(sha1);
        if self.exists(&key).await? {
            return Ok(());
        }
        self.put_bytes(&key, data).await
    }

    pub async fn get_chunk(&self, sha1: &str) -> Result<Option<Bytes>, StoreError> {
        self.get_bytes(&chunk_key(sha1)).await
    }

    /// Deletes chunks older than `ttl`; returns how many.
    pub async fn expire_chunks(&self, ttl: Duration) -> Result<usize, StoreError> {
        let cutoff = cutoff(ttl);
        let mut deleted = 0;
        for meta in self.list(&Path::from_iter(["chunks", "sha1"])).await? {
            if meta.last_modified < cutoff {
                self.delete(&meta.location).await?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}
