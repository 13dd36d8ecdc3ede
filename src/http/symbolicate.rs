//! Symbolicate handlers: authorise from headers and path, then read the body (under
//! `limits.max_symbolicate_bytes`), then delegate to `app::symbolicate`.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;

use super::read_json;
use crate::app::App;
use crate::config::Scope;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::types::ProjectId;
use crate::wire::{JsRequest, JsResponse, NativeRequest, NativeResponse};

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
