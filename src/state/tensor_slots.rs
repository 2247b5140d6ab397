//! One state's tensors held in memory (`[batch, units]` each, as numpy
//! hands them over), read slot by slot without building a value per slot:
//! what the Python package's `put_states` stores, a row per state.

use super::exchange::{states_from_file, FileStates};
use super::Layout;
use crate::tensors::{Tensor, TensorFile};

pub struct TensorSlots {
    pub layout: Layout,
    pub batch: usize,
    /// Each (layer, tensor) in layout order: its `[batch, units]` values.
    parts: Vec<(Vec<f32>, usize)>,
}

impl TensorSlots {
    /// Checks the tensors as a state file's would be checked (names,
    /// layers, h beside c, shapes, one batch) and takes their data.
    pub fn new(mut file: TensorFile) -> Result<TensorSlots, String> {
        // The whole-file checks run on a stand-in with one row per tensor.
        let mut skeleton = TensorFile {
            metadata: file.metadata.clone(),
            ..Default::default()
        };
        skeleton.metadata.remove("state");
        for (name, tensor) in &file.tensors {
            let stand_in = match tensor.shape.as_slice() {
                [rows, units] if *rows > 0 && *units > 0 => {
                    Tensor::new(vec![1, *units], vec![0.0; *units])
                }
                // Not [batch, units]: the check says why.
                shape => Tensor {
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
                let tensor = file
                    .tensors
                    .remove(&name)
                    .ok_or_else(|| format!("'{name}' is missing"))?;
                let rows = tensor.shape[0];
                let first = *batch.get_or_insert(rows);
                if rows != first {
                    return Err(format!(
                        "'{name}' has {rows} rows but l0.h has {first}; the batch of every tensor must match"
                    ));
                }
                parts.push((tensor.data, *units));
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
            super::StateValue::append_slot_bytes(&data[slot * units..(slot + 1) * units], out);
        }
    }
}
