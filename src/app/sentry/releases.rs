//! Release metadata as sentry-cli manages it (`releases new`, `finalize`, `info`, `list`).
//! Each change is a new object (newest wins), so concurrent writers never damage each other.
//! The projects passed in are already authorised by the caller.

use std::collections::BTreeMap;

use object_store::path::{Path as Key, PathPart};
use serde::{Deserialize, Serialize};

use super::invalid;
use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::store::now_rfc3339;
use crate::types::{ProjectId, Release};

/// What a client may set on a release.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ReleaseFields {
    #[serde(rename = "dateStarted", default)]
    date_started: Option<String>,
    #[serde(rename = "dateReleased", default)]
    date_released: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(rename = "ref", default)]
    reference: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReleaseMeta {
    version: String,
    #[serde(rename = "dateCreated")]
    date_created: String,
    #[serde(flatten)]
    fields: ReleaseFields,
}

impl ReleaseMeta {
    fn new(version: &str) -> Self {
        ReleaseMeta {
            version: version.to_owned(),
            date_created: now_rfc3339(),
            fields: ReleaseFields::default(),
        }
    }

    /// Sets what the change sets; keeps the rest.
    fn apply(&mut self, change: ReleaseBody) {
        let (new, old) = (change.fields, &mut self.fields);
        old.date_started = new.date_started.or(old.date_started.take());
        old.date_released = new.date_released.or(old.date_released.take());
        old.url = new.url.or(old.url.take());
        old.reference = new.reference.or(old.reference.take());
    }
}

/// The body of a release create or update request.
#[derive(Debug, Deserialize)]
pub struct ReleaseBody {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub projects: Vec<String>,
    #[serde(flatten)]
    fields: ReleaseFields,
}

fn release_prefix(project: &ProjectId, version: &str) -> Key {
    Key::from_iter(["sentry", "releases", project.as_str()]).child(PathPart::from(version))
}

async fn load(app: &App, project: &ProjectId, version: &str) -> ApiResult<Option<ReleaseMeta>> {
    let mut metas = app.store.list(&release_prefix(project, version)).await?;
    metas.sort_by(|a, b| a.location.as_ref().cmp(b.location.as_ref()));
    match metas.last() {
        Some(m) => Ok(app.store.get_json(&m.location).await?),
        None => Ok(None),
    }
}

async fn save(app: &App, project: &ProjectId, meta: &ReleaseMeta) -> ApiResult<()> {
    let key = release_prefix(project, &meta.version).child(format!("{}.json", ulid::Ulid::new()));
    app.store.put_json(&key, meta).await?;
    Ok(())
}

/// Records a release for a project if it has none yet (uploads with a version create it).
pub async fn ensure(app: &App, project: &ProjectId, version: &str) {
    if let Ok(None) = load(app, project, version).await {
        if let Err(e) = save(app, project, &ReleaseMeta::new(version)).await {
            tracing::warn!(project = %project, version, error = %e, "cannot record release");
        }
    }
}

fn release_json(meta: &ReleaseMeta, projects: &[ProjectId]) -> serde_json::Value {
    serde_json::json!({
        "id": meta.version,
        "version": meta.version,
        "shortVersion": meta.version,
        "ref": meta.fields.reference,
        "url": meta.fields.url,
        "dateCreated": meta.date_created,
        "dateReleased": meta.fields.date_released,
        "dateStarted": meta.fields.date_started,
        "lastEvent": null,
        "newGroups": 0,
        "status": "open",
        "projects": projects.iter().map(|p| serde_json::json!({"slug": p.as_str(), "name": p.as_str()})).collect::<Vec<_>>(),
    })
}

fn not_found(version: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ReleaseNotFound,
        format!("release {version} not found"),
    )
}

/// Whether a create made the release or found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    Existed,
}

/// Creates (or updates, if it exists) a release in every project.
pub async fn create(
    app: &App,
    projects: &[ProjectId],
    version: &str,
    body: ReleaseBody,
) -> ApiResult<(Created, serde_json::Value)> {
    if Release::parse(version).is_err() {
        return Err(invalid(format!("invalid release version {version:?}")));
    }
    if projects.is_empty() {
        return Err(invalid("projects is required"));
    }
    let mut created = Created::Existed;
    let mut meta = None;
    for p in projects {
        match load(app, p, version).await? {
            Some(m) => meta = meta.or(Some(m)),
            None => created = Created::New,
        }
    }
    let mut meta = meta.unwrap_or_else(|| ReleaseMeta::new(version));
    meta.apply(body);
    for p in projects {
        save(app, p, &meta).await?;
    }
    Ok((created, release_json(&meta, projects)))
}

/// Updates a release (e.g. `finalize` sets `dateReleased`).
pub async fn update(
    app: &App,
    projects: &[ProjectId],
    version: &str,
    body: ReleaseBody,
) -> ApiResult<serde_json::Value> {
    let mut found = None;
    for p in projects {
        if let Ok(Some(m)) = load(app, p, version).await {
            found = Some(m);
            break;
        }
    }
    let Some(mut meta) = found else {
        return Err(not_found(version));
    };
    meta.apply(body);
    for p in projects {
        save(app, p, &meta).await?;
    }
    Ok(release_json(&meta, projects))
}

/// Every project with release metadata (the caller filters what a token may see).
pub async fn projects_with_releases(app: &App) -> ApiResult<Vec<ProjectId>> {
    Ok(app
        .store
        .list_dirs(&Key::from_iter(["sentry", "releases"]))
        .await?
        .iter()
        .filter_map(|p| ProjectId::parse(p).ok())
        .collect())
}

/// A release as seen from these projects.
pub async fn info(
    app: &App,
    projects: Vec<ProjectId>,
    version: &str,
) -> ApiResult<serde_json::Value> {
    let mut found = None;
    let mut with = Vec::new();
    for p in projects {
        if let Ok(Some(m)) = load(app, &p, version).await {
            found = found.or(Some(m));
            with.push(p);
        }
    }
    match found {
        Some(m) => Ok(release_json(&m, &with)),
        None => Err(not_found(version)),
    }
}

/// The releases of these projects, newest first.
pub async fn list(app: &App, projects: Vec<ProjectId>) -> ApiResult<serde_json::Value> {
    let mut out: BTreeMap<String, (ReleaseMeta, Vec<ProjectId>)> = BTreeMap::new();
    for p in projects {
        let prefix = Key::from_iter(["sentry", "releases", p.as_str()]);
        for v in app.store.list_dirs(&prefix).await? {
            if let Ok(Some(m)) = load(app, &p, &v).await {
                out.entry(v)
                    .or_insert_with(|| (m, Vec::new()))
                    .1
                    .push(p.clone());
            }
        }
    }
    let mut list: Vec<(ReleaseMeta, Vec<ProjectId>)> = out.into_values().collect();
    list.sort_by(|a, b| b.0.date_created.cmp(&a.0.date_created));
    Ok(serde_json::Value::Array(
        list.iter().map(|(m, p)| release_json(m, p)).collect(),
    ))
}
