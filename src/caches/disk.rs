//! The disk tier of the derived caches: one file per cache under a quota, least recently
//! used first out (the file's mtime is the clock).
//!
//! Every file ends with a trailer (magic, payload length, CRC-32 of the payload), written
//! with the payload to a temporary name and renamed into place. A file whose trailer does not
//! check out (truncated by a crash or a full disk, flipped bits) is never served: it is
//! deleted and rebuilt. Temporary files are not counted against the quota and are removed
//! once they are older than any write could take. Everything here blocks: callers run it on
//! the blocking pool.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::ingest::Mapped;

const TRAILER_MAGIC: &[u8; 8] = b"TMCACHE1";
/// magic, payload length (u64), CRC-32 of the payload (u32), reserved (u32).
pub(super) const TRAILER_LEN: usize = 24;
/// A temporary file untouched this long belongs to no write in flight.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// The disk tier: cache files under a quota. Its file work runs on the blocking pool.
pub(super) struct Disk {
    pub(super) dir: PathBuf,
    pub(super) quota: u64,
    pub(super) bytes: AtomicU64,
}

impl Disk {
    /// Opens the tier over `dir`: removes temporary files left by a crash (once they are
    /// old enough to belong to no write in flight) and counts what is there.
    pub(super) fn new(dir: PathBuf, quota: u64) -> Disk {
        let _ = std::fs::create_dir_all(&dir);
        let mut files = Vec::new();
        collect_files(&dir, &mut files);
        let mut total = 0;
        for (path, size, mtime) in files {
            if is_tmp(&path) {
                if mtime.elapsed().unwrap_or_default() > STALE_TMP {
                    let _ = std::fs::remove_file(&path);
                }
            } else {
                total += size;
            }
        }
        Disk {
            dir,
            quota,
            bytes: AtomicU64::new(total),
        }
    }

    fn path_for(&self, key: &str) -> PathBuf {
        // Keys are made of [a-z0-9/-_.] by their builders; anything else is replaced.
        let safe: String = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join(safe.replace("..", "__"))
    }

    /// The cache file for `key`, if present and intact (then marked as just used). A file
    /// that fails its trailer check is deleted, so the caller rebuilds it.
    pub(super) fn open(&self, key: &str) -> Option<(Mapped, usize)> {
        let path = self.path_for(key);
        let mapped = Mapped::open(&path).ok()?;
        match payload_len(&mapped) {
            Ok(len) => {
                touch(&path);
                Some((mapped, len))
            }
            Err(problem) => {
                tracing::warn!(path = %path.display(), problem, "corrupt cache file: deleted, rebuilding");
                crate::metrics::global()
                    .cache_lookups
                    .get_or_create(&crate::metrics::CacheLabels {
                        cache: "disk",
                        result: "corrupt",
                    })
                    .inc();
                let size = mapped.len() as u64;
                drop(mapped);
                if std::fs::remove_file(&path).is_ok() {
                    let _ = self
                        .bytes
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                            Some(b.saturating_sub(size))
                        });
                }
                None
            }
        }
    }

    /// Writes `payload` as the cache file for `key` (payload, then trailer, to a temporary
    /// name renamed into place) and maps it.
    pub(super) fn store(&self, key: &str, payload: &[u8]) -> std::io::Result<(Mapped, usize)> {
        use std::io::Write;
        let path = self.path_for(key);
        let dir = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(dir)?;
        let tmp = crate::ingest::tmp_path(dir);
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(payload)?;
            f.write_all(&trailer(payload))?;
            f.sync_all()?;
            crate::crash::point("cache:tmp_written");
            std::fs::rename(&tmp, &path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
        let size = (payload.len() + TRAILER_LEN) as u64;
        let total = self.bytes.fetch_add(size, Ordering::Relaxed) + size;
        if total > self.quota {
            self.enforce_quota();
        }
        let mapped = Mapped::open(&path)?;
        let len = payload_len(&mapped)
            .map_err(|p| std::io::Error::new(std::io::ErrorKind::InvalidData, p))?;
        Ok((mapped, len))
    }

    /// Deletes least recently used cache files until the disk usage is under 90 % of the
    /// quota.
    pub(super) fn enforce_quota(&self) {
        let mut files = Vec::new();
        collect_files(&self.dir, &mut files);
        files.retain(|(path, _, _)| !is_tmp(path));
        let mut total: u64 = files.iter().map(|(_, size, _)| size).sum();
        let target = self.quota / 10 * 9;
        if total > self.quota {
            files.sort_by_key(|(_, _, mtime)| *mtime);
            for (path, size, _) in files {
                if total <= target {
                    break;
                }
                if std::fs::remove_file(&path).is_ok() {
                    total -= size;
                }
            }
        }
        self.bytes.store(total, Ordering::Relaxed);
    }
}

/// The trailer of a payload.
fn trailer(payload: &[u8]) -> [u8; TRAILER_LEN] {
    let mut t = [0u8; TRAILER_LEN];
    t[..8].copy_from_slice(TRAILER_MAGIC);
    t[8..16].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    t[16..20].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    t
}

/// The payload length of a cache file, if its trailer checks out.
fn payload_len(file: &[u8]) -> Result<usize, &'static str> {
    let len = file
        .len()
        .checked_sub(TRAILER_LEN)
        .ok_or("shorter than its trailer")?;
    let (payload, t) = file.split_at(len);
    if &t[..8] != TRAILER_MAGIC {
        return Err("no trailer (truncated or not ours)");
    }
    let mut declared = [0u8; 8];
    declared.copy_from_slice(&t[8..16]);
    if u64::from_le_bytes(declared) != len as u64 {
        return Err("length does not match the trailer");
    }
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&t[16..20]);
    if crc32fast::hash(payload) != u32::from_le_bytes(crc) {
        return Err("checksum does not match");
    }
    Ok(len)
}

fn is_tmp(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "tmp")
}

pub(super) fn touch(path: &Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

pub(super) fn collect_files(dir: &Path, out: &mut Vec<(PathBuf, u64, SystemTime)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            collect_files(&entry.path(), out);
        } else {
            out.push((
                entry.path(),
                meta.len(),
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            ));
        }
    }
}
