//! The process's own thread pool, made again after a `fork()`.
//!
//! A child made by `fork()` has only the thread that forked: rayon's global
//! pool, if the parent had started it, exists there in name only, and work
//! handed to it waits forever. Long-lived library users that may fork (the
//! Python package) run their work in [`pool`], which each process makes for
//! itself on first use; threads the work spawns hash in it too.

use std::sync::{Arc, Mutex};

/// This process's pool (made on first use in each process).
pub fn pool() -> Arc<rayon::ThreadPool> {
    static POOL: Mutex<Option<(u32, Arc<rayon::ThreadPool>)>> = Mutex::new(None);
    let pid = std::process::id();
    // A child of a fork may inherit this lock held by a thread of the
    // parent that does not exist there: then it is never waited on.
    let mut slot = match POOL.try_lock() {
        Ok(slot) => slot,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return Arc::new(build()),
    };
    match slot.as_ref() {
        Some((owner, pool)) if *owner == pid => pool.clone(),
        _ => {
            let pool = Arc::new(build());
            *slot = Some((pid, pool.clone()));
            pool
        }
    }
}

/// As many threads as rayon's global pool would have (`RAYON_NUM_THREADS`,
/// else one per CPU).
fn build() -> rayon::ThreadPool {
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let named = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("statectl-{i}"));
    // Building fails only when the OS refuses threads: then one thread.
    named.build().unwrap_or_else(|_| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("a one-thread pool")
    })
}
