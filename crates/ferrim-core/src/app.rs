//! Apps: an app is `org#app` (its appKey), with client credentials and per-app settings.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::CoreError;
use crate::sessions::Platform;

/// Longest org or app name accepted.
pub const MAX_NAME_LEN: usize = 64;

/// An app's identity as the SDKs spell it: `org#app`. In REST paths it is `/{org}/{app}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppKey {
    org: String,
    app: String,
}

impl AppKey {
    /// Builds an appKey from its two halves, validating both.
    pub fn new(org: &str, app: &str) -> Result<Self, CoreError> {
        if !valid_name(org) || !valid_name(app) {
            return Err(CoreError::InvalidAppKey(format!("{org}#{app}")));
        }
        Ok(Self {
            org: org.to_owned(),
            app: app.to_owned(),
        })
    }

    /// Parses `org#app`.
    pub fn parse(key: &str) -> Result<Self, CoreError> {
        match key.split_once('#') {
            Some((org, app)) if !app.contains('#') => Self::new(org, app),
            _ => Err(CoreError::InvalidAppKey(key.to_owned())),
        }
    }

    pub fn org(&self) -> &str {
        &self.org
    }

    pub fn app(&self) -> &str {
        &self.app
    }
}

impl fmt::Display for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.org, self.app)
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Who may register users without an app token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMode {
    /// Anyone may register a single user without a token.
    Open,
    /// Registration needs the app token (the recommended production setting).
    Authorized,
}

/// What happens when a login would exceed a platform's device cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KickPolicy {
    /// The newest login wins; the earliest device of that platform is kicked (SDK code 206).
    KickEarliest,
    /// The newcomer is refused (SDK code 214).
    RefuseNewcomer,
}

/// Default token lifetime: 60 days, as Easemob's console default.
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 60 * 24 * 3600;
/// Default cap of devices online per platform.
pub const DEFAULT_DEVICE_CAP: u32 = 4;
/// Largest per-platform device cap an app may configure.
pub const MAX_DEVICE_CAP: u32 = 100;

/// Per-app settings an owner changes from the console or REST. Changes apply to the next
/// request or login.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSettings {
    pub registration_mode: RegistrationMode,
    /// Lifetime of tokens issued without an explicit `ttl`, in seconds; 0 = never expires.
    pub token_ttl_secs: u64,
    /// Devices allowed online at once per platform.
    pub device_cap_per_platform: u32,
    /// Per-platform exceptions to `device_cap_per_platform`, by platform name (`web`,
    /// `mobile`, `desktop`, `linux`, `custom1` … `custom100`), as Easemob's console sets a
    /// count per end. 0 lets no device of that platform log in (214).
    #[serde(default)]
    pub device_caps: BTreeMap<String, u32>,
    pub kick_policy: KickPolicy,
    /// Offline one-to-one messages kept per user (oldest evicted first).
    pub offline_keep_count: u32,
    /// Offline messages older than this are no longer delivered at login, in days.
    pub offline_keep_days: u32,
}

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            registration_mode: RegistrationMode::Authorized,
            token_ttl_secs: DEFAULT_TOKEN_TTL_SECS,
            device_cap_per_platform: DEFAULT_DEVICE_CAP,
            device_caps: BTreeMap::new(),
            kick_policy: KickPolicy::KickEarliest,
            offline_keep_count: 500,
            offline_keep_days: 7,
        }
    }
}

impl AppSettings {
    /// Devices of `platform` allowed online at once.
    pub fn device_cap(&self, platform: &Platform) -> u32 {
        self.device_caps
            .get(&platform.name())
            .copied()
            .unwrap_or(self.device_cap_per_platform)
    }

