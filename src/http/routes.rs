//! The route table: every route with the access it requires and the group (body limit,
//! timeout, concurrency bound) it belongs to. The router is built from it, so the table and
//! the router cannot disagree.

use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::middleware;
use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;

use super::{guarded, ops, sentry, symbolicate, upload, Guard};
use crate::app::App;
use crate::config::Scope;

/// What a route requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing: health, readiness, metrics, and sentry-cli's server info.
    Public,
    /// A token with the scope, allowed to use the project named by the `{project}` path
    /// segment (or `?scope=`).
    Project(Scope),
    /// A token with the scope; the projects come from the body or from an uploaded bundle's
    /// manifest and are authorised when known (sentry-cli organisation routes).
    Scope(Scope),
}

/// One route of the router.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    pub method: Method,
    /// The path template, as axum matches it (`{project}` and so on).
    pub path: &'static str,
    pub access: Access,
    /// The group whose limits apply: `uploads`, `sentry`, `symbolicate`, `admin` or `ops`.
    pub group: &'static str,
}

/// A group of routes under one body limit, timeout and concurrency bound.
pub(super) struct Group {
    name: &'static str,
    router: Router<App>,
}

/// The routes being built, and their table.
pub(super) struct Routes {
    table: Vec<RouteInfo>,
}

impl Routes {
    pub(super) fn add(
        &mut self,
        group: &mut Group,
        path: &'static str,
        methods: &[(Method, Access)],
        handler: MethodRouter<App>,
    ) {
        for (method, access) in methods {
            self.table.push(RouteInfo {
                method: method.clone(),
                path,
                access: *access,
                group: group.name,
            });
        }
        group.router = std::mem::take(&mut group.router).route(path, handler);
    }
}

fn group(name: &'static str) -> Group {
    Group {
        name,
        router: Router::new(),
    }
}

fn limited(group: Group, guard: Guard, body_limit: u64) -> Router<App> {
    group
        .router
        .layer(DefaultBodyLimit::max(
            body_limit.min(usize::MAX as u64) as usize
        ))
        .layer(middleware::from_fn_with_state(guard, guarded))
}

/// The routes of the service and their table.
pub(super) fn build(app: &App) -> (Router<App>, Vec<RouteInfo>) {
    use Access::{Project, Public};
    use Method as M;
    use Scope::{Admin, Symbolicate, Upload};
    let limits = &app.config.limits;
    let mut r = Routes { table: Vec::new() };

    let mut uploads = group("uploads");
    let g = &mut uploads;
    r.add(
        g,
        "/api/v1/projects/{project}/releases/{release}/files",
        &[(M::POST, Project(Upload)), (M::GET, Project(Upload))],
        post(upload::release_files).get(upload::list_release_files),
    );
    r.add(
        g,
        "/api/v1/projects/{project}/releases/{release}/files/{id}",
        &[(M::GET, Project(Upload)), (M::DELETE, Project(Admin))],
        get(upload::get_release_file).delete(upload::delete_release_file),
    );
    r.add(
        g,
        "/api/v1/projects/{project}/releases/{release}",
        &[(M::DELETE, Project(Admin))],
        delete(upload::delete_release),
    );
    r.add(
        g,
        "/api/v1/projects/{project}/releases",
        &[(M::GET, Project(Upload))],
        get(upload::list_releases),
    );
    r.add(
        g,
        "/api/v1/projects/{project}/bundles",
        &[(M::POST, Project(Upload))],
        post(upload::bundle),
    );
    r.add(
        g,
        "/api/v1/projects/{project}/debug-files",
        &[(M::POST, Project(Upload)), (M::GET, Project(Upload))],
        post(upload::debug_files).get(upload::list_debug_files),
    );
    r.add(
        g,
        "/api/v1/projects/{project}/debug-files/{debug_id}",
        &[(M::DELETE, Project(Admin))],
        delete(upload::delete_debug_files),
    );

    let mut sentry_routes = group("sentry");
    sentry::routes(&mut r, &mut sentry_routes);

    let mut admin = group("admin");
    r.add(
        &mut admin,
        "/api/v1/admin/sweep",
        &[(M::POST, Access::Scope(Admin))],
        post(ops::sweep),
    );

    let mut symbolicate_routes = group("symbolicate");
    let g = &mut symbolicate_routes;
    r.add(
        g,
        "/api/v1/projects/{project}/symbolicate/js",
        &[(M::POST, Project(Symbolicate))],
        post(symbolicate::js),
    );
    r.add(
        g,
        "/api/v1/projects/{project}/symbolicate/native",
        &[(M::POST, Project(Symbolicate))],
        post(symbolicate::native),
    );
    r.add(
        g,
        "/symbolicate-js",
        &[(M::POST, Project(Symbolicate))],
        post(symbolicate::js_compat),
    );
    r.add(
        g,
        "/symbolicate",
        &[(M::POST, Project(Symbolicate))],
        post(symbolicate::native_compat),
    );

    // Minidumps: the symbolicate group's slots and time limit, the minidump body limit.
    let mut minidump_routes = group("symbolicate");
    let g = &mut minidump_routes;
    r.add(
        g,
        "/api/v1/projects/{project}/symbolicate/minidump",
        &[(M::POST, Project(Symbolicate))],
        post(symbolicate::minidump),
    );
    r.add(
        g,
        "/minidump",
        &[(M::POST, Project(Symbolicate))],
        post(symbolicate::minidump_compat),
    );

    let mut ops_routes = group("ops");
    let g = &mut ops_routes;
    r.add(g, "/healthz", &[(M::GET, Public)], get(ops::healthz));
    r.add(g, "/readyz", &[(M::GET, Public)], get(ops::readyz));
    r.add(g, "/metrics", &[(M::GET, Public)], get(ops::metrics));

    let slots = &app.slots;
    let upload_guard = Guard::new("uploads", slots.uploads.clone(), limits.upload_timeout);
    let router = Router::new()
        .merge(limited(
            uploads,
            upload_guard.clone(),
            limits.max_upload_bytes,
        ))
        .merge(limited(
            sentry_routes,
            upload_guard,
            crate::app::sentry::MAX_REQUEST_SIZE + (1 << 20),
        ))
        .merge(limited(
            admin,
            Guard::new("admin", slots.admin.clone(), limits.upload_timeout),
            0,
        ))
        .merge(limited(
            symbolicate_routes,
            Guard::new(
                "symbolicate",
                slots.symbolicate.clone(),
                limits.request_timeout,
            ),
            limits.max_symbolicate_bytes,
        ))
        .merge(limited(
            minidump_routes,
            Guard::new(
                "symbolicate",
                slots.symbolicate.clone(),
                limits.request_timeout,
            ),
            // The dump part's own limit is checked as it streams; the rest of the form is
            // small (at most 64 parts of 64 KiB).
            limits.max_minidump_bytes.saturating_add(16 << 20),
        ))
        .merge(limited(
            ops_routes,
            Guard::new("ops", slots.ops.clone(), OPS_TIMEOUT),
            0,
        ));
    (router, r.table)
}

/// The time a probe or scrape may take.
const OPS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Every route the router serves, with the access it requires (for the auth matrix and for
/// documentation).
pub fn route_table(app: &App) -> Vec<RouteInfo> {
    build(app).1
}
