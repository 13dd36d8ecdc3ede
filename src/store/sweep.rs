//! Garbage collection. An upload is live while at least one pointer names it; a blob is live
//! while a live manifest (or a pending sentry-cli assemble) references it. Everything else
//! older than the grace period is removed: dead manifests, dangling pointers, unreferenced
//! blobs, and sentry-cli chunks older than the grace period.
//!
//! The grace period protects uploads in flight: their blobs and pointers exist before their
//! manifest does. It must exceed the longest upload.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use object_store::path::Path;
use serde::Serialize;

use super::{Store, StoreError, UploadId, UploadManifest};
use crate::types::{ProjectId, Sha256};

#[derive(Debug, Default, Serialize)]
pub struct SweepReport {
    pub manifests_live: usize,
    pub manifests_deleted: usize,
    pub pointers_deleted: usize,
    pub blobs_live: usize,
    pub blobs_deleted: usize,
    pub bytes_freed: u64,
    /// sentry-cli chunks older than their time to live (24 h) or the grace period, whichever
    /// is longer.
    pub chunks_deleted: usize,
}

pub(super) async fn run(store: &Store, grace: Duration) -> Result<SweepReport, StoreError> {
    let cutoff = super::cutoff(grace);
    let mut report = SweepReport::default();
    let mut live_blobs: HashSet<String> = HashSet::new();

    for project in store.list_dirs(&Path::from("projects")).await? {
        let Ok(project) = ProjectId::parse(&project) else {
            continue;
        };
        let prefix = Store::project_prefix(&project);
        let mut manifests: HashMap<UploadId, object_store::ObjectMeta> = HashMap::new();
        let mut pointers: Vec<(UploadId, object_store::ObjectMeta)> = Vec::new();
        for meta in store.list(&prefix).await? {
            let parts: Vec<String> = meta
                .location
                .prefix_match(&prefix)
                .map(|it| it.map(|p| p.as_ref().to_owned()).collect())
                .unwrap_or_default();
            let Some(first) = parts.first() else { continue };
            let Some(name) = parts.last() else { continue };
            if first == "uploads" {
                if let Some(Ok(id)) = name.strip_suffix(".json").map(str::parse::<UploadId>) {
                    manifests.insert(id, meta);
                }
            } else if let Ok(id) = name.parse::<UploadId>() {
                pointers.push((id, meta));
            }
        }
        let referenced: HashSet<UploadId> = pointers.iter().map(|(id, _)| *id).collect();
        for (id, meta) in &pointers {
            if !manifests.contains_key(id) && meta.last_modified < cutoff {
                store.delete(&meta.location).await?;
                report.pointers_deleted += 1;
            }
        }
        for (id, meta) in manifests {
            if referenced.contains(&id) {
                report.manifests_live += 1;
                if let Some(manifest) = store.get_json::<UploadManifest>(&meta.location).await? {
                    live_blobs.extend(manifest.blobs().map(|s| s.as_str().to_owned()));
                }
            } else if meta.last_modified < cutoff {
                store.delete(&meta.location).await?;
                report.manifests_deleted += 1;
            }
        }
    }

    for meta in store.list(&Path::from("blobs/sha256")).await? {
        let Some(name) = meta.location.filename() else {
            continue;
        };
        if Sha256::parse(name).is_err() {
            continue;
        }
        if live_blobs.contains(name) {
            report.blobs_live += 1;
        } else if meta.last_modified < cutoff {
            store.delete(&meta.location).await?;
            report.blobs_deleted += 1;
            report.bytes_freed += meta.size;
        }
    }
    // Chunks live by their own time to live, never shorter than the grace period.
    report.chunks_deleted = store.expire_chunks(grace.max(super::CHUNK_TTL)).await?;
    Ok(report)
}
