//! The OpenAPI 3 document, generated from the handlers' annotations and served at
//! `/openapi.json`. The types here only describe bodies; handlers build JSON directly.

#![allow(dead_code)] // fields are read by the schema derive only

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The generated document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ferrim REST API",
        description = "Easemob-compatible REST API for apps, tokens and users, plus ferrim's own extensions (tag `ferrim`). See docs/rest-api.md.",
        license(name = "Apache-2.0"),
    ),
    paths(
        super::tokens::token,
        super::users::register,
        super::users::list_users,
        super::users::delete_users,
        super::users::get_user,
        super::users::update_user,
        super::users::delete_user,
        super::users::change_password,
        super::users::deactivate,
        super::users::activate,
        super::status::disconnect_all,
        super::status::disconnect_resource,
        super::status::resources,
        super::status::status,
        super::status::batch_status,
        super::status::offline_msg_count,
        super::status::offline_msg_status,
        super::sdk::token_expires,
        super::messages::send,
        super::messages::history,
        super::messages::conversations,
        super::messages::delete_conversation,
        super::messages::delete_history_before,
        super::messages::delete_history_messages,
        super::settings::app_overview,
        super::settings::get_settings,
        super::settings::put_settings,
        stats_doc,
        metrics_doc,
        openapi_doc,
    ),
    modifiers(&Security),
    tags(
        (name = "tokens", description = "App and user tokens"),
        (name = "users", description = "Registration and user management"),
        (name = "devices", description = "Online status, devices, forced logout, offline messages"),
        (name = "messages", description = "One-to-one messages: REST send, history, conversations"),
        (name = "sdk", description = "Endpoints the client SDKs call with a user token"),
        (name = "ferrim", description = "ferrim extensions (not part of Easemob's API)"),
        (name = "ops", description = "Operations: metrics and this document"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |desc: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(desc))
                    .build(),
            )
        };
        components.add_security_scheme(
            "app_token",
            bearer("App token from grant_type=client_credentials"),
        );
        components.add_security_scheme(
            "user_token",
            bearer("User token (inherit/password grant, or a dynamic `dt-` token)"),
        );
    }
}

/// The document as pretty JSON (what `/openapi.json` serves and docs/openapi.json holds).
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".into())
}

/// `GET /openapi.json`.
pub(crate) async fn serve() -> Response {
    ([(CONTENT_TYPE, "application/json")], document()).into_response()
}

/// Live figures of this server for the console (ferrim extension): `data` holds
/// `online_users`, `connections`, `logins_per_min`, `messages_per_min`, `logins_total`,
/// `messages_total` and `scope` (`node`: counts are this process's, all apps).
#[utoipa::path(get, path = "/{org}/{app}/stats", tag = "ferrim",
    params(
        ("org" = String, Path, description = "Organization name"),
        ("app" = String, Path, description = "App name"),
    ),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "Figures in `data`", body = DataEnvelope),
        (status = 401, description = "Missing, expired or wrong token", body = ErrorBody),
        (status = 404, description = "`organization_application_not_found`", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn stats_doc() {}

/// Prometheus metrics (text exposition format): `ferrim_http_requests_total{route,method,status}`,
/// `ferrim_http_request_duration_seconds{route}`, `ferrim_tokens_issued_total{kind}`,
/// `ferrim_users_registered_total`.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
#[allow(dead_code)]
fn metrics_doc() {}

/// This OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops",
    responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json")))]
#[allow(dead_code)]
fn openapi_doc() {}

/// Easemob's error body. The token endpoint sends only `error` and `error_description`.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// Error type, e.g. `illegal_argument`, `unauthorized`, `service_resource_not_found`.
    error: String,
    /// Human-readable text.
    error_description: String,
    /// Server exception class (some errors only).
    exception: Option<String>,
    /// Unix ms.
    timestamp: Option<u64>,
    duration: Option<u64>,
}

