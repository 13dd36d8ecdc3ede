//! Release files and bundles: classify and validate JS-side files, take bundles apart.

use std::collections::BTreeMap;

use super::{commit, Described, Prepared, UploadResponse};
use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::ingest::{self, IngestError, Received, TempFile};
use crate::kinds::ArtifactKind;
use crate::store::{ArtifactEntry, UploadManifest, UploadSource};
use crate::types::{parse_debug_id, ArtifactUrl, Dist, ProjectId, Release};

/// The URL of a file uploaded under `prefix` (default `~`).
pub fn join_url(prefix: &str, name: &str) -> ApiResult<ArtifactUrl> {
    let prefix = prefix.trim_end_matches('/');
    let url = if prefix.is_empty() {
        format!("~/{name}")
    } else {
        format!("{prefix}/{name}")
    };
    Ok(ArtifactUrl::parse(&url)?)
}

/// Refuses a URL prefix that is not `~`, `~/…` or a URL with a scheme (see
/// [`crate::js::url_prefix_problem`]).
pub fn check_url_prefix(prefix: &str) -> ApiResult<()> {
    match crate::js::url_prefix_problem(prefix) {
        None => Ok(()),
        Some(problem) => Err(ApiError::new(ErrorCode::InvalidUrlPrefix, problem)),
    }
}

/// A JS-side file with where it goes and what its uploader said of it.
pub struct JsInput {
    pub received: Received,
    pub url: ArtifactUrl,
    pub kind: Option<ArtifactKind>,
    pub headers: BTreeMap<String, String>,
}

/// Classifies and validates JS-side files (blocking work, off the async threads).
/// At most `cache.build_workers` uploads are validated at once (validation parses every map).
pub async fn prepare_js(
    app: &App,
    inputs: Vec<JsInput>,
) -> ApiResult<(Vec<Prepared>, Vec<String>)> {
    let _permit = app.validators.acquire().await.map_err(ApiError::internal)?;
    let max_map = app.config.limits.max_sourcemap_bytes;
    tokio::task::spawn_blocking(move || prepare_js_blocking(inputs, max_map))
        .await
        .map_err(ApiError::internal)?
}

fn prepare_js_blocking(
    inputs: Vec<JsInput>,
    max_map: u64,
) -> ApiResult<(Vec<Prepared>, Vec<String>)> {
    let mut prepared = Vec::new();
    let mut warnings = Vec::new();
    let urls: std::collections::HashSet<String> =
        inputs.iter().map(|i| i.url.to_string()).collect();
    for input in inputs {
        let bytes = input.received.file.map()?;
        let mut facts = ingest::js::classify(&input.received.name, &bytes, input.kind, max_map)?;
        drop(bytes);
        // Manifest headers win over what the file says.
        if let Some(id) = input
            .headers
            .get("debug-id")
            .or(input.headers.get("debug_id"))
        {
            facts.debug_id = Some(parse_debug_id(id)?);
        }
        if let Some(r) = input
            .headers
            .get("sourcemap")
            .or(input.headers.get("x-sourcemap"))
        {
            facts.sourcemap_ref = Some(r.clone());
        }
        if facts.kind == ArtifactKind::Source && urls.contains(&format!("{}.map", input.url)) {
            facts.kind = ArtifactKind::MinifiedSource;
        }
        if let Some(problem) = &facts.inline_map_problem {
            warnings.push(format!(
                "{}: inline source map unusable: {problem}",
                input.url
            ));
        }
        let mut headers = input.headers;
        if let Some(problem) = facts.inline_map_problem.take() {
            headers.insert("x-tracemap-inline-map-error".into(), problem);
        }
        if let Some(map) = facts.inline_map.take() {
            // Stored as a blob of its own so a lookup never re-decodes the data: URL.
            let mut w = ingest::HashingWriter::new(
                input
                    .received
                    .file
                    .path
                    .parent()
                    .unwrap_or(std::path::Path::new(".")),
                u64::MAX,
                "inline map",
            )?;
            w.push(&map)?;
            let file = w.finish()?;
            headers.insert("x-tracemap-inline-map".into(), file.sha256.to_string());
            prepared.push(Prepared {
                file,
                describe: Described::Blob,
            });
        }
        let entry = ArtifactEntry {
            url: input.url,
            kind: facts.kind,
            sha256: input.received.file.sha256.clone(),
            size: input.received.file.size,
            debug_id: facts.debug_id,
            sourcemap_ref: facts.sourcemap_ref,
            headers,
        };
        prepared.push(Prepared {
            file: input.received.file,
            describe: Described::Artifact(entry),
        });
    }
    Ok((prepared, warnings))
}

/// Where a bundle's files go: query parameters win over the bundle's own manifest.
#[derive(Debug, Default, Clone, Copy)]
pub struct BundleOptions<'a> {
    pub release: Option<&'a str>,
    pub dist: Option<&'a str>,
    /// For plain zips: the URL prefix of their paths (default `~`).
    pub url_prefix: Option<&'a str>,
}

