//! The clustered store: PostgreSQL through sqlx.
//!
//! Every ferrim node of a cluster points at the same database. Nothing here relies on an
//! in-process lock: message ordering per user comes from a row lock on the user
//! (`users.inbox_seq`), uniqueness from constraints, so nodes can write concurrently.
//!
//! Inbox cursors are per-user sequence numbers, not message IDs: IDs are minted on each node
//! and two nodes' batches may commit in the opposite order of their IDs. An append takes the
//! row locks of every user it touches (sorted by ID, so concurrent batches never deadlock)
//! and hands out the next numbers of each user's sequence; a second append for the same
//! user waits for the first to commit, so a reader never sees number `n + 1` before `n`.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use ferrim_core::app::{App, AppKey, AppSettings};
use ferrim_core::messaging::{
    Appended, Conversation, HistoryQuery, InboxEntry, InboxPosition, InboxQuery, MessageKind,
    NewMessage, Party, StoredMessage, MAX_UNREAD_COUNTED,
};
use ferrim_core::store::{Store, StoreError, UserPage, UserUpdate};
use ferrim_core::user::{PushSettings, User, Username};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Row};
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connections per node unless the URL's owner asks otherwise through [`PostgresStore::connect_with`].
pub const DEFAULT_POOL_SIZE: u32 = 16;

/// The PostgreSQL backend.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

fn store_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => StoreError::Unavailable(Box::new(e)),
        _ => StoreError::Other(Box::new(e)),
    }
}

