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
