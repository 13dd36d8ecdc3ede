//! Garbage collection. An upload is live while at least one pointer names it; a blob is live
//! while a live manifest references it. Everything else older than the grace period is
//! removed: dead manifests, dangling pointers, unreferenced blobs (in two steps, below), and
//! sentry-cli chunks past their time to live.
//!
//! **Pointers and manifests are judged with care for uploads in flight**, whose blobs and
//! pointers exist before their manifest does, and for listings, which are not snapshots: a
//! pointer without a manifest is dangling only once it is older than the longest upload
//! (and the grace period) and its manifest is still absent when it is deleted; a manifest
//! the listing saw without pointers is live if any of its pointers exists when looked up
//! again (see [`reap_project`]). So even `grace=0s` never loses a committed upload.
//!
//! **Blobs are deleted in two steps, so no committed upload can lose one.** An upload skips
//! writing a blob that already exists, then commits its manifest; a sweep that computed its
//! live set before that commit would see the (old) blob unreferenced. So a sweep never
//! deletes an unreferenced blob directly: it moves it to `trash/`, where reads still find it
//! (`Store::get_bytes` falls back to the trash). A later sweep restores every trashed blob a
//! live manifest references and deletes the rest, but only those trashed longer ago than
//! `purge_after`, which must exceed the longest upload (`limits.upload_timeout`): by then
//! every upload that saw the blob before it was trashed has committed (and is in that
//! sweep's live set) or has failed. An upload that starts after the move finds no blob and
//! writes its own copy.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use object_store::path::Path;
use serde::Serialize;

use super::{Store, StoreError, UploadId, UploadManifest};
use crate::types::{ProjectId, Sha256};

