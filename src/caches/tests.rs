//! The derived-cache tier: memory, disk, builds, quota, shared caches.
use std::path::Path;
use std::sync::atomic::AtomicUsize;

use super::disk::collect_files;
use super::*;

fn caches(dir: &Path, quota: u64) -> Caches {
    let mut config = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    config.cache.disk_quota = quota;
    Caches::new(&config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_build_once_and_disk_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = Arc::new(caches(dir.path(), 1 << 30));
    let builds = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (c, builds) = (c.clone(), builds.clone());
            tokio::spawn(async move {
                c.get_or_build("js/v1/abc/def".into(), || async move {
                    builds.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    Ok(b"cache bytes".to_vec())
                })
                .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(&t.await.unwrap().unwrap()[..], b"cache bytes");
    }
    assert_eq!(builds.load(Ordering::SeqCst), 1);
    // A new process finds it on disk: no build.
    let c2 = caches(dir.path(), 1 << 30);
    let got = c2
        .get_or_build("js/v1/abc/def".into(), || async {
            Err(BuildError::invalid("must not build"))
        })
        .await
        .unwrap();
    assert_eq!(&got[..], b"cache bytes");
    // Failures are remembered, not rebuilt per request.
    let fails = AtomicUsize::new(0);
    for _ in 0..3 {
        let r = c2
            .get_or_build("js/v1/bad/x".into(), || async {
                fails.fetch_add(1, Ordering::SeqCst);
                Err(BuildError::invalid("malformed"))
            })
            .await;
        assert_eq!(r.err(), Some(BuildError::invalid("malformed")));
    }
    assert_eq!(fails.load(Ordering::SeqCst), 1);
    // A store that did not answer is asked again next time.
    let tries = AtomicUsize::new(0);
    for _ in 0..3 {
        let r = c2
            .get_or_build("js/v1/flaky/x".into(), || async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err(BuildError::unavailable("store timed out"))
            })
            .await;
        assert!(matches!(r, Err(BuildError::Unavailable(_))));
    }
    assert_eq!(tries.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn the_disk_quota_evicts_least_recently_used_files() {
    let dir = tempfile::tempdir().unwrap();
    let c = caches(dir.path(), 10_000);
    for i in 0..5 {
        c.get_or_build(format!("native/v1/{i}"), || async { Ok(vec![0u8; 3_000]) })
            .await
            .unwrap();
        // Distinct modification times, oldest first.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut files = Vec::new();
    collect_files(&dir.path().join("cache"), &mut files);
    let total: u64 = files.iter().map(|(_, s, _)| s).sum();
    assert!(
        total <= 10_000,
        "{total} bytes on disk over a 10000 byte quota"
    );
    let names: Vec<String> = files
        .iter()
        .map(|(p, _, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"4".to_owned()),
        "the newest stays: {names:?}"
    );
    assert!(
        !names.contains(&"0".to_owned()),
        "the oldest went: {names:?}"
    );
}

#[tokio::test]
async fn a_corrupt_or_truncated_cache_file_is_rebuilt_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let payload = b"the cache bytes, long enough to cut".to_vec();
    {
        let c = caches(dir.path(), 1 << 30);
        let p = payload.clone();
        c.get_or_build("native/v1/x".into(), || async move { Ok(p) })
            .await
            .unwrap();
    }
    let mut files = Vec::new();
    collect_files(&dir.path().join("cache"), &mut files);
    let (path, _, _) = files.pop().expect("one cache file");
    let good = std::fs::read(&path).unwrap();
    for damage in ["truncated", "flipped"] {
        let mut bad = good.clone();
        match damage {
            "truncated" => bad.truncate(good.len() - 5),
            _ => bad[3] ^= 0x40,
        }
        std::fs::write(&path, &bad).unwrap();
        // A new process: nothing in memory, the damaged file on disk.
        let c = caches(dir.path(), 1 << 30);
        let builds = AtomicUsize::new(0);
        let got = c
            .get_or_build("native/v1/x".into(), || async {
                builds.fetch_add(1, Ordering::SeqCst);
                Ok(payload.clone())
            })
            .await
            .unwrap();
        assert_eq!(&got[..], &payload[..], "{damage}");
        assert_eq!(builds.load(Ordering::SeqCst), 1, "{damage}: not rebuilt");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            good,
            "{damage}: not rewritten"
        );
    }
}

#[tokio::test]
async fn stale_temporary_files_are_removed_and_never_counted() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache").join("native");
    std::fs::create_dir_all(&cache_dir).unwrap();
    let stale = cache_dir.join("01ABC.tmp");
    let fresh = cache_dir.join("01DEF.tmp");
    for p in [&stale, &fresh] {
        std::fs::write(p, vec![0u8; 5000]).unwrap();
    }
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .append(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let c = caches(dir.path(), 1 << 30);
    assert!(!stale.exists(), "a crash's leftover stays");
    assert!(fresh.exists(), "a write in flight was removed");
    assert_eq!(
        c.disk.bytes.load(Ordering::Relaxed),
        0,
        "temporary files counted"
    );
}

/// `cache.shared`: a cache one replica built is loaded from the store by another (its own
/// disk and memory empty) instead of being built; a damaged shared copy is built anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_cache_is_loaded_not_built_and_a_damaged_one_is_rebuilt() {
    let store = crate::store::Store::in_memory();
    let (d1, d2, d3) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let one = caches(d1.path(), 1 << 30).share_through(store.clone());
    let built = one
        .get_or_build("native/v9/shared".into(), || async {
            Ok(b"the cache".to_vec())
        })
        .await
        .unwrap();
    assert_eq!(&built[..], b"the cache");
    let path = shared_path("native/v9/shared");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while store.get_bytes(&path).await.unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "never shared");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let two = caches(d2.path(), 1 << 30).share_through(store.clone());
    let loaded = two
        .get_or_build("native/v9/shared".into(), || async {
            Err(BuildError::invalid("must not be built"))
        })
        .await
        .unwrap();
    assert_eq!(&loaded[..], b"the cache");
    // Damaged in the store: built again, the damage never served.
    store
        .put_bytes(&path, b"the cachX0123456789012345678901234567890".to_vec())
        .await
        .unwrap();
    let three = caches(d3.path(), 1 << 30).share_through(store.clone());
    let rebuilt = three
        .get_or_build("native/v9/shared".into(), || async {
            Ok(b"rebuilt".to_vec())
        })
        .await
        .unwrap();
    assert_eq!(&rebuilt[..], b"rebuilt");
    // Symbol-source answers are never shared.
    assert!(!shareable("source/v1-2-1/debian/Elf/x/y"));
}
