//! Forks wait until no statectl thread is inside SQLite.
//!
//! `fork()` copies a process with only the thread that called it. If any
//! other thread held one of SQLite's process-wide mutexes at that moment
//! (the checkpoint helper runs every few milliseconds while writes come
//! in), the child's first SQLite call, even on a connection of its own,
//! waits forever for a thread that does not exist there. So the work that
//! runs SQLite in a long-lived process (the checkpoint helper, and each
//! call of the Python package) holds an [`Inside`] token, and a fork
//! handler registered by [`wait_for_sqlite_work_before_forks`] waits for
//! every token to be returned before the fork goes ahead; new work waits
//! until the fork is done. A fork therefore waits for calls in flight.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static FORKING: AtomicBool = AtomicBool::new(false);

/// Held while a thread may be inside SQLite; a fork waits for it.
pub struct Inside(());

impl Drop for Inside {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, SeqCst);
    }
}

/// Starts work that may enter SQLite (waiting while a fork is under way).
/// Not re-entrant: a thread holding a token must not ask for another.
pub fn enter() -> Inside {
    loop {
        while FORKING.load(SeqCst) {
            std::thread::sleep(Duration::from_micros(200));
        }
        ACTIVE.fetch_add(1, SeqCst);
        if !FORKING.load(SeqCst) {
            return Inside(());
        }
        ACTIVE.fetch_sub(1, SeqCst);
    }
}

extern "C" fn before_fork() {
    FORKING.store(true, SeqCst);
    while ACTIVE.load(SeqCst) != 0 {
        std::thread::sleep(Duration::from_micros(200));
    }
}

extern "C" fn after_fork() {
    FORKING.store(false, SeqCst);
}

/// Registers the fork handlers, once per process (for a process that may
/// fork while statectl works on other threads: the Python package).
pub fn wait_for_sqlite_work_before_forks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(unix)]
        // SAFETY: registers two `extern "C"` functions that only touch
        // atomics and sleep; they stay valid for the life of the process.
        unsafe {
            libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork));
        }
    });
}
