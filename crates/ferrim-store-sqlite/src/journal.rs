//! The message journal: group commits store messages here, and a merger copies them into
//! the main database's `messages` table in bulk.
//!
//! In `messages` a row adds an entry to four indexes keyed by user or by conversation, each
//! on a random page, and a commit writes every page it touched in full to the WAL and again
//! at the checkpoint: with W3 that was ~36 KB written per message and most of the embedded
//! store's CPU. The journal's only keys grow with time, so a commit appends to the same few
//! pages. The merger copies what the journal gained every [`MERGE_INTERVAL`] in one
//! transaction, so an index page takes many messages' entries per write. The journal is a
//! file of its own because SQLite has one writer per database file: merges run beside the
//! commits instead of holding them up, on a thread with a lower CPU priority.
//!
//! Reads and changes of stored messages first wait until what they need has been merged,
//! waking the merger at once: a user's reads wait only for that user's unmerged rows
//! ([`Journal::settled_for`]), anything else for every row committed before it
//! ([`Journal::settled`]). So every query on `messages` stays as it was, and under load most
//! reads do not wait at all. A message is durable when its journal commit returns; the
//! merge and the journal's trim come later, and opening the store merges what a previous run
//! left.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, LazyLock, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ferrim_core::messaging::{Appended, NewMessage};
use ferrim_core::store::StoreError;
use rusqlite::{params, OptionalExtension};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use crate::checkpoint::Checkpointer;
use crate::{conversation_key, store_err};

/// Name of the journal file inside the data directory.
pub const JOURNAL_FILE: &str = "ferrim-journal.db";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-journal");

/// How often the merger copies what the journal gained when no read is waiting for it.
/// Longer gives each index page more entries per write (W3 at 10,000 msgs/s: the merges
/// took ~20% of the core at 1 s, ~30% at 200 ms); a waiting read wakes it anyway.
const MERGE_INTERVAL: Duration = Duration::from_millis(1000);
/// Most rows one merge transaction copies: a backlog is merged in several.
const MERGE_CHUNK: i64 = 20_000;
/// The merger's nice value: below the connections' work, so a merge takes the time they
/// leave, but not starved on a busy core (a read may be waiting for it).
const MERGER_NICE: i32 = 10;
/// A read gives up waiting for a merge after this long.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// WAL frames after which the journal's writer copies its WAL back itself (~16 MiB).
const JOURNAL_CHECKPOINT_FRAMES: u32 = 4_000;
/// Most merged rows a commit deletes from the journal.
const TRIM_SLICE: u64 = 256;
/// Jobs queued for the writer thread (the group-commit writer has one batch in flight).
const WRITER_QUEUE: usize = 64;

/// Columns the journal and `messages` share, in one order.
const COLUMNS: &str = "id, app_id, from_id, from_name, to_id, to_name, from_resource, \
     to_resource, client_id, ts, kind, conv, payload";

#[derive(Debug, Default)]
struct UnmergedUsers {
    seqs: HashMap<Uuid, u64>,
    /// Entries up to this merge mark were dropped already.
    pruned_at: u64,
}

/// The journal of one store.
#[derive(Debug)]
pub(crate) struct Journal {
    /// The writer thread's queue. The thread owns the journal's one writing connection (a
    /// database has one writer), with the main database attached as `store` for the resend
    /// check, and runs each batch as one transaction of prepared single-row inserts: no SQL
    /// to build or parse per batch and one hand-off per commit.
    jobs: tokio::sync::mpsc::Sender<Job>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The newest journal row committed (its `seq`).
    committed: Arc<AtomicU64>,
    /// Every journal row up to this `seq` is in the main database too.
    merged: watch::Receiver<u64>,
    /// Journal rows up to this `seq` are deleted.
    trimmed: AtomicU64,
    /// Users with unmerged journal rows (as sender or recipient), with the newest such row's
    /// `seq` (at most: a batch's rows all get its last `seq`). A read for one user waits
    /// only if that user is here, so most reads under load never wait for a merge.
    unmerged_users: Mutex<UnmergedUsers>,
    merger: Mutex<Option<(Sender<()>, JoinHandle<()>)>>,
    /// The journal's own WAL checkpointer.
    checkpointer: Checkpointer,
}

