//! JavaScript frames: debug ID → release + URL → map reference, then a lookup in the
//! (minified, map) pair's cache. See `shared/DESIGN.md` §5 for the order.

use std::collections::HashMap;
use std::sync::Arc;

use crate::caches::{BuildError, Built, CacheBytes};
use crate::error::ApiError;
use crate::http::AppState;
use crate::index::ReleaseIndex;
use crate::kinds::ArtifactKind;
use crate::store::{ArtifactEntry, Store, UploadManifest};
use crate::types::{parse_debug_id, ArtifactUrl, Dist, ProjectId, Release, Sha256};
use crate::wire::{self, FrameOrder, JsFrame, JsRequest, JsResponse, JsStacktraceOut};

/// How the artifacts of one minified file were found, or why not.
pub struct Resolution {
    outcome: Result<Resolved, Failure>,
}

struct Resolved {
    cache: Arc<CacheBytes>,
    /// The derived cache's key (names per-source line indexes).
    cache_key: String,
    /// URL (or description) of the map, for `data.sourcemap`.
    sourcemap: String,
    /// Base URL against which the map's `sources` resolve (to find uploaded originals).
    map_url: Option<String>,
    resolved_with: &'static str,
    minified_sha: Option<Sha256>,
    release: Option<Arc<ReleaseIndex>>,
    dist: Option<Dist>,
}

#[derive(Clone)]
struct Failure {
    kind: &'static str,
    diagnostic: String,
    url: Option<String>,
}

/// A cache that could not be built: a map that cannot be indexed is malformed; one that
/// could not be read (store trouble) is missing for now, and the next request tries again.
fn build_failure(e: &BuildError, what: &str, url: &str) -> Failure {
    let (kind, how) = match e {
        BuildError::Invalid(_) => ("malformed_sourcemap", "could not be indexed"),
        BuildError::Unavailable(_) => ("missing_sourcemap", "could not be read"),
    };
    Failure {
        kind,
        diagnostic: format!("source map {what} {how}: {e}"),
        url: Some(url.to_owned()),
    }
}

fn fail(kind: &'static str, diagnostic: String) -> Failure {
    Failure {
        kind,
        diagnostic,
        url: None,
    }
}

pub(crate) fn cache_key(minified: Option<&Sha256>, map: &Sha256) -> String {
    format!(
        "js/v{}/{}/{}",
        crate::js::FORMAT_VERSION,
        map.as_str(),
        minified.map_or("none", |s| s.as_str())
    )
}

/// Gets (or builds) the lookup cache for a (minified, map) pair.
pub(crate) async fn pair_cache(state: &AppState, minified: Option<&Sha256>, map: &Sha256) -> Built {
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

/// The URLs under which a frame's file may have been uploaded, most specific first:
/// the full URL, without query, `~/path?query`, `~/path` (fragment always dropped).
pub fn url_candidates(abs_path: &str) -> Vec<String> {
    let abs_path = abs_path.split('#').next().unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    };
    push(abs_path.to_owned());
    let without_query = abs_path.split('?').next().unwrap_or_default();
    push(without_query.to_owned());
    if let Some(rest) = abs_path.strip_prefix("~/") {
        push(format!("~/{}", rest.split('?').next().unwrap_or_default()));
    } else if let Some((_, after_scheme)) = abs_path.split_once("://") {
        // Drop scheme and host; keep path and query.
        let path = after_scheme
            .find('/')
            .map_or("", |i| &after_scheme[i + 1..]);
        if !path.is_empty() {
            push(format!("~/{path}"));
            push(format!("~/{}", path.split('?').next().unwrap_or_default()));
        }
    } else if let Some(path) = abs_path.strip_prefix('/') {
        push(format!("~/{path}"));
        push(format!("~/{}", path.split('?').next().unwrap_or_default()));
    } else {
        push(format!("~/{abs_path}"));
        push(format!("~/{without_query}"));
    }
    out
}

