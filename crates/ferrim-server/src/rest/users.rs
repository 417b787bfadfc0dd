//! Registration and user management (rest-api.md §4, §5.1–5.7, §5.15).

use axum::http::StatusCode;
use ferrim_core::accounts::{NewUserInput, RegisterOutcome, MAX_REGISTER_BATCH};
use ferrim_core::app::RegistrationMode;
use ferrim_core::user::{PushSettings, User};
use ferrim_core::CoreError;
use serde_json::{json, Map, Value};

use super::envelope::Envelope;
use super::extract::{encode_cursor, opt_str, AdminCtx, AppCtx, JsonBody, Paging};
use super::limits::Group;
use super::openapi::{
    ActionResponse, ErrorBody, NewUser, NicknameUpdate, PasswordChange, UserEnvelope,
};
use super::ApiError;

const USERS_PATH: &str = "/users";

/// Register one user or a batch.
///
/// A JSON object (or an array of one) registers one user: without a token only while the
/// app's `registration_mode` is `open`, otherwise with the app token; an existing user is a
/// 400. An array of 2–60 users is a batch and always needs the app token: existing users are
/// reported in `data` (`registerUserFailReason`) while the others are created. Every entry
/// is validated before anything is written. The body is parsed as JSON whatever the
/// `Content-Type`.
#[utoipa::path(
    post,
    path = "/{org}/{app}/users",
    tag = "users",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
    ),
    request_body(content = Vec<NewUser>, description = "One user object, or an array of at most 60"),
    security((), ("app_token" = [])),
    responses(
        (status = 200, description = "Created users in `entities`; for batches also `data` (failures)", body = UserEnvelope),
        (status = 400, description = "`illegal_argument` (`username X is not legal`, `USERNAME_TOO_LONG`, `password or pin must provided`, `NICKNAME_TOO_LONG`, `Entity user requires a property named username`, `Request body array size[N] had almost reached or been greater than the upper range value[60]`), `duplicate_unique_property_exists`, `json_parse`", body = ErrorBody),
        (status = 401, description = "`unauthorized` `Open registration doesn't allow, so register user need token`, or a bad token", body = ErrorBody),
        (status = 404, description = "`organization_application_not_found`", body = ErrorBody),
        (status = 429, description = "`reach_limit`", body = ErrorBody),
    )
)]
pub(crate) async fn register(
    ctx: AppCtx,
    body: Result<JsonBody, ApiError>,
) -> Result<Envelope, ApiError> {
    ctx.limit(Group::UserSystem)?;
    let authorized = match ctx.bearer() {
        Some(_) => {
            ctx.require_app_token()?;
            true
        }
        None => false,
    };
    let closed = || {
        ApiError::unauthorized(
            "unauthorized",
            "Open registration doesn't allow, so register user need token",
        )
    };
    if !authorized && ctx.app.settings.registration_mode != RegistrationMode::Open {
        return Err(closed());
    }
    let JsonBody(body) = body?;
    let (items, batch) = match body {
        Value::Array(items) => {
            let batch = items.len() != 1;
            (items, batch)
        }
        obj @ Value::Object(_) => (vec![obj], false),
        _ => {
            return Err(ApiError::illegal_argument(
                "request body must be a user object or an array of user objects",
            ))
        }
    };
    if batch && !authorized {
        return Err(closed());
    }
    if items.is_empty() {
        return Err(ApiError::illegal_argument(
            "request body must contain at least one user",
        ));
    }
    if items.len() > MAX_REGISTER_BATCH {
        return Err(CoreError::BatchTooLarge {
            size: items.len(),
            max: MAX_REGISTER_BATCH,
        }
        .into());
    }
    let inputs = items
        .iter()
        .map(new_user_input)
        .collect::<Result<Vec<_>, _>>()?;
    let outcomes = ctx.state.core.accounts.register(&ctx.app, inputs).await?;
    let mut created = Vec::new();
    let mut failures = Vec::new();
    for outcome in outcomes {
        match outcome {
            RegisterOutcome::Created(user) => created.push(user),
            RegisterOutcome::AlreadyExists(name) if !batch => {
                return Err(ApiError::bad_request(
                    "duplicate_unique_property_exists",
                    format!(
                        "Application {} Entity user requires that property named username be unique, value of {name} exists",
                        ctx.app.id
                    ),
                )
                .with_exception(
                    "org.apache.usergrid.persistence.exceptions.DuplicateUniquePropertyExistsException",
                ))
            }
            RegisterOutcome::AlreadyExists(name) => failures.push(json!({
                "username": name.as_str(),
                "registerUserFailReason": format!("the {name} already exists"),
            })),
        }
    }
    metrics::counter!("ferrim_users_registered_total").increment(created.len() as u64);
    let env = Envelope::full(&ctx, "post", USERS_PATH).entities(&created);
    Ok(if batch {
        env.data(Value::Array(failures))
    } else {
        env
    })
}