impl Journal {
    /// Opens (creating if needed) the journal of the main database at `main_db`, merges what
    /// a previous run left, and starts the merger. `options` are the main database's.
    pub(crate) async fn open(
        main_db: &Path,
        options: &SqliteConnectOptions,
    ) -> Result<Self, StoreError> {
        let path = main_db.with_file_name(JOURNAL_FILE);
        // Creates the file in WAL mode (which it keeps) and migrates it, on a connection of
        // its own, without the attached database: unqualified names in the migrations must
        // mean the journal's tables.
        let options = options.clone().filename(&path);
        let mut conn = options.connect().await.map_err(store_err)?;
        MIGRATOR
            .run(&mut conn)
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        conn.close().await.map_err(store_err)?;

        let (main, journal) = (main_db.to_path_buf(), path.clone());
        let (merger_conn, merged) = crate::blocking(move || recover(&main, &journal)).await?;

        let (journal, main) = (path.clone(), main_db.to_path_buf());
        let conn = crate::blocking(move || open_writer(&journal, &main)).await?;
        let (jobs, queue) = tokio::sync::mpsc::channel(WRITER_QUEUE);
        let writer = std::thread::Builder::new()
            .name("sqlite-journal".into())
            .spawn(move || run_writer(conn, queue))
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let checkpointer = Checkpointer::start(path, "journal")
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;

        let committed = Arc::new(AtomicU64::new(merged));
        let (publish, merged_rx) = watch::channel(merged);
        let (wake, woken) = mpsc::channel();
        let thread = {
            let committed = committed.clone();
            std::thread::Builder::new()
                .name("sqlite-merge".into())
                .spawn(move || run_merger(merger_conn, merged, publish, woken, committed))
                .map_err(|e| StoreError::Unavailable(Box::new(e)))?
        };
        Ok(Self {
            jobs,
            writer: Mutex::new(Some(writer)),
            committed,
            merged: merged_rx,
            trimmed: AtomicU64::new(merged),
            unmerged_users: Mutex::default(),
            merger: Mutex::new(Some((wake, thread))),
            checkpointer,
        })
    }

    /// Waits until every message committed so far is in the main database.
    pub(crate) async fn settled(&self) -> Result<(), StoreError> {
        self.merged_up_to(self.committed.load(Ordering::Acquire))
            .await
    }

    /// Waits until every message committed so far that `user` sent or received is in the
    /// main database.
    pub(crate) async fn settled_for(&self, user: Uuid) -> Result<(), StoreError> {
        let target = {
            let merged = *self.merged.borrow();
            let mut users = self.unmerged_users.lock().expect("unmerged users");
            match users.seqs.get(&user) {
                Some(&seq) if seq > merged => seq,
                Some(_) => {
                    users.seqs.remove(&user);
                    return Ok(());
                }
                None => return Ok(()),
            }
        };
        self.merged_up_to(target).await
    }

    async fn merged_up_to(&self, target: u64) -> Result<(), StoreError> {
        let mut merged = self.merged.clone();
        if *merged.borrow_and_update() >= target {
            return Ok(());
        }
        let wake = self
            .merger
            .lock()
            .expect("journal merger")
            .as_ref()
            .map(|(wake, _)| wake.clone());
        if let Some(wake) = wake {
            let _ = wake.send(());
        }
        let waited = tokio::time::timeout(SETTLE_TIMEOUT, async {
            merged.wait_for(|&m| m >= target).await.is_ok()
        })
        .await;
        match waited {
            Ok(true) => Ok(()),
            Ok(false) => Err(StoreError::Unavailable(
                "the message journal's merger has stopped".into(),
            )),
            Err(_) => Err(StoreError::Unavailable(
                "merging the message journal takes too long".into(),
            )),
        }
    }

