//! The assemble state machine shared by artifact bundles and debug files.
//!
//! An assemble call lists a file's chunks by SHA-1. While chunks are missing the answer is
//! `not_found` with the complete list of missing chunks; the first call that finds every chunk
//! records `created`, starts the assembly in the background and answers `created`; later calls
//! answer the recorded state (`assembling`, `ok` or `error`). States are stored, so a restart
//! keeps them; a state left `created`/`assembling` by a crash is restarted by the next call.

use std::collections::HashSet;

use object_store::path::Path as Key;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha1::Digest;

use super::{invalid, is_sha1};
use crate::app::uploads::{self, js};
use crate::app::App;
use crate::auth::Caller;
use crate::config::Scope;
use crate::error::{ApiError, ApiResult};
use crate::ingest;
use crate::store::{now_rfc3339, Store, UploadId, UploadManifest, UploadSource};
use crate::types::ProjectId;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum AssembleState {
    NotFound,
    Created,
    Assembling,
    Ok,
    Error,
}

/// What is assembled: the two kinds keep their states apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AssembleKind {
    Bundle,
    DebugFile,
}

impl AssembleKind {
    fn as_str(self) -> &'static str {
        match self {
            AssembleKind::Bundle => "bundle",
            AssembleKind::DebugFile => "dif",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredState {
    state: AssembleState,
    #[serde(default)]
    detail: Option<String>,
    /// For debug files: the `dif` object sentry-cli prints.
    #[serde(default)]
    dif: Option<serde_json::Value>,
    /// For `ok`: store keys of pointers that make the committed uploads findable. When one
    /// is gone (the release or file was deleted, or swept), the state no longer holds and
    /// the file is assembled again.
    #[serde(default)]
    committed: Vec<String>,
    /// Written when the state is set and, while assembling, every [`HEARTBEAT`]: a
    /// `created`/`assembling` state not refreshed for `limits.assemble_stalled_after` was left by a
    /// process that died, on whichever replica.
    updated_at: String,
}

/// How often a running assembly refreshes its state.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(15);

/// What an assembly committed.
pub(super) struct Committed {
    pub(super) dif: Option<serde_json::Value>,
    pub(super) pointers: Vec<String>,
}

/// Why an assembly failed, and whether trying again may succeed.
pub(super) struct JobError {
    pub(super) detail: String,
    /// The store or local disk failed: the state is not kept, the next call tries again.
    pub(super) transient: bool,
}

impl JobError {
    pub(super) fn transient(e: impl std::fmt::Display) -> Self {
        JobError {
            detail: e.to_string(),
            transient: true,
        }
    }
}

impl From<ApiError> for JobError {
    fn from(e: ApiError) -> Self {
        let transient = e.status().is_server_error();
        JobError {
            detail: e.to_string(),
            transient,
        }
    }
}

impl From<&str> for JobError {
    fn from(e: &str) -> Self {
        JobError {
            detail: e.to_owned(),
            transient: false,
        }
    }
}

impl From<String> for JobError {
    fn from(detail: String) -> Self {
        JobError {
            detail,
            transient: false,
        }
    }
}

impl StoredState {
    fn new(state: AssembleState) -> Self {
        StoredState {
            state,
            detail: None,
            dif: None,
            committed: Vec::new(),
            updated_at: now_rfc3339(),
        }
    }
}

/// Whose assembly a state records: assembling the same bytes for another project is another
/// assembly, so no project ever sees (or is answered with) another's state.
pub(super) enum Owner<'a> {
    /// The projects the request named (already authorised).
    Projects(&'a [ProjectId]),
    /// A bundle that names its project in its own manifest: until it is opened, the state
    /// belongs to the token that asked.
    Token(&'a Caller),
}

impl Owner<'_> {
    fn key_part(&self) -> String {
        match self {
            Owner::Projects(projects) => {
                let mut names: Vec<&str> = projects.iter().map(ProjectId::as_str).collect();
                names.sort_unstable();
                names.dedup();
                format!("p.{}", names.join("+"))
            }
            Owner::Token(caller) => {
                let digest = sha2::Sha256::digest(caller.name().as_bytes());
                format!("t.{}", &hex::encode(digest)[..16])
            }
        }
    }
}

fn state_key(kind: AssembleKind, owner: &Owner<'_>, checksum: &str) -> Key {
    Key::from_iter([
        "sentry",
        "assemble",
        kind.as_str(),
        &owner.key_part(),
        checksum,
    ])
    .child(format!("{checksum}.json"))
}

/// Assemblies running in this process, by state key.
fn running() -> &'static Mutex<HashSet<String>> {
    static RUNNING: std::sync::OnceLock<Mutex<HashSet<String>>> = std::sync::OnceLock::new();
    RUNNING.get_or_init(|| Mutex::new(HashSet::new()))
}

async fn missing_chunks(store: &Store, chunks: &[String]) -> ApiResult<Vec<String>> {
    let mut missing = Vec::new();
    let mut seen = HashSet::new();
    for c in chunks {
        if seen.insert(c.clone()) && !store.has_chunk(c).await? {
            missing.push(c.clone());
        }
    }
    Ok(missing)
}

fn state_json(s: &StoredState, missing: Vec<String>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "state": s.state,
        "missingChunks": missing,
        "detail": s.detail,
    });
    if let Some(dif) = &s.dif {
        v["dif"] = dif.clone();
    }
    v
}