fn migrate_err(e: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::Other(Box::new(e))
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:pass@host:port/db?options=...`). Does not apply
    /// migrations: call [`Self::migrate`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, DEFAULT_POOL_SIZE).await
    }

    /// Connects with a pool of at most `max_connections`.
    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid PostgreSQL URL: {e}").into()))?;
        // One plain connection first: a wrong host, port, role or database fails at once
        // with the server's reason rather than as a pool timeout.
        let probe = PgConnection::connect_with(&options)
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(Self { pool })
    }

    /// Applies pending migrations. Safe to run from several nodes at once: sqlx holds a
    /// PostgreSQL advisory lock while migrating.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(migrate_err)
    }

    /// Refreshes the planner's statistics. Run after a bulk load (`ferrim copy`): until
    /// autovacuum's first ANALYZE, PostgreSQL plans with the sizes of the empty tables and
    /// may keep a cached plan that scans whole tables.
    pub async fn analyze(&self) -> Result<(), StoreError> {
        sqlx::query("ANALYZE apps, users, messages, inbox, inbox_cursors, offline_cursors")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(store_err)
    }

    /// Versions of the migrations this build knows, and of those applied to the database.
    pub async fn migration_status(&self) -> Result<(Vec<i64>, Vec<i64>), StoreError> {
        let known = MIGRATOR.iter().map(|m| m.version).collect();
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(store_err)?;
        let applied = if exists {
            sqlx::query_scalar(
                "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?
        } else {
            Vec::new()
        };
        Ok((known, applied))
    }

    /// True if the database holds no app, user or message (a safe target for a copy).
    pub async fn is_empty(&self) -> Result<bool, StoreError> {
        sqlx::query_scalar(
            "SELECT NOT (EXISTS (SELECT 1 FROM apps) OR EXISTS (SELECT 1 FROM users) \
             OR EXISTS (SELECT 1 FROM messages))",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(store_err)
    }

    /// Sets inbox cursors given as message IDs (how the embedded store counts), translating
    /// each to this store's per-user sequence: the position of the user's last inbox entry
    /// whose message ID is at most the given one. Used when copying an embedded store in;
    /// the messages must have been appended first, in ID order.
    pub async fn import_cursors_by_message_id(
        &self,
        device: &[((Uuid, String), u64)],
        offline: &[(Uuid, u64)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_err)?;
        for ((user, resource), id) in device {
            sqlx::query(
                "INSERT INTO inbox_cursors (user_id, resource, cursor) \
                 SELECT $1, $2, COALESCE(MAX(seq), 0) FROM inbox \
                   WHERE user_id = $1 AND message_id <= $3 \
                 ON CONFLICT (user_id, resource) \
                   DO UPDATE SET cursor = GREATEST(inbox_cursors.cursor, excluded.cursor)",
            )
            .bind(user)
            .bind(resource)
            .bind(*id as i64)
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
        }
        for (user, id) in offline {
            sqlx::query(
                "INSERT INTO offline_cursors (user_id, cursor) \
                 SELECT $1, COALESCE(MAX(seq), 0) FROM inbox \
                   WHERE user_id = $1 AND message_id <= $2 \
                 ON CONFLICT (user_id) \
                   DO UPDATE SET cursor = GREATEST(offline_cursors.cursor, excluded.cursor)",
            )
            .bind(user)
            .bind(*id as i64)
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
        }
        tx.commit().await.map_err(store_err)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// An unsigned value stored in a signed `BIGINT` column.
fn u64_of(row: &PgRow, col: &str) -> Result<u64, StoreError> {
    Ok(row.try_get::<i64, _>(col).map_err(store_err)? as u64)
}

fn app_from_row(row: &PgRow) -> Result<App, StoreError> {
    let org: String = row.try_get("org").map_err(store_err)?;
    let name: String = row.try_get("name").map_err(store_err)?;
    let key = AppKey::new(&org, &name).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let token_key: Vec<u8> = row.try_get("token_key").map_err(store_err)?;
    let settings: String = row.try_get("settings").map_err(store_err)?;
    Ok(App {
        id: row.try_get("id").map_err(store_err)?,
        key,
        client_id: row.try_get("client_id").map_err(store_err)?,
        client_secret: row.try_get("client_secret").map_err(store_err)?,
        token_key: token_key
            .try_into()
            .map_err(|_| StoreError::Corrupt("token key length".into()))?,
        settings: serde_json::from_str(&settings)
            .map_err(|e| StoreError::Corrupt(format!("app settings: {e}")))?,
        created_ms: u64_of(row, "created_ms")?,
    })
}

fn user_from_row(row: &PgRow) -> Result<User, StoreError> {
    let username: String = row.try_get("username").map_err(store_err)?;
    Ok(User {
        id: row.try_get("id").map_err(store_err)?,
        app_id: row.try_get("app_id").map_err(store_err)?,
        username: Username::parse(&username).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        password_hash: row.try_get("password_hash").map_err(store_err)?,
        activated: row.try_get("activated").map_err(store_err)?,
        nickname: row.try_get("nickname").map_err(store_err)?,
        push: PushSettings::from_json(
            row.try_get::<Option<String>, _>("push_settings")
                .map_err(store_err)?
                .as_deref(),
        )
        .map_err(|e| StoreError::Corrupt(format!("push settings: {e}")))?,
        created_ms: u64_of(row, "created_ms")?,
        modified_ms: u64_of(row, "modified_ms")?,
        token_generation: row
            .try_get::<i64, _>("token_generation")
            .map_err(store_err)? as u32,
        tokens_revoked_ms: row
            .try_get::<i64, _>("tokens_revoked_ms")
            .map_err(store_err)? as u64,
    })
}

/// The user columns every user query selects or returns.
macro_rules! user_columns {
    () => {
        "seq, id, app_id, username, password_hash, activated, nickname, push_settings, \
         created_ms, modified_ms, token_generation, tokens_revoked_ms"
    };
}
const USER_COLUMNS: &str = user_columns!();

fn message_from_row(row: &PgRow) -> Result<StoredMessage, StoreError> {
    let name = |col: &str| -> Result<Username, StoreError> {
        let text: String = row.try_get(col).map_err(store_err)?;
        Username::parse(&text).map_err(|e| StoreError::Corrupt(e.to_string()))
    };
    Ok(NewMessage {
        id: u64_of(row, "id")?,
        app_id: row.try_get("app_id").map_err(store_err)?,
        from: Party {
            id: row.try_get("from_id").map_err(store_err)?,
            name: name("from_name")?,
        },
        to: Party {
            id: row.try_get("to_id").map_err(store_err)?,
            name: name("to_name")?,
        },
        from_resource: row.try_get("from_resource").map_err(store_err)?,
        to_resource: row.try_get("to_resource").map_err(store_err)?,
        client_id: row
            .try_get::<Option<i64>, _>("client_id")
            .map_err(store_err)?
            .map(|v| v as u64),
        timestamp_ms: u64_of(row, "ts")?,
        kind: MessageKind::from_i64(i64::from(row.try_get::<i16, _>("kind").map_err(store_err)?)),
        payload: row.try_get("payload").map_err(store_err)?,
    })
}

/// The history key of a pair of users: both IDs, smaller first (same as the embedded store).
fn conversation_key(a: Uuid, b: Uuid) -> Vec<u8> {
    let (lo, hi) = if a.as_bytes() <= b.as_bytes() {
        (a, b)
    } else {
        (b, a)
    };
    let mut key = Vec::with_capacity(32);
    key.extend_from_slice(lo.as_bytes());
    key.extend_from_slice(hi.as_bytes());
    key
}

const MESSAGE_COLUMNS: &str = "id, app_id, from_id, from_name, to_id, to_name, from_resource, \
     to_resource, client_id, ts, kind, payload";

#[async_trait]
impl Store for PostgresStore {
    fn engine(&self) -> &'static str {
        "postgres"
    }

    async fn health(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(store_err)
    }

    async fn insert_app(&self, app: &App) -> Result<(), StoreError> {
        let settings = serde_json::to_string(&app.settings).expect("settings serialize");
        sqlx::query(
            "INSERT INTO apps (id, org, name, client_id, client_secret, token_key, settings, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(app.id)
        .bind(app.key.org())
        .bind(app.key.app())
        .bind(&app.client_id)
        .bind(&app.client_secret)
        .bind(app.token_key.as_slice())
        .bind(settings)
        .bind(app.created_ms as i64)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(store_err)
    }

    async fn app_by_key(&self, key: &AppKey) -> Result<Option<App>, StoreError> {
        sqlx::query("SELECT * FROM apps WHERE org = $1 AND name = $2")
            .bind(key.org())
            .bind(key.app())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?
            .as_ref()
            .map(app_from_row)
            .transpose()
    }

    async fn app_by_id(&self, id: Uuid) -> Result<Option<App>, StoreError> {
        sqlx::query("SELECT * FROM apps WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?
            .as_ref()
            .map(app_from_row)
            .transpose()
    }

    async fn list_apps(&self) -> Result<Vec<App>, StoreError> {
        sqlx::query("SELECT * FROM apps ORDER BY created_ms, org, name")
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?
            .iter()
            .map(app_from_row)
            .collect()
    }

    async fn update_app_settings(
        &self,
        id: Uuid,
        settings: &AppSettings,
    ) -> Result<bool, StoreError> {
        let settings = serde_json::to_string(settings).expect("settings serialize");
        let done = sqlx::query("UPDATE apps SET settings = $1 WHERE id = $2")
            .bind(settings)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_users(&self, users: &[User]) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_err)?;
        let mut out = Vec::with_capacity(users.len());
        for u in users {
            let done = sqlx::query(
                "INSERT INTO users (id, app_id, username, password_hash, activated, nickname, \
                 created_ms, modified_ms, token_generation, tokens_revoked_ms, push_settings) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (app_id, username) DO NOTHING",
            )
            .bind(u.id)
            .bind(u.app_id)
            .bind(u.username.as_str())
            .bind(u.password_hash.as_deref())
            .bind(u.activated)
            .bind(u.nickname.as_deref())
            .bind(u.created_ms as i64)
            .bind(u.modified_ms as i64)
            .bind(i64::from(u.token_generation))
            .bind(u.tokens_revoked_ms as i64)
            .bind(u.push.to_json())
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
            out.push(done.rows_affected() == 1);
        }
        tx.commit().await.map_err(store_err)?;
        Ok(out)
    }

    async fn user_by_name(
        &self,
        app_id: Uuid,
        name: &Username,
    ) -> Result<Option<User>, StoreError> {
        sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE app_id = $1 AND username = $2"
        ))
        .bind(app_id)
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_err)?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    async fn user_by_id(&self, app_id: Uuid, id: Uuid) -> Result<Option<User>, StoreError> {
        sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND app_id = $2"
        ))
        .bind(id)
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_err)?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    async fn list_users(
        &self,
        app_id: Uuid,
        after: Option<u64>,
        limit: u32,
    ) -> Result<UserPage, StoreError> {
        // One row more than asked tells whether another page follows.
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE app_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3"
        ))
        .bind(app_id)
        .bind(after.unwrap_or(0) as i64)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?;
        let more = rows.len() > limit as usize;
        let rows = &rows[..rows.len().min(limit as usize)];
        let next = match (more, rows.last()) {
            (true, Some(last)) => Some(last.try_get::<i64, _>("seq").map_err(store_err)? as u64),
            _ => None,
        };
        Ok(UserPage {
            users: rows.iter().map(user_from_row).collect::<Result<_, _>>()?,
            next,
        })
    }

    async fn update_user(
        &self,
        app_id: Uuid,
        name: &Username,
        update: UserUpdate,
        now_ms: u64,
    ) -> Result<Option<User>, StoreError> {
        let now = now_ms as i64;
        // $1 app, $2 username, $3 now, $4 the new value where there is one.
        let query = match &update {
            UserUpdate::Password { hash } => sqlx::query(concat!(
                "UPDATE users SET password_hash = $4, token_generation = token_generation + 1, \
                 tokens_revoked_ms = $3, modified_ms = $3 WHERE app_id = $1 AND username = $2 \
                 RETURNING ",
                user_columns!()
            ))
            .bind(app_id)
            .bind(name.as_str())
            .bind(now)
            .bind(hash.as_str()),
            UserUpdate::Activated(false) => sqlx::query(concat!(
                "UPDATE users SET activated = FALSE, token_generation = token_generation + 1, \
                 tokens_revoked_ms = $3, modified_ms = $3 WHERE app_id = $1 AND username = $2 \
                 RETURNING ",
                user_columns!()
            ))
            .bind(app_id)
            .bind(name.as_str())
            .bind(now),
            UserUpdate::Activated(true) => sqlx::query(concat!(
                "UPDATE users SET activated = TRUE, modified_ms = $3 \
                 WHERE app_id = $1 AND username = $2 RETURNING ",
                user_columns!()
            ))
            .bind(app_id)
            .bind(name.as_str())
            .bind(now),
            UserUpdate::Profile { nickname, push } => sqlx::query(concat!(
                "UPDATE users SET nickname = $4, push_settings = $5, modified_ms = $3 \
                 WHERE app_id = $1 AND username = $2 RETURNING ",
                user_columns!()
            ))
            .bind(app_id)
            .bind(name.as_str())
            .bind(now)
            .bind(nickname.as_deref())
            .bind(push.to_json()),
        };
        query
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn delete_user(&self, app_id: Uuid, name: &Username) -> Result<Option<User>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_err)?;
        // The user's inbox rows go with it (ON DELETE CASCADE); cursors are not tied by a
        // foreign key (a cursor flush racing a deletion must not fail), so they go with the
        // messages.
        let user = sqlx::query(&format!(
            "DELETE FROM users WHERE app_id = $1 AND username = $2 RETURNING {USER_COLUMNS}"
        ))
        .bind(app_id)
        .bind(name.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_err)?
        .as_ref()
        .map(user_from_row)
        .transpose()?;
        if let Some(user) = &user {
            delete_belongings(&mut tx, &[user.id]).await?;
        }
        tx.commit().await.map_err(store_err)?;
        Ok(user)
    }

    async fn delete_oldest_users(&self, app_id: Uuid, limit: u32) -> Result<Vec<User>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_err)?;
        let mut users = sqlx::query(&format!(
            "DELETE FROM users WHERE seq IN \
             (SELECT seq FROM users WHERE app_id = $1 ORDER BY seq LIMIT $2) \
             RETURNING {USER_COLUMNS}"
        ))
        .bind(app_id)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(store_err)?
        .iter()
        .map(|row| {
            Ok((
                row.try_get::<i64, _>("seq").map_err(store_err)?,
                user_from_row(row)?,
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let ids: Vec<Uuid> = users.iter().map(|(_, u)| u.id).collect();
        delete_belongings(&mut tx, &ids).await?;
        tx.commit().await.map_err(store_err)?;
        // RETURNING does not promise an order.
        users.sort_by_key(|(seq, _)| *seq);
        Ok(users.into_iter().map(|(_, u)| u).collect())
    }

    async fn count_users(&self, app_id: Uuid) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE app_id = $1")
            .bind(app_id)
            .fetch_one(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(n as u64)
    }

    async fn append_messages(&self, batch: &[NewMessage]) -> Result<Vec<Appended>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await.map_err(store_err)?;

        // 1. Lock every user the batch touches, in ID order (the same order in every
        //    transaction, so two nodes' batches cannot deadlock). A party without a users
        //    row (the app's "admin" pseudo-sender, a user deleted meanwhile) gets no inbox
        //    entry.
        let mut party_ids: Vec<Uuid> = batch.iter().flat_map(|m| [m.from.id, m.to.id]).collect();
        party_ids.sort_unstable();
        party_ids.dedup();
        let mut next_seq: BTreeMap<Uuid, i64> = sqlx::query(
            "SELECT id, inbox_seq FROM users WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(&party_ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(store_err)?
        .iter()
        .map(|row| {
            Ok((
                row.try_get::<Uuid, _>("id").map_err(store_err)?,
                row.try_get::<i64, _>("inbox_seq").map_err(store_err)?,
            ))
        })
        .collect::<Result<_, StoreError>>()?;
        let before = next_seq.clone();

        // 2. Insert the messages in one statement, in batch order; a resend (same sender,
        //    device and client ID, stored earlier or earlier in this batch) is skipped.
        let mut ids = Vec::with_capacity(batch.len());
        let (mut app_ids, mut from_ids, mut from_names) = (Vec::new(), Vec::new(), Vec::new());
        let (mut to_ids, mut to_names, mut resources) = (Vec::new(), Vec::new(), Vec::new());
        let (mut client_ids, mut stamps, mut kinds) = (Vec::new(), Vec::new(), Vec::new());
        let (mut convs, mut payloads, mut targets) = (Vec::new(), Vec::new(), Vec::new());
        for m in batch {
            ids.push(m.id as i64);
            app_ids.push(m.app_id);
            from_ids.push(m.from.id);
            from_names.push(m.from.name.as_str().to_owned());
            to_ids.push(m.to.id);
            to_names.push(m.to.name.as_str().to_owned());
            resources.push(m.from_resource.clone());
            targets.push(m.to_resource.clone());
            client_ids.push(m.client_id.map(|v| v as i64));
            stamps.push(m.timestamp_ms as i64);
            kinds.push(m.kind as i16);
            convs.push(conversation_key(m.from.id, m.to.id));
            payloads.push(m.payload.clone());
        }
        let inserted: HashSet<i64> = sqlx::query_scalar(
            "INSERT INTO messages (id, app_id, from_id, from_name, to_id, to_name, \
               from_resource, client_id, ts, kind, conv, payload, to_resource) \
             SELECT id, app_id, from_id, from_name, to_id, to_name, from_resource, client_id, \
               ts, kind, conv, payload, to_resource \
             FROM UNNEST($1::bigint[], $2::uuid[], $3::uuid[], $4::text[], $5::uuid[], \
               $6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::smallint[], \
               $11::bytea[], $12::bytea[], $13::text[]) WITH ORDINALITY \
               AS t(id, app_id, from_id, from_name, to_id, to_name, from_resource, client_id, \
                    ts, kind, conv, payload, to_resource, ord) \
             ORDER BY ord \
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(&ids)
        .bind(&app_ids)
        .bind(&from_ids)
        .bind(&from_names)
        .bind(&to_ids)
        .bind(&to_names)
        .bind(&resources)
        .bind(&client_ids)
        .bind(&stamps)
        .bind(&kinds)
        .bind(&convs)
        .bind(&payloads)
        .bind(&targets)
        .fetch_all(&mut *tx)
        .await
        .map_err(store_err)?
        .into_iter()
        .collect();

        // 3. Inbox entries for the stored messages, numbered per user in batch order.
        let (mut inbox_users, mut inbox_seqs) = (Vec::new(), Vec::new());
        let (mut inbox_messages, mut inbox_sent) = (Vec::new(), Vec::new());
        let mut out = Vec::with_capacity(batch.len());
        for m in batch {
            if !inserted.contains(&(m.id as i64)) {
                out.push(original_of(&mut tx, m).await?);
                continue;
            }
            out.push(Appended {
                id: m.id,
                timestamp_ms: m.timestamp_ms,
                duplicate: false,
            });
            let mut entry = |user: Uuid, sent: bool| {
                if let Some(seq) = next_seq.get_mut(&user) {
                    *seq += 1;
                    inbox_users.push(user);
                    inbox_seqs.push(*seq);
                    inbox_messages.push(m.id as i64);
                    inbox_sent.push(sent);
                }
            };
            entry(m.to.id, false);
            if m.from.id != m.to.id {
                entry(m.from.id, true);
            }
        }
        if !inbox_users.is_empty() {
            sqlx::query(
                "INSERT INTO inbox (user_id, seq, message_id, sent) \
                 SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::bigint[], $4::boolean[])",
            )
            .bind(&inbox_users)
            .bind(&inbox_seqs)
            .bind(&inbox_messages)
            .bind(&inbox_sent)
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
            let (users, seqs): (Vec<Uuid>, Vec<i64>) = next_seq
                .into_iter()
                .filter(|(id, seq)| before.get(id) != Some(seq))
                .unzip();
            sqlx::query(
                "UPDATE users SET inbox_seq = v.seq \
                 FROM UNNEST($1::uuid[], $2::bigint[]) AS v(id, seq) WHERE users.id = v.id",
            )
            .bind(&users)
            .bind(&seqs)
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
        }
        tx.commit().await.map_err(store_err)?;
        Ok(out)
    }

    async fn inbox_position(
        &self,
        user_id: Uuid,
        resource: &str,
        keep_count: u32,
    ) -> Result<InboxPosition, StoreError> {
        let row = sqlx::query(
            "SELECT \
               (SELECT cursor FROM inbox_cursors WHERE user_id = $1 AND resource = $2) AS device, \
               (SELECT cursor FROM offline_cursors WHERE user_id = $1) AS offline, \
               (SELECT MAX(seq) FROM inbox WHERE user_id = $1) AS latest, \
               (SELECT seq FROM inbox WHERE user_id = $1 ORDER BY seq DESC \
                  LIMIT 1 OFFSET $3) AS floor",
        )
        .bind(user_id)
        .bind(resource)
        .bind(i64::from(keep_count))
        .fetch_one(&self.pool)
        .await
        .map_err(store_err)?;
        let get = |col: &str| -> Result<Option<u64>, StoreError> {
            Ok(row
                .try_get::<Option<i64>, _>(col)
                .map_err(store_err)?
                .map(|v| v as u64))
        };
        Ok(InboxPosition {
            device_cursor: get("device")?,
            offline_cursor: get("offline")?.unwrap_or(0),
            latest: get("latest")?.unwrap_or(0),
            backlog_floor: get("floor")?.unwrap_or(0),
        })
    }

    async fn inbox_after(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        query: &InboxQuery<'_>,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        // Messages the user sent show up only after `sent_after`, and never on the device
        // that sent them (a message to oneself included).
        let sql = format!(
            "SELECT i.seq AS cursor, {MESSAGE_COLUMNS} FROM inbox i \
               JOIN messages m ON m.id = i.message_id \
             WHERE i.user_id = $1 AND i.seq > $3 AND m.app_id = $2 AND m.ts >= $6 \
               AND (NOT i.sent OR (i.seq > $4 AND m.from_resource <> $5)) \
               AND (m.from_id <> $1 OR m.from_resource <> $5) \
               AND (i.sent OR m.to_resource IS NULL OR m.to_resource = $5) \
             ORDER BY i.seq LIMIT $7"
        );
        sqlx::query(&sql)
            .bind(user_id)
            .bind(app_id)
            .bind(query.after as i64)
            .bind(query.sent_after as i64)
            .bind(query.resource)
            .bind(query.min_timestamp_ms as i64)
            .bind(i64::from(query.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?
            .iter()
            .map(|row| {
                Ok(InboxEntry {
                    cursor: u64_of(row, "cursor")?,
                    message: message_from_row(row)?,
                })
            })
            .collect()
    }

    async fn save_inbox_cursors(
        &self,
        cursors: &[((Uuid, String), u64)],
    ) -> Result<(), StoreError> {
        if cursors.is_empty() {
            return Ok(());
        }
        let mut users = Vec::with_capacity(cursors.len());
        let mut resources = Vec::with_capacity(cursors.len());
        let mut values = Vec::with_capacity(cursors.len());
        for ((user, resource), cursor) in cursors {
            users.push(*user);
            resources.push(resource.clone());
            values.push(*cursor as i64);
        }
        let mut tx = self.pool.begin().await.map_err(store_err)?;
        // Grouped first: one upsert may not touch a row twice. Sorted, so concurrent
        // flushes from several nodes take row locks in the same order.
        sqlx::query(
            "INSERT INTO inbox_cursors (user_id, resource, cursor) \
             SELECT u, r, MAX(c) FROM UNNEST($1::uuid[], $2::text[], $3::bigint[]) AS v(u, r, c) \
             GROUP BY u, r ORDER BY u, r \
             ON CONFLICT (user_id, resource) \
               DO UPDATE SET cursor = GREATEST(inbox_cursors.cursor, excluded.cursor)",
        )
        .bind(&users)
        .bind(&resources)
        .bind(&values)
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
        sqlx::query(
            "INSERT INTO offline_cursors (user_id, cursor) \
             SELECT u, MAX(c) FROM UNNEST($1::uuid[], $2::bigint[]) AS v(u, c) \
             GROUP BY u ORDER BY u \
             ON CONFLICT (user_id) \
               DO UPDATE SET cursor = GREATEST(offline_cursors.cursor, excluded.cursor)",
        )
        .bind(&users)
        .bind(&values)
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
        tx.commit().await.map_err(store_err)
    }

    async fn history(
        &self,
        app_id: Uuid,
        query: &HistoryQuery,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let order = if query.descending { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conv = $1 AND app_id = $2 AND kind = 0 \
             AND id < $3 AND id > $4 AND ts >= $5 AND ts <= $6 ORDER BY id {order} LIMIT $7"
        );
        sqlx::query(&sql)
            .bind(conversation_key(query.a, query.b))
            .bind(app_id)
            .bind(query.before.map_or(i64::MAX, |v| v as i64))
            .bind(query.after.map_or(0, |v| v as i64))
            .bind(query.from_ms.map_or(0, |v| v as i64))
            .bind(query.to_ms.map_or(i64::MAX, |v| v as i64))
            .bind(i64::from(query.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?
            .iter()
            .map(message_from_row)
            .collect()
    }

    async fn conversations(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Conversation>, StoreError> {
        // Unread: the peer's chat messages after the user's newest read mark to the peer,
        // through the two partial indexes (`kind = 0` and `kind = 2` stay literals).
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS}, ( \
               SELECT COUNT(*) FROM ( \
                 SELECT 1 FROM messages u \
                 WHERE u.conv = m.conv AND u.kind = 0 AND u.to_id = $1 AND u.id > GREATEST( \
                   COALESCE((SELECT MAX(r.id) FROM messages r WHERE r.kind = 2 AND r.from_id = $1 \
                      AND r.to_id = CASE WHEN m.from_id = $1 THEN m.to_id ELSE m.from_id END), 0), \
                   COALESCE((SELECT c.list_up_to FROM conversation_clears c WHERE c.user_id = $1 \
                      AND c.peer_id = CASE WHEN m.from_id = $1 THEN m.to_id ELSE m.from_id END), 0)) \
                 LIMIT $5) AS unread_rows) AS unread \
             FROM messages m WHERE m.id > COALESCE((SELECT c.list_up_to FROM conversation_clears c \
                 WHERE c.user_id = $1 \
                   AND c.peer_id = CASE WHEN m.from_id = $1 THEN m.to_id ELSE m.from_id END), 0) \
             AND m.id IN ( \
               SELECT MAX(id) FROM ( \
                 SELECT from_id AS peer, id FROM messages \
                   WHERE to_id = $1 AND app_id = $2 AND kind = 0 \
                 UNION ALL \
                 SELECT to_id AS peer, id FROM messages \
                   WHERE from_id = $1 AND app_id = $2 AND kind = 0) AS mine \
               GROUP BY peer HAVING MAX(id) < $4) \
             ORDER BY m.id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .bind(app_id)
            .bind(i64::from(limit))
            .bind(before.map_or(i64::MAX, |b| b as i64))
            .bind(i64::from(MAX_UNREAD_COUNTED))
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        rows.iter()
            .map(|row| {
                let last = message_from_row(row)?;
                let peer = if last.from.id == user_id {
                    last.to.name.clone()
                } else {
                    last.from.name.clone()
                };
                let unread: i64 = row.try_get("unread").map_err(store_err)?;
                Ok(Conversation {
                    peer,
                    last,
                    unread: unread.clamp(0, i64::from(MAX_UNREAD_COUNTED)) as u32,
                })
            })
            .collect()
    }

    async fn message_by_id(
        &self,
        app_id: Uuid,
        id: u64,
    ) -> Result<Option<StoredMessage>, StoreError> {
        sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1 AND app_id = $2"
        ))
        .bind(id as i64)
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_err)?
        .as_ref()
        .map(message_from_row)
        .transpose()
    }

    async fn delete_message(&self, app_id: Uuid, id: u64) -> Result<bool, StoreError> {
        // Inbox rows that point at it are skipped by the inbox's join from then on.
        let done = sqlx::query("DELETE FROM messages WHERE id = $1 AND app_id = $2")
            .bind(id as i64)
            .bind(app_id)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn clear_conversation(
        &self,
        user_id: Uuid,
        peer_id: Uuid,
        up_to: u64,
        history: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO conversation_clears (user_id, peer_id, list_up_to, history_up_to) \
             VALUES ($1, $2, $3, CASE WHEN $4 THEN $3 ELSE 0 END) \
             ON CONFLICT (user_id, peer_id) DO UPDATE SET \
               list_up_to = GREATEST(conversation_clears.list_up_to, excluded.list_up_to), \
               history_up_to = GREATEST(conversation_clears.history_up_to, excluded.history_up_to)",
        )
        .bind(user_id)
        .bind(peer_id)
        .bind(up_to as i64)
        .bind(history)
        .execute(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(())
    }

    async fn clear_history(
        &self,
        user_id: Uuid,
        peer_id: Uuid,
        up_to: u64,
    ) -> Result<(), StoreError> {
        // A new row's list mark 0 lists the conversation as before.
        sqlx::query(
            "INSERT INTO conversation_clears (user_id, peer_id, list_up_to, history_up_to) \
             VALUES ($1, $2, 0, $3) \
             ON CONFLICT (user_id, peer_id) DO UPDATE SET \
               history_up_to = GREATEST(conversation_clears.history_up_to, excluded.history_up_to)",
        )
        .bind(user_id)
        .bind(peer_id)
        .bind(up_to as i64)
        .execute(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(())
    }

    async fn history_start(&self, user_id: Uuid, peer_id: Uuid) -> Result<u64, StoreError> {
        let start: Option<i64> = sqlx::query_scalar(
            "SELECT history_up_to FROM conversation_clears WHERE user_id = $1 AND peer_id = $2",
        )
        .bind(user_id)
        .bind(peer_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(start.unwrap_or(0) as u64)
    }

    async fn replace_payload(
        &self,
        app_id: Uuid,
        id: u64,
        payload: &[u8],
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE messages SET payload = $1 WHERE id = $2 AND app_id = $3")
            .bind(payload)
            .bind(id as i64)
            .bind(app_id)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn latest_message_id(&self) -> Result<Option<u64>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM messages")
            .fetch_one(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(id.map(|id| id as u64))
    }
}

/// The stored original of a message that was not inserted: a resend.
async fn original_of(tx: &mut sqlx::PgConnection, m: &NewMessage) -> Result<Appended, StoreError> {
    let row = match m.client_id {
        Some(client_id) => sqlx::query(
            "SELECT id, ts FROM messages \
             WHERE from_id = $1 AND from_resource = $2 AND client_id = $3",
        )
        .bind(m.from.id)
        .bind(m.from_resource.as_str())
        .bind(client_id as i64)
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_err)?,
        None => None,
    };
    let row = row.ok_or_else(|| StoreError::Corrupt(format!("message id {} collided", m.id)))?;
    Ok(Appended {
        id: u64_of(&row, "id")?,
        timestamp_ms: u64_of(&row, "ts")?,
        duplicate: true,
    })
}

/// What goes with deleted users besides their rows (their own inbox rows and conversation
/// clears cascade): every message they sent or received (spec §5.3) with the other party's
/// inbox row for it, and their devices' cursors. An admin operation, rare enough for the
/// inbox scan that finding those rows takes (no index on `message_id` to slow every send).
async fn delete_belongings(tx: &mut sqlx::PgConnection, users: &[Uuid]) -> Result<(), StoreError> {
    if users.is_empty() {
        return Ok(());
    }
    for sql in [
        "WITH gone AS (DELETE FROM messages WHERE to_id = ANY($1) OR from_id = ANY($1) \
           RETURNING id, CASE WHEN from_id = ANY($1) THEN to_id ELSE from_id END AS peer) \
         DELETE FROM inbox i USING gone g WHERE i.user_id = g.peer AND i.message_id = g.id",
        "DELETE FROM inbox_cursors WHERE user_id = ANY($1)",
        "DELETE FROM offline_cursors WHERE user_id = ANY($1)",
    ] {
        sqlx::query(sql)
            .bind(users)
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
    }
    Ok(())
}

pub mod testing;
