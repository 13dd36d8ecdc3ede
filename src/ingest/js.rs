//! Classifies JavaScript-side artifacts at upload and reads, once, what lookups need later:
//! the debug ID and the source map reference. Source maps are parsed to reject broken ones.
//!
//! Pure: bytes in, facts out.

use crate::js::{decode_data_url, scan_magic_comments};
use crate::kinds::ArtifactKind;

use super::IngestError;

/// What an upload-time look at one file found.
#[derive(Debug, Clone, PartialEq)]
pub struct JsFacts {
    pub kind: ArtifactKind,
    pub debug_id: Option<debugid::DebugId>,
    /// `//# sourceMappingURL=` target (last one), verbatim. For `data:` URLs, the decoded
    /// map is returned in `inline_map` instead and this holds `data:` only.
    pub sourcemap_ref: Option<String>,
    /// An inline `data:` source map, decoded (validated like any other map).
    pub inline_map: Option<Vec<u8>>,
    /// A problem with the inline map that lookups should report (bad base64, bad JSON).
    pub inline_map_problem: Option<String>,
}

/// Looks at one file. `declared` is a type given by the client (bundle manifest or a
/// multipart `type` part); otherwise the name and content decide.
pub fn classify(
    name: &str,
    bytes: &[u8],
    declared: Option<ArtifactKind>,
    max_map_bytes: u64,
) -> Result<JsFacts, IngestError> {
    let too_large = |size: usize| IngestError::TooLarge {
        what: format!("source map {name} ({size} bytes)"),
        limit: max_map_bytes,
    };
    let kind = declared.unwrap_or_else(|| guess_kind(name, bytes));
    let mut facts = JsFacts {
        kind,
        debug_id: None,
        sourcemap_ref: None,
        inline_map: None,
        inline_map_problem: None,
    };
    match kind {
        ArtifactKind::SourceMap => {
            if bytes.len() as u64 > max_map_bytes {
                return Err(too_large(bytes.len()));
            }
            facts.debug_id = validate_sourcemap(name, bytes)?;
        }
        ArtifactKind::MinifiedSource | ArtifactKind::Source => {
            let comments = scan_magic_comments(bytes);
            facts.debug_id = comments.debug_id;
            if let Some(url) = comments.sourcemap_url {
                if url.starts_with("data:") {
                    facts.sourcemap_ref = Some("data:".into());
                    match decode_data_url(&url) {
                        Ok(map) if map.len() as u64 > max_map_bytes => {
                            facts.inline_map_problem = Some(too_large(map.len()).to_string())
                        }
                        Ok(map) => match validate_sourcemap(name, &map) {
                            Ok(id) => {
                                facts.debug_id = facts.debug_id.or(id);
                                facts.inline_map = Some(map);
                            }
                            Err(e) => facts.inline_map_problem = Some(e.to_string()),
                        },
                        Err(problem) => facts.inline_map_problem = Some(problem),
                    }
                } else {
                    facts.sourcemap_ref = Some(url);
                }
            }
            if facts.kind == ArtifactKind::Source
                && (facts.sourcemap_ref.is_some() || facts.debug_id.is_some())
            {
                facts.kind = ArtifactKind::MinifiedSource;
            }
        }
    }
    Ok(facts)
}

fn guess_kind(name: &str, bytes: &[u8]) -> ArtifactKind {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".map") || looks_like_sourcemap(bytes) {
        ArtifactKind::SourceMap
    } else if lower.ends_with(".min.js") || lower.ends_with(".bundle") {
        ArtifactKind::MinifiedSource
    } else {
        // Promoted to minified when it carries a map reference or debug ID.
        ArtifactKind::Source
    }
}

fn looks_like_sourcemap(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    let t = text.trim_start().trim_start_matches(")]}'").trim_start();
    t.starts_with('{') && (t.contains("\"mappings\"") || t.contains("\"sections\""))
}

/// Parses a map with the `sourcemap` crate (regular, index and Hermes maps) and returns its
/// debug ID (`debugId` or legacy `debug_id`).
pub fn validate_sourcemap(
    name: &str,
    bytes: &[u8],
) -> Result<Option<debugid::DebugId>, IngestError> {
    let malformed = |message: String| IngestError::SourceMapMalformed {
        name: name.to_owned(),
        message,
    };
    let map = sourcemap::decode_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    let id = map.debug_id();
    let regular = match &map {
        sourcemap::DecodedMap::Regular(sm) => Some(std::borrow::Cow::Borrowed(sm)),
        sourcemap::DecodedMap::Index(index) => {
            Some(std::borrow::Cow::Owned(index.flatten().map_err(|_| {
                malformed("index map sections do not resolve".into())
            })?))
        }
        sourcemap::DecodedMap::Hermes(hermes) => Some(std::borrow::Cow::Borrowed(&**hermes)),
    };
    if let Some(sm) = regular {
        check_indices(&sm).map_err(malformed)?;
    }
    Ok(id)
}

/// Every segment names a source and a name that the map lists (the `sourcemap` crate keeps
/// out-of-range indices, which would make every lookup at those positions fail).
fn check_indices(sm: &sourcemap::SourceMap) -> Result<(), String> {
    const NONE: u32 = !0;
    let (sources, names) = (sm.get_source_count(), sm.get_name_count());
    for (i, token) in sm.tokens().enumerate() {
        let raw = token.get_raw_token();
        if raw.src_id != NONE && raw.src_id >= sources {
            return Err(format!(
                "segment {i} names source {} but the map lists {sources}",
                raw.src_id
            ));
        }
        if raw.name_id != NONE && raw.name_id >= names {
            return Err(format!(
                "segment {i} names name {} but the map lists {names}",
                raw.name_id
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_maps_are_rejected() {
        let err = classify(
            "a.js.map",
            b"{\"version\":3,\"mappings\":\"!!!\"",
            None,
            u64::MAX,
        )
        .unwrap_err();
        assert_eq!(err.code(), crate::error::ErrorCode::SourcemapMalformed);
    }

    #[test]
    fn js_with_map_reference_is_minified() {
        let f = classify(
            "app.js",
            b"x()\n//# sourceMappingURL=app.js.map\n",
            None,
            u64::MAX,
        )
        .unwrap();
        assert_eq!(f.kind, ArtifactKind::MinifiedSource);
        let f = classify("util.js", b"export const x = 1;\n", None, u64::MAX).unwrap();
        assert_eq!(f.kind, ArtifactKind::Source);
    }
}
