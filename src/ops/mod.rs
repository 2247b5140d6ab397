//! The operations users see, one function each, with typed inputs and a
//! typed report: the library API that the CLI calls (and that a Python
//! binding or a server will call).
//!
//! Every operation that writes commits in exactly one store transaction.
//! Long work (a forward pass, training) runs first, outside it; the commit
//! then checks with a compare-and-set that the stream it moves is still
//! where the computation started. Ref resolution only reads. Nothing here
//! prints or exits: progress goes through a callback.

pub mod audit;
pub mod backend;
pub mod backend_reads;
pub mod backend_streams;
pub mod burn_in;
pub mod catalog;
pub mod checkpoint_writer;
pub mod demo;
pub mod diff;
pub mod errors;
pub mod export;
pub mod gc;
pub mod import;
pub mod log;
pub mod model_admin;
mod model_handle;
pub mod models;
pub mod platform;
pub mod plot_data;
pub mod predict;
pub mod pull;
pub mod push;
pub mod refs;
pub mod restore;
pub mod runs;
pub mod shared_writes;
pub mod show;
pub mod since;
pub mod snapshot;
pub mod stack;
pub mod status;
pub mod streams;
pub mod tags;
pub mod train;
pub mod training_run;
pub mod verify;

pub use errors::error_kind;
pub use models::Model;
pub use platform::platform;
pub use refs::Resolved;
