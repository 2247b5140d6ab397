//! Living with `fork()`: RL code forks actor processes, and Python's
//! default start method on Linux before 3.14 is fork.
//!
//! A SQLite connection must never be used (or closed) in a child: the child
//! would run SQLite on locks and WAL state that belong to the parent, and
//! closing it can checkpoint or drop the parent's pending work. So every
//! `Store` remembers the process that opened it and refuses use from any
//! other (the child opens its own), and an inherited one is leaked rather
//! than closed. The operations run in the process's own thread pool
//! (`statectl::parallel`), and forks wait for SQLite work in flight
//! (`statectl::store::fork_gate`).

/// The id of the calling process.
pub fn current_process() -> u32 {
    std::process::id()
}
