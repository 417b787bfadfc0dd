//! Tokens.
//!
//! **REST-issued tokens** (app tokens and user tokens) are self-contained and signed, so
//! checking one costs an HMAC and no database write or network call:
//!
//! ```text
//! "YWMt" + base64url( version:1 | kind:1 | app_id:16 | principal_id:16 | generation:4 |
//!                     issued_ms:8 | expires_ms:8 (0 = never) | hmac_sha256:32 )
//! ```
//!
//! The HMAC key is the app's private `token_key`, so one app's token can never verify as
//! another's. `generation` is the user's token generation (bumped on password change,
//! deactivation and deletion), which revokes every older token at once.
//!
//! **Dynamic tokens** (`dt-…`, rest-api.md §3.3) are minted by the app server from the client
//! ID and secret: `base64url("dt-" + {"signature","appkey","userId","curTime","ttl"})` with
//! `signature = hex(sha256(clientId + appkey + userId + curTime + ttl + clientSecret))`.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::app::App;

/// Prefix of REST-issued tokens (Easemob's tokens start with it too).
pub const REST_TOKEN_PREFIX: &str = "YWMt";
/// Prefix of dynamic tokens: base64 of `dt-`.
pub const DYNAMIC_TOKEN_PREFIX: &str = "ZHQt";

const VERSION: u8 = 1;
const BODY_LEN: usize = 1 + 1 + 16 + 16 + 4 + 8 + 8;
const MAC_LEN: usize = 32;
/// Longest token text accepted before any decoding work is done.
pub const MAX_TOKEN_LEN: usize = 2048;

/// Why a token was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token this server could have issued (bad encoding or layout).
    #[error("malformed token")]
    Malformed,
    /// Well-formed but not signed by this app.
    #[error("token signature does not match")]
    BadSignature,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
    /// Issued before the user's last password change, deactivation or deletion.
    #[error("token revoked")]
    Revoked,
    /// A dynamic token dated further ahead than clocks drift: it would outlive any
    /// revocation made before its date.
    #[error("token issued in the future")]
    IssuedInFuture,
}

/// Whom a REST token speaks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// The app itself: opens the admin REST API.
    App,
    /// One user of the app: opens the msync login and that user's own SDK calls.
    User,
}

/// The verified content of a REST-issued token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenClaims {
    pub kind: TokenKind,
    pub app_id: Uuid,
    /// The app's ID for app tokens, the user's ID for user tokens.
    pub principal_id: Uuid,
    pub generation: u32,
    pub issued_ms: u64,
    /// `None` for tokens that never expire (`ttl` 0).
    pub expires_ms: Option<u64>,
}

impl TokenClaims {
    /// Fails once the token has expired.
    pub fn check_expiry(&self, now_ms: u64) -> Result<(), TokenError> {
        match self.expires_ms {
            Some(exp) if now_ms >= exp => Err(TokenError::Expired),
            _ => Ok(()),
        }
    }
}

/// Issues a signed token. `ttl_secs` 0 means the token never expires.
pub fn issue(
    app: &App,
    kind: TokenKind,
    principal_id: Uuid,
    generation: u32,
    now_ms: u64,
    ttl_secs: u64,
) -> (String, TokenClaims) {
    let claims = TokenClaims {
        kind,
        app_id: app.id,
        principal_id,
        generation,
        issued_ms: now_ms,
        expires_ms: (ttl_secs > 0).then(|| now_ms.saturating_add(ttl_secs.saturating_mul(1000))),
    };
    let mut raw = Vec::with_capacity(BODY_LEN + MAC_LEN);
    raw.push(VERSION);
    raw.push(match kind {
        TokenKind::App => 1,
        TokenKind::User => 2,
    });
    raw.extend_from_slice(app.id.as_bytes());
    raw.extend_from_slice(principal_id.as_bytes());
    raw.extend_from_slice(&generation.to_be_bytes());
    raw.extend_from_slice(&now_ms.to_be_bytes());
    raw.extend_from_slice(&claims.expires_ms.unwrap_or(0).to_be_bytes());
    let mac = mac(&app.token_key, &raw);
    raw.extend_from_slice(&mac);
    let mut text = String::with_capacity(REST_TOKEN_PREFIX.len() + 120);
    text.push_str(REST_TOKEN_PREFIX);
    URL_SAFE_NO_PAD.encode_string(&raw, &mut text);
    (text, claims)
}

