//! Extractors: resolve the app named in the path, check tokens, and read bodies and query
//! strings so that every failure already carries the Easemob error body.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::StatusCode;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use ferrim_core::app::{App, AppKey};
use ferrim_core::CoreError;
use serde_json::{Map, Value};

use super::limits::Group;
use super::{ApiError, RestState};

/// The app named by `/{org}/{app}/…`, resolved from the in-memory cache, plus what every
/// response envelope needs.
pub(crate) struct AppCtx {
    pub(crate) state: RestState,
    pub(crate) app: Arc<App>,
    /// The request path (no query string).
    pub(crate) path: String,
    pub(crate) started: Instant,
    authorization: Option<String>,
    params: Vec<(String, String)>,
}

impl AppCtx {
    /// A path parameter (percent-decoded), `""` if the route has none of that name.
    pub(crate) fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Sets a path parameter a literal route segment stands for.
    pub(crate) fn set_param(&mut self, name: &str, value: &str) {
        self.params.retain(|(k, _)| k != name);
        self.params.push((name.to_owned(), value.to_owned()));
    }

    /// The `Authorization` header value, if any.
    pub(crate) fn authorization(&self) -> Option<&str> {
        self.authorization.as_deref()
    }

    /// The bearer token, if the request carries one.
    pub(crate) fn bearer(&self) -> Option<&str> {
        let value = self.authorization()?.trim();
        let (scheme, token) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty())
    }

    /// Requires a valid app token of this app.
    pub(crate) fn require_app_token(&self) -> Result<(), ApiError> {
        let token = self.bearer().ok_or_else(ApiError::expired_token)?;
        self.state
            .core
            .accounts
            .authenticate_app(&self.app, token)
            .map(|_| ())
            .map_err(ApiError::from_auth)
    }

    /// Counts this request against the app's quota for `group`.
    pub(crate) fn limit(&self, group: Group) -> Result<(), ApiError> {
        self.state.limits.check(self.app.id, group)
    }

    /// The full request URL as clients see it (without query).
    pub(crate) fn uri(&self) -> String {
        format!("{}{}", self.state.core.public_url, self.path)
    }
}

impl FromRequestParts<RestState> for AppCtx {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &RestState,
    ) -> Result<Self, Self::Rejection> {
        let started = Instant::now();
        let path = parts.uri.path().to_owned();
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::illegal_argument("the path is not valid UTF-8"))?;
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let find = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map_or("", |(_, v)| v.as_str())
        };
        let (org, app) = (find("org"), find("app"));
        let not_found = || ApiError::app_not_found(org, app, &path);
        let key = AppKey::new(org, app).map_err(|_| not_found())?;
        let app = match state.core.accounts.app(&key).await {
            Ok(app) => app,
            Err(CoreError::AppNotFound) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        let authorization = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Self {
            state: state.clone(),
            app,
            path,
            started,
            authorization,
            params,
        })
    }
}

/// An [`AppCtx`] whose request carried a valid app token; counts against the user-system
/// quota.
pub(crate) struct AdminCtx(pub(crate) AppCtx);

impl FromRequestParts<RestState> for AdminCtx {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &RestState,
    ) -> Result<Self, Self::Rejection> {
        let ctx = AppCtx::from_request_parts(parts, state).await?;
        ctx.require_app_token()?;
        ctx.limit(Group::UserSystem)?;
        Ok(Self(ctx))
    }
}

/// Reads the body, mapping an oversize body to 413.
async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_entity_too_large",
                "Request body exceeds the maximum size",
            )
        } else {
            ApiError::illegal_argument("cannot read the request body")
        }
    })
}

/// Parses JSON text; an empty body is `Null`.
fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::json_parse(e.to_string()))
}

/// A JSON body, parsed whatever the declared `Content-Type` (Easemob's documented curl
/// examples send JSON as form data). Empty bodies are `Value::Null`.
pub(crate) struct JsonBody(pub(crate) Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(Self)
    }
}

/// The token endpoint's body: JSON, or `application/x-www-form-urlencoded` fields (values
/// stay strings). Always a JSON object.
pub(crate) struct TokenBody(pub(crate) Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for TokenBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        let bytes = body_bytes(req, state).await.map_err(ApiError::bare)?;
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        // curl -d '{"…"}' declares a form but sends JSON: JSON wins when it looks like JSON.
        if is_form && first.is_some_and(|b| *b != b'{') {
            let map = form_urlencoded::parse(&bytes)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect();
            return Ok(Self(map));
        }
        match parse_json(&bytes).map_err(ApiError::bare)? {
            Value::Object(map) => Ok(Self(map)),
            Value::Null => Ok(Self(Map::new())),
            _ => Err(ApiError::illegal_argument("request body must be a JSON object").bare()),
        }
    }
}

/// `limit` and `cursor` of paged lists; unknown parameters (such as the SDK's `_v`) are
/// ignored.
pub(crate) struct Paging {
    pub(crate) limit: u32,
    /// Position after which the page starts.
    pub(crate) after: Option<u64>,
}

/// Default and largest page size.
pub(crate) const DEFAULT_LIMIT: u32 = 10;
pub(crate) const MAX_LIMIT: u32 = 100;

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut paging = Self {
            limit: DEFAULT_LIMIT,
            after: None,
        };
        let query = parts.uri.query().unwrap_or("");
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "limit" => {
                    let n: i64 = value.trim().parse().map_err(|_| {
                        ApiError::illegal_argument("limit must be an integer between 1 and 100")
                    })?;
                    if n < 1 {
                        return Err(ApiError::illegal_argument(
                            "limit must be an integer between 1 and 100",
                        ));
                    }
                    paging.limit = n.min(i64::from(MAX_LIMIT)) as u32;
                }
                "cursor" if !value.is_empty() => {
                    paging.after = Some(decode_cursor(&value)?);
                }
                _ => {}
            }
        }
        Ok(paging)
    }
}

/// A cursor is the base64url text of a position, opaque to clients.
pub(crate) fn encode_cursor(position: u64) -> String {
    URL_SAFE_NO_PAD.encode(position.to_string())
}

fn decode_cursor(cursor: &str) -> Result<u64, ApiError> {
    let invalid = || ApiError::illegal_argument("cursor is not valid");
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .or_else(|_| URL_SAFE.decode(cursor.trim()))
        .map_err(|_| invalid())?;
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(invalid)
}

/// Reads an optional string field of a JSON object.
pub(crate) fn opt_str(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::illegal_argument(format!(
            "{field} must be a string"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(42)).unwrap(), 42);
        assert!(decode_cursor("!!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("abc")).is_err());
    }
}