    /// Stores a batch of messages (a resend is answered with the original's ID).
    pub(crate) async fn append(&self, batch: &[NewMessage]) -> Result<Vec<Appended>, StoreError> {
        let trim_to = self.trim_due();
        let (reply, answer) = oneshot::channel();
        let job = Job::Append {
            // The thread needs its own copy (the store trait lends the batch); sqlx copied
            // every text and blob argument for its worker thread the same way.
            batch: batch.to_vec(),
            trim_to,
            reply,
        };
        self.jobs.send(job).await.map_err(|_| writer_stopped())?;
        let (out, last_seq) = answer.await.map_err(|_| writer_stopped())??;
        if let Some(up_to) = trim_to {
            self.trimmed.store(up_to, Ordering::Relaxed);
        }
        if last_seq > 0 {
            let merged = *self.merged.borrow();
            let mut users = self.unmerged_users.lock().expect("unmerged users");
            if merged > users.pruned_at {
                // Once per merge: forget the users it covered.
                users.seqs.retain(|_, seq| *seq > merged);
                users.pruned_at = merged;
            }
            for m in batch {
                users.seqs.insert(m.from.id, last_seq);
                users.seqs.insert(m.to.id, last_seq);
            }
        }
        self.committed.fetch_max(last_seq, Ordering::Release);
        // Messages per commit is the group commit's batch size: this against the messages.
        metrics::counter!("ferrim_sqlite_journal_commits_total").increment(1);
        Ok(out)
    }

    /// How far the next commit deletes merged journal rows: a slice at a time, in the same
    /// transaction as the new rows, so that neither a commit of its own (and its sync) nor
    /// one long delete after each merge holds up the sends.
    fn trim_due(&self) -> Option<u64> {
        let merged = *self.merged.borrow();
        let trimmed = self.trimmed.load(Ordering::Relaxed);
        (merged > trimmed).then(|| merged.min(trimmed + TRIM_SLICE))
    }

    /// The newest message ID in the journal.
    pub(crate) async fn latest_message_id(&self) -> Result<Option<u64>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::LatestId { reply })
            .await
            .map_err(|_| writer_stopped())?;
        answer.await.map_err(|_| writer_stopped())?
    }

    /// Stops the writer (after the jobs queued before), merges what is left, and stops the
    /// merger and the checkpointer.
    pub(crate) async fn close(&self) {
        let _ = self.jobs.send(Job::Stop).await;
        let writer = self.writer.lock().expect("journal writer").take();
        if let Some(thread) = writer {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        let running = self.merger.lock().expect("journal merger").take();
        if let Some((wake, thread)) = running {
            drop(wake);
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        self.checkpointer.stop().await;
    }
}

/// What the writer thread does.
enum Job {
    Append {
        batch: Vec<NewMessage>,
        /// Delete merged journal rows up to here in the same transaction.
        trim_to: Option<u64>,
        reply: oneshot::Sender<Result<(Vec<Appended>, u64), StoreError>>,
    },
    LatestId {
        reply: oneshot::Sender<Result<Option<u64>, StoreError>>,
    },
    Stop,
}

fn writer_stopped() -> StoreError {
    StoreError::Unavailable("the message journal's writer has stopped".into())
}

fn sqlite_err(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict,
        _ => StoreError::Unavailable(Box::new(e)),
    }
}

/// Stores one message unless the main database holds it already as a merged message from
/// the same device with the same client message ID (the journal's own unique index catches
/// the unmerged ones); `?N` are the [`COLUMNS`] in order.
static INSERT_ONE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT OR IGNORE INTO messages ({COLUMNS}) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13 \
         WHERE ?9 IS NULL OR NOT EXISTS (SELECT 1 FROM store.messages s \
           WHERE s.client_id = ?9 AND s.from_id = ?3 AND s.from_resource = ?7)"
    )
});

