//! Source path presentation: turning the `sources[]` strings bundlers write
//! (`webpack://app/./src/cart.ts`, `../../src/cart.js`, `turbopack:///[project]/src/a.ts`)
//! into stable display names, and telling third-party code from the application's own.

/// Normalizes a source path for display. Returns `(abs_path, filename)`:
/// - `abs_path` keeps the path's scheme and namespace but drops the query string and
///   fragment and resolves `.` / `..` segments where possible
///   (`webpack://app/./src/cart.ts?abc` → `webpack://app/src/cart.ts`);
/// - `filename` also drops the `webpack://namespace/`, `webpack:///`, `webpack-internal:///`
///   (with a Next.js `(layer)/`), `turbopack://` (with `[project]/`) prefixes, the scheme and
///   host of URLs, and leading `./` and `../` runs (`../../src/cart.js` → `src/cart.js`,
///   `webpack://app/./src/cart.ts` → `src/cart.ts`, `https://cdn/a/app.js` → `/a/app.js`).
pub fn normalize_source_path(raw: &str) -> (String, String) {
    let path = strip_query(raw);
    let (prefix, rest) = split_scheme(path);
    let mut abs_path = String::with_capacity(path.len());
    abs_path.push_str(prefix);
    clean_segments(rest, Parents::Keep, &mut abs_path);
    if abs_path.is_empty() {
        abs_path.push_str(path);
    }
    let filename = display_name(path);
    (abs_path, filename)
}

/// Whether a source path belongs to third-party code: a `node_modules`, `bower_components`,
/// `jspm_packages` or `vendor` directory, a vendor chunk of webpack's split chunks
/// (`vendors~main.js`, `vendor~app.js`), webpack's `~/` alias for `node_modules` (only inside
/// `webpack://` sources), or code the bundler generated itself (webpack bootstrap and runtime
/// modules, `(webpack)/…`, externals, turbopack's runtime). Accepts raw or normalized paths,
/// `/` or `\` separated.
///
/// A path that merely starts with `~/` is the application's: that is the URL prefix
/// sentry-cli and Tracemap give uploaded files, so a source resolved against a map uploaded
/// at `~/static/app.js.map` reads `~/src/cart.ts`.
pub fn is_third_party(path: &str) -> bool {
    let path = strip_query(path);
    let name = display_name(path);
    const BUNDLER_PREFIXES: [&str; 5] = [
        "webpack/bootstrap",
        "webpack/runtime/",
        "webpack/universalModuleDefinition",
        "external ",
        "ignored|",
    ];
    if BUNDLER_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return true;
    }
    let mut segments = name.split(['/', '\\']).filter(|s| !s.is_empty());
    // Webpack 1-3 wrote `webpack:///~/react/lib/React.js` for `node_modules/react/…`.
    if path.starts_with("webpack:") && segments.clone().next() == Some("~") {
        return true;
    }
    segments.any(|s| {
        matches!(
            s,
            "node_modules"
                | "bower_components"
                | "jspm_packages"
                | "vendor"
                | "(webpack)"
                | "[turbopack]"
        ) || s.starts_with("vendors~")
            || s.starts_with("vendor~")
    })
}

/// Drops a query string and fragment (`a.vue?vue&type=script#x` → `a.vue`).
fn strip_query(path: &str) -> &str {
    match path.find(['?', '#']) {
        Some(i) if i > 0 => &path[..i],
        _ => path,
    }
}

/// Splits `scheme://authority/` (or `scheme:///`) from the rest of the path; paths without a
/// scheme keep a leading `/` in the prefix.
fn split_scheme(path: &str) -> (&str, &str) {
    if let Some(i) = path.find("://") {
        let scheme = &path[..i];
        if !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            let after = i + 3;
            let end = path[after..]
                .find('/')
                .map_or(path.len(), |j| after + j + 1);
            return (&path[..end], &path[end..]);
        }
    }
    match path.strip_prefix('/') {
        Some(rest) => ("/", rest),
        None => ("", path),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Parents {
    /// Keep `..` segments that cannot be resolved (`../src/a.js` stays).
    Keep,
    /// Drop them (`../src/a.js` → `src/a.js`).
    Drop,
}

/// Appends `path` to `out` without empty and `.` segments, resolving `..` against the
/// preceding segment where there is one.
fn clean_segments(path: &str, parents: Parents, out: &mut String) {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => match segments.last() {
                Some(&last) if last != ".." => {
                    segments.pop();
                }
                _ if parents == Parents::Keep => segments.push(".."),
                _ => {}
            },
            s => segments.push(s),
        }
    }
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(segment);
    }
    if path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
}

/// The display name of a path without query: bundler prefixes, scheme and host removed,
/// dot segments and leading parent runs dropped.
fn display_name(path: &str) -> String {
    let mut rest = path;
    let mut leading_slash = false;
    if let Some(r) = rest.strip_prefix("webpack-internal:///") {
        rest = r;
        // Next.js layers: `webpack-internal:///(app-pages-browser)/./src/page.tsx`.
        if rest.starts_with('(') && !rest.starts_with("(webpack)") {
            if let Some(end) = rest.find(")/") {
                rest = &rest[end + 2..];
            }
        }
    } else if let Some(r) = rest.strip_prefix("webpack:///") {
        rest = r;
    } else if let Some(r) = rest.strip_prefix("webpack://") {
        // `webpack://namespace/path`: the namespace is the library or app name.
        rest = r.find('/').map_or(r, |i| &r[i + 1..]);
    } else if let Some(r) = rest
        .strip_prefix("turbopack:///")
        .or_else(|| rest.strip_prefix("turbopack://"))
    {
        rest = r.strip_prefix("[project]/").unwrap_or(r);
    } else {
        let (prefix, r) = split_scheme(rest);
        if prefix.contains("://") {
            // A URL or `file://` path: keep its absolute path.
            rest = r;
            leading_slash = true;
        } else {
            leading_slash = prefix == "/";
            rest = r;
        }
    }
    let mut out = String::with_capacity(rest.len() + 1);
    if leading_slash {
        out.push('/');
    }
    clean_segments(rest, Parents::Drop, &mut out);
    if out.is_empty() || out == "/" {
        return path.to_owned();
    }
    out
}
