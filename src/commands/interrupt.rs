//! Ctrl-C (SIGINT) and SIGTERM, which schedulers send before a kill, during
//! `train`: the first asks the run to finish its batch, write a checkpoint
//! and stop; a second stops the process at once, leaving the checkpoint
//! before it. The handler runs on a thread of its own (the `ctrlc` crate),
//! so it may print and exit.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Exit status of a run stopped by a signal, as shells report SIGINT.
pub const STOPPED: i32 = 130;

/// Installs the handler (once per process; later calls do nothing).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            eprintln!("stopped at once; the run's latest checkpoint is kept");
            std::process::exit(STOPPED);
        }
        eprintln!("stopping after this batch to write a checkpoint (Ctrl-C again stops at once)");
    });
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
