//! Symbolicate handlers: parse, authorise, delegate to `crate::symbolicate`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;

use crate::app::App;
use crate::config::Scope;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::types::ProjectId;
use crate::wire::{JsRequest, JsResponse, NativeRequest, NativeResponse};

fn parse_body<T: serde::de::DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> ApiResult<T> {
    let body = body.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::BodyTooLarge, e.body_text())
        } else {
            ApiError::new(ErrorCode::BodyUnreadable, e.body_text())
        }
    })?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("request body: {e}")))
}

async fn authorised_project(
    state: &App,
    headers: &HeaderMap,
    project: &str,
) -> ApiResult<ProjectId> {
    let project = ProjectId::parse(project)?;
    state
        .auth
        .check(headers, Scope::Symbolicate, Some(&project))?;
    Ok(project)
}

/// `POST /api/v1/projects/{project}/symbolicate/js`
pub async fn js(
    State(state): State<App>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<JsResponse>> {
    let project = authorised_project(&state, &headers, &project).await?;
    let request: JsRequest = parse_body(body)?;
    Ok(Json(
        crate::app::symbolicate::js::symbolicate(&state, &project, request).await?,
    ))
}

/// `POST /api/v1/projects/{project}/symbolicate/native`
pub async fn native(
    State(state): State<App>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<NativeResponse>> {
    let project = authorised_project(&state, &headers, &project).await?;
    let request: NativeRequest = parse_body(body)?;
    Ok(Json(
        crate::app::symbolicate::native::symbolicate(&state, &project, request).await?,
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
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<JsResponse>> {
    js(state, Path(scope(&q)?), headers, body).await
}

/// `POST /symbolicate?scope={project}`: Symbolicator-compatible alias.
pub async fn native_compat(
    state: State<App>,
    Query(q): Query<ScopeQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<NativeResponse>> {
    native(state, Path(scope(&q)?), headers, body).await
}
