//! ferrim's own extensions for the console: the app overview and the app's settings.

use ferrim_core::app::AppSettings;
use serde_json::{json, Value};

use super::envelope::Envelope;
use super::extract::{AdminCtx, JsonBody};
use super::openapi::{AppOverviewEnvelope, AppSettingsPatch, ErrorBody, SettingsEnvelope};
use super::ApiError;

fn settings_json(settings: &AppSettings) -> Result<Value, ApiError> {
    serde_json::to_value(settings).map_err(|e| {
        tracing::error!(error.message = %e, "cannot serialize app settings");
        ApiError::internal()
    })
}

/// The app's settings (ferrim extension).
#[utoipa::path(
    get,
    path = "/{org}/{app}/settings",
    tag = "ferrim",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
    ),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "Settings in `data`", body = SettingsEnvelope),
        (status = 401, description = "Missing, expired or wrong token", body = ErrorBody),
        (status = 404, description = "`organization_application_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn get_settings(AdminCtx(ctx): AdminCtx) -> Result<Envelope, ApiError> {
    let data = settings_json(&ctx.app.settings)?;
    Ok(Envelope::full(&ctx, "get", "/settings").data(data))
}

/// Change some of the app's settings (ferrim extension). Fields left out keep their value;
/// unknown fields are refused. Effective for the next request or login; a new token TTL
/// applies to tokens issued afterwards.
#[utoipa::path(
    put,
    path = "/{org}/{app}/settings",
    tag = "ferrim",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
    ),
    request_body = AppSettingsPatch,
    security(("app_token" = [])),
    responses(
        (status = 200, description = "The new settings in `data`", body = SettingsEnvelope),
        (status = 400, description = "`illegal_argument` (unknown field, wrong type, out of range), `json_parse`", body = ErrorBody),
        (status = 401, description = "Missing, expired or wrong token", body = ErrorBody),
        (status = 404, description = "`organization_application_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn put_settings(
    AdminCtx(ctx): AdminCtx,
    body: Result<JsonBody, ApiError>,
) -> Result<Envelope, ApiError> {
    let JsonBody(body) = body?;
    let patch = body
        .as_object()
        .ok_or_else(|| ApiError::illegal_argument("request body must be a JSON object"))?;
    let mut merged = settings_json(&ctx.app.settings)?;
    let Some(current) = merged.as_object_mut() else {
        return Err(ApiError::internal());
    };
    for (key, value) in patch {
        if !current.contains_key(key) {
            let known: Vec<&str> = current.keys().map(String::as_str).collect();
            return Err(ApiError::illegal_argument(format!(
                "unknown setting {key}; known settings: {}",
                known.join(", ")
            )));
        }
        current.insert(key.clone(), value.clone());
    }
    let settings: AppSettings = serde_json::from_value(merged)
        .map_err(|e| ApiError::illegal_argument(format!("invalid settings: {e}")))?;
    let app = ctx
        .state
        .core
        .accounts
        .update_settings(&ctx.app, settings)
        .await?;
    let data = settings_json(&app.settings)?;
    Ok(Envelope::full(&ctx, "put", "/settings").data(data))
}

/// The app overview for the console (ferrim extension): appKey, client ID and the URLs
/// clients use. The client secret is never returned.
#[utoipa::path(
    get,
    path = "/{org}/{app}",
    tag = "ferrim",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
    ),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "Overview in `data`", body = AppOverviewEnvelope),
        (status = 401, description = "Missing, expired or wrong token", body = ErrorBody),
        (status = 404, description = "`organization_application_not_found`", body = ErrorBody),
    )
)]
pub(crate) async fn app_overview(AdminCtx(ctx): AdminCtx) -> Result<Envelope, ApiError> {
    let rest_url = ctx.state.core.public_url.to_string();
    let data = json!({
        "appKey": ctx.app.key.to_string(),
        "orgName": ctx.app.key.org(),
        "appName": ctx.app.key.app(),
        "application": ctx.app.id.to_string(),
        "client_id": ctx.app.client_id,
        "created": ctx.app.created_ms,
        "rest_url": rest_url,
        "ws_url": ws_url(&rest_url),
    });
    Ok(Envelope::full(&ctx, "get", "/").data(data))
}

/// The msync URL for a REST base URL.
pub(crate) fn ws_url(base: &str) -> String {
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{ws}/ws")
}
