//! The embedded store: SQLite in WAL mode through sqlx.
//!
//! Writes go through a single connection (SQLite allows one writer at a time, and queuing
//! in-process is cheaper than retrying on `SQLITE_BUSY`); reads use a small pool of
//! read-only connections that WAL lets run alongside the writer.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferrim_core::app::{App, AppKey, AppSettings};
use ferrim_core::messaging::{
    Appended, Conversation, HistoryQuery, InboxEntry, InboxPosition, InboxQuery, MessageKind,
    NewMessage, Party, StoredMessage, MAX_UNREAD_COUNTED,
};
use ferrim_core::store::{Store, StoreError, UserPage, UserUpdate};
use ferrim_core::user::{PushSettings, User, Username};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row;
use uuid::Uuid;

use crate::checkpoint::Checkpointer;
use crate::journal::Journal;
pub use crate::journal::JOURNAL_FILE;

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "ferrim.db";

mod checkpoint;
mod journal;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The SQLite backend.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    checkpointer: Arc<Checkpointer>,
    /// Where sends are committed before they are merged into `messages`.
    journal: Arc<Journal>,
}

fn store_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(Box::new(e))
        }
        _ => StoreError::Other(Box::new(e)),
    }
}

/// Writes a consistent copy of the embedded store in `data_dir` to the new file `out`, while
/// a server may be running on it: `VACUUM INTO` reads one snapshot (WAL readers do not block
/// the writer), and the copy is a single compacted database file with no WAL to go with it.
pub async fn backup(data_dir: &Path, out: &Path) -> Result<(), StoreError> {
    use sqlx::ConnectOptions;
    let db = data_dir.join(DB_FILE);
    if !db.is_file() {
        return Err(StoreError::Unavailable(
            format!("no embedded store at {}", db.display()).into(),
        ));
    }
    if out.exists() {
        return Err(StoreError::Conflict);
    }
    let mut conn = SqliteConnectOptions::new()
        .filename(&db)
        .read_only(true)
        .busy_timeout(Duration::from_secs(30))
        .connect()
        .await
        .map_err(store_err)?;
    let target = out
        .to_str()
        .ok_or_else(|| StoreError::Unavailable("the backup path is not UTF-8".into()))?;
    // The journal's rows are read before the copy is made (see `snapshot_for_backup`).
    let journal_db = data_dir.join(JOURNAL_FILE);
    let unmerged = blocking(move || journal::snapshot_for_backup(&journal_db)).await?;
    let result = sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(&mut conn)
        .await
        .map(drop)
        .map_err(store_err);
    let _ = sqlx::Connection::close(conn).await;
    result?;
    if let Some(unmerged) = unmerged {
        let out = out.to_path_buf();
        blocking(move || journal::complete_backup(&unmerged, &out)).await?;
    }
    Ok(())
}

/// Runs work on a connection of rusqlite's (blocking) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Other(Box::new(e)))?
        .map_err(|e| StoreError::Unavailable(Box::new(e)))
}

