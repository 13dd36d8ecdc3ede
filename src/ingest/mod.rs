//! Upload processing: receive bodies into hashed temporary files, take zips apart safely,
//! classify and validate every file, and describe it for the manifest.
//!
//! Bodies are streamed to disk under `{data_dir}/tmp` while hashed and counted; they are
//! never held in memory whole. Validation reads them through `mmap`. Nothing here writes to
//! the store: the caller stores blobs and commits the manifest only once every file of an
//! upload passed, so a rejected upload leaves nothing visible.

pub mod js;
pub mod native;
pub mod zip;

use std::io::Write;
use std::path::{Path, PathBuf};

use futures::{Stream, StreamExt};
use sha2::Digest;

use crate::error::{ApiError, ErrorCode};
use crate::types::Sha256;

/// Why an upload was rejected. Each variant has a stable code (see [`IngestError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("source map {name} does not parse: {message}")]
    SourceMapMalformed { name: String, message: String },
    #[error("{name} is not a known debug file format (ELF, Mach-O, PE, PDB, Portable PDB, Breakpad, WASM, source bundle, split DWARF)")]
    UnknownDebugFormat { name: String },
    #[error("{name} is a {format} file but it is malformed: {message}")]
    MalformedDebugFile {
        name: String,
        format: &'static str,
        message: String,
    },
    #[error("{name} has no usable debug ID (no build ID, UUID or PDB signature)")]
    MissingDebugId { name: String },
    #[error("the upload contains no debug files")]
    NoDebugFiles,
    #[error("not a valid zip archive: {0}")]
    ZipInvalid(String),
    #[error("zip entry {name:?} escapes the archive root (absolute path, '..' or link)")]
    ZipUnsafePath { name: String },
    #[error("zip has more than {limit} entries")]
    ZipTooManyEntries { limit: usize },
    #[error("zip entries inflate past the limit of {limit} bytes")]
    ZipInflatedTooLarge { limit: u64 },
    #[error("bundle manifest.json is invalid: {0}")]
    ManifestInvalid(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the upload contains no files")]
    Empty,
    #[error("upload body could not be read: {0}")]
    Body(String),
    #[error("local I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl IngestError {
    pub fn code(&self) -> ErrorCode {
        match self {
            IngestError::TooLarge { .. } => ErrorCode::TooLarge,
            IngestError::SourceMapMalformed { .. } => ErrorCode::SourcemapMalformed,
            IngestError::UnknownDebugFormat { .. } => ErrorCode::UnknownDebugFormat,
            IngestError::MalformedDebugFile { .. } => ErrorCode::DebugFileMalformed,
            IngestError::MissingDebugId { .. } => ErrorCode::DebugIdMissing,
            IngestError::NoDebugFiles => ErrorCode::NoDebugFiles,
            IngestError::ZipInvalid(_) => ErrorCode::ZipInvalid,
            IngestError::ZipUnsafePath { .. } => ErrorCode::ZipUnsafePath,
            IngestError::ZipTooManyEntries { .. } => ErrorCode::ZipTooManyEntries,
            IngestError::ZipInflatedTooLarge { .. } => ErrorCode::ZipTooLarge,
            IngestError::ManifestInvalid(_) => ErrorCode::BundleManifestInvalid,
            IngestError::Invalid(_) => ErrorCode::InvalidUpload,
            IngestError::Empty => ErrorCode::EmptyUpload,
            IngestError::Body(_) => ErrorCode::BodyUnreadable,
            IngestError::Io(_) => ErrorCode::Internal,
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

/// The SHA-256 of a local file, streamed (blocking: call it off the async threads).
pub fn sha256_of_file(path: &Path) -> std::io::Result<Sha256> {
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(Sha256::from_digest(&hasher.finalize()))
}

/// A received file on local disk, deleted when dropped.
#[derive(Debug)]
pub struct TempFile {
    pub path: tempfile::TempPath,
    pub sha256: Sha256,
    pub size: u64,
}

impl TempFile {
    /// Maps the file read-only. An empty file maps to an empty slice.
    pub fn map(&self) -> std::io::Result<Mapped> {
        Mapped::open(&self.path)
    }
}

/// Read-only bytes: a memory map of a file, or owned bytes (an empty file cannot be mapped).
pub struct Mapped(MappedInner);

/// Files at least this large are memory-mapped; smaller ones are read into memory.
const MAP_AT_LEAST: u64 = 256 << 10;

enum MappedInner {
    Map(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Mapped {
    pub fn open(path: &Path) -> std::io::Result<Mapped> {
        use std::io::Read;
        let mut file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        // Small files are read, not mapped: every mapping is one of the process's limited
        // memory maps (`vm.max_map_count`, 65530 by default), and thousands of small cached
        // files must not use them up (threads need maps too).
        if len < MAP_AT_LEAST {
            let mut bytes = Vec::with_capacity(len as usize);
            file.read_to_end(&mut bytes)?;
            return Ok(Mapped(MappedInner::Owned(bytes)));
        }
        // SAFETY: the files we map are our own temporary or cache files, written completely
        // (and renamed into place) before they are mapped, and never modified afterwards.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Mapped(MappedInner::Map(map)))
    }

    pub fn owned(bytes: Vec<u8>) -> Mapped {
        Mapped(MappedInner::Owned(bytes))
    }
}

impl std::ops::Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            MappedInner::Map(m) => m,
            MappedInner::Owned(v) => v,
        }
    }
}

/// Writes to a temporary file while hashing and counting, refusing to go past `limit`.
pub struct HashingWriter {
    file: std::io::BufWriter<tempfile::NamedTempFile>,
    hasher: sha2::Sha256,
    size: u64,
    limit: u64,
    what: String,
}

impl HashingWriter {
    pub fn new(tmp_dir: &Path, limit: u64, what: impl Into<String>) -> std::io::Result<Self> {
        std::fs::create_dir_all(tmp_dir)?;
        Ok(HashingWriter {
            file: std::io::BufWriter::with_capacity(
                256 << 10,
                tempfile::NamedTempFile::new_in(tmp_dir)?,
            ),
            hasher: sha2::Sha256::new(),
            size: 0,
            limit,
            what: what.into(),
        })
    }

    pub fn push(&mut self, data: &[u8]) -> Result<(), IngestError> {
        self.size += data.len() as u64;
        if self.size > self.limit {
            return Err(IngestError::TooLarge {
                what: std::mem::take(&mut self.what),
                limit: self.limit,
            });
        }
        self.hasher.update(data);
        self.file.write_all(data)?;
        Ok(())
    }

    pub fn finish(self) -> Result<TempFile, IngestError> {
        let file = self
            .file
            .into_inner()
            .map_err(|e| IngestError::Io(e.into_error()))?;
        Ok(TempFile {
            path: file.into_temp_path(),
            sha256: Sha256::from_digest(&self.hasher.finalize()),
            size: self.size,
        })
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.push(buf).map_err(|e| match e {
            IngestError::Io(io) => io,
            other => std::io::Error::other(other),
        })?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Receives a byte stream into a temporary file. Disk writes happen on the async thread in
/// 256 KiB buffered batches; that is cheaper than a hop to the blocking pool per chunk.
pub async fn receive<S, B, E>(
    mut stream: S,
    tmp_dir: &Path,
    limit: u64,
    what: &str,
) -> Result<TempFile, IngestError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    let mut writer = HashingWriter::new(tmp_dir, limit, what)?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| body_error(e.to_string(), what, limit))?;
        writer.push(chunk.as_ref())?;
    }
    crate::metrics::global().upload_bytes.inc_by(writer.size);
    writer.finish()
}

/// axum reports a body over `DefaultBodyLimit` as a read error; turn it into a 413.
fn body_error(message: String, what: &str, limit: u64) -> IngestError {
    if message.contains("length limit") || message.contains("too large") {
        IngestError::TooLarge {
            what: what.to_owned(),
            limit,
        }
    } else {
        IngestError::Body(message)
    }
}

/// A file of an upload, received and waiting for classification.
#[derive(Debug)]
pub struct Received {
    /// Name as given (multipart filename or path in a zip).
    pub name: String,
    pub file: TempFile,
}

/// Makes a safe relative path out of a client-given name: `/`-separated, no empty, `.` or
/// `..` components, no backslashes, no drive letters. `None` when it cannot be made safe.
pub fn safe_relative_path(name: &str) -> Option<String> {
    if name.starts_with('/') || name.contains('\\') || name.contains('\0') {
        return None;
    }
    if name.len() >= 2 && name.as_bytes()[1] == b':' {
        return None;
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => continue,
            ".." => return None,
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    }
}

pub fn file_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

pub(crate) fn tmp_path(dir: &Path) -> PathBuf {
    dir.join(format!("{}.tmp", ulid::Ulid::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(safe_relative_path("a/./b.js").as_deref(), Some("a/b.js"));
        for bad in ["/etc/passwd", "../x", "a/../../x", "C:/x", "a\\b", ""] {
            assert_eq!(safe_relative_path(bad), None, "{bad}");
        }
    }
}