fn mac(key: &[u8; 32], body: &[u8]) -> [u8; MAC_LEN] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key size");
    m.update(body);
    m.finalize().into_bytes().into()
}

/// A REST token whose layout is valid but whose signature has not been checked yet. Its
/// `app_id` tells which app's key verifies it.
#[derive(Clone, Debug)]
pub struct UnverifiedToken {
    raw: [u8; BODY_LEN + MAC_LEN],
    claims: TokenClaims,
}

impl UnverifiedToken {
    /// Parses a REST-issued token without checking its signature.
    pub fn parse(token: &str) -> Result<Self, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let b64 = token
            .strip_prefix(REST_TOKEN_PREFIX)
            .ok_or(TokenError::Malformed)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| TokenError::Malformed)?;
        let raw: [u8; BODY_LEN + MAC_LEN] = bytes.try_into().map_err(|_| TokenError::Malformed)?;
        if raw[0] != VERSION {
            return Err(TokenError::Malformed);
        }
        let kind = match raw[1] {
            1 => TokenKind::App,
            2 => TokenKind::User,
            _ => return Err(TokenError::Malformed),
        };
        let uuid_at = |at: usize| Uuid::from_slice(&raw[at..at + 16]).expect("16 bytes");
        let u32_at = |at: usize| u32::from_be_bytes(raw[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_be_bytes(raw[at..at + 8].try_into().expect("8 bytes"));
        let expires = u64_at(46);
        let claims = TokenClaims {
            kind,
            app_id: uuid_at(2),
            principal_id: uuid_at(18),
            generation: u32_at(34),
            issued_ms: u64_at(38),
            expires_ms: (expires != 0).then_some(expires),
        };
        Ok(Self { raw, claims })
    }

    /// The app that claims to have issued this token.
    pub fn app_id(&self) -> Uuid {
        self.claims.app_id
    }

    /// Checks the signature with the claimed app's key (constant time).
    pub fn verify(&self, app: &App) -> Result<TokenClaims, TokenError> {
        if app.id != self.claims.app_id {
            return Err(TokenError::BadSignature);
        }
        let expected = mac(&app.token_key, &self.raw[..BODY_LEN]);
        if bool::from(expected.ct_eq(&self.raw[BODY_LEN..])) {
            Ok(self.claims)
        } else {
            Err(TokenError::BadSignature)
        }
    }
}

/// How far a dynamic token's `curTime` may run ahead of this server's clock (the app
/// server's clock may be a little ahead of ours).
pub const DYNAMIC_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;

/// The JSON body of a dynamic token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicToken {
    pub signature: String,
    pub appkey: String,
    #[serde(rename = "userId")]
    pub user_id: String,
    /// Issue time, Unix seconds.
    #[serde(rename = "curTime")]
    pub cur_time: u64,
    /// Validity in seconds.
    pub ttl: u64,
}

impl DynamicToken {
    /// Whether a token text is a dynamic token (cheap prefix test).
    pub fn is_dynamic(token: &str) -> bool {
        token.starts_with(DYNAMIC_TOKEN_PREFIX)
    }

