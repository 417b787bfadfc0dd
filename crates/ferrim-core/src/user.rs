//! Users: validated user IDs, password rules and the stored user record.

use std::fmt;

use uuid::Uuid;

use crate::error::CoreError;

/// Longest user ID, in bytes.
pub const MAX_USERNAME_LEN: usize = 64;
/// Longest password, in characters.
pub const MAX_PASSWORD_LEN: usize = 64;
/// Longest push nickname, in characters.
pub const MAX_NICKNAME_LEN: usize = 100;

/// A user ID: 1–64 bytes of `A-Z a-z 0-9 _ - .`, case-insensitive and always kept lowercase.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    /// Validates and lowercases a user ID.
    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        if raw.len() > MAX_USERNAME_LEN {
            return Err(CoreError::UsernameTooLong);
        }
        if raw.is_empty()
            || !raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(CoreError::InvalidUsername(raw.to_owned()));
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a new password: present, non-empty, at most 64 characters.
pub fn validate_password(password: &str) -> Result<(), CoreError> {
    if password.is_empty() {
        return Err(CoreError::PasswordMissing);
    }
    if password.chars().count() > MAX_PASSWORD_LEN {
        return Err(CoreError::PasswordTooLong);
    }
    Ok(())
}

/// Checks a push nickname: at most 100 characters.
pub fn validate_nickname(nickname: &str) -> Result<(), CoreError> {
    if nickname.chars().count() > MAX_NICKNAME_LEN {
        return Err(CoreError::NicknameTooLong);
    }
    Ok(())
}

/// A user as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub app_id: Uuid,
    pub username: Username,
    /// Argon2id PHC string; `None` for users created password-less (`autoCreateUser`).
    pub password_hash: Option<String>,
    pub activated: bool,
    pub nickname: Option<String>,
    /// Push-notification preferences, stored and reported (ferrim sends no pushes itself).
    pub push: PushSettings,
    pub created_ms: u64,
    pub modified_ms: u64,
    /// Bumped on password change, deactivation and deletion; user tokens carry the value
    /// they were issued under, so older tokens stop working without a token table.
    pub token_generation: u32,
    /// When tokens were last revoked (0 = never). Dynamic tokens minted before it are
    /// refused; they carry no generation.
    pub tokens_revoked_ms: u64,
}

/// A user's push-notification preferences, in Easemob's REST field names; each is only
/// reported once set.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PushSettings {
    /// 0 = "you have a new message" only, 1 = with the message's details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_display_style: Option<u8>,
    /// Do-not-disturb on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_no_disturbing: Option<bool>,
    /// Do-not-disturb start and end hours, "0" to "23".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_no_disturbing_start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_no_disturbing_end: Option<String>,
}

impl PushSettings {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The fields set in `patch` replace these.
    pub fn merge(&mut self, patch: PushSettings) {
        let PushSettings {
            notification_display_style: style,
            notification_no_disturbing: dnd,
            notification_no_disturbing_start: start,
            notification_no_disturbing_end: end,
        } = patch;
        self.notification_display_style = style.or(self.notification_display_style);
        self.notification_no_disturbing = dnd.or(self.notification_no_disturbing);
        self.notification_no_disturbing_start =
            start.or(self.notification_no_disturbing_start.take());
        self.notification_no_disturbing_end = end.or(self.notification_no_disturbing_end.take());
    }

    /// For storage: `None` when nothing is set.
    pub fn to_json(&self) -> Option<String> {
        (!self.is_empty()).then(|| serde_json::to_string(self).unwrap_or_default())
    }

    /// From storage (`None` = nothing set).
    pub fn from_json(stored: Option<&str>) -> Result<Self, serde_json::Error> {
        stored.map_or(Ok(Self::default()), serde_json::from_str)
    }
}

impl User {
    /// A fresh, activated user.
    pub fn new(
        app_id: Uuid,
        username: Username,
        password_hash: Option<String>,
        nickname: Option<String>,
        now_ms: u64,
    ) -> Self {
        Self {
            id: Uuid::new_v4(),
            app_id,
            username,
            password_hash,
            activated: true,
            nickname,
            push: PushSettings::default(),
            created_ms: now_ms,
            modified_ms: now_ms,
            token_generation: 0,
            tokens_revoked_ms: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased() {
        assert_eq!(
            Username::parse("User_1.a-B").unwrap().as_str(),
            "user_1.a-b"
        );
    }

    #[test]
    fn usernames_reject_bad_characters_and_length() {
        for bad in ["", "a b", "a#b", "a@b.com", "中文", "a/b"] {
            assert!(matches!(
                Username::parse(bad),
                Err(CoreError::InvalidUsername(_))
            ));
        }
        assert!(Username::parse(&"a".repeat(64)).is_ok());
        assert!(matches!(
            Username::parse(&"a".repeat(65)),
            Err(CoreError::UsernameTooLong)
        ));
    }

    #[test]
    fn password_rules() {
        assert!(matches!(
            validate_password(""),
            Err(CoreError::PasswordMissing)
        ));
        assert!(validate_password(&"é".repeat(64)).is_ok());
        assert!(matches!(
            validate_password(&"x".repeat(65)),
            Err(CoreError::PasswordTooLong)
        ));
    }
}
