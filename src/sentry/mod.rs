//! sentry-cli compatibility (chunk upload, assemble, releases): see `shared/specs/sentry-cli.md`.

use axum::Router;

use crate::http::AppState;

/// The sentry-cli compatible routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}

/// Removes expired chunks and assemble states.
pub async fn expire(_state: &AppState) -> Result<(), crate::store::StoreError> {
    Ok(())
}
