//! Store tests: configuration, upload IDs, and the sweep protocol driven step by step.
use super::*;
use crate::config::Secret;

/// The race a one-step sweep loses: an upload finds an old orphaned blob present (so it
/// does not write it), a sweep runs, then the upload commits its manifest. Driven step by
/// step: the committed manifest's blob must still be readable, and the next sweep must
/// put it back, not delete it.
#[tokio::test]
async fn a_blob_reused_by_an_upload_during_a_sweep_is_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(dir.path()).unwrap();
    let bytes = b"orphaned, then reused".to_vec();
    let sha = Sha256::from_digest(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let file = dir.path().join("payload");
    std::fs::write(&file, &bytes).unwrap();
    // An orphan: stored by an upload that never committed.
    assert!(store
        .put_blob_file(&sha, &file, bytes.len() as u64)
        .await
        .unwrap());
    // The new upload finds it present and skips writing it.
    assert!(!store
        .put_blob_file(&sha, &file, bytes.len() as u64)
        .await
        .unwrap());
    // A sweep runs before the upload commits (grace 0: the orphan is old enough).
    let hour = std::time::Duration::from_secs(3600);
    let first = store.sweep(std::time::Duration::ZERO, hour).await.unwrap();
    assert_eq!(first.blobs_trashed, 1);
    // The upload commits.
    let project = ProjectId::parse("p").unwrap();
    let mut manifest = UploadManifest::new(project.clone(), UploadSource::Files);
    manifest.release = Some(Release::parse("1.0").unwrap());
    manifest.artifacts.push(ArtifactEntry {
        url: crate::types::ArtifactUrl::parse("~/a.js").unwrap(),
        kind: crate::kinds::ArtifactKind::Source,
        sha256: sha.clone(),
        size: bytes.len() as u64,
        debug_id: None,
        sourcemap_ref: None,
        headers: Default::default(),
    });
    store.commit_upload(&manifest).await.unwrap();
    // Committed data reads, even while its blob is in the trash.
    let got = store.get_bytes(&Store::blob_key(&sha)).await.unwrap();
    assert_eq!(got.as_deref(), Some(&bytes[..]));
    // Even a sweep allowed to purge at once restores it: a live manifest references it.
    let second = store
        .sweep(std::time::Duration::ZERO, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((second.blobs_restored, second.blobs_deleted), (1, 0));
    assert!(store.exists(&Store::blob_key(&sha)).await.unwrap());
    // An orphan nobody reuses is trashed, then purged.
    let orphan = b"nobody wants me".to_vec();
    let osha = Sha256::from_digest(&<sha2::Sha256 as sha2::Digest>::digest(&orphan));
    std::fs::write(&file, &orphan).unwrap();
    store
        .put_blob_file(&osha, &file, orphan.len() as u64)
        .await
        .unwrap();
    let zero = std::time::Duration::ZERO;
    assert_eq!(store.sweep(zero, zero).await.unwrap().blobs_trashed, 1);
    assert_eq!(store.sweep(zero, zero).await.unwrap().blobs_deleted, 1);
    assert_eq!(
        store.get_bytes(&Store::blob_key(&osha)).await.unwrap(),
        None
    );
}

/// A manifest of release 1.0 with one artifact, not yet stored.
fn manifest_of_release(project: &ProjectId) -> UploadManifest {
    let mut manifest = UploadManifest::new(project.clone(), UploadSource::Files);
    manifest.release = Some(Release::parse("1.0").unwrap());
    manifest.artifacts.push(ArtifactEntry {
        url: crate::types::ArtifactUrl::parse("~/a.js").unwrap(),
        kind: crate::kinds::ArtifactKind::Source,
        sha256: Sha256::parse(&"ab".repeat(32)).unwrap(),
        size: 1,
        debug_id: None,
        sourcemap_ref: None,
        headers: Default::default(),
    });
    manifest
}

async fn write_pointers(store: &Store, manifest: &UploadManifest) {
    for prefix in manifest.pointer_keys() {
        store
            .put_bytes(&prefix.child(manifest.id.to_string()), bytes::Bytes::new())
            .await
            .unwrap();
    }
}

/// An upload writes its pointers, then its manifest. A sweep between the two (even one with
/// no grace period) must not take the pointers for dangling: the upload would commit and
/// never be found.
#[tokio::test]
async fn a_sweep_between_an_uploads_pointers_and_its_manifest_keeps_the_pointers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(dir.path()).unwrap();
    let project = ProjectId::parse("p").unwrap();
    let manifest = manifest_of_release(&project);
    write_pointers(&store, &manifest).await;
    let hour = std::time::Duration::from_secs(3600);
    let report = store.sweep(std::time::Duration::ZERO, hour).await.unwrap();
    assert_eq!(report.pointers_deleted, 0);
    store
        .put_json(&Store::manifest_key(&project, &manifest.id), &manifest)
        .await
        .unwrap();
    let release = Store::release_prefix(&project, manifest.release.as_ref().unwrap());
    assert_eq!(
        store.pointer_ids(&release).await.unwrap(),
        vec![manifest.id]
    );
    // A pointer whose upload never committed goes once the longest upload is over.
    let orphan = manifest_of_release(&project);
    write_pointers(&store, &orphan).await;
    let zero = std::time::Duration::ZERO;
    assert_eq!(store.sweep(zero, zero).await.unwrap().pointers_deleted, 1);
    assert_eq!(
        store.pointer_ids(&release).await.unwrap(),
        vec![manifest.id]
    );
}