fn new_user_input(item: &Value) -> Result<NewUserInput, ApiError> {
    let obj = item
        .as_object()
        .ok_or_else(|| ApiError::illegal_argument("each user must be a JSON object"))?;
    let username = opt_str(obj, "username")?.ok_or_else(|| {
        ApiError::illegal_argument("Entity user requires a property named username")
    })?;
    Ok(NewUserInput {
        username,
        password: opt_str(obj, "password")?,
        nickname: opt_str(obj, "nickname")?,
    })
}

/// Get one user.
#[utoipa::path(
    get,
    path = "/{org}/{app}/users/{username}",
    tag = "users",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("username" = String, Path, description = "User ID (case-insensitive)"),
    ),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "`entities[1]`, `count: 1`", body = UserEnvelope),
        (status = 401, description = "Missing, expired or wrong token", body = ErrorBody),
        (status = 404, description = "`service_resource_not_found` or `organization_application_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn get_user(AdminCtx(ctx): AdminCtx) -> Result<Envelope, ApiError> {
    let user = ctx
        .state
        .core
        .accounts
        .user(&ctx.app, ctx.param("username"))
        .await?;
    Ok(Envelope::full(&ctx, "get", USERS_PATH)
        .entities(std::slice::from_ref(&user))
        .count(1))
}

/// List users, oldest first.
///
/// `limit` is 1–100 (default 10; larger values are capped at 100). A `cursor` is present
/// only when more users follow; pass it back to get the next page.
#[utoipa::path(
    get,
    path = "/{org}/{app}/users",
    tag = "users",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("limit" = Option<u32>, Query, description = "Page size, 1–100, default 10"),
        ("cursor" = Option<String>, Query, description = "Cursor from the previous page"),
    ),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "`entities`, `count`, `cursor` when more follow", body = UserEnvelope),
        (status = 400, description = "`illegal_argument`: bad `limit` or `cursor`", body = ErrorBody),
        (status = 401, description = "Missing, expired or wrong token", body = ErrorBody),
        (status = 404, description = "`organization_application_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn list_users(
    AdminCtx(ctx): AdminCtx,
    paging: Paging,
) -> Result<Envelope, ApiError> {
    let page = ctx
        .state
        .core
        .accounts
        .list_users(&ctx.app, paging.after, paging.limit)
        .await?;
    Ok(Envelope::full(&ctx, "get", USERS_PATH)
        .entities(&page.users)
        .count(page.users.len())
        .cursor(page.next.map(encode_cursor)))
}

/// Delete one user, with everything that belongs to them; their devices are disconnected.
#[utoipa::path(
    delete,
    path = "/{org}/{app}/users/{username}",
    tag = "users",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("username" = String, Path, description = "User ID"),
    ),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "The deleted user in `entities`", body = UserEnvelope),
        (status = 401, description = "Missing, expired or wrong token", body = ErrorBody),
        (status = 404, description = "`service_resource_not_found` or `organization_application_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn delete_user(AdminCtx(ctx): AdminCtx) -> Result<Envelope, ApiError> {
    let user = ctx
        .state
        .core
        .accounts
        .delete_user(&ctx.app, ctx.param("username"))
        .await?;
    Ok(Envelope::full(&ctx, "delete", USERS_PATH).entities(std::slice::from_ref(&user)))
}

