//! Named float32 tensors and their safetensors encoding.
//!
//! statectl writes safetensors itself, with tensors and metadata keys in
//! sorted order: the official writer orders metadata through a `HashMap`,
//! so its bytes (and so any hash of them) vary from run to run. Reading
//! goes through the `safetensors` crate, which validates the header.

use std::collections::BTreeMap;

use safetensors::{Dtype, SafeTensors};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TensorFileError {
    #[error("not a valid safetensors file ({0}); it may be truncated or not safetensors at all")]
    Invalid(String),
    #[error("tensor '{name}' has dtype {dtype}; statectl reads F32 (or F64, converted)")]
    Dtype { name: String, dtype: String },
}

/// A float32 tensor: its shape and row-major data.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor { shape, data }
    }

    /// The same data under another shape of the same size.
    pub fn reshaped(mut self, shape: Vec<usize>) -> Tensor {
        debug_assert_eq!(shape.iter().product::<usize>(), self.data.len());
        self.shape = shape;
        self
    }

    pub fn shape_text(&self) -> String {
        shape_text(&self.shape)
    }
}

/// The transpose of a row-major `[rows, cols]` matrix.
pub fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

pub fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}

/// The tensors of a file, by name, and its `__metadata__`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TensorFile {
    pub tensors: BTreeMap<String, Tensor>,
    pub metadata: BTreeMap<String, String>,
    /// Names of tensors that were float64 in the file and were read as
    /// float32 (so a command can say it converted them).
    pub converted_f64: Vec<String>,
}

/// Largest safetensors header read (16 MiB): tensor names and metadata of
/// even 100,000 named states fit, and a hostile header cannot take
/// gigabytes to parse.
pub const MAX_HEADER_BYTES: u64 = 16 << 20;

impl TensorFile {
    pub fn decode(bytes: &[u8]) -> Result<TensorFile, TensorFileError> {
        // The header is JSON parsed whole; statectl's files need a few KB.
        if let Some(len) = bytes.get(..8) {
            let len = u64::from_le_bytes(len.try_into().unwrap_or([0; 8]));
            if len > MAX_HEADER_BYTES {
                return Err(TensorFileError::Invalid(format!(
                    "its header claims {len} bytes, over the {MAX_HEADER_BYTES}-byte limit for safetensors headers"
                )));
            }
        }
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| TensorFileError::Invalid(e.to_string()))?;
        let metadata = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let parsed =
            SafeTensors::deserialize(bytes).map_err(|e| TensorFileError::Invalid(e.to_string()))?;
        let mut tensors = BTreeMap::new();
        let mut converted_f64 = Vec::new();
        for (name, view) in parsed.tensors() {
            if view.dtype() == Dtype::F64 {
                converted_f64.push(name.clone());
            }
            let data: Vec<f32> = match view.dtype() {
                Dtype::F32 => crate::le_bytes::f32s_from_bytes(view.data()),
                Dtype::F64 => view
                    .data()
                    .chunks_exact(8)
                    .map(|b| {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(b);
                        f64::from_le_bytes(a) as f32
                    })
                    .collect(),
                other => {
                    return Err(TensorFileError::Dtype {
                        name,
                        dtype: format!("{other:?}"),
                    })
                }
            };
            tensors.insert(name, Tensor::new(view.shape().to_vec(), data));
        }
        converted_f64.sort();
        Ok(TensorFile {
            tensors,
            metadata,
            converted_f64,
        })
    }

    /// Encodes as safetensors: header JSON with `__metadata__` first (only
    /// when non-empty) and tensors sorted by name, padded to 8 bytes as the
    /// reference writer does, then the data in the same order.
    pub fn encode(&self) -> Vec<u8> {
        let shapes = self
            .tensors
            .iter()
            .map(|(name, t)| (name.as_str(), t.shape.as_slice()));
        let (header_bytes, data_len) = safetensors_header(&self.metadata, shapes);
        let mut out = Vec::with_capacity(header_bytes.len() + data_len);
        out.extend_from_slice(&header_bytes);
        for tensor in self.tensors.values() {
            crate::le_bytes::append_f32s(&tensor.data, &mut out);
        }
        out
    }

    pub fn insert(&mut self, name: &str, tensor: Tensor) {
        self.tensors.insert(name.to_string(), tensor);
    }

    pub fn names(&self) -> Vec<&str> {
        self.tensors.keys().map(|s| s.as_str()).collect()
    }
}

/// The start of a safetensors file of float32 tensors: the 8-byte header
/// length and the header JSON (`__metadata__` first, then the tensors in
/// sorted name order, each given its `[start, end)` in the data that
/// follows in that same order), padded to 8 bytes; and the data's length.
/// `tensors` must come sorted by name (as a BTreeMap iterates).
pub fn safetensors_header<'a>(
    metadata: &std::collections::BTreeMap<String, String>,
    tensors: impl Iterator<Item = (&'a str, &'a [usize])>,
) -> (Vec<u8>, usize) {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        let meta: serde_json::Map<String, serde_json::Value> = metadata
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        header.insert("__metadata__".into(), meta.into());
    }
    let mut offset = 0usize;
    for (name, shape) in tensors {
        let end = offset + shape.iter().product::<usize>() * 4;
        header.insert(
            name.to_string(),
            serde_json::json!({
                "dtype": "F32",
                "shape": shape,
                "data_offsets": [offset, end],
            }),
        );
        offset = end;
    }
    // serde_json's Map keeps insertion order only with a feature we do
    // not enable; it is a BTreeMap, so "__metadata__" sorts first anyway
    // ('_' < lowercase letters) and tensor names follow in sorted order.
    let mut json = serde_json::to_vec(&header).unwrap_or_default();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    (out, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trips_and_is_deterministic() {
        let mut f = TensorFile::default();
        f.insert("b", Tensor::new(vec![2], vec![1.5, -2.0]));
        f.insert(
            "a",
            Tensor::new(vec![1, 3], vec![0.0, f32::MIN_POSITIVE, 7.0]),
        );
        f.metadata.insert("z".into(), "1".into());
        f.metadata.insert("layout".into(), "lstm:2".into());
        let bytes = f.encode();
        assert_eq!(bytes, f.clone().encode());
        assert_eq!(TensorFile::decode(&bytes).unwrap(), f);
    }

    #[test]
    fn truncated_bytes_are_refused() {
        let mut f = TensorFile::default();
        f.insert("x", Tensor::new(vec![4], vec![1.0; 4]));
        let bytes = f.encode();
        assert!(TensorFile::decode(&bytes[..bytes.len() - 3]).is_err());
        assert!(TensorFile::decode(b"hello").is_err());
    }
}
