//! A read-through cache of users in front of any [`Store`].
//!
//! Logins and message sends look users up on every request; keeping them in memory takes
//! a database read off both hot paths. Writes made through this wrapper update or drop the
//! cached entry, so on a single node the cache is exact. When several nodes share one
//! store, another node's write is only seen once the entry is older than `ttl`; then the
//! entry is read again.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use uuid::Uuid;

use crate::app::{App, AppKey, AppSettings};
use crate::messaging::{
    Appended, Conversation, HistoryQuery, InboxEntry, InboxPosition, InboxQuery, NewMessage,
    StoredMessage,
};
use crate::store::{Store, StoreError, UserPage, UserUpdate};
use crate::user::{User, Username};

const SHARDS: usize = 32;

/// Entries per shard before the shard is emptied (a crude bound that keeps memory flat).
const SHARD_CAPACITY: usize = 8_192;

#[derive(Default)]
struct Shard {
    by_id: HashMap<(Uuid, Uuid), (Arc<User>, Instant)>,
    by_name: HashMap<(Uuid, Username), Uuid>,
}

/// The caching wrapper.
pub struct CachedStore {
    inner: Arc<dyn Store>,
    shards: Vec<Mutex<Shard>>,
    hasher: std::collections::hash_map::RandomState,
    ttl: Option<Duration>,
}

impl CachedStore {
    /// Caches in front of `inner`; `ttl` bounds staleness when other nodes write too
    /// (`None`: this process is the only writer, entries live until changed).
    pub fn new(inner: Arc<dyn Store>, ttl: Option<Duration>) -> Self {
        Self {
            inner,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: Default::default(),
            ttl,
        }
    }

    fn shard_of(&self, app_id: Uuid, key: impl Hash) -> &Mutex<Shard> {
        // Names and IDs of one app hash to different shards; each map is consistent on its
        // own and `forget` clears both directions.
        let h = self.hasher.hash_one((app_id, key));
        &self.shards[(h as usize) % SHARDS]
    }

    fn fresh(&self, at: Instant) -> bool {
        self.ttl.is_none_or(|ttl| at.elapsed() < ttl)
    }

    fn cached_by_id(&self, app_id: Uuid, id: Uuid) -> Option<User> {
        let shard = self.shard_of(app_id, id).lock().expect("user cache");
        match shard.by_id.get(&(app_id, id)) {
            Some((user, at)) if self.fresh(*at) => Some(User::clone(user)),
            _ => None,
        }
    }

    fn remember(&self, user: &User) {
        let entry = (Arc::new(user.clone()), Instant::now());
        {
            let mut shard = self
                .shard_of(user.app_id, user.id)
                .lock()
                .expect("user cache");
            if shard.by_id.len() >= SHARD_CAPACITY {
                shard.by_id.clear();
            }
            shard.by_id.insert((user.app_id, user.id), entry);
        }
        let mut shard = self
            .shard_of(user.app_id, &user.username)
            .lock()
            .expect("user cache");
        if shard.by_name.len() >= SHARD_CAPACITY {
            shard.by_name.clear();
        }
        shard
            .by_name
            .insert((user.app_id, user.username.clone()), user.id);
    }

    fn forget(&self, user: &User) {
        self.shard_of(user.app_id, user.id)
            .lock()
            .expect("user cache")
            .by_id
            .remove(&(user.app_id, user.id));
        self.shard_of(user.app_id, &user.username)
            .lock()
            .expect("user cache")
            .by_name
            .remove(&(user.app_id, user.username.clone()));
    }
}

