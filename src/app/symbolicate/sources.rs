//! Source texts for context lines, loaded from the store into the caches' text tier: whole
//! uploaded files (minified and original sources), files of uploaded source bundles, and
//! sources embedded in a debug file's DWARF. Each is loaded once and then looked up.

use std::collections::HashMap;
use std::sync::Arc;

use crate::app::App;
use crate::caches::{CacheBytes, Text};
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
            tokio::task::spawn_blocking(move || {
                Text::new(String::from_utf8_lossy(&bytes).into_owned())
            })
            .await
            .ok()
        })
        .await
}

/// The `sourcesContent` entry `source_id` of a JS cache, copied out (and its UTF-8 checked)
/// once per cache and source, not on every frame.
pub async fn map_source(
    app: &App,
    cache_key: &str,
    cache: &Arc<CacheBytes>,
    source_id: u32,
) -> Option<Arc<Text>> {
    let cache = cache.clone();
    app.caches
        .text(format!("{cache_key}#source{source_id}"), async move {
            tokio::task::spawn_blocking(move || {
                let parsed = crate::js::JsCache::parse(&cache).ok()?;
                parsed
                    .source_by_id(source_id)
                    .map(|t| Text::new(t.to_owned()))
            })
            .await
            .ok()?
        })
        .await
}

/// The sources of one stored file (a source bundle, or a debug file with embedded sources),
/// by path: read once per file, then looked up per frame.
struct SourceSet {
    by_path: HashMap<String, Arc<Text>>,
}

impl SourceSet {
    fn new(files: Vec<(String, String)>) -> (SourceSet, usize) {
        let mut weight = 0;
        let by_path = files
            .into_iter()
            .map(|(path, text)| {
                weight += path.len() + text.len() * 2;
                (path, Arc::new(Text::new(text)))
            })
            .collect();
        (SourceSet { by_path }, weight)
    }
}

/// One file of an uploaded source bundle, by its path. The bundle is parsed once.
pub async fn bundle_source(app: &App, bundle: &Sha256, path: &str) -> Option<Arc<Text>> {
    let store = app.store.clone();
    let sha = bundle.clone();
    let set: Arc<SourceSet> = app
        .caches
        .derived(format!("bundle-sources:{bundle}"), async move {
            let bytes = store.get_bytes(&Store::blob_key(&sha)).await.ok()??;
            tokio::task::spawn_blocking(move || {
                use symbolic::debuginfo::sourcebundle::SourceBundle;
                let bundle = SourceBundle::parse(&bytes).ok()?;
                let session = bundle.debug_session().ok()?;
                let files = session
                    .files()
                    .filter_map(Result::ok)
                    .filter_map(|f| {
                        let path = f.abs_path_str();
                        let text = session.source_by_path(&path).ok()??;
                        let text = text.contents()?.to_owned();
                        Some((path, text))
                    })
                    .collect();
                Some(SourceSet::new(files))
            })
            .await
            .ok()?
        })
        .await?;
    set.by_path.get(path).cloned()
}

/// A source embedded in a debug file's DWARF, by its path. The debug file is streamed to
/// local disk, mapped and read once (never held in memory whole); every embedded source is
/// kept by path.
pub async fn embedded_source(app: &App, file: &Sha256, path: &str) -> Option<Arc<Text>> {
    let store = app.store.clone();
    let sha = file.clone();
    let tmp = crate::ingest::tmp_path(&app.config.tmp_dir());
    let set: Arc<SourceSet> = app
        .caches
        .derived(format!("embedded-sources:{file}"), async move {
            store.download_to(&Store::blob_key(&sha), &tmp).await.ok()?;
            let tmp = tempfile::TempPath::try_from_path(tmp).ok()?;
            tokio::task::spawn_blocking(move || {
                let map = Mapped::open(&tmp).ok()?;
                let files = crate::native::embedded_sources(&map).ok()?;
                Some(SourceSet::new(files))
            })
            .await
            .ok()?
        })
        .await?;
    set.by_path.get(&crate::native::source_key(path)).cloned()
}

/// The function scopes of an uploaded original source, parsed once per file.
pub async fn original_file(
    app: &App,
    sha: &Sha256,
    path: &str,
    text: &Arc<Text>,
) -> Option<Arc<crate::js::OriginalFile>> {
    let (path, text) = (path.to_owned(), text.clone());
    app.caches
        .derived(format!("original-scopes:{sha}"), async move {
            tokio::task::spawn_blocking(move || {
                let file = crate::js::OriginalFile::parse(&path, &text.text)?;
                let weight = file.weight();
                Some((file, weight))
            })
            .await
            .ok()?
        })
        .await
}
