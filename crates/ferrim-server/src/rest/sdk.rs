//! Endpoints the client SDKs call with a user token.

use axum::Json;
use serde_json::{json, Value};

use super::extract::AppCtx;
use super::openapi::{ErrorBody, TokenExpiry};
use super::ApiError;

/// `expire_timestamp` reported for tokens that never expire: 2100-01-01T00:00:00Z. The SDK
/// clamps its timers to ~24.8 days anyway.
pub const NEVER_EXPIRES_MS: u64 = 4_102_444_800_000;

/// The Web SDK's `renewToken`: checks a (new) user token of this user and reports when it
/// expires. REST-issued and dynamic user tokens are accepted; app tokens are not.
#[utoipa::path(
    get,
    path = "/{org}/{app}/sdk/users/{username}/token/expires",
    tag = "sdk",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("username" = String, Path, description = "User ID the token belongs to"),
    ),
    security(("user_token" = [])),
    responses(
        (status = 200, description = "Absolute expiry in Unix ms", body = TokenExpiry),
        (status = 401, description = "Missing, expired, revoked or wrong token (another user's, an app token)", body = ErrorBody),
        (status = 404, description = "`organization_application_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn token_expires(ctx: AppCtx) -> Result<Json<Value>, ApiError> {
    let token = ctx.bearer().ok_or_else(ApiError::expired_token)?;
    let authed = ctx
        .state
        .core
        .accounts
        .authenticate_user(&ctx.app, token)
        .await
        .map_err(ApiError::from_auth)?;
    if !authed
        .user
        .username
        .as_str()
        .eq_ignore_ascii_case(ctx.param("username"))
    {
        return Err(ApiError::corrupt_token());
    }
    Ok(Json(json!({
        "expire_timestamp": authed.expires_ms.unwrap_or(NEVER_EXPIRES_MS),
    })))
}