/// Resolves `reference` (a map URL or a `sources` entry) against the URL of the file that
/// names it. Host-less `~/` URLs resolve like paths on an anonymous host.
pub fn resolve_url(base: &str, reference: &str) -> String {
    const HOSTLESS: &str = "http://tracemap.invalid/";
    if reference.contains("://") {
        return reference.to_owned();
    }
    let (base_url, hostless) = match base.strip_prefix("~/") {
        Some(rest) => (format!("{HOSTLESS}{rest}"), true),
        None => (base.to_owned(), false),
    };
    let joined = url::Url::parse(&base_url)
        .and_then(|b| b.join(reference))
        .map(|u| u.to_string());
    match joined {
        Ok(u) if hostless => u
            .strip_prefix(HOSTLESS)
            .map(|p| format!("~/{p}"))
            .unwrap_or(u),
        Ok(u) => u,
        Err(_) => reference.to_owned(),
    }
}

struct Lookup<'a> {
    state: &'a AppState,
    project: &'a ProjectId,
    release: Option<Release>,
    dist: Option<Dist>,
    /// `code_file` → debug ID from the request's `sourcemap` modules.
    debug_ids: HashMap<String, debugid::DebugId>,
}

impl Lookup<'_> {
    async fn resolve(&self, abs_path: &str) -> Arc<Resolution> {
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
        let mut notes: Vec<String> = Vec::new();
        // 1. Debug ID.
        if let Some(id) = debug_id {
            match self.by_debug_id(id).await {
                Ok(Some(resolved)) => return Ok(resolved),
                Ok(None) => notes.push(format!(
                    "debug ID {id} (from the request's modules) matched no uploaded source map"
                )),
                Err(f) => return Err(f),
            }
        }
        // 2. Release + URL.
        let Some(release) = &self.release else {
            let mut d = notes.join("; ");
            if !d.is_empty() {
                d.push_str("; ");
            }
            d.push_str("the request has no release, so no URL lookup was possible");
            return Err(fail(
                if debug_id.is_some() {
                    "missing_sourcemap"
                } else {
                    "missing_source"
                },
                d,
            ));
        };
        let index = self
            .state
            .index
            .release(self.project, release)
            .await
            .map_err(|e| fail("missing_source", format!("store error: {e}")))?;
        let dist = self.dist.as_ref();
        let candidates = url_candidates(abs_path);
        let where_ = || match dist {
            Some(d) => format!("release {release} (dist {d})"),
            None => format!("release {release} (no dist)"),
        };
        if index.uploads == 0 {
            notes.push(format!(
                "project {} has no release {release:?}",
                self.project
            ));
            return Err(fail("missing_source", notes.join("; ")));
        }
        let minified = candidates.iter().find_map(|c| index.get(dist, c));
        let Some(minified) = minified else {
            // The minified file is absent; a map under the sibling URL still serves.
            for c in &candidates {
                let map_url = format!("{c}.map");
                if let Some(map) = index.get(dist, &map_url) {
                    if map.entry.kind == ArtifactKind::SourceMap {
                        return self
                            .resolved(&index, None, &map.entry, map_url, "release")
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
            notes.push(format!(
                "{} has no artifact for {}; tried: {}",
                where_(),
                abs_path,
                candidates.join(", ")
            ));
            if !similar.is_empty() {
                notes.push(format!(
                    "files with that name in the release: {}",
                    similar.join(", ")
                ));
            }
            return Err(fail("missing_source", notes.join("; ")));
        };
        let min_entry = &minified.entry;
        // A source map uploaded at the frame's URL itself.
        if min_entry.kind == ArtifactKind::SourceMap {
            let url = min_entry.url.to_string();
            return self.resolved(&index, None, min_entry, url, "release").await;
        }
        // 3. The minified file's map reference.
        if let Some(problem) = min_entry.headers.get("x-tracemap-inline-map-error") {
            return Err(Failure {
                kind: if problem.contains("base64") {
                    "invalid_base64_sourcemap"
                } else {
                    "malformed_sourcemap"
                },
                diagnostic: format!("{}: inline source map: {problem}", min_entry.url),
                url: Some(min_entry.url.to_string()),
            });
        }
        if let Some(inline) = min_entry.headers.get("x-tracemap-inline-map") {
            let sha =
                Sha256::parse(inline).map_err(|e| fail("malformed_sourcemap", e.to_string()))?;
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
                    "release",
                )
                .await;
        }
        let mut tried = Vec::new();
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
                        .resolved(&index, Some(min_entry), &map.entry, u.clone(), "release")
                        .await;
                }
            }
        }
        // The minified file's own debug ID may find a map uploaded elsewhere.
        if let Some(id) = min_entry.debug_id {
            if let Ok(Some(r)) = self.by_debug_id(id).await {
                return Ok(r);
            }
            tried.push(format!("debug ID {id}"));
        }
        let how = match &map_ref {
            Some(r) => format!("its source map reference {r:?}"),
            None => {
                "no sourceMappingURL comment or Sourcemap header; the sibling convention".into()
            }
        };
        notes.push(format!(
            "found {} in {} but not the source map named by {how}; tried: {}",
            min_entry.url,
            where_(),
            tried.join(", ")
        ));
        Err(Failure {
            kind: "missing_sourcemap",
            diagnostic: notes.join("; "),
            url: map_urls.first().cloned(),
        })
    }

    /// The newest upload holding a source map with this debug ID (and the minified file
    /// with the same ID, if uploaded).
    async fn by_debug_id(&self, id: debugid::DebugId) -> Result<Option<Resolved>, Failure> {
        let manifests = self
            .state
            .index
            .by_debug_id(self.project, &id)
            .await
            .map_err(|e| fail("missing_sourcemap", format!("store error: {e}")))?;
        let find = |kind: ArtifactKind| {
            manifests.iter().rev().find_map(|m: &Arc<UploadManifest>| {
                m.artifacts
                    .iter()
                    .find(|a| a.debug_id == Some(id) && a.kind == kind)
                    .cloned()
            })
        };
        let Some(map) = find(ArtifactKind::SourceMap) else {
            return Ok(None);
        };
        let minified = find(ArtifactKind::MinifiedSource);
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
            resolved_with: "debug-id",
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
        resolved_with: &'static str,
    ) -> Result<Resolved, Failure> {
        let built = pair_cache(self.state, minified.map(|m| &m.sha256), &map.sha256).await;
        let cache = built.map_err(|e| build_failure(&e, &map_url, &map_url))?;
        Ok(Resolved {
            cache,
            cache_key: cache_key(minified.map(|m| &m.sha256), &map.sha256),
            sourcemap: map_url.clone(),
            // Sources resolve against the map's own URL (for an inline map: the file's).
            map_url: Some(map.url.to_string()),
            resolved_with,
            minified_sha: minified.map(|m| m.sha256.clone()),
            release: Some(index.clone()),
            dist: self.dist.clone(),
        })
    }
}

