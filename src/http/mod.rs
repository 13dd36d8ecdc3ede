//! The HTTP surface: one [`router`] with every route, layer and body limit, and thin
//! handlers (REST in `upload`/`symbolicate`/`ops`, sentry-cli in `sentry`) that authorise,
//! unpack requests and delegate to `app`. Handlers never parse artifacts themselves.

mod ops;
mod sentry;
mod symbolicate;
mod upload;

use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;

use crate::app::App;
use crate::error::{ApiError, ErrorCode};

/// All routes. Upload routes get the upload body limit and no timeout; symbolicate routes
/// get the symbolicate body limit and the request timeout.
pub fn router(state: App) -> Router {
    let limits = &state.config.limits;
    let upload_limit = limits.max_upload_bytes.min(usize::MAX as u64) as usize;
    let symbolicate_limit = limits.max_symbolicate_bytes.min(usize::MAX as u64) as usize;

    let uploads = Router::new()
        .route(
            "/api/v1/projects/{project}/releases/{release}/files",
            post(upload::release_files).get(upload::list_release_files),
        )
        .route(
            "/api/v1/projects/{project}/releases/{release}/files/{id}",
            get(upload::get_release_file).delete(upload::delete_release_file),
        )
        .route(
            "/api/v1/projects/{project}/releases/{release}",
            delete(upload::delete_release),
        )
        .route(
            "/api/v1/projects/{project}/releases",
            get(upload::list_releases),
        )
        .route("/api/v1/projects/{project}/bundles", post(upload::bundle))
        .route(
            "/api/v1/projects/{project}/debug-files",
            post(upload::debug_files).get(upload::list_debug_files),
        )
        .route(
            "/api/v1/projects/{project}/debug-files/{debug_id}",
            delete(upload::delete_debug_files),
        )
        .route("/api/v1/admin/sweep", post(ops::sweep))
        .merge(sentry::routes())
        .layer(DefaultBodyLimit::max(upload_limit));

    let symbolicate = Router::new()
        .route(
            "/api/v1/projects/{project}/symbolicate/js",
            post(symbolicate::js),
        )
        .route(
            "/api/v1/projects/{project}/symbolicate/native",
            post(symbolicate::native),
        )
        .route("/symbolicate-js", post(symbolicate::js_compat))
        .route("/symbolicate", post(symbolicate::native_compat))
        .layer(DefaultBodyLimit::max(symbolicate_limit))
        .layer(middleware::from_fn_with_state(state.clone(), bounded))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            limits.request_timeout,
        ));

    Router::new()
        .merge(uploads)
        .merge(symbolicate)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(ops::not_found)
        .layer(middleware::from_fn(observe))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            ops::panic_response,
        ))
        .with_state(state)
}

/// Counts and times every request by its route template.
async fn observe(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    let m = crate::metrics::global();
    m.requests
        .get_or_create(&crate::metrics::RequestLabels {
            method,
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    m.latency
        .get_or_create(&crate::metrics::RouteLabel { route })
        .observe(start.elapsed().as_secs_f64());
    response
}

/// Admits a request when fewer than `max_concurrent_requests` are in flight; waits up to a
/// second for a slot, then answers 503 (which sentry-cli and most clients retry).
async fn bounded(State(state): State<App>, request: Request, next: Next) -> Response {
    let permit = match tokio::time::timeout(Duration::from_secs(1), state.in_flight.acquire()).await
    {
        Ok(Ok(p)) => p,
        _ => {
            return ApiError::new(ErrorCode::Busy, "the server is busy; retry later")
                .into_response()
        }
    };
    let response = next.run(request).await;
    drop(permit);
    response
}
