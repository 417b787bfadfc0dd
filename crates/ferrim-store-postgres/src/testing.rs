//! Test support: a fresh, empty schema per test in the test database.
//!
//! Tests read the database from `FERRIM_TEST_DATABASE_URL`. In CI (`CI` set) a missing or
//! unreachable database fails the test loudly; elsewhere the local default
//! ([`LOCAL_TEST_DATABASE_URL`]) is tried, and if it is not reachable the test process
//! prints a notice and exits successfully (skipping the PostgreSQL tests).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Connection, PgConnection};

use crate::PostgresStore;

/// The test database of CI and of the development machine.
pub const LOCAL_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const ENV: &str = "FERRIM_TEST_DATABASE_URL";
/// Test schemas older than this are dropped by the next test run.
const STALE_SECS: u64 = 3600;

static SWEPT: AtomicBool = AtomicBool::new(false);

/// A URL to a newly created, empty schema (selected through `search_path`) of the test
/// database. Migrations are not applied.
pub async fn fresh_schema_url() -> String {
    let explicit = std::env::var(ENV).ok().filter(|v| !v.is_empty());
    let in_ci = std::env::var_os("CI").is_some();
    if explicit.is_none() && in_ci {
        panic!("{ENV} is not set: CI must run the PostgreSQL store tests (e.g. {ENV}={LOCAL_TEST_DATABASE_URL})");
    }
    let base = explicit
        .clone()
        .unwrap_or_else(|| LOCAL_TEST_DATABASE_URL.into());
    let mut conn = match PgConnection::connect(&base).await {
        Ok(conn) => conn,
        Err(e) if explicit.is_none() => {
            eprintln!(
                "notice: skipping the PostgreSQL tests: {ENV} is not set and {base} is not \
                 reachable ({e}). Set {ENV} to a database where tests may create schemas."
            );
            std::process::exit(0);
        }
        Err(e) => panic!("cannot connect to {ENV}={base}: {e}"),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    if !SWEPT.swap(true, Ordering::SeqCst) {
        sweep_stale(&mut conn, now).await;
    }
    let schema = format!(
        "ferrim_test_{now}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create schema {schema}: {e}"));
    let _ = conn.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3D{schema}")
}

/// A migrated store in a fresh schema.
pub async fn fresh_store() -> PostgresStore {
    let store = PostgresStore::connect_with(&fresh_schema_url().await, 4)
        .await
        .expect("connect to the test schema");
    store.migrate().await.expect("migrate the test schema");
    store
}

/// Drops test schemas left by runs more than an hour ago (tests cannot clean up after
/// themselves: the store outlives the test body).
async fn sweep_stale(conn: &mut PgConnection, now: u64) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'ferrim\\_test\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    for name in names {
        let created = name
            .split('_')
            .nth(2)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(now);
        if created + STALE_SECS < now {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .execute(&mut *conn)
                .await;
        }
    }
}