/// A listing is not a snapshot: a sweep can list an upload's manifest but not the pointers
/// written just before it. Such a manifest is live, not dead: the sweep must look again
/// before it deletes one (and must keep its blobs).
#[tokio::test]
async fn a_manifest_whose_pointers_the_listing_missed_is_not_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(dir.path()).unwrap();
    let project = ProjectId::parse("p").unwrap();
    let manifest = manifest_of_release(&project);
    let key = Store::manifest_key(&project, &manifest.id);
    store.put_json(&key, &manifest).await.unwrap();
    let listing = super::sweep::list_project(&store, &project).await.unwrap();
    write_pointers(&store, &manifest).await;
    let mut report = super::sweep::SweepReport::default();
    let mut live = std::collections::HashSet::new();
    let zero = std::time::Duration::ZERO;
    super::sweep::reap_project(&store, listing, zero, zero, &mut report, &mut live)
        .await
        .unwrap();
    assert_eq!((report.manifests_deleted, report.manifests_live), (0, 1));
    assert!(store.exists(&key).await.unwrap());
    assert!(live.contains(&"ab".repeat(32)));
    // Once its release is deleted, it is dead and goes.
    store
        .delete_release(&project, manifest.release.as_ref().unwrap())
        .await
        .unwrap();
    let report = store.sweep(zero, zero).await.unwrap();
    assert_eq!(report.manifests_deleted, 1);
    assert!(!store.exists(&key).await.unwrap());
}

#[test]
fn upload_ids_made_in_one_millisecond_still_order_by_arrival() {
    let ids: Vec<UploadId> = (0..10_000).map(|_| UploadId::new()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "upload IDs are not strictly increasing"
    );
    // Thousands of IDs share a millisecond here, so the test shows the random part is
    // not what orders them.
    let same_ms = ids
        .windows(2)
        .filter(|w| w[0].0.timestamp_ms() == w[1].0.timestamp_ms())
        .count();
    assert!(same_ms > 100, "only {same_ms} pairs shared a millisecond");
}

#[test]
fn s3_compatible_stores_are_configured_by_url_and_options() {
    let mut config = Config::default();
    config.store.url = Some("s3://tracemap-artifacts/prod".into());
    for (k, v) in [
        ("endpoint", "http://127.0.0.1:3900"),
        ("region", "garage"),
        ("access_key_id", "GK0123"),
        ("secret_access_key", "secret"),
        ("allow_http", "true"),
    ] {
        config.store.options.insert(k.into(), Secret(v.into()));
    }
    let store = Store::open(&config).expect("an S3 store opens without network access");
    // The prefix is part of where the data is: the startup log names it.
    assert_eq!(store.describe(), "s3://tracemap-artifacts/prod");
    config
        .store
        .options
        .insert("no_such_option".into(), Secret("x".into()));
    config.store.url = Some("nope://x".into());
    assert!(Store::open(&config).is_err());
}

/// `--store-url /abs/path` is a local directory, as `file:///abs/path` is; a relative path is
/// refused with a sentence that says what is accepted.
#[test]
fn an_absolute_path_as_store_url_is_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("store");
    let mut config = Config::default();
    config.store.url = Some(target.display().to_string());
    let store = Store::open(&config).expect("an absolute path opens as a local directory");
    assert!(target.is_dir());
    assert!(
        store.describe().contains("local directory"),
        "{}",
        store.describe()
    );
    config.store.url = Some("relative/store".into());
    let Err(err) = Store::open(&config) else {
        panic!("a relative path must be refused");
    };
    let err = err.to_string();
    assert!(err.contains("absolute path"), "{err}");
    assert!(!err.contains("relative URL without a base"), "{err}");
}

/// Every write is synced where it lands, for keys of every shape the service writes
/// (releases with `@` and `+`, URL-like names): the sync finds the file the backend wrote.
#[tokio::test]
async fn local_writes_are_synced_where_they_land() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(dir.path()).unwrap();
    let project = ProjectId::parse("web").unwrap();
    let mut manifest = UploadManifest::new(project, UploadSource::Files);
    manifest.release = Some(Release::parse("web@1.4.2+build.7 ü").unwrap());
    // Fails if the synced path is not the written one.
    store.commit_upload(&manifest).await.unwrap();
    store
        .put_bytes(
            &object_store::path::Path::from("odd/na me%2F/x"),
            b"x".to_vec(),
        )
        .await
        .unwrap();
}
