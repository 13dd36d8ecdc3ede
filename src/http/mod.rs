//! The HTTP surface: one [`router`] with every route, layer and body limit, and thin
//! handlers (REST in `upload`/`symbolicate`/`ops`, sentry-cli in `sentry`) that authorise,
//! unpack requests and delegate to `app`. Handlers never parse artifacts themselves.
//!
//! Every route is registered through [`Routes::add`] with the access it requires, so
//! [`route_table`] lists exactly what the router serves (the auth matrix test walks it).
//! Every route group has a body limit, a timeout and a concurrency bound; past the bound a
//! request waits a moment, then gets 503 `busy` with `Retry-After`.

mod ops;
mod routes;
mod sentry;
mod symbolicate;
mod upload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::StreamExt;
use tokio::sync::Semaphore;

pub use routes::{route_table, Access, RouteInfo};

use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorCode};

/// All routes, grouped by body limit, timeout and concurrency bound.
pub fn router(app: App) -> Router {
    let (router, _) = routes::build(&app);
    router
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(middleware::from_fn(sentry_error_shape))
        .layer(middleware::from_fn(observe))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            ops::panic_response,
        ))
        .with_state(app)
}

/// Errors on sentry-cli's routes (everything under [`sentry::PREFIX`], unknown paths and
/// methods included) in Sentry's body shape; every other route keeps ours. The one place
/// that decides it, so no handler has to.
async fn sentry_error_shape(request: Request, next: Next) -> Response {
    let sentry = request.uri().path().starts_with(sentry::PREFIX);
    let response = next.run(request).await;
    if sentry {
        crate::error::sentry_shape(response)
    } else {
        response
    }
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

/// The bound of one route group: requests in flight and the time each may take.
#[derive(Clone)]
pub(crate) struct Guard {
    group: &'static str,
    slots: Arc<Semaphore>,
    timeout: Duration,
}

impl Guard {
    pub(crate) fn new(group: &'static str, slots: Arc<Semaphore>, timeout: Duration) -> Guard {
        Guard {
            group,
            slots,
            timeout,
        }
    }
}

/// How long a request waits for a slot before it is answered `busy`.
const QUEUE_WAIT: Duration = Duration::from_secs(1);

/// Admits a request when its group has a free slot (waiting up to [`QUEUE_WAIT`], then 503
/// `busy`, which sentry-cli and ingest clients retry) and answers 503 `timeout` when it runs
/// past the group's time limit.
async fn guarded(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let permit = match tokio::time::timeout(QUEUE_WAIT, guard.slots.clone().acquire_owned()).await {
        Ok(Ok(p)) => p,
        _ => {
            return ApiError::new(
                ErrorCode::Busy,
                format!(
                    "the server is busy ({} requests in flight); retry later",
                    guard.group
                ),
            )
            .into_response()
        }
    };
    let response = match tokio::time::timeout(guard.timeout, next.run(request)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            ErrorCode::Timeout,
            format!(
                "the request took longer than the {} limit of {}",
                guard.group,
                humantime::format_duration(guard.timeout)
            ),
        )
        .into_response(),
    };
    drop(permit);
    response
}

/// Reads a JSON body under `limit` bytes. Handlers call it only after authorising.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    body: Body,
    limit: u64,
) -> ApiResult<T> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                ErrorCode::BodyUnreadable,
                format!("the request body could not be read: {e}"),
            )
        })?;
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(ApiError::new(
                ErrorCode::BodyTooLarge,
                format!("the request body is larger than the limit of {limit} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("request body: {e}")))
}

/// Reads one multipart part under `limit` bytes, chunk by chunk (a part is never buffered
/// past the limit).
pub(crate) async fn read_part(
    mut field: axum::extract::multipart::Field<'_>,
    limit: u64,
    what: &str,
) -> ApiResult<bytes::Bytes> {
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidMultipart,
            format!("{what}: {}", e.body_text()),
        )
    })? {
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(ApiError::new(
                ErrorCode::TooLarge,
                format!("{what} is larger than the limit of {limit} bytes"),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// Most bytes of a text part of a multipart upload (`url`, `header`, `dist`, …).
pub(crate) const MAX_TEXT_PART_BYTES: u64 = 64 << 10;

/// Bytes of a multipart body handed to the parser before it must hand out what it has.
const MULTIPART_WINDOW: usize = 256 << 10;

/// A multipart body that is parsed as it arrives. multer reads everything a body stream has
/// ready before it hands out field data, so a fast client could make it buffer a whole
/// oversize part; this body pauses every [`MULTIPART_WINDOW`] bytes, so parts reach their
/// size checks after at most a window. Call only after authorising.
pub(crate) async fn multipart(
    request: Request,
) -> Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection> {
    use axum::extract::FromRequest;
    let (parts, body) = request.into_parts();
    let paced = Paced {
        inner: Box::pin(body.into_data_stream()),
        since_pause: 0,
    };
    axum::extract::Multipart::from_request(
        Request::from_parts(parts, Body::from_stream(paced)),
        &(),
    )
    .await
}

/// A stream that returns `Pending` (and wakes itself) after every window of bytes.
struct Paced<S> {
    inner: std::pin::Pin<Box<S>>,
    since_pause: usize,
}

impl<S> futures::Stream for Paced<S>
where
    S: futures::Stream<Item = Result<bytes::Bytes, axum::Error>>,
{
    type Item = Result<bytes::Bytes, axum::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.since_pause >= MULTIPART_WINDOW {
            self.since_pause = 0;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        let polled = self.inner.as_mut().poll_next(cx);
        if let std::task::Poll::Ready(Some(Ok(chunk))) = &polled {
            self.since_pause += chunk.len();
        }
        polled
    }
}
