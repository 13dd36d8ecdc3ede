//! sentry-cli compatibility: the chunk-upload, assemble and release endpoints that the
//! unmodified `sentry-cli` (2.x and 3.x) uses, so a CI pipeline switches to Tracemap by
//! setting `SENTRY_URL`. Protocol: `shared/specs/sentry-cli.md`.
//!
//! Tenancy: a Sentry *project slug* is a Tracemap project; the organisation slug in the
//! path is accepted and otherwise ignored (one Tracemap deployment is one organisation).
//! Tokens are Tracemap tokens, sent by sentry-cli as `Authorization: Bearer …`.
//!
//! Storage (all through the store, so a restart loses nothing):
//! ```text
//! chunks/sha1/ab/abcdef…                        chunk contents, verified on receipt, expire
//! sentry/assemble/{kind}/{checksum}.json        assemble state per checksum
//! sentry/releases/{project}/{version}/{ulid}.json  release metadata, newest wins
//! ```
//! Assembly runs in the background, started by the first assemble call that finds every
//! chunk. A state left `created`/`assembling` by a crash is restarted by the next call.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use object_store::path::{Path as Key, PathPart};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha1::Digest;

use crate::config::Scope;
use crate::error::{ApiError, ApiResult};
use crate::http::AppState;
use crate::ingest::{self, Received};
use crate::store::{now_rfc3339, Store, UploadManifest, UploadSource};
use crate::types::ProjectId;

/// Bytes per chunk we ask for (a power of two, as old clients require).
const CHUNK_SIZE: u64 = 8 << 20;
const CHUNKS_PER_REQUEST: u64 = 64;
const MAX_REQUEST_SIZE: u64 = 32 << 20;
/// How long chunks are kept before they expire.
const CHUNK_TTL: Duration = Duration::from_secs(24 * 3600);

/// The sentry-cli compatible routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/0/", get(info))
        .route(
            "/api/0/organizations/{org}/chunk-upload/",
            get(chunk_options).post(chunk_upload),
        )
        .route(
            "/api/0/organizations/{org}/artifactbundle/assemble/",
            post(assemble_bundle),
        )
        .route(
            "/api/0/organizations/{org}/releases/{version}/assemble/",
            post(assemble_release_bundle),
        )
        .route(
            "/api/0/projects/{org}/{project}/files/difs/assemble/",
            post(assemble_difs),
        )
        .route(
            "/api/0/organizations/{org}/releases/",
            post(create_release_org).get(list_releases_org),
        )
        .route(
            "/api/0/organizations/{org}/releases/{version}/",
            get(release_info_org).put(update_release_org),
        )
        .route(
            "/api/0/projects/{org}/{project}/releases/",
            post(create_release_project).get(list_releases_project),
        )
        .route(
            "/api/0/projects/{org}/{project}/releases/{version}/",
            get(release_info_project).put(update_release_project),
        )
}

/// Errors in the shape sentry-cli prints: `{"detail": "..."}` (plus our usual `error`).
fn sentry_error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    (
        status,
        Json(serde_json::json!({"detail": message, "error": {"code": "sentry_api", "message": message}})),
    )
        .into_response()
}

fn check_projects(
    state: &AppState,
    headers: &HeaderMap,
    projects: &[String],
) -> ApiResult<Vec<ProjectId>> {
    let mut out = Vec::new();
    for p in projects {
        let id = ProjectId::parse(p)?;
        state.auth.check(headers, Scope::Upload, Some(&id))?;
        out.push(id);
    }
    if out.is_empty() {
        state.auth.check(headers, Scope::Upload, None)?;
    }
    Ok(out)
}

/// `GET /api/0/`: what `sentry-cli info` asks.
async fn info(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let auth = state.auth.check(&headers, Scope::Upload, None).ok();
    Json(serde_json::json!({
        "version": "0",
        "auth": auth.map(|c| serde_json::json!({"scopes": ["project:releases", "project:write", "org:read"], "name": c.name})),
        "user": null,
        "server": "tracemap",
    }))
    .into_response()
}

fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &state.config.public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("http");
    format!("{proto}://{host}")
}

/// `GET /api/0/organizations/{org}/chunk-upload/`
async fn chunk_options(
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    state.auth.check(&headers, Scope::Upload, None)?;
    Ok(Json(serde_json::json!({
        "url": format!("{}/api/0/organizations/{}/chunk-upload/", base_url(&state, &headers), org),
        "chunkSize": CHUNK_SIZE,
        "chunksPerRequest": CHUNKS_PER_REQUEST,
        "maxFileSize": state.config.limits.max_file_bytes,
        "maxRequestSize": MAX_REQUEST_SIZE,
        "concurrency": 8,
        "hashAlgorithm": "sha1",
        "compression": ["gzip"],
        "maxWait": 300,
        "accept": ["debug_files", "release_files", "pdbs", "sources", "bcsymbolmaps",
                   "il2cpp", "portablepdbs", "artifact_bundles", "artifact_bundles_v2"],
    })))
}

fn chunk_key(sha1: &str) -> Key {
    Key::from_iter(["chunks", "sha1", &sha1[..2], sha1])
}

fn is_sha1(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `POST <chunk url>`: multipart, one part per chunk named `file` (raw) or `file_gzip`, the
/// filename being the SHA-1 of the uncompressed chunk. Verified before stored.
async fn chunk_upload(
    State(state): State<AppState>,
    Path(_org): Path<String>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    if let Err(e) = state.auth.check(&headers, Scope::Upload, None) {
        return e.into_response();
    }
    let mut count = 0u64;
    let mut total = 0u64;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return sentry_error(StatusCode::BAD_REQUEST, e.body_text()),
        };
        let gzip = match field.name() {
            Some("file_gzip") => true,
            Some("file") => false,
            other => {
                return sentry_error(
                    StatusCode::BAD_REQUEST,
                    format!("unexpected part {other:?}"),
                )
            }
        };
        let Some(name) = field.file_name().map(|n| n.to_ascii_lowercase()) else {
            return sentry_error(StatusCode::BAD_REQUEST, "chunk part without a filename");
        };
        if !is_sha1(&name) {
            return sentry_error(
                StatusCode::BAD_REQUEST,
                format!("chunk name {name:?} is not a SHA-1"),
            );
        }
        count += 1;
        if count > CHUNKS_PER_REQUEST {
            return sentry_error(StatusCode::BAD_REQUEST, "Too many chunks");
        }
        let raw = match field.bytes().await {
            Ok(b) => b,
            Err(e) => return sentry_error(StatusCode::BAD_REQUEST, e.body_text()),
        };
        let data = if gzip {
            match inflate_capped(&raw, CHUNK_SIZE) {
                Ok(d) => Bytes::from(d),
                Err(e) => return sentry_error(StatusCode::BAD_REQUEST, e),
            }
        } else {
            raw
        };
        if data.len() as u64 > CHUNK_SIZE {
            return sentry_error(StatusCode::BAD_REQUEST, "Chunk size too large");
        }
        total += data.len() as u64;
        if total > MAX_REQUEST_SIZE {
            return sentry_error(StatusCode::BAD_REQUEST, "Request too large");
        }
        let actual = hex::encode(sha1::Sha1::digest(&data));
        if actual != name {
            return sentry_error(
                StatusCode::BAD_REQUEST,
                format!("chunk {name} does not match its content (SHA-1 {actual})"),
            );
        }
        let key = chunk_key(&name);
        // Duplicates (also within one request) are normal: the content is the same.
        match state.store.exists(&key).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => return ApiError::from(e).into_response(),
        }
        if let Err(e) = state.store.put_bytes(&key, data).await {
            return ApiError::from(e).into_response();
        }
    }
    StatusCode::OK.into_response()
}

