//! WAL checkpoints on a thread of their own, for a long-lived process that
//! writes often (the Python package: an actor's `put_states`, a loop of
//! `put_state`).
//!
//! By default the connection that commits past 1,000 WAL pages copies them
//! into the database and fsyncs both files before its call returns, so
//! every few calls one pays for the others. Here a helper with its own
//! connection runs SQLite's passive checkpoint every few milliseconds
//! while writes come in (backing off to a few times a second when idle):
//! it never blocks a reader or a writer, and a call returns once its commit
//! is in the WAL, as every commit already does with `synchronous = NORMAL`.
//! The committing connection keeps a larger automatic checkpoint as a
//! backstop, so the WAL stays bounded even if the helper falls behind.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::Result;

/// How often the helper looks for pages to copy while writes come in (a
/// look with nothing to copy reads the WAL index and returns).
const BUSY_EVERY: Duration = Duration::from_millis(10);
/// The longest pause between looks once nothing is written: an idle open
/// store wakes a few times a second, not a hundred.
const IDLE_EVERY: Duration = Duration::from_millis(250);
/// WAL pages past which the committing connection checkpoints itself.
pub(super) const BACKSTOP_PAGES: i64 = 8000;

pub(super) struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the helper on the database at `db` (opened here, so a failure
    /// to open is the caller's error).
    pub(super) fn start(db: &Path) -> Result<Checkpointer> {
        let conn = Connection::open(db)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("statectl-checkpoint".into())
            .spawn(move || {
                let mut pause = BUSY_EVERY;
                while !stopped.load(Ordering::Acquire) {
                    // (busy, frames in the WAL, frames copied). Busy
                    // (another checkpoint, or a writer resetting the WAL) or
                    // failed: the next round tries again, and the backstop
                    // bounds the WAL meanwhile.
                    let inside = super::fork_gate::enter();
                    let copied = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    });
                    drop(inside);
                    pause = match copied {
                        // Nothing new since the last look: look less often.
                        Ok((frames, done)) if frames == done => (pause * 2).min(IDLE_EVERY),
                        _ => BUSY_EVERY,
                    };
                    std::thread::park_timeout(pause);
                }
                // Closing runs SQLite too.
                let _inside = super::fork_gate::enter();
                drop(conn);
            })
            .map_err(|e| super::StoreError::Io {
                path: db.display().to_string(),
                source: e,
            })?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
