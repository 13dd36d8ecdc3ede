//! Upload, list, download and delete handlers. Bodies are streamed to temporary files,
//! validated as a whole, and only then stored and committed (see `crate::store`).
use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::config::Scope;
use crate::error::{ApiError, ApiResult};
use crate::ingest::{self, IngestError, Received, TempFile};
use crate::kinds::ArtifactKind;
use crate::store::{ArtifactEntry, DebugFileEntry, Store, UploadManifest, UploadSource};
use crate::types::{parse_code_id, parse_debug_id, ArtifactUrl, Dist, ProjectId, Release};

/// A file ready to be stored: its temp file plus what the manifest says of it.
pub(crate) struct Prepared {
    pub file: TempFile,
    pub describe: Described,
}

pub(crate) enum Described {
    Artifact(ArtifactEntry),
    /// One file; several entries for a multi-object (fat) file.
    DebugFiles(Vec<DebugFileEntry>),
    /// An inline source map taken out of a minified file: stored, referenced by the
    /// minified file's `sourcemap_ref` `data:` marker through its own entry.
    Blob,
}

#[derive(Debug, Serialize)]
pub struct UploadResponse {
    pub upload_id: String,
    pub project: String,
    pub release: Option<String>,
    pub dist: Option<String>,
    pub artifacts: Vec<ArtifactView>,
    pub debug_files: Vec<DebugFileView>,
    /// Things that will not fail the upload but will surprise at lookup time.
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ArtifactView {
    pub url: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub sha256: String,
    pub size: u64,
    pub debug_id: Option<String>,
    pub sourcemap: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dist: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
}

impl ArtifactView {
    fn of(a: &ArtifactEntry) -> Self {
        ArtifactView {
            url: a.url.to_string(),
            kind: a.kind.as_str(),
            sha256: a.sha256.to_string(),
            size: a.size,
            debug_id: a.debug_id.map(|d| d.to_string()),
            sourcemap: a.sourcemap_ref.clone(),
            dist: None,
            upload_id: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DebugFileView {
    pub name: String,
    pub kind: &'static str,
    pub object_kind: String,
    pub arch: String,
    pub debug_id: Option<String>,
    pub code_id: Option<String>,
    pub features: Vec<&'static str>,
    pub sha256: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dwo_ids: Vec<String>,
}

impl DebugFileView {
    pub fn of(d: &DebugFileEntry) -> Self {
        DebugFileView {
            name: d.name.clone(),
            kind: d.format.as_str(),
            object_kind: d.object_kind.clone(),
            arch: d.arch.clone(),
            debug_id: d.debug_id.map(|d| d.to_string()),
            code_id: d.code_id.as_ref().map(|c| c.to_string()),
            features: d.features.names(),
            sha256: d.sha256.to_string(),
            size: d.size,
            upload_id: None,
            dwo_ids: d.dwo_ids.clone(),
        }
    }
}

fn project(s: &str) -> ApiResult<ProjectId> {
    Ok(ProjectId::parse(s)?)
}

fn release(s: &str) -> ApiResult<Release> {
    Ok(Release::parse(s)?)
}

fn join_url(prefix: &str, name: &str) -> ApiResult<ArtifactUrl> {
    let prefix = prefix.trim_end_matches('/');
    let url = if prefix.is_empty() {
        format!("~/{name}")
    } else {
        format!("{prefix}/{name}")
    };
    Ok(ArtifactUrl::parse(&url)?)
}

#[derive(Debug, Deserialize)]
pub struct FilesQuery {
    dist: Option<String>,
    url_prefix: Option<String>,
}

/// A file part of a multipart upload, with what the parts before it said of it.
struct PendingFile {
    received: Received,
    url: Option<String>,
    kind: Option<ArtifactKind>,
    headers: BTreeMap<String, String>,
}

/// `POST /api/v1/projects/{p}/releases/{r}/files`: many files in one multipart body.
///
/// Parts: `file` (filename = path relative to `url_prefix`), and optionally before a file:
/// `url` (its full URL), `type` (`minified_source`, `source_map`, `source`), `header`
/// (`Name: value`, repeatable). `dist` and `url_prefix` may be parts or query parameters.
pub async fn release_files(
    State(state): State<AppState>,
    Path((p, r)): Path<(String, String)>,
    Query(q): Query<FilesQuery>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> ApiResult<(StatusCode, Json<UploadResponse>)> {
    let project = project(&p)?;
    state.auth.check(&headers, Scope::Upload, Some(&project))?;
    let release = release(&r)?;
    let tmp = state.config.tmp_dir();
    let limit = state.config.limits.max_file_bytes;

    let mut dist = q.dist;
    let mut url_prefix = q.url_prefix.unwrap_or_else(|| "~".into());
    let mut next_url = None;
    let mut next_kind = None;
    let mut next_headers = BTreeMap::new();
    let mut files = Vec::new();
    let bad = |m: String| ApiError::bad_request("invalid_multipart", m);
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                let filename = field
                    .file_name()
                    .map(str::to_owned)
                    .ok_or_else(|| bad("a `file` part needs a filename".into()))?;
                let filename = ingest::safe_relative_path(&filename).ok_or_else(|| {
                    ApiError::bad_request(
                        "unsafe_path",
                        format!("file name {filename:?} is absolute or contains '..'"),
                    )
                })?;
                let file = ingest::receive(field, &tmp, limit, &filename).await?;
                files.push(PendingFile {
                    received: Received {
                        name: filename,
                        file,
                    },
                    url: next_url.take(),
                    kind: next_kind.take(),
                    headers: std::mem::take(&mut next_headers),
                });
            }
            "dist" | "url_prefix" | "url" | "type" | "header" => {
                let value = field.text().await.map_err(multipart_error)?;
                match name.as_str() {
                    "dist" => dist = Some(value),
                    "url_prefix" => url_prefix = value,
                    "url" => next_url = Some(value),
                    "type" => {
                        next_kind = Some(ArtifactKind::parse(&value).ok_or_else(|| {
                            bad(format!(
                                "unknown type {value:?}; expected minified_source, source_map or source"
                            ))
                        })?)
                    }
                    _ => {
                        let (k, v) = value
                            .split_once(':')
                            .ok_or_else(|| bad(format!("header {value:?} is not `Name: value`")))?;
                        next_headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                    }
                }
            }
            other => return Err(bad(format!("unexpected part {other:?}"))),
        }
    }
    if files.is_empty() {
        return Err(IngestError::Empty.into());
    }
    let dist = dist
        .filter(|d| !d.is_empty())
        .map(|d| Dist::parse(&d))
        .transpose()?;
    let mut inputs = Vec::with_capacity(files.len());
    for f in files {
        let url = match f.url {
            Some(u) => ArtifactUrl::parse(&u)?,
            None => join_url(&url_prefix, &f.received.name)?,
        };
        inputs.push(JsInput {
            received: f.received,
            url,
            kind: f.kind,
            headers: f.headers,
        });
    }
    let mut manifest = UploadManifest::new(project, UploadSource::Files);
    manifest.release = Some(release);
    manifest.dist = dist;
    let (prepared, warnings) = prepare_js(inputs).await?;
    commit(&state, manifest, prepared, warnings)
        .await
        .map(|r| (StatusCode::CREATED, Json(r)))
}

pub(crate) struct JsInput {
    pub received: Received,
    pub url: ArtifactUrl,
    pub kind: Option<ArtifactKind>,
    pub headers: BTreeMap<String, String>,
}

/// Classifies and validates JS-side files (blocking work, off the async threads).
pub(crate) async fn prepare_js(inputs: Vec<JsInput>) -> ApiResult<(Vec<Prepared>, Vec<String>)> {
    tokio::task::spawn_blocking(move || prepare_js_blocking(inputs))
        .await
        .map_err(ApiError::internal)?
}

fn prepare_js_blocking(inputs: Vec<JsInput>) -> ApiResult<(Vec<Prepared>, Vec<String>)> {
    let mut prepared = Vec::new();
    let mut warnings = Vec::new();
    let urls: std::collections::HashSet<String> =
        inputs.iter().map(|i| i.url.to_string()).collect();
    for input in inputs {
        let bytes = input.received.file.map()?;
        let mut facts = ingest::js::classify(&input.received.name, &bytes, input.kind)?;
        drop(bytes);
        // Manifest headers win over what the file says.
        if let Some(id) = input
            .headers
            .get("debug-id")
            .or(input.headers.get("debug_id"))
        {
            facts.debug_id = Some(parse_debug_id(id)?);
        }
        if let Some(r) = input
            .headers
            .get("sourcemap")
            .or(input.headers.get("x-sourcemap"))
        {
            facts.sourcemap_ref = Some(r.clone());
        }
        if facts.kind == ArtifactKind::Source && urls.contains(&format!("{}.map", input.url)) {
            facts.kind = ArtifactKind::MinifiedSource;
        }
        if let Some(problem) = &facts.inline_map_problem {
            warnings.push(format!(
                "{}: inline source map unusable: {problem}",
                input.url
            ));
        }
        let mut headers = input.headers;
        if let Some(problem) = facts.inline_map_problem.take() {
            headers.insert("x-tracemap-inline-map-error".into(), problem);
        }
        if let Some(map) = facts.inline_map.take() {
            // Stored as a blob of its own so a lookup never re-decodes the data: URL.
            let mut w = ingest::HashingWriter::new(
                input
                    .received
                    .file
                    .path
                    .parent()
                    .unwrap_or(std::path::Path::new(".")),
                u64::MAX,
                "inline map",
            )?;
            w.push(&map)?;
            let file = w.finish()?;
            headers.insert("x-tracemap-inline-map".into(), file.sha256.to_string());
            prepared.push(Prepared {
                file,
                describe: Described::Blob,
            });
        }
        let entry = ArtifactEntry {
            url: input.url,
            kind: facts.kind,
            sha256: input.received.file.sha256.clone(),
            size: input.received.file.size,
            debug_id: facts.debug_id,
            sourcemap_ref: facts.sourcemap_ref,
            headers,
        };
        prepared.push(Prepared {
            file: input.received.file,
            describe: Described::Artifact(entry),
        });
    }
    Ok((prepared, warnings))
}

/// Stores the blobs, then commits the manifest. Nothing is visible until the last step.
pub(crate) async fn commit(
    state: &AppState,
    manifest: UploadManifest,
    prepared: Vec<Prepared>,
    warnings: Vec<String>,
) -> ApiResult<UploadResponse> {
    let manifest = commit_manifest(state, manifest, prepared).await?;
    Ok(UploadResponse {
        upload_id: manifest.id.to_string(),
        project: manifest.project.to_string(),
        release: manifest.release.as_ref().map(|r| r.to_string()),
        dist: manifest.dist.as_ref().map(|d| d.to_string()),
        artifacts: manifest.artifacts.iter().map(ArtifactView::of).collect(),
        debug_files: manifest.debug_files.iter().map(DebugFileView::of).collect(),
        warnings,
    })
}

/// The storing half of [`commit`]: returns the manifest as committed.
pub(crate) async fn commit_manifest(
    state: &AppState,
    mut manifest: UploadManifest,
    prepared: Vec<Prepared>,
) -> ApiResult<UploadManifest> {
    use futures::{StreamExt, TryStreamExt};
    let jobs: Vec<(crate::types::Sha256, std::path::PathBuf, u64)> = prepared
        .iter()
        .map(|p| {
            (
                p.file.sha256.clone(),
                p.file.path.to_path_buf(),
                p.file.size,
            )
        })
        .collect();
    futures::stream::iter(jobs.into_iter().map(|(sha, path, size)| {
        let store = state.store.clone();
        async move { store.put_blob_file(&sha, &path, size).await }
    }))
    .buffer_unordered(4)
    .try_collect::<Vec<bool>>()
    .await?;
    for p in prepared {
        match p.describe {
            Described::Artifact(a) => manifest.artifacts.push(a),
            Described::DebugFiles(d) => manifest.debug_files.extend(d),
            Described::Blob => {}
        }
    }
    state.store.commit_upload(&manifest).await?;
    state.index.invalidate(&manifest.project);
    let m = crate::metrics::global();
    for a in &manifest.artifacts {
        m.uploads
            .get_or_create(&crate::metrics::KindLabel {
                kind: a.kind.as_str(),
            })
            .inc();
    }
    for d in &manifest.debug_files {
        m.uploads
            .get_or_create(&crate::metrics::KindLabel {
                kind: d.format.as_str(),
            })
            .inc();
    }
    state.caches.after_upload(state, &manifest);
    tracing::info!(
        project = %manifest.project,
        upload = %manifest.id,
        artifacts = manifest.artifacts.len(),
        debug_files = manifest.debug_files.len(),
        "upload committed"
    );
    Ok(manifest)
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large("too_large", e.body_text())
    } else {
        ApiError::bad_request("invalid_multipart", e.body_text())
    }
}

#[derive(Debug, Deserialize)]
pub struct BundleQuery {
    release: Option<String>,
    dist: Option<String>,
    url_prefix: Option<String>,
}

/// `POST /api/v1/projects/{p}/bundles`: a zip body, either a Sentry artifact bundle (with
/// `manifest.json`, optionally behind the `SYSB` header) or a plain zip of a build directory
/// whose paths become URLs under `url_prefix` (default `~`).
pub async fn bundle(
    State(state): State<AppState>,
    Path(p): Path<String>,
    Query(q): Query<BundleQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<UploadResponse>)> {
    let project = project(&p)?;
    state.auth.check(&headers, Scope::Upload, Some(&project))?;
    let zip = receive_body(&state, &headers, body, "bundle").await?;
    let mut manifest = UploadManifest::new(project, UploadSource::Bundle);
    let (prepared, warnings) = prepare_bundle(
        &state,
        &mut manifest,
        zip,
        q.release.as_deref(),
        q.dist.as_deref(),
        q.url_prefix.as_deref(),
    )
    .await?;
    commit(&state, manifest, prepared, warnings)
        .await
        .map(|r| (StatusCode::CREATED, Json(r)))
}

/// Unpacks and validates a bundle zip, filling release and dist into `manifest` (query
/// parameters win over the bundle's own manifest).
pub(crate) async fn prepare_bundle(
    state: &AppState,
    manifest: &mut UploadManifest,
    zip: TempFile,
    release: Option<&str>,
    dist: Option<&str>,
    url_prefix: Option<&str>,
) -> ApiResult<(Vec<Prepared>, Vec<String>)> {
    let limits = zip_limits(state);
    let tmp = state.config.tmp_dir();
    let extracted =
        tokio::task::spawn_blocking(move || ingest::zip::extract(&zip.path, &tmp, &limits))
            .await
            .map_err(ApiError::internal)??;
    let bundle_manifest = extracted.manifest;
    let release = release
        .map(str::to_owned)
        .or_else(|| bundle_manifest.as_ref().and_then(|m| m.release.clone()));
    let dist = dist
        .map(str::to_owned)
        .or_else(|| bundle_manifest.as_ref().and_then(|m| m.dist.clone()));
    manifest.release = release
        .filter(|r| !r.is_empty())
        .map(|r| Release::parse(&r))
        .transpose()?;
    manifest.dist = dist
        .filter(|d| !d.is_empty())
        .map(|d| Dist::parse(&d))
        .transpose()?;
    if manifest.dist.is_some() && manifest.release.is_none() {
        return Err(ApiError::bad_request(
            "dist_without_release",
            "a dist was given without a release",
        ));
    }
    let mut inputs = Vec::new();
    match bundle_manifest {
        Some(bm) => {
            let mut by_name: BTreeMap<String, Received> = extracted
                .files
                .into_iter()
                .map(|r| (r.name.clone(), r))
                .collect();
            for (path, file) in bm.files {
                let Some(received) =
                    ingest::safe_relative_path(&path).and_then(|p| by_name.remove(&p))
                else {
                    return Err(IngestError::ManifestInvalid(format!(
                        "manifest lists {path:?} but the zip has no such file"
                    ))
                    .into());
                };
                let url = file.url.as_deref().unwrap_or(&path);
                let kind = match file.kind.as_deref() {
                    None => None,
                    Some(t) => match ArtifactKind::parse(t) {
                        Some(k) => Some(k),
                        // Types we do not symbolicate with (e.g. indexed RAM bundles) are
                        // skipped, not fatal.
                        None => continue,
                    },
                };
                inputs.push(JsInput {
                    received,
                    url: ArtifactUrl::parse(url)?,
                    kind,
                    headers: file
                        .headers
                        .into_iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v))
                        .collect(),
                });
            }
        }
        None => {
            let prefix = url_prefix.unwrap_or("~");
            for received in extracted.files {
                let url = join_url(prefix, &received.name)?;
                inputs.push(JsInput {
                    received,
                    url,
                    kind: None,
                    headers: BTreeMap::new(),
                });
            }
        }
    }
    if inputs.is_empty() {
        return Err(IngestError::Empty.into());
    }
    let (prepared, mut warnings) = prepare_js(inputs).await?;
    if manifest.release.is_none() {
        let unreachable = prepared
            .iter()
            .filter(|p| matches!(&p.describe, Described::Artifact(a) if a.debug_id.is_none()))
            .count();
        let total = prepared
            .iter()
            .filter(|p| matches!(p.describe, Described::Artifact(_)))
            .count();
        if unreachable == total {
            return Err(ApiError::bad_request(
                "unreachable_upload",
                "no release was given and no file has a debug ID, so nothing could ever be found",
            ));
        }
        if unreachable > 0 {
            warnings.push(format!(
                "{unreachable} file(s) have no debug ID and no release: they cannot be found"
            ));
        }
    }
    Ok((prepared, warnings))
}