/// Symbolicates a JS request. Never fails for per-frame problems.
pub async fn symbolicate(
    state: &AppState,
    project: &ProjectId,
    request: JsRequest,
) -> Result<JsResponse, ApiError> {
    let total: usize = request.stacktraces.iter().map(|s| s.frames.len()).sum();
    if total > state.config.limits.max_frames {
        return Err(ApiError::too_large(
            "too_many_frames",
            format!(
                "request has {total} frames, over the limit of {}",
                state.config.limits.max_frames
            ),
        ));
    }
    let release = request
        .release
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(Release::parse)
        .transpose()?;
    let dist = request
        .dist
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(Dist::parse)
        .transpose()?;
    let mut debug_ids = HashMap::new();
    for m in &request.modules {
        if m.kind != "sourcemap" {
            continue;
        }
        if let (Some(file), Some(id)) = (&m.code_file, &m.debug_id) {
            if let Ok(id) = parse_debug_id(id) {
                debug_ids.insert(file.clone(), id);
            }
        }
    }
    let lookup = Lookup {
        state,
        project,
        release,
        dist,
        debug_ids,
    };
    let context = request.options.apply_source_context;
    let order = request
        .options
        .frame_order
        .unwrap_or(FrameOrder::CallerFirst);
    let mut per_request: HashMap<String, Arc<Resolution>> = HashMap::new();
    let mut errors = Vec::new();
    let mut stacktraces = Vec::with_capacity(request.stacktraces.len());
    let mut raw_stacktraces = Vec::with_capacity(request.stacktraces.len());
    let mut counter = super::FrameCounter::new("js");

    for st in request.stacktraces {
        let mut frames_out = Vec::with_capacity(st.frames.len());
        let mut raw_out = Vec::with_capacity(st.frames.len());
        // Token names at each frame's position: a callee's best fallback name is the name
        // its caller used at the call site.
        let mut call_site_names: Vec<Option<String>> = Vec::with_capacity(st.frames.len());
        // Frames inside a function that has no name in the original source: they stay
        // nameless, as the JS engines print them, instead of borrowing a caller's name.
        let mut anonymous_scopes: Vec<bool> = Vec::with_capacity(st.frames.len());
        for frame in &st.frames {
            let abs_path = frame
                .abs_path
                .as_deref()
                .map(|p| p.strip_prefix("async ").unwrap_or(p).to_owned());
            let mut result = frame.clone();
            let mut raw = frame.clone();
            let mut token_name = None;
            let mut anonymous = false;
            match (&abs_path, frame.lineno, frame.colno) {
                (None, ..) | (_, None, _) => {
                    errors.push(js_error(
                        frame,
                        "invalid_location",
                        "the frame has no abs_path or lineno".into(),
                    ));
                    result.data.diagnostic = Some("the frame has no abs_path or lineno".into());
                }
                (Some(_), Some(_), None) => {
                    let d =
                        "the frame has no column; minified code needs lineno and colno".to_owned();
                    errors.push(js_error(frame, "no_column", d.clone()));
                    result.data.diagnostic = Some(d);
                }
                (Some(path), Some(lineno), Some(colno)) => {
                    let resolution = match per_request.get(path) {
                        Some(r) => r.clone(),
                        None => {
                            let r = lookup.resolve(path).await;
                            per_request.insert(path.clone(), r.clone());
                            r
                        }
                    };
                    match &resolution.outcome {
                        Err(f) => {
                            errors.push(crate::wire::JsError {
                                url: f.url.clone(),
                                ..js_error(frame, f.kind, f.diagnostic.clone())
                            });
                            result.data.diagnostic = Some(f.diagnostic.clone());
                        }
                        Ok(r) => {
                            (token_name, anonymous) = apply_lookup(
                                state,
                                r,
                                frame,
                                lineno,
                                colno,
                                context,
                                &mut result,
                                &mut errors,
                            )
                            .await;
                            if context {
                                if let Some(sha) = &r.minified_sha {
                                    if let Some(text) = state.caches.text(sha).await {
                                        set_context(&mut raw, text.context(lineno, colno));
                                    }
                                }
                            }
                        }
                    }
                }
            }
            counter.add(if result.data.symbolicated {
                "symbolicated"
            } else {
                "failed"
            });
            call_site_names.push(token_name);
            anonymous_scopes.push(anonymous);
            frames_out.push(result);
            raw_out.push(raw);
        }
        // Fallback names: the caller's token name at the call site, else the minified name.
        for i in 0..frames_out.len() {
            if !frames_out[i].data.symbolicated
                || frames_out[i].function.is_some()
                || anonymous_scopes[i]
            {
                continue;
            }
            let caller = match order {
                FrameOrder::CallerFirst => i.checked_sub(1),
                FrameOrder::CalleeFirst => Some(i + 1).filter(|&j| j < frames_out.len()),
            };
            let name = caller
                .and_then(|c| call_site_names[c].clone())
                .or_else(|| st.frames[i].function.clone());
            frames_out[i].function = name;
        }
        stacktraces.push(JsStacktraceOut { frames: frames_out });
        raw_stacktraces.push(JsStacktraceOut { frames: raw_out });
    }
    Ok(JsResponse {
        status: "completed",
        stacktraces,
        raw_stacktraces,
        errors,
    })
}

