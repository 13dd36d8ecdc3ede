//! The one error type of the HTTP API and the only place that picks status codes.
//!
//! Every error response has the body `{"error": {"code": "...", "message": "..."}}` plus a
//! `detail` string that sentry-cli prints. `code` is stable and documented in README.md;
//! `message` is a sentence for people. 5xx responses are logged here, once; 4xx are the
//! client's business and are not logged as errors.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::store::StoreError;
use crate::types::InvalidValue;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String, &'static str),
    #[error("missing or malformed Authorization header; expected `Bearer <token>`")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String, &'static str),
    #[error("{0}")]
    Conflict(String, &'static str),
    #[error("{0}")]
    PayloadTooLarge(String, &'static str),
    #[error("{0}")]
    Unprocessable(String, &'static str),
    #[error("server is busy, retry later")]
    Busy,
    #[error("storage error: {0}")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest(message.into(), code)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::NotFound(message.into(), code)
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unprocessable(message.into(), code)
    }
    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::PayloadTooLarge(message.into(), code)
    }
    pub fn internal(message: impl std::fmt::Display) -> Self {
        ApiError::Internal(message.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(..) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(..) => StatusCode::NOT_FOUND,
            ApiError::Conflict(..) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(..) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(..) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, documented error code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_, c)
            | ApiError::NotFound(_, c)
            | ApiError::Conflict(_, c)
            | ApiError::PayloadTooLarge(_, c)
            | ApiError::Unprocessable(_, c) => c,
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Busy => "busy",
            ApiError::Store(_) => "store_unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        ApiError::Internal(format!("local I/O: {e}"))
    }
}

impl From<InvalidValue> for ApiError {
    fn from(e: InvalidValue) -> Self {
        ApiError::BadRequest(e.to_string(), "invalid_parameter")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let message = self.to_string();
        if status.is_server_error() {
            tracing::error!(code, %message, "request failed");
        }
        crate::metrics::global()
            .errors
            .get_or_create(&crate::metrics::CodeLabel { code })
            .inc();
        let body = serde_json::json!({
            "error": {"code": code, "message": message},
            // sentry-cli prints `detail` for failed requests.
            "detail": message,
        });
        (status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
