//! `tracemap sourcemaps inject DIR`: writes debug IDs into JavaScript files and their source
//! maps the way sentry-cli 3.x does, so either tool's output works with the other's server:
//! - a one-line runtime snippet that registers the ID in `globalThis._sentryDebugIds`,
//!   inserted as the first line (after a `#!` line) with the map's mappings shifted by one
//!   line, or appended at the end when the file has no map file (so no line moves);
//! - a `//# debugId=<uuid>` comment at the end of the file;
//! - `"debugId": "<uuid>"` in the source map (the ECMA-426 debug ID proposal's field).
//!
//! The ID is derived from the file's content (deterministic), and files that already carry
//! a `//# debugId=` comment are left alone (idempotent).

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::Digest;

/// Derives the debug ID of a JavaScript file from its content: the first 16 bytes of its
/// SHA-256, marked as a version-4 UUID.
pub fn debug_id_for(content: &[u8]) -> debugid::DebugId {
    let hash = sha2::Sha256::digest(content);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
    debugid::DebugId::from_uuid(uuid)
}

fn snippet(id: &str) -> String {
    format!(
        "!function(){{try{{var e=\"undefined\"!=typeof window?window:\"undefined\"!=typeof global?global:\"undefined\"!=typeof globalThis?globalThis:\"undefined\"!=typeof self?self:{{}},n=(new e.Error).stack;n&&(e._sentryDebugIds=e._sentryDebugIds||{{}},e._sentryDebugIds[n]=\"{id}\",e._sentryDebugIdIdentifier=\"sentry-dbid-{id}\")}}catch(e){{}}}}();"
    )
}

/// Whether `inject` writes files or only reports what it would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Write,
    DryRun,
}

#[derive(Debug, PartialEq)]
pub enum Outcome {
    Injected { id: String, map: Option<PathBuf> },
    AlreadyInjected,
}