/// The stored original of a resend, merged or not.
const RESENT_ORIGINAL: &str = "SELECT id, ts FROM messages \
       WHERE client_id = ?1 AND from_id = ?2 AND from_resource = ?3 \
     UNION ALL SELECT id, ts FROM store.messages \
       WHERE client_id = ?1 AND from_id = ?2 AND from_resource = ?3 \
     LIMIT 1";

/// Opens the writer's connection to the journal at `journal_db`, with the main database
/// attached as `store`.
fn open_writer(journal_db: &Path, main_db: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(journal_db)?;
    // FULL: a commit is on disk before the senders are answered.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // The journal's live pages are few (the table's and the resend index's right edges,
    // rewritten by every commit), so copying its WAL back is cheap, and the writer can do it
    // often: its WAL then restarts instead of growing under sustained load.
    conn.pragma_update(None, "wal_autocheckpoint", JOURNAL_CHECKPOINT_FRAMES)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute(
        "ATTACH DATABASE ?1 AS store",
        [main_db.to_string_lossy().as_ref()],
    )?;
    // The resend check reads the main database's resend index; the merger's commits empty
    // this connection's cache of it, and pages then come from the map, not a read() each.
    conn.pragma_update(
        Some(rusqlite::DatabaseName::Attached("store")),
        "mmap_size",
        268_435_456,
    )?;
    Ok(conn)
}

/// The writer thread: runs jobs in order until told to stop or its queue closes.
fn run_writer(mut conn: rusqlite::Connection, mut jobs: tokio::sync::mpsc::Receiver<Job>) {
    while let Some(job) = jobs.blocking_recv() {
        match job {
            Job::Append {
                batch,
                trim_to,
                reply,
            } => {
                let _ = reply.send(append_in(&mut conn, &batch, trim_to));
            }
            Job::LatestId { reply } => {
                let id = conn
                    .query_row(
                        "SELECT id FROM messages ORDER BY seq DESC LIMIT 1",
                        [],
                        |r| r.get::<_, i64>(0),
                    )
                    .optional()
                    .map(|id| id.map(|id| id as u64))
                    .map_err(sqlite_err);
                let _ = reply.send(id);
            }
            Job::Stop => return,
        }
    }
}

