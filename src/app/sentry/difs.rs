//! Debug-file assembly (`files/difs/assemble/`): each file of the request runs through the
//! state machine of [`super::assemble`] and is committed like a `POST …/debug-files` upload.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::assemble::{check_checksums, proof_of, step, AssembleKind, Committed, JobError, Owner};
use crate::app::uploads::{self, debug_files};
use crate::app::App;
use crate::error::ApiResult;
use crate::ingest::{self, Received};
use crate::store::{now_rfc3339, UploadManifest, UploadSource};
use crate::types::ProjectId;

/// One file of a difs assemble request. Its `debug_id` (a hint sentry-cli sends) is not
/// needed: the debug IDs come from the file itself.
#[derive(Debug, Deserialize)]
pub struct DifRequest {
    pub name: String,
    #[serde(default)]
    pub chunks: Vec<String>,
}

/// Assembles debug files (a map keyed by whole-file SHA-1; the answer has the same keys).
pub async fn debug_files(
    app: &App,
    project: &ProjectId,
    files: BTreeMap<String, DifRequest>,
) -> ApiResult<serde_json::Value> {
    let mut out = serde_json::Map::new();
    for (checksum, file) in files {
        check_checksums(&checksum, &file.chunks)?;
        let job_app = app.clone();
        let job_project = project.clone();
        let name = ingest::safe_relative_path(&file.name)
            .map(|n| ingest::file_name(&n).to_owned())
            .unwrap_or_else(|| "upload".into());
        let sha1 = checksum.clone();
        let job = move |path: tempfile::TempPath| async move {
            let size = std::fs::metadata(&path).map_err(JobError::transient)?.len();
            let sha256 = tokio::task::spawn_blocking({
                let path = path.to_path_buf();
                move || ingest::sha256_of_file(&path)
            })
            .await
            .map_err(JobError::transient)?
            .map_err(JobError::transient)?;
            let received = Received {
                name: name.clone(),
                file: ingest::TempFile { path, sha256, size },
            };
            let (prepared, _) = debug_files::prepare(&job_app, vec![received]).await?;
            let manifest = UploadManifest::new(job_project, UploadSource::SentryCli);
            let manifest = uploads::commit_manifest(&job_app, manifest, prepared).await?;
            let d = manifest
                .debug_files
                .first()
                .map(uploads::DebugFileView::of)
                .ok_or("no debug file in upload")?;
            let dif = serde_json::json!({
                "id": manifest.id.to_string(),
                "uuid": d.debug_id,
                "debugId": d.debug_id,
                "codeId": d.code_id,
                "cpuName": d.arch,
                "objectName": name,
                "symbolType": d.kind,
                "headers": {"Content-Type": "application/octet-stream"},
                "size": size,
                "sha1": sha1,
                "dateCreated": now_rfc3339(),
                "data": {"type": d.object_kind, "features": d.features},
            });
            Ok(Committed {
                dif: Some(dif),
                pointers: proof_of(&manifest),
            })
        };
        let v = step(
            app,
            AssembleKind::DebugFile,
            Owner::Projects(std::slice::from_ref(project)),
            &checksum,
            &file.chunks,
            job,
        )
        .await?;
        out.insert(checksum, v);
    }
    Ok(serde_json::Value::Object(out))
}
