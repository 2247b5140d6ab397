//! The hidden-state value and the pure operations on it: zero, select
//! slots, broadcast, encode, hash, compare. No I/O happens here.

mod compare;
mod exchange;
mod layout;
mod recipe;
pub mod slot_file;
pub mod tensor_slots;
mod value;

pub use compare::{compare, LayerDiff, SlotDiff, StateComparison};
pub use exchange::{states_from_file, states_to_file, FileStates};
pub use layout::{Cell, Layout};
pub use recipe::{slot_id, state_id};
pub use value::{StateError, StateValue};
