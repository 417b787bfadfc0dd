//! `POST /{org}/{app}/token`: app tokens (`client_credentials`) and user tokens (`inherit`,
//! `password`). Errors here use the bare OAuth shape `{"error", "error_description"}`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ferrim_core::accounts::IssuedToken;
use ferrim_core::user::User;
use ferrim_core::CoreError;
use serde_json::{json, Map, Value};

use super::envelope::user_entity;
use super::extract::{opt_str, AppCtx, TokenBody};
use super::limits::Group;
use super::openapi::{ErrorBody, TokenRequest, TokenResponse};
use super::ApiError;

/// The client's address (the TCP peer; proxies' forwarding headers are not trusted).
pub(crate) struct ClientAddr(pub(crate) IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        Ok(Self(ip))
    }
}

/// Issue a token.
///
/// `grant_type` selects the flow: `client_credentials` (app token; `client_id` and
/// `client_secret` in the body or as `Authorization: Basic`), `inherit` (user token on the
/// app token's authority, optionally creating the user with `autoCreateUser`), or the
/// deprecated `password` (user token for a user ID and password; failed attempts throttled
/// per user and per client address). `ttl` is seconds as a number or numeric string; 0 =
/// never expires; absent = the app's `token_ttl_secs`. The body may be JSON or form-encoded.
#[utoipa::path(
    post,
    path = "/{org}/{app}/token",
    tag = "tokens",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
    ),
    request_body(content = TokenRequest, description = "Grant request (JSON or form-encoded)"),
    responses(
        (status = 200, description = "The token: `application` for client_credentials, `user` for inherit and password", body = TokenResponse),
        (status = 400, description = "`illegal_argument` (`client_id must be provided.`, `client_secret must be provided`, `ttl must be a number >= 0`, `username [X] is not legal`, `USERNAME_TOO_LONG`), `invalid_grant` (`client_id does not match`, `client_secret does not match`, `invalid password`, `user not activated`, `invalid username or password` for an unknown grant_type), `json_parse`", body = ErrorBody),
        (status = 401, description = "inherit: missing/expired app token (`unauthorized`) or a user/foreign/malformed token (`auth_bad_access_token`)", body = ErrorBody),
        (status = 404, description = "`invalid_grant` `user not found`, or `organization_application_not_found`", body = ErrorBody),
        (status = 413, description = "Body larger than max_body_bytes", body = ErrorBody),
        (status = 429, description = "`reach_limit`: password-grant throttling or the per-app token quota", body = ErrorBody),
    )
)]
pub(crate) async fn token(
    ctx: Result<AppCtx, ApiError>,
    ClientAddr(client): ClientAddr,
    body: Result<TokenBody, ApiError>,
) -> Result<Response, ApiError> {
    let ctx = ctx.map_err(ApiError::bare)?;
    ctx.limit(Group::Token).map_err(ApiError::bare)?;
    let TokenBody(body) = body.map_err(ApiError::bare)?;
    let grant = opt_str(&body, "grant_type").map_err(ApiError::bare)?;
    let result = match grant.as_deref() {
        Some("client_credentials") => client_credentials(&ctx, &body),
        Some("inherit") => inherit(&ctx, &body).await,
        Some("password") => password(&ctx, &body, client).await,
        _ => Err(ApiError::bad_request(
            "invalid_grant",
            "invalid username or password",
        )),
    };
    result.map_err(ApiError::bare)
}

fn client_credentials(ctx: &AppCtx, body: &Map<String, Value>) -> Result<Response, ApiError> {
    let (mut id, mut secret) = (opt_str(body, "client_id")?, opt_str(body, "client_secret")?);
    if let Some((basic_id, basic_secret)) = basic_credentials(ctx.authorization()) {
        id.get_or_insert(basic_id);
        secret.get_or_insert(basic_secret);
    }
    let id = id
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::illegal_argument("client_id must be provided."))?;
    let secret = secret
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::illegal_argument("client_secret must be provided"))?;
    let ttl = ttl(body)?;
    let issued = ctx
        .state
        .core
        .accounts
        .issue_app_token(&ctx.app, &id, &secret, ttl)?;
    metrics::counter!("ferrim_tokens_issued_total", "kind" => "app").increment(1);
    Ok(Json(json!({
        "access_token": issued.token,
        "expires_in": issued.expires_in_secs,
        "application": ctx.app.id.to_string(),
    }))
    .into_response())
}

