//! sentry-cli compatible routes: the endpoints the unmodified `sentry-cli` (2.x and 3.x)
//! uses, so a CI pipeline switches to Tracemap by setting `SENTRY_URL`. Handlers unpack and
//! authorise; the protocol's logic is `app::sentry`. Tokens are Tracemap tokens, sent by
//! sentry-cli as `Authorization: Bearer …`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde::Deserialize;

use super::routes::{Access, Group, Routes};
use super::{multipart, read_json, read_part};

use crate::app::sentry::assemble::{self, BundleAssemble};
use crate::app::sentry::difs::{self, DifRequest};
use crate::app::sentry::releases::{self, Created, ReleaseBody};
use crate::app::sentry::{self as protocol, ChunkEncoding, ChunkRequest};
use crate::app::App;
use crate::auth::Caller;
use crate::config::Scope;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::types::ProjectId;

/// Where every sentry-cli route lives; errors under it take Sentry's body shape.
pub(super) const PREFIX: &str = "/api/0/";

/// The sentry-cli compatible routes.
pub(super) fn routes(r: &mut Routes, g: &mut Group) {
    use Access::{Project, Public, Scope as Org};
    use Method as M;
    use Scope::Upload;
    r.add(g, "/api/0/", &[(M::GET, Public)], get(info));
    r.add(
        g,
        "/api/0/organizations/{org}/chunk-upload/",
        &[(M::GET, Org(Upload)), (M::POST, Org(Upload))],
        get(chunk_options).post(chunk_upload),
    );
    r.add(
        g,
        "/api/0/organizations/{org}/artifactbundle/assemble/",
        &[(M::POST, Org(Upload))],
        post(assemble_bundle),
    );
    r.add(
        g,
        "/api/0/organizations/{org}/releases/{version}/assemble/",
        &[(M::POST, Org(Upload))],
        post(assemble_release_bundle),
    );
    r.add(
        g,
        "/api/0/projects/{org}/{project}/files/difs/assemble/",
        &[(M::POST, Project(Upload))],
        post(assemble_difs),
    );
    r.add(
        g,
        "/api/0/organizations/{org}/releases/",
        &[(M::POST, Org(Upload)), (M::GET, Org(Upload))],
        post(create_release_org).get(list_releases_org),
    );
    r.add(
        g,
        "/api/0/organizations/{org}/releases/{version}/",
        &[(M::GET, Org(Upload)), (M::PUT, Org(Upload))],
        get(release_info_org).put(update_release_org),
    );
    r.add(
        g,
        "/api/0/projects/{org}/{project}/releases/",
        &[(M::POST, Project(Upload)), (M::GET, Project(Upload))],
        post(create_release_project).get(list_releases_project),
    );
    r.add(
        g,
        "/api/0/projects/{org}/{project}/releases/{version}/",
        &[(M::GET, Project(Upload)), (M::PUT, Project(Upload))],
        get(release_info_project).put(update_release_project),
    );
}

/// Reads a JSON body under `limits.max_json_bytes` (after the caller was authorised).
async fn json<T: serde::de::DeserializeOwned>(app: &App, body: Body) -> ApiResult<T> {
    read_json(body, app.config.limits.max_json_bytes).await
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
    let auth = app.auth.caller(&headers).ok();
    Json(serde_json::json!({
        "version": "0",
        "auth": auth.map(|c| serde_json::json!({"scopes": sentry_scopes(&c), "name": c.name()})),
        "user": null,
        "server": "tracemap",
    }))
    .into_response()
}

