//! Comparing two states of the same layout and batch: per layer and tensor,
//! and per slot, how far apart they are and whether they are bit-equal.

use serde::Serialize;

use super::value::StateValue;

#[derive(Debug, Clone, Serialize)]
pub struct LayerDiff {
    pub layer: usize,
    pub tensor: &'static str,
    pub max_abs: f64,
    pub mean_abs: f64,
    pub rms: f64,
    /// Cosine similarity of the two tensors flattened; 1 when both are zero.
    pub cosine: f64,
    pub bit_equal_slots: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlotDiff {
    pub slot: usize,
    pub max_abs: f64,
    pub bit_equal: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct StateComparison {
    pub batch: usize,
    pub layers: Vec<LayerDiff>,
    pub slots: Vec<SlotDiff>,
    pub max_abs: f64,
    pub bit_equal: bool,
}

/// Compares two states that share layout and batch size (the caller checks
/// that and explains a mismatch).
pub fn compare(a: &StateValue, b: &StateValue) -> StateComparison {
    let layout = &a.layout;
    let mut layers = Vec::new();
    for layer in 0..layout.units.len() {
        for (k, name) in layout.cell.tensors().iter().enumerate() {
            let (start, len) = layout.span(layer, k);
            let (mut max_abs, mut sum_abs, mut sum_sq) = (0f64, 0f64, 0f64);
            let (mut dot, mut norm_a, mut norm_b) = (0f64, 0f64, 0f64);
            let mut bit_equal_slots = 0;
            for (sa, sb) in a.slots.iter().zip(&b.slots) {
                let (xa, xb) = (&sa[start..start + len], &sb[start..start + len]);
                if bits_equal(xa, xb) {
                    bit_equal_slots += 1;
                }
                for (&va, &vb) in xa.iter().zip(xb) {
                    let (va, vb) = (va as f64, vb as f64);
                    let d = (va - vb).abs();
                    max_abs = max_abs.max(d);
                    sum_abs += d;
                    sum_sq += d * d;
                    dot += va * vb;
                    norm_a += va * va;
                    norm_b += vb * vb;
                }
            }
            let n = (len * a.batch()) as f64;
            let cosine = if bit_equal_slots == a.batch() || (norm_a == 0.0 && norm_b == 0.0) {
                1.0
            } else if norm_a == 0.0 || norm_b == 0.0 {
                0.0
            } else {
                dot / (norm_a.sqrt() * norm_b.sqrt())
            };
            layers.push(LayerDiff {
                layer,
                tensor: name,
                max_abs,
                mean_abs: sum_abs / n,
                rms: (sum_sq / n).sqrt(),
                cosine,
                bit_equal_slots,
            });
        }
    }
    let slots: Vec<SlotDiff> = a
        .slots
        .iter()
        .zip(&b.slots)
        .enumerate()
        .map(|(slot, (sa, sb))| SlotDiff {
            slot,
            max_abs: sa
                .iter()
                .zip(sb)
                .map(|(x, y)| (*x as f64 - *y as f64).abs())
                .fold(0.0, f64::max),
            bit_equal: bits_equal(sa, sb),
        })
        .collect();
    StateComparison {
        batch: a.batch(),
        max_abs: layers.iter().map(|l| l.max_abs).fold(0.0, f64::max),
        bit_equal: slots.iter().all(|s| s.bit_equal),
        layers,
        slots,
    }
}

fn bits_equal(a: &[f32], b: &[f32]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Layout;

    #[test]
    fn a_state_equals_itself_and_one_changed_slot_is_named() {
        let layout = Layout::lstm(&[2]);
        let a = StateValue::new(layout, vec![vec![1.0, 2.0, 3.0, 4.0]; 3]).unwrap();
        let same = compare(&a, &a);
        assert!(same.bit_equal);
        assert_eq!(same.max_abs, 0.0);
        assert!(same.layers.iter().all(|l| l.cosine == 1.0));

        let mut b = a.clone();
        b.slots[2][3] = 4.5;
        let diff = compare(&a, &b);
        assert!(!diff.bit_equal);
        assert_eq!(diff.max_abs, 0.5);
        assert_eq!(diff.layers[1].bit_equal_slots, 2);
        assert_eq!(diff.layers[0].bit_equal_slots, 3);
        let changed: Vec<usize> = diff
            .slots
            .iter()
            .filter(|s| !s.bit_equal)
            .map(|s| s.slot)
            .collect();
        assert_eq!(changed, vec![2]);
    }
}
