//! The one error type of the API, and the only place that picks status codes.
//!
//! An [`ApiError`] is a stable [`ErrorCode`] plus a sentence for people. Every error response
//! has the body `{"error": {"code": "...", "message": "..."}, "detail": "..."}` and the code in
//! an `X-Tracemap-Error-Code` header, except on sentry-cli's routes, where
//! [`sentry_shape`] turns the body into Sentry's own `{"detail": "..."}` so that sentry-cli
//! prints one clean line. The code decides the status. 5xx responses are logged here, once;
//! 4xx are the client's business and are not logged as errors.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::types::InvalidValue;

/// Every error code the API answers with. Serialised once, as snake_case; the table in
/// README.md lists them with their status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // 400: the request is malformed.
    InvalidParameter,
    InvalidJson,
    InvalidMultipart,
    BodyUnreadable,
    UnsafePath,
    ZipUnsafePath,
    SourcemapMalformed,
    UnknownDebugFormat,
    DebugFileMalformed,
    DebugIdMissing,
    NoDebugFiles,
    ZipInvalid,
    BundleManifestInvalid,
    EmptyUpload,
    UnreachableUpload,
    DistWithoutRelease,
    InvalidUpload,
    /// A `url_prefix` that is a path (often a `~` the shell expanded), not `~/…` or a URL.
    InvalidUrlPrefix,
    MissingScope,
    /// A sentry-cli protocol request that does not follow the protocol.
    InvalidRequest,
    /// A minidump request without an `upload_file_minidump` part.
    MinidumpMissing,
    /// A body that is not a readable minidump (truncated, damaged, another format).
    MinidumpInvalid,
    // 401 / 403.
    Unauthenticated,
    Forbidden,
    // 404.
    ReleaseNotFound,
    ArtifactNotFound,
    DebugFileNotFound,
    RouteNotFound,
    BlobMissing,
    // 405.
    MethodNotAllowed,
    // 409.
    /// An artifact ID that names several files; the message lists them.
    AmbiguousArtifact,
    // 413: a limit was exceeded.
    TooLarge,
    ZipTooLarge,
    ZipTooManyEntries,
    TooManyFrames,
    TooManyModules,
    BodyTooLarge,
    // 503: retry later.
    Busy,
    /// The request ran past its route group's time limit.
    Timeout,
    StoreUnavailable,
    // 500.
    Internal,
}

impl ErrorCode {
    /// The HTTP status this code answers with.
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            Unauthenticated => StatusCode::UNAUTHORIZED,
            Forbidden => StatusCode::FORBIDDEN,
            ReleaseNotFound | ArtifactNotFound | DebugFileNotFound | RouteNotFound
            | BlobMissing => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AmbiguousArtifact => StatusCode::CONFLICT,
            TooLarge | ZipTooLarge | ZipTooManyEntries | TooManyFrames | TooManyModules
            | BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Busy | Timeout | StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidParameter => "invalid_parameter",
            InvalidJson => "invalid_json",
            InvalidMultipart => "invalid_multipart",
            BodyUnreadable => "body_unreadable",
            UnsafePath => "unsafe_path",
            ZipUnsafePath => "zip_unsafe_path",
            SourcemapMalformed => "sourcemap_malformed",
            UnknownDebugFormat => "unknown_debug_format",
            DebugFileMalformed => "debug_file_malformed",
            DebugIdMissing => "debug_id_missing",
            NoDebugFiles => "no_debug_files",
            ZipInvalid => "zip_invalid",
            BundleManifestInvalid => "bundle_manifest_invalid",
            EmptyUpload => "empty_upload",
            UnreachableUpload => "unreachable_upload",
            DistWithoutRelease => "dist_without_release",
            InvalidUpload => "invalid_upload",
            InvalidUrlPrefix => "invalid_url_prefix",
            MissingScope => "missing_scope",
            InvalidRequest => "invalid_request",
            MinidumpMissing => "minidump_missing",
            MinidumpInvalid => "minidump_invalid",
            Unauthenticated => "unauthenticated",
            Forbidden => "forbidden",
            ReleaseNotFound => "release_not_found",
            ArtifactNotFound => "artifact_not_found",
            DebugFileNotFound => "debug_file_not_found",
            RouteNotFound => "route_not_found",
            BlobMissing => "blob_missing",
            MethodNotAllowed => "method_not_allowed",
            AmbiguousArtifact => "ambiguous_artifact",
            TooLarge => "too_large",
            ZipTooLarge => "zip_too_large",
            ZipTooManyEntries => "zip_too_many_entries",
            TooManyFrames => "too_many_frames",
            TooManyModules => "too_many_modules",
            BodyTooLarge => "body_too_large",
            Busy => "busy",
            Timeout => "timeout",
            StoreUnavailable => "store_unavailable",
            Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API error: a stable code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    code: ErrorCode,
    message: String,
}

/// Seconds a client should wait before retrying a `busy` or `store_unavailable` answer.
const RETRY_AFTER_SECONDS: &str = "1";

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// A bug or local I/O failure: logged, answered as `internal`.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        ApiError::new(ErrorCode::Internal, message.to_string())
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        // Out of memory, disk space or file descriptors is the server's trouble for now, not
        // a bug: 503 (with `Retry-After`), which clients retry.
        const ENFILE: i32 = 23;
        const EMFILE: i32 = 24;
        const ENOSPC: i32 = 28;
        const ENOMEM: i32 = 12;
        let exhausted = matches!(
            e.kind(),
            std::io::ErrorKind::OutOfMemory | std::io::ErrorKind::StorageFull
        ) || matches!(e.raw_os_error(), Some(ENOMEM | ENFILE | EMFILE | ENOSPC));
        if exhausted {
            ApiError::new(
                ErrorCode::Busy,
                format!("the server is short of resources ({e}); retry later"),
            )
        } else {
            ApiError::internal(format!("local I/O: {e}"))
        }
    }
}

impl From<InvalidValue> for ApiError {
    fn from(e: InvalidValue) -> Self {
        ApiError::new(ErrorCode::InvalidParameter, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code.as_str();
        if status.is_server_error() {
            tracing::error!(code, message = %self.message, "request failed");
        }
        crate::metrics::global()
            .errors
            .get_or_create(&crate::metrics::CodeLabel { code })
            .inc();
        let body = serde_json::json!({
            "error": {"code": code, "message": self.message},
            // sentry-cli prints `detail` for failed requests.
            "detail": self.message,
        });
        let mut response = (status, Json(body)).into_response();
        response
            .headers_mut()
            .insert(ERROR_CODE_HEADER, HeaderValue::from_static(code));
        response.extensions_mut().insert(self);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

/// The response header that carries the error code, whatever the body's shape.
const ERROR_CODE_HEADER: &str = "x-tracemap-error-code";

/// An error response in Sentry's shape, `{"detail": "<message>"}`, for sentry-cli's routes
/// (sentry-cli prints anything else as a debug dump). Status and headers are kept; responses
/// that are not [`ApiError`]s pass unchanged.
pub fn sentry_shape(response: Response) -> Response {
    let Some(error) = response.extensions().get::<ApiError>().cloned() else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    // The original body was JSON too, so its content type stays right.
    let body = serde_json::json!({ "detail": error.message }).to_string();
    Response::from_parts(parts, axum::body::Body::from(body))
}

pub type ApiResult<T> = Result<T, ApiError>;
