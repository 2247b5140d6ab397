//! Initial weights like Keras's defaults, from statectl's own seeded RNG
//! (candle's CPU RNG cannot be seeded): Glorot-uniform input kernels,
//! orthogonal recurrent kernels, zero biases with forget-gate bias 1,
//! Glorot-uniform head, zero head bias.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::{LayerWeights, ModelConfig, Weights};
use crate::state::Cell;
use crate::tensors::{transpose, Tensor};

fn glorot_uniform(rng: &mut ChaCha8Rng, fan_in: usize, fan_out: usize) -> Vec<f32> {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
    (0..fan_in * fan_out)
        .map(|_| rng.random_range(-limit..limit) as f32)
        .collect()
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller: two uniforms, one normal (the second is dropped for simplicity).
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A `[rows, cols]` (row-major) matrix with orthonormal rows or columns,
/// as Keras's `Orthogonal`: QR of a normal matrix, signs fixed by `diag(R)`.
fn orthogonal(rng: &mut ChaCha8Rng, rows: usize, cols: usize) -> Vec<f32> {
    let (n, k) = (rows.max(cols), rows.min(cols));
    // Columns of an n x k normal matrix, orthonormalised by modified Gram-Schmidt
    // (the Q of QR, with R's diagonal positive).
    let mut q: Vec<Vec<f64>> = (0..k)
        .map(|_| (0..n).map(|_| normal(rng)).collect())
        .collect();
    for j in 0..k {
        for i in 0..j {
            let dot: f64 = (0..n).map(|r| q[i][r] * q[j][r]).sum();
            let (done, rest) = q.split_at_mut(j);
            for (target, basis) in rest[0].iter_mut().zip(&done[i]) {
                *target -= dot * basis;
            }
        }
        let norm = q[j].iter().map(|v| v * v).sum::<f64>().sqrt();
        for v in q[j].iter_mut() {
            *v /= norm;
        }
    }
    let mut out = vec![0.0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            // Q is n x k; the result is Q (rows >= cols) or Q^T (rows < cols).
            out[r * cols + c] = if rows >= cols { q[c][r] } else { q[r][c] } as f32;
        }
    }
    out
}

/// Draws a model's initial weights; the same seed gives the same bits.
pub fn keras_init(config: &ModelConfig, seed: u64) -> Weights {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut layers = Vec::new();
    let g = config.cell.gates();
    for (k, &h) in config.units.iter().enumerate() {
        let input = config.layer_input(k);
        // Keras kernels are [in, gH]; torch layout stores the transpose.
        let kernel = glorot_uniform(&mut rng, input, g * h);
        let recurrent = orthogonal(&mut rng, h, g * h);
        let mut bias = vec![0.0; g * h];
        // Keras's LSTM starts its forget gate open (unit_forget_bias); its
        // GRU starts every bias at zero.
        if config.cell == Cell::Lstm {
            bias[h..2 * h].iter_mut().for_each(|b| *b = 1.0);
        }
        layers.push(LayerWeights {
            w_ih: Tensor::new(vec![g * h, input], transpose(&kernel, input, g * h)),
            w_hh: Tensor::new(vec![g * h, h], transpose(&recurrent, h, g * h)),
            bias: Tensor::new(vec![g * h], bias),
            bias_hh: (config.cell == Cell::Gru).then(|| Tensor::new(vec![g * h], vec![0.0; g * h])),
        });
    }
    let last = *config.units.last().unwrap_or(&1);
    let head = glorot_uniform(&mut rng, last, config.output_size);
    Weights {
        config: config.clone(),
        layers,
        head_w: Tensor::new(
            vec![config.output_size, last],
            transpose(&head, last, config.output_size),
        ),
        head_b: Tensor::new(vec![config.output_size], vec![0.0; config.output_size]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthogonal_rows_are_orthonormal() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (rows, cols) = (4, 16);
        let m = orthogonal(&mut rng, rows, cols);
        for i in 0..rows {
            for j in 0..rows {
                let dot: f32 = (0..cols).map(|c| m[i * cols + c] * m[j * cols + c]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-5, "{i},{j}: {dot}");
            }
        }
    }
}
