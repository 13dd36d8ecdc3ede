//! The stored records: upload manifests and what they list. Serialized as JSON; fields are
//! only ever added (with defaults), so older manifests keep reading.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use object_store::path::Path;
use serde::{Deserialize, Serialize};

use super::Store;
use crate::kinds::{ArtifactKind, DebugFileFormat, Features, ObjectKind};
use crate::types::{ArtifactUrl, Dist, ProjectId, Release, Sha256};

/// The ID of one upload: a ULID, so IDs sort by time and "newest wins" is a comparison.
///
/// Within a process IDs are strictly increasing (a monotonic generator: two uploads in the
/// same millisecond still order by arrival). Across replicas the order is the ULIDs' order:
/// the millisecond each replica's clock gave, then the random part; replicas should keep
/// their clocks in sync (NTP), and uploads of one URL less than the clock skew apart may
/// order either way, the same way on every replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UploadId(pub ulid::Ulid);

impl UploadId {
    pub fn new() -> Self {
        static GENERATOR: std::sync::OnceLock<parking_lot::Mutex<ulid::Generator>> =
            std::sync::OnceLock::new();
        let generator = GENERATOR.get_or_init(|| parking_lot::Mutex::new(ulid::Generator::new()));
        // The generator fails only when 2^80 IDs were made in one millisecond; then a fresh
        // ULID (next millisecond's) is still unique.
        let id = generator
            .lock()
            .generate()
            .unwrap_or_else(|_| ulid::Ulid::new());
        UploadId(id)
    }
}

impl Default for UploadId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for UploadId {
    type Err = ulid::DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(UploadId)
    }
}

/// How the files of an upload reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadSource {
    /// Multipart `POST …/releases/{r}/files`.
    Files,
    /// A zip: Sentry artifact bundle or a plain build directory.
    Bundle,
    /// Native debug files.
    DebugFiles,
    /// sentry-cli's chunked assemble.
    SentryCli,
    /// A deletion of single artifacts (tombstones only).
    Delete,
}

/// One upload: the commit point that makes its files visible.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadManifest {
    pub id: UploadId,
    pub project: ProjectId,
    #[serde(default)]
    pub release: Option<Release>,
    #[serde(default)]
    pub dist: Option<Dist>,
    /// RFC 3339.
    pub uploaded_at: String,
    pub source: UploadSource,
    #[serde(default)]
    pub artifacts: Vec<ArtifactEntry>,
    #[serde(default)]
    pub debug_files: Vec<DebugFileEntry>,
    /// URLs this upload removes from its release (newest wins, like any other entry).
    #[serde(default)]
    pub deleted_urls: Vec<ArtifactUrl>,
    /// Artifacts this upload removes from debug-ID lookups: older uploads' artifacts of that
    /// kind and debug ID are no longer found by it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted_debug_ids: Vec<DeletedDebugId>,
}

/// A tombstone for debug-ID lookups of one kind of artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedDebugId {
    pub debug_id: debugid::DebugId,
    pub kind: ArtifactKind,
}

impl UploadManifest {
    /// Bytes this manifest holds in memory (itself, its entries and their strings), roughly:
    /// what an in-memory cache weighs it by.
    pub fn heap_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.project.as_str().len()
            + self.release.as_ref().map_or(0, |r| r.as_str().len())
            + self.dist.as_ref().map_or(0, |d| d.as_str().len())
            + self.uploaded_at.len()
            + self
                .artifacts
                .iter()
                .map(ArtifactEntry::heap_size)
                .sum::<usize>()
            + self
                .debug_files
                .iter()
                .map(DebugFileEntry::heap_size)
                .sum::<usize>()
            + self
                .deleted_urls
                .iter()
                .map(|u| std::mem::size_of::<ArtifactUrl>() + u.as_str().len())
                .sum::<usize>()
            + self.deleted_debug_ids.len() * std::mem::size_of::<DeletedDebugId>()
    }

    pub fn new(project: ProjectId, source: UploadSource) -> Self {
        UploadManifest {
            id: UploadId::new(),
            project,
            release: None,
            dist: None,
            uploaded_at: now_rfc3339(),
            source,
            artifacts: Vec::new(),
            debug_files: Vec::new(),
            deleted_urls: Vec::new(),
            deleted_debug_ids: Vec::new(),
        }
    }

    /// The pointer prefixes under which this upload must be findable.
    pub fn pointer_keys(&self) -> Vec<Path> {
        let mut keys = Vec::new();
        if let Some(release) = &self.release {
            keys.push(Store::release_prefix(&self.project, release));
        }
        let mut debug_ids: Vec<_> = self
            .artifacts
            .iter()
            .filter_map(|a| a.debug_id)
            .chain(self.debug_files.iter().filter_map(|d| d.debug_id))
            .chain(self.deleted_debug_ids.iter().map(|d| d.debug_id))
            .collect();
        debug_ids.sort();
        debug_ids.dedup();
        keys.extend(
            debug_ids
                .iter()
                .map(|id| Store::debug_id_prefix(&self.project, id)),
        );
        let mut code_ids: Vec<_> = self
            .debug_files
            .iter()
            .filter_map(|d| d.code_id.clone())
            .collect();
        code_ids.sort();
        code_ids.dedup();
        keys.extend(
            code_ids
                .iter()
                .map(|id| Store::code_id_prefix(&self.project, id)),
        );
        keys
    }

    /// Every blob this manifest references.
    pub fn blobs(&self) -> impl Iterator<Item = &Sha256> {
        self.artifacts
            .iter()
            .map(|a| &a.sha256)
            .chain(self.debug_files.iter().map(|d| &d.sha256))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArtifactEntry {
    pub url: ArtifactUrl,
    pub kind: ArtifactKind,
    pub sha256: Sha256,
    pub size: u64,
    /// From `//# debugId=` or the map's `debugId`/`debug_id`, or the bundle header.
    #[serde(default)]
    pub debug_id: Option<debugid::DebugId>,
    /// The map reference of a minified file: header `Sourcemap`/`X-SourceMap`, else the last
    /// `//# sourceMappingURL=` comment, exactly as written (resolved at lookup time).
    #[serde(default)]
    pub sourcemap_ref: Option<String>,
    /// Headers as given by a bundle manifest, lowercase names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl ArtifactEntry {
    /// Bytes this entry holds (itself and its strings), roughly.
    pub fn heap_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.url.as_str().len()
            + self.sourcemap_ref.as_ref().map_or(0, String::len)
            // A B-tree node per few headers; count each pair with some node overhead.
            + self.headers.iter().map(|(k, v)| k.len() + v.len() + 64).sum::<usize>()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DebugFileEntry {
    /// The file name as uploaded (base name, or path inside a zip).
    pub name: String,
    pub sha256: Sha256,
    pub size: u64,
    pub format: DebugFileFormat,
    /// `exe`, `dbg`, `lib`, `rel`, `src`, …
    pub object_kind: ObjectKind,
    pub arch: String,
    pub debug_id: Option<debugid::DebugId>,
    pub code_id: Option<debugid::CodeId>,
    pub features: Features,
    /// For multi-object archives (fat Mach-O): which object of the file this is.
    #[serde(default)]
    pub object_index: usize,
    /// Split DWARF: the DWO IDs this unit or package provides (hex).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dwo_ids: Vec<String>,
}

impl DebugFileEntry {
    /// Bytes this entry holds (itself and its strings), roughly.
    pub fn heap_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.name.len()
            + self.arch.len()
            + self.code_id.as_ref().map_or(0, |c| c.as_str().len())
            + self.dwo_ids.iter().map(|d| 24 + d.len()).sum::<usize>()
    }
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