    /// Decodes a dynamic token (URL-safe or standard base64, padded or not) without
    /// checking its signature.
    pub fn parse(token: &str) -> Result<Self, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let bytes = [URL_SAFE, URL_SAFE_NO_PAD, STANDARD, STANDARD_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(token).ok())
            .ok_or(TokenError::Malformed)?;
        let json = bytes.strip_prefix(b"dt-").ok_or(TokenError::Malformed)?;
        serde_json::from_slice(json).map_err(|_| TokenError::Malformed)
    }

    /// Mints a dynamic token, as an app server would.
    pub fn generate(
        client_id: &str,
        client_secret: &str,
        appkey: &str,
        user_id: &str,
        cur_time: u64,
        ttl: u64,
    ) -> String {
        let token = Self {
            signature: dynamic_signature(client_id, client_secret, appkey, user_id, cur_time, ttl),
            appkey: appkey.to_owned(),
            user_id: user_id.to_owned(),
            cur_time,
            ttl,
        };
        let mut text = b"dt-".to_vec();
        text.extend_from_slice(&serde_json::to_vec(&token).expect("serializable"));
        URL_SAFE.encode(text)
    }

    /// Checks signature and validity against the app. The caller checks that the user
    /// exists and is activated.
    pub fn verify(&self, app: &App, now_ms: u64) -> Result<(), TokenError> {
        if self.appkey != app.key.to_string() {
            return Err(TokenError::BadSignature);
        }
        let expected = dynamic_signature(
            &app.client_id,
            &app.client_secret,
            &self.appkey,
            &self.user_id,
            self.cur_time,
            self.ttl,
        );
        if !bool::from(expected.as_bytes().ct_eq(self.signature.as_bytes())) {
            return Err(TokenError::BadSignature);
        }
        if self.ttl == 0 || now_ms >= self.expires_ms() {
            return Err(TokenError::Expired);
        }
        if self.cur_time.saturating_mul(1000) > now_ms.saturating_add(DYNAMIC_CLOCK_SKEW_MS) {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(())
    }

    /// Absolute expiry, Unix milliseconds.
    pub fn expires_ms(&self) -> u64 {
        self.cur_time.saturating_add(self.ttl).saturating_mul(1000)
    }
}