    /// Checks the ranges an owner may set.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.device_cap_per_platform == 0 || self.device_cap_per_platform > MAX_DEVICE_CAP {
            return Err(CoreError::InvalidSetting(format!(
                "device_cap_per_platform must be between 1 and {MAX_DEVICE_CAP}"
            )));
        }
        for (name, cap) in &self.device_caps {
            let known = match Platform::from_name(name) {
                Some(Platform::Custom(n)) => {
                    (1..=100).contains(&n) && name == &format!("custom{n}")
                }
                Some(_) => true,
                None => false,
            };
            if !known {
                return Err(CoreError::InvalidSetting(format!(
                    "device_caps: unknown platform {name} (web, mobile, desktop, linux, custom1 … custom100)"
                )));
            }
            if *cap > MAX_DEVICE_CAP {
                return Err(CoreError::InvalidSetting(format!(
                    "device_caps: {name} must be between 0 and {MAX_DEVICE_CAP}"
                )));
            }
        }
        if self.offline_keep_count == 0 || self.offline_keep_count > 100_000 {
            return Err(CoreError::InvalidSetting(
                "offline_keep_count must be between 1 and 100000".into(),
            ));
        }
        if self.offline_keep_days == 0 || self.offline_keep_days > 3650 {
            return Err(CoreError::InvalidSetting(
                "offline_keep_days must be between 1 and 3650".into(),
            ));
        }
        Ok(())
    }
}

/// An app as stored.
#[derive(Clone, Debug)]
pub struct App {
    pub id: Uuid,
    pub key: AppKey,
    pub client_id: String,
    pub client_secret: String,
    /// Key of the HMAC that signs this app's tokens. Never leaves the server.
    pub token_key: [u8; 32],
    pub settings: AppSettings,
    pub created_ms: u64,
}

impl App {
    /// A new app with fresh credentials unless given.
    pub fn new(
        key: AppKey,
        client_id: Option<String>,
        client_secret: Option<String>,
        now_ms: u64,
    ) -> Self {
        use rand::RngCore;
        let mut token_key = [0u8; 32];
        rand::rng().fill_bytes(&mut token_key);
        Self {
            id: Uuid::new_v4(),
            key,
            client_id: client_id.unwrap_or_else(|| random_credential("YXA6", 22)),
            client_secret: client_secret.unwrap_or_else(|| random_credential("YXA6", 27)),
            token_key,
            settings: AppSettings::default(),
            created_ms: now_ms,
        }
    }
}

/// A random URL-safe credential with Easemob's customary `YXA6` prefix.
fn random_credential(prefix: &str, len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    let mut out = String::with_capacity(prefix.len() + len);
    out.push_str(prefix);
    for _ in 0..len {
        out.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_key_parses_org_and_app() {
        let key = AppKey::parse("easemob-demo#testapp").unwrap();
        assert_eq!(key.org(), "easemob-demo");
        assert_eq!(key.app(), "testapp");
        assert_eq!(key.to_string(), "easemob-demo#testapp");
    }

    #[test]
    fn app_key_rejects_malformed_keys() {
        for bad in ["", "demo", "#demo", "demo#", "a#b#c", "de mo#x", "a/b#c"] {
            assert!(AppKey::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn new_apps_get_distinct_credentials() {
        let key = AppKey::parse("o#a").unwrap();
        let a = App::new(key.clone(), None, None, 0);
        let b = App::new(key, None, None, 0);
        assert_ne!(a.client_secret, b.client_secret);
        assert!(a.client_id.starts_with("YXA6"));
    }

    #[test]
    fn settings_reject_out_of_range_values() {
        let mut s = AppSettings::default();
        assert!(s.validate().is_ok());
        s.device_cap_per_platform = 0;
        assert!(s.validate().is_err());
    }

    #[test]
    fn per_platform_caps_override_the_default_and_are_checked() {
        let mut s = AppSettings::default();
        s.device_caps.insert("web".into(), 2);
        s.device_caps.insert("custom7".into(), 0);
        assert!(s.validate().is_ok());
        assert_eq!(s.device_cap(&Platform::Web), 2);
        assert_eq!(s.device_cap(&Platform::Custom(7)), 0);
        assert_eq!(s.device_cap(&Platform::Mobile), DEFAULT_DEVICE_CAP);
        assert_eq!(s.device_cap(&Platform::Custom(8)), DEFAULT_DEVICE_CAP);
        for bad in ["tv", "custom0", "custom101", "custom07"] {
            let mut t = AppSettings::default();
            t.device_caps.insert(bad.into(), 1);
            assert!(t.validate().is_err(), "{bad}");
        }
        s.device_caps.insert("linux".into(), MAX_DEVICE_CAP + 1);
        assert!(s.validate().is_err());
    }
}