pub(super) fn check_checksums(checksum: &str, chunks: &[String]) -> ApiResult<()> {
    if !is_sha1(checksum) || !chunks.iter().all(|c| is_sha1(c)) {
        return Err(invalid(
            "checksum and chunks must be 40 lowercase hex digits",
        ));
    }
    Ok(())
}

/// One step of the state machine: `not_found` with the complete list of missing chunks,
/// else the stored state, else start assembling and answer `created`.
pub(super) async fn step<F, Fut>(
    app: &App,
    kind: AssembleKind,
    owner: Owner<'_>,
    checksum: &str,
    chunks: &[String],
    job: F,
) -> ApiResult<serde_json::Value>
where
    F: FnOnce(tempfile::TempPath) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Committed, JobError>> + Send,
{
    let missing = missing_chunks(&app.store, chunks).await?;
    let key = state_key(kind, &owner, checksum);
    let stored: Option<StoredState> = app.store.get_json(&key).await?;
    if let Some(s) = &stored {
        if still_holds(app, s, &key).await? {
            return Ok(state_json(s, Vec::new()));
        }
    }
    if !missing.is_empty() {
        return Ok(state_json(
            &StoredState::new(AssembleState::NotFound),
            missing,
        ));
    }
    if chunks.is_empty() {
        let s = StoredState {
            detail: Some("no chunks listed".into()),
            ..StoredState::new(AssembleState::NotFound)
        };
        return Ok(state_json(&s, Vec::new()));
    }
    let created = StoredState::new(AssembleState::Created);
    if !running().lock().insert(key.to_string()) {
        return Ok(state_json(&created, Vec::new()));
    }
    app.store.put_json(&key, &created).await?;
    let app2 = app.clone();
    let chunks = chunks.to_vec();
    let checksum = checksum.to_owned();
    tokio::spawn(async move {
        // The heartbeat stops (and finishes any write in flight) before the final state is
        // written, so a late beat can never overwrite it.
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let heartbeat = {
            let (app, key) = (app2.clone(), key.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stopped.changed() => break,
                        () = tokio::time::sleep(HEARTBEAT) => {}
                    }
                    let beat = StoredState::new(AssembleState::Assembling);
                    if let Err(e) = app.store.put_json(&key, &beat).await {
                        tracing::warn!(error = %e, "cannot refresh assemble state");
                    }
                }
            })
        };
        let result = run(&app2, &key, &checksum, &chunks, job).await;
        let _ = stop.send(true);
        let _ = heartbeat.await;
        let final_state = match result {
            Ok(committed) => StoredState {
                dif: committed.dif,
                committed: committed.pointers,
                ..StoredState::new(AssembleState::Ok)
            },
            Err(e) if e.transient => {
                // Not a property of the file: the next call tries again.
                tracing::warn!(checksum, detail = %e.detail, "sentry-cli assemble failed; will retry");
                StoredState {
                    detail: Some(format!("{}; the next request tries again", e.detail)),
                    ..StoredState::new(AssembleState::NotFound)
                }
            }
            Err(e) => {
                tracing::warn!(checksum, detail = %e.detail, "sentry-cli assemble failed");
                StoredState {
                    detail: Some(e.detail),
                    ..StoredState::new(AssembleState::Error)
                }
            }
        };
        if let Err(e) = app2.store.put_json(&key, &final_state).await {
            tracing::error!(error = %e, "cannot record assemble state");
        }
        running().lock().remove(key.as_ref());
    });
    Ok(state_json(&created, Vec::new()))
}

