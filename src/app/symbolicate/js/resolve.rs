//! Which artifacts serve a minified file: debug ID → release + URL → map reference →
//! sibling `.map`, with a diagnostic for every way it can fail; and the (minified, map)
//! pair's derived cache. Resolutions are remembered per process until the project's next
//! upload (or `cache.index_ttl`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::app::App;
use crate::caches::{BuildError, Built, CacheBytes};
use crate::index::ReleaseIndex;
use crate::js::{resolve_url, url_candidates};
use crate::kinds::ArtifactKind;
use crate::store::{ArtifactEntry, DeletedDebugId, Store, UploadManifest};
use crate::types::{ArtifactUrl, Dist, ProjectId, Release, Sha256};
use crate::wire::JsErrorKind;

/// Which lookup found a map (`data.resolved_with` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ResolvedWith {
    DebugId,
    Release,
}

impl ResolvedWith {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            ResolvedWith::DebugId => "debug-id",
            ResolvedWith::Release => "release",
        }
    }
}

/// How the artifacts of one minified file were found, or why not.
pub struct Resolution {
    pub(super) outcome: Result<Resolved, Failure>,
}

impl Resolution {
    /// Bytes this resolution holds, for the resolution cache's byte budget.
    pub fn weight(&self) -> usize {
        256 + match &self.outcome {
            // The whole cache counts, mapped or not: a resolution keeps it alive (and a
            // mapping is a limited resource too).
            Ok(r) => r.cache.len() + r.cache_key.len() + r.sourcemap.len(),
            Err(f) => f.diagnostic.len() + f.url.as_ref().map_or(0, String::len),
        }
    }
}

pub(super) struct Resolved {
    pub(super) cache: Arc<CacheBytes>,
    /// The derived cache's key (names per-source line indexes).
    pub(super) cache_key: String,
    /// URL (or description) of the map, for `data.sourcemap`.
    pub(super) sourcemap: String,
    /// The map's stored URL: where uploaded originals named by relative `sources` are
    /// looked for.
    pub(super) map_url: Option<String>,
    /// What relative `sources` resolve against for display (`abs_path`): the map's stored
    /// URL when the map was found by release and URL (that URL is the real one); the
    /// frame's own `abs_path` when it was found by debug ID, whose storage URL inside a
    /// bundle (`~/0.js.map`) says nothing about where the code ran.
    pub(super) sources_base: String,
    pub(super) resolved_with: ResolvedWith,
    pub(super) minified_sha: Option<Sha256>,
    pub(super) release: Option<Arc<ReleaseIndex>>,
    pub(super) dist: Option<Dist>,
}

#[derive(Clone)]
pub(super) struct Failure {
    pub(super) kind: JsErrorKind,
    pub(super) diagnostic: String,
    pub(super) url: Option<String>,
    /// The minified file, when it was found but no usable map was: its own lines are the
    /// frame's context (as Symbolicator gives them).
    pub(super) minified_sha: Option<Sha256>,
}

impl Failure {
    fn with_minified(mut self, minified: Option<&ArtifactEntry>) -> Self {
        self.minified_sha = minified.map(|m| m.sha256.clone());
        self
    }
}

/// A cache that could not be built: a map that cannot be indexed is malformed; one that
/// could not be read (store trouble) is missing for now, and the next request tries again.
fn build_failure(e: &BuildError, what: &str, url: &str) -> Failure {
    let (kind, how) = match e {
        BuildError::Invalid(_) => (JsErrorKind::MalformedSourcemap, "could not be indexed"),
        BuildError::Unavailable(_) => (JsErrorKind::MissingSourcemap, "could not be read"),
    };
    Failure {
        kind,
        diagnostic: format!("source map {what} {how}: {e}"),
        url: Some(url.to_owned()),
        minified_sha: None,
    }
}

fn fail(kind: JsErrorKind, diagnostic: String) -> Failure {
    Failure {
        kind,
        diagnostic,
        url: None,
        minified_sha: None,
    }
}

fn cache_key(minified: Option<&Sha256>, map: &Sha256) -> String {
    format!(
        "js/v{}/{}/{}",
        crate::js::FORMAT_VERSION,
        map.as_str(),
        minified.map_or("none", |s| s.as_str())
    )
}

