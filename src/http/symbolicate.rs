//! Symbolicate handlers: authorise from headers and path, then read the body (under
//! `limits.max_symbolicate_bytes`), then delegate to `app::symbolicate`.

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;

use super::{multipart, read_json, read_part, MAX_TEXT_PART_BYTES};
use crate::app::App;
use crate::config::Scope;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::types::ProjectId;
use crate::wire::{
    JsRequest, JsResponse, MinidumpResponse, NativeRequest, NativeResponse, Options,
};

fn authorised_project(app: &App, headers: &HeaderMap, project: &str) -> ApiResult<ProjectId> {
    let project = ProjectId::parse(project)?;
    app.auth
        .check(headers, Scope::Symbolicate, Some(&project))?;
    Ok(project)
}

/// `POST /api/v1/projects/{project}/symbolicate/js`
pub async fn js(
    State(app): State<App>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<JsResponse>> {
    let project = authorised_project(&app, &headers, &project)?;
    let request: JsRequest = read_json(body, app.config.limits.max_symbolicate_bytes).await?;
    Ok(Json(
        crate::app::symbolicate::js::symbolicate(&app, &project, request).await?,
    ))
}

/// `POST /api/v1/projects/{project}/symbolicate/native`
pub async fn native(
    State(app): State<App>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<NativeResponse>> {
    let project = authorised_project(&app, &headers, &project)?;
    let request: NativeRequest = read_json(body, app.config.limits.max_symbolicate_bytes).await?;
    Ok(Json(
        crate::app::symbolicate::native::symbolicate(&app, &project, request).await?,
    ))
}

#[derive(Debug, Deserialize)]
pub struct ScopeQuery {
    scope: Option<String>,
}

fn scope(q: &ScopeQuery) -> ApiResult<String> {
    q.scope.clone().ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingScope,
            "the compatibility endpoints need ?scope={project}",
        )
    })
}

/// `POST /symbolicate-js?scope={project}`: Symbolicator-compatible alias.
pub async fn js_compat(
    state: State<App>,
    Query(q): Query<ScopeQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<JsResponse>> {
    js(state, Path(scope(&q)?), headers, body).await
}

/// `POST /symbolicate?scope={project}`: Symbolicator-compatible alias.
pub async fn native_compat(
    state: State<App>,
    Query(q): Query<ScopeQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<NativeResponse>> {
    native(state, Path(scope(&q)?), headers, body).await
}

/// Parts of a minidump request beside the dump that are read (and ignored unless named):
/// crash reporters send product, version and event fields along.
const MAX_MINIDUMP_PARTS: usize = 64;

/// `POST /api/v1/projects/{project}/symbolicate/minidump`: multipart with the dump in an
/// `upload_file_minidump` part (the name Breakpad and Crashpad clients use) and an optional
/// JSON `options` part. The dump is streamed to a temp file under `limits.max_minidump_bytes`.
pub async fn minidump(
    State(app): State<App>,
    Path(project): Path<String>,
    headers: HeaderMap,
    request: Request,
) -> ApiResult<Json<MinidumpResponse>> {
    let project = authorised_project(&app, &headers, &project)?;
    let mut multipart = multipart(request)
        .await
        .map_err(super::upload::multipart_rejection)?;
    let mut dump = None;
    let mut options = Options::default();
    let mut parts = 0usize;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(super::upload::multipart_error)?
    {
        parts += 1;
        if parts > MAX_MINIDUMP_PARTS {
            return Err(ApiError::new(
                ErrorCode::InvalidMultipart,
                format!("a minidump request has at most {MAX_MINIDUMP_PARTS} parts"),
            ));
        }
        match field.name().unwrap_or_default() {
            "upload_file_minidump" => {
                if dump.is_some() {
                    return Err(ApiError::new(
                        ErrorCode::InvalidMultipart,
                        "more than one upload_file_minidump part",
                    ));
                }
                // The body limit's error says "too large" only in `body_text`.
                use futures::TryStreamExt;
                let file = crate::ingest::receive(
                    field.map_err(|e| e.body_text()),
                    &app.config.tmp_dir(),
                    app.config.limits.max_minidump_bytes,
                    "minidump",
                )
                .await?;
                dump = Some(file);
            }
            "options" => {
                let bytes = read_part(field, MAX_TEXT_PART_BYTES, "part \"options\"").await?;
                options = serde_json::from_slice(&bytes).map_err(|e| {
                    ApiError::new(
                        ErrorCode::InvalidJson,
                        format!("part \"options\" is not valid options JSON: {e}"),
                    )
                })?;
            }
            other => {
                let what = format!("part {other:?}");
                read_part(field, MAX_TEXT_PART_BYTES, &what).await?;
            }
        }
    }
    let dump = dump.ok_or_else(|| {
        ApiError::new(
            ErrorCode::MinidumpMissing,
            "the request has no upload_file_minidump part (multipart/form-data, the dump as a \
             file part named upload_file_minidump)",
        )
    })?;
    Ok(Json(
        crate::app::symbolicate::native::symbolicate_minidump(&app, &project, dump.path, options)
            .await?,
    ))
}

/// `POST /minidump?scope={project}`: Symbolicator-compatible alias.
pub async fn minidump_compat(
    state: State<App>,
    Query(q): Query<ScopeQuery>,
    headers: HeaderMap,
    request: Request,
) -> ApiResult<Json<MinidumpResponse>> {
    minidump(state, Path(scope(&q)?), headers, request).await
}