/// Injects one file (and its map, when found next to it or by `sourceMappingURL`, inside
/// `root`: a map reference that leads outside the build directory is not followed).
///
/// Crash safety: the map is written first, then the file. The ID is derived from the file's
/// content, so a run interrupted between the two writes finds, on the next run, a map that
/// already carries this ID: it is not shifted a second time.
pub fn inject_file(js_path: &Path, root: &Path, mode: Mode) -> anyhow::Result<Outcome> {
    let content =
        std::fs::read(js_path).with_context(|| format!("reading {}", js_path.display()))?;
    let comments = crate::js::scan_magic_comments(&content);
    if comments.debug_id.is_some() {
        return Ok(Outcome::AlreadyInjected);
    }
    let id = debug_id_for(&content).to_string();
    let text = String::from_utf8_lossy(&content);
    // Where the snippet goes: line 0, or line 1 after a hashbang.
    let insert_line = usize::from(text.starts_with("#!"));
    let map_path = match &comments.sourcemap_url {
        Some(u) if u.starts_with("data:") => None,
        Some(u) => js_path
            .parent()
            .map(|d| d.join(u.split(['?', '#']).next().unwrap_or(u))),
        None => Some(PathBuf::from(format!("{}.map", js_path.display()))),
    }
    .filter(|p| p.is_file())
    .filter(|p| inside(p, root));
    // Without a map file the snippet goes at the end (as sentry-cli does), so no line that
    // an inline map describes moves.
    let with_snippet = map_path.is_some();
    let mut out = String::with_capacity(text.len() + 600);
    if with_snippet {
        let mut lines = text.split_inclusive('\n');
        for _ in 0..insert_line {
            if let Some(l) = lines.next() {
                out.push_str(l);
            }
        }
        out.push_str(&snippet(&id));
        out.push('\n');
        for l in lines {
            out.push_str(l);
        }
    } else {
        out.push_str(&text);
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    if !with_snippet {
        out.push_str(&snippet(&id));
        out.push('\n');
    }
    out.push_str(&format!("//# debugId={id}\n"));

    if let Some(map_path) = &map_path {
        let raw =
            std::fs::read(map_path).with_context(|| format!("reading {}", map_path.display()))?;
        let mut map: serde_json::Value = serde_json::from_slice(&raw)
            .with_context(|| format!("{} is not JSON", map_path.display()))?;
        // Already done by a run that stopped before it rewrote the file.
        let done = map.get("debugId").and_then(|v| v.as_str()) == Some(id.as_str());
        if !done {
            shift_map(&mut map, insert_line);
            if let Some(obj) = map.as_object_mut() {
                obj.insert("debugId".into(), serde_json::Value::String(id.clone()));
            }
            if mode == Mode::Write {
                write_atomic(map_path, serde_json::to_string(&map)?.as_bytes())?;
            }
        }
    }
    if mode == Mode::Write {
        write_atomic(js_path, out.as_bytes())?;
    }
    Ok(Outcome::Injected { id, map: map_path })
}

/// Inserts one empty generated line at `line` in a regular map's mappings, or moves index
/// map sections at or after it down by one.
fn shift_map(map: &mut serde_json::Value, line: usize) {
    if let Some(mappings) = map.get("mappings").and_then(|m| m.as_str()) {
        let mut groups: Vec<&str> = mappings.split(';').collect();
        groups.insert(line.min(groups.len()), "");
        map["mappings"] = serde_json::Value::String(groups.join(";"));
    }
    if let Some(sections) = map.get_mut("sections").and_then(|s| s.as_array_mut()) {
        for s in sections {
            if let Some(l) = s.pointer_mut("/offset/line") {
                if let Some(n) = l.as_u64() {
                    if n as usize >= line {
                        *l = serde_json::Value::from(n + 1);
                    }
                }
            }
        }
    }
}

/// Whether `path` lies inside `root` (both resolved, so `..` and links cannot lead out).
fn inside(path: &Path, root: &Path) -> bool {
    match (path.canonicalize(), root.canonicalize()) {
        (Ok(p), Ok(r)) => p.starts_with(r),
        _ => false,
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.tracemap-tmp", ulid::Ulid::new()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

pub fn run(dir: &Path, mode: Mode) -> anyhow::Result<()> {
    let mut injected = 0;
    let mut skipped = 0;
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy();
        if !entry.file_type().is_file()
            || ![".js", ".mjs", ".cjs"].iter().any(|e| name.ends_with(e))
        {
            continue;
        }
        match inject_file(entry.path(), dir, mode)? {
            Outcome::Injected { id, map } => {
                injected += 1;
                println!(
                    "{} {id}{}",
                    entry.path().display(),
                    map.map(|m| format!(" (+ {})", m.display()))
                        .unwrap_or_default()
                );
            }
            Outcome::AlreadyInjected => skipped += 1,
        }
    }
    println!(
        "{injected} file(s) {}, {skipped} already had a debug ID",
        if mode == Mode::DryRun {
            "would be injected"
        } else {
            "injected"
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inject_is_deterministic_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let js = dir.path().join("app.js");
        let map = dir.path().join("app.js.map");
        std::fs::write(
            &js,
            "function a(){throw new Error}a();\n//# sourceMappingURL=app.js.map\n",
        )
        .unwrap();
        std::fs::write(
            &map,
            r#"{"version":3,"sources":["a.js"],"names":[],"mappings":"AAAA"}"#,
        )
        .unwrap();
        let first = inject_file(&js, dir.path(), Mode::Write).unwrap();
        let Outcome::Injected { id, .. } = first else {
            panic!("not injected")
        };
        assert_eq!(
            inject_file(&js, dir.path(), Mode::Write).unwrap(),
            Outcome::AlreadyInjected
        );
        let text = std::fs::read_to_string(&js).unwrap();
        assert!(text.ends_with(&format!("//# debugId={id}\n")));
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&map).unwrap()).unwrap();
        assert_eq!(m["debugId"], id.as_str());
        assert_eq!(m["mappings"], ";AAAA");
        // Same content, same ID.
        assert_eq!(
            debug_id_for(b"function a(){throw new Error}a();\n//# sourceMappingURL=app.js.map\n")
                .to_string(),
            id
        );
    }

    #[test]
    fn a_run_interrupted_after_the_map_was_written_does_not_shift_it_twice() {
        let dir = tempfile::tempdir().unwrap();
        let js = dir.path().join("app.js");
        let map = dir.path().join("app.js.map");
        let source = "a();\n//# sourceMappingURL=app.js.map\n";
        std::fs::write(&js, source).unwrap();
        std::fs::write(
            &map,
            r#"{"version":3,"sources":["a.js"],"names":[],"mappings":"AAAA"}"#,
        )
        .unwrap();
        inject_file(&js, dir.path(), Mode::Write).unwrap();
        // The crash: the map was rewritten, the file was not.
        std::fs::write(&js, source).unwrap();
        inject_file(&js, dir.path(), Mode::Write).unwrap();
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&map).unwrap()).unwrap();
        assert_eq!(m["mappings"], ";AAAA", "shifted twice");
    }

    #[test]
    fn a_map_reference_leading_out_of_the_build_directory_is_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        let build = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim.map");
        let original = r#"{"version":3,"sources":["a.js"],"names":[],"mappings":"AAAA"}"#;
        std::fs::write(&victim, original).unwrap();
        let js = build.path().join("app.js");
        std::fs::write(
            &js,
            format!("a();\n//# sourceMappingURL={}\n", victim.display()),
        )
        .unwrap();
        let Outcome::Injected { map, .. } = inject_file(&js, build.path(), Mode::Write).unwrap()
        else {
            panic!("not injected")
        };
        assert_eq!(map, None);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), original);
    }
}
