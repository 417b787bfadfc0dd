//! Online status, devices and forced logout (rest-api.md §5.8–5.13).

use ferrim_core::clock::now_ms;
use ferrim_core::messaging::{InboxQuery, MessageKind};
use ferrim_core::token::TokenError;
use ferrim_core::CoreError;
use serde_json::{json, Map, Value};

use super::envelope::Envelope;
use super::extract::{AdminCtx, AppCtx, JsonBody};
use super::limits::Group;
use super::openapi::{BatchStatusRequest, DataEnvelope, ErrorBody, ResourcesEnvelope};
use super::ApiError;

/// Most names one batch status request may carry.
pub const MAX_STATUS_BATCH: usize = 100;

fn status_text(online: bool) -> &'static str {
    if online {
        "online"
    } else {
        "offline"
    }
}

/// Force a user offline on every device (SDK code 217). `data.result` is true: afterwards
/// the user is offline everywhere, whether or not a device was online (spec §5.8). Tokens
/// stay valid.
#[utoipa::path(
    get,
    path = "/{org}/{app}/users/{username}/disconnect",
    tag = "devices",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("username" = String, Path, description = "User ID"),
    ),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "`data.result`", body = DataEnvelope),
        (status = 401, description = "Missing, expired or wrong token", body = ErrorBody),
        (status = 404, description = "`service_resource_not_found` or `organization_application_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn disconnect_all(AdminCtx(ctx): AdminCtx) -> Result<Envelope, ApiError> {
    ctx.state
        .core
        .accounts
        .disconnect_all(&ctx.app, ctx.param("username"))
        .await?;
    Ok(Envelope::minimal(&ctx, "get")
        .uri(&ctx)
        .no_entities()
        .data(json!({ "result": true }))
        .count(0))
}

/// Force one device (resource) offline (SDK code 217). `data.result` is false when that
/// resource was not online.
#[utoipa::path(
    delete,
    path = "/{org}/{app}/users/{username}/disconnect/{resource}",
    tag = "devices",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("username" = String, Path, description = "User ID"),
        ("resource" = String, Path, description = "Resource ID from the resources list"),
    ),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "`data.result`", body = DataEnvelope),
        (status = 401, description = "Missing, expired or wrong token", body = ErrorBody),
        (status = 404, description = "`service_resource_not_found` or `organization_application_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn disconnect_resource(AdminCtx(ctx): AdminCtx) -> Result<Envelope, ApiError> {
    let kicked = ctx
        .state
        .core
        .accounts
        .disconnect_resource(&ctx.app, ctx.param("username"), ctx.param("resource"))
        .await
        .map_err(|err| match err {
            // The one place the spec names the short exception (§5.9).
            CoreError::UserNotFound => {
                ApiError::user_not_found().with_exception("UserNotFoundException")
            }
            other => other.into(),
        })?;
    let path = format!("/users/{}/disconnect", ctx.param("username"));
    Ok(Envelope::full(&ctx, "delete", path)
        .no_entities()
        .data(json!({ "result": kicked })))
}

