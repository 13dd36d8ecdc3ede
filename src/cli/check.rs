//! `tracemap debug-files check PATH`: what the server would store, read locally. Takes what
//! `upload debug-files` takes: a debug file, a directory (a dSYM bundle, a build tree:
//! searched recursively) or a zip, and lists every object of every debug file found.
//! Reads only; never talks to the server.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context};

use super::upload::{collect_debug_files, sha256_file};

/// Zip entries larger than this are not read (the server's default file limit).
const MAX_ENTRY_BYTES: u64 = 1 << 30;

/// `tracemap debug-files check PATH`
pub fn check(path: &Path) -> anyhow::Result<()> {
    if !path.is_dir() {
        return check_file(path);
    }
    let files = collect_debug_files(&[path.to_owned()])?;
    if files.is_empty() {
        bail!("no debug files found in {}", path.display());
    }
    let mut failed = 0;
    for f in &files {
        if let Err(e) = check_file(f) {
            eprintln!("error: {e:#}");
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} of {} file(s) cannot be used", files.len());
    }
    Ok(())
}

/// One file: a debug file, or a zip of them.
fn check_file(path: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    if crate::kinds::looks_like_zip(&bytes[..bytes.len().min(16)])
        && !crate::native::is_debug_file(&bytes)
    {
        return check_zip(name, &bytes);
    }
    let (sha, _) = sha256_file(path)?;
    print_objects(name, &bytes, &sha)
}

/// Every entry of a zip, as the server takes zips apart: entries that are not debug files
/// are skipped, each debug file is described.
fn check_zip(zip_name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .with_context(|| format!("{zip_name}: not a readable zip"))?;
    println!("{zip_name} (zip, {} entries)", archive.len());
    let (mut usable, mut failed) = (0, 0);
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .with_context(|| format!("{zip_name}: entry {i}"))?;
        if !entry.is_file() {
            continue;
        }
        let name = entry.name().to_owned();
        if entry.size() > MAX_ENTRY_BYTES {
            println!("{name}: skipped, larger than {MAX_ENTRY_BYTES} bytes");
            continue;
        }
        let mut data = Vec::new();
        (&mut entry)
            .take(MAX_ENTRY_BYTES)
            .read_to_end(&mut data)
            .with_context(|| format!("{zip_name}: reading {name}"))?;
        if !crate::native::is_debug_file(&data) {
            println!("{name}: skipped, not a debug file");
            continue;
        }
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data));
        match print_objects(&name, &data, &sha) {
            Ok(()) => usable += 1,
            Err(e) => {
                eprintln!("error: {e:#}");
                failed += 1;
            }
        }
    }
    if usable == 0 {
        bail!("{zip_name}: no usable debug files");
    }
    if failed > 0 {
        println!("{zip_name}: {failed} debug file(s) will be skipped by the server");
    }
    Ok(())
}

fn print_objects(name: &str, bytes: &[u8], sha: &str) -> anyhow::Result<()> {
    let objects = crate::native::describe(bytes).with_context(|| name.to_owned())?;
    println!("{name} ({} bytes, sha256 {sha})", bytes.len());
    for o in objects {
        let mut fields = BTreeMap::new();
        fields.insert("kind", o.format.as_str().to_owned());
        fields.insert("type", o.object_kind.as_str().to_owned());
        fields.insert("arch", o.arch.clone());
        fields.insert(
            "debug_id",
            o.debug_id.map(|d| d.to_string()).unwrap_or("-".into()),
        );
        fields.insert(
            "code_id",
            o.code_id
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or("-".into()),
        );
        fields.insert("features", o.features.names().join(", "));
        if !o.dwo_ids.is_empty() {
            fields.insert("dwo_ids", o.dwo_ids.join(", "));
        }
        println!("  object {}:", o.object_index);
        for (k, v) in fields {
            println!("    {k:<9} {v}");
        }
        if !o.features.debug && !o.features.symtab {
            println!("    note: no debug info and no symbols: frames will stay unresolved");
        }
    }
    Ok(())
}
