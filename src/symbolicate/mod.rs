//! Resolving a request's frames: finds the artifacts behind each frame through the index,
//! gets their derived caches, and asks the pure `js`/`native` modules for answers.
//!
//! A failing frame never fails the request; it comes back with a status and a diagnostic
//! that says what was looked for and where. Frames that need the same artifact resolve it
//! once per request, and resolutions are remembered per process until the project's next
//! upload (or `cache.index_ttl`).

pub mod js;
pub mod native;

use crate::http::AppState;
use crate::store::UploadManifest;

/// Builds, in the background, the caches an upload's files will need.
pub async fn prewarm(state: &AppState, manifest: &UploadManifest) {
    js::prewarm(state, manifest).await;
    native::prewarm(state, manifest).await;
}
