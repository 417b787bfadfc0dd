//! The Easemob REST API (and ferrim's own extensions), translated onto the domain core.
//!
//! One file per resource; handlers only translate HTTP to calls on
//! [`ferrim_core::accounts::Accounts`] and back. Extractors in [`extract`] resolve the app,
//! check tokens and read bodies so that every failure carries Easemob's error body.

mod envelope;
pub mod error;
mod extract;
pub mod limits;
mod messages;
pub mod middleware;
pub mod openapi;
pub mod sdk;
mod settings;
mod stats;
pub mod status;
mod tokens;
mod users;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::Router;

use crate::state::AppState;
use limits::RateLimits;

pub use error::ApiError;

/// What REST handlers reach: the server state plus the REST quotas.
#[derive(Clone)]
pub(crate) struct RestState {
    pub(crate) core: AppState,
    pub(crate) limits: Arc<RateLimits>,
}

/// Routes of the REST API, `/metrics` and `/openapi.json`. Unknown paths are answered by
/// [`not_found`], which the composing router installs as its fallback.
pub fn router(state: AppState) -> Router {
    let max_body = state.settings.max_body_bytes;
    // Install the recorder before anything is counted.
    crate::metrics::handle();
    let state = RestState {
        core: state,
        limits: Arc::new(RateLimits::new()),
    };
    Router::new()
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi::serve))
        .route("/{org}/{app}", get(settings::app_overview))
        .route("/{org}/{app}/stats", get(stats::stats))
        .route("/{org}/{app}/token", post(tokens::token))
        .route(
            "/{org}/{app}/settings",
            get(settings::get_settings).put(settings::put_settings),
        )
        .route(
            "/{org}/{app}/users",
            post(users::register)
                .get(users::list_users)
                .delete(users::delete_users),
        )
        .route(
            "/{org}/{app}/users/batch/status",
            post(status::batch_status).get(status::status_of_user_named_batch),
        )
        .route(
            "/{org}/{app}/users/{username}",
            get(users::get_user)
                .put(users::update_user)
                .delete(users::delete_user),
        )
        .route(
            "/{org}/{app}/users/{username}/password",
            post(users::change_password).put(users::change_password),
        )
        .route(
            "/{org}/{app}/users/{username}/deactivate",
            post(users::deactivate),
        )
        .route(
            "/{org}/{app}/users/{username}/activate",
            post(users::activate),
        )
        .route(
            "/{org}/{app}/users/{username}/disconnect",
            get(status::disconnect_all),
        )
        .route(
            "/{org}/{app}/users/{username}/disconnect/{resource}",
            axum::routing::delete(status::disconnect_resource),
        )
        .route(
            "/{org}/{app}/users/{username}/resources",
            get(status::resources),
        )
        .route("/{org}/{app}/users/{username}/status", get(status::status))
        .route(
            "/{org}/{app}/users/{username}/offline_msg_count",
            get(status::offline_msg_count),
        )
        .route(
            "/{org}/{app}/users/{username}/offline_msg_status/{msg_id}",
            get(status::offline_msg_status),
        )
        .route("/{org}/{app}/messages/users", post(messages::send))
        .route(
            "/{org}/{app}/users/{username}/messageroaming",
            post(messages::history),
        )
        .route(
            "/{org}/{app}/sdk/user/{username}/user_channels/list",
            get(messages::conversations),
        )
        .route(
            "/{org}/{app}/user/{username}/user_channel",
            delete(messages::delete_conversation),
        )
        .route(
            "/{org}/{app}/sdk/message/roaming/{chat_type}/user/{username}/time",
            delete(messages::delete_history_before),
        )
        .route(
            "/{org}/{app}/sdk/message/roaming/{chat_type}/user/{username}",
            delete(messages::delete_history_messages),
        )
        .route(
            "/{org}/{app}/sdk/users/{username}/token/expires",
            get(sdk::token_expires),
        )
        // Must follow the routes: it is installed on the routes present.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Unknown path: 404 with Easemob's body.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "web_application",
        format!("HTTP 404 Not Found: no REST endpoint at {}", uri.path()),
    )
}

/// Known path, wrong method: 405 with Easemob's error type for unsupported operations.
async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "unsupported_service_operation",
        "Service operation not supported",
    )
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::metrics::handle().render(),
    )
}