/// Gets (or builds) the lookup cache for a (minified, map) pair.
async fn pair_cache(state: &App, minified: Option<&Sha256>, map: &Sha256) -> Built {
    let key = cache_key(minified, map);
    let store = state.store.clone();
    let minified = minified.cloned();
    let map = map.clone();
    let max_map = state.config.limits.max_sourcemap_bytes;
    state
        .caches
        .get_or_build(key, || async move {
            let map_bytes = store
                .get_bytes(&Store::blob_key(&map))
                .await
                .map_err(BuildError::unavailable)?
                .ok_or_else(|| {
                    BuildError::unavailable(format!(
                        "source map blob {map} is missing from the store"
                    ))
                })?;
            if map_bytes.len() as u64 > max_map {
                return Err(BuildError::invalid(format!(
                    "source map is {} bytes, over the limit of {max_map}",
                    map_bytes.len()
                )));
            }
            let min_bytes = match &minified {
                Some(sha) => store
                    .get_bytes(&Store::blob_key(sha))
                    .await
                    .map_err(BuildError::unavailable)?,
                None => None,
            };
            tokio::task::spawn_blocking(move || {
                let minified = min_bytes.as_deref().map(String::from_utf8_lossy);
                crate::js::build_cache(minified.as_deref(), &map_bytes).map_err(BuildError::invalid)
            })
            .await
            .map_err(BuildError::unavailable)?
        })
        .await
}

/// One request's lookup context: the project, release, dist and the debug IDs of its
/// `sourcemap` modules.
pub(super) struct Lookup<'a> {
    pub(super) state: &'a App,
    pub(super) project: &'a ProjectId,
    pub(super) release: Option<Release>,
    pub(super) dist: Option<Dist>,
    /// `code_file` → debug ID from the request's `sourcemap` modules.
    pub(super) debug_ids: HashMap<String, debugid::DebugId>,
}

