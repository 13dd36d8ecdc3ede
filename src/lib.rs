//! Tracemap: a self-hosted symbolication service. CI uploads release artifacts (minified
//! JavaScript, source maps, sources, artifact bundles, native debug files); ingest servers
//! send stack traces and get them back resolved to original file, line, column and function.
//!
//! Map of the modules, outside in:
//! - [`server`]: binds, serves, shuts down gracefully; [`http`]: the router and thin handlers;
//!   [`sentry`]: the sentry-cli compatible endpoints.
//! - [`auth`], [`config`], [`error`], [`metrics`]: the service's plumbing.
//! - [`ingest`]: receiving and validating uploads; [`store`]: durable, immutable storage over
//!   `object_store`; [`index`]: in-memory release and debug-ID views of the store;
//!   [`sources`]: external symbol sources (debuginfod, symbol servers, buckets).
//! - [`caches`]: derived lookup caches on disk and in memory; [`symbolicate`]: resolving a
//!   request's frames against the index and caches; [`wire`]: request/response types.
//! - [`js`], [`native`]: pure lookups (no I/O) over source maps and debug files.
//! - [`cli`]: the `tracemap upload …` client and local tools.
//! - [`types`]: validated newtypes.

pub mod app;
pub mod auth;
pub mod caches;
pub mod cli;
pub mod config;
pub mod crash;
pub mod error;
pub mod http;
pub mod index;
pub mod ingest;
pub mod js;
pub mod kinds;
pub mod metrics;
pub mod native;
pub mod server;
pub mod sources;
pub mod store;
pub mod types;
pub mod wire;
