//! WAL checkpoints off the write path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold, so the
//! writer — and every message waiting for the next group commit — stalls while the WAL is
//! copied back into the database file. With W3 (10,000 connections, one core) those stalls
//! were most of the p99 at moderate rates. Here a thread of its own copies the WAL back
//! with PASSIVE checkpoints, which never block the writer, at the lowest CPU priority, so on
//! a busy core it uses only the time the connections leave idle.
//!
//! A PASSIVE checkpoint does not restart the WAL: the writer restarts it at its next
//! transaction if everything was copied back by then, which under steady load it rarely
//! is. So the writer keeps an automatic checkpoint as a backstop, far above SQLite's default:
//! the WAL stays bounded, and the backstop finds most frames already copied.

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the checkpointer copies back what the WAL gained. Measured with W3 at 4,000–
/// 8,000 msgs/s: 20–100 ms keep the backstop's copies small (500 ms did not), and 25 ms
/// cost more CPU than 100 ms for the same p99.
const INTERVAL: Duration = Duration::from_millis(100);
/// WAL frames (pages, ~1 GiB) after which the writer checkpoints by itself. Each such
/// checkpoint stalls the writer, so fewer is better: with W3 at 6,000–8,000 msgs/s, p99 was
/// about half with 250,000 than with 100,000. The WAL only grows this far under sustained
/// load, which writes as much to the database itself within minutes.
pub(crate) const WRITER_BACKSTOP_FRAMES: u32 = 250_000;
/// A WAL that was all copied back and did not grow for this long is truncated to zero: a
/// burst's WAL does not keep its disk space while the server is quiet. (Truncating on
/// every restart instead, with `journal_size_limit`, put p99 at 4,000 msgs/s over 100 ms.)
const QUIET_BEFORE_TRUNCATE: Duration = Duration::from_secs(2);

/// The background checkpointer. It ends when stopped or when dropped.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    running: Mutex<Option<(Sender<()>, JoinHandle<()>)>>,
}

impl Checkpointer {
    /// Starts the thread on the database file at `db` (already in WAL mode); `name` labels
    /// its metrics.
    pub(crate) fn start(db: PathBuf, name: &'static str) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                lower_priority(19);
                let conn = match open(&db) {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "the WAL checkpointer could not open the database; the writer checkpoints alone");
                        return;
                    }
                };
                let mut quiet = Quiet::default();
                // Both a stop and a dropped checkpointer end the loop.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    if let Some(wal) = checkpoint(&conn, "PASSIVE") {
                        metrics::gauge!("ferrim_sqlite_wal_frames", "db" => name).set(wal.frames as f64);
                        if quiet.observe(wal) && checkpoint(&conn, "TRUNCATE").is_some() {
                            metrics::counter!("ferrim_sqlite_wal_truncations_total", "db" => name)
                                .increment(1);
                        }
                    }
                }
            })?;
        Ok(Self {
            running: Mutex::new(Some((stop, thread))),
        })
    }

    /// Stops the thread and waits for it to close its connection (idempotent).
    pub(crate) async fn stop(&self) {
        let running = self.running.lock().expect("checkpointer").take();
        if let Some((stop, thread)) = running {
            drop(stop);
            // At most one checkpoint to wait for; off the async workers all the same.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

fn open(db: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(db)?;
    // As on the writer: the database file is synced before the WAL may be reused.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // A TRUNCATE waits for the writer's transaction at most this long, then gives up.
    conn.busy_timeout(Duration::from_millis(100))?;
    Ok(conn)
}

/// What a checkpoint reported: frames in the WAL and frames copied back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wal {
    frames: i64,
    copied: i64,
}

fn checkpoint(conn: &rusqlite::Connection, mode: &str) -> Option<Wal> {
    let result = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok(Wal {
            frames: row.get(1)?,
            copied: row.get(2)?,
        })
    });
    match result {
        Ok(wal) => {
            tracing::trace!(mode, wal.frames, wal.copied, "WAL checkpoint");
            Some(wal)
        }
        Err(e) => {
            tracing::debug!(mode, error = %e, "WAL checkpoint failed");
            None
        }
    }
}

/// Tells when the WAL has been copied back and unchanged for [`QUIET_BEFORE_TRUNCATE`].
#[derive(Debug, Default)]
struct Quiet {
    last: Option<Wal>,
    since: Option<Instant>,
}

impl Quiet {
    fn observe(&mut self, wal: Wal) -> bool {
        self.observe_at(wal, Instant::now())
    }

    fn observe_at(&mut self, wal: Wal, now: Instant) -> bool {
        let settled = wal.frames > 0 && wal.copied == wal.frames && self.last == Some(wal);
        self.last = Some(wal);
        if !settled {
            self.since = None;
            return false;
        }
        let since = *self.since.get_or_insert(now);
        if now.duration_since(since) < QUIET_BEFORE_TRUNCATE {
            return false;
        }
        self.last = None;
        self.since = None;
        true
    }
}

/// Sets the calling thread's nice value (Linux keeps one per thread).
pub(crate) fn lower_priority(nice: i32) {
    if let Err(e) = rustix::process::setpriority_process(None, nice) {
        tracing::debug!(error = %e, "could not lower a background thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_only_a_copied_back_wal_that_stopped_growing() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let wal = |frames, copied| Wal { frames, copied };
        let mut quiet = Quiet::default();
        assert!(!quiet.observe_at(wal(10, 10), at(0)));
        assert!(!quiet.observe_at(wal(10, 10), at(1_000)));
        // It grew: the quiet period starts over.
        assert!(!quiet.observe_at(wal(12, 12), at(1_500)));
        assert!(!quiet.observe_at(wal(12, 12), at(2_000)));
        assert!(!quiet.observe_at(wal(12, 12), at(3_900)));
        assert!(quiet.observe_at(wal(12, 12), at(4_000)));
        // Not all copied back, or empty: never.
        let mut quiet = Quiet::default();
        for ms in [0, 3_000, 6_000] {
            assert!(!quiet.observe_at(wal(12, 11), at(ms)));
        }
        for ms in [7_000, 10_000, 13_000] {
            assert!(!quiet.observe_at(wal(0, 0), at(ms)));
        }
    }
}
