//! PROVISION: the login (spec §3). The first frame of every connection; the reply's status
//! decides what the SDK reports (spec §6.1), and a refused login is followed by a close.

use std::time::Instant;

use ferrim_core::accounts::AuthenticatedUser;
use ferrim_core::app::{App, AppKey};
use ferrim_core::clock::now_ms;
use ferrim_core::presence::AdmitError;
use ferrim_core::sessions::{DeviceInfo, Platform, SessionHandle};
use ferrim_core::token::TokenError;
use ferrim_core::user::Username;
use ferrim_core::CoreError;
use ferrim_proto::pb::status::ErrorCode;
use ferrim_proto::pb::{MSync, Provision};
use ferrim_proto::Message;
use std::sync::Arc;

use crate::gateway::connection::{Close, Overflow};
use crate::gateway::frames;
use crate::gateway::inbox::InboxState;
use crate::gateway::session::{Flow, LoggedIn, Session};
use crate::messages::is_device_resource;
use crate::state::AppState;

/// Longest login extension (`loginInfoCustomExt`), in characters, as the SDK enforces.
const MAX_LOGIN_EXT_CHARS: usize = 1024;
/// Device UUID and name are informational; longer values are cut to this many characters.
const MAX_DEVICE_FIELD_CHARS: usize = 128;
/// `Provision.osType` OS_CUSTOM: the platform is `osCustomValue` (1–100).
const OS_CUSTOM: i32 = 5;
/// `Provision.osType` OS_OTHER: what every web instance sends.
const OS_OTHER: i32 = 16;

/// Why a login was refused, and how the SDK is told (spec §6.1, §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The frame is not a usable login (WRONG_PARAMETER → SDK −3 "Invalid parameter").
    BadRequest(&'static str),
    /// No such app (FAIL with an unlisted reason → SDK 2 "Auth failed").
    AppNotFound,
    /// Wrong, forged, revoked or another user's token → SDK 28.
    InvalidToken,
    /// → SDK 56.
    TokenExpired,
    /// → SDK 204.
    UserNotFound,
    /// Deactivated (banned) user. The Web SDK has no code for it; FAIL with a readable
    /// reason gives type 2 "Auth failed" (not retried), and keeps the reason for older SDKs.
    Deactivated,
    /// The platform is full under the refuse policy → SDK 214.
    TooManyDevices,
    /// Storage or the cluster failed. Answered by closing the socket without a reply: the
    /// SDK sees a dropped connection (type 16) and retries the login up to three times,
    /// where any Provision error would be final (spec §3.1 step 8).
    Internal,
}

impl Refusal {
    pub(crate) fn status(self) -> (ErrorCode, &'static str) {
        match self {
            Refusal::BadRequest(reason) => (ErrorCode::WrongParameter, reason),
            Refusal::AppNotFound => (ErrorCode::Fail, "Sorry, app not found"),
            Refusal::InvalidToken => (
                ErrorCode::Fail,
                "Sorry, token or password does not match login info",
            ),
            Refusal::TokenExpired => (ErrorCode::Fail, "Sorry, token expired"),
            Refusal::UserNotFound => (ErrorCode::Fail, "Sorry, user not found"),
            Refusal::Deactivated => (ErrorCode::Fail, "Sorry, user is deactivated"),
            Refusal::TooManyDevices => (ErrorCode::TooManyDevices, "too many devices"),
            // Not sent (see `refusal_reply`); kept for completeness of the mapping.
            Refusal::Internal => (ErrorCode::Fail, "Sorry, internal server error"),
        }
    }

    /// The `result` label of `ferrim_logins_total`.
    fn label(self) -> &'static str {
        match self {
            Refusal::BadRequest(_) => "bad_request",
            Refusal::AppNotFound => "app_not_found",
            Refusal::InvalidToken => "invalid_token",
            Refusal::TokenExpired => "token_expired",
            Refusal::UserNotFound => "user_not_found",
            Refusal::Deactivated => "deactivated",
            Refusal::TooManyDevices => "too_many_devices",
            Refusal::Internal => "internal",
        }
    }
}

fn refusal_of(e: CoreError) -> Refusal {
    match e {
        CoreError::Token(TokenError::Expired) => Refusal::TokenExpired,
        CoreError::Token(_) | CoreError::WrongTokenKind => Refusal::InvalidToken,
        CoreError::UserNotFound | CoreError::InvalidUsername(_) | CoreError::UsernameTooLong => {
            Refusal::UserNotFound
        }
        CoreError::UserNotActivated => Refusal::Deactivated,
        CoreError::AppNotFound | CoreError::InvalidAppKey(_) => Refusal::AppNotFound,
        other => {
            tracing::error!(error = %other, "login failed");
            Refusal::Internal
        }
    }
}

