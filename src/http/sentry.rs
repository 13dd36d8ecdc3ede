//! sentry-cli compatible routes: the endpoints the unmodified `sentry-cli` (2.x and 3.x)
//! uses, so a CI pipeline switches to Tracemap by setting `SENTRY_URL`. Handlers unpack and
//! authorise; the protocol's logic is `app::sentry`. Tokens are Tracemap tokens, sent by
//! sentry-cli as `Authorization: Bearer …`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::app::sentry::assemble::{self, BundleAssemble, DifRequest};
use crate::app::sentry::releases::{self, Created, ReleaseBody};
use crate::app::sentry::{self as protocol, ChunkEncoding, ChunkRequest};
use crate::app::App;
use crate::config::Scope;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::types::ProjectId;

/// The sentry-cli compatible routes.
pub fn routes() -> Router<App> {
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

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("invalid request: {e}")))
}

/// Authorises the upload scope for each named project; with none named, the scope alone.
fn check_projects(
    app: &App,
    headers: &HeaderMap,
    projects: &[String],
) -> ApiResult<Vec<ProjectId>> {
    let mut out = Vec::new();
    for p in projects {
        let id = ProjectId::parse(p)?;
        app.auth.check(headers, Scope::Upload, Some(&id))?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    if out.is_empty() {
        app.auth.check(headers, Scope::Upload, None)?;
    }
    Ok(out)
}

/// `GET /api/0/`: what `sentry-cli info` asks.
async fn info(State(app): State<App>, headers: HeaderMap) -> Response {
    let auth = app.auth.check(&headers, Scope::Upload, None).ok();
    Json(serde_json::json!({
        "version": "0",
        "auth": auth.map(|c| serde_json::json!({"scopes": ["project:releases", "project:write", "org:read"], "name": c.name})),
        "user": null,
        "server": "tracemap",
    }))
    .into_response()
}

fn base_url(app: &App, headers: &HeaderMap) -> String {
    if let Some(u) = &app.config.public_url {
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
    State(app): State<App>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    app.auth.check(&headers, Scope::Upload, None)?;
    let url = format!(
        "{}/api/0/organizations/{}/chunk-upload/",
        base_url(&app, &headers),
        org
    );
    Ok(Json(protocol::chunk_options(&app, url)))
}

/// `POST <chunk url>`: multipart, one part per chunk named `file` (raw) or `file_gzip`, the
/// filename being the SHA-1 of the uncompressed chunk. Verified before stored.
async fn chunk_upload(
    State(app): State<App>,
    Path(_org): Path<String>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> ApiResult<StatusCode> {
    app.auth.check(&headers, Scope::Upload, None)?;
    let mut request = ChunkRequest::default();
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::new(ErrorCode::InvalidMultipart, e.body_text())
    };
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        let encoding = match field.name() {
            Some("file_gzip") => ChunkEncoding::Gzip,
            Some("file") => ChunkEncoding::Raw,
            other => {
                return Err(ApiError::new(
                    ErrorCode::InvalidMultipart,
                    format!("unexpected part {:?}", other.unwrap_or_default()),
                ))
            }
        };
        let Some(name) = field.file_name().map(str::to_owned) else {
            return Err(ApiError::new(
                ErrorCode::InvalidMultipart,
                "chunk part without a filename",
            ));
        };
        let raw = field.bytes().await.map_err(bad)?;
        request.accept(&app, &name, encoding, raw).await?;
    }
    Ok(StatusCode::OK)
}

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

/// `POST /api/0/organizations/{org}/artifactbundle/assemble/`
async fn assemble_bundle(
    State(app): State<App>,
    Path(_org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let req: BundleAssembleRequest = parse_json(&body)?;
    let projects = check_projects(&app, &headers, &req.projects)?;
    let v = assemble::bundle(
        &app,
        BundleAssemble {
            checksum: req.checksum,
            chunks: req.chunks,
            projects,
            version: req.version,
            dist: req.dist,
        },
    )
    .await?;
    Ok(Json(v))
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
    State(app): State<App>,
    Path((_org, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let req: ReleaseBundleRequest = parse_json(&body)?;
    check_projects(&app, &headers, &[])?;
    let v = assemble::bundle(
        &app,
        BundleAssemble {
            checksum: req.checksum,
            chunks: req.chunks,
            projects: Vec::new(),
            version: Some(version),
            dist: None,
        },
    )
    .await?;
    Ok(Json(v))
}

/// `POST /api/0/projects/{org}/{project}/files/difs/assemble/`: a map keyed by whole-file
/// SHA-1; the answer has the same keys.
async fn assemble_difs(
    State(app): State<App>,
    Path((_org, project)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let project = check_projects(&app, &headers, &[project])?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("authorised project vanished"))?;
    let req: BTreeMap<String, DifRequest> = parse_json(&body)?;
    Ok(Json(assemble::debug_files(&app, &project, req).await?))
}

// ---- releases ---------------------------------------------------------------------------

async fn create_release(
    app: App,
    headers: HeaderMap,
    mut projects: Vec<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: ReleaseBody = parse_json(&body)?;
    projects.extend(req.projects.iter().cloned());
    let version = req
        .version
        .clone()
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidRequest, "version is required"))?;
    let projects = check_projects(&app, &headers, &projects)?;
    let (created, v) = releases::create(&app, &projects, &version, req).await?;
    let status = match created {
        Created::New => StatusCode::CREATED,
        Created::Existed => StatusCode::ALREADY_REPORTED,
    };
    Ok((status, Json(v)).into_response())
}

async fn update_release(
    app: App,
    headers: HeaderMap,
    mut projects: Vec<String>,
    version: String,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let req: ReleaseBody = parse_json(&body)?;
    projects.extend(req.projects.iter().cloned());
    let projects = check_projects(&app, &headers, &projects)?;
    Ok(Json(
        releases::update(&app, &projects, &version, req).await?,
    ))
}

/// The projects among `candidates` this token may read.
fn readable(app: &App, headers: &HeaderMap, candidates: Vec<ProjectId>) -> Vec<ProjectId> {
    candidates
        .into_iter()
        .filter(|p| app.auth.check(headers, Scope::Upload, Some(p)).is_ok())
        .collect()
}

async fn create_release_org(
    State(app): State<App>,
    Path(_org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    create_release(app, headers, Vec::new(), body).await
}

async fn create_release_project(
    State(app): State<App>,
    Path((_org, project)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    create_release(app, headers, vec![project], body).await
}

async fn update_release_org(
    State(app): State<App>,
    Path((_org, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    update_release(app, headers, Vec::new(), version, body).await
}

async fn update_release_project(
    State(app): State<App>,
    Path((_org, project, version)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    update_release(app, headers, vec![project], version, body).await
}

async fn release_info_org(
    State(app): State<App>,
    Path((_org, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let projects = readable(
        &app,
        &headers,
        releases::projects_with_releases(&app).await?,
    );
    Ok(Json(releases::info(&app, projects, &version).await?))
}

async fn release_info_project(
    State(app): State<App>,
    Path((_org, project, version)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let projects = readable(&app, &headers, vec![ProjectId::parse(&project)?]);
    Ok(Json(releases::info(&app, projects, &version).await?))
}

async fn list_releases_org(
    State(app): State<App>,
    Path(_org): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let projects = readable(
        &app,
        &headers,
        releases::projects_with_releases(&app).await?,
    );
    Ok(Json(releases::list(&app, projects).await?))
}

async fn list_releases_project(
    State(app): State<App>,
    Path((_org, project)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let projects = readable(&app, &headers, vec![ProjectId::parse(&project)?]);
    Ok(Json(releases::list(&app, projects).await?))
}