async fn inherit(ctx: &AppCtx, body: &Map<String, Value>) -> Result<Response, ApiError> {
    ctx.require_app_token()?;
    let username = required_str(body, "username")?;
    let auto_create = match body.get("autoCreateUser") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            return Err(ApiError::illegal_argument(
                "autoCreateUser must be a boolean",
            ))
        }
    };
    let ttl = ttl(body)?;
    let (issued, user) = ctx
        .state
        .core
        .accounts
        .token_inherit(&ctx.app, &username, auto_create, ttl)
        .await
        .map_err(grant_error)?;
    Ok(user_token(issued, &user))
}

async fn password(
    ctx: &AppCtx,
    body: &Map<String, Value>,
    client: IpAddr,
) -> Result<Response, ApiError> {
    let username = required_str(body, "username")?;
    let password = required_str(body, "password")?;
    let ttl = ttl(body)?;
    let (issued, user) = ctx
        .state
        .core
        .accounts
        .token_password(&ctx.app, &username, &password, ttl, client)
        .await
        .map_err(grant_error)?;
    Ok(user_token(issued, &user))
}

fn user_token(issued: IssuedToken, user: &User) -> Response {
    metrics::counter!("ferrim_tokens_issued_total", "kind" => "user").increment(1);
    Json(json!({
        "access_token": issued.token,
        "expires_in": issued.expires_in_secs,
        "user": user_entity(user),
    }))
    .into_response()
}

/// The user-token grants' documented texts.
fn grant_error(err: CoreError) -> ApiError {
    match err {
        CoreError::UserNotFound => {
            ApiError::new(StatusCode::NOT_FOUND, "invalid_grant", "user not found")
        }
        CoreError::InvalidUsername(name) => {
            ApiError::illegal_argument(format!("username [{name}] is not legal"))
        }
        other => other.into(),
    }
}

fn required_str(body: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    opt_str(body, field)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::illegal_argument(format!("{field} must be provided")))
}

/// `ttl` as a JSON number or a numeric string, in seconds; absent = the app's default.
fn ttl(body: &Map<String, Value>) -> Result<Option<u64>, ApiError> {
    let invalid = || ApiError::illegal_argument("ttl must be a number >= 0");
    match body.get("ttl") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(invalid),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| invalid()),
        Some(_) => Err(invalid()),
    }
}

/// `Authorization: Basic base64(client_id:client_secret)`.
fn basic_credentials(header: Option<&str>) -> Option<(String, String)> {
    let (scheme, b64) = header?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_accepts_numbers_and_numeric_strings_only() {
        let body = |v: Value| json!({ "ttl": v }).as_object().cloned().unwrap_or_default();
        assert_eq!(ttl(&body(json!(5))).unwrap(), Some(5));
        assert_eq!(ttl(&body(json!("7"))).unwrap(), Some(7));
        assert_eq!(ttl(&body(json!(0))).unwrap(), Some(0));
        assert_eq!(ttl(&Map::new()).unwrap(), None);
        for bad in [json!(-1), json!(1.5), json!("x"), json!(true), json!([1])] {
            assert!(ttl(&body(bad)).is_err());
        }
    }

    #[test]
    fn basic_credentials_are_decoded() {
        let header = format!("Basic {}", STANDARD.encode("id:sec:ret"));
        assert_eq!(
            basic_credentials(Some(&header)),
            Some(("id".into(), "sec:ret".into()))
        );
        assert_eq!(basic_credentials(Some("Bearer x")), None);
        assert_eq!(basic_credentials(Some("Basic !!!")), None);
    }
}