/// Delete the app's `limit` earliest-created users (1–100, default 10).
///
/// A `cursor` is returned while users remain; repeat the call (with or without it) until it
/// is absent. Deletion always starts from the oldest remaining user, so the cursor carries
/// no position.
#[utoipa::path(
    delete,
    path = "/{org}/{app}/users",
    tag = "users",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("limit" = Option<u32>, Query, description = "How many to delete, 1–100, default 10"),
        ("cursor" = Option<String>, Query, description = "Cursor from the previous call (optional)"),
    ),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "Deleted users in `entities`; `cursor` while users remain", body = UserEnvelope),
        (status = 400, description = "`illegal_argument`: bad `limit` or `cursor`", body = ErrorBody),
        (status = 401, description = "Missing, expired or wrong token", body = ErrorBody),
        (status = 404, description = "`organization_application_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn delete_users(
    AdminCtx(ctx): AdminCtx,
    paging: Paging,
) -> Result<Envelope, ApiError> {
    ctx.limit(Group::BatchDelete)?;
    let accounts = &ctx.state.core.accounts;
    let users = accounts.delete_oldest_users(&ctx.app, paging.limit).await?;
    // One indexed row tells whether users remain.
    let remaining = accounts.list_users(&ctx.app, None, 1).await?;
    let cursor = (!remaining.users.is_empty()).then(|| encode_cursor(0));
    Ok(Envelope::full(&ctx, "delete", USERS_PATH)
        .entities(&users)
        .count(users.len())
        .cursor(cursor))
}

/// Set a user's password (no old password needed). Every token issued to the user before
/// stops working and their devices are disconnected. `POST` is accepted too.
#[utoipa::path(
    put,
    path = "/{org}/{app}/users/{username}/password",
    tag = "users",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("username" = String, Path, description = "User ID"),
    ),
    request_body = PasswordChange,
    security(("app_token" = [])),
    responses(
        (status = 200, description = "`action: set user password`", body = ActionResponse),
        (status = 400, description = "`illegal_argument` `newpassword is required`, `json_parse`", body = ErrorBody),
        (status = 401, description = "Missing, expired or wrong token", body = ErrorBody),
        (status = 404, description = "`entity_not_found` `User null not found`, or `organization_application_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn change_password(
    AdminCtx(ctx): AdminCtx,
    body: Result<JsonBody, ApiError>,
) -> Result<Envelope, ApiError> {
    let JsonBody(body) = body?;
    let empty = Map::new();
    let obj = match &body {
        Value::Object(obj) => obj,
        Value::Null => &empty,
        _ => {
            return Err(ApiError::illegal_argument(
                "request body must be a JSON object",
            ))
        }
    };
    let password = opt_str(obj, "newpassword")?
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::illegal_argument("newpassword is required"))?;
    ctx.state
        .core
        .accounts
        .change_password(&ctx.app, ctx.param("username"), &password)
        .await
        .map_err(|e| match e {
            CoreError::UserNotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "entity_not_found",
                "User null not found",
            )
            .with_exception("org.apache.usergrid.persistence.exceptions.EntityNotFoundException"),
            other => other.into(),
        })?;
    Ok(Envelope::minimal(&ctx, "set user password"))
}

/// Deactivate (ban) a user: their devices are disconnected, their tokens revoked, and
/// logins and token grants refused until activated.
#[utoipa::path(
    post,
    path = "/{org}/{app}/users/{username}/deactivate",
    tag = "users",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("username" = String, Path, description = "User ID"),
    ),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "`action: Deactivate user`, the user with `activated: false`", body = UserEnvelope),
        (status = 401, description = "Missing, expired or wrong token", body = ErrorBody),
        (status = 404, description = "`service_resource_not_found` or `organization_application_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn deactivate(AdminCtx(ctx): AdminCtx) -> Result<Envelope, ApiError> {
    let user = set_activated(&ctx, false).await?;
    Ok(Envelope::minimal(&ctx, "Deactivate user").entities(std::slice::from_ref(&user)))
}

