//! A state's numbers: one float32 vector per batch slot, laid out as the
//! slot recipe says (for each layer, `h` then `c`).

use thiserror::Error;

use super::layout::Layout;
use super::recipe;
use crate::id::{SlotId, StateId};

#[derive(Debug, Error, PartialEq)]
pub enum StateError {
    #[error("slot {slot} is out of range: the state has {batch} slot(s), numbered 0..{last}", last = batch.saturating_sub(1))]
    SlotOutOfRange { slot: usize, batch: usize },
    #[error("a state needs at least one slot")]
    Empty,
    #[error("slot {slot} holds {found} values but layout {layout} needs {expected}")]
    SlotLength {
        slot: usize,
        found: usize,
        expected: usize,
        layout: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct StateValue {
    pub layout: Layout,
    /// One vector of `layout.slot_len()` values per batch slot.
    pub slots: Vec<Vec<f32>>,
}

impl StateValue {
    pub fn new(layout: Layout, slots: Vec<Vec<f32>>) -> Result<StateValue, StateError> {
        if slots.is_empty() {
            return Err(StateError::Empty);
        }
        let expected = layout.slot_len();
        for (slot, values) in slots.iter().enumerate() {
            if values.len() != expected {
                return Err(StateError::SlotLength {
                    slot,
                    found: values.len(),
                    expected,
                    layout: layout.to_string(),
                });
            }
        }
        Ok(StateValue { layout, slots })
    }

    pub fn zeros(layout: &Layout, batch: usize) -> StateValue {
        StateValue {
            layout: layout.clone(),
            slots: vec![vec![0.0; layout.slot_len()]; batch],
        }
    }

    pub fn batch(&self) -> usize {
        self.slots.len()
    }

    /// Builds a state from per-layer tensors: `tensors[layer][k]` is the
    /// row-major `[batch, units]` data of the layer's k-th tensor (h, c).
    pub fn from_layers(layout: &Layout, batch: usize, tensors: &[Vec<Vec<f32>>]) -> StateValue {
        let mut slots = vec![Vec::with_capacity(layout.slot_len()); batch];
        for (layer, per_tensor) in tensors.iter().enumerate() {
            let units = layout.units[layer];
            for data in per_tensor {
                for (b, slot) in slots.iter_mut().enumerate() {
                    slot.extend_from_slice(&data[b * units..(b + 1) * units]);
                }
            }
        }
        StateValue {
            layout: layout.clone(),
            slots,
        }
    }

    /// The row-major `[batch, units]` data of tensor `tensor` of `layer`.
    pub fn layer_tensor(&self, layer: usize, tensor: usize) -> Vec<f32> {
        let (start, len) = self.layout.span(layer, tensor);
        let mut out = Vec::with_capacity(len * self.batch());
        for slot in &self.slots {
            out.extend_from_slice(&slot[start..start + len]);
        }
        out
    }

    /// A new state made of the given slots of this one, in the given order
    /// (repeats allowed): re-batching and broadcasting.
    pub fn select(&self, picks: &[usize]) -> Result<StateValue, StateError> {
        if picks.is_empty() {
            return Err(StateError::Empty);
        }
        let slots = picks
            .iter()
            .map(|&slot| {
                self.slots
                    .get(slot)
                    .cloned()
                    .ok_or(StateError::SlotOutOfRange {
                        slot,
                        batch: self.batch(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(StateValue {
            layout: self.layout.clone(),
            slots,
        })
    }

    pub fn slot_bytes(slot: &[f32]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(slot.len() * 4);
        Self::append_slot_bytes(slot, &mut bytes);
        bytes
    }

    /// Appends a slot's encoding (little-endian f32) to `out`.
    pub fn append_slot_bytes(slot: &[f32], out: &mut Vec<u8>) {
        crate::le_bytes::append_f32s(slot, out);
    }

    pub fn slot_from_bytes(bytes: &[u8]) -> Vec<f32> {
        crate::le_bytes::f32s_from_bytes(bytes)
    }

    /// Each slot's encoded bytes and id, in batch order.
    pub fn encoded_slots(&self) -> Vec<(SlotId, Vec<u8>)> {
        let layout = self.layout.to_string();
        self.slots
            .iter()
            .map(|slot| {
                let bytes = Self::slot_bytes(slot);
                (recipe::slot_id(&layout, &bytes), bytes)
            })
            .collect()
    }

    pub fn id(&self) -> StateId {
        let ids: Vec<SlotId> = self.encoded_slots().into_iter().map(|(id, _)| id).collect();
        recipe::state_id(&self.layout.to_string(), &ids)
    }

    pub fn is_finite(&self) -> bool {
        self.slots.iter().flatten().all(|v| v.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StateValue {
        let layout = Layout::lstm(&[2]);
        StateValue::new(
            layout,
            vec![vec![1.0, 2.0, 3.0, 4.0], vec![5.0, 6.0, 7.0, 8.0]],
        )
        .unwrap()
    }

    #[test]
    fn zero_states_of_any_batch_share_one_slot_id() {
        let layout = Layout::lstm(&[3, 2]);
        let a = StateValue::zeros(&layout, 1).encoded_slots();
        let b = StateValue::zeros(&layout, 7).encoded_slots();
        assert!(b.iter().all(|(id, _)| *id == a[0].0));
        assert_ne!(
            StateValue::zeros(&layout, 1).id(),
            StateValue::zeros(&layout, 7).id()
        );
    }

    #[test]
    fn layer_tensors_round_trip_through_slots() {
        let s = sample();
        assert_eq!(s.layer_tensor(0, 0), vec![1.0, 2.0, 5.0, 6.0]);
        assert_eq!(s.layer_tensor(0, 1), vec![3.0, 4.0, 7.0, 8.0]);
        let back = StateValue::from_layers(
            &s.layout,
            2,
            &[vec![s.layer_tensor(0, 0), s.layer_tensor(0, 1)]],
        );
        assert_eq!(back, s);
    }

    #[test]
    fn select_broadcasts_and_rejects_out_of_range() {
        let s = sample();
        let b = s.select(&[1, 1, 1]).unwrap();
        assert_eq!(b.batch(), 3);
        assert!(b.slots.iter().all(|slot| slot == &s.slots[1]));
        assert_eq!(
            s.select(&[2]),
            Err(StateError::SlotOutOfRange { slot: 2, batch: 2 })
        );
    }

    #[test]
    fn id_depends_on_every_bit() {
        let s = sample();
        let mut t = s.clone();
        t.slots[1][3] = f32::from_bits(t.slots[1][3].to_bits() ^ 1);
        assert_ne!(s.id(), t.id());
        assert_eq!(s.id(), s.clone().id());
    }
}
