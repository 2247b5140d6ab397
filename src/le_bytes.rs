//! float32 values as the little-endian bytes every id and file uses, and
//! back. On little-endian machines the memory already is the encoding, so
//! these are plain copies (bytemuck checks the casts); elsewhere each value
//! is converted.

/// Appends `values` as little-endian float32 bytes.
pub fn append_f32s(values: &[f32], out: &mut Vec<u8>) {
    #[cfg(target_endian = "little")]
    out.extend_from_slice(bytemuck::cast_slice(values));
    #[cfg(not(target_endian = "little"))]
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Writes `values` as little-endian float32 bytes into `out`, which holds
/// exactly `4 * values.len()` bytes.
pub fn write_f32s(values: &[f32], out: &mut [u8]) {
    #[cfg(target_endian = "little")]
    out.copy_from_slice(bytemuck::cast_slice(values));
    #[cfg(not(target_endian = "little"))]
    for (v, b) in values.iter().zip(out.chunks_exact_mut(4)) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

/// `values` as little-endian float32 bytes.
pub fn f32s_to_bytes(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 4);
    append_f32s(values, &mut out);
    out
}

/// Little-endian float32 bytes as values (a trailing partial value is
/// ignored; callers check lengths first).
pub fn f32s_from_bytes(bytes: &[u8]) -> Vec<f32> {
    let whole = &bytes[..bytes.len() / 4 * 4];
    #[cfg(target_endian = "little")]
    {
        // Copies into an aligned vector whatever the input's alignment.
        bytemuck::pod_collect_to_vec(whole)
    }
    #[cfg(not(target_endian = "little"))]
    whole
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_bit_for_bit_from_any_alignment() {
        let values = [1.5f32, -0.0, f32::NAN, f32::INFINITY, 1e-40];
        let bytes = super::f32s_to_bytes(&values);
        assert_eq!(&bytes[..4], &1.5f32.to_le_bytes());
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&bytes);
        let back = super::f32s_from_bytes(&shifted[1..]);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&values));
    }
}