/// The Sentry scopes that match what the token may do here, for `sentry-cli info`.
fn sentry_scopes(caller: &Caller) -> Vec<&'static str> {
    let mut scopes = Vec::new();
    if caller.has(Scope::Upload) {
        scopes.extend(["project:releases", "project:write", "org:read"]);
    }
    if caller.has(Scope::Symbolicate) {
        scopes.extend(["project:read", "event:read"]);
    }
    if caller.has(Scope::Admin) {
        scopes.extend(["project:admin", "org:admin"]);
    }
    scopes
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
    request: axum::extract::Request,
) -> ApiResult<StatusCode> {
    app.auth.check(&headers, Scope::Upload, None)?;
    let mut multipart = multipart(request)
        .await
        .map_err(super::upload::multipart_rejection)?;
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
        // A gzip part may be a little larger than the chunk it inflates to.
        let raw = read_part(field, protocol::CHUNK_SIZE + (64 << 10), "chunk").await?;
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
    body: Body,
) -> ApiResult<Json<serde_json::Value>> {
    let caller = app.auth.check(&headers, Scope::Upload, None)?;
    let req: BundleAssembleRequest = json(&app, body).await?;
    let projects = check_projects(&app, &headers, &req.projects)?;
    let v = assemble::bundle(
        &app,
        BundleAssemble {
            checksum: req.checksum,
            chunks: req.chunks,
            projects,
            caller,
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
    body: Body,
) -> ApiResult<Json<serde_json::Value>> {
    let caller = app.auth.check(&headers, Scope::Upload, None)?;
    let req: ReleaseBundleRequest = json(&app, body).await?;
    let v = assemble::bundle(
        &app,
        BundleAssemble {
            checksum: req.checksum,
            chunks: req.chunks,
            projects: Vec::new(),
            caller,
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
    body: Body,
) -> ApiResult<Json<serde_json::Value>> {
    let project = ProjectId::parse(&project)?;
    app.auth.check(&headers, Scope::Upload, Some(&project))?;
    let req: BTreeMap<String, DifRequest> = json(&app, body).await?;
    Ok(Json(difs::debug_files(&app, &project, req).await?))
}

// ---- releases ---------------------------------------------------------------------------

async fn create_release(
    app: App,
    headers: HeaderMap,
    mut projects: Vec<String>,
    body: Body,
) -> ApiResult<Response> {
    check_projects(&app, &headers, &projects)?;
    let req: ReleaseBody = json(&app, body).await?;
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
    body: Body,
) -> ApiResult<Json<serde_json::Value>> {
    check_projects(&app, &headers, &projects)?;
    let req: ReleaseBody = json(&app, body).await?;
    projects.extend(req.projects.iter().cloned());
    let projects = check_projects(&app, &headers, &projects)?;
    Ok(Json(
        releases::update(&app, &projects, &version, req).await?,
    ))
}

/// The projects with release metadata this token may read (organisation-wide reads): 401
/// without a token, 403 without the upload scope.
async fn readable_projects(app: &App, headers: &HeaderMap) -> ApiResult<Vec<ProjectId>> {
    let caller = app.auth.check(headers, Scope::Upload, None)?;
    Ok(releases::projects_with_releases(app)
        .await?
        .into_iter()
        .filter(|p| caller.may(Scope::Upload, Some(p)).is_ok())
        .collect())
}

/// The one project of a project-scoped read, authorised.
fn readable_project(app: &App, headers: &HeaderMap, project: &str) -> ApiResult<Vec<ProjectId>> {
    let project = ProjectId::parse(project)?;
    app.auth.check(headers, Scope::Upload, Some(&project))?;
    Ok(vec![project])
}

async fn create_release_org(
    State(app): State<App>,
    Path(_org): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    create_release(app, headers, Vec::new(), body).await
}

async fn create_release_project(
    State(app): State<App>,
    Path((_org, project)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    create_release(app, headers, vec![project], body).await
}

async fn update_release_org(
    State(app): State<App>,
    Path((_org, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<serde_json::Value>> {
    update_release(app, headers, Vec::new(), version, body).await
}

async fn update_release_project(
    State(app): State<App>,
    Path((_org, project, version)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<serde_json::Value>> {
    update_release(app, headers, vec![project], version, body).await
}

async fn release_info_org(
    State(app): State<App>,
    Path((_org, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let projects = readable_projects(&app, &headers).await?;
    Ok(Json(releases::info(&app, projects, &version).await?))
}

async fn release_info_project(
    State(app): State<App>,
    Path((_org, project, version)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let projects = readable_project(&app, &headers, &project)?;
    Ok(Json(releases::info(&app, projects, &version).await?))
}

async fn list_releases_org(
    State(app): State<App>,
    Path(_org): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let projects = readable_projects(&app, &headers).await?;
    Ok(Json(releases::list(&app, projects).await?))
}

async fn list_releases_project(
    State(app): State<App>,
    Path((_org, project)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let projects = readable_project(&app, &headers, &project)?;
    Ok(Json(releases::list(&app, projects).await?))
}