fn inflate_capped(data: &[u8], cap: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(cap + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("chunk is not valid gzip: {e}"))?;
    if out.len() as u64 > cap {
        return Err("Chunk size too large".into());
    }
    Ok(out)
}

// ---- assemble state -----------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum AssembleState {
    NotFound,
    Created,
    Assembling,
    Ok,
    Error,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredState {
    state: AssembleState,
    #[serde(default)]
    detail: Option<String>,
    /// For debug files: the `dif` object sentry-cli prints.
    #[serde(default)]
    dif: Option<serde_json::Value>,
    updated_at: String,
}

fn state_key(kind: &str, checksum: &str) -> Key {
    Key::from_iter(["sentry", "assemble", kind, checksum]).child(format!("{checksum}.json"))
}

/// Assemblies running in this process, by state key.
fn running() -> &'static Mutex<HashSet<String>> {
    static RUNNING: std::sync::OnceLock<Mutex<HashSet<String>>> = std::sync::OnceLock::new();
    RUNNING.get_or_init(|| Mutex::new(HashSet::new()))
}

async fn missing_chunks(store: &Store, chunks: &[String]) -> ApiResult<Vec<String>> {
    let mut missing = Vec::new();
    let mut seen = HashSet::new();
    for c in chunks {
        if seen.insert(c.clone()) && !store.exists(&chunk_key(c)).await? {
            missing.push(c.clone());
        }
    }
    Ok(missing)
}

fn state_json(s: &StoredState, missing: Vec<String>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "state": s.state,
        "missingChunks": missing,
        "detail": s.detail,
    });
    if let Some(dif) = &s.dif {
        v["dif"] = dif.clone();
    }
    v
}

/// The state machine shared by bundles and debug files: `not_found` with the complete list
/// of missing chunks, else the stored state, else start assembling and answer `created`.
async fn assemble_step<F, Fut>(
    state: &AppState,
    kind: &str,
    checksum: &str,
    chunks: &[String],
    job: F,
) -> ApiResult<serde_json::Value>
where
    F: FnOnce(tempfile::TempPath) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Option<serde_json::Value>, String>> + Send,
{
    let missing = missing_chunks(&state.store, chunks).await?;
    let key = state_key(kind, checksum);
    let stored: Option<StoredState> = state.store.get_json(&key).await?;
    if let Some(s) = &stored {
        let stalled = matches!(s.state, AssembleState::Created | AssembleState::Assembling)
            && !running().lock().contains(key.as_ref());
        if !stalled && s.state != AssembleState::NotFound {
            return Ok(state_json(s, Vec::new()));
        }
    }
    if !missing.is_empty() {
        let s = StoredState {
            state: AssembleState::NotFound,
            detail: None,
            dif: None,
            updated_at: now_rfc3339(),
        };
        return Ok(state_json(&s, missing));
    }
    if chunks.is_empty() {
        let s = StoredState {
            state: AssembleState::NotFound,
            detail: Some("no chunks listed".into()),
            dif: None,
            updated_at: now_rfc3339(),
        };
        return Ok(state_json(&s, Vec::new()));
    }
    let created = StoredState {
        state: AssembleState::Created,
        detail: None,
        dif: None,
        updated_at: now_rfc3339(),
    };
    if !running().lock().insert(key.to_string()) {
        return Ok(state_json(&created, Vec::new()));
    }
    state.store.put_json(&key, &created).await?;
    let state2 = state.clone();
    let chunks = chunks.to_vec();
    let checksum = checksum.to_owned();
    tokio::spawn(async move {
        let result = run_assembly(&state2, &key, &checksum, &chunks, job).await;
        let final_state = match result {
            Ok(dif) => StoredState {
                state: AssembleState::Ok,
                detail: None,
                dif,
                updated_at: now_rfc3339(),
            },
            Err(detail) => {
                tracing::warn!(checksum, %detail, "sentry-cli assemble failed");
                StoredState {
                    state: AssembleState::Error,
                    detail: Some(detail),
                    dif: None,
                    updated_at: now_rfc3339(),
                }
            }
        };
        if let Err(e) = state2.store.put_json(&key, &final_state).await {
            tracing::error!(error = %e, "cannot record assemble state");
        }
        running().lock().remove(key.as_ref());
    });
    Ok(state_json(&created, Vec::new()))
}