/// What one sweep moved to the trash (`trash/log/{ulid}.json`).
#[derive(Debug, Serialize, serde::Deserialize)]
struct TrashLog {
    blobs: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct SweepReport {
    pub manifests_live: usize,
    pub manifests_deleted: usize,
    pub pointers_deleted: usize,
    pub blobs_live: usize,
    /// Unreferenced blobs moved to the trash by this sweep.
    pub blobs_trashed: usize,
    /// Trashed blobs a live manifest references again, moved back.
    pub blobs_restored: usize,
    /// Trashed blobs deleted for good (unreferenced, trashed longer ago than `purge_after`).
    pub blobs_deleted: usize,
    /// Bytes of the blobs trashed by this sweep (no longer served to new uploads).
    pub bytes_freed: u64,
    /// sentry-cli chunks older than their time to live (24 h) or the grace period, whichever
    /// is longer.
    pub chunks_deleted: usize,
}

/// A project's manifests and pointers, as one listing saw them. A listing is not a
/// snapshot: objects written while it runs may be in it or not.
pub(super) struct ProjectListing {
    project: ProjectId,
    manifests: HashMap<UploadId, object_store::ObjectMeta>,
    pointers: Vec<(UploadId, object_store::ObjectMeta)>,
}

pub(super) async fn list_project(
    store: &Store,
    project: &ProjectId,
) -> Result<ProjectListing, StoreError> {
    let prefix = Store::project_prefix(project);
    let mut manifests = HashMap::new();
    let mut pointers = Vec::new();
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
    Ok(ProjectListing {
        project: project.clone(),
        manifests,
        pointers,
    })
}

/// Deletes a project's dangling pointers and dead manifests, and adds the blobs of its live
/// manifests to `live_blobs`. Safe against uploads committing meanwhile:
/// - an upload writes its pointers before its manifest, so a pointer without a manifest is
///   dangling only once it is older than the longest upload (`purge_after`) as well as the
///   grace period, and only if the manifest is still absent when it is deleted;
/// - a manifest the listing saw without pointers is looked at again: if any of its pointers
///   exists now (written before it, missed by the listing), it is live.
pub(super) async fn reap_project(
    store: &Store,
    listing: ProjectListing,
    grace: Duration,
    purge_after: Duration,
    report: &mut SweepReport,
    live_blobs: &mut HashSet<String>,
) -> Result<(), StoreError> {
    let ProjectListing {
        project,
        manifests,
        pointers,
    } = listing;
    let cutoff = super::cutoff(grace);
    let in_flight_cutoff = super::cutoff(grace.max(purge_after));
    let referenced: HashSet<UploadId> = pointers.iter().map(|(id, _)| *id).collect();
    for (id, meta) in &pointers {
        if !manifests.contains_key(id)
            && meta.last_modified < in_flight_cutoff
            && !store.exists(&Store::manifest_key(&project, id)).await?
        {
            store.delete(&meta.location).await?;
            report.pointers_deleted += 1;
        }
    }
    for (id, meta) in manifests {
        let Some(manifest) = store.get_json::<UploadManifest>(&meta.location).await? else {
            continue;
        };
        if referenced.contains(&id) || has_pointer(store, &manifest).await? {
            report.manifests_live += 1;
            live_blobs.extend(manifest.blobs().map(|s| s.as_str().to_owned()));
        } else if meta.last_modified < cutoff {
            store.delete(&meta.location).await?;
            report.manifests_deleted += 1;
        }
    }
    Ok(())
}

/// Whether any pointer naming this upload exists now.
async fn has_pointer(store: &Store, manifest: &UploadManifest) -> Result<bool, StoreError> {
    let id = manifest.id.to_string();
    for prefix in manifest.pointer_keys() {
        if store.exists(&prefix.child(id.as_str())).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

pub(super) async fn run(
    store: &Store,
    grace: Duration,
    purge_after: Duration,
) -> Result<SweepReport, StoreError> {
    let cutoff = super::cutoff(grace);
    let mut report = SweepReport::default();
    let mut live_blobs: HashSet<String> = HashSet::new();

    for project in store.list_dirs(&Path::from("projects")).await? {
        let Ok(project) = ProjectId::parse(&project) else {
            continue;
        };
        let listing = list_project(store, &project).await?;
        reap_project(
            store,
            listing,
            grace,
            purge_after,
            &mut report,
            &mut live_blobs,
        )
        .await?;
    }

    // Step 2, for blobs earlier sweeps trashed (as their logs say): restore what a live
    // manifest references again; delete the rest once the log is older than `purge_after`.
    let purge_cutoff = super::cutoff(purge_after.max(grace));
    for meta in store.list(&Path::from("trash/log")).await? {
        let Some(log) = store.get_json::<TrashLog>(&meta.location).await? else {
            continue;
        };
        let due = meta.last_modified < purge_cutoff;
        for name in &log.blobs {
            let Ok(sha) = Sha256::parse(name) else {
                continue;
            };
            let blob = Store::blob_key(&sha);
            let Some(trash) = Store::trash_key_of(&blob) else {
                continue;
            };
            if !store.exists(&trash).await? {
                continue;
            }
            if live_blobs.contains(name) {
                if store.exists(&blob).await? {
                    store.delete(&trash).await?;
                } else {
                    store.rename(&trash, &blob).await?;
                }
                report.blobs_restored += 1;
            } else if due {
                store.delete(&trash).await?;
                report.blobs_deleted += 1;
            }
        }
        if due {
            store.delete(&meta.location).await?;
        }
    }
    // Step 1: unreferenced blobs older than the grace period go to the trash, after a log of
    // them is written (so a crash in between leaves nothing untracked).
    let mut trashing = Vec::new();
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
            trashing.push((name.to_owned(), meta));
        }
    }
    if !trashing.is_empty() {
        let log = TrashLog {
            blobs: trashing.iter().map(|(n, _)| n.clone()).collect(),
        };
        let key = Path::from_iter(["trash", "log"]).child(format!("{}.json", UploadId::new()));
        store.put_json(&key, &log).await?;
        crate::crash::point("sweep:logged");
        for (_, meta) in trashing {
            if let Some(trash) = Store::trash_key_of(&meta.location) {
                store.rename(&meta.location, &trash).await?;
                crate::crash::point("sweep:trashed_one");
                report.blobs_trashed += 1;
                report.bytes_freed += meta.size;
            }
        }
    }
    // Chunks live by their own time to live, never shorter than the grace period.
    report.chunks_deleted = store.expire_chunks(grace.max(super::CHUNK_TTL)).await?;
    Ok(report)
}
