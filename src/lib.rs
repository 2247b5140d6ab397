//! statectl: the hidden state of a stateful recurrent network as a
//! versioned, verifiable object.
//!
//! Data flows one way:
//!
//! ```text
//! main -> cli (clap types) -> commands (parse -> operation -> render) -> ops (one function per operation)
//!                                                                          |-> domain: model/ train/ state/ (pure)
//!                                                                          '-> store: SQLite + weight files
//! ```
//!
//! - [`state`]: the hidden-state value and its pure operations (zero,
//!   select, broadcast, encode, hash, compare).
//! - [`model`]: config, weights (torch layout, Keras import), the stateful
//!   forward pass on candle.
//! - [`store`]: SQLite and the weights folder; all SQL lives there.
//! - [`ops`]: the operations users see, each one store transaction; the
//!   library API (no printing, no exits).
//! - [`commands`]: each subcommand's `run`: parse, call one operation,
//!   render; nothing below it prints.

pub mod charts;
pub mod cli;
pub mod commands;
pub mod completion;
pub mod id;
pub mod input;
pub mod kernels;
pub mod le_bytes;
pub mod limits;
pub mod model;
pub mod ops;
pub mod parallel;
pub mod replay;
pub mod shared;
pub mod staging;
pub mod state;
pub mod store;
pub mod suggest;
pub mod tensors;
pub mod train;
