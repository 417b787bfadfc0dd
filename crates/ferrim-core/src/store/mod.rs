//! The storage contract.
//!
//! Backends (SQLite embedded, PostgreSQL for clusters) implement [`Store`] and run the same
//! conformance cases from [`testsuite`]. Rules every backend follows:
//! - each method is one transaction; there is no begin/commit in the trait;
//! - domain types in and out, no driver types cross the boundary;
//! - every list takes a limit, and no method scans a whole table.

use async_trait::async_trait;
use uuid::Uuid;

use crate::app::{App, AppKey, AppSettings};
use crate::messaging::{
    Appended, Conversation, HistoryQuery, InboxEntry, InboxPosition, InboxQuery, NewMessage,
    StoredMessage,
};
use crate::user::{PushSettings, User, Username};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A storage failure. Domain outcomes (not found, duplicate) are expressed in return types
/// where callers must handle them; `Conflict` covers unique-key violations.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unique constraint violated")]
    Conflict,
    #[error("storage unavailable")]
    Unavailable(#[source] BoxError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("storage error")]
    Other(#[source] BoxError),
}

/// One page of users in creation order.
#[derive(Clone, Debug, Default)]
pub struct UserPage {
    pub users: Vec<User>,
    /// Position after the last user of this page, when more users follow.
    pub next: Option<u64>,
}

/// What a password change, deactivation or activation changes.
#[derive(Clone, Debug)]
pub enum UserUpdate {
    /// New password hash; revokes every token issued before.
    Password { hash: String },
    /// Deactivation revokes tokens; activation does not bring old ones back.
    Activated(bool),
    /// Push nickname and push preferences, both replaced.
    Profile {
        nickname: Option<String>,
        push: PushSettings,
    },
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Name of the backend, e.g. `sqlite`.
    fn engine(&self) -> &'static str;
    /// Cheap liveness check.
    async fn health(&self) -> Result<(), StoreError>;
    /// Whether an inbox entry's cursor is its message ID (true for a single writer that
    /// assigns IDs in commit order); enables delivery from live tails.
    fn inbox_cursor_is_message_id(&self) -> bool {
        false
    }

    /// Inserts an app; `Conflict` if its appKey exists.
    async fn insert_app(&self, app: &App) -> Result<(), StoreError>;
    async fn app_by_key(&self, key: &AppKey) -> Result<Option<App>, StoreError>;
    async fn app_by_id(&self, id: Uuid) -> Result<Option<App>, StoreError>;
    /// All apps (a deployment holds few).
    async fn list_apps(&self) -> Result<Vec<App>, StoreError>;
    /// Returns false if the app does not exist.
    async fn update_app_settings(
        &self,
        id: Uuid,
        settings: &AppSettings,
    ) -> Result<bool, StoreError>;

    /// Inserts users in one transaction. For each input, `true` if inserted, `false` if a user
    /// of that name already existed in the app (the others are still inserted).
    async fn insert_users(&self, users: &[User]) -> Result<Vec<bool>, StoreError>;
    async fn user_by_name(&self, app_id: Uuid, name: &Username)
        -> Result<Option<User>, StoreError>;
    async fn user_by_id(&self, app_id: Uuid, id: Uuid) -> Result<Option<User>, StoreError>;
    /// Users in creation order, starting after position `after`.
    async fn list_users(
        &self,
        app_id: Uuid,
        after: Option<u64>,
        limit: u32,
    ) -> Result<UserPage, StoreError>;
    /// Applies an update; password changes and deactivations bump `token_generation` and set
    /// `tokens_revoked_ms`. Returns the updated user, or `None` if there is none by that name.
    async fn update_user(
        &self,
        app_id: Uuid,
        name: &Username,
        update: UserUpdate,
        now_ms: u64,
    ) -> Result<Option<User>, StoreError>;
    /// Deletes one user with everything that belongs to them.
    async fn delete_user(&self, app_id: Uuid, name: &Username) -> Result<Option<User>, StoreError>;
    /// Deletes up to `limit` of the app's earliest-created users.
    async fn delete_oldest_users(&self, app_id: Uuid, limit: u32) -> Result<Vec<User>, StoreError>;
    /// Number of users of an app (used for metrics at start-up, not on request paths).
    async fn count_users(&self, app_id: Uuid) -> Result<u64, StoreError>;

    /// Stores a batch of messages in one transaction, in order. A message whose
    /// `(from, from_resource, client_id)` was stored before is not stored again: its outcome
    /// carries the original ID and time and `duplicate: true`. IDs are given by the caller and
    /// increase through the batch.
    async fn append_messages(&self, batch: &[NewMessage]) -> Result<Vec<Appended>, StoreError>;
    /// Where a device of a user starts reading its inbox; `backlog_floor` leaves at most
    /// `keep_count` entries after it.
    async fn inbox_position(
        &self,
        user_id: Uuid,
        resource: &str,
        keep_count: u32,
    ) -> Result<InboxPosition, StoreError>;
    /// Inbox entries of a user (messages to them, and messages they sent from other
    /// devices) after a cursor, in inbox order. See [`InboxEntry`] for what cursors are.
    async fn inbox_after(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        query: &InboxQuery<'_>,
    ) -> Result<Vec<InboxEntry>, StoreError>;
    /// Moves device cursors (and each user's offline cursor) forward; never backward.
    async fn save_inbox_cursors(&self, cursors: &[((Uuid, String), u64)])
        -> Result<(), StoreError>;
    /// Chat messages between two users.
    async fn history(
        &self,
        app_id: Uuid,
        query: &HistoryQuery,
    ) -> Result<Vec<StoredMessage>, StoreError>;
    /// A user's conversations with their last chat message, most recent first; with
    /// `before`, only those whose last message ID is below it (the next page).
    async fn conversations(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Conversation>, StoreError>;
    async fn message_by_id(
        &self,
        app_id: Uuid,
        id: u64,
    ) -> Result<Option<StoredMessage>, StoreError>;
    /// The highest message ID stored (any app, any node), or `None` when there are none.
    async fn latest_message_id(&self) -> Result<Option<u64>, StoreError>;
    /// Deletes one message (a recalled one): it leaves the history, the conversation list
    /// and every inbox that has not delivered it yet. False if there was none.
    async fn delete_message(&self, app_id: Uuid, id: u64) -> Result<bool, StoreError>;
    /// A user deletes a conversation: it leaves their list until a message after `up_to`
    /// arrives and, with `history`, their history of it starts after `up_to`. The peer sees
    /// no change; marks only move forward.
    async fn clear_conversation(
        &self,
        user_id: Uuid,
        peer_id: Uuid,
        up_to: u64,
        history: bool,
    ) -> Result<(), StoreError>;
    /// A user deletes their history of a conversation up to `up_to`, for themselves only;
    /// unlike [`Store::clear_conversation`] it stays in their list. Marks only move forward.
    async fn clear_history(
        &self,
        user_id: Uuid,
        peer_id: Uuid,
        up_to: u64,
    ) -> Result<(), StoreError>;
    /// Where a user's history of a conversation starts: messages with IDs above it (0 when
    /// the user never deleted it).
    async fn history_start(&self, user_id: Uuid, peer_id: Uuid) -> Result<u64, StoreError>;
    /// Replaces a message's payload (an edited one). False if there is none.
    async fn replace_payload(
        &self,
        app_id: Uuid,
        id: u64,
        payload: &[u8],
    ) -> Result<bool, StoreError>;
}

pub mod cached;
#[cfg(feature = "testsuite")]
pub mod testsuite;
