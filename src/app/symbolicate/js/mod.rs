//! JavaScript frames: debug ID → release + URL → map reference, then a lookup in the
//! (minified, map) pair's cache. See `shared/DESIGN.md` §5 for the order.

mod resolve;

use std::collections::HashMap;
use std::sync::Arc;

pub use resolve::{prewarm, Resolution};
use resolve::{Lookup, Resolved};

use super::ContextLines;
use crate::app::App;
use crate::error::{ApiError, ErrorCode};
use crate::js::{resolve_url, url_candidates};
use crate::types::{parse_debug_id, Dist, ProjectId, Release};
use crate::wire::{
    self, FrameOrder, JsErrorKind, JsFrame, JsRequest, JsResponse, JsStacktraceOut, RequestStatus,
};

/// Symbolicates a JS request. Never fails for per-frame problems.
pub async fn symbolicate(
    state: &App,
    project: &ProjectId,
    request: JsRequest,
) -> Result<JsResponse, ApiError> {
    let total: usize = request.stacktraces.iter().map(|s| s.frames.len()).sum();
    if total > state.config.limits.max_frames {
        return Err(ApiError::new(
            ErrorCode::TooManyFrames,
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
    let context = ContextLines::from_option(request.options.apply_source_context);
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
                        JsErrorKind::InvalidLocation,
                        "the frame has no abs_path or lineno".into(),
                    ));
                    result.data.diagnostic = Some("the frame has no abs_path or lineno".into());
                }
                (Some(_), Some(_), None) => {
                    let d = "the frame has no colno, and minified code needs both lineno and colno"
                        .to_owned();
                    errors.push(js_error(frame, JsErrorKind::NoColumn, d.clone()));
                    result.data.diagnostic = Some(d);
                }
                (Some(_), Some(0), _) | (Some(_), _, Some(0)) => {
                    let d = format!(
                        "line {}, column {} is not a position, as lines and columns are 1-based",
                        frame.lineno.unwrap_or_default(),
                        frame.colno.unwrap_or_default()
                    );
                    errors.push(js_error(frame, JsErrorKind::InvalidLocation, d.clone()));
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
                            // The minified file was found but no usable map: its own lines.
                            if let (ContextLines::Apply, Some(sha)) = (context, &f.minified_sha) {
                                if let Some(text) = super::sources::blob_text(state, sha).await {
                                    set_context(&mut result, text.context(lineno, colno));
                                    set_context(&mut raw, text.context(lineno, colno));
                                }
                            }
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
                            if context == ContextLines::Apply {
                                if let Some(sha) = &r.minified_sha {
                                    if let Some(text) = super::sources::blob_text(state, sha).await
                                    {
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
        status: RequestStatus::Completed,
        stacktraces,
        raw_stacktraces,
        errors,
    })
}

fn js_error(frame: &JsFrame, kind: JsErrorKind, diagnostic: String) -> wire::JsError {
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
    state: &App,
    r: &Resolved,
    frame: &JsFrame,
    lineno: u32,
    colno: u32,
    context: ContextLines,
    out: &mut JsFrame,
    errors: &mut Vec<wire::JsError>,
) -> (Option<String>, bool) {
    // The one place where wire positions (1-based) become lookup positions (0-based); the
    // caller has answered `invalid_location` for a 0.
    let (line0, col0) = (lineno.saturating_sub(1), colno.saturating_sub(1));
    let cache = match crate::js::JsCache::parse(&r.cache) {
        Ok(c) => c,
        Err(e) => {
            let d = format!("cache for {} is unreadable: {e}", r.sourcemap);
            errors.push(js_error(frame, JsErrorKind::MalformedSourcemap, d.clone()));
            out.data.diagnostic = Some(d);
            return (None, false);
        }
    };
    // A position the minified file does not have would still find a token (the last one of
    // the line): check it against the file when it was uploaded. Not for Hermes/Metro maps,
    // whose positions may be bytecode offsets rather than places in the uploaded bundle.
    let bytecode = cache.scope_origins().hermes_function_maps;
    if let (Some(sha), false) = (&r.minified_sha, bytecode) {
        if let Some(text) = super::sources::blob_text(state, sha).await {
            if let Some(problem) = text.position_problem(line0, col0) {
                let file = frame.abs_path.as_deref().unwrap_or("the minified file");
                let d = format!("{problem} in {file}");
                errors.push(js_error(frame, JsErrorKind::InvalidLocation, d.clone()));
                out.data.diagnostic = Some(d);
                return (None, false);
            }
        }
    }
    let Some(loc) = cache.lookup(line0, col0) else {
        let d = format!(
            "source map {} has no mapping at line {lineno}, column {colno}",
            r.sourcemap
        );
        errors.push(js_error(frame, JsErrorKind::InvalidLocation, d.clone()));
        out.data.diagnostic = Some(d);
        return (None, false);
    };
    let source = loc.abs_path;
    let (abs_path, filename) = if source.is_empty() {
        // A `null` (or empty) `sources` entry names no file: the code is the minified
        // file's own, never the map's.
        let minified = frame
            .abs_path
            .as_deref()
            .map(|p| p.strip_prefix("async ").unwrap_or(p))
            .unwrap_or_default()
            .to_owned();
        let (_, filename) = crate::js::normalize_source_path(&minified);
        (minified, filename)
    } else {
        let (_, filename) = crate::js::normalize_source_path(source);
        // A relative source (`../../src/cart.js`) is relative to where the code lives (see
        // `Resolved::sources_base`); any other keeps the spelling the map wrote it with.
        let relative = !has_scheme(source) && !source.starts_with('/') && !source.starts_with("~/");
        let abs_path = if relative {
            resolve_url(&r.sources_base, source)
        } else {
            source.to_owned()
        };
        (abs_path, filename)
    };
    out.abs_path = Some(abs_path.clone());
    out.filename = Some(filename);
    out.lineno = Some(loc.line);
    out.colno = Some(loc.column);
    out.function = loc.function.map(str::to_owned);
    let mut anonymous = matches!(loc.scope, crate::js::JsScope::Anonymous);
    // A map without the source's content: the uploaded original (if any) gives context and,
    // parsed once in its own syntax, the names.
    let original = if !source.is_empty() && !cache.has_source_content(loc.source_id) {
        original_source(state, r, source).await
    } else {
        None
    };
    if let Some((sha, text)) = &original {
        if let Some(file) = super::sources::original_file(state, sha, source, text).await {
            let scope = file.scope_at(loc.line.saturating_sub(1), loc.column.saturating_sub(1));
            anonymous = matches!(scope, crate::js::JsScope::Anonymous);
            out.function = match scope {
                crate::js::JsScope::Named(name) => Some(name.to_owned()),
                _ => None,
            };
        }
    }
    // The original file decides: the minified bundle's `in_app` (as the client sent it)
    // says nothing about which module a frame ends up in.
    out.in_app = Some(!crate::js::is_third_party(&abs_path));
    out.data = wire::JsFrameData {
        symbolicated: true,
        resolved_with: Some(r.resolved_with.as_str().to_owned()),
        sourcemap: Some(r.sourcemap.clone()),
        diagnostic: None,
    };
    out.pre_context = None;
    out.context_line = None;
    out.post_context = None;
    if context == ContextLines::Apply && source.is_empty() {
        errors.push(wire::JsError {
            sourcemap: Some(r.sourcemap.clone()),
            ..js_error(
                frame,
                JsErrorKind::MissingSourceContent,
                format!(
                    "the source map names no original file for line {}, column {}, so there is no original text to show",
                    loc.line, loc.column
                ),
            )
        });
    } else if context == ContextLines::Apply {
        let text = if cache.has_source_content(loc.source_id) {
            super::sources::map_source(state, &r.cache_key, &r.cache, loc.source_id).await
        } else {
            original.as_ref().map(|(_, text)| text.clone())
        };
        let ctx = text.map(|t| t.context(loc.line, loc.column));
        match ctx {
            Some(ctx) => set_context(out, ctx),
            None => {
                errors.push(wire::JsError {
                    source: Some(source.to_owned()),
                    sourcemap: Some(r.sourcemap.clone()),
                    ..js_error(
                        frame,
                        JsErrorKind::MissingSourceContent,
                        format!(
                            "the source map has no sourcesContent for {source}, and no original source was uploaded at {}",
                            source_candidates(r, source).join(" or ")
                        ),
                    )
                });
            }
        }
    }
    (loc.token_name.map(str::to_owned), anonymous)
}

/// Whether a `sources` entry starts with a URL scheme (`webpack:`, `https:`); a Windows
/// drive letter (`C:`) is not one.
fn has_scheme(source: &str) -> bool {
    source.split_once(':').is_some_and(|(scheme, _)| {
        scheme.len() > 1
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    })
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

/// The uploaded original of `source` (for maps without `sourcesContent`): its SHA-256 and
/// text.
async fn original_source(
    state: &App,
    r: &Resolved,
    source: &str,
) -> Option<(crate::types::Sha256, Arc<crate::caches::Text>)> {
    let index = r.release.as_ref()?;
    for url in source_candidates(r, source) {
        for c in url_candidates(&url) {
            if let Some(a) = index.get(r.dist.as_ref(), &c) {
                let sha = a.entry.sha256.clone();
                let text = super::sources::blob_text(state, &sha).await?;
                return Some((sha, text));
            }
        }
    }
    None
}
