//! The sentry-cli protocol's logic (`shared/specs/sentry-cli.md`), without HTTP: chunk
//! acceptance, the assemble state machine and release metadata. The handlers in
//! `http::sentry` unpack requests and authorise; everything that is stored goes through here
//! and ends in the same upload commit as our REST API (`app::uploads`).
//!
//! Tenancy: a Sentry *project slug* is a Tracemap project; the organisation slug is ignored
//! (one Tracemap deployment is one organisation).
//!
//! Storage (all through the store, so a restart or another replica finds it):
//! ```text
//! chunks/sha1/ab/abcdef…                           chunk contents, verified on receipt
//! sentry/assemble/{kind}/{sha1}/{sha1}.json        assemble state per checksum
//! sentry/releases/{project}/{version}/{ulid}.json  release metadata, newest wins
//! ```

pub mod assemble;
pub mod difs;
pub mod releases;

use bytes::Bytes;
use sha1::Digest;

use super::App;
use crate::error::{ApiError, ApiResult, ErrorCode};

/// Bytes per chunk we ask for (a power of two, as old clients require).
pub const CHUNK_SIZE: u64 = 8 << 20;
/// Chunks per upload request we advertise and accept.
pub const CHUNKS_PER_REQUEST: u64 = 64;
/// Bytes per chunk-upload request we advertise and accept.
pub const MAX_REQUEST_SIZE: u64 = 32 << 20;

/// What `GET …/chunk-upload/` advertises: sentry-cli sizes its requests by it.
pub fn chunk_options(app: &App, url: String) -> serde_json::Value {
    serde_json::json!({
        "url": url,
        "chunkSize": CHUNK_SIZE,
        "chunksPerRequest": CHUNKS_PER_REQUEST,
        "maxFileSize": app.config.limits.max_file_bytes,
        "maxRequestSize": MAX_REQUEST_SIZE,
        "concurrency": 8,
        "hashAlgorithm": "sha1",
        "compression": ["gzip"],
        "maxWait": 300,
        "accept": ["debug_files", "release_files", "pdbs", "sources", "bcsymbolmaps",
                   "il2cpp", "portablepdbs", "artifact_bundles", "artifact_bundles_v2"],
    })
}

/// A SHA-1 as sentry-cli writes it: 40 lowercase hex digits.
pub fn is_sha1(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

/// How a chunk part was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkEncoding {
    Raw,
    Gzip,
}

/// Counts what one chunk-upload request carried, against the advertised limits.
#[derive(Debug, Default)]
pub struct ChunkRequest {
    chunks: u64,
    bytes: u64,
}

impl ChunkRequest {
    /// Verifies one chunk (inflating a gzip part under the chunk size) and stores it.
    /// `name` is the SHA-1 of the uncompressed chunk, as the part's file name says.
    pub async fn accept(
        &mut self,
        app: &App,
        name: &str,
        encoding: ChunkEncoding,
        raw: Bytes,
    ) -> ApiResult<()> {
        let name = name.to_ascii_lowercase();
        if !is_sha1(&name) {
            return Err(invalid(format!("chunk name {name:?} is not a SHA-1")));
        }
        self.chunks += 1;
        if self.chunks > CHUNKS_PER_REQUEST {
            return Err(invalid("Too many chunks"));
        }
        // Inflating and hashing up to 8 MiB is CPU work: off the async threads.
        let (data, actual) = tokio::task::spawn_blocking(move || {
            let data = match encoding {
                ChunkEncoding::Gzip => Bytes::from(inflate_capped(&raw, CHUNK_SIZE)?),
                ChunkEncoding::Raw => raw,
            };
            if data.len() as u64 > CHUNK_SIZE {
                return Err(invalid("Chunk size too large"));
            }
            let actual = hex::encode(sha1::Sha1::digest(&data));
            Ok((data, actual))
        })
        .await
        .map_err(ApiError::internal)??;
        self.bytes += data.len() as u64;
        if self.bytes > MAX_REQUEST_SIZE {
            return Err(invalid("Request too large"));
        }
        if actual != name {
            return Err(invalid(format!(
                "chunk {name} does not match its content (SHA-1 {actual})"
            )));
        }
        // Duplicates (also within one request) are normal: the content is the same.
        app.store.put_chunk(&name, data).await?;
        Ok(())
    }
}

fn inflate_capped(data: &[u8], cap: u64) -> ApiResult<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(cap + 1)
        .read_to_end(&mut out)
        .map_err(|e| invalid(format!("chunk is not valid gzip: {e}")))?;
    if out.len() as u64 > cap {
        return Err(invalid("Chunk size too large"));
    }
    Ok(out)
}

/// Removes chunks past their time to live. Assemble states are small and kept.
pub async fn expire(app: &App) -> Result<usize, crate::store::StoreError> {
    app.store.expire_chunks(crate::store::CHUNK_TTL).await
}