/// Whether a stored state answers the call: `created`/`assembling` while it is refreshed
/// (or running here), `ok` while what it committed is still findable, `error` always.
async fn still_holds(app: &App, s: &StoredState, key: &Key) -> ApiResult<bool> {
    Ok(match s.state {
        AssembleState::NotFound => false,
        AssembleState::Error => true,
        AssembleState::Created | AssembleState::Assembling => {
            running().lock().contains(key.as_ref())
                || !stale(&s.updated_at, app.config.limits.assemble_stalled_after)
        }
        AssembleState::Ok => {
            for pointer in &s.committed {
                if !app.store.exists(&Key::from(pointer.as_str())).await? {
                    return Ok(false);
                }
            }
            true
        }
    })
}

/// Whether an RFC 3339 time is older than `after` (or unreadable).
fn stale(updated_at: &str, after: std::time::Duration) -> bool {
    match chrono::DateTime::parse_from_rfc3339(updated_at) {
        Ok(t) => {
            let age = chrono::Utc::now().signed_duration_since(t);
            age.to_std().is_ok_and(|age| age > after)
        }
        Err(_) => true,
    }
}

/// Concatenates the chunks into a local file, checks the whole file's SHA-1, runs `job`.
async fn run<F, Fut>(
    app: &App,
    key: &Key,
    checksum: &str,
    chunks: &[String],
    job: F,
) -> Result<Committed, JobError>
where
    F: FnOnce(tempfile::TempPath) -> Fut,
    Fut: std::future::Future<Output = Result<Committed, JobError>>,
{
    app.store
        .put_json(key, &StoredState::new(AssembleState::Assembling))
        .await
        .map_err(JobError::transient)?;
    let tmp = app.config.tmp_dir();
    let mut writer =
        ingest::HashingWriter::new(&tmp, app.config.limits.max_file_bytes, "assembled file")
            .map_err(JobError::transient)?;
    let mut sha1 = sha1::Sha1::new();
    for c in chunks {
        let bytes = app
            .store
            .get_chunk(c)
            .await
            .map_err(JobError::transient)?
            .ok_or_else(|| format!("chunk {c} expired before assembly"))?;
        sha1.update(&bytes);
        // Over the file limit is the file's fault; a full disk is not.
        writer.push(&bytes).map_err(|e| match e {
            ingest::IngestError::TooLarge { .. } => JobError::from(e.to_string()),
            other => JobError::transient(other),
        })?;
    }
    let actual = hex::encode(sha1.finalize());
    if actual != checksum {
        return Err(format!("assembled file has SHA-1 {actual}, expected {checksum}").into());
    }
    let file = writer.finish().map_err(JobError::transient)?;
    crate::crash::point("assemble:concatenated");
    job(file.path).await
}

/// An artifact-bundle assemble request (3.x `artifactbundle/assemble`, or 2.x release
/// bundles, which name no project and take it from the bundle's manifest).
pub struct BundleAssemble {
    pub checksum: String,
    pub chunks: Vec<String>,
    /// Authorised projects; empty when the bundle's manifest names the project.
    pub projects: Vec<ProjectId>,
    /// Who asked: a project named by the bundle's manifest is authorised against it.
    pub caller: Caller,
    pub version: Option<String>,
    pub dist: Option<String>,
}