/// A user's online devices. Accepts the app token or the user's own user token (the Web
/// SDK's `getSelfIdsOnOtherPlatform` calls it with the latter).
#[utoipa::path(
    get,
    path = "/{org}/{app}/users/{username}/resources",
    tag = "devices",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("username" = String, Path, description = "User ID"),
    ),
    security(("app_token" = []), ("user_token" = [])),
    responses(
        (status = 200, description = "`data: [{res, device_uuid, device_name}]`", body = ResourcesEnvelope),
        (status = 401, description = "Missing, expired or wrong token (another user's token included)", body = ErrorBody),
        (status = 404, description = "`service_resource_not_found` or `organization_application_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn resources(ctx: AppCtx) -> Result<Envelope, ApiError> {
    ctx.limit(Group::UserSystem)?;
    let username = ctx.param("username");
    authorize_admin_or_self(&ctx, username).await?;
    let devices = ctx
        .state
        .core
        .accounts
        .resources(&ctx.app, username)
        .await?;
    let data: Vec<Value> = devices
        .iter()
        .map(|d| {
            json!({
                "res": d.resource,
                "device_uuid": d.device_uuid,
                "device_name": d.device_name,
                // ferrim additions (the SDK ignores unknown fields): the multi-device end and
                // the login time, for the console.
                "platform": d.platform.name(),
                "login_time": d.login_ms,
            })
        })
        .collect();
    let path = format!("/users/{username}/resources");
    Ok(Envelope::full(&ctx, "get", path)
        .no_entities()
        .data(Value::Array(data)))
}

/// The app token, or a user token of exactly this user.
async fn authorize_admin_or_self(ctx: &AppCtx, username: &str) -> Result<(), ApiError> {
    let token = ctx.bearer().ok_or_else(ApiError::expired_token)?;
    let accounts = &ctx.state.core.accounts;
    let app_err = match accounts.authenticate_app(&ctx.app, token) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let maybe_user = matches!(
        app_err,
        CoreError::WrongTokenKind | CoreError::Token(TokenError::Malformed)
    );
    if !maybe_user {
        return Err(ApiError::from_auth(app_err));
    }
    match accounts.authenticate_user(&ctx.app, token).await {
        Ok(authed) if authed.user.username.as_str().eq_ignore_ascii_case(username) => Ok(()),
        Ok(_) => Err(ApiError::corrupt_token()),
        Err(e) => Err(ApiError::from_auth(e)),
    }
}

/// `GET /users/batch/status`: the literal `batch` route (batch status is a POST) shadows
/// `users/{username}/status` for a user named `batch`.
pub(crate) async fn status_of_user_named_batch(
    AdminCtx(mut ctx): AdminCtx,
) -> Result<Envelope, ApiError> {
    ctx.set_param("username", "batch");
    status(AdminCtx(ctx)).await
}

/// Whether a user is online (any device).
#[utoipa::path(
    get,
    path = "/{org}/{app}/users/{username}/status",
    tag = "devices",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("username" = String, Path, description = "User ID"),
    ),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "`data: {username: online|offline}`", body = DataEnvelope),
        (status = 401, description = "Missing, expired or wrong token", body = ErrorBody),
        (status = 404, description = "`service_resource_not_found` or `organization_application_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn status(AdminCtx(ctx): AdminCtx) -> Result<Envelope, ApiError> {
    let accounts = &ctx.state.core.accounts;
    let user = accounts.user(&ctx.app, ctx.param("username")).await?;
    let online = accounts.is_online(&ctx.app, &user).await?;
    let mut data = Map::new();
    data.insert(user.username.to_string(), status_text(online).into());
    Ok(Envelope::minimal(&ctx, "get")
        .uri(&ctx)
        .no_entities()
        .data(Value::Object(data))
        .count(0))
}

