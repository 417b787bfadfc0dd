//! `ferrim copy`: moving an embedded (SQLite) store into PostgreSQL, so a deployment that
//! started on one machine keeps its apps, users and messages when it becomes a cluster.
//!
//! Everything goes through the stores' own code: apps (with credentials and token keys, so
//! issued tokens stay valid) and users (with password hashes and token generations) through
//! the [`Store`] trait, messages through `append_messages` in ID order (so each user's
//! PostgreSQL inbox sequence follows the original order), and read cursors translated from
//! message IDs to those sequences. The target must be empty: a second run refuses, and a
//! failed run is redone into a fresh database.

use ferrim_core::store::Store;
use ferrim_store_postgres::PostgresStore;
use ferrim_store_sqlite::SqliteStore;

/// Users and messages moved per transaction.
const PAGE: u32 = 500;

/// What a copy moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub apps: u64,
    pub users: u64,
    pub messages: u64,
    pub device_cursors: u64,
    pub offline_cursors: u64,
    pub conversation_clears: u64,
}

/// Copies `source` into the empty PostgreSQL `target` (migrating it first). `progress`
/// receives a line per stage.
pub async fn sqlite_to_postgres(
    source: &SqliteStore,
    target: &PostgresStore,
    mut progress: impl FnMut(String),
) -> anyhow::Result<CopyReport> {
    target
        .migrate()
        .await
        .map_err(|e| anyhow::anyhow!("cannot migrate the target: {:#}", anyhow::Error::new(e)))?;
    anyhow::ensure!(
        target.is_empty().await?,
        "the target database already holds apps, users or messages; copy only into an empty \
         database (drop and recreate it to redo a copy)"
    );
    let mut report = CopyReport::default();
    for app in source.list_apps().await? {
        target.insert_app(&app).await?;
        report.apps += 1;
        let mut after = None;
        loop {
            let page = source.list_users(app.id, after, PAGE).await?;
            let inserted = target.insert_users(&page.users).await?;
            anyhow::ensure!(
                inserted.iter().all(|&ok| ok),
                "app {}: a user was already present in the target",
                app.key
            );
            report.users += page.users.len() as u64;
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        progress(format!("app {}: {} users so far", app.key, report.users));
    }
    let mut after = 0;
    loop {
        let batch = source.export_messages(after, PAGE).await?;
        let Some(last) = batch.last() else { break };
        after = last.id;
        let appended = target.append_messages(&batch).await?;
        anyhow::ensure!(
            appended.iter().all(|a| !a.duplicate),
            "a message was already present in the target"
        );
        report.messages += batch.len() as u64;
        if report.messages % (20 * u64::from(PAGE)) == 0 {
            progress(format!("{} messages", report.messages));
        }
    }
    progress(format!("{} messages", report.messages));
    let (device, offline) = source.export_cursors().await?;
    for chunk in device.chunks(PAGE as usize) {
        target.import_cursors_by_message_id(chunk, &[]).await?;
    }
    for chunk in offline.chunks(PAGE as usize) {
        target.import_cursors_by_message_id(&[], chunk).await?;
    }
    report.device_cursors = device.len() as u64;
    report.offline_cursors = offline.len() as u64;
    let clears = source.export_conversation_clears().await?;
    for &(user, peer, list_up_to, history_up_to) in &clears {
        target
            .clear_conversation(user, peer, list_up_to, false)
            .await?;
        if history_up_to > 0 {
            target.clear_history(user, peer, history_up_to).await?;
        }
    }
    report.conversation_clears = clears.len() as u64;
    target.analyze().await?;
    progress("statistics refreshed (ANALYZE)".into());
    Ok(report)
}
