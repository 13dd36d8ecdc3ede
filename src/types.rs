//! Newtypes that validate on construction, so the rest of the code can trust them.
//!
//! Everything here is pure: no I/O, no HTTP. A value of one of these types is always safe to
//! use as part of a storage key.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct InvalidValue {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

fn invalid(what: &'static str, value: &str, reason: &'static str) -> InvalidValue {
    InvalidValue {
        what,
        value: value.chars().take(200).collect(),
        reason,
    }
}

/// A project: the tenant boundary. `[A-Za-z0-9_.-]{1,64}`, not starting with a dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProjectId(String);

impl ProjectId {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if s.is_empty() || s.len() > 64 {
            return Err(invalid("project", s, "must be 1 to 64 characters"));
        }
        if s.starts_with('.') {
            return Err(invalid("project", s, "must not start with a dot"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(invalid(
                "project",
                s,
                "may only contain letters, digits, '_', '-' and '.'",
            ));
        }
        Ok(ProjectId(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A release version string as CI uploads it, e.g. `web@1.4.2+build.7`.
/// 1 to 250 characters, no `/`, no control characters, not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Release(String);

impl Release {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if s.is_empty() || s.len() > 250 {
            return Err(invalid("release", s, "must be 1 to 250 characters"));
        }
        if s == "." || s == ".." || s.trim() != s {
            return Err(invalid(
                "release",
                s,
                "must not be '.', '..' or have surrounding whitespace",
            ));
        }
        if s.contains('/') || s.chars().any(char::is_control) {
            return Err(invalid(
                "release",
                s,
                "must not contain '/' or control characters",
            ));
        }
        Ok(Release(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A distribution of a release (e.g. a platform build). Same rules as a project.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Dist(String);

impl Dist {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if s.is_empty() || s.len() > 64 || s.chars().any(|c| c.is_control() || c == '/') {
            return Err(invalid(
                "dist",
                s,
                "must be 1 to 64 characters without '/' or control characters",
            ));
        }
        Ok(Dist(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_newtype_conversions {
    ($($t:ident),*) => {$(
        impl TryFrom<String> for $t {
            type Error = InvalidValue;
            fn try_from(s: String) -> Result<Self, InvalidValue> {
                $t::parse(&s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
string_newtype_conversions!(ProjectId, Release, Dist, Sha256);

/// Lowercase hex SHA-256 of a blob: the content address of everything stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256(String);

impl Sha256 {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Sha256(s.to_owned()))
        } else {
            Err(invalid("sha256", s, "must be 64 lowercase hex digits"))
        }
    }
    pub fn from_digest(bytes: &[u8]) -> Self {
        Sha256(hex::encode(bytes))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses a debug ID in any of the spellings clients send: UUID with or without dashes,
/// Breakpad's 33-hex form with age, any case.
pub fn parse_debug_id(s: &str) -> Result<debugid::DebugId, InvalidValue> {
    let t = s.trim();
    t.parse::<debugid::DebugId>()
        .or_else(|_| debugid::DebugId::from_breakpad(t))
        .map_err(|_| invalid("debug_id", s, "is not a UUID or Breakpad debug identifier"))
}

/// Parses a code ID (hex: ELF build ID, Mach-O UUID, PE timestamp+size) to its normal form.
pub fn parse_code_id(s: &str) -> Result<debugid::CodeId, InvalidValue> {
    let t = s.trim().trim_start_matches("0x");
    if t.is_empty() || t.len() > 128 || !t.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(invalid("code_id", s, "must be hexadecimal"));
    }
    Ok(debugid::CodeId::new(t.replace('-', "")))
}

/// The URL of an artifact: absolute (`https://cdn.example.com/static/app.js`) or host-less
/// (`~/static/app.js`). Fragment dropped; never empty; at most 2048 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ArtifactUrl(String);

impl ArtifactUrl {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim();
        let s = s.split('#').next().unwrap_or_default();
        if s.is_empty() || s.len() > 2048 || s.chars().any(char::is_control) {
            return Err(invalid(
                "url",
                s,
                "must be 1 to 2048 characters without control characters",
            ));
        }
        if let Some(rest) = s.strip_prefix("~/") {
            if rest.is_empty() {
                return Err(invalid("url", s, "names no file"));
            }
            return Ok(ArtifactUrl(s.to_owned()));
        }
        if s.contains("://") || s.starts_with("app:") {
            return Ok(ArtifactUrl(s.to_owned()));
        }
        // A bare path: treat as host-less.
        Ok(ArtifactUrl(format!("~/{}", s.trim_start_matches('/'))))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ArtifactUrl {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        ArtifactUrl::parse(&s)
    }
}
impl From<ArtifactUrl> for String {
    fn from(v: ArtifactUrl) -> String {
        v.0
    }
}
impl fmt::Display for ArtifactUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects() {
        assert!(ProjectId::parse("web-app_1.x").is_ok());
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(65)] {
            assert!(ProjectId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn releases() {
        assert!(Release::parse("my-app@3.0.1+build.7").is_ok());
        for bad in ["", ".", "..", "a/b", " a", "a\nb"] {
            assert!(Release::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_ids_in_all_spellings() {
        let a = parse_debug_id("484570ef-db1c-57a4-b927-ecdac3a2aa7a").unwrap();
        let b = parse_debug_id("484570EFDB1C57A4B927ECDAC3A2AA7A").unwrap();
        assert_eq!(a, b);
        assert!(parse_debug_id("not-a-uuid").is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            ArtifactUrl::parse("static/app.js").unwrap().as_str(),
            "~/static/app.js"
        );
        assert_eq!(
            ArtifactUrl::parse("https://x.io/a.js#frag")
                .unwrap()
                .as_str(),
            "https://x.io/a.js"
        );
        assert!(ArtifactUrl::parse("~/").is_err());
    }
}
