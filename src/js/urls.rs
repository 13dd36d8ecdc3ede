//! URL rules shared by the service and the CLI: where a frame's file may have been uploaded,
//! and how a reference (a map URL, a `sources` entry) resolves against the file naming it.
//! Host-less `~/` URLs are paths on an anonymous host, as sentry-cli writes them.

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

/// Why `prefix` cannot be a URL prefix of uploaded files, or `None` when it can: `~`, `~/…`
/// (host-less) or a URL with a scheme (`https://cdn.example.com/js`, `app:///www`). A path is
/// refused, above all an absolute one: `--url-prefix ~/static` unquoted reaches a program
/// as `/home/ci/static` because the shell expands `~`.
pub fn url_prefix_problem(prefix: &str) -> Option<String> {
    if prefix.is_empty() || prefix == "~" || prefix.starts_with("~/") {
        return None;
    }
    // A scheme: a letter, then letters, digits, `+`, `-` or `.`, then `:`. One letter is a
    // Windows drive (`C:/build`), not a scheme.
    if let Some((scheme, _)) = prefix.split_once(':') {
        let mut chars = scheme.chars();
        let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        if starts_with_letter
            && scheme.len() > 1
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return None;
        }
    }
    let hint = if prefix.starts_with('/') {
        "; it looks like a path: if you wrote `~/…` unquoted, the shell expanded `~` to your \
         home directory, so quote it (`--url-prefix '~/static'`)"
    } else {
        ""
    };
    Some(format!(
        "url_prefix {prefix:?} is neither `~`, `~/path` nor a URL with a scheme \
         (`https://cdn.example.com/js`){hint}"
    ))
}

/// Resolves `reference` (a map URL or a `sources` entry) against the URL or path of the
/// file that names it, the way RFC 3986 joins references (dot segments resolved, the base's
/// query and fragment dropped) but **without percent-encoding**: the result keeps the
/// characters both inputs were written with (`src dir/ä.js` stays as it is). Bases may be
/// URLs (`https://cdn/a/app.js`, `app:///dist/main.js`), host-less `~/` URLs (paths on an
/// anonymous host, as sentry-cli writes them) or absolute paths (`/srv/app/dist/main.js`).
/// A reference with a scheme is returned as it is.
pub fn resolve_url(base: &str, reference: &str) -> String {
    if has_scheme(reference) {
        return reference.to_owned();
    }
    let base = base.split(['?', '#']).next().unwrap_or_default();
    let (root, path) = split_root(base);
    if let Some(rest) = reference.strip_prefix("//") {
        // Scheme-relative: only the base's scheme survives.
        return match root.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://{rest}"),
            None => reference.to_owned(),
        };
    }
    let (ref_path, ref_tail) = match reference.find(['?', '#']) {
        Some(i) => reference.split_at(i),
        None => (reference, ""),
    };
    let joined = if ref_path.starts_with('/') {
        ref_path.to_owned()
    } else if ref_path.is_empty() {
        path.to_owned()
    } else {
        let dir = path.rfind('/').map_or("", |i| &path[..=i]);
        format!("{dir}{ref_path}")
    };
    format!("{root}{}{ref_tail}", remove_dot_segments(&joined))
}

/// Whether `s` starts with a URL scheme (`https:`, `webpack:`, `data:`).
fn has_scheme(s: &str) -> bool {
    match s.find(':') {
        Some(i) if i > 1 => {
            let scheme = &s[..i];
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        }
        _ => false,
    }
}

/// Splits a base into what a reference never changes (`https://host`, `app://`, `~`) and
/// its path (`/a/app.js`; `/` when a URL has none).
fn split_root(base: &str) -> (&str, &str) {
    if let Some(rest) = base.strip_prefix('~') {
        if rest.starts_with('/') {
            return ("~", rest);
        }
    }
    if let Some(i) = base.find("://") {
        if has_scheme(base) {
            let after = i + 3;
            return match base[after..].find('/') {
                Some(j) => base.split_at(after + j),
                None => (base, "/"),
            };
        }
    }
    ("", base)
}

/// RFC 3986 `remove_dot_segments`: `.` and `..` resolved, a `..` above the root dropped (for
/// a relative path, kept).
fn remove_dot_segments(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                match out.last() {
                    Some(&s) if s != ".." && !(absolute && out.len() == 1) => {
                        out.pop();
                    }
                    _ if !absolute => out.push(".."),
                    _ => {}
                }
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if absolute && !joined.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::resolve_url;

    #[test]
    fn joins_without_percent_encoding() {
        let cases = [
            (
                "~/static/app.min.js.map",
                "../src dir/ä.js",
                "~/src dir/ä.js",
            ),
            ("~/a/b/app.js", "../../../x.js", "~/x.js"),
            ("~/a/app.js", "app.js.map", "~/a/app.js.map"),
            (
                "https://cdn.example.com/a/app.js?v=1#f",
                "./b.js",
                "https://cdn.example.com/a/b.js",
            ),
            (
                "https://cdn.example.com",
                "b.js",
                "https://cdn.example.com/b.js",
            ),
            (
                "https://cdn.example.com/a/app.js",
                "/b.js",
                "https://cdn.example.com/b.js",
            ),
            (
                "https://cdn.example.com/a/app.js",
                "//other/b.js",
                "https://other/b.js",
            ),
            (
                "/srv/app/dist/main.js",
                "../src/lib dir/prüfen.js",
                "/srv/app/src/lib dir/prüfen.js",
            ),
            (
                "app:///dist/main.js",
                "../src/handler.js",
                "app:///src/handler.js",
            ),
            (
                "~/a/app.js",
                "webpack:///./src/a.js",
                "webpack:///./src/a.js",
            ),
            ("~/a/app.js", "b.js?x#y", "~/a/b.js?x#y"),
            ("dist/app.js", "../../x.js", "../x.js"),
        ];
        for (base, reference, want) in cases {
            assert_eq!(resolve_url(base, reference), want, "{base} + {reference}");
        }
    }
}
