//! Comparing a replayed result with the recorded one: bit-equal, or how far
//! apart (absolute and in ULPs), in which tensor and which slot (row).

use serde::Serialize;

/// The largest difference found between two float32 tensors.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Divergence {
    pub tensor: String,
    /// Row (batch slot) holding the largest absolute difference.
    pub slot: usize,
    pub max_abs: f64,
    pub max_ulps: u64,
}

/// Maps a float's bits onto a line where adjacent floats are adjacent
/// integers, so the distance between two floats counts ULPs.
fn ordered(x: f32) -> i64 {
    let bits = x.to_bits() as i32;
    if bits < 0 {
        i32::MIN as i64 - bits as i64
    } else {
        bits as i64
    }
}

pub fn ulps(a: f32, b: f32) -> u64 {
    (ordered(a) - ordered(b)).unsigned_abs()
}

/// `None` when the two are bit-equal; else the largest differences. `width`
/// is the row length, to name the slot. Tensors of different sizes diverge
/// infinitely.
pub fn divergence(tensor: &str, a: &[f32], b: &[f32], width: usize) -> Option<Divergence> {
    if a.len() != b.len() {
        return Some(Divergence {
            tensor: tensor.to_string(),
            slot: 0,
            max_abs: f64::INFINITY,
            max_ulps: u64::MAX,
        });
    }
    let mut worst: Option<Divergence> = None;
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if x.to_bits() == y.to_bits() {
            continue;
        }
        let abs = (*x as f64 - *y as f64).abs();
        let abs = if abs.is_nan() { f64::INFINITY } else { abs };
        let d = worst.get_or_insert(Divergence {
            tensor: tensor.to_string(),
            slot: i / width.max(1),
            max_abs: 0.0,
            max_ulps: 0,
        });
        if abs > d.max_abs {
            d.max_abs = abs;
            d.slot = i / width.max(1);
        }
        d.max_ulps = d.max_ulps.max(ulps(*x, *y));
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulps_count_adjacent_floats_across_zero() {
        let x = 1.0f32;
        assert_eq!(ulps(x, f32::from_bits(x.to_bits() + 3)), 3);
        assert_eq!(ulps(0.0, -0.0), 0);
        assert_eq!(ulps(f32::from_bits(1), -f32::from_bits(1)), 2);
    }

    #[test]
    fn divergence_names_the_row_of_the_largest_difference() {
        assert_eq!(divergence("t", &[1.0, 2.0], &[1.0, 2.0], 1), None);
        let d = divergence("outputs", &[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 3.5, 4.0], 2).unwrap();
        assert_eq!(d.slot, 1);
        assert_eq!(d.max_abs, 0.5);
        assert!(d.max_ulps > 0);
    }
}

/// Output divergence as R2D2 measures staleness: `max|y_a - y_b| / max|y_a|`
/// with `a` the reference, overall and per slot. With per-step outputs a
/// slot's figure is taken over all its steps (`per_slot`), and the mean of
/// the per-step figures is given too (`per_slot_mean_over_steps`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Staleness {
    pub overall: f64,
    pub max_abs: f64,
    pub per_slot: Vec<f64>,
    /// Mean over slots of `per_slot` (R2D2 reports the mean over sequences).
    pub mean_over_slots: f64,
    /// Largest of `per_slot`.
    pub max_over_slots: f64,
    pub steps: usize,
    pub per_slot_mean_over_steps: Vec<f64>,
}

/// `reference` and `other` hold `[batch, steps, width]` outputs (`steps` 1
/// for last-step outputs).
pub fn staleness(reference: &[f32], other: &[f32], width: usize, steps: usize) -> Staleness {
    let ratio = |a: &[f32], b: &[f32]| -> (f64, f64) {
        let diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - *y as f64).abs())
            .fold(0.0, f64::max);
        let scale = a.iter().map(|x| (*x as f64).abs()).fold(0.0, f64::max);
        (
            if scale > 0.0 {
                diff / scale
            } else if diff > 0.0 {
                f64::INFINITY
            } else {
                0.0
            },
            diff,
        )
    };
    let (overall, max_abs) = ratio(reference, other);
    let row = (width * steps).max(1);
    let per_slot: Vec<f64> = reference
        .chunks(row)
        .zip(other.chunks(row))
        .map(|(a, b)| ratio(a, b).0)
        .collect();
    let per_slot_mean_over_steps = reference
        .chunks(row)
        .zip(other.chunks(row))
        .map(|(a, b)| {
            let per_step: Vec<f64> = a
                .chunks(width.max(1))
                .zip(b.chunks(width.max(1)))
                .map(|(x, y)| ratio(x, y).0)
                .collect();
            per_step.iter().sum::<f64>() / per_step.len().max(1) as f64
        })
        .collect();
    let mean_over_slots = per_slot.iter().sum::<f64>() / per_slot.len().max(1) as f64;
    let max_over_slots = per_slot.iter().copied().fold(0.0, f64::max);
    Staleness {
        overall,
        max_abs,
        per_slot,
        mean_over_slots,
        max_over_slots,
        steps,
        per_slot_mean_over_steps,
    }
}
