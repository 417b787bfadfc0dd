//! Easemob's REST error body: `{"error", "exception", "timestamp", "duration",
//! "error_description"}` with a fitting HTTP status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferrim_core::clock::now_ms;
use serde_json::json;

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

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            "internal server error",
        )
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
