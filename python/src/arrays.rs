//! The caller's numpy arrays read in place while the GIL is released, for
//! bulk writes, where copying every array first cost more than hashing it.

use std::collections::BTreeMap;

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;

use crate::errors::StatectlError;

/// A float32 array's values, in the caller's own memory.
pub struct InPlace<'a>(&'a PyBuffer<f32>);

impl AsRef<[f32]> for InPlace<'_> {
    fn as_ref(&self) -> &[f32] {
        // SAFETY: `PyBuffer::<f32>::get` checked the item size and the
        // alignment, `in_place` checked that the buffer is C-contiguous, so
        // it is `item_count` aligned floats; the `PyBuffer` holds the
        // export, so numpy keeps the memory and will not resize the array
        // while it is borrowed here. Another Python thread could still
        // write into the array meanwhile (the GIL is released): the store
        // copies each slot out once, hashes that copy and stores that copy,
        // so what it stores always matches its id.
        unsafe { std::slice::from_raw_parts(self.0.buf_ptr() as *const f32, self.0.item_count()) }
    }
}

/// Named arrays with their shapes, read in place.
pub type NamedArrays<'a> = BTreeMap<String, (Vec<usize>, InPlace<'a>)>;

/// The arrays by name, to be read in place.
pub fn in_place(arrays: &[(String, PyBuffer<f32>)]) -> PyResult<NamedArrays<'_>> {
    let mut named = BTreeMap::new();
    for (name, buffer) in arrays {
        if !buffer.is_c_contiguous() {
            return Err(not_contiguous(name));
        }
        named.insert(name.clone(), (buffer.shape().to_vec(), InPlace(buffer)));
    }
    Ok(named)
}

pub fn not_contiguous(name: &str) -> PyErr {
    StatectlError::new_err(format!(
        "array '{name}' is not contiguous; pass numpy.ascontiguousarray(...) of it"
    ))
}
