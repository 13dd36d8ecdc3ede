//! `tracemap upload sourcemaps|debug-files`.
//!
//! The upload client pairs files before sending anything, skips what the server already
//! has (same URL, same SHA-256), sends in batches with a progress bar, retries transient
//! failures (connection errors, 429, 5xx) with backoff, and prints a summary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use sha2::Digest;

use super::ServerArgs;

#[derive(Debug, Args)]
pub struct SourcemapsArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Project to upload to.
    #[arg(long, short = 'p', env = "TRACEMAP_PROJECT")]
    pub project: String,
    /// Release version, e.g. web@1.4.2.
    #[arg(long, short = 'r', env = "TRACEMAP_RELEASE")]
    pub release: String,
    /// Distribution within the release.
    #[arg(long, short = 'd')]
    pub dist: Option<String>,
    /// URL prefix under which DIR is served, e.g. `~/static` or `https://cdn.example.com/js`.
    #[arg(long, default_value = "~")]
    pub url_prefix: String,
    /// Upload even files the server already has.
    #[arg(long)]
    pub force: bool,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Build directory.
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct DebugFilesArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Project to upload to.
    #[arg(long, short = 'p', env = "TRACEMAP_PROJECT")]
    pub project: String,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Files, directories (searched recursively) and zips.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// One local file to upload.
#[derive(Debug, Clone)]
struct LocalFile {
    path: PathBuf,
    url: String,
    kind: &'static str,
    sha256: String,
    size: u64,
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .user_agent(concat!("tracemap/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .build()?)
}

fn authed(rb: reqwest::RequestBuilder, server: &ServerArgs) -> reqwest::RequestBuilder {
    match &server.token {
        Some(t) => rb.bearer_auth(t),
        None => rb,
    }
}

fn api(server: &ServerArgs, path: &str) -> String {
    format!("{}/api/v1/{path}", server.server.trim_end_matches('/'))
}

/// Characters a path segment keeps as they are: RFC 3986 unreserved, plus `@` (common in
/// release names). Everything else is percent-encoded.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

pub(crate) fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

pub(super) fn sha256_file(path: &Path) -> anyhow::Result<(String, u64)> {
    let mut f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut h = sha2::Sha256::new();
    let n = std::io::copy(&mut f, &mut h)?;
    Ok((hex::encode(h.finalize()), n))
}

/// Walks `dir` and pairs each JavaScript file with its map (by `sourceMappingURL`, else the
/// sibling `.map`). Returns the files and human-readable warnings.
fn collect_sourcemaps(
    dir: &Path,
    url_prefix: &str,
) -> anyhow::Result<(Vec<LocalFile>, Vec<String>)> {
    let mut files = Vec::new();
    let mut rel_paths: HashMap<String, usize> = HashMap::new();
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
    {
        let entry = entry?;
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let kind = if name.ends_with(".map") {
            "source_map"
        } else if [".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".bundle"]
            .iter()
            .any(|e| name.ends_with(e))
        {
            "source"
        } else {
            continue;
        };
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let (sha256, size) = sha256_file(path)?;
        rel_paths.insert(rel.clone(), files.len());
        files.push(LocalFile {
            path: path.to_owned(),
            url: format!("{}/{}", url_prefix.trim_end_matches('/'), rel),
            kind,
            sha256,
            size,
        });
    }
    let mut warnings = Vec::new();
    let mut paired_maps = std::collections::HashSet::new();
    for file in files.iter_mut() {
        if file.kind != "source" {
            continue;
        }
        let text = std::fs::read(&file.path)?;
        let comments = crate::js::scan_magic_comments(&text);
        let rel = file
            .url
            .strip_prefix(url_prefix.trim_end_matches('/'))
            .unwrap_or(&file.url)
            .trim_start_matches('/')
            .to_owned();
        let target = match &comments.sourcemap_url {
            Some(u) if u.starts_with("data:") => {
                file.kind = "minified_source";
                continue;
            }
            Some(u) => {
                let base = format!("~/{rel}");
                crate::js::resolve_url(&base, u)
                    .strip_prefix("~/")
                    .map(str::to_owned)
            }
            None => Some(format!("{rel}.map")),
        };
        match target.and_then(|t| rel_paths.get(&t).copied()) {
            Some(m) => {
                file.kind = "minified_source";
                paired_maps.insert(m);
            }
            None if comments.sourcemap_url.is_some() => warnings.push(format!(
                "{rel}: its sourceMappingURL {:?} names no file in the directory",
                comments.sourcemap_url.unwrap_or_default()
            )),
            // Bundler output without a map is uploaded as a plain source: say so, as for a
            // map without its file. (Originals such as `.ts` are expected to have none.)
            None if [".js", ".mjs", ".cjs"].iter().any(|e| rel.ends_with(e)) => {
                warnings.push(format!(
                    "{rel}: no source map (no sourceMappingURL and no {rel}.map); uploaded as a \
                     plain source, so its frames will not be mapped"
                ))
            }
            None => {}
        }
    }
    for (i, f) in files.iter().enumerate() {
        if f.kind == "source_map" && !paired_maps.contains(&i) {
            warnings.push(format!(
                "{}: no .js file in the directory references this map",
                f.url
            ));
        }
    }
    Ok((files, warnings))
}

/// Sends a request built by `make`, retrying connection errors, 429 and 5xx up to 4 times
/// with exponential backoff.
async fn send_with_retry<F>(make: F, what: &str) -> anyhow::Result<reqwest::Response>
where
    F: Fn() -> anyhow::Result<reqwest::RequestBuilder>,
{
    let mut delay = Duration::from_millis(500);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = make()?.send().await;
        let retryable = match &result {
            Ok(r) => r.status().is_server_error() || r.status().as_u16() == 429,
            Err(e) => e.is_connect() || e.is_timeout() || e.is_request(),
        };
        if !retryable || attempt >= 5 {
            let response = result.with_context(|| format!("{what}: request failed"))?;
            return Ok(response);
        }
        tracing::warn!(attempt, what, "transient failure, retrying in {delay:?}");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(8));
    }
}

/// 401 and 403: the token will not do, for this file or any other.
fn is_auth_error(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN
}

async fn error_text(response: reqwest::Response) -> String {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            Some(format!(
                "{} ({})",
                e.get("message")?.as_str()?,
                e.get("code")?.as_str()?
            ))
        })
        .unwrap_or(body);
    format!("HTTP {status}: {message}")
}

