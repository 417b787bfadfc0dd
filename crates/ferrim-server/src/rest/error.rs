//! Easemob's REST error body: `{"error", "exception", "timestamp", "duration",
//! "error_description"}` with a fitting HTTP status, and the one mapping from domain errors
//! to it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferrim_core::clock::now_ms;
use ferrim_core::token::TokenError;
use ferrim_core::CoreError;
use serde_json::json;

/// Description of 401s for a missing or expired token.
pub(crate) const EXPIRED_TOKEN: &str = "Unable to authenticate due to expired access token";
/// Description of 401s for a malformed token, a user token on an admin API, or another
/// app's token.
pub(crate) const CORRUPT_TOKEN: &str = "Unable to authenticate due to corrupt access token";
/// Description of 401s for a well-formed token this server did not sign.
pub(crate) const UNKNOWN_TOKEN: &str = "Unable to authenticate";
/// Description of 401s for a user token that was revoked or whose user is gone.
pub(crate) const OAUTH_FAILED: &str = "Unable to authenticate (OAuth)";

/// A REST error as the client sees it.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    /// Easemob's exception class, when it documents one.
    pub exception: Option<&'static str>,
    /// The token endpoint answers in the bare OAuth shape (`error`, `error_description`).
    pub bare: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            exception: None,
            bare: false,
        }
    }

    pub fn with_exception(mut self, exception: &'static str) -> Self {
        self.exception = Some(exception);
        self
    }

    pub fn bare(mut self) -> Self {
        self.bare = true;
        self
    }

    pub fn bad_request(error: &'static str, description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, description)
    }

    pub fn illegal_argument(description: impl Into<String>) -> Self {
        Self::bad_request("illegal_argument", description)
    }

    /// Malformed JSON, with the parser's message.
    pub fn json_parse(description: impl Into<String>) -> Self {
        Self::bad_request("json_parse", description)
            .with_exception("org.codehaus.jackson.JsonParseException")
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            "internal server error",
        )
    }

    pub fn unauthorized(error: &'static str, description: &'static str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, error, description)
    }

    /// No token, or an expired one.
    pub fn expired_token() -> Self {
        Self::unauthorized("unauthorized", EXPIRED_TOKEN)
    }

    /// A token that may not be used here.
    pub fn corrupt_token() -> Self {
        Self::unauthorized("auth_bad_access_token", CORRUPT_TOKEN)
    }

    /// `{org}/{app}` names no app. `uri` is the request path.
    pub fn app_not_found(org: &str, app: &str, uri: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "organization_application_not_found",
            format!(
                "Could not find application for {org}/{app} from URI: {}",
                uri.trim_start_matches('/')
            ),
        )
    }

    /// A user named in the path does not exist.
    pub fn user_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "service_resource_not_found",
            "Service resource not found",
        )
        .with_exception("org.apache.usergrid.services.exceptions.ServiceResourceNotFoundException")
    }

    /// The per-app request rate was exceeded.
    pub fn reach_limit() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "reach_limit",
            "This request has reached api limit",
        )
    }

    /// Maps a failed token check to its 401.
    pub fn from_auth(err: CoreError) -> Self {
        match err {
            CoreError::Token(TokenError::Expired) => Self::expired_token(),
            CoreError::Token(TokenError::Malformed) | CoreError::WrongTokenKind => {
                Self::corrupt_token()
            }
            CoreError::Token(TokenError::BadSignature | TokenError::IssuedInFuture) => {
                Self::unauthorized("auth_bad_access_token", UNKNOWN_TOKEN)
            }
            CoreError::Token(TokenError::Revoked)
            | CoreError::UserNotFound
            | CoreError::UserNotActivated => Self::unauthorized("unauthorized", OAUTH_FAILED),
            other => Self::from(other),
        }
    }
}

impl From<CoreError> for ApiError {
    /// The general mapping; endpoints with documented exceptions (token grants, password
    /// change) map those cases before falling back to this.
    fn from(err: CoreError) -> Self {
        match err {
            CoreError::InvalidAppKey(_) | CoreError::AppNotFound => Self::new(
                StatusCode::NOT_FOUND,
                "organization_application_not_found",
                "Could not find application",
            ),
            CoreError::AppExists => Self::bad_request(
                "duplicate_unique_property_exists",
                "application already exists",
            ),
            CoreError::InvalidSetting(text) => Self::illegal_argument(text),
            CoreError::InvalidUsername(name) => {
                Self::illegal_argument(format!("username {name} is not legal"))
            }
            CoreError::UsernameTooLong => Self::illegal_argument("USERNAME_TOO_LONG"),
            CoreError::PasswordMissing => Self::illegal_argument("password or pin must provided"),
            CoreError::PasswordTooLong => {
                Self::illegal_argument("PASSWORD_TOO_LONG: at most 64 characters")
            }
            CoreError::NicknameTooLong => Self::illegal_argument("NICKNAME_TOO_LONG"),
            CoreError::UserExists(name) => Self::bad_request(
                "duplicate_unique_property_exists",
                format!(
                    "Application null Entity user requires that property named username be unique, value of {name} exists"
                ),
            )
            .with_exception(
                "org.apache.usergrid.persistence.exceptions.DuplicateUniquePropertyExistsException",
            ),
            CoreError::ConflictingDuplicate { username } => Self::bad_request(
                "duplicate_unique_property_exists",
                format!("the same user {username} has a different password"),
            ),
            CoreError::BatchTooLarge { size, max } => Self::illegal_argument(format!(
                "Request body array size[{size}] had almost reached or been greater than the upper range value[{max}]"
            )),
            CoreError::UserNotFound => Self::user_not_found(),
            CoreError::UserNotActivated => Self::bad_request("invalid_grant", "user not activated"),
            CoreError::ClientIdMismatch => {
                Self::bad_request("invalid_grant", "client_id does not match")
            }
            CoreError::ClientSecretMismatch => {
                Self::bad_request("invalid_grant", "client_secret does not match")
            }
            CoreError::InvalidPassword => Self::bad_request("invalid_grant", "invalid password"),
            CoreError::Throttled => Self::reach_limit(),
            CoreError::Busy => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "Server is busy",
            ),
            CoreError::Token(_) | CoreError::WrongTokenKind => Self::from_auth(err),
            CoreError::Store(e) => {
                tracing::error!(error.cause_chain = ?e, error.message = %e, "store failure");
                Self::internal()
            }
            CoreError::Internal(text) => {
                tracing::error!(error.message = %text, "internal failure");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = if self.bare {
            json!({ "error": self.error, "error_description": self.description })
        } else {
            let mut body = json!({
                "error": self.error,
                "timestamp": now_ms(),
                "duration": 0,
                "error_description": self.description,
            });
            if let Some(exception) = self.exception {
                body["exception"] = exception.into();
            }
            body
        };
        (self.status, Json(body)).into_response()
    }
}