/// Body of `POST /{org}/{app}/token`.
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenRequest {
    /// `client_credentials`, `inherit` or `password`.
    grant_type: String,
    /// client_credentials.
    client_id: Option<String>,
    /// client_credentials.
    client_secret: Option<String>,
    /// inherit, password.
    username: Option<String>,
    /// password.
    password: Option<String>,
    /// inherit: create the user (password-less) when missing. Default false.
    #[serde(rename = "autoCreateUser")]
    auto_create_user: Option<bool>,
    /// Seconds, as a number or numeric string; 0 = never expires.
    ttl: Option<u64>,
}

/// A token response.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum TokenResponse {
    App(AppTokenResponse),
    User(UserTokenResponse),
}

/// client_credentials response.
#[derive(Serialize, ToSchema)]
pub(crate) struct AppTokenResponse {
    access_token: String,
    /// Seconds; 0 for tokens that never expire.
    expires_in: u64,
    /// App UUID.
    application: String,
}

/// inherit / password response.
#[derive(Serialize, ToSchema)]
pub(crate) struct UserTokenResponse {
    access_token: String,
    /// Seconds; 0 for tokens that never expire.
    expires_in: u64,
    user: UserEntity,
}

/// A user as rendered in `entities` and token responses.
#[derive(Serialize, ToSchema)]
pub(crate) struct UserEntity {
    uuid: String,
    /// Always `user`.
    #[serde(rename = "type")]
    kind: String,
    /// Unix ms.
    created: u64,
    /// Unix ms.
    modified: u64,
    /// Lowercase user ID.
    username: String,
    activated: bool,
    /// Only when set.
    nickname: Option<String>,
}

/// One user to register.
#[derive(Serialize, ToSchema)]
pub(crate) struct NewUser {
    /// 1–64 bytes of `A-Z a-z 0-9 _ - .`; stored lowercase.
    username: String,
    /// 1–64 characters.
    password: String,
    /// Push nickname, ≤ 100 characters.
    nickname: Option<String>,
}

/// A batch registration failure.
#[derive(Serialize, ToSchema)]
pub(crate) struct RegisterFailure {
    username: String,
    /// `the {username} already exists`.
    #[serde(rename = "registerUserFailReason")]
    reason: String,
}

/// The standard success envelope with user entities.
#[derive(Serialize, ToSchema)]
pub(crate) struct UserEnvelope {
    action: String,
    /// App UUID.
    application: Option<String>,
    path: Option<String>,
    uri: Option<String>,
    entities: Vec<UserEntity>,
    /// Batch registration only: failures.
    data: Option<Vec<RegisterFailure>>,
    timestamp: u64,
    duration: u64,
    organization: Option<String>,
    #[serde(rename = "applicationName")]
    application_name: Option<String>,
    count: Option<u64>,
    /// Present only when more users follow.
    cursor: Option<String>,
}

/// An envelope with only `action`, `timestamp` and `duration`.
#[derive(Serialize, ToSchema)]
pub(crate) struct ActionResponse {
    action: String,
    timestamp: u64,
    duration: u64,
}

/// An envelope whose result is in `data`.
#[derive(Serialize, ToSchema)]
pub(crate) struct DataEnvelope {
    action: String,
    uri: Option<String>,
    entities: Option<Vec<UserEntity>>,
    /// `{"result": bool}`, `{name: "online"|"offline"}`, `[{name: status}]`, `{name: count}`
    /// or `{msg_id: "delivered"|"undelivered"}`.
    #[schema(value_type = Object)]
    data: serde_json::Value,
    timestamp: u64,
    duration: u64,
    count: Option<u64>,
}

/// One online device.
#[derive(Serialize, ToSchema)]
pub(crate) struct Resource {
    /// Resource ID.
    res: String,
    device_uuid: String,
    device_name: String,
}

/// The resources envelope.
#[derive(Serialize, ToSchema)]
pub(crate) struct ResourcesEnvelope {
    action: String,
    application: String,
    path: String,
    uri: String,
    entities: Vec<UserEntity>,
    data: Vec<Resource>,
    timestamp: u64,
    duration: u64,
    organization: String,
    #[serde(rename = "applicationName")]
    application_name: String,
}

