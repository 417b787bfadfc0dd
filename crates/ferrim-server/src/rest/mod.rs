//! The Easemob REST API (and ferrim's own extensions), translated onto the domain core.

pub mod error;

use axum::Router;

use crate::state::AppState;

pub use error::ApiError;

/// Routes of the REST API.
pub fn router(state: AppState) -> Router {
    Router::new().with_state(state)
}
