//! Uploads: receive → validate → commit. Every file of an upload is validated (by `ingest`)
//! before the first blob is written; the manifest is written last and is the commit point
//! (see `crate::store`), so a rejected or interrupted upload leaves nothing visible.
//!
//! - [`js`]: release files and bundles (minified sources, maps, originals).
//! - [`debug_files`]: native debug files, raw or zipped.
//! - [`catalog`]: listing, download and delete of what was committed.

pub mod catalog;
pub mod debug_files;
pub mod js;

use serde::Serialize;

use super::App;
use crate::error::ApiResult;
use crate::ingest::TempFile;
use crate::store::{ArtifactEntry, DebugFileEntry, UploadManifest};

/// A file ready to be stored: its temp file plus what the manifest says of it.
pub struct Prepared {
    pub file: TempFile,
    pub describe: Described,
}

pub enum Described {
    Artifact(ArtifactEntry),
    /// One file; several entries for a multi-object (fat) file.
    DebugFiles(Vec<DebugFileEntry>),
    /// An inline source map taken out of a minified file: stored, referenced by the
    /// minified file's `sourcemap_ref` `data:` marker through its own entry.
    Blob,
}

#[derive(Debug, Serialize)]
pub struct UploadResponse {
    pub upload_id: String,
    pub project: String,
    pub release: Option<String>,
    pub dist: Option<String>,
    pub artifacts: Vec<ArtifactView>,
    pub debug_files: Vec<DebugFileView>,
    /// Things that will not fail the upload but will surprise at lookup time.
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ArtifactView {
    pub url: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub sha256: String,
    pub size: u64,
    pub debug_id: Option<String>,
    pub sourcemap: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dist: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
}

impl ArtifactView {
    fn of(a: &ArtifactEntry) -> Self {
        ArtifactView {
            url: a.url.to_string(),
            kind: a.kind.as_str(),
            sha256: a.sha256.to_string(),
            size: a.size,
            debug_id: a.debug_id.map(|d| d.to_string()),
            sourcemap: a.sourcemap_ref.clone(),
            dist: None,
            upload_id: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DebugFileView {
    pub name: String,
    pub kind: &'static str,
    pub object_kind: &'static str,
    pub arch: String,
    pub debug_id: Option<String>,
    pub code_id: Option<String>,
    pub features: Vec<&'static str>,
    pub sha256: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dwo_ids: Vec<String>,
    /// For a file with skeleton units: the DWO IDs no uploaded `.dwo`/`.dwp` provides yet.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_dwo_ids: Vec<String>,
}

impl DebugFileView {
    pub fn of(d: &DebugFileEntry) -> Self {
        DebugFileView {
            name: d.name.clone(),
            kind: d.format.as_str(),
            object_kind: d.object_kind.as_str(),
            arch: d.arch.clone(),
            debug_id: d.debug_id.map(|d| d.to_string()),
            code_id: d.code_id.as_ref().map(|c| c.to_string()),
            features: d.features.names(),
            sha256: d.sha256.to_string(),
            size: d.size,
            upload_id: None,
            dwo_ids: d.dwo_ids.clone(),
            missing_dwo_ids: Vec::new(),
        }
    }
}

/// Stores the blobs, then commits the manifest. Nothing is visible until the last step.
pub async fn commit(
    state: &App,
    manifest: UploadManifest,
    prepared: Vec<Prepared>,
    mut warnings: Vec<String>,
) -> ApiResult<UploadResponse> {
    let manifest = commit_manifest(state, manifest, prepared).await?;
    let mut debug_files = Vec::with_capacity(manifest.debug_files.len());
    for d in &manifest.debug_files {
        let mut view = DebugFileView::of(d);
        view.missing_dwo_ids = missing_split_units(state, &manifest.project, d).await;
        if !view.missing_dwo_ids.is_empty() {
            warnings.push(format!(
                "{} has split DWARF units whose .dwo or .dwp was not uploaded yet (DWO IDs {}): \
                 until it is, frames there have no inlined calls",
                d.name,
                view.missing_dwo_ids.join(", ")
            ));
        }
        debug_files.push(view);
    }
    Ok(UploadResponse {
        upload_id: manifest.id.to_string(),
        project: manifest.project.to_string(),
        release: manifest.release.as_ref().map(|r| r.to_string()),
        dist: manifest.dist.as_ref().map(|d| d.to_string()),
        artifacts: manifest.artifacts.iter().map(ArtifactView::of).collect(),
        debug_files,
        warnings,
    })
}

/// DWO IDs of `file`'s skeleton units that no uploaded split DWARF provides.
pub(crate) async fn missing_split_units(
    app: &App,
    project: &crate::types::ProjectId,
    file: &DebugFileEntry,
) -> Vec<String> {
    if file.dwo_ids.is_empty() {
        return Vec::new();
    }
    super::symbolicate::native::split_units(app, project, file)
        .await
        .missing
}

/// The storing half of [`commit`]: returns the manifest as committed.
pub async fn commit_manifest(
    state: &App,
    mut manifest: UploadManifest,
    prepared: Vec<Prepared>,
) -> ApiResult<UploadManifest> {
    use futures::{StreamExt, TryStreamExt};
    let jobs: Vec<(crate::types::Sha256, std::path::PathBuf, u64)> = prepared
        .iter()
        .map(|p| {
            (
                p.file.sha256.clone(),
                p.file.path.to_path_buf(),
                p.file.size,
            )
        })
        .collect();
    crate::crash::point("upload:received");
    futures::stream::iter(jobs.into_iter().map(|(sha, path, size)| {
        let store = state.store.clone();
        async move {
            let stored = store.put_blob_file(&sha, &path, size).await;
            crate::crash::point("upload:blob");
            stored
        }
    }))
    .buffer_unordered(4)
    .try_collect::<Vec<bool>>()
    .await?;
    for p in prepared {
        match p.describe {
            Described::Artifact(a) => manifest.artifacts.push(a),
            Described::DebugFiles(d) => manifest.debug_files.extend(d),
            Described::Blob => {}
        }
    }
    state.store.commit_upload(&manifest).await?;
    state.index.invalidate(&manifest.project);
    let m = crate::metrics::global();
    for a in &manifest.artifacts {
        m.uploads
            .get_or_create(&crate::metrics::KindLabel {
                kind: a.kind.as_str(),
            })
            .inc();
    }
    for d in &manifest.debug_files {
        m.uploads
            .get_or_create(&crate::metrics::KindLabel {
                kind: d.format.as_str(),
            })
            .inc();
    }
    after_commit(state, &manifest);
    tracing::info!(
        project = %manifest.project,
        upload = %manifest.id,
        artifacts = manifest.artifacts.len(),
        debug_files = manifest.debug_files.len(),
        "upload committed"
    );
    Ok(manifest)
}

/// After a commit: build the caches the upload's files need in the background, so the first
/// symbolicate request finds them ready.
pub(crate) fn after_commit(app: &App, manifest: &UploadManifest) {
    let app = app.clone();
    let manifest = manifest.clone();
    tokio::spawn(async move {
        super::symbolicate::prewarm(&app, &manifest).await;
    });
}