async fn run_assembly<F, Fut>(
    state: &AppState,
    key: &Key,
    checksum: &str,
    chunks: &[String],
    job: F,
) -> Result<Option<serde_json::Value>, String>
where
    F: FnOnce(tempfile::TempPath) -> Fut,
    Fut: std::future::Future<Output = Result<Option<serde_json::Value>, String>>,
{
    let assembling = StoredState {
        state: AssembleState::Assembling,
        detail: None,
        dif: None,
        updated_at: now_rfc3339(),
    };
    state
        .store
        .put_json(key, &assembling)
        .await
        .map_err(|e| e.to_string())?;
    // Concatenate the chunks into a local file, checking the whole file's SHA-1.
    let tmp = state.config.tmp_dir();
    let mut writer =
        ingest::HashingWriter::new(&tmp, state.config.limits.max_file_bytes, "assembled file")
            .map_err(|e| e.to_string())?;
    let mut sha1 = sha1::Sha1::new();
    for c in chunks {
        let bytes = state
            .store
            .get_bytes(&chunk_key(c))
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("chunk {c} expired before assembly"))?;
        sha1.update(&bytes);
        writer.push(&bytes).map_err(|e| e.to_string())?;
    }
    let actual = hex::encode(sha1.finalize());
    if actual != checksum {
        return Err(format!(
            "assembled file has SHA-1 {actual}, expected {checksum}"
        ));
    }
    let file = writer.finish().map_err(|e| e.to_string())?;
    job(file.path).await
}

fn api_error_text(e: ApiError) -> String {
    e.to_string()
}

// ---- artifact bundles -------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleAssembleRequest {
    checksum: String,
    #[serde(default)]
    chunks: Vec<String>,
    #[serde(default)]
    projects: Vec<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    dist: Option<String>,
}

#[allow(clippy::result_large_err)] // the error is the response to send
fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body)
        .map_err(|e| sentry_error(StatusCode::BAD_REQUEST, format!("invalid request: {e}")))
}

