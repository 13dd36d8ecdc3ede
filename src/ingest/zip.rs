//! Takes zips apart safely: Sentry artifact bundles (optionally behind the 8-byte `SYSB`
//! header), plain zips of a build directory, and zips of debug files (dSYM bundles).
//!
//! Every entry name is checked before anything is extracted; a name with `..`, an absolute
//! path, a drive letter or a symlink entry rejects the whole archive. Inflated bytes are
//! counted as they are produced (header sizes are not trusted), per entry and in total.
//! Entries are extracted to temporary files named by us, never by the archive.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::Deserialize;

use super::{HashingWriter, IngestError, Received};

pub struct ZipLimits {
    pub max_entries: usize,
    pub max_inflated: u64,
    pub max_file: u64,
}

/// `manifest.json` of a Sentry artifact bundle.
#[derive(Debug, Deserialize)]
pub struct BundleManifest {
    #[serde(default)]
    pub files: BTreeMap<String, BundleFile>,
    #[serde(default)]
    pub release: Option<String>,
    #[serde(default)]
    pub dist: Option<String>,
    #[serde(default)]
    pub debug_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct BundleFile {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Most bytes a bundle's `manifest.json` may have (a manifest lists files; tens of thousands
/// of entries fit in a few MiB).
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

pub struct Extracted {
    pub manifest: Option<BundleManifest>,
    pub files: Vec<Received>,
}

/// Opens the zip at `path`, refusing one whose end-of-central-directory record announces
/// more than `max_entries` entries before the central directory is parsed (a huge central
/// directory would otherwise be read whole first).
///
/// Sentry's `SYSB` + version header: sentry-cli writes the zip *after* the header with
/// offsets counted from the start of the whole file, so the file opens as it is (the header
/// is data before the first entry, like a self-extractor's stub). Zips built by other tools
/// may count from the end of the header instead; those open from a copy of the file without
/// its first 8 bytes.
pub fn open(
    path: &Path,
    tmp_dir: &Path,
    max_entries: usize,
) -> Result<::zip::ZipArchive<std::fs::File>, IngestError> {
    let mut file = std::fs::File::open(path)?;
    if let Some(announced) = announced_entries(&mut file)? {
        if announced > max_entries as u64 {
            return Err(IngestError::ZipTooManyEntries { limit: max_entries });
        }
    }
    let mut head = [0u8; 8];
    file.seek(SeekFrom::Start(0))?;
    let n = file.read(&mut head)?;
    file.seek(SeekFrom::Start(0))?;
    let sysb = n == 8 && &head[..4] == b"SYSB";
    // A plain `File`, not a `BufReader`: zip 7.4 misreads archives with leading data
    // through a `BufReader`.
    let archive = match ::zip::ZipArchive::new(file) {
        Ok(a) => a,
        Err(_) if sysb => {
            let mut f = std::fs::File::open(path)?;
            f.seek(SeekFrom::Start(8))?;
            let mut out = tempfile::tempfile_in(tmp_dir)?;
            std::io::copy(&mut f, &mut out)?;
            out.seek(SeekFrom::Start(0))?;
            ::zip::ZipArchive::new(out).map_err(|e| IngestError::ZipInvalid(e.to_string()))?
        }
        Err(e) => return Err(IngestError::ZipInvalid(e.to_string())),
    };
    if archive.len() > max_entries {
        return Err(IngestError::ZipTooManyEntries { limit: max_entries });
    }
    Ok(archive)
}

/// The entry count the end-of-central-directory record announces (ZIP64's when the classic
/// record says 0xFFFF), read from the file's last 64 KiB; `None` when no record is found
/// (the zip reader then reports the archive invalid).
fn announced_entries(file: &mut std::fs::File) -> std::io::Result<Option<u64>> {
    const EOCD: &[u8; 4] = b"PK\x05\x06";
    const ZIP64_EOCD: &[u8; 4] = b"PK\x06\x06";
    let len = file.seek(SeekFrom::End(0))?;
    let tail_len = len.min(64 * 1024 + 22);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact(&mut tail)?;
    let Some(at) = tail.windows(4).rposition(|w| w == EOCD) else {
        return Ok(None);
    };
    let u16_at = |i: usize| {
        tail.get(i..i + 2)
            .map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let Some(classic) = u16_at(at + 10) else {
        return Ok(None);
    };
    if classic != 0xFFFF {
        return Ok(Some(classic));
    }
    // ZIP64: the record sits before the locator (20 bytes) that precedes the classic record.
    let Some(z) = tail[..at].windows(4).rposition(|w| w == ZIP64_EOCD) else {
        return Ok(Some(classic));
    };
    Ok(tail
        .get(z + 32..z + 40)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes))
}

/// Extracts every file entry of the zip at `path` into temporary files in `tmp_dir`.
/// `manifest.json` at the root is parsed as a bundle manifest, not returned as a file.
pub fn extract(path: &Path, tmp_dir: &Path, limits: &ZipLimits) -> Result<Extracted, IngestError> {
    let mut archive = open(path, tmp_dir, limits.max_entries)?;

    // Pass 1: names only. Reject the archive before extracting anything.
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .map_err(|e| IngestError::ZipInvalid(e.to_string()))?;
        let name = entry.name().to_owned();
        if entry.is_symlink()
            || entry.enclosed_name().is_none()
            || super::safe_relative_path(&name).is_none() && !entry.is_dir()
        {
            return Err(IngestError::ZipUnsafePath { name });
        }
    }

    let mut total: u64 = 0;
    let mut manifest = None;
    let mut files = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| IngestError::ZipInvalid(e.to_string()))?;
        if entry.is_dir() {
            continue;
        }
        let name =
            super::safe_relative_path(entry.name()).ok_or_else(|| IngestError::ZipUnsafePath {
                name: entry.name().to_owned(),
            })?;
        let mut writer = HashingWriter::new(tmp_dir, limits.max_file, format!("zip entry {name}"))?;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| IngestError::ZipInvalid(format!("entry {name}: {e}")))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > limits.max_inflated {
                return Err(IngestError::ZipInflatedTooLarge {
                    limit: limits.max_inflated,
                });
            }
            writer.push(&buf[..n])?;
        }
        let temp = writer.finish()?;
        if name == "manifest.json" {
            if temp.size > MAX_MANIFEST_BYTES {
                return Err(IngestError::ManifestInvalid(format!(
                    "manifest.json is {} bytes, over the limit of {MAX_MANIFEST_BYTES}",
                    temp.size
                )));
            }
            let bytes = std::fs::read(&temp.path)?;
            let parsed: BundleManifest = serde_json::from_slice(&bytes)
                .map_err(|e| IngestError::ManifestInvalid(e.to_string()))?;
            manifest = Some(parsed);
            continue;
        }
        files.push(Received { name, file: temp });
    }
    Ok(Extracted { manifest, files })
}
