//! Running the service: bind, serve with graceful shutdown, background maintenance.
//!
//! [`run`] takes an already bound listener so tests bind port 0 and run the real server.

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::app::App;
use crate::config::{Config, LogFormat};
use crate::http::router;

/// Serves until `shutdown` resolves, then stops accepting connections and waits for
/// requests in flight (uploads included) to finish.
///
/// Connections are served by hyper directly (not `axum::serve`) so that a client gets
/// `limits.header_read_timeout` to send its request headers, then is cut off: a slow-loris
/// client cannot hold connections open.
pub async fn run(
    listener: TcpListener,
    state: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    let addr = listener.local_addr()?;
    if state.auth.enabled() {
        tracing::info!(%addr, store = state.store.describe(), "tracemap listening");
    } else {
        tracing::warn!(
            %addr,
            store = state.store.describe(),
            "tracemap listening WITHOUT authentication (no [[auth.tokens]] configured); \
             loopback only"
        );
    }
    let header_read_timeout = state.config.limits.header_read_timeout;
    spawn_maintenance(state.clone());
    let service = TowerToHyperService::new(router(state));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, keep serving.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service.clone())
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Periodic work: expire abandoned temp files, sweep expired sentry-cli chunks, keep the
/// disk cache under its quota.
fn spawn_maintenance(state: App) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        tick.tick().await;
        loop {
            tick.tick().await;
            let tmp = state.config.tmp_dir();
            let age = state.config.limits.upload_timeout;
            let _ = tokio::task::spawn_blocking(move || clean_tmp(&tmp, age)).await;
            if let Err(e) = crate::app::sentry::expire(&state).await {
                tracing::warn!(error = %e, "expiring sentry-cli chunks failed");
            }
            state.caches.enforce_quota().await;
        }
    });
}

/// Removes temporary files not modified for `age` (left behind by a crash mid-upload). With
/// `age` = `limits.upload_timeout`, no request in flight (of this process or of another one
/// over the same data directory, as in a rolling restart) can still be writing them.
pub fn clean_tmp(dir: &std::path::Path, age: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .map(|t| t.elapsed().unwrap_or_default() > age)
            .unwrap_or(false);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let spec = std::env::var("TRACEMAP_LOG").unwrap_or_else(|_| "info,tower_http=warn".into());
    // rust-minidump logs every oddity of a dump as a warning (per thread, per request): a
    // dump is client input, and what matters about it is in the response. Its crates log
    // errors only, unless TRACEMAP_LOG names them.
    let spec = if spec.contains("minidump") || spec.contains("breakpad") {
        spec
    } else {
        format!("{spec},minidump=error,minidump_processor=error,minidump_unwind=error,breakpad_symbols=error")
    };
    let filter =
        EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    // Colours only on a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Why `tracemap serve` could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("creating {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("opening the store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

/// Opens the store, binds, serves. Used by `tracemap serve`.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let tmp = config.tmp_dir();
    std::fs::create_dir_all(&tmp).map_err(|source| ServeError::DataDir {
        path: tmp.clone(),
        source,
    })?;
    clean_tmp(&tmp, config.limits.upload_timeout);
    let state = App::new(config.clone())?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    run(listener, state, shutdown_signal())
        .await
        .map_err(ServeError::Serve)
}