fn dynamic_signature(
    client_id: &str,
    client_secret: &str,
    appkey: &str,
    user_id: &str,
    cur_time: u64,
    ttl: u64,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(client_id.as_bytes());
    hasher.update(appkey.as_bytes());
    hasher.update(user_id.as_bytes());
    hasher.update(cur_time.to_string().as_bytes());
    hasher.update(ttl.to_string().as_bytes());
    hasher.update(client_secret.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{App, AppKey};

    fn app(key: &str) -> App {
        App::new(AppKey::parse(key).unwrap(), None, None, 0)
    }

    #[test]
    fn rest_tokens_round_trip() {
        let app = app("o#a");
        let user = Uuid::new_v4();
        let (text, claims) = issue(&app, TokenKind::User, user, 7, 1_000, 60);
        assert!(text.starts_with(REST_TOKEN_PREFIX));
        let parsed = UnverifiedToken::parse(&text).unwrap();
        assert_eq!(parsed.app_id(), app.id);
        assert_eq!(parsed.verify(&app).unwrap(), claims);
        assert_eq!(claims.expires_ms, Some(61_000));
        assert_eq!(claims.generation, 7);
        assert!(claims.check_expiry(60_999).is_ok());
        assert_eq!(claims.check_expiry(61_000), Err(TokenError::Expired));
    }

    #[test]
    fn ttl_zero_never_expires() {
        let app = app("o#a");
        let (_, claims) = issue(&app, TokenKind::App, app.id, 0, 5, 0);
        assert_eq!(claims.expires_ms, None);
        assert!(claims.check_expiry(u64::MAX).is_ok());
    }

    #[test]
    fn another_apps_key_does_not_verify() {
        let a = app("o#a");
        let mut b = app("o#b");
        let (text, _) = issue(&a, TokenKind::App, a.id, 0, 5, 0);
        let parsed = UnverifiedToken::parse(&text).unwrap();
        assert_eq!(parsed.verify(&b), Err(TokenError::BadSignature));
        // Even with the same id, a different key fails.
        b.id = a.id;
        assert_eq!(parsed.verify(&b), Err(TokenError::BadSignature));
    }

    #[test]
    fn tampered_tokens_are_rejected() {
        let app = app("o#a");
        let (text, _) = issue(&app, TokenKind::User, Uuid::new_v4(), 0, 5, 10);
        let mut bytes = URL_SAFE_NO_PAD.decode(&text[4..]).unwrap();
        bytes[40] ^= 1;
        let forged = format!("{REST_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(
            UnverifiedToken::parse(&forged).unwrap().verify(&app),
            Err(TokenError::BadSignature)
        );
        for junk in ["", "YWMt", "YWMt!!!", "abc", &text[..text.len() - 2]] {
            assert!(UnverifiedToken::parse(junk).is_err(), "{junk}");
        }
    }

    /// The test vector of rest-api.md §3.3.
    const VECTOR: &str = "ZHQteyJzaWduYXR1cmUiOiI4NDMwZGNjMzRiZDE2N2M4OGJiMzM2YmE1MGExZGU1MmQ1YzM0MDkxN2JjYjQyNmY4ZjU4ZWZkNzZkYmM3NTE5IiwiYXBwa2V5IjoiZWFzZW1vYi1kZW1vI3Rlc3RhcHAiLCJ1c2VySWQiOiJ1c2VyMSIsImN1clRpbWUiOjE2ODYyMDc1NTcsInR0bCI6NjAwfQ==";

    fn vector_app() -> App {
        App::new(
            AppKey::parse("easemob-demo#testapp").unwrap(),
            Some("YXA6i-Ak8Ol4Eei2l11ZjV-EAg".into()),
            Some("YXA6VunqiNxoB7IwXHInk1cGiXOOJfc".into()),
            0,
        )
    }

    #[test]
    fn dynamic_token_vector_generates_and_verifies() {
        let generated = DynamicToken::generate(
            "YXA6i-Ak8Ol4Eei2l11ZjV-EAg",
            "YXA6VunqiNxoB7IwXHInk1cGiXOOJfc",
            "easemob-demo#testapp",
            "user1",
            1686207557,
            600,
        );
        assert_eq!(generated, VECTOR);
        let token = DynamicToken::parse(VECTOR).unwrap();
        assert_eq!(
            token.signature,
            "8430dcc34bd167c88bb336ba50a1de52d5c340917bcb426f8f58efd76dbc7519"
        );
        let app = vector_app();
        assert!(token.verify(&app, 1_686_207_557_000).is_ok());
        assert_eq!(
            token.verify(&app, 1_686_208_157_000),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn dynamic_token_accepts_unpadded_and_standard_alphabets() {
        let unpadded = VECTOR.trim_end_matches('=');
        assert!(DynamicToken::parse(unpadded).is_ok());
    }

    #[test]
    fn dynamic_token_negative_cases() {
        let app = vector_app();
        let now = 1_686_207_600_000;
        let good = DynamicToken::parse(VECTOR).unwrap();
        let mut other_user = good.clone();
        other_user.user_id = "user2".into();
        assert_eq!(other_user.verify(&app, now), Err(TokenError::BadSignature));
        let mut longer = good.clone();
        longer.ttl = 6000;
        assert_eq!(longer.verify(&app, now), Err(TokenError::BadSignature));
        let mut other_app = good.clone();
        other_app.appkey = "easemob-demo#other".into();
        assert_eq!(other_app.verify(&app, now), Err(TokenError::BadSignature));
        let mut wrong_secret = vector_app();
        wrong_secret.client_secret = "nope".into();
        assert_eq!(
            good.verify(&wrong_secret, now),
            Err(TokenError::BadSignature)
        );
        assert!(DynamicToken::parse("ZHQtbm90IGpzb24=").is_err());
    }

    #[test]
    fn dynamic_token_dated_ahead_is_accepted_only_within_the_skew() {
        let app = vector_app();
        let token = DynamicToken::parse(VECTOR).unwrap();
        let issued_ms = token.cur_time * 1000;
        assert!(token
            .verify(&app, issued_ms - DYNAMIC_CLOCK_SKEW_MS)
            .is_ok());
        assert_eq!(
            token.verify(&app, issued_ms - DYNAMIC_CLOCK_SKEW_MS - 1),
            Err(TokenError::IssuedInFuture)
        );
    }
}
