//! The id recipe, documented in docs/store.md so numpy can recompute it:
//!
//! - slot:  `sha256("statectl.slot.v1\0" + layout + "\0" + f32 LE bytes)`
//! - state: `sha256("statectl.state.v1\0" + layout + "\0" + batch u32 LE + slot ids)`

use crate::id::{Digest, SlotId, StateId};

pub fn slot_id(layout: &str, bytes: &[u8]) -> SlotId {
    SlotId(Digest::of(&[
        b"statectl.slot.v1\0",
        layout.as_bytes(),
        b"\0",
        bytes,
    ]))
}

pub fn state_id(layout: &str, slots: &[SlotId]) -> StateId {
    let mut list = Vec::with_capacity(4 + slots.len() * 32);
    list.extend_from_slice(&(slots.len() as u32).to_le_bytes());
    for slot in slots {
        list.extend_from_slice(slot.bytes());
    }
    StateId(Digest::of(&[
        b"statectl.state.v1\0",
        layout.as_bytes(),
        b"\0",
        &list,
    ]))
}