/// `POST /api/0/organizations/{org}/artifactbundle/assemble/`
async fn assemble_bundle(
    State(state): State<AppState>,
    Path(_org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: BundleAssembleRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    bundle_common(
        state,
        headers,
        req.checksum,
        req.chunks,
        req.projects,
        req.version,
        req.dist,
    )
    .await
}

#[derive(Debug, Deserialize)]
struct ReleaseBundleRequest {
    checksum: String,
    #[serde(default)]
    chunks: Vec<String>,
}

/// `POST /api/0/organizations/{org}/releases/{version}/assemble/` (2.x "release bundle"):
/// the projects come from the bundle's manifest.
async fn assemble_release_bundle(
    State(state): State<AppState>,
    Path((_org, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: ReleaseBundleRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    bundle_common(
        state,
        headers,
        req.checksum,
        req.chunks,
        Vec::new(),
        Some(version),
        None,
    )
    .await
}

async fn bundle_common(
    state: AppState,
    headers: HeaderMap,
    checksum: String,
    chunks: Vec<String>,
    projects: Vec<String>,
    version: Option<String>,
    dist: Option<String>,
) -> Response {
    if !is_sha1(&checksum) || !chunks.iter().all(|c| is_sha1(c)) {
        return sentry_error(
            StatusCode::BAD_REQUEST,
            "checksum and chunks must be 40 lowercase hex digits",
        );
    }
    if dist.is_some() && version.is_none() {
        return sentry_error(StatusCode::BAD_REQUEST, "dist requires a version");
    }
    let projects = match check_projects(&state, &headers, &projects) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let job_state = state.clone();
    let job = move |path: tempfile::TempPath| async move {
        let size = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
        let zip = ingest::TempFile {
            sha256: crate::types::Sha256::from_digest(&[0; 32]),
            size,
            path,
        };
        let projects = if projects.is_empty() {
            // 2.x release bundles name their project in the manifest.
            project_from_bundle(&zip.path).into_iter().collect()
        } else {
            projects
        };
        if projects.is_empty() {
            return Err("the request names no project".to_owned());
        }
        let (first, rest) = projects.split_first().ok_or("no project")?;
        let mut manifest = UploadManifest::new(first.clone(), UploadSource::SentryCli);
        let (prepared, _warnings) = crate::http::upload::prepare_bundle(
            &job_state,
            &mut manifest,
            zip,
            version.as_deref(),
            dist.as_deref(),
            None,
        )
        .await
        .map_err(api_error_text)?;
        let committed = crate::http::upload::commit_manifest(&job_state, manifest, prepared)
            .await
            .map_err(api_error_text)?;
        // The blobs serve every project; each further project gets its own manifest.
        for project in rest {
            let mut m = committed.clone();
            m.id = crate::store::UploadId::new();
            m.project = project.clone();
            job_state
                .store
                .commit_upload(&m)
                .await
                .map_err(|e| e.to_string())?;
            job_state.index.invalidate(project);
            job_state.caches.after_upload(&job_state, &m);
        }
        if let Some(v) = &version {
            for p in std::iter::once(first).chain(rest) {
                ensure_release(&job_state, p, v).await;
            }
        }
        Ok(None)
    };
    match assemble_step(&state, "bundle", &checksum, &chunks, job).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

fn project_from_bundle(path: &std::path::Path) -> Option<ProjectId> {
    use std::io::{Read, Seek};
    let mut f = std::fs::File::open(path).ok()?;
    let mut head = [0u8; 8];
    f.read_exact(&mut head).ok()?;
    if &head[..4] != b"SYSB" {
        f.rewind().ok()?;
    }
    let mut rest = Vec::new();
    f.read_to_end(&mut rest).ok()?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(rest)).ok()?;
    let mut manifest = String::new();
    archive
        .by_name("manifest.json")
        .ok()?
        .read_to_string(&mut manifest)
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&manifest).ok()?;
    ProjectId::parse(v["project"].as_str()?).ok()
}

// ---- debug files ------------------------------------------------------------------------

/// One file of a difs assemble request. Its `debug_id` (a hint sentry-cli sends) is not
/// needed: the debug IDs come from the file itself.
#[derive(Debug, Deserialize)]
struct DifRequest {
    name: String,
    #[serde(default)]
    chunks: Vec<String>,
}

/// `POST /api/0/projects/{org}/{project}/files/difs/assemble/`: a map keyed by whole-file
/// SHA-1; the answer has the same keys.
async fn assemble_difs(
    State(state): State<AppState>,
    Path((_org, project)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let project = match check_projects(&state, &headers, &[project]) {
        Ok(mut p) => p.remove(0),
        Err(e) => return e.into_response(),
    };
    let req: BTreeMap<String, DifRequest> = match parse_json(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut out = serde_json::Map::new();
    for (checksum, file) in req {
        if !is_sha1(&checksum) || !file.chunks.iter().all(|c| is_sha1(c)) {
            return sentry_error(
                StatusCode::BAD_REQUEST,
                "checksum and chunks must be 40 lowercase hex digits",
            );
        }
        let job_state = state.clone();
        let project = project.clone();
        let name = ingest::safe_relative_path(&file.name)
            .map(|n| ingest::file_name(&n).to_owned())
            .unwrap_or_else(|| "upload".into());
        let sha1 = checksum.clone();
        let job = move |path: tempfile::TempPath| async move {
            let size = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
            let sha256 = {
                let mut h = sha2::Sha256::new();
                let mut f = std::fs::File::open(&path).map_err(|e| e.to_string())?;
                std::io::copy(&mut f, &mut h).map_err(|e| e.to_string())?;
                crate::types::Sha256::from_digest(&h.finalize())
            };
            let received = Received {
                name: name.clone(),
                file: ingest::TempFile { path, sha256, size },
            };
            let (prepared, _) =
                crate::http::upload::prepare_debug_files(&job_state, vec![received])
                    .await
                    .map_err(api_error_text)?;
            let manifest = UploadManifest::new(project, UploadSource::SentryCli);
            let response = crate::http::upload::commit(&job_state, manifest, prepared, Vec::new())
                .await
                .map_err(api_error_text)?;
            let d = response
                .debug_files
                .first()
                .ok_or("no debug file in upload")?;
            Ok(Some(serde_json::json!({
                "id": response.upload_id,
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
            })))
        };
        match assemble_step(&state, "dif", &checksum, &file.chunks, job).await {
            Ok(v) => {
                out.insert(checksum, v);
            }
            Err(e) => return e.into_response(),
        }
    }
    Json(serde_json::Value::Object(out)).into_response()
}

// ---- releases ---------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReleaseMeta {
    version: String,
    #[serde(rename = "dateCreated")]
    date_created: String,
    #[serde(rename = "dateStarted", default)]
    date_started: Option<String>,
    #[serde(rename = "dateReleased", default)]
    date_released: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(rename = "ref", default)]
    reference: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ReleaseBody {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    projects: Vec<String>,
    #[serde(rename = "dateStarted", default)]
    date_started: Option<String>,
    #[serde(rename = "dateReleased", default)]
    date_released: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(rename = "ref", default)]
    reference: Option<String>,
}

fn release_prefix(project: &ProjectId, version: &str) -> Key {
    Key::from_iter(["sentry", "releases", project.as_str()]).child(PathPart::from(version))
}

async fn load_release(
    state: &AppState,
    project: &ProjectId,
    version: &str,
) -> ApiResult<Option<ReleaseMeta>> {
    let mut metas = state.store.list(&release_prefix(project, version)).await?;
    metas.sort_by(|a, b| a.location.as_ref().cmp(b.location.as_ref()));
    match metas.last() {
        Some(m) => Ok(state.store.get_json(&m.location).await?),
        None => Ok(None),
    }
}

async fn save_release(state: &AppState, project: &ProjectId, meta: &ReleaseMeta) -> ApiResult<()> {
    let key = release_prefix(project, &meta.version).child(format!("{}.json", ulid::Ulid::new()));
    state.store.put_json(&key, meta).await?;
    Ok(())
}

/// Records a release for a project if it has none yet (uploads with a version create it).
async fn ensure_release(state: &AppState, project: &ProjectId, version: &str) {
    if let Ok(None) = load_release(state, project, version).await {
        let meta = ReleaseMeta {
            version: version.to_owned(),
            date_created: now_rfc3339(),
            date_started: None,
            date_released: None,
            url: None,
            reference: None,
        };
        if let Err(e) = save_release(state, project, &meta).await {
            tracing::warn!(project = %project, version, error = %e, "cannot record release");
        }
    }
}

fn release_json(meta: &ReleaseMeta, projects: &[ProjectId]) -> serde_json::Value {
    serde_json::json!({
        "id": meta.version,
        "version": meta.version,
        "shortVersion": meta.version,
        "ref": meta.reference,
        "url": meta.url,
        "dateCreated": meta.date_created,
        "dateReleased": meta.date_released,
        "dateStarted": meta.date_started,
        "lastEvent": null,
        "newGroups": 0,
        "status": "open",
        "projects": projects.iter().map(|p| serde_json::json!({"slug": p.as_str(), "name": p.as_str()})).collect::<Vec<_>>(),
    })
}

async fn create_release(
    state: AppState,
    headers: HeaderMap,
    mut projects: Vec<String>,
    body: Bytes,
) -> Response {
    let req: ReleaseBody = match parse_json(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    projects.extend(req.projects.iter().cloned());
    projects.dedup();
    let Some(version) = req.version.clone() else {
        return sentry_error(StatusCode::BAD_REQUEST, "version is required");
    };
    if crate::types::Release::parse(&version).is_err() {
        return sentry_error(
            StatusCode::BAD_REQUEST,
            format!("invalid release version {version:?}"),
        );
    }
    let projects = match check_projects(&state, &headers, &projects) {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => return sentry_error(StatusCode::BAD_REQUEST, "projects is required"),
        Err(e) => return e.into_response(),
    };
    let mut existed = true;
    let mut meta = None;
    for p in &projects {
        match load_release(&state, p, &version).await {
            Ok(Some(m)) => meta = meta.or(Some(m)),
            Ok(None) => existed = false,
            Err(e) => return e.into_response(),
        }
    }
    let mut meta = meta.unwrap_or(ReleaseMeta {
        version: version.clone(),
        date_created: now_rfc3339(),
        date_started: None,
        date_released: None,
        url: None,
        reference: None,
    });
    meta.date_started = req.date_started.or(meta.date_started);
    meta.date_released = req.date_released.or(meta.date_released);
    meta.url = req.url.or(meta.url);
    meta.reference = req.reference.or(meta.reference);
    for p in &projects {
        if let Err(e) = save_release(&state, p, &meta).await {
            return e.into_response();
        }
    }
    let status = if existed {
        StatusCode::ALREADY_REPORTED
    } else {
        StatusCode::CREATED
    };
    (status, Json(release_json(&meta, &projects))).into_response()
}

async fn update_release(
    state: AppState,
    headers: HeaderMap,
    mut projects: Vec<String>,
    version: String,
    body: Bytes,
) -> Response {
    let req: ReleaseBody = match parse_json(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    projects.extend(req.projects.iter().cloned());
    projects.dedup();
    let projects = match check_projects(&state, &headers, &projects) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let mut found = None;
    for p in &projects {
        if let Ok(Some(m)) = load_release(&state, p, &version).await {
            found = Some(m);
            break;
        }
    }
    let Some(mut meta) = found else {
        return sentry_error(
            StatusCode::NOT_FOUND,
            format!("release {version:?} not found"),
        );
    };
    meta.date_released = req.date_released.or(meta.date_released);
    meta.date_started = req.date_started.or(meta.date_started);
    meta.url = req.url.or(meta.url);
    meta.reference = req.reference.or(meta.reference);
    for p in &projects {
        if let Err(e) = save_release(&state, p, &meta).await {
            return e.into_response();
        }
    }
    Json(release_json(&meta, &projects)).into_response()
}

/// Projects this token may see (for org-scoped release reads): every project with
/// release metadata.
async fn visible_projects(state: &AppState, headers: &HeaderMap) -> ApiResult<Vec<ProjectId>> {
    let mut out = Vec::new();
    for p in state
        .store
        .list_dirs(&Key::from_iter(["sentry", "releases"]))
        .await?
    {
        if let Ok(id) = ProjectId::parse(&p) {
            if state.auth.check(headers, Scope::Upload, Some(&id)).is_ok() {
                out.push(id);
            }
        }
    }
    Ok(out)
}

async fn release_info(
    state: AppState,
    headers: HeaderMap,
    projects: Vec<ProjectId>,
    version: String,
) -> Response {
    let mut found = None;
    let mut with = Vec::new();
    for p in projects {
        if state.auth.check(&headers, Scope::Upload, Some(&p)).is_err() {
            continue;
        }
        if let Ok(Some(m)) = load_release(&state, &p, &version).await {
            found = found.or(Some(m));
            with.push(p);
        }
    }
    match found {
        Some(m) => Json(release_json(&m, &with)).into_response(),
        None => sentry_error(
            StatusCode::NOT_FOUND,
            format!("release {version:?} not found"),
        ),
    }
}

async fn list_releases(state: AppState, headers: HeaderMap, projects: Vec<ProjectId>) -> Response {
    let mut out: BTreeMap<String, (ReleaseMeta, Vec<ProjectId>)> = BTreeMap::new();
    for p in projects {
        if state.auth.check(&headers, Scope::Upload, Some(&p)).is_err() {
            continue;
        }
        let prefix = Key::from_iter(["sentry", "releases", p.as_str()]);
        let versions = match state.store.list_dirs(&prefix).await {
            Ok(v) => v,
            Err(e) => return ApiError::from(e).into_response(),
        };
        for v in versions {
            if let Ok(Some(m)) = load_release(&state, &p, &v).await {
                out.entry(v)
                    .or_insert_with(|| (m, Vec::new()))
                    .1
                    .push(p.clone());
            }
        }
    }
    let mut list: Vec<(ReleaseMeta, Vec<ProjectId>)> = out.into_values().collect();
    list.sort_by(|a, b| b.0.date_created.cmp(&a.0.date_created));
    Json(
        list.iter()
            .map(|(m, p)| release_json(m, p))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

async fn create_release_org(
    State(state): State<AppState>,
    Path(_org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create_release(state, headers, Vec::new(), body).await
}

async fn create_release_project(
    State(state): State<AppState>,
    Path((_org, project)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create_release(state, headers, vec![project], body).await
}

async fn update_release_org(
    State(state): State<AppState>,
    Path((_org, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    update_release(state, headers, Vec::new(), decode_version(&version), body).await
}

async fn update_release_project(
    State(state): State<AppState>,
    Path((_org, project, version)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    update_release(
        state,
        headers,
        vec![project],
        decode_version(&version),
        body,
    )
    .await
}

async fn release_info_org(
    State(state): State<AppState>,
    Path((_org, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match visible_projects(&state, &headers).await {
        Ok(projects) => release_info(state, headers, projects, decode_version(&version)).await,
        Err(e) => e.into_response(),
    }
}

async fn release_info_project(
    State(state): State<AppState>,
    Path((_org, project, version)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    match ProjectId::parse(&project) {
        Ok(p) => release_info(state, headers, vec![p], decode_version(&version)).await,
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn list_releases_org(
    State(state): State<AppState>,
    Path(_org): Path<String>,
    headers: HeaderMap,
) -> Response {
    match visible_projects(&state, &headers).await {
        Ok(projects) => list_releases(state, headers, projects).await,
        Err(e) => e.into_response(),
    }
}

async fn list_releases_project(
    State(state): State<AppState>,
    Path((_org, project)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match ProjectId::parse(&project) {
        Ok(p) => list_releases(state, headers, vec![p]).await,
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// sentry-cli replaces `/` in versions with U+FFFD; axum already percent-decoded the rest.
fn decode_version(v: &str) -> String {
    v.to_owned()
}

/// Removes chunks past their time to live. Assemble states are small and kept.
pub async fn expire(state: &AppState) -> Result<(), crate::store::StoreError> {
    expire_chunks(&state.store, CHUNK_TTL).await.map(|_| ())
}

/// Deletes chunks older than `ttl`; returns how many.
pub async fn expire_chunks(
    store: &Store,
    ttl: Duration,
) -> Result<usize, crate::store::StoreError> {
    let cutoff =
        chrono::Utc::now() - chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::zero());
    let mut deleted = 0;
    for meta in store.list(&Key::from_iter(["chunks", "sha1"])).await? {
        if meta.last_modified < cutoff {
            store.delete(&meta.location).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}
