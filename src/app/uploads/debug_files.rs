//! Native debug files: recognise them (unzipping zips and dSYM bundles) and describe each
//! object for the manifest.

use super::{commit, Described, Prepared, UploadResponse};
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::ingest::{self, IngestError, Received};
use crate::store::{DebugFileEntry, UploadManifest, UploadSource};
use crate::types::ProjectId;

pub fn zip_limits(app: &App) -> ingest::zip::ZipLimits {
    let l = &app.config.limits;
    ingest::zip::ZipLimits {
        max_entries: l.max_zip_entries,
        max_inflated: l.max_inflated_bytes,
        max_file: l.max_file_bytes,
    }
}

/// Recognises debug files (unzipping zips) and describes each object.
pub async fn prepare(app: &App, files: Vec<Received>) -> ApiResult<(Vec<Prepared>, Vec<String>)> {
    let _permit = app.validators.acquire().await.map_err(ApiError::internal)?;
    let limits = zip_limits(app);
    let tmp = app.config.tmp_dir();
    tokio::task::spawn_blocking(move || prepare_debug_files_blocking(files, &tmp, &limits))
        .await
        .map_err(ApiError::internal)?
}

fn prepare_debug_files_blocking(
    files: Vec<Received>,
    tmp: &std::path::Path,
    limits: &ingest::zip::ZipLimits,
) -> ApiResult<(Vec<Prepared>, Vec<String>)> {
    let mut prepared = Vec::new();
    let mut warnings = Vec::new();
    // The first zip entry that looked like a debug file but could not be used: the answer
    // when nothing usable remains.
    let mut first_rejected: Option<ApiError> = None;
    for received in files {
        let head = {
            let map = received.file.map()?;
            map[..map.len().min(16)].to_vec()
        };
        if crate::kinds::looks_like_zip(&head)
            && !crate::native::is_debug_file(&received.file.map()?)
        {
            let extracted = ingest::zip::extract(&received.file.path, tmp, limits)?;
            for entry in extracted.files {
                let map = entry.file.map()?;
                if !crate::native::is_debug_file(&map) {
                    warnings.push(format!("{}: skipped, not a debug file", entry.name));
                    continue;
                }
                drop(map);
                let name = entry.name.clone();
                match describe_debug_file(entry) {
                    Ok(p) => prepared.push(p),
                    // One bad object does not sink the others of the zip.
                    Err(e) if e.status().is_client_error() => {
                        warnings.push(format!("{name}: skipped, {e}"));
                        first_rejected.get_or_insert(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            continue;
        }
        // One file: under the file limit, like every file of every upload path (the body
        // limit only bounds the request).
        if received.file.size > limits.max_file {
            return Err(IngestError::TooLarge {
                what: received.name,
                limit: limits.max_file,
            }
            .into());
        }
        prepared.push(describe_debug_file(received)?);
    }
    if prepared.is_empty() {
        return Err(first_rejected.unwrap_or_else(|| IngestError::NoDebugFiles.into()));
    }
    Ok((prepared, warnings))
}

fn describe_debug_file(received: Received) -> ApiResult<Prepared> {
    let map = received.file.map()?;
    let objects = ingest::native::describe(&received.name, &map)?;
    drop(map);
    // A fat file (several objects) is stored once; every object references the same blob.
    let entries = objects
        .into_iter()
        .map(|o| DebugFileEntry {
            name: received.name.clone(),
            sha256: received.file.sha256.clone(),
            size: received.file.size,
            format: o.format,
            object_kind: o.object_kind,
            arch: o.arch,
            debug_id: o.debug_id,
            code_id: o.code_id,
            features: o.features,
            object_index: o.object_index,
            dwo_ids: o.dwo_ids,
        })
        .collect();
    Ok(Prepared {
        file: received.file,
        describe: Described::DebugFiles(entries),
    })
}

/// Uploads one debug file, or a zip of them (`POST …/debug-files`). `name` is recorded as the
/// file's name (raw bodies have none).
pub async fn upload(
    app: &App,
    project: ProjectId,
    name: &str,
    file: ingest::TempFile,
) -> ApiResult<UploadResponse> {
    let name = ingest::safe_relative_path(name)
        .map(|n| ingest::file_name(&n).to_owned())
        .unwrap_or_else(|| "upload".into());
    let (prepared, warnings) = prepare(app, vec![Received { name, file }]).await?;
    let manifest = UploadManifest::new(project, UploadSource::DebugFiles);
    commit(app, manifest, prepared, warnings).await
}