/// Whether the CLI draws a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Progress,
    Quiet,
}

impl Output {
    fn from_quiet(quiet: bool) -> Self {
        if quiet {
            Output::Quiet
        } else {
            Output::Progress
        }
    }
}

fn progress(output: Output, total: u64) -> indicatif::ProgressBar {
    if output == Output::Quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(total);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    pb
}

pub async fn sourcemaps(args: SourcemapsArgs) -> anyhow::Result<()> {
    if !args.dir.is_dir() {
        bail!("{} is not a directory", args.dir.display());
    }
    if let Some(problem) = crate::js::url_prefix_problem(&args.url_prefix) {
        bail!("--url-prefix: {problem}");
    }
    let (files, warnings) = collect_sourcemaps(&args.dir, &args.url_prefix)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if files.is_empty() {
        bail!("no .js or .map files found in {}", args.dir.display());
    }
    let client = client()?;
    let base = api(
        &args.server,
        &format!(
            "projects/{}/releases/{}/files",
            seg(&args.project),
            seg(&args.release)
        ),
    );
    // What the server already has: (url, dist) → sha256.
    let mut existing: HashMap<String, String> = HashMap::new();
    if !args.force {
        let response = send_with_retry(
            || Ok(authed(client.get(&base), &args.server)),
            "listing the release",
        )
        .await?;
        if response.status().is_success() {
            let v: serde_json::Value = response.json().await?;
            for f in v["files"].as_array().into_iter().flatten() {
                if f["dist"].as_str() == args.dist.as_deref() {
                    if let (Some(u), Some(s)) = (f["url"].as_str(), f["sha256"].as_str()) {
                        existing.insert(u.to_owned(), s.to_owned());
                    }
                }
            }
        } else if response.status() != reqwest::StatusCode::NOT_FOUND {
            bail!("listing the release: {}", error_text(response).await);
        }
    }
    let (skip, send): (Vec<LocalFile>, Vec<LocalFile>) = files
        .into_iter()
        .partition(|f| existing.get(&f.url) == Some(&f.sha256));

    let total: u64 = send.iter().map(|f| f.size).sum();
    let pb = progress(Output::from_quiet(args.quiet), total);
    // Batches of at most 32 MiB or 100 files.
    let mut batches: Vec<Vec<LocalFile>> = Vec::new();
    let mut size = 0;
    for f in send.iter().cloned() {
        if batches
            .last()
            .is_none_or(|b| b.len() >= 100 || size + f.size > 32 << 20)
        {
            batches.push(Vec::new());
            size = 0;
        }
        size += f.size;
        if let Some(b) = batches.last_mut() {
            b.push(f);
        }
    }
    let mut uploaded = 0;
    for batch in &batches {
        let mut contents = Vec::new();
        for f in batch {
            contents.push(
                std::fs::read(&f.path).with_context(|| format!("reading {}", f.path.display()))?,
            );
        }
        let response = send_with_retry(
            || {
                let mut form = reqwest::multipart::Form::new();
                if let Some(d) = &args.dist {
                    form = form.text("dist", d.clone());
                }
                for (f, bytes) in batch.iter().zip(&contents) {
                    let name = f.url.rsplit('/').next().unwrap_or("file").to_owned();
                    form = form.text("url", f.url.clone()).text("type", f.kind).part(
                        "file",
                        reqwest::multipart::Part::bytes(bytes.clone()).file_name(name),
                    );
                }
                Ok(authed(client.post(&base), &args.server).multipart(form))
            },
            "uploading",
        )
        .await?;
        if !response.status().is_success() {
            pb.abandon();
            bail!("upload rejected: {}", error_text(response).await);
        }
        let v: serde_json::Value = response.json().await?;
        for w in v["warnings"].as_array().into_iter().flatten() {
            eprintln!("warning: {}", w.as_str().unwrap_or_default());
        }
        uploaded += batch.len();
        pb.inc(batch.iter().map(|f| f.size).sum());
    }
    pb.finish_and_clear();
    let pairs = send
        .iter()
        .chain(&skip)
        .filter(|f| f.kind == "minified_source")
        .count();
    println!(
        "release {}{}: {uploaded} file(s) uploaded, {} already on the server; {pairs} minified file(s) paired with a source map; {} warning(s)",
        args.release,
        args.dist.as_deref().map(|d| format!(" (dist {d})")).unwrap_or_default(),
        skip.len(),
        warnings.len()
    );
    Ok(())
}