/// Stores a batch in one transaction (with a slice of the trim); returns the outcomes and
/// the newest `seq`.
fn append_in(
    conn: &mut rusqlite::Connection,
    batch: &[NewMessage],
    trim_to: Option<u64>,
) -> Result<(Vec<Appended>, u64), StoreError> {
    let tx = conn.transaction().map_err(sqlite_err)?;
    if let Some(up_to) = trim_to {
        tx.prepare_cached("DELETE FROM messages WHERE seq <= ?1")
            .and_then(|mut delete| delete.execute([up_to as i64]))
            .map_err(sqlite_err)?;
    }
    let mut out = Vec::with_capacity(batch.len());
    let mut last_seq = 0;
    {
        let mut insert = tx.prepare_cached(&INSERT_ONE).map_err(sqlite_err)?;
        for m in batch {
            let conv = conversation_key(m.from.id, m.to.id);
            let stored = insert
                .execute(params![
                    m.id as i64,
                    m.app_id.as_bytes().as_slice(),
                    m.from.id.as_bytes().as_slice(),
                    m.from.name.as_str(),
                    m.to.id.as_bytes().as_slice(),
                    m.to.name.as_str(),
                    m.from_resource.as_str(),
                    m.to_resource.as_deref(),
                    m.client_id.map(|v| v as i64),
                    m.timestamp_ms as i64,
                    m.kind as i64,
                    conv.as_slice(),
                    m.payload.as_slice(),
                ])
                .map_err(sqlite_err)?;
            if stored > 0 {
                last_seq = tx.last_insert_rowid() as u64;
                out.push(Appended {
                    id: m.id,
                    timestamp_ms: m.timestamp_ms,
                    duplicate: false,
                });
                continue;
            }
            // A resend (rare): answer with the original, merged or not, or stored earlier
            // in this batch.
            let (id, ts): (i64, i64) = tx
                .prepare_cached(RESENT_ORIGINAL)
                .and_then(|mut original| {
                    original
                        .query_row(
                            params![
                                m.client_id.map(|v| v as i64),
                                m.from.id.as_bytes().as_slice(),
                                m.from_resource.as_str(),
                            ],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .optional()
                })
                .map_err(sqlite_err)?
                .ok_or_else(|| StoreError::Corrupt(format!("message id {} collided", m.id)))?;
            out.push(Appended {
                id: id as u64,
                timestamp_ms: ts as u64,
                duplicate: true,
            });
        }
    }
    tx.commit().map_err(sqlite_err)?;
    Ok((out, last_seq))
}

/// Opens the merger's connection (the main database, the journal attached as `journal`),
/// merges everything a previous run left and trims the journal. Returns the connection and
/// how far the merges got.
fn recover(main_db: &Path, journal_db: &Path) -> rusqlite::Result<(rusqlite::Connection, u64)> {
    let mut conn = rusqlite::Connection::open(main_db)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Room for a merge's dirty pages, which are written once, at its commit.
    conn.pragma_update(None, "cache_size", "-65536")?;
    // Another connection's commit empties this page cache; pages then come from the map
    // instead of a read() each.
    conn.pragma_update(None, "mmap_size", "268435456")?;
    conn.pragma_update(
        None,
        "wal_autocheckpoint",
        crate::checkpoint::WRITER_BACKSTOP_FRAMES,
    )?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.execute(
        "ATTACH DATABASE ?1 AS journal",
        [journal_db.to_string_lossy().as_ref()],
    )?;
    let mut merged: i64 =
        conn.query_row("SELECT up_to FROM main.journal_merges", [], |r| r.get(0))?;
    let issued: i64 = conn
        .query_row(
            "SELECT seq FROM journal.sqlite_sequence WHERE name = 'messages'",
            [],
            |r| r.get(0),
        )
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(0),
            e => Err(e),
        })?;
    if issued < merged {
        // A journal newer than the main database's record of it (the file was removed or
        // replaced): everything in it is unmerged.
        tracing::warn!(
            merged,
            issued,
            "the message journal was replaced; merging all of it"
        );
        merged = 0;
        conn.execute("UPDATE main.journal_merges SET up_to = 0", [])?;
    }
    let mut merged = merged as u64;
    while let Some(up_to) = merge_chunk(&mut conn, merged)? {
        merged = up_to;
    }
    conn.execute(
        "DELETE FROM journal.messages WHERE seq <= ?1",
        [merged as i64],
    )?;
    Ok((conn, merged))
}

/// Copies up to [`MERGE_CHUNK`] journal rows after `after` into `messages`; returns the
/// newest `seq` copied, or `None` when there was nothing to copy.
fn merge_chunk(conn: &mut rusqlite::Connection, after: u64) -> rusqlite::Result<Option<u64>> {
    let after = after as i64;
    let up_to: Option<i64> = conn.query_row(
        "SELECT MAX(seq) FROM (SELECT seq FROM journal.messages WHERE seq > ?1 \
         ORDER BY seq LIMIT ?2)",
        [after, MERGE_CHUNK],
        |r| r.get(0),
    )?;
    let Some(up_to) = up_to else {
        return Ok(None);
    };
    // Deferred: only the main database is written, so the journal's writer is never held
    // up; the merged rows and the new mark land together.
    let tx = conn.transaction()?;
    tx.execute(
        &format!(
            "INSERT OR IGNORE INTO main.messages ({COLUMNS}) SELECT {COLUMNS} \
             FROM journal.messages WHERE seq > ?1 AND seq <= ?2"
        ),
        [after, up_to],
    )?;
    tx.execute("UPDATE main.journal_merges SET up_to = ?1", [up_to])?;
    tx.commit()?;
    Ok(Some(up_to as u64))
}

