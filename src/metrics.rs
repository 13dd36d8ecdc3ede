//! Prometheus metrics, one process-wide registry rendered by `GET /metrics`.
//!
//! Names follow Prometheus conventions (`_total` counters, `_seconds` histograms, `_bytes`).
//! Labels are low-cardinality: the matched route template, never the raw path.

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FrameLabels {
    pub platform: &'static str,
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabel {
    pub cache: &'static str,
}

/// A symbol source (its configured `id`: few, chosen by the operator) and an answer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub cache: &'static str,
    pub result: &'static str,
}

pub struct Metrics {
    pub registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabel, Histogram>,
    pub errors: Family<CodeLabel, Counter>,
    pub uploads: Family<KindLabel, Counter>,
    pub upload_bytes: Counter,
    pub stored_bytes: Counter,
    pub store_errors: Counter,
    pub frames: Family<FrameLabels, Counter>,
    pub cache_lookups: Family<CacheLabels, Counter>,
    /// Weighed bytes per in-memory cache (the shares of `cache.memory`).
    pub cache_memory_bytes: Family<CacheLabel, Gauge>,
    pub cache_disk_bytes: Gauge,
    pub cache_builds: Family<KindLabel, Counter>,
    pub source_requests: Family<SourceLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ])
}

pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let mut registry = Registry::with_prefix("tracemap");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let m = Metrics {
            requests,
            latency,
            errors: Default::default(),
            uploads: Default::default(),
            upload_bytes: Default::default(),
            stored_bytes: Default::default(),
            store_errors: Default::default(),
            frames: Default::default(),
            cache_lookups: Default::default(),
            cache_memory_bytes: Default::default(),
            cache_disk_bytes: Default::default(),
            cache_builds: Default::default(),
            source_requests: Default::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            m.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            m.latency.clone(),
        );
        registry.register(
            "errors",
            "Error responses by stable error code",
            m.errors.clone(),
        );
        registry.register("uploads", "Files accepted, by kind", m.uploads.clone());
        registry.register(
            "upload_bytes",
            "Bytes received in upload bodies",
            m.upload_bytes.clone(),
        );
        registry.register(
            "stored_bytes",
            "Bytes of new blobs written to the store (deduplicated)",
            m.stored_bytes.clone(),
        );
        registry.register(
            "store_errors",
            "Failed store operations",
            m.store_errors.clone(),
        );
        registry.register(
            "frames",
            "Frames symbolicated, by platform and status",
            m.frames.clone(),
        );
        registry.register(
            "cache_lookups",
            "Derived cache lookups, by cache and result (memory, disk, built)",
            m.cache_lookups.clone(),
        );
        registry.register(
            "cache_memory_bytes",
            "Bytes held by each in-memory cache, as weighed against its share of cache.memory",
            m.cache_memory_bytes.clone(),
        );
        registry.register(
            "cache_disk_bytes",
            "Bytes of derived caches on local disk",
            m.cache_disk_bytes.clone(),
        );
        registry.register(
            "cache_builds",
            "Derived caches built, by kind",
            m.cache_builds.clone(),
        );
        registry.register(
            "source_requests",
            "Locations asked of symbol sources, by source and answer (ok, not_found, timeout, \
             too_large, invalid, error)",
            m.source_requests.clone(),
        );
        Metrics { registry, ..m }
    })
}

/// Renders the registry in the Prometheus text format.
pub fn render() -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &global().registry).is_err() {
        out.clear();
    }
    out
}

/// Publishes one in-memory cache's weighed size.
pub fn report_cache_memory(cache: &'static str, bytes: u64) {
    global()
        .cache_memory_bytes
        .get_or_create(&CacheLabel { cache })
        .set(bytes.min(i64::MAX as u64) as i64);
}