/// What a PROVISION frame says, validated.
#[derive(Debug)]
struct LoginRequest {
    app_key: AppKey,
    username: String,
    token: String,
    resource: String,
    platform: Platform,
    device_uuid: String,
    device_name: String,
    ext: Option<String>,
}

impl LoginRequest {
    fn parse(frame: MSync) -> Result<Self, Refusal> {
        let provision = Provision::decode(frame.payload.as_deref().unwrap_or_default())
            .map_err(|_| Refusal::BadRequest("undecodable Provision"))?;
        let guid = frame.guid.ok_or(Refusal::BadRequest("missing guid"))?;
        let app_key = AppKey::parse(guid.app_key.as_deref().unwrap_or_default())
            .map_err(|_| Refusal::BadRequest("invalid appKey"))?;
        let username = guid
            .name
            .filter(|n| !n.is_empty())
            .ok_or(Refusal::BadRequest("missing user name"))?;
        // Without a token there is nothing that could match: the SDK's 28.
        let token = token_of(frame.auth.as_deref(), provision.auth_token.as_deref())
            .ok_or(Refusal::InvalidToken)?;
        let resource = [provision.resource.clone(), guid.client_resource]
            .into_iter()
            .flatten()
            .find(|r| !r.is_empty())
            .unwrap_or_else(|| format!("ferrim_{}", frames::fresh_id()));
        if !is_device_resource(&resource) {
            return Err(Refusal::BadRequest("invalid resource"));
        }
        let os_type = provision.os_type.unwrap_or(OS_OTHER);
        let custom = match (os_type, provision.os_custom_value) {
            (OS_CUSTOM, Some(n @ 1..=100)) => Some(n),
            (OS_CUSTOM, Some(_)) => return Err(Refusal::BadRequest("invalid osCustomValue")),
            _ => None,
        };
        let ext = provision.reason.filter(|r| !r.is_empty());
        if ext
            .as_ref()
            .is_some_and(|e| e.chars().count() > MAX_LOGIN_EXT_CHARS)
        {
            return Err(Refusal::BadRequest("login extension too long"));
        }
        Ok(Self {
            app_key,
            username,
            token,
            platform: Platform::from_os_type(os_type, custom),
            device_uuid: truncate(provision.device_uuid.unwrap_or_default()),
            device_name: truncate(provision.device_name.unwrap_or_default()),
            resource,
            ext,
        })
    }
}

/// The token from `MSync.auth` (`$t$<token>`), else from `Provision.authToken`
/// (`{"token":"$t$<token>"}`).
fn token_of(auth: Option<&str>, auth_token_json: Option<&str>) -> Option<String> {
    let strip = |t: &str| t.strip_prefix("$t$").unwrap_or(t).to_owned();
    if let Some(auth) = auth.filter(|a| !a.is_empty()) {
        return Some(strip(auth)).filter(|t| !t.is_empty());
    }
    let json: serde_json::Value = serde_json::from_str(auth_token_json?).ok()?;
    Some(strip(json.get("token")?.as_str()?)).filter(|t| !t.is_empty())
}

fn truncate(mut s: String) -> String {
    if let Some((i, _)) = s.char_indices().nth(MAX_DEVICE_FIELD_CHARS) {
        s.truncate(i);
    }
    s
}

/// Checks the credentials of a login request.
async fn authenticate(
    state: &AppState,
    req: &LoginRequest,
) -> Result<(Arc<App>, AuthenticatedUser), Refusal> {
    let accounts = &state.accounts;
    // The cached app is refreshed by every settings change, so cap and policy are current.
    let app = accounts.app(&req.app_key).await.map_err(refusal_of)?;
    let auth = match accounts.authenticate_user(&app, &req.token).await {
        Ok(auth) => auth,
        // A revoked token of a deactivated user: deactivation revokes tokens, and "your
        // account is deactivated" is the useful answer then.
        Err(CoreError::Token(TokenError::Revoked)) => {
            return Err(match accounts.user(&app, &req.username).await {
                Ok(user) if !user.activated => Refusal::Deactivated,
                _ => Refusal::InvalidToken,
            })
        }
        Err(e) => return Err(refusal_of(e)),
    };
    // The token must be the named user's; compare normalised (user IDs are case-insensitive).
    let named = Username::parse(&req.username).map_err(|_| Refusal::InvalidToken)?;
    if auth.user.username != named {
        return Err(Refusal::InvalidToken);
    }
    Ok((app, auth))
}