/// Finds debug files below the given paths: files whose header is a known debug format,
/// `.dwo`/`.dwp` split DWARF, and zips (sent whole; the server unpacks them).
pub(super) fn collect_debug_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if !p.exists() {
            bail!("{} does not exist", p.display());
        }
        for entry in walkdir::WalkDir::new(p)
            .follow_links(true)
            .sort_by_file_name()
        {
            let entry = entry?;
            if !entry.file_type().is_file() {
                continue;
            }
            let mut head = [0u8; 16];
            let n = {
                use std::io::Read;
                let mut f = std::fs::File::open(entry.path())?;
                f.read(&mut head)?
            };
            let head = &head[..n];
            let is_zip = crate::kinds::looks_like_zip(head);
            let data_ok = is_zip || {
                let bytes = std::fs::read(entry.path())?;
                crate::native::is_debug_file(&bytes)
            };
            if data_ok {
                out.push(entry.path().to_owned());
            }
        }
    }
    Ok(out)
}

pub async fn debug_files(args: DebugFilesArgs) -> anyhow::Result<()> {
    let files = collect_debug_files(&args.paths)?;
    if files.is_empty() {
        bail!("no debug files found");
    }
    let client = client()?;
    let url = api(
        &args.server,
        &format!("projects/{}/debug-files", seg(&args.project)),
    );
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    // One authorised request first: a token that may not upload fails here, once, with the
    // server's message, before any file is sent (a server refusing a streamed body early can
    // look like a broken connection, which would otherwise be retried).
    let probe = send_with_retry(
        || {
            Ok(authed(client.get(&url), &args.server)
                .query(&[("debug_id", "00000000-0000-0000-0000-000000000000")]))
        },
        "checking the token",
    )
    .await?;
    if is_auth_error(probe.status()) {
        bail!("{}", error_text(probe).await);
    }
    let pb = progress(Output::from_quiet(args.quiet), total);
    let mut failures = 0;
    let mut skipped = 0;
    let mut stored = 0;
    for path in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("upload")
            .to_owned();
        let (sha, size) = sha256_file(path)?;
        // Skip a file the server has: same debug ID listed with the same SHA-256.
        if let Ok(bytes) = std::fs::read(path) {
            if let Ok(objects) = crate::native::describe(&bytes) {
                if let Some(id) = objects.first().and_then(|o| o.debug_id) {
                    let list = authed(client.get(&url), &args.server)
                        .query(&[("debug_id", id.to_string())])
                        .send()
                        .await;
                    if let Ok(r) = list {
                        if let Ok(v) = r.json::<serde_json::Value>().await {
                            let known = v["debug_files"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .any(|f| f["sha256"].as_str() == Some(sha.as_str()));
                            if known {
                                skipped += 1;
                                pb.inc(size);
                                println!("SKIP {name}: already on the server");
                                continue;
                            }
                        }
                    }
                }
            }
        }
        let response = send_with_retry(
            || {
                // Streamed from disk: a large debug file is never held in memory.
                let file = tokio::fs::File::from_std(std::fs::File::open(path)?);
                let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
                Ok(authed(client.post(&url), &args.server)
                    .query(&[("name", name.as_str())])
                    .header(reqwest::header::CONTENT_LENGTH, size)
                    .body(body))
            },
            "uploading",
        )
        .await?;
        pb.inc(size);
        if is_auth_error(response.status()) {
            // Every other file would be refused the same way.
            pb.abandon();
            bail!("{name}: {}", error_text(response).await);
        }
        if !response.status().is_success() {
            failures += 1;
            pb.suspend(|| ());
            eprintln!("ERROR {name}: {}", error_text(response).await);
            continue;
        }
        let v: serde_json::Value = response.json().await?;
        for w in v["warnings"].as_array().into_iter().flatten() {
            eprintln!("warning: {name}: {}", w.as_str().unwrap_or_default());
        }
        // A zip holds several debug files and a fat file several objects: count files.
        let debug_files: std::collections::HashSet<(String, String)> = v["debug_files"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| (d["name"].to_string(), d["sha256"].to_string()))
            .collect();
        stored += debug_files.len();
        for d in v["debug_files"].as_array().into_iter().flatten() {
            println!(
                "OK {} {} ({} {}; {} {}) [{}]",
                d["debug_id"].as_str().unwrap_or("-"),
                d["name"].as_str().unwrap_or_default(),
                d["kind"].as_str().unwrap_or_default(),
                d["object_kind"].as_str().unwrap_or_default(),
                d["arch"].as_str().unwrap_or_default(),
                d["code_id"].as_str().unwrap_or("-"),
                d["features"]
                    .as_array()
                    .map(|f| f
                        .iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default(),
            );
        }
    }
    pb.finish_and_clear();
    println!(
        "{} file(s): {stored} debug file(s) uploaded, {skipped} already on the server, {failures} failed",
        files.len(),
    );
    if failures > 0 {
        bail!("{failures} debug file(s) were rejected");
    }
    Ok(())
}
