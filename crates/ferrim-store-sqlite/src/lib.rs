//! The embedded store: SQLite in WAL mode through sqlx.
//!
//! Writes go through a single connection (SQLite allows one writer at a time, and queuing
//! in-process is cheaper than retrying on `SQLITE_BUSY`); reads use a small pool of
//! read-only connections that WAL lets run alongside the writer.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use ferrim_core::app::{App, AppKey, AppSettings};
use ferrim_core::store::{Store, StoreError, UserPage, UserUpdate};
use ferrim_core::user::{User, Username};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row;
use uuid::Uuid;

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "ferrim.db";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The SQLite backend.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
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
            .pragma("temp_store", "memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .map_err(store_err)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await
            .map_err(store_err)?;
        Ok(Self { writer, reader })
    }

    /// Closes both pools, flushing the WAL.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

fn uuid_of(row: &SqliteRow, col: &str) -> Result<Uuid, StoreError> {
    let bytes: Vec<u8> = row.try_get(col).map_err(store_err)?;
    Uuid::from_slice(&bytes).map_err(|_| StoreError::Corrupt(format!("bad uuid in {col}")))
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
        created_ms: row.try_get::<i64, _>("created_ms").map_err(store_err)? as u64,
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
        created_ms: row.try_get::<i64, _>("created_ms").map_err(store_err)? as u64,
        modified_ms: row.try_get::<i64, _>("modified_ms").map_err(store_err)? as u64,
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
        "seq, id, app_id, username, password_hash, activated, nickname, \
         created_ms, modified_ms, token_generation, tokens_revoked_ms"
    };
}
const USER_COLUMNS: &str = user_columns!();

#[async_trait]
impl Store for SqliteStore {
    fn engine(&self) -> &'static str {
        "sqlite"
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
                 created_ms, modified_ms, token_generation, tokens_revoked_ms) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (app_id, username) DO NOTHING",
            )
            .bind(u.id.as_bytes().as_slice())
            .bind(u.app_id.as_bytes().as_slice())
            .bind(u.username.as_str())
            .bind(u.password_hash.as_deref())
            .bind(u.activated)
            .bind(u.nickname.as_deref())
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
            UserUpdate::Nickname(nick) => sqlx::query(concat!(
                "UPDATE users SET nickname = ?, modified_ms = ? WHERE app_id = ? AND username = ? \
                 RETURNING ",
                user_columns!()
            ))
            .bind(nick.as_deref())
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
        sqlx::query(&format!(
            "DELETE FROM users WHERE app_id = ? AND username = ? RETURNING {USER_COLUMNS}"
        ))
        .bind(app_id.as_bytes().as_slice())
        .bind(name.as_str())
        .fetch_optional(&self.writer)
        .await
        .map_err(store_err)?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    async fn delete_oldest_users(&self, app_id: Uuid, limit: u32) -> Result<Vec<User>, StoreError> {
        let mut users = sqlx::query(&format!(
            "DELETE FROM users WHERE seq IN \
             (SELECT seq FROM users WHERE app_id = ? ORDER BY seq LIMIT ?) \
             RETURNING {USER_COLUMNS}"
        ))
        .bind(app_id.as_bytes().as_slice())
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
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
}