/// Activate (unban) a user. Tokens revoked by the deactivation stay revoked.
#[utoipa::path(
    post,
    path = "/{org}/{app}/users/{username}/activate",
    tag = "users",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("username" = String, Path, description = "User ID"),
    ),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "`action: activate user`", body = ActionResponse),
        (status = 401, description = "Missing, expired or wrong token", body = ErrorBody),
        (status = 404, description = "`service_resource_not_found` or `organization_application_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn activate(AdminCtx(ctx): AdminCtx) -> Result<Envelope, ApiError> {
    set_activated(&ctx, true).await?;
    Ok(Envelope::minimal(&ctx, "activate user"))
}

async fn set_activated(ctx: &AppCtx, activated: bool) -> Result<User, ApiError> {
    Ok(ctx
        .state
        .core
        .accounts
        .set_activated(&ctx.app, ctx.param("username"), activated)
        .await?)
}

/// Update a user's push attributes: `nickname` (string, ≤ 100 characters, or `null` to
/// clear), `notification_display_style` (0 or 1), `notification_no_disturbing` (boolean),
/// `notification_no_disturbing_start` / `_end` (hour 0–23, string or number). The body
/// must contain at least one; the others keep their values.
#[utoipa::path(
    put,
    path = "/{org}/{app}/users/{username}",
    tag = "users",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
        ("username" = String, Path, description = "User ID"),
    ),
    request_body = NicknameUpdate,
    security(("app_token" = [])),
    responses(
        (status = 200, description = "The updated user in `entities`", body = UserEnvelope),
        (status = 400, description = "`illegal_argument` (`nickname is required` for a body with none of the fields, `NICKNAME_TOO_LONG`, a field out of range), `json_parse`", body = ErrorBody),
        (status = 401, description = "Missing, expired or wrong token", body = ErrorBody),
        (status = 404, description = "`service_resource_not_found` or `organization_application_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn update_user(
    AdminCtx(ctx): AdminCtx,
    body: Result<JsonBody, ApiError>,
) -> Result<Envelope, ApiError> {
    let JsonBody(body) = body?;
    let obj = body
        .as_object()
        .filter(|o| o.keys().any(|k| PROFILE_FIELDS.contains(&k.as_str())))
        .ok_or_else(|| ApiError::illegal_argument("nickname is required"))?;
    let nickname = if obj.contains_key("nickname") {
        Some(opt_str(obj, "nickname")?)
    } else {
        None
    };
    let push = push_settings(obj)?;
    let user = ctx
        .state
        .core
        .accounts
        .update_profile(&ctx.app, ctx.param("username"), nickname, push)
        .await?;
    Ok(Envelope::full(&ctx, "put", USERS_PATH).entities(std::slice::from_ref(&user)))
}

/// The fields `PUT /users/{username}` changes.
const PROFILE_FIELDS: [&str; 5] = [
    "nickname",
    "notification_display_style",
    "notification_no_disturbing",
    "notification_no_disturbing_start",
    "notification_no_disturbing_end",
];

/// The push preferences present in an update body, checked.
fn push_settings(obj: &Map<String, Value>) -> Result<PushSettings, ApiError> {
    let style = match obj.get("notification_display_style") {
        None | Some(Value::Null) => None,
        Some(v) => match v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        {
            Some(n @ 0..=1) => Some(n as u8),
            _ => {
                return Err(ApiError::illegal_argument(
                    "notification_display_style must be 0 or 1",
                ))
            }
        },
    };
    let no_disturbing = match obj.get("notification_no_disturbing") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(ApiError::illegal_argument(
                "notification_no_disturbing must be true or false",
            ))
        }
    };
    let hour = |field: &str| -> Result<Option<String>, ApiError> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            {
                Some(h @ 0..=23) => Ok(Some(h.to_string())),
                _ => Err(ApiError::illegal_argument(format!(
                    "{field} must be an hour from 0 to 23"
                ))),
            },
        }
    };
    Ok(PushSettings {
        notification_display_style: style,
        notification_no_disturbing: no_disturbing,
        notification_no_disturbing_start: hour("notification_no_disturbing_start")?,
        notification_no_disturbing_end: hour("notification_no_disturbing_end")?,
    })
}
