//! Classifies JavaScript-side artifacts at upload and reads, once, what lookups need later:
//! the debug ID and the source map reference. Source maps are parsed to reject broken ones.
//!
//! Pure: bytes in, facts out.

use crate::kinds::ArtifactKind;
use crate::types::parse_debug_id;

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
) -> Result<JsFacts, IngestError> {
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
            facts.debug_id = validate_sourcemap(name, bytes)?;
        }
        ArtifactKind::MinifiedSource | ArtifactKind::Source => {
            let comments = scan_magic_comments(bytes);
            facts.debug_id = comments.debug_id;
            if let Some(url) = comments.sourcemap_url {
                if url.starts_with("data:") {
                    facts.sourcemap_ref = Some("data:".into());
                    match decode_data_url(&url) {
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
    if let sourcemap::DecodedMap::Index(index) = &map {
        if index.flatten().is_err() {
            return Err(malformed("index map sections do not resolve".into()));
        }
    }
    Ok(id)
}

#[derive(Debug, Default, PartialEq)]
pub struct MagicComments {
    pub sourcemap_url: Option<String>,
    pub debug_id: Option<debugid::DebugId>,
}

/// Finds the last `//# sourceMappingURL=` (or `//@`) and `//# debugId=` comments. Only whole
/// lines that are such comments count, as browsers read them.
pub fn scan_magic_comments(bytes: &[u8]) -> MagicComments {
    let mut out = MagicComments::default();
    for line in bytes.split(|&b| b == b'\n') {
        let line = trim_ascii(line);
        if line.len() < 4 || !(line.starts_with(b"//#") || line.starts_with(b"//@")) {
            continue;
        }
        let rest = trim_ascii(&line[3..]);
        if let Some(v) = rest.strip_prefix(b"sourceMappingURL=") {
            if let Ok(s) = std::str::from_utf8(trim_ascii(v)) {
                if !s.is_empty() {
                    out.sourcemap_url = Some(s.to_owned());
                }
            }
        } else if let Some(v) = rest.strip_prefix(b"debugId=") {
            if let Ok(s) = std::str::from_utf8(trim_ascii(v)) {
                if let Ok(id) = parse_debug_id(s) {
                    out.debug_id = Some(id);
                }
            }
        }
    }
    out
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// Decodes a `data:` URL: base64 (`;base64,`) or percent-encoded.
pub fn decode_data_url(url: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let Some(rest) = url.strip_prefix("data:") else {
        return Err("not a data: URL".into());
    };
    let Some((meta, data)) = rest.split_once(',') else {
        return Err("data: URL has no ',' separating metadata from data".into());
    };
    if meta.split(';').any(|p| p.eq_ignore_ascii_case("base64")) {
        let cleaned: String = percent_encoding::percent_decode_str(data)
            .decode_utf8_lossy()
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(cleaned.trim_end_matches('='))
            .or_else(|_| {
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(cleaned.trim_end_matches('='))
            })
            .or_else(|_| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(cleaned.trim_end_matches('='))
            })
            .map_err(|e| format!("invalid base64 in data: URL: {e}"))
    } else {
        Ok(percent_encoding::percent_decode_str(data).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_comment_wins_and_only_whole_lines_count() {
        let src = b"var a=1;\n//# sourceMappingURL=old.map\nvar s='//# sourceMappingURL=no.map';\n//# sourceMappingURL=app.js.map\n//# debugId=484570ef-db1c-57a4-b927-ecdac3a2aa7a\n";
        let c = scan_magic_comments(src);
        assert_eq!(c.sourcemap_url.as_deref(), Some("app.js.map"));
        assert!(c.debug_id.is_some());
    }

    #[test]
    fn data_urls() {
        let b64 = "data:application/json;charset=utf-8;base64,eyJ2ZXJzaW9uIjozfQ==";
        assert_eq!(decode_data_url(b64).unwrap(), b"{\"version\":3}");
        let pct = "data:application/json,%7B%22version%22%3A3%7D";
        assert_eq!(decode_data_url(pct).unwrap(), b"{\"version\":3}");
        assert!(decode_data_url("data:application/json;base64,@@@").is_err());
    }

    #[test]
    fn malformed_maps_are_rejected() {
        let err = classify("a.js.map", b"{\"version\":3,\"mappings\":\"!!!\"", None).unwrap_err();
        assert_eq!(err.code(), "sourcemap_malformed");
    }

    #[test]
    fn js_with_map_reference_is_minified() {
        let f = classify("app.js", b"x()\n//# sourceMappingURL=app.js.map\n", None).unwrap();
        assert_eq!(f.kind, ArtifactKind::MinifiedSource);
        let f = classify("util.js", b"export const x = 1;\n", None).unwrap();
        assert_eq!(f.kind, ArtifactKind::Source);
    }
}