pub(crate) fn zip_limits(state: &AppState) -> ingest::zip::ZipLimits {
    let l = &state.config.limits;
    ingest::zip::ZipLimits {
        max_entries: l.max_zip_entries,
        max_inflated: l.max_inflated_bytes,
        max_file: l.max_file_bytes,
    }
}

async fn receive_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    what: &str,
) -> ApiResult<TempFile> {
    let limit = state.config.limits.max_upload_bytes;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit {
            return Err(IngestError::TooLarge {
                what: format!("{what} body"),
                limit,
            }
            .into());
        }
    }
    let file = ingest::receive(
        body.into_data_stream(),
        &state.config.tmp_dir(),
        limit,
        &format!("{what} body"),
    )
    .await?;
    if file.size == 0 {
        return Err(IngestError::Empty.into());
    }
    Ok(file)
}

#[derive(Debug, Deserialize)]
pub struct DebugFileQuery {
    /// File name to record (raw bodies have none). Default `upload`.
    name: Option<String>,
}

/// `POST /api/v1/projects/{p}/debug-files`: one debug file as the raw body, or a zip of
/// debug files (e.g. a dSYM bundle); entries that are not debug files are skipped.
pub async fn debug_files(
    State(state): State<AppState>,
    Path(p): Path<String>,
    Query(q): Query<DebugFileQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<UploadResponse>)> {
    let project = project(&p)?;
    state.auth.check(&headers, Scope::Upload, Some(&project))?;
    let file = receive_body(&state, &headers, body, "debug file").await?;
    let name = q.name.unwrap_or_else(|| "upload".into());
    let name = ingest::safe_relative_path(&name)
        .map(|n| ingest::file_name(&n).to_owned())
        .unwrap_or_else(|| "upload".into());
    let received = vec![Received { name, file }];
    let (prepared, warnings) = prepare_debug_files(&state, received).await?;
    let manifest = UploadManifest::new(project, UploadSource::DebugFiles);
    commit(&state, manifest, prepared, warnings)
        .await
        .map(|r| (StatusCode::CREATED, Json(r)))
}

