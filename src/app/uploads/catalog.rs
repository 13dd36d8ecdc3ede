//! The catalogue of what was committed: releases and their files, debug files; download
//! and delete. Uploads are immutable, so deleting an artifact writes a newer upload that
//! removes its URL, and deleting debug files removes their pointers.

use std::sync::Arc;

use futures::stream::BoxStream;

use super::{ArtifactView, DebugFileView};
use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::index::IndexedArtifact;
use crate::store::{DebugFileEntry, DeletedDebugId, Store, UploadId, UploadManifest, UploadSource};
use crate::types::{Dist, ProjectId, Release};

/// The release names of a project.
pub async fn releases(app: &App, project: &ProjectId) -> ApiResult<Vec<String>> {
    Ok(app.store.list_releases(project).await?)
}

/// A release's merged URL index, as listed to people.
pub struct ReleaseFiles {
    pub uploads: usize,
    pub files: Vec<ArtifactView>,
}

/// The files of a release (newest upload wins per URL), optionally of one dist.
pub async fn release_files(
    app: &App,
    project: &ProjectId,
    release: &Release,
    dist: Option<&str>,
) -> ApiResult<ReleaseFiles> {
    let index = app.index.release(project, release).await?;
    if index.uploads == 0 {
        return Err(release_not_found(project, release));
    }
    let mut files: Vec<ArtifactView> = index
        .files
        .values()
        .filter(|a| dist.is_none() || a.dist.as_ref().map(Dist::as_str) == dist)
        .map(|a| ArtifactView {
            dist: a.dist.as_ref().map(|d| d.to_string()),
            upload_id: Some(a.upload.to_string()),
            ..ArtifactView::of(&a.entry)
        })
        .collect();
    files.sort_by(|a, b| (&a.url, &a.dist).cmp(&(&b.url, &b.dist)));
    Ok(ReleaseFiles {
        uploads: index.uploads,
        files,
    })
}

fn release_not_found(project: &ProjectId, release: &Release) -> ApiError {
    ApiError::new(
        ErrorCode::ReleaseNotFound,
        format!("project {project} has no release {release}"),
    )
}

/// Narrows an artifact ID that several files of a release share (the same content under
/// other URLs or dists): `url` names the file's URL, `dist` its dist (`""`: no dist).
#[derive(Debug, Default, Clone, Copy)]
pub struct ArtifactSelector<'a> {
    pub url: Option<&'a str>,
    pub dist: Option<&'a str>,
}

impl ArtifactSelector<'_> {
    fn matches(&self, a: &IndexedArtifact) -> bool {
        let url_ok = self.url.is_none_or(|u| a.entry.url.as_str() == u);
        let dist_ok = self
            .dist
            .is_none_or(|d| a.dist.as_ref().map_or("", Dist::as_str) == d);
        url_ok && dist_ok
    }
}

/// The artifacts of a release with this ID (SHA-256) or URL, narrowed by `selector`, in URL
/// and dist order.
async fn find_all_in_release(
    app: &App,
    project: &ProjectId,
    release: &Release,
    id: &str,
    selector: &ArtifactSelector<'_>,
) -> ApiResult<Vec<IndexedArtifact>> {
    let index = app.index.release(project, release).await?;
    if index.uploads == 0 {
        return Err(release_not_found(project, release));
    }
    let mut found: Vec<IndexedArtifact> = index
        .files
        .values()
        .filter(|a| a.entry.sha256.as_str() == id || a.entry.url.as_str() == id)
        .filter(|a| selector.matches(a))
        .cloned()
        .collect();
    if found.is_empty() {
        return Err(ApiError::new(
            ErrorCode::ArtifactNotFound,
            format!(
                "release {release} has no artifact {id}{}",
                describe(selector)
            ),
        ));
    }
    found.sort_by(|a, b| (&a.entry.url, &a.dist).cmp(&(&b.entry.url, &b.dist)));
    Ok(found)
}

fn describe(selector: &ArtifactSelector<'_>) -> String {
    let mut out = String::new();
    if let Some(u) = selector.url {
        out.push_str(&format!(" with URL {u}"));
    }
    match selector.dist {
        Some("") => out.push_str(" without a dist"),
        Some(d) => out.push_str(&format!(" in dist {d}")),
        None => {}
    }
    out
}

/// The one artifact of a release that `id` (SHA-256 or URL) and `selector` name; 409
/// `ambiguous_artifact`, listing the candidates, when they name several.
pub async fn find_in_release(
    app: &App,
    project: &ProjectId,
    release: &Release,
    id: &str,
    selector: &ArtifactSelector<'_>,
) -> ApiResult<IndexedArtifact> {
    let mut found = find_all_in_release(app, project, release, id, selector).await?;
    if found.len() > 1 {
        let candidates: Vec<String> = found
            .iter()
            .map(|a| match &a.dist {
                Some(d) => format!("{} (dist {d})", a.entry.url),
                None => format!("{} (no dist)", a.entry.url),
            })
            .collect();
        return Err(ApiError::new(
            ErrorCode::AmbiguousArtifact,
            format!(
                "{} artifacts of release {release} match {id}: {}; name one with ?url= \
                 (and ?dist=, empty for no dist)",
                found.len(),
                candidates.join(", ")
            ),
        ));
    }
    found
        .pop()
        .ok_or_else(|| ApiError::internal("artifact list emptied"))
}

/// A stored artifact's content: its size and a stream of its bytes.
pub struct Download {
    pub size: u64,
    pub url: String,
    pub stream: BoxStream<'static, Result<bytes::Bytes, object_store::Error>>,
}