/// The merger thread: merges every [`MERGE_INTERVAL`], or at once when a read waits. When
/// the journal closes (the sender is dropped) it merges what is left and ends.
fn run_merger(
    mut conn: rusqlite::Connection,
    mut merged: u64,
    publish: watch::Sender<u64>,
    woken: mpsc::Receiver<()>,
    committed: Arc<AtomicU64>,
) {
    crate::checkpoint::lower_priority(MERGER_NICE);
    loop {
        let closing = matches!(
            woken.recv_timeout(MERGE_INTERVAL),
            Err(RecvTimeoutError::Disconnected)
        );
        while woken.try_recv().is_ok() {}
        loop {
            match merge_chunk(&mut conn, merged) {
                Ok(Some(up_to)) => {
                    merged = up_to;
                    publish.send_replace(merged);
                }
                Ok(None) => break,
                Err(e) => {
                    // Retried at the next round; the rows stay in the journal meanwhile.
                    tracing::warn!(error = %e, "merging the message journal failed");
                    break;
                }
            }
        }
        let backlog = committed.load(Ordering::Relaxed).saturating_sub(merged);
        metrics::gauge!("ferrim_sqlite_journal_backlog").set(backlog as f64);
        if closing {
            return;
        }
    }
}

/// The journal rows a backup must add to its copy of the main database: read before the
/// copy is made, since a row merged later is in the copy and a row trimmed later is not
/// in the journal any more. `None` without a journal.
pub(crate) fn snapshot_for_backup(
    journal_db: &Path,
) -> rusqlite::Result<Option<rusqlite::Connection>> {
    if !journal_db.is_file() {
        return Ok(None);
    }
    let mem = rusqlite::Connection::open_in_memory()?;
    mem.busy_timeout(Duration::from_secs(30))?;
    mem.execute(
        "ATTACH DATABASE ?1 AS journal",
        [journal_db.to_string_lossy().as_ref()],
    )?;
    mem.execute_batch(&format!(
        "CREATE TABLE rows AS SELECT seq, {COLUMNS} FROM journal.messages; \
         DETACH DATABASE journal;"
    ))?;
    Ok(Some(mem))
}

/// Adds the unmerged rows of a [`snapshot_for_backup`] to the backup at `out`, which then
/// stands alone (its record of merges is reset for the journal it will get).
pub(crate) fn complete_backup(mem: &rusqlite::Connection, out: &Path) -> rusqlite::Result<()> {
    mem.execute(
        "ATTACH DATABASE ?1 AS backup",
        [out.to_string_lossy().as_ref()],
    )?;
    mem.execute_batch(&format!(
        "BEGIN; \
         INSERT OR IGNORE INTO backup.messages ({COLUMNS}) SELECT {COLUMNS} FROM rows \
           WHERE seq > (SELECT up_to FROM backup.journal_merges); \
         UPDATE backup.journal_merges SET up_to = 0; \
         COMMIT; \
         DETACH DATABASE backup;"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_resend_check_searches_the_main_databases_resend_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(dir.path()).await.unwrap();
        let main = dir.path().join(crate::DB_FILE);
        let conn = open_writer(&main.with_file_name(JOURNAL_FILE), &main).unwrap();
        let mut explain = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", *INSERT_ONE))
            .unwrap();
        let plan: Vec<String> = explain
            // Any values: the plan for a message with a client message ID is what counts.
            .query_map([1i64; 13], |row| row.get::<_, String>("detail"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            plan.iter()
                .any(|step| step.contains("INDEX messages_resend")),
            "a send would scan every merged message: {plan:?}"
        );
        drop(explain);
        drop(conn);
        store.close().await;
    }
}