/// Body of the password change.
#[derive(Serialize, ToSchema)]
pub(crate) struct PasswordChange {
    /// 1–64 characters.
    newpassword: String,
}

/// Body of the push attribute update.
#[derive(Serialize, ToSchema)]
pub(crate) struct NicknameUpdate {
    /// ≤ 100 characters; null clears it.
    nickname: Option<String>,
    /// 0 = notification only, 1 = with the message's details.
    notification_display_style: Option<u8>,
    /// Do-not-disturb on or off.
    notification_no_disturbing: Option<bool>,
    /// Do-not-disturb start hour, 0–23.
    notification_no_disturbing_start: Option<String>,
    /// Do-not-disturb end hour, 0–23.
    notification_no_disturbing_end: Option<String>,
}

/// Body of the batch status request.
#[derive(Serialize, ToSchema)]
pub(crate) struct BatchStatusRequest {
    /// At most 100 user IDs.
    usernames: Vec<String>,
}

/// renewToken response.
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenExpiry {
    /// Unix ms; 4102444800000 (year 2100) for tokens that never expire.
    expire_timestamp: u64,
}

/// An app's settings (ferrim extension).
#[derive(Serialize, ToSchema)]
pub(crate) struct AppSettingsDoc {
    /// `open` (anyone may register one user without a token) or `authorized` (default).
    registration_mode: String,
    /// Default token lifetime in seconds (0 = never expires); default 5184000 (60 days).
    token_ttl_secs: u64,
    /// Devices online at once per platform (1–100), default 4.
    device_cap_per_platform: u32,
    /// Per-platform exceptions (0–100; 0 refuses that platform's logins with 214), by
    /// platform name: `web`, `mobile`, `desktop`, `linux`, `custom1` … `custom100`.
    device_caps: std::collections::BTreeMap<String, u32>,
    /// `kick_earliest` (default) or `refuse_newcomer`.
    kick_policy: String,
    /// Offline messages kept per user (1–100000), default 500.
    offline_keep_count: u32,
    /// Days offline messages are kept (1–3650), default 7.
    offline_keep_days: u32,
}

/// A partial settings update: any subset of the settings' fields.
#[derive(Serialize, ToSchema)]
pub(crate) struct AppSettingsPatch {
    registration_mode: Option<String>,
    token_ttl_secs: Option<u64>,
    device_cap_per_platform: Option<u32>,
    /// Replaces the whole map.
    device_caps: Option<std::collections::BTreeMap<String, u32>>,
    kick_policy: Option<String>,
    offline_keep_count: Option<u32>,
    offline_keep_days: Option<u32>,
}

/// The settings envelope.
#[derive(Serialize, ToSchema)]
pub(crate) struct SettingsEnvelope {
    action: String,
    application: String,
    path: String,
    uri: String,
    data: AppSettingsDoc,
    timestamp: u64,
    duration: u64,
    organization: String,
    #[serde(rename = "applicationName")]
    application_name: String,
}

/// The app overview (ferrim extension).
#[derive(Serialize, ToSchema)]
pub(crate) struct AppOverview {
    /// `org#app`.
    #[serde(rename = "appKey")]
    app_key: String,
    #[serde(rename = "orgName")]
    org_name: String,
    #[serde(rename = "appName")]
    app_name: String,
    /// App UUID.
    application: String,
    client_id: String,
    /// Unix ms.
    created: u64,
    /// REST base URL.
    rest_url: String,
    /// msync WebSocket URL.
    ws_url: String,
}

/// The overview envelope.
#[derive(Serialize, ToSchema)]
pub(crate) struct AppOverviewEnvelope {
    action: String,
    application: String,
    uri: String,
    data: AppOverview,
    timestamp: u64,
    duration: u64,
    organization: String,
    #[serde(rename = "applicationName")]
    application_name: String,
}
