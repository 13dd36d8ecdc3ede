//! Resolving a request's frames: finds the artifacts behind each frame through the index,
//! gets their derived caches, and asks the pure `js`/`native` modules for answers.
//!
//! A failing frame never fails the request; it comes back with a status and a diagnostic
//! that says what was looked for and where. Frames that need the same artifact resolve it
//! once per request, and resolutions are remembered per process until the project's next
//! upload (or `cache.index_ttl`).

pub mod js;
pub mod native;
mod sources;

use crate::app::App;
use crate::store::UploadManifest;

/// Builds, in the background, the caches an upload's files will need.
pub async fn prewarm(state: &App, manifest: &UploadManifest) {
    js::prewarm(state, manifest).await;
    native::prewarm(state, manifest).await;
}

/// Whether frames get source context lines (`options.apply_source_context`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContextLines {
    Apply,
    Skip,
}

impl ContextLines {
    pub(crate) fn from_option(apply: bool) -> Self {
        if apply {
            ContextLines::Apply
        } else {
            ContextLines::Skip
        }
    }
}

/// Counts frames by status during a request and publishes them once at the end, so the hot
/// loop does not touch the shared metrics registry per frame.
pub(crate) struct FrameCounter {
    platform: &'static str,
    counts: Vec<(&'static str, u64)>,
}

impl FrameCounter {
    pub(crate) fn new(platform: &'static str) -> Self {
        FrameCounter {
            platform,
            counts: Vec::with_capacity(4),
        }
    }

    pub(crate) fn add(&mut self, status: &'static str) {
        match self.counts.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((status, 1)),
        }
    }
}

impl Drop for FrameCounter {
    fn drop(&mut self) {
        let m = crate::metrics::global();
        for (status, n) in &self.counts {
            m.frames
                .get_or_create(&crate::metrics::FrameLabels {
                    platform: self.platform,
                    status,
                })
                .inc_by(*n);
        }
    }
}