/// Online status of up to 100 users, in request order. Unknown names are `offline`.
#[utoipa::path(
    post,
    path = "/{org}/{app}/users/batch/status",
    tag = "devices",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
    ),
    request_body = BatchStatusRequest,
    security(("app_token" = [])),
    responses(
        (status = 200, description = "`action: get batch user status`, `data: [{name: status}]`", body = DataEnvelope),
        (status = 400, description = "`illegal_argument` (`request body exceeds maximum limit, maximum limit is 100`, `usernames must be an array of strings`), `json_parse`", body = ErrorBody),
        (status = 401, description = "Missing, expired or wrong token", body = ErrorBody),
        (status = 404, description = "`organization_application_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn batch_status(
    AdminCtx(ctx): AdminCtx,
    body: Result<JsonBody, ApiError>,
) -> Result<Envelope, ApiError> {
    let JsonBody(body) = body?;
    let bad = || ApiError::illegal_argument("usernames must be an array of strings");
    let names = body
        .get("usernames")
        .and_then(Value::as_array)
        .ok_or_else(bad)?;
    if names.len() > MAX_STATUS_BATCH {
        return Err(ApiError::illegal_argument(format!(
            "request body exceeds maximum limit, maximum limit is {MAX_STATUS_BATCH}"
        )));
    }
    let names = names
        .iter()
        .map(|n| n.as_str().map(str::to_owned).ok_or_else(bad))
        .collect::<Result<Vec<_>, _>>()?;
    let online = ctx.state.core.accounts.statuses(&ctx.app, &names).await?;
    let data = names
        .iter()
        .zip(online)
        .map(|(name, online)| {
            let mut entry = Map::new();
            entry.insert(name.clone(), status_text(online).into());
            Value::Object(entry)
        })
        .collect();
    Ok(Envelope::minimal(&ctx, "get batch user status").data(Value::Array(data)))
}

/// Number of offline messages waiting for a user: chat messages to them that no device of
/// theirs has taken yet, within the app's keep limits.
#[utoipa::path(
    get,
    path = "/{org}/{app}/users/{username}/offline_msg_count",
    tag = "devices",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("username" = String, Path, description = "User ID"),
    ),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "`data: {username: count}`", body = DataEnvelope),
        (status = 401, description = "Missing, expired or wrong token", body = ErrorBody),
        (status = 404, description = "`service_resource_not_found` or `organization_application_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn offline_msg_count(AdminCtx(ctx): AdminCtx) -> Result<Envelope, ApiError> {
    let user = ctx
        .state
        .core
        .accounts
        .user(&ctx.app, ctx.param("username"))
        .await?;
    let waiting = waiting_offline(&ctx, &user).await?;
    let mut data = Map::new();
    data.insert(user.username.to_string(), waiting.len().into());
    Ok(Envelope::minimal(&ctx, "get")
        .uri(&ctx)
        .no_entities()
        .data(Value::Object(data))
        .count(0))
}

/// The chat messages to `user` that no device of theirs has taken yet (what a device
/// logging in now would get as offline messages), oldest first.
async fn waiting_offline(
    ctx: &AppCtx,
    user: &ferrim_core::user::User,
) -> Result<Vec<u64>, ApiError> {
    let settings = &ctx.app.settings;
    let messaging = &ctx.state.core.messaging;
    // No device has this resource: the position is the user's offline cursor.
    let position = messaging
        .inbox_position(user.id, "", settings.offline_keep_count)
        .await?;
    let keep_ms = u64::from(settings.offline_keep_days) * 24 * 3600 * 1000;
    let query = InboxQuery {
        after: position.offline_cursor.max(position.backlog_floor),
        // The user's own sends are not offline messages for them.
        sent_after: u64::MAX,
        resource: "",
        min_timestamp_ms: now_ms().saturating_sub(keep_ms),
        limit: settings.offline_keep_count,
    };
    Ok(messaging
        .inbox(ctx.app.id, user.id, query)
        .await?
        .into_iter()
        .filter(|e| e.message.to.id == user.id && e.message.kind == MessageKind::Chat)
        .map(|e| e.message.id)
        .collect())
}

/// Whether one message is still waiting for the user offline (`undelivered`) or not
/// (`delivered`: taken by one of their devices, or not an offline message of theirs).
#[utoipa::path(
    get,
    path = "/{org}/{app}/users/{username}/offline_msg_status/{msg_id}",
    tag = "devices",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("username" = String, Path, description = "User ID"),
        ("msg_id" = String, Path, description = "Message ID"),
    ),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "`data: {msg_id: delivered|undelivered}`", body = DataEnvelope),
        (status = 401, description = "Missing, expired or wrong token", body = ErrorBody),
        (status = 404, description = "`service_resource_not_found` or `organization_application_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn offline_msg_status(AdminCtx(ctx): AdminCtx) -> Result<Envelope, ApiError> {
    let user = ctx
        .state
        .core
        .accounts
        .user(&ctx.app, ctx.param("username"))
        .await?;
    let msg_id = ctx.param("msg_id").to_owned();
    let waiting = match msg_id.parse::<u64>() {
        Ok(id) => waiting_offline(&ctx, &user).await?.contains(&id),
        Err(_) => false,
    };
    let mut data = Map::new();
    data.insert(
        msg_id,
        if waiting { "undelivered" } else { "delivered" }.into(),
    );
    Ok(Envelope::minimal(&ctx, "get")
        .uri(&ctx)
        .no_entities()
        .data(Value::Object(data))
        .count(0))
}
