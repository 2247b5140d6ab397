//! One state's tensors held in memory (`[batch, units]` each, as numpy
//! hands them over), read slot by slot without building a value per slot:
//! what the Python package's `put_states` stores, a row per state. The
//! values may be any `AsRef<[f32]>`: owned, or the caller's own arrays
//! read in place.

use std::collections::BTreeMap;

use super::exchange::{states_from_file, FileStates};
use super::Layout;
use crate::tensors::{Tensor, TensorFile};

pub struct TensorSlots<D = Vec<f32>> {
    pub layout: Layout,
    pub batch: usize,
    /// Each (layer, tensor) in layout order: its `[batch, units]` values.
    parts: Vec<(D, usize)>,
}

impl<D: AsRef<[f32]>> TensorSlots<D> {
    /// Checks named arrays (shape, values) as a state file's tensors would
    /// be checked (names, layers, h beside c, shapes, one batch) and takes
    /// them.
    pub fn from_arrays(mut arrays: BTreeMap<String, (Vec<usize>, D)>) -> Result<Self, String> {
        // The whole-file checks run on a stand-in with one row per tensor.
        let mut skeleton = TensorFile::default();
        for (name, (shape, _)) in &arrays {
            let stand_in = match shape.as_slice() {
                [rows, units] if *rows > 0 && *units > 0 => {
                    Tensor::new(vec![1, *units], vec![0.0; *units])
                }
                // Not [batch, units]: the check says why.
                _ => Tensor {
                    shape: shape.to_vec(),
                    data: Vec::new(),
                },
            };
            skeleton.insert(name, stand_in);
        }
        let layout = match states_from_file(&skeleton)? {
            FileStates::Single(value) => value.layout,
            FileStates::Named(_) => return Err(
                "they are named like several states (<name>.l0.h); pass one state: l0.h, l0.c, ..."
                    .into(),
            ),
        };
        let mut parts = Vec::new();
        let mut batch = None;
        for (layer, units) in layout.units.iter().enumerate() {
            for t in layout.cell.tensors() {
                let name = format!("l{layer}.{t}");
                let (shape, data) = arrays
                    .remove(&name)
                    .ok_or_else(|| format!("'{name}' is missing"))?;
                let rows = shape[0];
                if data.as_ref().len() != rows * units {
                    return Err(format!(
                        "'{name}' holds {} values, not {rows} x {units}",
                        data.as_ref().len()
                    ));
                }
                let first = *batch.get_or_insert(rows);
                if rows != first {
                    return Err(format!(
                        "'{name}' has {rows} rows but l0.h has {first}; the batch of every tensor must match"
                    ));
                }
                parts.push((data, *units));
            }
        }
        Ok(TensorSlots {
            layout,
            batch: batch.unwrap_or(0),
            parts,
        })
    }

    /// Slot `slot`'s encoding (little-endian f32, layout order), appended.
    pub fn append_slot(&self, slot: usize, out: &mut Vec<u8>) {
        for (data, units) in &self.parts {
            let data = data.as_ref();
            super::StateValue::append_slot_bytes(&data[slot * units..(slot + 1) * units], out);
        }
    }
}
