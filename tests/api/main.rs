//! The one integration test binary: the real router (or a real socket) over a temporary data
//! directory, fed with real artifacts from `fixtures/`.

mod common;

mod auth;
mod cli;
mod crash;
mod debug_files;
mod garage;
mod hostile;
mod isolation;
mod js;
mod js_answers;
mod limits;
mod minidump;
mod native;
mod ops;
mod readme;
mod s3;
mod sentry_cli;
mod sentry_protocol;
mod sources;
mod tidy;
mod uploads;