/// Pool settings for connections to a local file: such a connection does not go stale, so
/// it is neither pinged before each use (sqlx's default: a round trip to the connection's
/// worker thread per acquire, i.e. per store call) nor closed and reopened after an idle or
/// a maximum lifetime.
fn local_pool(max_connections: u32) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30))
        .test_before_acquire(false)
        .idle_timeout(None)
        .max_lifetime(None)
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir` and applies migrations.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(store_err)?
            .filename(data_dir.join(DB_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before the call returns, so an acknowledged write
            // survives power loss, not just a process crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("temp_store", "memory")
            // Reads through a memory map instead of a read() per page, and a 16 MiB page
            // cache per connection.
            .pragma("mmap_size", "268435456")
            .pragma("cache_size", "-16384")
            // The background checkpointer copies the WAL back; the writer checkpoints by
            // itself only past this many frames (see the `checkpoint` module).
            .pragma(
                "wal_autocheckpoint",
                checkpoint::WRITER_BACKSTOP_FRAMES.to_string(),
            );
        let writer = local_pool(1)
            .min_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(store_err)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        let reader = local_pool(4)
            .connect_with(options.clone().read_only(true))
            .await
            .map_err(store_err)?;
        let checkpointer = Checkpointer::start(data_dir.join(DB_FILE), "main")
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let journal = Journal::open(&data_dir.join(DB_FILE), &options).await?;
        Ok(Self {
            writer,
            reader,
            checkpointer: Arc::new(checkpointer),
            journal: Arc::new(journal),
        })
    }

    /// Closes both pools, flushing the WAL.
    pub async fn close(&self) {
        // The journal's last merge first; then the checkpointer, so that the writer's
        // connection is the last one and its close can fold the WAL back into the file.
        self.journal.close().await;
        self.checkpointer.stop().await;
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Up to `limit` messages with IDs above `after`, in ID order: for copying this store
    /// into another backend (`ferrim copy`).
    pub async fn export_messages(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.journal.settled().await?;
        sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id > ? ORDER BY id LIMIT ?"
        ))
        .bind(after as i64)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(store_err)?
        .iter()
        .map(message_from_row)
        .collect()
    }

    /// Every device cursor and every user's offline cursor (message IDs here), for copying
    /// this store into another backend. One row per device: read whole, offline.
    #[allow(clippy::type_complexity)]
    pub async fn export_cursors(
        &self,
    ) -> Result<(Vec<((Uuid, String), u64)>, Vec<(Uuid, u64)>), StoreError> {
        let device = sqlx::query("SELECT user_id, resource, cursor FROM inbox_cursors")
            .fetch_all(&self.reader)
            .await
            .map_err(store_err)?
            .iter()
            .map(|row| {
                Ok((
                    (
                        uuid_of(row, "user_id")?,
                        row.try_get::<String, _>("resource").map_err(store_err)?,
                    ),
                    u64_of(row, "cursor")?,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        let offline = sqlx::query("SELECT user_id, cursor FROM offline_cursors")
            .fetch_all(&self.reader)
            .await
            .map_err(store_err)?
            .iter()
            .map(|row| Ok((uuid_of(row, "user_id")?, u64_of(row, "cursor")?)))
            .collect::<Result<_, StoreError>>()?;
        Ok((device, offline))
    }

    /// Every deleted-conversation mark: (user, peer, list up to, history up to).
    pub async fn export_conversation_clears(
        &self,
    ) -> Result<Vec<(Uuid, Uuid, u64, u64)>, StoreError> {
        sqlx::query("SELECT user_id, peer_id, list_up_to, history_up_to FROM conversation_clears")
            .fetch_all(&self.reader)
            .await
            .map_err(store_err)?
            .iter()
            .map(|row| {
                Ok((
                    uuid_of(row, "user_id")?,
                    uuid_of(row, "peer_id")?,
                    u64_of(row, "list_up_to")?,
                    u64_of(row, "history_up_to")?,
                ))
            })
            .collect()
    }
}

fn uuid_of(row: &SqliteRow, col: &str) -> Result<Uuid, StoreError> {
    let bytes: Vec<u8> = row.try_get(col).map_err(store_err)?;
    Uuid::from_slice(&bytes).map_err(|_| StoreError::Corrupt(format!("bad uuid in {col}")))
}

/// An unsigned column stored as SQLite's signed 64-bit integer.
fn u64_of(row: &SqliteRow, col: &str) -> Result<u64, StoreError> {
    Ok(row.try_get::<i64, _>(col).map_err(store_err)? as u64)
}

fn app_from_row(row: &SqliteRow) -> Result<App, StoreError> {
    let org: String = row.try_get("org").map_err(store_err)?;
    let name: String = row.try_get("name").map_err(store_err)?;
    let key = AppKey::new(&org, &name).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let token_key: Vec<u8> = row.try_get("token_key").map_err(store_err)?;
    let settings: String = row.try_get("settings").map_err(store_err)?;
    Ok(App {
        id: uuid_of(row, "id")?,
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

fn user_from_row(row: &SqliteRow) -> Result<User, StoreError> {
    let username: String = row.try_get("username").map_err(store_err)?;
    Ok(User {
        id: uuid_of(row, "id")?,
        app_id: uuid_of(row, "app_id")?,
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

fn message_from_row(row: &SqliteRow) -> Result<StoredMessage, StoreError> {
    let name = |col: &str| -> Result<Username, StoreError> {
        let text: String = row.try_get(col).map_err(store_err)?;
        Username::parse(&text).map_err(|e| StoreError::Corrupt(e.to_string()))
    };
    Ok(NewMessage {
        id: u64_of(row, "id")?,
        app_id: uuid_of(row, "app_id")?,
        from: Party {
            id: uuid_of(row, "from_id")?,
            name: name("from_name")?,
        },
        to: Party {
            id: uuid_of(row, "to_id")?,
            name: name("to_name")?,
        },
        from_resource: row.try_get("from_resource").map_err(store_err)?,
        to_resource: row.try_get("to_resource").map_err(store_err)?,
        client_id: row
            .try_get::<Option<i64>, _>("client_id")
            .map_err(store_err)?
            .map(|v| v as u64),
        timestamp_ms: u64_of(row, "ts")?,
        kind: MessageKind::from_i64(row.try_get("kind").map_err(store_err)?),
        payload: row.try_get("payload").map_err(store_err)?,
    })
}

/// The history key of a pair of users: both IDs, smaller first.
fn conversation_key(a: Uuid, b: Uuid) -> [u8; 32] {
    let (lo, hi) = if a.as_bytes() <= b.as_bytes() {
        (a, b)
    } else {
        (b, a)
    };
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(lo.as_bytes());
    key[16..].copy_from_slice(hi.as_bytes());
    key
}

/// Cursors per upsert statement.
const CURSOR_CHUNK: usize = 1_000;

const MESSAGE_COLUMNS: &str = "id, app_id, from_id, from_name, to_id, to_name, from_resource, \
     to_resource, client_id, ts, kind, payload";

/// A user's conversations (`?1` user, `?2` app, `?3` limit, `?4` before, `?5` unread cap),
/// each with its last chat message and its unread count.
fn conversations_sql() -> String {
    // Unread: the peer's chat messages after the user's newest read mark to the peer,
    // through the two partial indexes (`kind = 0` and `kind = 2` stay literals).
    format!(
            "SELECT {MESSAGE_COLUMNS}, ( \
               SELECT COUNT(*) FROM ( \
                 SELECT 1 FROM messages u \
                 WHERE u.conv = m.conv AND u.kind = 0 AND u.to_id = ?1 AND u.id > MAX( \
                   COALESCE((SELECT MAX(r.id) FROM messages r WHERE r.kind = 2 AND r.from_id = ?1 \
                      AND r.to_id = CASE WHEN m.from_id = ?1 THEN m.to_id ELSE m.from_id END), 0), \
                   COALESCE((SELECT c.list_up_to FROM conversation_clears c WHERE c.user_id = ?1 \
                      AND c.peer_id = CASE WHEN m.from_id = ?1 THEN m.to_id ELSE m.from_id END), 0)) \
                 LIMIT ?5)) AS unread \
             FROM messages m WHERE m.id > COALESCE((SELECT c.list_up_to FROM conversation_clears c \
                 WHERE c.user_id = ?1 \
                   AND c.peer_id = CASE WHEN m.from_id = ?1 THEN m.to_id ELSE m.from_id END), 0) \
             AND m.id IN ( \
               SELECT MAX(id) FROM ( \
                 SELECT from_id AS peer, id FROM messages WHERE to_id = ?1 AND app_id = ?2 AND kind = 0 \
                 UNION ALL \
                 SELECT to_id AS peer, id FROM messages WHERE from_id = ?1 AND app_id = ?2 AND kind = 0) \
               GROUP BY peer HAVING MAX(id) < ?4) \
             ORDER BY m.id DESC LIMIT ?3"
        )
}

/// One page of a conversation's chat messages. `kind = 0` stays a literal: that is what
/// lets SQLite use the partial conversation index (migration 0003).
fn history_sql(descending: bool) -> String {
    let order = if descending { "DESC" } else { "ASC" };
    format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conv = ?1 AND app_id = ?2 AND kind = 0 \
         AND id < ?3 AND id > ?4 AND ts >= ?5 AND ts <= ?6 ORDER BY id {order} LIMIT ?7"
    )
}

#[async_trait]
impl Store for SqliteStore {
    fn engine(&self) -> &'static str {
        "sqlite"
    }

    fn inbox_cursor_is_message_id(&self) -> bool {
        true
    }

    async fn health(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map(|_| ())
            .map_err(store_err)
    }

    async fn insert_app(&self, app: &App) -> Result<(), StoreError> {
        let settings = serde_json::to_string(&app.settings).expect("settings serialize");
        sqlx::query(
            "INSERT INTO apps (id, org, name, client_id, client_secret, token_key, settings, created_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(app.id.as_bytes().as_slice())
        .bind(app.key.org())
        .bind(app.key.app())
        .bind(&app.client_id)
        .bind(&app.client_secret)
        .bind(app.token_key.as_slice())
        .bind(settings)
        .bind(app.created_ms as i64)
        .execute(&self.writer)
        .await
        .map(|_| ())
        .map_err(store_err)
    }

    async fn app_by_key(&self, key: &AppKey) -> Result<Option<App>, StoreError> {
        sqlx::query("SELECT * FROM apps WHERE org = ? AND name = ?")
            .bind(key.org())
            .bind(key.app())
            .fetch_optional(&self.reader)
            .await
            .map_err(store_err)?
            .as_ref()
            .map(app_from_row)
            .transpose()
    }

    async fn app_by_id(&self, id: Uuid) -> Result<Option<App>, StoreError> {
        sqlx::query("SELECT * FROM apps WHERE id = ?")
            .bind(id.as_bytes().as_slice())
            .fetch_optional(&self.reader)
            .await
            .map_err(store_err)?
            .as_ref()
            .map(app_from_row)
            .transpose()
    }

    async fn list_apps(&self) -> Result<Vec<App>, StoreError> {
        sqlx::query("SELECT * FROM apps ORDER BY created_ms, org, name")
            .fetch_all(&self.reader)
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
        let done = sqlx::query("UPDATE apps SET settings = ? WHERE id = ?")
            .bind(settings)
            .bind(id.as_bytes().as_slice())
            .execute(&self.writer)
            .await
            .map_err(store_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_users(&self, users: &[User]) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.writer.begin().await.map_err(store_err)?;
        let mut out = Vec::with_capacity(users.len());
        for u in users {
            let done = sqlx::query(
                "INSERT INTO users (id, app_id, username, password_hash, activated, nickname, \
                 push_settings, created_ms, modified_ms, token_generation, tokens_revoked_ms) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (app_id, username) DO NOTHING",
            )
            .bind(u.id.as_bytes().as_slice())
            .bind(u.app_id.as_bytes().as_slice())
            .bind(u.username.as_str())
            .bind(u.password_hash.as_deref())
            .bind(u.activated)
            .bind(u.nickname.as_deref())
            .bind(u.push.to_json())
            .bind(u.created_ms as i64)
            .bind(u.modified_ms as i64)
            .bind(i64::from(u.token_generation))
            .bind(u.tokens_revoked_ms as i64)
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
            "SELECT {USER_COLUMNS} FROM users WHERE app_id = ? AND username = ?"
        ))
        .bind(app_id.as_bytes().as_slice())
        .bind(name.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(store_err)?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    async fn user_by_id(&self, app_id: Uuid, id: Uuid) -> Result<Option<User>, StoreError> {
        sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = ? AND app_id = ?"
        ))
        .bind(id.as_bytes().as_slice())
        .bind(app_id.as_bytes().as_slice())
        .fetch_optional(&self.reader)
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
            "SELECT {USER_COLUMNS} FROM users WHERE app_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(app_id.as_bytes().as_slice())
        .bind(after.unwrap_or(0) as i64)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.reader)
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
        let query = match &update {
            UserUpdate::Password { hash } => sqlx::query(concat!(
                "UPDATE users SET password_hash = ?, token_generation = token_generation + 1, \
                 tokens_revoked_ms = ?, modified_ms = ? WHERE app_id = ? AND username = ? \
                 RETURNING ",
                user_columns!()
            ))
            .bind(hash.as_str())
            .bind(now)
            .bind(now),
            UserUpdate::Activated(false) => sqlx::query(concat!(
                "UPDATE users SET activated = 0, token_generation = token_generation + 1, \
                 tokens_revoked_ms = ?, modified_ms = ? WHERE app_id = ? AND username = ? \
                 RETURNING ",
                user_columns!()
            ))
            .bind(now)
            .bind(now),
            UserUpdate::Activated(true) => sqlx::query(concat!(
                "UPDATE users SET activated = 1, modified_ms = ? WHERE app_id = ? AND username = ? \
                 RETURNING ",
                user_columns!()
            ))
            .bind(now),
            UserUpdate::Profile { nickname, push } => sqlx::query(concat!(
                "UPDATE users SET nickname = ?, push_settings = ?, modified_ms = ? \
                 WHERE app_id = ? AND username = ? RETURNING ",
                user_columns!()
            ))
            .bind(nickname.as_deref())
            .bind(push.to_json())
            .bind(now),
        };
        query
            .bind(app_id.as_bytes().as_slice())
            .bind(name.as_str())
            .fetch_optional(&self.writer)
            .await
            .map_err(store_err)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn delete_user(&self, app_id: Uuid, name: &Username) -> Result<Option<User>, StoreError> {
        self.journal.settled().await?;
        let mut tx = self.writer.begin().await.map_err(store_err)?;
        let user = sqlx::query(&format!(
            "DELETE FROM users WHERE app_id = ? AND username = ? RETURNING {USER_COLUMNS}"
        ))
        .bind(app_id.as_bytes().as_slice())
        .bind(name.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_err)?
        .as_ref()
        .map(user_from_row)
        .transpose()?;
        if let Some(user) = &user {
            delete_belongings(&mut tx, user.id).await?;
        }
        tx.commit().await.map_err(store_err)?;
        Ok(user)
    }

    async fn delete_oldest_users(&self, app_id: Uuid, limit: u32) -> Result<Vec<User>, StoreError> {
        self.journal.settled().await?;
        let mut tx = self.writer.begin().await.map_err(store_err)?;
        let mut users = sqlx::query(&format!(
            "DELETE FROM users WHERE seq IN \
             (SELECT seq FROM users WHERE app_id = ? ORDER BY seq LIMIT ?) \
             RETURNING {USER_COLUMNS}"
        ))
        .bind(app_id.as_bytes().as_slice())
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
        for (_, user) in &users {
            delete_belongings(&mut tx, user.id).await?;
        }
        tx.commit().await.map_err(store_err)?;
        // RETURNING does not promise an order.
        users.sort_by_key(|(seq, _)| *seq);
        Ok(users.into_iter().map(|(_, u)| u).collect())
    }

    async fn count_users(&self, app_id: Uuid) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE app_id = ?")
            .bind(app_id.as_bytes().as_slice())
            .fetch_one(&self.reader)
            .await
            .map_err(store_err)?;
        Ok(n as u64)
    }

    async fn append_messages(&self, batch: &[NewMessage]) -> Result<Vec<Appended>, StoreError> {
        self.journal.append(batch).await
    }

    async fn inbox_position(
        &self,
        user_id: Uuid,
        resource: &str,
        keep_count: u32,
    ) -> Result<InboxPosition, StoreError> {
        self.journal.settled_for(user_id).await?;
        let user = user_id.as_bytes().as_slice();
        let row = sqlx::query(
            "SELECT \
               (SELECT cursor FROM inbox_cursors WHERE user_id = ?1 AND resource = ?2) AS device, \
               (SELECT cursor FROM offline_cursors WHERE user_id = ?1) AS offline, \
               (SELECT MAX(id) FROM messages WHERE to_id = ?1) AS latest_to, \
               (SELECT MAX(id) FROM messages WHERE from_id = ?1) AS latest_from",
        )
        .bind(user)
        .bind(resource)
        .fetch_one(&self.reader)
        .await
        .map_err(store_err)?;
        let get = |col: &str| -> Result<Option<u64>, StoreError> {
            Ok(row
                .try_get::<Option<i64>, _>(col)
                .map_err(store_err)?
                .map(|v| v as u64))
        };
        let latest = get("latest_to")?
            .unwrap_or(0)
            .max(get("latest_from")?.unwrap_or(0));
        let mut position = InboxPosition {
            device_cursor: get("device")?,
            offline_cursor: get("offline")?.unwrap_or(0),
            latest,
            backlog_floor: 0,
        };
        if latest > 0 {
            // The entry just before the newest `keep_count` ones, if there are more.
            let floor: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM (SELECT id FROM messages WHERE to_id = ?1 \
                   UNION ALL SELECT id FROM messages WHERE from_id = ?1 AND to_id != ?1) \
                 ORDER BY id DESC LIMIT 1 OFFSET ?2",
            )
            .bind(user)
            .bind(i64::from(keep_count))
            .fetch_optional(&self.reader)
            .await
            .map_err(store_err)?;
            position.backlog_floor = floor.map(|v| v as u64).unwrap_or(0);
        }
        Ok(position)
    }

    async fn inbox_after(
        &self,
        app_id: Uuid,
        user_id: Uuid,
        query: &InboxQuery<'_>,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        self.journal.settled_for(user_id).await?;
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages \
               WHERE to_id = ?1 AND app_id = ?2 AND id > ?3 AND ts >= ?6 \
                 AND (from_id != ?1 OR from_resource != ?5) \
                 AND (to_resource IS NULL OR to_resource = ?5) \
             UNION ALL SELECT {MESSAGE_COLUMNS} FROM messages \
               WHERE from_id = ?1 AND app_id = ?2 AND id > MAX(?3, ?4) AND to_id != ?1 \
                 AND from_resource != ?5 AND ts >= ?6 \
             ORDER BY id LIMIT ?7"
        );
        sqlx::query(&sql)
            .bind(user_id.as_bytes().as_slice())
            .bind(app_id.as_bytes().as_slice())
            .bind(query.after as i64)
            .bind(query.sent_after as i64)
            .bind(query.resource)
            .bind(query.min_timestamp_ms as i64)
            .bind(i64::from(query.limit))
            .fetch_all(&self.reader)
            .await
            .map_err(store_err)?
            .iter()
            .map(|row| {
                // One writer assigns IDs in commit order, so the ID is the cursor.
                let message = message_from_row(row)?;
                Ok(InboxEntry {
                    cursor: message.id,
                    message,
                })
            })
            .collect()
    }

    async fn save_inbox_cursors(
        &self,
        cursors: &[((Uuid, String), u64)],
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await.map_err(store_err)?;
        for chunk in cursors.chunks(CURSOR_CHUNK) {
            let mut devices =
                sqlx::QueryBuilder::new("INSERT INTO inbox_cursors (user_id, resource, cursor) ");
            devices.push_values(chunk, |mut row, ((user, resource), cursor)| {
                row.push_bind(user.as_bytes().as_slice())
                    .push_bind(resource.as_str())
                    .push_bind(*cursor as i64);
            });
            devices.push(
                " ON CONFLICT (user_id, resource) DO UPDATE SET cursor = MAX(cursor, excluded.cursor)",
            );
            devices.build().execute(&mut *tx).await.map_err(store_err)?;
            let mut users =
                sqlx::QueryBuilder::new("INSERT INTO offline_cursors (user_id, cursor) ");
            users.push_values(chunk, |mut row, ((user, _), cursor)| {
                row.push_bind(user.as_bytes().as_slice())
                    .push_bind(*cursor as i64);
            });
            users
                .push(" ON CONFLICT (user_id) DO UPDATE SET cursor = MAX(cursor, excluded.cursor)");
            users.build().execute(&mut *tx).await.map_err(store_err)?;
        }
        tx.commit().await.map_err(store_err)
    }

    async fn history(
        &self,
        app_id: Uuid,
        query: &HistoryQuery,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.journal.settled_for(query.a).await?;
        sqlx::query(&history_sql(query.descending))
            .bind(conversation_key(query.a, query.b).as_slice())
            .bind(app_id.as_bytes().as_slice())
            .bind(query.before.map_or(i64::MAX, |v| v as i64))
            .bind(query.after.map_or(0, |v| v as i64))
            .bind(query.from_ms.map_or(0, |v| v as i64))
            .bind(query.to_ms.map_or(i64::MAX, |v| v as i64))
            .bind(i64::from(query.limit))
            .fetch_all(&self.reader)
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
        self.journal.settled_for(user_id).await?;
        let sql = conversations_sql();
        let rows = sqlx::query(&sql)
            .bind(user_id.as_bytes().as_slice())
            .bind(app_id.as_bytes().as_slice())
            .bind(i64::from(limit))
            .bind(before.map_or(i64::MAX, |b| b as i64))
            .bind(i64::from(MAX_UNREAD_COUNTED))
            .fetch_all(&self.reader)
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
        self.journal.settled().await?;
        sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ? AND app_id = ?"
        ))
        .bind(id as i64)
        .bind(app_id.as_bytes().as_slice())
        .fetch_optional(&self.reader)
        .await
        .map_err(store_err)?
        .as_ref()
        .map(message_from_row)
        .transpose()
    }

    async fn delete_message(&self, app_id: Uuid, id: u64) -> Result<bool, StoreError> {
        self.journal.settled().await?;
        let done = sqlx::query("DELETE FROM messages WHERE id = ? AND app_id = ?")
            .bind(id as i64)
            .bind(app_id.as_bytes().as_slice())
            .execute(&self.writer)
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
             VALUES (?1, ?2, ?3, CASE WHEN ?4 THEN ?3 ELSE 0 END) \
             ON CONFLICT (user_id, peer_id) DO UPDATE SET \
               list_up_to = MAX(list_up_to, excluded.list_up_to), \
               history_up_to = MAX(history_up_to, excluded.history_up_to)",
        )
        .bind(user_id.as_bytes().as_slice())
        .bind(peer_id.as_bytes().as_slice())
        .bind(up_to as i64)
        .bind(history)
        .execute(&self.writer)
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
             VALUES (?1, ?2, 0, ?3) \
             ON CONFLICT (user_id, peer_id) DO UPDATE SET \
               history_up_to = MAX(history_up_to, excluded.history_up_to)",
        )
        .bind(user_id.as_bytes().as_slice())
        .bind(peer_id.as_bytes().as_slice())
        .bind(up_to as i64)
        .execute(&self.writer)
        .await
        .map_err(store_err)?;
        Ok(())
    }

    async fn history_start(&self, user_id: Uuid, peer_id: Uuid) -> Result<u64, StoreError> {
        let start: Option<i64> = sqlx::query_scalar(
            "SELECT history_up_to FROM conversation_clears WHERE user_id = ? AND peer_id = ?",
        )
        .bind(user_id.as_bytes().as_slice())
        .bind(peer_id.as_bytes().as_slice())
        .fetch_optional(&self.reader)
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
        self.journal.settled().await?;
        let done = sqlx::query("UPDATE messages SET payload = ? WHERE id = ? AND app_id = ?")
            .bind(payload)
            .bind(id as i64)
            .bind(app_id.as_bytes().as_slice())
            .execute(&self.writer)
            .await
            .map_err(store_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn latest_message_id(&self) -> Result<Option<u64>, StoreError> {
        let merged: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM messages")
            .fetch_one(&self.reader)
            .await
            .map_err(store_err)?;
        let journal = self.journal.latest_message_id().await?;
        Ok(merged.map(|id| id as u64).max(journal))
    }
}

/// What goes with a deleted user besides their row (conversation clears cascade): every
/// message they sent or received (spec §5.3; the other party's copy of a one-to-one
/// message is the same row) and their devices' inbox cursors.
async fn delete_belongings(tx: &mut sqlx::SqliteConnection, user: Uuid) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM messages WHERE to_id = ?",
        "DELETE FROM messages WHERE from_id = ?",
        "DELETE FROM inbox_cursors WHERE user_id = ?",
        "DELETE FROM offline_cursors WHERE user_id = ?",
    ] {
        sqlx::query(sql)
            .bind(user.as_bytes().as_slice())
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: u64, client_id: u64) -> NewMessage {
        let alice = Uuid::from_u128(1);
        let bob = Uuid::from_u128(2);
        NewMessage {
            id,
            app_id: Uuid::from_u128(9),
            from: Party {
                id: alice,
                name: Username::parse("alice").unwrap(),
            },
            to: Party {
                id: bob,
                name: Username::parse("bob").unwrap(),
            },
            from_resource: "web_1".into(),
            to_resource: None,
            client_id: Some(client_id),
            timestamp_ms: id,
            kind: MessageKind::Chat,
            payload: format!("payload-{id}").into_bytes(),
        }
    }

    async fn journal_rows(dir: &Path) -> i64 {
        let path = dir.join(JOURNAL_FILE);
        tokio::task::spawn_blocking(move || {
            rusqlite::Connection::open(path)
                .unwrap()
                .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
                .unwrap()
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_resend_of_a_merged_message_gets_the_original_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        store.append_messages(&[message(1, 7)]).await.unwrap();
        // A read merges it into the main database.
        assert!(store
            .message_by_id(message(1, 7).app_id, 1)
            .await
            .unwrap()
            .is_some());
        let again = store
            .append_messages(&[message(2, 7), message(3, 8)])
            .await
            .unwrap();
        assert_eq!(
            again
                .iter()
                .map(|a| (a.id, a.duplicate))
                .collect::<Vec<_>>(),
            [(1, true), (3, false)]
        );
        store.close().await;
    }

    #[tokio::test]
    async fn a_read_waits_for_a_merge_only_for_users_with_unmerged_messages() {
        /// Whether the future completes at its first poll.
        async fn at_once(f: impl std::future::Future<Output = Result<(), StoreError>>) -> bool {
            let mut f = std::pin::pin!(f);
            std::future::poll_fn(|cx| std::task::Poll::Ready(f.as_mut().poll(cx).is_ready())).await
        }
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let m = message(1, 1);
        store
            .append_messages(std::slice::from_ref(&m))
            .await
            .unwrap();
        let carol = Uuid::from_u128(3);
        assert!(
            at_once(store.journal.settled_for(carol)).await,
            "carol has nothing unmerged"
        );
        assert!(
            !at_once(store.journal.settled_for(m.to.id)).await,
            "bob's message is not merged yet"
        );
        store.journal.settled_for(m.to.id).await.unwrap();
        assert!(
            at_once(store.journal.settled_for(m.from.id)).await,
            "the merge covered alice too"
        );
        store.close().await;
    }

    #[tokio::test]
    async fn what_a_crash_left_in_the_journal_is_merged_at_open() {
        let dir = tempfile::tempdir().unwrap();
        SqliteStore::open(dir.path()).await.unwrap().close().await;
        // A committed journal row no merge has seen, as a crash leaves it.
        let path = dir.path().join(JOURNAL_FILE);
        tokio::task::spawn_blocking(move || {
            let m = message(5, 1);
            rusqlite::Connection::open(path)
                .unwrap()
                .execute(
                    "INSERT INTO messages (id, app_id, from_id, from_name, to_id, to_name, \
                       from_resource, client_id, ts, kind, conv, payload) \
                     VALUES (5, ?1, ?2, 'alice', ?3, 'bob', 'web_1', 1, 5, 0, ?4, ?5)",
                    rusqlite::params![
                        m.app_id.as_bytes().as_slice(),
                        m.from.id.as_bytes().as_slice(),
                        m.to.id.as_bytes().as_slice(),
                        conversation_key(m.from.id, m.to.id).as_slice(),
                        m.payload,
                    ],
                )
                .unwrap();
        })
        .await
        .unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        assert_eq!(
            journal_rows(dir.path()).await,
            0,
            "merged and trimmed at open"
        );
        let merged = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM messages WHERE id = 5")
            .fetch_one(&store.reader)
            .await
            .unwrap();
        assert_eq!(merged, 1);
        assert_eq!(store.latest_message_id().await.unwrap(), Some(5));
        store.close().await;
    }

    #[tokio::test]
    async fn a_replaced_journal_is_merged_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let app = message(0, 0).app_id;
        store
            .append_messages(&[message(1, 1), message(2, 2), message(3, 3)])
            .await
            .unwrap();
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.path().join(format!("{JOURNAL_FILE}{suffix}")));
        }
        // The new journal numbers its rows from 1 again, below the recorded merges.
        let store = SqliteStore::open(dir.path()).await.unwrap();
        store.append_messages(&[message(4, 4)]).await.unwrap();
        assert!(store.message_by_id(app, 4).await.unwrap().is_some());
        assert!(store.message_by_id(app, 3).await.unwrap().is_some());
        store.close().await;
    }

    #[tokio::test]
    async fn a_deleted_message_is_not_merged_again_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let app = message(0, 0).app_id;
        store.append_messages(&[message(1, 1)]).await.unwrap();
        assert!(store.delete_message(app, 1).await.unwrap());
        store.close().await;
        // Merged but not trimmed yet: still in the journal.
        assert_eq!(journal_rows(dir.path()).await, 1);
        let store = SqliteStore::open(dir.path()).await.unwrap();
        assert!(store.message_by_id(app, 1).await.unwrap().is_none());
        store.close().await;
    }

    #[tokio::test]
    async fn the_wal_is_copied_back_without_waiting_for_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let db_len = || std::fs::metadata(dir.path().join(DB_FILE)).unwrap().len();
        sqlx::query("CREATE TABLE filler (data BLOB)")
            .execute(&store.writer)
            .await
            .unwrap();
        let before = db_len();
        // ~2 MiB: far below the writer's own checkpoint threshold.
        for _ in 0..64 {
            sqlx::query("INSERT INTO filler VALUES (randomblob(32768))")
                .execute(&store.writer)
                .await
                .unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while db_len() < before + (1 << 20) {
            assert!(
                std::time::Instant::now() < deadline,
                "the database file did not grow: the WAL was not copied back"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        store.close().await;
    }

    /// The steps of an `EXPLAIN QUERY PLAN` query.
    async fn plan_of<'q>(
        store: &SqliteStore,
        explain: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> Vec<String> {
        explain
            .fetch_all(&store.reader)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get("detail"))
            .collect()
    }

    #[tokio::test]
    async fn history_reads_through_the_chat_only_conversation_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        for descending in [false, true] {
            let sql = format!("EXPLAIN QUERY PLAN {}", history_sql(descending));
            let plan = plan_of(
                &store,
                sqlx::query(&sql)
                    .bind([0u8; 32].as_slice())
                    .bind([0u8; 16].as_slice())
                    .bind(i64::MAX)
                    .bind(0i64)
                    .bind(0i64)
                    .bind(i64::MAX)
                    .bind(20i64),
            )
            .await;
            assert!(
                plan.iter().any(|step| step.contains("INDEX messages_conv")),
                "history does not use the conversation index: {plan:?}"
            );
        }
        store.close().await;
    }

    #[tokio::test]
    async fn unread_counts_read_through_the_read_mark_and_conversation_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let sql = format!("EXPLAIN QUERY PLAN {}", conversations_sql());
        let plan = plan_of(
            &store,
            sqlx::query(&sql)
                .bind([0u8; 16].as_slice())
                .bind([0u8; 16].as_slice())
                .bind(20i64)
                .bind(i64::MAX)
                .bind(1000i64),
        )
        .await;
        for index in ["messages_read_marks", "messages_conv"] {
            assert!(
                plan.iter()
                    .any(|step| step.contains(&format!("INDEX {index}"))),
                "conversations do not use {index}: {plan:?}"
            );
        }
        store.close().await;
    }
}