#[async_trait]
impl Store for CachedStore {
    fn engine(&self) -> &'static str {
        self.inner.engine()
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.inner.health().await
    }

    fn inbox_cursor_is_message_id(&self) -> bool {
        self.inner.inbox_cursor_is_message_id()
    }

    async fn insert_app(&self, app: &App) -> Result<(), StoreError> {
        self.inner.insert_app(app).await
    }

    async fn app_by_key(&self, key: &AppKey) -> Result<Option<App>, StoreError> {
        self.inner.app_by_key(key).await
    }

    async fn app_by_id(&self, id: Uuid) -> Result<Option<App>, StoreError> {
        self.inner.app_by_id(id).await
    }

    async fn list_apps(&self) -> Result<Vec<App>, StoreError> {
        self.inner.list_apps().await
    }

    async fn update_app_settings(
        &self,
        id: Uuid,
        settings: &AppSettings,
    ) -> Result<bool, StoreError> {
        self.inner.update_app_settings(id, settings).await
    }

    async fn insert_users(&self, users: &[User]) -> Result<Vec<bool>, StoreError> {
        self.inner.insert_users(users).await
    }

    async fn user_by_name(
        &self,
        app_id: Uuid,
        name: &Username,
    ) -> Result<Option<User>, StoreError> {
        let id = self
            .shard_of(app_id, name)
            .lock()
            .expect("user cache")
            .by_name
            .get(&(app_id, name.clone()))
            .copied();
        if let Some(user) = id.and_then(|id| self.cached_by_id(app_id, id)) {
            if &user.username == name {
                return Ok(Some(user));
            }
        }
        let user = self.inner.user_by_name(app_id, name).await?;
        if let Some(u) = &user {
            self.remember(u);
        }
        Ok(user)
    }

    async fn user_by_id(&self, app_id: Uuid, id: Uuid) -> Result<Option<User>, StoreError> {
        if let Some(user) = self.cached_by_id(app_id, id) {
            return Ok(Some(user));
        }
        let user = self.inner.user_by_id(app_id, id).await?;
        if let Some(u) = &user {
            self.remember(u);
        }
        Ok(user)
    }

    async fn list_users(
        &self,
        app_id: Uuid,
        after: Option<u64>,
        limit: u32,
    ) -> Result<UserPage, StoreError> {
        self.inner.list_users(app_id, after, limit).await
    }

    async fn update_user(
        &self,
        app_id: Uuid,
        name: &Username,
        update: UserUpdate,
        now_ms: u64,
    ) -> Result<Option<User>, StoreError> {
        let result = self.inner.update_user(app_id, name, update, now_ms).await;
        match &result {
            Ok(Some(user)) => self.remember(user),
            // Unknown outcome or no such user: drop whatever is cached under that name.
            _ => {
                let id = self
                    .shard_of(app_id, name)
                    .lock()
                    .expect("user cache")
                    .by_name
                    .remove(&(app_id, name.clone()));
                if let Some(id) = id {
                    self.shard_of(app_id, id)
                        .lock()
                        .expect("user cache")
                        .by_id
                        .remove(&(app_id, id));
                }
            }
        }
        result
    }

    async fn delete_user(&self, app_id: Uuid, name: &Username) -> Result<Option<User>, StoreError> {
        let deleted = self.inner.delete_user(app_id, name).await?;
        if let Some(user) = &deleted {
            self.forget(user);
        }
        Ok(deleted)
    }

    async fn delete_oldest_users(&self, app_id: Uuid, limit: u32) -> Result<Vec<User>, StoreError> {
        let deleted = self.inner.delete_oldest_users(app_id, limit).await?;
        for user in &deleted {
            self.forget(user);
        }
        Ok(deleted)
    }

    async fn count_users(&self, app_id: Uuid) -> Result<u64, StoreError> {
        self.inner.count_users(app_id).await
    }

    async fn append_messages(&self, batch: &[NewMessage]) -> Result<Vec<Appended>, StoreError> {
        self.inner.append_messages(batch).await
    }

    async fn inbox_position(
        &self,
        user_id: Uuid,
        resource: &str,
        keep_count: u32,
    ) -> Result<InboxPosition, StoreError> {
        self.inner
            .inbox_position(user_id, resource, keep_count)
            .await
    }

    async fn inbox_after(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        query: &InboxQuery<'_>,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        self.inner.inbox_after(app_id, user_id, query).await
    }

    async fn save_inbox_cursors(
        &self,
        cursors: &[((Uuid, String), u64)],
    ) -> Result<(), StoreError> {
        self.inner.save_inbox_cursors(cursors).await
    }

    async fn history(
        &self,
        app_id: Uuid,
        query: &HistoryQuery,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.inner.history(app_id, query).await
    }

    async fn delete_message(&self, app_id: Uuid, id: u64) -> Result<bool, StoreError> {
        self.inner.delete_message(app_id, id).await
    }

    async fn clear_conversation(
        &self,
        user_id: Uuid,
        peer_id: Uuid,
        up_to: u64,
        history: bool,
    ) -> Result<(), StoreError> {
        self.inner
            .clear_conversation(user_id, peer_id, up_to, history)
            .await
    }

    async fn clear_history(
        &self,
        user_id: Uuid,
        peer_id: Uuid,
        up_to: u64,
    ) -> Result<(), StoreError> {
        self.inner.clear_history(user_id, peer_id, up_to).await
    }

    async fn history_start(&self, user_id: Uuid, peer_id: Uuid) -> Result<u64, StoreError> {
        self.inner.history_start(user_id, peer_id).await
    }

    async fn replace_payload(
        &self,
        app_id: Uuid,
        id: u64,
        payload: &[u8],
    ) -> Result<bool, StoreError> {
        self.inner.replace_payload(app_id, id, payload).await
    }

    async fn conversations(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.inner
            .conversations(app_id, user_id, before, limit)
            .await
    }

    async fn message_by_id(
        &self,
        app_id: Uuid,
        id: u64,
    ) -> Result<Option<StoredMessage>, StoreError> {
        self.inner.message_by_id(app_id, id).await
    }

    async fn latest_message_id(&self) -> Result<Option<u64>, StoreError> {
        self.inner.latest_message_id().await
    }
}
