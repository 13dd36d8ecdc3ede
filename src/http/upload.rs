//! Upload and catalogue handlers: authorise, unpack the request (multipart parts, query,
//! streamed body), call `app::uploads`, answer. Bodies are streamed to temporary files by
//! `ingest::receive`, never held in memory whole.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{multipart, read_part, MAX_TEXT_PART_BYTES};
use crate::app::uploads::catalog::{self, ArtifactSelector, DebugFileFilter};
use crate::app::uploads::js::{self, BundleOptions, FilePart};
use crate::app::uploads::{debug_files, UploadResponse};
use crate::app::App;
use crate::config::Scope;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::ingest::{self, IngestError, Received, TempFile};
use crate::kinds::ArtifactKind;
use crate::types::{parse_code_id, parse_debug_id, ProjectId, Release};

/// Parses the project from the path and checks the token may use it with `scope`.
fn authorise(app: &App, headers: &HeaderMap, scope: Scope, project: &str) -> ApiResult<ProjectId> {
    let project = ProjectId::parse(project)?;
    app.auth.check(headers, scope, Some(&project))?;
    Ok(project)
}

type Created = (StatusCode, Json<UploadResponse>);

fn created(r: UploadResponse) -> Created {
    (StatusCode::CREATED, Json(r))
}

#[derive(Debug, Deserialize)]
pub struct FilesQuery {
    dist: Option<String>,
    url_prefix: Option<String>,
}

/// `POST /api/v1/projects/{p}/releases/{r}/files`: many files in one multipart body.
///
/// Parts: `file` (filename = path relative to `url_prefix`), and optionally before a file:
/// `url` (its full URL), `type` (`minified_source`, `source_map`, `source`), `header`
/// (`Name: value`, repeatable). `dist` and `url_prefix` may be parts or query parameters.
pub async fn release_files(
    State(app): State<App>,
    Path((p, r)): Path<(String, String)>,
    Query(q): Query<FilesQuery>,
    headers: HeaderMap,
    request: Request,
) -> ApiResult<Created> {
    let project = authorise(&app, &headers, Scope::Upload, &p)?;
    let mut multipart = multipart(request).await.map_err(multipart_rejection)?;
    let release = Release::parse(&r)?;
    let tmp = app.config.tmp_dir();
    let limit = app.config.limits.max_file_bytes;

    let mut dist = q.dist;
    let mut url_prefix = q.url_prefix.unwrap_or_else(|| "~".into());
    let mut next_url = None;
    let mut next_kind = None;
    let mut next_headers = BTreeMap::new();
    let mut files = Vec::new();
    let max_parts = app.config.limits.max_zip_entries;
    let mut parts = 0usize;
    let bad = |m: String| ApiError::new(ErrorCode::InvalidMultipart, m);
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        parts += 1;
        if parts > max_parts {
            return Err(ApiError::new(
                ErrorCode::TooLarge,
                format!("the upload has more than {max_parts} parts (limits.max_zip_entries)"),
            ));
        }
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                let filename = field
                    .file_name()
                    .map(str::to_owned)
                    .ok_or_else(|| bad("a `file` part needs a filename".into()))?;
                let filename = ingest::safe_relative_path(&filename).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::UnsafePath,
                        format!("file name {filename:?} is absolute or contains '..'"),
                    )
                })?;
                let file = ingest::receive(field, &tmp, limit, &filename).await?;
                files.push(FilePart {
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
                let value =
                    read_part(field, MAX_TEXT_PART_BYTES, &format!("part {name:?}")).await?;
                let value = String::from_utf8(value.to_vec())
                    .map_err(|_| bad(format!("part {name:?} is not UTF-8")))?;
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
    js::release_files(&app, project, release, dist, &url_prefix, files)
        .await
        .map(created)
}

/// A body that is not multipart at all (checked only after the caller was authorised).
pub(super) fn multipart_rejection(e: MultipartRejection) -> ApiError {
    ApiError::new(ErrorCode::InvalidMultipart, e.body_text())
}

pub(super) fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(ErrorCode::TooLarge, e.body_text())
    } else {
        ApiError::new(ErrorCode::InvalidMultipart, e.body_text())
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
    State(app): State<App>,
    Path(p): Path<String>,
    Query(q): Query<BundleQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Created> {
    let project = authorise(&app, &headers, Scope::Upload, &p)?;
    let zip = receive_body(&app, &headers, body, "bundle").await?;
    let options = BundleOptions {
        release: q.release.as_deref(),
        dist: q.dist.as_deref(),
        url_prefix: q.url_prefix.as_deref(),
    };
    js::bundle(&app, project, zip, &options).await.map(created)
}

/// Streams a raw body to a temporary file under the upload limit.
async fn receive_body(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    what: &str,
) -> ApiResult<TempFile> {
    let limit = app.config.limits.max_upload_bytes;
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
        &app.config.tmp_dir(),
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
    State(app): State<App>,
    Path(p): Path<String>,
    Query(q): Query<DebugFileQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Created> {
    let project = authorise(&app, &headers, Scope::Upload, &p)?;
    let file = receive_body(&app, &headers, body, "debug file").await?;
    let name = q.name.as_deref().unwrap_or("upload");
    debug_files::upload(&app, project, name, file)
        .await
        .map(created)
}

// ---- listing, download, delete --------------------------------------------------------

/// `GET /api/v1/projects/{p}/releases`
pub async fn list_releases(
    State(app): State<App>,
    Path(p): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let project = authorise(&app, &headers, Scope::Upload, &p)?;
    let releases = catalog::releases(&app, &project).await?;
    Ok(Json(serde_json::json!({ "releases": releases })))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    dist: Option<String>,
}

/// `GET /api/v1/projects/{p}/releases/{r}/files`: the release's merged URL index.
pub async fn list_release_files(
    State(app): State<App>,
    Path((p, r)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let project = authorise(&app, &headers, Scope::Upload, &p)?;
    let release = Release::parse(&r)?;
    let listing = catalog::release_files(&app, &project, &release, q.dist.as_deref()).await?;
    Ok(Json(serde_json::json!({
        "release": release.as_str(),
        "uploads": listing.uploads,
        "files": listing.files,
    })))
}

/// `?url=…&dist=…`: which of the files sharing an artifact ID is meant (`dist=` empty: none).
#[derive(Debug, Deserialize)]
pub struct SelectorQuery {
    url: Option<String>,
    dist: Option<String>,
}

impl SelectorQuery {
    fn selector(&self) -> ArtifactSelector<'_> {
        ArtifactSelector {
            url: self.url.as_deref(),
            dist: self.dist.as_deref(),
        }
    }
}

/// `GET /api/v1/projects/{p}/releases/{r}/files/{id}`: the artifact's content, streamed.
/// `id` is the SHA-256 the listing shows (or the URL, percent-encoded).
pub async fn get_release_file(
    State(app): State<App>,
    Path((p, r, id)): Path<(String, String, String)>,
    Query(q): Query<SelectorQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let project = authorise(&app, &headers, Scope::Upload, &p)?;
    let release = Release::parse(&r)?;
    let download = catalog::download(&app, &project, &release, &id, &q.selector()).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, download.size.to_string()),
            (
                header::HeaderName::from_static("x-tracemap-url"),
                download.url,
            ),
        ],
        Body::from_stream(download.stream),
    )
        .into_response())
}

