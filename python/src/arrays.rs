//! The caller's numpy arrays, copied while the GIL is held.
//!
//! A bulk write then runs with the GIL released on memory that is its own.
//! Reading the caller's array in place instead would leave it open to
//! another Python thread writing it meanwhile (numpy releases the GIL in
//! large copies and ufuncs), which is a data race on memory Rust reads as
//! `&[f32]`: undefined behaviour, whatever the store does with the bytes
//! after. The copy is one `memcpy` per array under the GIL, which Python's
//! own rules order against every writer that holds it; on `put_states` of
//! 256 LSTM-512 rows the copy costs nothing measurable.

use std::collections::BTreeMap;

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;

use crate::errors::StatectlError;

/// Named arrays with their shapes, copied.
pub type NamedArrays = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// The arrays by name, each copied (C order) while the GIL is held.
pub fn copied(py: Python<'_>, arrays: &[(String, PyBuffer<f32>)]) -> PyResult<NamedArrays> {
    let mut named = BTreeMap::new();
    for (name, buffer) in arrays {
        if !buffer.is_c_contiguous() {
            return Err(not_contiguous(name));
        }
        named.insert(name.clone(), (buffer.shape().to_vec(), buffer.to_vec(py)?));
    }
    Ok(named)
}

pub fn not_contiguous(name: &str) -> PyErr {
    StatectlError::new_err(format!(
        "array '{name}' is not contiguous; pass numpy.ascontiguousarray(...) of it"
    ))
}
