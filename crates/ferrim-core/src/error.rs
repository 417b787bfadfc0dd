//! The domain's error type. Each edge (REST, msync) maps it to its own wire form.

use crate::store::StoreError;
use crate::token::TokenError;

/// Everything a domain operation can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("invalid appKey {0}")]
    InvalidAppKey(String),
    #[error("app not found")]
    AppNotFound,
    #[error("app already exists")]
    AppExists,
    #[error("invalid setting: {0}")]
    InvalidSetting(String),

    #[error("username {0} is not legal")]
    InvalidUsername(String),
    #[error("USERNAME_TOO_LONG")]
    UsernameTooLong,
    #[error("password or pin must provided")]
    PasswordMissing,
    #[error("password is too long")]
    PasswordTooLong,
    #[error("NICKNAME_TOO_LONG")]
    NicknameTooLong,
    #[error("user {0} already exists")]
    UserExists(String),
    #[error("the same user {username} has a different password")]
    ConflictingDuplicate { username: String },
    #[error("batch of {size} exceeds the limit of {max}")]
    BatchTooLarge { size: usize, max: usize },
    #[error("user not found")]
    UserNotFound,
    #[error("user not activated")]
    UserNotActivated,

    #[error("client_id does not match")]
    ClientIdMismatch,
    #[error("client_secret does not match")]
    ClientSecretMismatch,
    #[error("invalid password")]
    InvalidPassword,
    #[error("too many attempts")]
    Throttled,
    #[error("token rejected: {0}")]
    Token(#[from] TokenError),
    #[error("this token may not be used here")]
    WrongTokenKind,

    #[error("the server is busy")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}