/// Recognises debug files (unzipping zips) and describes each object.
pub(crate) async fn prepare_debug_files(
    state: &AppState,
    files: Vec<Received>,
) -> ApiResult<(Vec<Prepared>, Vec<String>)> {
    let limits = zip_limits(state);
    let tmp = state.config.tmp_dir();
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
    for received in files {
        let head = {
            let map = received.file.map()?;
            map[..map.len().min(16)].to_vec()
        };
        if ingest::zip::looks_like_zip(&head)
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
                prepared.push(describe_debug_file(entry)?);
            }
            continue;
        }
        prepared.push(describe_debug_file(received)?);
    }
    if prepared.is_empty() {
        return Err(IngestError::NoDebugFiles.into());
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

// ---- listing, download, delete --------------------------------------------------------

/// `GET /api/v1/projects/{p}/releases`
pub async fn list_releases(
    State(state): State<AppState>,
    Path(p): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let project = project(&p)?;
    state.auth.check(&headers, Scope::Upload, Some(&project))?;
    let releases = state.store.list_releases(&project).await?;
    Ok(Json(serde_json::json!({ "releases": releases })))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    dist: Option<String>,
}

/// `GET /api/v1/projects/{p}/releases/{r}/files`: the release's merged URL index.
pub async fn list_release_files(
    State(state): State<AppState>,
    Path((p, r)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let project = project(&p)?;
    state.auth.check(&headers, Scope::Upload, Some(&project))?;
    let release = release(&r)?;
    let index = state.index.release(&project, &release).await?;
    if index.uploads == 0 {
        return Err(release_not_found(&project, &release));
    }
    let mut files: Vec<ArtifactView> = index
        .files
        .values()
        .filter(|a| q.dist.is_none() || a.dist.as_ref().map(|d| d.as_str()) == q.dist.as_deref())
        .map(|a| ArtifactView {
            dist: a.dist.as_ref().map(|d| d.to_string()),
            upload_id: Some(a.upload.to_string()),
            ..ArtifactView::of(&a.entry)
        })
        .collect();
    files.sort_by(|a, b| (&a.url, &a.dist).cmp(&(&b.url, &b.dist)));
    Ok(Json(serde_json::json!({
        "release": release.as_str(),
        "uploads": index.uploads,
        "files": files,
    })))
}

fn release_not_found(project: &ProjectId, release: &Release) -> ApiError {
    ApiError::not_found(
        "release_not_found",
        format!("project {project} has no release {release:?}"),
    )
}

/// Finds an artifact of a release by its ID (SHA-256) or its URL (`?url=`).
async fn find_in_release(
    state: &AppState,
    project: &ProjectId,
    release: &Release,
    id: &str,
) -> ApiResult<crate::index::IndexedArtifact> {
    let index = state.index.release(project, release).await?;
    if index.uploads == 0 {
        return Err(release_not_found(project, release));
    }
    index
        .files
        .values()
        .find(|a| a.entry.sha256.as_str() == id || a.entry.url.as_str() == id)
        .cloned()
        .ok_or_else(|| {
            ApiError::not_found(
                "artifact_not_found",
                format!("release {release:?} has no artifact {id:?}"),
            )
        })
}

/// `GET /api/v1/projects/{p}/releases/{r}/files/{id}`: the artifact's content, streamed.
/// `id` is the SHA-256 the listing shows (or the URL, percent-encoded).
pub async fn get_release_file(
    State(state): State<AppState>,
    Path((p, r, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let project = project(&p)?;
    state.auth.check(&headers, Scope::Upload, Some(&project))?;
    let release = release(&r)?;
    let artifact = find_in_release(&state, &project, &release, &id).await?;
    let Some((size, stream)) = state
        .store
        .get_stream(&Store::blob_key(&artifact.entry.sha256))
        .await?
    else {
        return Err(ApiError::not_found(
            "blob_missing",
            format!(
                "the content of {} is missing from the store",
                artifact.entry.url
            ),
        ));
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
            (
                header::HeaderName::from_static("x-tracemap-url"),
                artifact.entry.url.to_string(),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `DELETE /api/v1/projects/{p}/releases/{r}/files/{id}`: removes one artifact from the
/// release by writing a newer upload that deletes its URL (uploads are immutable).
pub async fn delete_release_file(
    State(state): State<AppState>,
    Path((p, r, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let project = project(&p)?;
    state.auth.check(&headers, Scope::Admin, Some(&project))?;
    let release = release(&r)?;
    let artifact = find_in_release(&state, &project, &release, &id).await?;
    let mut manifest = UploadManifest::new(project.clone(), UploadSource::Delete);
    manifest.release = Some(release);
    manifest.dist = artifact.dist.clone();
    manifest.deleted_urls.push(artifact.entry.url.clone());
    state.store.commit_upload(&manifest).await?;
    state.index.invalidate(&project);
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/projects/{p}/releases/{r}`
pub async fn delete_release(
    State(state): State<AppState>,
    Path((p, r)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let project = project(&p)?;
    state.auth.check(&headers, Scope::Admin, Some(&project))?;
    let release = release(&r)?;
    let n = state.store.delete_release(&project, &release).await?;
    state.index.invalidate(&project);
    if n == 0 {
        return Err(release_not_found(&project, &release));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct DebugListQuery {
    debug_id: Option<String>,
    code_id: Option<String>,
}

/// `GET /api/v1/projects/{p}/debug-files?debug_id=…|code_id=…`; without a filter, every
/// debug file of the project.
pub async fn list_debug_files(
    State(state): State<AppState>,
    Path(p): Path<String>,
    Query(q): Query<DebugListQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let project = project(&p)?;
    state.auth.check(&headers, Scope::Upload, Some(&project))?;
    let debug_id = q.debug_id.as_deref().map(parse_debug_id).transpose()?;
    let code_id = q.code_id.as_deref().map(parse_code_id).transpose()?;
    let manifests: Vec<std::sync::Arc<UploadManifest>> = match (&debug_id, &code_id) {
        (Some(id), _) => state.index.by_debug_id(&project, id).await?.to_vec(),
        (None, Some(id)) => state.index.by_code_id(&project, id).await?.to_vec(),
        (None, None) => {
            let mut all = Vec::new();
            for id in debug_file_uploads(&state, &project).await? {
                if let Some(m) = state.index.manifest(&project, id).await? {
                    all.push(m);
                }
            }
            all
        }
    };
    let mut files = Vec::new();
    for m in &manifests {
        for d in &m.debug_files {
            if debug_id.is_some_and(|id| d.debug_id != Some(id))
                || code_id
                    .as_ref()
                    .is_some_and(|id| d.code_id.as_ref() != Some(id))
            {
                continue;
            }
            files.push(DebugFileView {
                upload_id: Some(m.id.to_string()),
                ..DebugFileView::of(d)
            });
        }
    }
    Ok(Json(serde_json::json!({ "debug_files": files })))
}

/// Uploads with live debug-ID pointers that hold debug files.
async fn debug_file_uploads(
    state: &AppState,
    project: &ProjectId,
) -> ApiResult<Vec<crate::store::UploadId>> {
    let prefix = Store::project_prefix(project).child("debug-ids");
    let mut ids: Vec<crate::store::UploadId> = state
        .store
        .list(&prefix)
        .await?
        .into_iter()
        .filter_map(|m| m.location.filename().and_then(|f| f.parse().ok()))
        .collect();
    ids.sort();
    ids.dedup();
    let mut out = Vec::new();
    for id in ids {
        if let Some(m) = state.index.manifest(project, id).await? {
            if !m.debug_files.is_empty() {
                out.push(id);
            }
        }
    }
    Ok(out)
}

/// `DELETE /api/v1/projects/{p}/debug-files/{debug_id}`: every debug file with that ID.
pub async fn delete_debug_files(
    State(state): State<AppState>,
    Path((p, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let project = project(&p)?;
    state.auth.check(&headers, Scope::Admin, Some(&project))?;
    let debug_id = parse_debug_id(&id)?;
    let manifests = state.index.by_debug_id(&project, &debug_id).await?;
    let mut deleted = 0;
    for m in manifests.iter() {
        let matching: Vec<&DebugFileEntry> = m
            .debug_files
            .iter()
            .filter(|d| d.debug_id == Some(debug_id))
            .collect();
        if matching.is_empty() {
            continue;
        }
        let upload = m.id.to_string();
        state
            .store
            .delete(&Store::debug_id_prefix(&project, &debug_id).child(upload.as_str()))
            .await?;
        for d in matching {
            if let Some(code_id) = &d.code_id {
                state
                    .store
                    .delete(&Store::code_id_prefix(&project, code_id).child(upload.as_str()))
                    .await?;
            }
            deleted += 1;
        }
    }
    state.index.invalidate(&project);
    if deleted == 0 {
        return Err(ApiError::not_found(
            "debug_file_not_found",
            format!("project {project} has no debug file {debug_id}"),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}
