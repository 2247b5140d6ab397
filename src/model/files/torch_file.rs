//! PyTorch's `torch.save` zip format (PyTorch 1.6 and later): a pickle
//! `<archive>/data.pkl` naming tensors whose bytes are the members
//! `<archive>/data/<key>`. Read as data (see `unpickle`): a bare
//! `state_dict`, or one under a checkpoint's `state_dict` key.

use anyhow::{anyhow, bail, Result};

use super::unpickle::{self, TensorRef, Value};
use super::zipped::Zipped;
use crate::tensors::{Tensor, TensorFile};

/// The pickle of a state_dict is kilobytes; a larger one is not a model.
const MAX_PICKLE_BYTES: u64 = 16 << 20;

/// Keys under which checkpoints commonly keep the model's state_dict.
const WRAPPING_KEYS: [&str; 4] = ["state_dict", "model_state_dict", "model", "net"];

/// A `.pt` file read into PyTorch names.
pub struct TorchWeights {
    pub file: TensorFile,
    /// What was read and what was left, for the user.
    pub notes: Vec<String>,
}

fn tensors_of(value: &Value) -> Vec<(String, TensorRef)> {
    let Value::Dict(dict) = value else {
        return Vec::new();
    };
    dict.borrow()
        .iter()
        .filter_map(|(k, v)| match (k, v) {
            (Value::Str(name), Value::Tensor(t)) => Some((name.clone(), (**t).clone())),
            _ => None,
        })
        .collect()
}

/// The state_dict: the top-level dict if it holds tensors, else the dict
/// under one of [`WRAPPING_KEYS`].
fn find_state_dict(top: &Value, notes: &mut Vec<String>) -> Result<Vec<(String, TensorRef)>> {
    let tensors = tensors_of(top);
    if !tensors.is_empty() {
        return Ok(tensors);
    }
    if let Value::Dict(dict) = top {
        let dict = dict.borrow();
        let keys: Vec<String> = dict
            .iter()
            .filter_map(|(k, _)| match k {
                Value::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        for wanted in WRAPPING_KEYS {
            if let Some((_, inner)) = dict
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == wanted))
            {
                let tensors = tensors_of(inner);
                if !tensors.is_empty() {
                    let others: Vec<&str> = keys
                        .iter()
                        .map(String::as_str)
                        .filter(|k| *k != wanted)
                        .collect();
                    notes.push(if others.is_empty() {
                        format!("read the state_dict under '{wanted}'")
                    } else {
                        format!(
                            "read the state_dict under '{wanted}'; ignored the checkpoint's other entries ({})",
                            others.join(", ")
                        )
                    });
                    return Ok(tensors);
                }
            }
        }
        bail!(
            "it holds a dict without tensors (keys: {}) and no state_dict under {}; save one with torch.save(model.state_dict(), path)",
            keys.iter().take(8).cloned().collect::<Vec<_>>().join(", "),
            WRAPPING_KEYS.map(|k| format!("'{k}'")).join(", ")
        );
    }
    if let Value::Opaque(name) = top {
        bail!(
            "it holds a pickled call of {}.{} (never made), not a state_dict; statectl imports torch.save(model.state_dict(), path)",
            name.0,
            name.1
        );
    }
    bail!("it holds no state_dict (a dict of tensor names to tensors): statectl imports torch.save(model.state_dict(), path), not whole pickled modules or other objects")
}

fn element_size(class: &str) -> Result<usize> {
    match class {
        "FloatStorage" => Ok(4),
        "DoubleStorage" => Ok(8),
        other => Err(anyhow!(
            "{} values",
            other.trim_end_matches("Storage").to_lowercase()
        )),
    }
}

/// One tensor's values, its extent checked against its storage member.
fn read_tensor(
    zip: &mut Zipped,
    archive: &str,
    name: &str,
    t: &TensorRef,
    file: &mut TensorFile,
) -> Result<Tensor> {
    let size = element_size(&t.storage.class).map_err(|what| {
        anyhow!("its tensor '{name}' holds {what}; statectl imports float32 weights: call model.float() before torch.save")
    })?;
    let count = t.size.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let member = format!("{archive}data/{}", t.storage.key);
    let available = zip.size(&member)?;
    let end = count
        .and_then(|c| c.checked_add(t.offset))
        .and_then(|e| e.checked_mul(size))
        .filter(|&e| e as u64 <= available)
        .ok_or_else(|| {
            anyhow!(
                "its tensor '{name}' claims shape {:?} at offset {}, more than its storage's {available} bytes hold; the file is damaged",
                t.size,
                t.offset
            )
        })?;
    let mut expected_stride = vec![1usize; t.size.len()];
    for i in (0..t.size.len().saturating_sub(1)).rev() {
        expected_stride[i] = expected_stride[i + 1] * t.size[i + 1].max(1);
    }
    if t.stride != expected_stride && t.size.iter().product::<usize>() > 1 {
        bail!("its tensor '{name}' is a strided view (stride {:?}); save contiguous tensors: {{k: v.contiguous() for k, v in sd.items()}}", t.stride);
    }
    let bytes = zip.read(&member, available)?;
    let raw = &bytes[t.offset * size..end];
    let data: Vec<f32> = if size == 4 {
        raw.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    } else {
        file.converted_f64.push(name.to_string());
        raw.chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
            .collect()
    };
    Ok(Tensor::new(t.size.clone(), data))
}

/// Reads a `torch.save` zip.
pub fn read(zip: &mut Zipped) -> Result<TorchWeights> {
    let pickles: Vec<String> = zip
        .names()
        .iter()
        .filter(|n| n.ends_with("data.pkl"))
        .cloned()
        .collect();
    let [pickle] = pickles.as_slice() else {
        bail!(
            "it is a zip with {} data.pkl members where a torch.save file has one",
            pickles.len()
        );
    };
    let archive = pickle.trim_end_matches("data.pkl").to_string();
    if let Some(order) = zip
        .has(&format!("{archive}byteorder"))
        .then(|| format!("{archive}byteorder"))
    {
        let order = zip.read(&order, 16)?;
        if order.trim_ascii() != b"little" {
            bail!("it was saved on a big-endian machine; load and save it again on a little-endian one");
        }
    }
    let top = unpickle::load(&zip.read(pickle, MAX_PICKLE_BYTES)?)?;
    let mut notes = Vec::new();
    let tensors = find_state_dict(&top, &mut notes)?;
    let mut file = TensorFile::default();
    for (name, t) in &tensors {
        let tensor = read_tensor(zip, &archive, name, t, &mut file)?;
        file.insert(name, tensor);
    }
    Ok(TorchWeights { file, notes })
}
