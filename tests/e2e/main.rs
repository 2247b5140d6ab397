//! End-to-end tests: the real `statectl` binary on a real store in a temp
//! folder. One test binary, one shared helper (`util`).

// A scenario reads top to bottom as one story; the 100-line limit on
// functions is for the library and the CLI (src/).
#![allow(clippy::too_many_lines)]

mod architecture;
mod audits;
mod batch_invariance;
mod bounds;
mod charts;
mod concurrency;
mod conformance;
mod crash;
mod deleting_and_renaming;
mod documentation;
mod errors;
mod finding_the_store;
mod first_hour;
mod forecasting;
mod fuzz;
mod gc_beside_others;
mod gru;
mod json_golden;
mod long_runs;
mod million_tags;
mod model_files;
mod packs;
mod per_step;
mod readme;
mod replay;
mod retention;
mod shared_gc;
mod shared_learners;
mod shared_reads;
mod shared_store;
mod shared_tls;
mod shared_writes;
mod state_commands;
mod store_damage;
mod toolkit;
mod training;
mod trust;
mod typos;
mod upgrades;
mod util;