/// Unpacks and validates a bundle zip, filling release and dist into `manifest` (query
/// parameters win over the bundle's own manifest).
pub async fn prepare_bundle(
    app: &App,
    manifest: &mut UploadManifest,
    zip: TempFile,
    options: &BundleOptions<'_>,
) -> ApiResult<(Vec<Prepared>, Vec<String>)> {
    let BundleOptions {
        release,
        dist,
        url_prefix,
    } = *options;
    if let Some(prefix) = url_prefix {
        check_url_prefix(prefix)?;
    }
    let limits = super::debug_files::zip_limits(app);
    let tmp = app.config.tmp_dir();
    let extracted =
        tokio::task::spawn_blocking(move || ingest::zip::extract(&zip.path, &tmp, &limits))
            .await
            .map_err(ApiError::internal)??;
    let bundle_manifest = extracted.manifest;
    let release = release
        .map(str::to_owned)
        .or_else(|| bundle_manifest.as_ref().and_then(|m| m.release.clone()));
    let dist = dist
        .map(str::to_owned)
        .or_else(|| bundle_manifest.as_ref().and_then(|m| m.dist.clone()));
    manifest.release = release
        .filter(|r| !r.is_empty())
        .map(|r| Release::parse(&r))
        .transpose()?;
    manifest.dist = dist
        .filter(|d| !d.is_empty())
        .map(|d| Dist::parse(&d))
        .transpose()?;
    if manifest.dist.is_some() && manifest.release.is_none() {
        return Err(ApiError::new(
            ErrorCode::DistWithoutRelease,
            "a dist was given without a release",
        ));
    }
    let mut inputs = Vec::new();
    match bundle_manifest {
        Some(bm) => {
            let mut by_name: BTreeMap<String, Received> = extracted
                .files
                .into_iter()
                .map(|r| (r.name.clone(), r))
                .collect();
            for (path, file) in bm.files {
                let Some(received) =
                    ingest::safe_relative_path(&path).and_then(|p| by_name.remove(&p))
                else {
                    return Err(IngestError::ManifestInvalid(format!(
                        "manifest lists {path:?} but the zip has no such file"
                    ))
                    .into());
                };
                let url = file.url.as_deref().unwrap_or(&path);
                let kind = match file.kind.as_deref() {
                    None => None,
                    Some(t) => match ArtifactKind::parse(t) {
                        Some(k) => Some(k),
                        // Types we do not symbolicate with (e.g. indexed RAM bundles) are
                        // skipped, not fatal.
                        None => continue,
                    },
                };
                inputs.push(JsInput {
                    received,
                    url: ArtifactUrl::parse(url)?,
                    kind,
                    headers: file
                        .headers
                        .into_iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v))
                        .collect(),
                });
            }
        }
        None => {
            let prefix = url_prefix.unwrap_or("~");
            for received in extracted.files {
                let url = join_url(prefix, &received.name)?;
                inputs.push(JsInput {
                    received,
                    url,
                    kind: None,
                    headers: BTreeMap::new(),
                });
            }
        }
    }
    if inputs.is_empty() {
        return Err(IngestError::Empty.into());
    }
    let (prepared, mut warnings) = prepare_js(app, inputs).await?;
    if manifest.release.is_none() {
        let unreachable = prepared
            .iter()
            .filter(|p| matches!(&p.describe, Described::Artifact(a) if a.debug_id.is_none()))
            .count();
        let total = prepared
            .iter()
            .filter(|p| matches!(p.describe, Described::Artifact(_)))
            .count();
        if unreachable == total {
            return Err(ApiError::new(
                ErrorCode::UnreachableUpload,
                "no release was given and no file has a debug ID, so nothing could ever be found",
            ));
        }
        if unreachable > 0 {
            warnings.push(format!(
                "{unreachable} file(s) have no debug ID and no release: they cannot be found"
            ));
        }
    }
    Ok((prepared, warnings))
}

/// A file part of a multipart upload, with what the parts before it said of it.
pub struct FilePart {
    pub received: Received,
    pub url: Option<String>,
    pub kind: Option<ArtifactKind>,
    pub headers: BTreeMap<String, String>,
}

/// Uploads files of a release (`POST …/releases/{r}/files`): classify, validate, commit.
pub async fn release_files(
    app: &App,
    project: ProjectId,
    release: Release,
    dist: Option<String>,
    url_prefix: &str,
    files: Vec<FilePart>,
) -> ApiResult<UploadResponse> {
    check_url_prefix(url_prefix)?;
    if files.is_empty() {
        return Err(IngestError::Empty.into());
    }
    let dist = dist
        .filter(|d| !d.is_empty())
        .map(|d| Dist::parse(&d))
        .transpose()?;
    let mut inputs = Vec::with_capacity(files.len());
    for f in files {
        let url = match f.url {
            Some(u) => ArtifactUrl::parse(&u)?,
            None => join_url(url_prefix, &f.received.name)?,
        };
        inputs.push(JsInput {
            received: f.received,
            url,
            kind: f.kind,
            headers: f.headers,
        });
    }
    let mut manifest = UploadManifest::new(project, UploadSource::Files);
    manifest.release = Some(release);
    manifest.dist = dist;
    let (prepared, warnings) = prepare_js(app, inputs).await?;
    commit(app, manifest, prepared, warnings).await
}

/// Uploads a bundle zip (`POST …/bundles`).
pub async fn bundle(
    app: &App,
    project: ProjectId,
    zip: TempFile,
    options: &BundleOptions<'_>,
) -> ApiResult<UploadResponse> {
    let mut manifest = UploadManifest::new(project, UploadSource::Bundle);
    let (prepared, warnings) = prepare_bundle(app, &mut manifest, zip, options).await?;
    commit(app, manifest, prepared, warnings).await
}