/// The content of an artifact of a release, streamed from the store.
pub async fn download(
    app: &App,
    project: &ProjectId,
    release: &Release,
    id: &str,
    selector: &ArtifactSelector<'_>,
) -> ApiResult<Download> {
    // Files that share their content are one download: ambiguous only if contents differ.
    let found = find_all_in_release(app, project, release, id, selector).await?;
    let artifact = match found.first() {
        Some(first) if found.iter().all(|a| a.entry.sha256 == first.entry.sha256) => first.clone(),
        _ => find_in_release(app, project, release, id, selector).await?,
    };
    let Some((size, stream)) = app
        .store
        .get_stream(&Store::blob_key(&artifact.entry.sha256))
        .await?
    else {
        return Err(ApiError::new(
            ErrorCode::BlobMissing,
            format!(
                "the content of {} is missing from the store",
                artifact.entry.url
            ),
        ));
    };
    Ok(Download {
        size,
        url: artifact.entry.url.to_string(),
        stream,
    })
}

/// Removes one artifact from a release by committing a newer upload that deletes its URL.
pub async fn delete_release_file(
    app: &App,
    project: &ProjectId,
    release: &Release,
    id: &str,
    selector: &ArtifactSelector<'_>,
) -> ApiResult<()> {
    let artifact = find_in_release(app, project, release, id, selector).await?;
    let mut manifest = UploadManifest::new(project.clone(), UploadSource::Delete);
    manifest.release = Some(release.clone());
    manifest.dist = artifact.dist.clone();
    manifest.deleted_urls.push(artifact.entry.url.clone());
    if let Some(debug_id) = artifact.entry.debug_id {
        manifest.deleted_debug_ids.push(DeletedDebugId {
            debug_id,
            kind: artifact.entry.kind,
        });
    }
    app.store.commit_upload(&manifest).await?;
    app.index.invalidate(project);
    Ok(())
}

/// Removes a release: its pointers go, so its uploads are no longer found.
pub async fn delete_release(app: &App, project: &ProjectId, release: &Release) -> ApiResult<()> {
    let n = app.store.delete_release(project, release).await?;
    app.index.invalidate(project);
    if n == 0 {
        return Err(release_not_found(project, release));
    }
    Ok(())
}

/// Which debug files to list.
pub enum DebugFileFilter {
    All,
    DebugId(debugid::DebugId),
    CodeId(debugid::CodeId),
}

/// The debug files of a project, optionally those with one debug ID or code ID.
pub async fn debug_files(
    app: &App,
    project: &ProjectId,
    filter: &DebugFileFilter,
) -> ApiResult<Vec<DebugFileView>> {
    let manifests: Vec<Arc<UploadManifest>> = match filter {
        DebugFileFilter::DebugId(id) => app.index.by_debug_id(project, id).await?.to_vec(),
        DebugFileFilter::CodeId(id) => app.index.by_code_id(project, id).await?.to_vec(),
        DebugFileFilter::All => {
            let mut all = Vec::new();
            for id in debug_file_uploads(app, project).await? {
                if let Some(m) = app.index.manifest(project, id).await? {
                    all.push(m);
                }
            }
            all
        }
    };
    let mut files = Vec::new();
    for m in &manifests {
        for d in &m.debug_files {
            let wanted = match filter {
                DebugFileFilter::All => true,
                DebugFileFilter::DebugId(id) => d.debug_id == Some(*id),
                DebugFileFilter::CodeId(id) => d.code_id.as_ref() == Some(id),
            };
            if wanted {
                files.push(DebugFileView {
                    upload_id: Some(m.id.to_string()),
                    missing_dwo_ids: super::missing_split_units(app, project, d).await,
                    ..DebugFileView::of(d)
                });
            }
        }
    }
    Ok(files)
}

/// Uploads with live debug-ID pointers that hold debug files.
async fn debug_file_uploads(app: &App, project: &ProjectId) -> ApiResult<Vec<UploadId>> {
    let prefix = Store::project_prefix(project).child("debug-ids");
    let ids = app.store.pointer_ids(&prefix).await?;
    let mut out = Vec::new();
    for id in ids {
        if let Some(m) = app.index.manifest(project, id).await? {
            if !m.debug_files.is_empty() {
                out.push(id);
            }
        }
    }
    Ok(out)
}

/// Removes every debug file with this debug ID (their debug-ID and code-ID pointers).
pub async fn delete_debug_files(
    app: &App,
    project: &ProjectId,
    debug_id: &debugid::DebugId,
) -> ApiResult<()> {
    let manifests = app.index.by_debug_id(project, debug_id).await?;
    let mut deleted = 0;
    for m in manifests.iter() {
        let matching: Vec<&DebugFileEntry> = m
            .debug_files
            .iter()
            .filter(|d| d.debug_id == Some(*debug_id))
            .collect();
        if matching.is_empty() {
            continue;
        }
        let upload = m.id.to_string();
        app.store
            .delete(&Store::debug_id_prefix(project, debug_id).child(upload.as_str()))
            .await?;
        for d in matching {
            if let Some(code_id) = &d.code_id {
                app.store
                    .delete(&Store::code_id_prefix(project, code_id).child(upload.as_str()))
                    .await?;
            }
            deleted += 1;
        }
    }
    app.index.invalidate(project);
    if deleted == 0 {
        return Err(ApiError::new(
            ErrorCode::DebugFileNotFound,
            format!("project {project} has no debug file {debug_id}"),
        ));
    }
    Ok(())
}
