//! Source texts for context lines, loaded from the store into the caches' text tier: whole
//! uploaded files (minified and original sources), files of uploaded source bundles, and
//! sources embedded in a debug file's DWARF. Each is loaded once and then looked up.

use std::sync::Arc;

use crate::app::App;
use crate::caches::Text;
use crate::ingest::Mapped;
use crate::store::Store;
use crate::types::Sha256;

/// A whole uploaded text file (UTF-8, lossy) by its SHA-256.
pub async fn blob_text(app: &App, sha: &Sha256) -> Option<Arc<Text>> {
    let store = app.store.clone();
    let sha = sha.clone();
    app.caches
        .text(format!("blob:{sha}"), async move {
            let bytes = store.get_bytes(&Store::blob_key(&sha)).await.ok()??;
            tokio::task::spawn_blocking(move || String::from_utf8_lossy(&bytes).into_owned())
                .await
                .ok()
        })
        .await
}

/// One file of an uploaded source bundle, by its path.
pub async fn bundle_source(app: &App, bundle: &Sha256, path: &str) -> Option<Arc<Text>> {
    let store = app.store.clone();
    let sha = bundle.clone();
    let path = path.to_owned();
    app.caches
        .text(format!("bundle:{bundle}:{path}"), async move {
            let bytes = store.get_bytes(&Store::blob_key(&sha)).await.ok()??;
            tokio::task::spawn_blocking(move || {
                use symbolic::debuginfo::sourcebundle::SourceBundle;
                let bundle = SourceBundle::parse(&bytes).ok()?;
                let session = bundle.debug_session().ok()?;
                let file = session.source_by_path(&path).ok()??;
                file.contents().map(str::to_owned)
            })
            .await
            .ok()?
        })
        .await
}

/// A source embedded in a debug file's DWARF, by its path. The debug file is streamed to
/// local disk and mapped, never held in memory whole.
pub async fn embedded_source(app: &App, file: &Sha256, path: &str) -> Option<Arc<Text>> {
    let store = app.store.clone();
    let sha = file.clone();
    let path = path.to_owned();
    let tmp = crate::ingest::tmp_path(&app.config.tmp_dir());
    app.caches
        .text(format!("embedded:{file}:{path}"), async move {
            store.download_to(&Store::blob_key(&sha), &tmp).await.ok()?;
            let tmp = tempfile::TempPath::try_from_path(tmp).ok()?;
            tokio::task::spawn_blocking(move || {
                let map = Mapped::open(&tmp).ok()?;
                crate::native::embedded_source(&map, &path).ok()?
            })
            .await
            .ok()?
        })
        .await
}
