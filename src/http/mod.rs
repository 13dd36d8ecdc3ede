//! The HTTP surface: one [`router`] with every route, layer and body limit, and thin
//! handlers that unpack requests and delegate. Handlers never parse artifacts themselves.

mod ops;
mod symbolicate;
pub(crate) mod upload;

use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use tokio::sync::Semaphore;

use crate::auth::Auth;
use crate::caches::Caches;
use crate::config::Config;
use crate::error::ApiError;
use crate::index::Index;
use crate::store::Store;

/// Everything a handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub config: Config,
    pub store: Store,
    pub index: Index,
    pub auth: Auth,
    pub caches: Caches,
    /// Bounds requests in flight; see `limits.max_concurrent_requests`.
    pub in_flight: Semaphore,
    /// JS artifact resolutions by (project, generation, release, dist, debug ID, URL):
    /// positive and negative, dropped by the project's next upload or after `index_ttl`.
    pub js_resolutions: moka::future::Cache<String, Arc<crate::symbolicate::js::Resolution>>,
    /// Native debug-file resolutions, keyed likewise.
    pub native_resolutions:
        moka::future::Cache<String, Arc<crate::symbolicate::native::ModuleResolution>>,
}

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    /// Opens the store and caches the configuration names.
    pub fn new(config: Config) -> Result<AppState, crate::store::StoreError> {
        let store = Store::open(&config)?;
        Ok(Self::with_store(config, store))
    }

    pub fn with_store(config: Config, store: Store) -> AppState {
        let index = Index::new(store.clone(), config.cache.index_ttl, config.cache.memory);
        let caches = Caches::new(&config, store.clone());
        AppState(Arc::new(AppInner {
            auth: Auth::new(&config.auth),
            in_flight: Semaphore::new(config.limits.max_concurrent_requests),
            js_resolutions: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(config.cache.index_ttl)
                .build(),
            native_resolutions: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(config.cache.index_ttl)
                .build(),
            store,
            index,
            caches,
            config,
        }))
    }
}

/// All routes. Upload routes get the upload body limit and no timeout; symbolicate routes
/// get the symbolicate body limit and the request timeout.
pub fn router(state: AppState) -> Router {
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
        .merge(crate::sentry::routes())
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
async fn bounded(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let permit = match tokio::time::timeout(Duration::from_secs(1), state.in_flight.acquire()).await
    {
        Ok(Ok(p)) => p,
        _ => return ApiError::Busy.into_response(),
    };
    let response = next.run(request).await;
    drop(permit);
    response
}