/// Authenticates, applies the multi-device rules and registers the device.
async fn login(state: &AppState, frame: MSync) -> Result<(LoggedIn, MSync), Refusal> {
    let req = LoginRequest::parse(frame)?;
    let (app, auth) = authenticate(state, &req).await?;
    let cap = app.settings.device_cap(&req.platform);
    if cap == 0 {
        // The app lets no device of this platform in.
        return Err(Refusal::TooManyDevices);
    }
    let (handle, signals) = SessionHandle::new();
    let info = DeviceInfo {
        resource: req.resource.clone(),
        platform: req.platform,
        device_uuid: req.device_uuid,
        device_name: req.device_name,
        login_ms: now_ms(),
    };
    let admission = state
        .accounts
        .presence()
        .admit(
            app.id,
            auth.user.id,
            info,
            handle,
            cap,
            app.settings.kick_policy,
            req.ext,
        )
        .await
        .map_err(|e| match e {
            AdmitError::TooManyDevices(_) => Refusal::TooManyDevices,
            AdmitError::Unavailable(e) => {
                tracing::error!(error = %e, "admitting a device failed");
                Refusal::Internal
            }
        })?;
    tracing::info!(
        user = %auth.user.username,
        resource = %req.resource,
        platform = %req.platform.name(),
        kicked = admission.kicked.len(),
        replaced = admission.replaced,
        "login"
    );
    let inbox = match InboxState::open(state, &app, &auth.user, &req.resource).await {
        Ok(inbox) => inbox,
        Err(e) => {
            // The device was admitted; take it off again before refusing.
            state
                .accounts
                .presence()
                .remove(app.id, auth.user.id, signals.session_id);
            tracing::error!(error = %e, "opening the inbox failed");
            return Err(Refusal::Internal);
        }
    };
    let reply = frames::provision_ok(&req.resource, auth.expires_ms);
    let login = LoggedIn {
        app_key: app.key.to_string(),
        app,
        user_id: auth.user.id,
        username: auth.user.username.to_string(),
        resource: req.resource,
        signals,
        inbox,
    };
    Ok((login, reply))
}

pub(crate) async fn apply(session: &mut Session, frame: MSync) -> Result<Flow, Overflow> {
    let started = Instant::now();
    let result = login(session.state(), frame).await;
    metrics::histogram!("ferrim_login_duration_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok((login, reply)) => {
            metrics::counter!("ferrim_logins_total", "result" => "ok").increment(1);
            // Registered first, so the device is removed however the connection ends.
            session.set_login(login);
            session.outbox().send(&reply)?;
            Ok(Flow::Continue)
        }
        Err(refusal) => {
            metrics::counter!("ferrim_logins_total", "result" => refusal.label()).increment(1);
            tracing::debug!(?refusal, "login refused");
            match refusal_reply(refusal) {
                Some(reply) => {
                    session.outbox().send(&reply)?;
                    Ok(Flow::Close(Close::LOGIN_FAILED))
                }
                None => Ok(Flow::Close(Close::TRY_AGAIN)),
            }
        }
    }
}

/// The Provision error frame for a refusal; none for a failure worth retrying.
fn refusal_reply(refusal: Refusal) -> Option<MSync> {
    if matches!(refusal, Refusal::Internal) {
        return None;
    }
    let (code, reason) = refusal.status();
    Some(frames::provision_error(code, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_internal_failures_close_without_a_final_answer() {
        assert!(refusal_reply(Refusal::Internal).is_none());
        for refusal in [
            Refusal::BadRequest("x"),
            Refusal::AppNotFound,
            Refusal::InvalidToken,
            Refusal::TokenExpired,
            Refusal::UserNotFound,
            Refusal::Deactivated,
            Refusal::TooManyDevices,
        ] {
            assert!(refusal_reply(refusal).is_some(), "{refusal:?}");
        }
    }

    #[test]
    fn token_comes_from_auth_or_the_auth_token_json() {
        assert_eq!(token_of(Some("$t$abc"), None).as_deref(), Some("abc"));
        assert_eq!(
            token_of(None, Some(r#"{"token":"$t$xyz"}"#)).as_deref(),
            Some("xyz")
        );
        assert_eq!(token_of(Some(""), Some("not json")), None);
        assert_eq!(token_of(Some("$t$"), None), None);
    }

    #[test]
    fn refusals_use_the_exact_sdk_reasons() {
        assert_eq!(
            Refusal::InvalidToken.status(),
            (
                ErrorCode::Fail,
                "Sorry, token or password does not match login info"
            )
        );
        assert_eq!(
            Refusal::TokenExpired.status(),
            (ErrorCode::Fail, "Sorry, token expired")
        );
        assert_eq!(
            Refusal::UserNotFound.status(),
            (ErrorCode::Fail, "Sorry, user not found")
        );
        assert_eq!(
            Refusal::TooManyDevices.status().0,
            ErrorCode::TooManyDevices
        );
    }

    #[test]
    fn long_device_fields_are_cut_on_char_boundaries() {
        let s = truncate("é".repeat(200));
        assert_eq!(s.chars().count(), MAX_DEVICE_FIELD_CHARS);
    }
}
