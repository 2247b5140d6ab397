//! statectl: the hidden state of a stateful recurrent network as a
//! versioned, verifiable object.
//!
//! Data flows one way:
//!
//! ```text
//! main -> cli (clap types) -> commands (one module per subcommand) -> domain -> store
//!                                                model/ train/ state/        SQLite + weight files
//! ```
//!
//! - [`state`]: the hidden-state value and its pure operations (zero,
//!   select, broadcast, encode, hash, compare).
//! - [`model`]: config, weights (torch layout, Keras import), the stateful
//!   forward pass on candle.
//! - [`store`]: SQLite and the weights folder; all SQL lives there.
//! - [`commands`]: each subcommand's `run`; nothing below it prints.

pub mod cli;
pub mod commands;
pub mod id;
pub mod input;
pub mod model;
pub mod replay;
pub mod state;
pub mod store;
pub mod tensors;
pub mod train;
