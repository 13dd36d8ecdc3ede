//! Operations endpoints: liveness, readiness, metrics, maintenance.

use std::any::Any;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::app::App;
use crate::config::Scope;
use crate::error::{ApiError, ApiResult, ErrorCode};

/// `GET /healthz`: the process is up.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// How long `/readyz` waits for the store. The store client retries a store that does not
/// answer with backoff for much longer; a readiness probe must say "not ready" quickly.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

/// `GET /readyz`: the store answers (within [`READY_WITHIN`]).
pub async fn readyz(State(state): State<App>) -> Response {
    let error = match tokio::time::timeout(READY_WITHIN, state.store.ping()).await {
        Ok(Ok(())) => return (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {READY_WITHIN:?}"),
    };
    // The store's own words are for the operator's log, not for anonymous callers.
    tracing::warn!(error = %error, "readiness check: the store does not answer");
    ApiError::new(ErrorCode::StoreUnavailable, "the store does not answer").into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<App>) -> Response {
    state.report_sizes();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::render(),
    )
        .into_response()
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this endpoint does not answer that method",
    )
}

pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::RouteNotFound, "no such endpoint")
}

pub fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    ApiError::internal("the request handler panicked").into_response()
}

#[derive(Debug, Deserialize)]
pub struct SweepQuery {
    /// Only remove what is older than this (default `1h`): protects uploads in flight.
    grace: Option<String>,
}

/// `POST /api/v1/admin/sweep`: remove unreferenced blobs, dead manifests, dangling pointers.
pub async fn sweep(
    State(state): State<App>,
    Query(q): Query<SweepQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<crate::store::SweepReport>> {
    state.auth.check(&headers, Scope::Admin, None)?;
    let grace = match q.grace {
        Some(g) => humantime::parse_duration(&g)
            .map_err(|e| ApiError::new(ErrorCode::InvalidParameter, format!("grace: {e}")))?,
        None => Duration::from_secs(3600),
    };
    let purge_after = state.config.limits.upload_timeout;
    Ok(Json(state.store.sweep(grace, purge_after).await?))
}