/// `DELETE /api/v1/projects/{p}/releases/{r}/files/{id}`: removes one artifact from the
/// release by writing a newer upload that deletes its URL (uploads are immutable). When the
/// SHA-256 names several files (same content under other URLs or dists), `?url=` and
/// `?dist=` say which; without them the answer is 409 `ambiguous_artifact` listing them.
pub async fn delete_release_file(
    State(app): State<App>,
    Path((p, r, id)): Path<(String, String, String)>,
    Query(q): Query<SelectorQuery>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let project = authorise(&app, &headers, Scope::Admin, &p)?;
    let release = Release::parse(&r)?;
    catalog::delete_release_file(&app, &project, &release, &id, &q.selector()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/projects/{p}/releases/{r}`
pub async fn delete_release(
    State(app): State<App>,
    Path((p, r)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let project = authorise(&app, &headers, Scope::Admin, &p)?;
    let release = Release::parse(&r)?;
    catalog::delete_release(&app, &project, &release).await?;
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
    State(app): State<App>,
    Path(p): Path<String>,
    Query(q): Query<DebugListQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let project = authorise(&app, &headers, Scope::Upload, &p)?;
    let filter = match (q.debug_id.as_deref(), q.code_id.as_deref()) {
        (Some(id), _) => DebugFileFilter::DebugId(parse_debug_id(id)?),
        (None, Some(id)) => DebugFileFilter::CodeId(parse_code_id(id)?),
        (None, None) => DebugFileFilter::All,
    };
    let files = catalog::debug_files(&app, &project, &filter).await?;
    Ok(Json(serde_json::json!({ "debug_files": files })))
}

/// `DELETE /api/v1/projects/{p}/debug-files/{debug_id}`: every debug file with that ID.
pub async fn delete_debug_files(
    State(app): State<App>,
    Path((p, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let project = authorise(&app, &headers, Scope::Admin, &p)?;
    let debug_id = parse_debug_id(&id)?;
    catalog::delete_debug_files(&app, &project, &debug_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