fn js_error(frame: &JsFrame, kind: &'static str, diagnostic: String) -> wire::JsError {
    wire::JsError {
        abs_path: frame.abs_path.clone().unwrap_or_default(),
        kind,
        line: frame.lineno,
        col: frame.colno,
        url: None,
        source: None,
        sourcemap: None,
        diagnostic,
    }
}

/// Looks one frame up and fills `out`. Returns the token name at the position (the name
/// the code used there, for the callee's fallback) and whether the enclosing function is
/// known to be anonymous.
#[allow(clippy::too_many_arguments)]
async fn apply_lookup(
    state: &AppState,
    r: &Resolved,
    frame: &JsFrame,
    lineno: u32,
    colno: u32,
    context: bool,
    out: &mut JsFrame,
    errors: &mut Vec<wire::JsError>,
) -> (Option<String>, bool) {
    // The one place where wire positions (1-based) become lookup positions (0-based).
    let (line0, col0) = (lineno.saturating_sub(1), colno.saturating_sub(1));
    let cache = match crate::js::JsCache::parse(&r.cache) {
        Ok(c) => c,
        Err(e) => {
            let d = format!("cache for {} is unreadable: {e}", r.sourcemap);
            errors.push(js_error(frame, "malformed_sourcemap", d.clone()));
            out.data.diagnostic = Some(d);
            return (None, false);
        }
    };
    let Some(loc) = cache.lookup(line0, col0) else {
        let d = format!(
            "source map {} has no mapping at line {lineno}, column {colno}",
            r.sourcemap
        );
        errors.push(js_error(frame, "invalid_location", d.clone()));
        out.data.diagnostic = Some(d);
        return (None, false);
    };
    let (normalized, filename) = crate::js::normalize_source_path(loc.abs_path);
    // A relative source (`../../src/cart.js`) is relative to the map's URL, as browsers and
    // Sentry resolve it: report where it lives (`~/src/cart.js`).
    let relative = !loc.abs_path.contains("://")
        && !loc.abs_path.starts_with('/')
        && !loc.abs_path.starts_with("~/");
    let abs_path = match (&r.map_url, relative) {
        (Some(map_url), true) => resolve_url(map_url, loc.abs_path),
        _ => normalized,
    };
    out.abs_path = Some(abs_path.clone());
    out.filename = Some(filename);
    out.lineno = Some(loc.line);
    out.colno = Some(loc.column);
    out.function = loc.function.map(str::to_owned);
    if crate::js::is_third_party(&abs_path) {
        out.in_app = Some(false);
    }
    out.data = wire::JsFrameData {
        symbolicated: true,
        resolved_with: Some(r.resolved_with.to_owned()),
        sourcemap: Some(r.sourcemap.clone()),
        diagnostic: None,
    };
    out.pre_context = None;
    out.context_line = None;
    out.post_context = None;
    if context {
        let ctx = match cache.source_by_id(loc.source_id) {
            Some(text) => {
                let lines = state
                    .caches
                    .line_index(&r.cache_key, loc.source_id, text)
                    .await;
                Some(lines.context(text, loc.line, loc.column, 5))
            }
            None => original_source(state, r, loc.abs_path)
                .await
                .map(|t| t.context(loc.line, loc.column)),
        };
        match ctx {
            Some(ctx) => set_context(out, ctx),
            None => {
                errors.push(wire::JsError {
                    source: Some(loc.abs_path.to_owned()),
                    sourcemap: Some(r.sourcemap.clone()),
                    ..js_error(
                        frame,
                        "missing_source_content",
                        format!(
                            "the source map has no sourcesContent for {} and no original source was uploaded at {}",
                            loc.abs_path,
                            source_candidates(r, loc.abs_path).join(", ")
                        ),
                    )
                });
            }
        }
    }
    (
        loc.token_name.map(str::to_owned),
        matches!(loc.scope, crate::js::JsScope::Anonymous),
    )
}

fn set_context(frame: &mut JsFrame, ctx: Option<crate::js::SourceContext>) {
    if let Some(ctx) = ctx {
        frame.pre_context = Some(ctx.pre_context);
        frame.context_line = Some(ctx.context_line);
        frame.post_context = Some(ctx.post_context);
    }
}

/// URLs where an original source named `source` by the map may have been uploaded.
fn source_candidates(r: &Resolved, source: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(base) = &r.map_url {
        out.push(resolve_url(base, source));
    }
    let (_, filename) = crate::js::normalize_source_path(source);
    out.push(format!("~/{}", filename.trim_start_matches('/')));
    out.dedup();
    out
}

async fn original_source(
    state: &AppState,
    r: &Resolved,
    source: &str,
) -> Option<Arc<crate::caches::Text>> {
    let index = r.release.as_ref()?;
    for url in source_candidates(r, source) {
        for c in url_candidates(&url) {
            if let Some(a) = index.get(r.dist.as_ref(), &c) {
                return state.caches.text(&a.entry.sha256).await;
            }
        }
    }
    None
}

/// After an upload: build the cache of every (minified, map) pair it completes.
pub async fn prewarm(state: &AppState, manifest: &UploadManifest) {
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
