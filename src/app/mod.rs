//! The service layer: the [`App`] state and the three things the service does with it.
//!
//! - [`uploads`]: receive → validate (through `ingest`) → commit (through `store`), plus the
//!   catalogue of what was uploaded (listing, download, delete).
//! - [`symbolicate`]: resolving a request's frames against the index and the derived caches,
//!   with the pure `js` and `native` modules doing the lookups.
//! - [`sentry`]: the sentry-cli protocol's logic (chunks, the assemble state machine, release
//!   metadata), which ends in the same upload commit as our own REST API.
//!
//! Nothing here knows HTTP: no request, header or response types. The `http` layer above
//! unpacks requests, authorises them, calls in here and turns the answers into responses.

pub mod sentry;
pub mod symbolicate;
pub mod uploads;

use std::ops::Deref;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::auth::Auth;
use crate::caches::Caches;
use crate::config::{cache_weight, Config, MemoryShare};
use crate::index::Index;
use crate::store::{Store, StoreError};

/// Everything the service holds. Cheap to clone.
#[derive(Clone)]
pub struct App(Arc<AppInner>);

pub struct AppInner {
    pub config: Config,
    pub store: Store,
    pub index: Index,
    pub auth: Auth,
    pub caches: Caches,
    /// External symbol sources for modules nobody uploaded.
    pub sources: crate::sources::Sources,
    /// Requests in flight per route group, shared by every router built over this state.
    pub slots: GroupSlots,
    /// Bounds uploads being validated at once (parsing maps and debug files is CPU and
    /// memory heavy): `cache.build_workers`.
    pub validators: Semaphore,
    /// Bounds minidumps being read and walked at once (CPU work on the blocking pool):
    /// `cache.build_workers`.
    pub walkers: Arc<Semaphore>,
    /// JS artifact resolutions by (project, generation, release, dist, debug ID, URL):
    /// positive and negative, dropped by the project's next upload or after `index_ttl`.
    pub js_resolutions: moka::future::Cache<String, Arc<symbolicate::js::Resolution>>,
    /// Native debug-file resolutions, keyed likewise.
    pub native_resolutions: moka::future::Cache<String, Arc<symbolicate::native::ModuleResolution>>,
}

/// The concurrency bound of each route group (see `http::routes`).
pub struct GroupSlots {
    pub uploads: Arc<Semaphore>,
    pub symbolicate: Arc<Semaphore>,
    pub admin: Arc<Semaphore>,
    pub ops: Arc<Semaphore>,
}

/// Probes and scrapes in flight at once.
const OPS_CONCURRENCY: usize = 64;

impl GroupSlots {
    fn new(config: &Config) -> GroupSlots {
        let slots = |n: usize| Arc::new(Semaphore::new(n.max(1)));
        GroupSlots {
            uploads: slots(config.limits.max_concurrent_uploads),
            symbolicate: slots(config.limits.max_concurrent_requests),
            admin: slots(1),
            ops: slots(OPS_CONCURRENCY),
        }
    }
}

impl Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl App {
    /// Publishes every in-memory cache's weighed size to the metrics registry.
    pub fn report_sizes(&self) {
        self.caches.report_sizes();
        self.index.report_sizes();
        crate::metrics::report_cache_memory("js_resolutions", self.js_resolutions.weighted_size());
        crate::metrics::report_cache_memory(
            "native_resolutions",
            self.native_resolutions.weighted_size(),
        );
    }

    /// Opens the store the configuration names.
    pub fn new(config: Config) -> Result<App, StoreError> {
        let store = Store::open(&config)?;
        Ok(Self::with_store(config, store))
    }

    pub fn with_store(config: Config, store: Store) -> App {
        let index = Index::new(store.clone(), &config.cache);
        let caches = match config.cache.shared {
            true => Caches::new(&config).share_through(store.clone()),
            false => Caches::new(&config),
        };
        App(Arc::new(AppInner {
            auth: Auth::new(&config.auth),
            validators: Semaphore::new(config.cache.build_workers.max(1)),
            walkers: Arc::new(Semaphore::new(config.cache.build_workers.max(1))),
            slots: GroupSlots::new(&config),
            // Keys hold client-chosen strings (URLs) of any length: both caches are weighed
            // in bytes, within the memory budget, not counted in entries.
            js_resolutions: moka::future::Cache::builder()
                .max_capacity(config.cache.memory_for(MemoryShare::JsResolutions))
                .weigher(|k: &String, r: &Arc<symbolicate::js::Resolution>| {
                    cache_weight(k.len() + r.weight())
                })
                .time_to_live(config.cache.index_ttl)
                .build(),
            native_resolutions: moka::future::Cache::builder()
                .max_capacity(config.cache.memory_for(MemoryShare::NativeResolutions))
                .weigher(
                    |k: &String, r: &Arc<symbolicate::native::ModuleResolution>| {
                        cache_weight(k.len() + r.weight())
                    },
                )
                .time_to_live(config.cache.index_ttl)
                .build(),
            sources: crate::sources::Sources::new(&config),
            store,
            index,
            caches,
            config,
        }))
    }
}
