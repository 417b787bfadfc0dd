//! The msync WebSocket gateway at `/ws`.

use axum::Router;

use crate::state::AppState;

/// Routes of the gateway.
pub fn router(_state: AppState) -> Router {
    Router::new()
}