impl Lookup<'_> {
    pub(super) async fn resolve(&self, abs_path: &str) -> Arc<Resolution> {
        let debug_id = self
            .debug_ids
            .get(abs_path)
            .or_else(|| {
                self.debug_ids
                    .get(abs_path.split(['?', '#']).next().unwrap_or(""))
            })
            .copied();
        let key = format!(
            "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
            self.project,
            self.state.index.generation(self.project),
            self.release.as_ref().map_or("", |r| r.as_str()),
            self.dist.as_ref().map_or("", |d| d.as_str()),
            debug_id.map(|d| d.to_string()).unwrap_or_default(),
            abs_path
        );
        let resolutions = &self.state.js_resolutions;
        if let Some(r) = resolutions.get(&key).await {
            return r;
        }
        let r = Arc::new(Resolution {
            outcome: self.resolve_uncached(abs_path, debug_id).await,
        });
        resolutions.insert(key, r.clone()).await;
        r
    }

    async fn resolve_uncached(
        &self,
        abs_path: &str,
        debug_id: Option<debugid::DebugId>,
    ) -> Result<Resolved, Failure> {
        // What the debug ID lookup found, when it found nothing: the start of the sentence.
        let mut tried_debug_id = None;
        // 1. Debug ID.
        if let Some(id) = debug_id {
            match self.by_debug_id(id, abs_path).await {
                Ok(Some(resolved)) => return Ok(resolved),
                Ok(None) => {
                    tried_debug_id = Some(format!(
                        "debug ID {id} from the request's modules matched no uploaded source map"
                    ))
                }
                Err(f) => return Err(f),
            }
        }
        let sentence = |rest: String| match &tried_debug_id {
            Some(first) => format!("{first}, and {rest}"),
            None => rest,
        };
        // 2. Release + URL.
        let Some(release) = &self.release else {
            let d = sentence("the request has no release to look its files up by URL".into());
            return Err(fail(
                if debug_id.is_some() {
                    JsErrorKind::MissingSourcemap
                } else {
                    JsErrorKind::MissingSource
                },
                d,
            ));
        };
        let index = self
            .state
            .index
            .release(self.project, release)
            .await
            .map_err(|e| {
                fail(
                    JsErrorKind::MissingSource,
                    format!("the store could not be read: {e}"),
                )
            })?;
        let dist = self.dist.as_ref();
        let candidates = url_candidates(abs_path);
        let where_ = || match dist {
            Some(d) => format!("release {release} (dist {d})"),
            None => format!("release {release} (no dist)"),
        };
        if index.uploads == 0 {
            let d = sentence(format!("project {} has no release {release}", self.project));
            return Err(fail(JsErrorKind::MissingSource, d));
        }
        let minified = candidates.iter().find_map(|c| index.get(dist, c));
        let Some(minified) = minified else {
            // The minified file is absent; a map under the sibling URL still serves.
            for c in &candidates {
                let map_url = format!("{c}.map");
                if let Some(map) = index.get(dist, &map_url) {
                    if map.entry.kind == ArtifactKind::SourceMap {
                        return self
                            .resolved(&index, None, &map.entry, map_url, ResolvedWith::Release)
                            .await;
                    }
                }
            }
            let name = candidates
                .last()
                .and_then(|c| c.rsplit('/').next())
                .unwrap_or_default()
                .to_owned();
            let similar = index.similar_urls(&name, 5);
            let mut d = format!(
                "{} has no file for {abs_path} at {}",
                where_(),
                or_list(&candidates)
            );
            if !similar.is_empty() {
                d.push_str(&format!(
                    ", though it has files of that name at {}",
                    and_list(&similar)
                ));
            }
            return Err(fail(JsErrorKind::MissingSource, sentence(d)));
        };
        let min_entry = &minified.entry;
        // A source map uploaded at the frame's URL itself.
        if min_entry.kind == ArtifactKind::SourceMap {
            let url = min_entry.url.to_string();
            return self
                .resolved(&index, None, min_entry, url, ResolvedWith::Release)
                .await;
        }
        // 3. The minified file's map reference.
        if let Some(problem) = min_entry.headers.get("x-tracemap-inline-map-error") {
            return Err(Failure {
                kind: if problem.contains("base64") {
                    JsErrorKind::InvalidBase64Sourcemap
                } else {
                    JsErrorKind::MalformedSourcemap
                },
                diagnostic: sentence(format!(
                    "the inline source map of {} is unusable: {}",
                    min_entry.url,
                    problem.trim_end_matches('.')
                )),
                url: Some(min_entry.url.to_string()),
                minified_sha: Some(min_entry.sha256.clone()),
            });
        }
        if let Some(inline) = min_entry.headers.get("x-tracemap-inline-map") {
            let sha = Sha256::parse(inline)
                .map_err(|e| fail(JsErrorKind::MalformedSourcemap, e.to_string()))?;
            let entry = ArtifactEntry {
                url: min_entry.url.clone(),
                kind: ArtifactKind::SourceMap,
                sha256: sha,
                size: 0,
                debug_id: None,
                sourcemap_ref: None,
                headers: Default::default(),
            };
            return self
                .resolved(
                    &index,
                    Some(min_entry),
                    &entry,
                    format!("{} (inline data: URL)", min_entry.url),
                    ResolvedWith::Release,
                )
                .await;
        }
        let mut tried: Vec<String> = Vec::new();
        let map_ref = min_entry.sourcemap_ref.clone();
        let map_urls: Vec<String> = match &map_ref {
            Some(r) => {
                let resolved = resolve_url(min_entry.url.as_str(), r);
                let mut v = url_candidates(&resolved);
                v.dedup();
                v
            }
            None => vec![format!("{}.map", min_entry.url)],
        };
        for u in &map_urls {
            tried.push(u.clone());
            if let Some(map) = index.get(dist, u) {
                if map.entry.kind == ArtifactKind::SourceMap {
                    return self
                        .resolved(
                            &index,
                            Some(min_entry),
                            &map.entry,
                            u.clone(),
                            ResolvedWith::Release,
                        )
                        .await;
                }
            }
        }
        // The minified file's own debug ID may find a map uploaded elsewhere.
        if let Some(id) = min_entry.debug_id {
            if let Ok(Some(r)) = self.by_debug_id(id, abs_path).await {
                return Ok(r);
            }
            tried.push(format!("under its debug ID {id}"));
        }
        let how = match &map_ref {
            Some(r) => format!(
                "its source map {r} (from its sourceMappingURL) is not at {}",
                or_list(&tried)
            ),
            None => format!(
                "it names no source map (no sourceMappingURL comment or SourceMap header) and none is at {}",
                or_list(&tried)
            ),
        };
        let d = format!("{} is in {}, but {how}", min_entry.url, where_());
        Err(Failure {
            kind: JsErrorKind::MissingSourcemap,
            diagnostic: sentence(d),
            url: map_urls.first().cloned(),
            minified_sha: Some(min_entry.sha256.clone()),
        })
    }

    /// The newest upload holding a source map with this debug ID (and the minified file
    /// with the same ID, if uploaded).
    /// `ran_at` is the frame's `abs_path`: where the code ran, which relative sources are
    /// shown against.
    async fn by_debug_id(
        &self,
        id: debugid::DebugId,
        ran_at: &str,
    ) -> Result<Option<Resolved>, Failure> {
        let manifests = self
            .state
            .index
            .by_debug_id(self.project, &id)
            .await
            .map_err(|e| {
                fail(
                    JsErrorKind::MissingSourcemap,
                    format!("the store could not be read: {e}"),
                )
            })?;
        // Newest first, up to the newest deletion of that kind of artifact with this ID.
        let find = |kind: ArtifactKind| {
            let tombstone = DeletedDebugId { debug_id: id, kind };
            manifests
                .iter()
                .rev()
                .take_while(|m| !m.deleted_debug_ids.contains(&tombstone))
                .find_map(|m: &Arc<UploadManifest>| {
                    m.artifacts
                        .iter()
                        .find(|a| a.debug_id == Some(id) && a.kind == kind)
                        .cloned()
                })
        };
        let minified = find(ArtifactKind::MinifiedSource);
        // A minified file with the ID and an inline `data:` map (what `sourcemaps inject`
        // makes of such a file: the ID goes into the file, the inline map cannot carry it)
        // is served by its inline map.
        let inline = || {
            let m = minified.as_ref()?;
            let sha = Sha256::parse(m.headers.get("x-tracemap-inline-map")?).ok()?;
            Some(ArtifactEntry {
                url: m.url.clone(),
                kind: ArtifactKind::SourceMap,
                sha256: sha,
                size: 0,
                debug_id: Some(id),
                sourcemap_ref: None,
                headers: Default::default(),
            })
        };
        let Some(map) = find(ArtifactKind::SourceMap).or_else(inline) else {
            return Ok(None);
        };
        let url = map.url.to_string();
        let built = pair_cache(
            self.state,
            minified.as_ref().map(|m| &m.sha256),
            &map.sha256,
        )
        .await;
        let cache =
            built.map_err(|e| build_failure(&e, &format!("{url} (debug ID {id})"), &url))?;
        let release = match &self.release {
            Some(r) => self.state.index.release(self.project, r).await.ok(),
            None => None,
        };
        Ok(Some(Resolved {
            cache,
            cache_key: cache_key(minified.as_ref().map(|m| &m.sha256), &map.sha256),
            sourcemap: url.clone(),
            map_url: Some(url),
            sources_base: ran_at.to_owned(),
            resolved_with: ResolvedWith::DebugId,
            minified_sha: minified.map(|m| m.sha256),
            release,
            dist: self.dist.clone(),
        }))
    }

    async fn resolved(
        &self,
        index: &Arc<ReleaseIndex>,
        minified: Option<&ArtifactEntry>,
        map: &ArtifactEntry,
        map_url: String,
        resolved_with: ResolvedWith,
    ) -> Result<Resolved, Failure> {
        let built = pair_cache(self.state, minified.map(|m| &m.sha256), &map.sha256).await;
        let cache =
            built.map_err(|e| build_failure(&e, &map_url, &map_url).with_minified(minified))?;
        Ok(Resolved {
            cache,
            cache_key: cache_key(minified.map(|m| &m.sha256), &map.sha256),
            sourcemap: map_url.clone(),
            // Sources resolve against the map's own URL (for an inline map: the file's).
            map_url: Some(map.url.to_string()),
            sources_base: map.url.to_string(),
            resolved_with,
            minified_sha: minified.map(|m| m.sha256.clone()),
            release: Some(index.clone()),
            dist: self.dist.clone(),
        })
    }
}