/// Assembles an artifact bundle and commits it for every project it is for.
pub async fn bundle(app: &App, req: BundleAssemble) -> ApiResult<serde_json::Value> {
    check_checksums(&req.checksum, &req.chunks)?;
    if req.dist.is_some() && req.version.is_none() {
        return Err(invalid("dist requires a version"));
    }
    let BundleAssemble {
        checksum,
        chunks,
        projects,
        caller,
        version,
        dist,
    } = req;
    let owner_projects = projects.clone();
    let owner_caller = caller.clone();
    let owner = if owner_projects.is_empty() {
        Owner::Token(&owner_caller)
    } else {
        Owner::Projects(&owner_projects)
    };
    let job_app = app.clone();
    let job = move |path: tempfile::TempPath| async move {
        let size = std::fs::metadata(&path).map_err(JobError::transient)?.len();
        let zip = ingest::TempFile {
            sha256: crate::types::Sha256::from_digest(&[0; 32]),
            size,
            path,
        };
        let projects = if projects.is_empty() {
            // 2.x release bundles (and 3.x requests without `projects`) name their project
            // in the manifest: authorise it now that it is known.
            let path = zip.path.to_path_buf();
            let tmp = job_app.config.tmp_dir();
            let max_entries = job_app.config.limits.max_zip_entries;
            let named =
                tokio::task::spawn_blocking(move || project_from_bundle(&path, &tmp, max_entries))
                    .await
                    .map_err(|e| e.to_string())??;
            caller
                .may(Scope::Upload, Some(&named))
                .map_err(|e| e.to_string())?;
            vec![named]
        } else {
            projects
        };
        let (first, rest) = projects
            .split_first()
            .ok_or("the request names no project")?;
        let mut manifest = UploadManifest::new(first.clone(), UploadSource::SentryCli);
        let bundle = js::BundleOptions {
            release: version.as_deref(),
            dist: dist.as_deref(),
            url_prefix: None,
        };
        let (prepared, _warnings) =
            js::prepare_bundle(&job_app, &mut manifest, zip, &bundle).await?;
        let committed = uploads::commit_manifest(&job_app, manifest, prepared).await?;
        let mut pointers = proof_of(&committed);
        // The blobs serve every project; each further project gets its own manifest.
        for project in rest {
            let mut m = committed.clone();
            m.id = UploadId::new();
            m.project = project.clone();
            job_app
                .store
                .commit_upload(&m)
                .await
                .map_err(JobError::transient)?;
            job_app.index.invalidate(project);
            uploads::after_commit(&job_app, &m);
            pointers.extend(proof_of(&m));
        }
        if let Some(v) = &version {
            for p in std::iter::once(first).chain(rest) {
                super::releases::ensure(&job_app, p, v).await;
            }
        }
        Ok(Committed {
            dif: None,
            pointers,
        })
    };
    step(app, AssembleKind::Bundle, owner, &checksum, &chunks, job).await
}

/// The project a bundle's `manifest.json` names. Opens the zip in place (as uploads do) and
/// inflates only the manifest, capped.
/// Keys of the pointers that make a committed upload findable (one per lookup path).
pub(super) fn proof_of(manifest: &UploadManifest) -> Vec<String> {
    manifest
        .pointer_keys()
        .into_iter()
        .map(|prefix| prefix.child(manifest.id.to_string()).to_string())
        .collect()
}

fn project_from_bundle(
    path: &std::path::Path,
    tmp: &std::path::Path,
    max_entries: usize,
) -> Result<ProjectId, String> {
    use ingest::zip::MAX_MANIFEST_BYTES;
    use std::io::Read;
    let mut archive = ingest::zip::open(path, tmp, max_entries).map_err(|e| e.to_string())?;
    let entry = archive
        .by_name("manifest.json")
        .map_err(|_| "the bundle has no manifest.json, so it names no project".to_owned())?;
    let mut manifest = Vec::new();
    entry
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut manifest)
        .map_err(|e| format!("manifest.json cannot be read: {e}"))?;
    if manifest.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(format!(
            "manifest.json is larger than {MAX_MANIFEST_BYTES} bytes"
        ));
    }
    #[derive(Deserialize)]
    struct Named {
        project: Option<String>,
    }
    let named: Named = serde_json::from_slice(&manifest)
        .map_err(|e| format!("manifest.json is not valid JSON: {e}"))?;
    let project = named
        .project
        .ok_or("the request names no project and neither does the bundle's manifest")?;
    ProjectId::parse(&project).map_err(|e| e.to_string())
}
