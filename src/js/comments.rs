//! The magic comments of a minified file (`//# sourceMappingURL=`, `//# debugId=`) and
//! `data:` URLs, as browsers and Sentry read them. Pure: shared by upload validation and the
//! CLI.

use crate::types::parse_debug_id;

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
}