/// `a, b or c`, for the places something was looked for.
fn or_list(items: &[String]) -> String {
    joined(items, "or")
}

/// `a, b and c`.
fn and_list(items: &[String]) -> String {
    joined(items, "and")
}

fn joined(items: &[String], last: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., tail] => format!("{} {last} {tail}", init.join(", ")),
    }
}

/// After an upload: build the cache of every (minified, map) pair it completes.
pub async fn prewarm(state: &App, manifest: &UploadManifest) {
    let urls: HashMap<&str, &ArtifactEntry> = manifest
        .artifacts
        .iter()
        .map(|a| (a.url.as_str(), a))
        .collect();
    for a in &manifest.artifacts {
        if a.kind != ArtifactKind::MinifiedSource {
            continue;
        }
        let map = if let Some(inline) = a.headers.get("x-tracemap-inline-map") {
            Sha256::parse(inline).ok()
        } else {
            let target = match &a.sourcemap_ref {
                Some(r) => resolve_url(a.url.as_str(), r),
                None => format!("{}.map", a.url),
            };
            ArtifactUrl::parse(&target)
                .ok()
                .and_then(|u| urls.get(u.as_str()).map(|m| m.sha256.clone()))
        };
        if let Some(map) = map {
            let _ = pair_cache(state, Some(&a.sha256), &map).await;
        }
    }
}
