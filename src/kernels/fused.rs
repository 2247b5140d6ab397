//! The fused network: forward (inference and training) and the hand-written
//! backward pass through time, on [`gemm`] and the [`cells`] rows.
//!
//! Sequences are time-major (`[steps, batch, features]`, one row per
//! batch slot and step), so a step's rows are contiguous and the input
//! projection of many steps is one product. Inference runs the steps in
//! chunks through every layer, so memory stays bounded by the chunk
//! whatever the input's length.

use rayon::prelude::*;

use super::cells::{self, GruRow, LstmRow};
use super::gemm::{gemm, gemm_bias, MatA, PackedB};
use crate::model::{Head, ModelConfig, Outputs, Weights};
use crate::state::Cell;

/// Rows x gate width of one inference chunk's pre-activations (16 MiB).
const CHUNK_FLOATS: usize = 1 << 22;
/// Units of cell arithmetic worth handing to another thread.
const ROWS_PER_THREAD_TASK: usize = 2048;

struct Layer {
    cell: Cell,
    input: usize,
    units: usize,
    /// `W_ihᵀ` `[in, gH]`.
    w_ih_t: PackedB,
    /// `W_hhᵀ` `[H, gH]`.
    w_hh_t: PackedB,
    bias: Vec<f32>,
    bias_hh: Option<Vec<f32>>,
}

impl Layer {
    fn gates(&self) -> usize {
        self.bias.len()
    }
}

/// A network ready for the fused kernels (weights packed once).
pub struct FusedNet {
    pub config: ModelConfig,
    layers: Vec<Layer>,
    /// `head_wᵀ` `[H_last, out]`.
    head_t: PackedB,
    head_b: Vec<f32>,
}

/// Per layer, per state tensor (`h`, `c`): row-major `[batch, units]`.
pub type States = Vec<Vec<Vec<f32>>>;

/// What one layer's forward pass keeps for the backward pass (all steps).
#[derive(Default)]
pub struct Tape {
    /// The layer's input `[T*B, in]`.
    input: Vec<f32>,
    /// `h` before each step then after the last: `[(T+1)*B, H]`.
    hs: Vec<f32>,
    /// Gate activations `[T*B, gH]`.
    gates: Vec<f32>,
    /// LSTM: `c` before each step then after the last `[(T+1)*B, H]`.
    cs: Vec<f32>,
    /// LSTM: `tanh(c)` after each step `[T*B, H]`.
    tanh_c: Vec<f32>,
    /// GRU: `h·U_n + b_hn` at each step `[T*B, H]`.
    gh_n: Vec<f32>,
}

/// Gradients in [`Weights`]'s parameter order: per layer `w_ih, w_hh,
/// bias, (bias_hh)`, then `head_w, head_b`.
pub type Grads = Vec<Vec<f32>>;

/// Column sums in row order.
fn column_sums(m: &[f32], cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; cols];
    for row in m.chunks_exact(cols) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
    out
}

impl FusedNet {
    pub fn new(w: &Weights) -> FusedNet {
        let layers = w
            .layers
            .iter()
            .zip(&w.config.units)
            .map(|(l, &units)| {
                let gates = l.w_ih.shape[0];
                let input = l.w_ih.shape[1];
                Layer {
                    cell: w.config.cell,
                    input,
                    units,
                    w_ih_t: PackedB::transposed(&l.w_ih.data, gates, input),
                    w_hh_t: PackedB::transposed(&l.w_hh.data, gates, units),
                    bias: l.bias.data.clone(),
                    bias_hh: l.bias_hh.as_ref().map(|b| b.data.clone()),
                }
            })
            .collect();
        let last = *w.config.units.last().unwrap_or(&0);
        FusedNet {
            config: w.config.clone(),
            layers,
            head_t: PackedB::transposed(&w.head_w.data, w.config.output_size, last),
            head_b: w.head_b.data.clone(),
        }
    }

    /// Runs `steps` time steps of one layer: `x` `[steps*B, in]` from
    /// `state`, writing the outputs `[steps*B, H]` to `out` and the gates'
    /// pre-activations then activations `[steps*B, gH]` to `z` (resized;
    /// inference passes the same buffer chunk after chunk, so it is neither
    /// allocated nor zeroed again). With a tape, keeps what the backward
    /// pass needs, except `z`, which the caller moves into it.
    #[allow(clippy::too_many_arguments)]
    fn layer_steps(
        &self,
        layer: &Layer,
        x: &[f32],
        steps: usize,
        batch: usize,
        state: &mut [Vec<f32>],
        out: &mut [f32],
        z: &mut Vec<f32>,
        mut tape: Option<&mut Tape>,
    ) {
        let (units, gates) = (layer.units, layer.gates());
        let rows = steps * batch;
        // The input projection of every step at once: b + x·W_ih chains
        // (every element is written, so a reused buffer needs no zeroing).
        z.resize(rows * gates, 0.0);
        gemm_bias(
            MatA::rows(x, rows, layer.input),
            &layer.w_ih_t,
            &layer.bias,
            z,
            gates,
        );
        let mut tanh_c = vec![
            0f32;
            if tape.is_some() {
                rows * units
            } else {
                batch * units
            }
        ];
        let mut gh = vec![
            0f32;
            if layer.cell == Cell::Gru {
                batch * gates
            } else {
                0
            }
        ];
        let (h_state, c_state) = state.split_at_mut(1);
        for t in 0..steps {
            let (before, now) = out.split_at_mut(t * batch * units);
            let h_prev: &[f32] = if t == 0 {
                &h_state[0]
            } else {
                &before[(t - 1) * batch * units..]
            };
            let h_now = &mut now[..batch * units];
            let zt = &mut z[t * batch * gates..(t + 1) * batch * gates];
            match layer.cell {
                Cell::Lstm => {
                    gemm(
                        MatA::rows(h_prev, batch, units),
                        &layer.w_hh_t,
                        zt,
                        gates,
                        true,
                    );
                    if let Some(tape) = tape.as_deref_mut() {
                        tape.cs.extend_from_slice(&c_state[0]);
                    }
                    let tc = if tape.is_some() {
                        &mut tanh_c[t * batch * units..(t + 1) * batch * units]
                    } else {
                        &mut tanh_c[..]
                    };
                    // Rows are independent; threads take rows only when
                    // there is enough work (the bits are the same either way).
                    let rows = zt
                        .par_chunks_mut(gates)
                        .zip(c_state[0].par_chunks_mut(units))
                        .zip(tc.par_chunks_mut(units).zip(h_now.par_chunks_mut(units)))
                        .with_min_len(ROWS_PER_THREAD_TASK.div_ceil(units));
                    rows.for_each(|((z, c), (tanh_c, h))| {
                        cells::lstm_row(&mut LstmRow { z, c, tanh_c, h }, units)
                    });
                }
                Cell::Gru => {
                    gemm_bias(
                        MatA::rows(h_prev, batch, units),
                        &layer.w_hh_t,
                        layer.bias_hh.as_deref().unwrap_or(&[]),
                        &mut gh,
                        gates,
                    );
                    if let Some(tape) = tape.as_deref_mut() {
                        for b in 0..batch {
                            tape.gh_n
                                .extend_from_slice(&gh[b * gates + 2 * units..(b + 1) * gates]);
                        }
                    }
                    let rows = zt
                        .par_chunks_mut(gates)
                        .zip(gh.par_chunks(gates))
                        .zip(
                            h_prev[..batch * units]
                                .par_chunks(units)
                                .zip(h_now.par_chunks_mut(units)),
                        )
                        .with_min_len(ROWS_PER_THREAD_TASK.div_ceil(units));
                    rows.for_each(|((gi, gh), (h_prev, h))| {
                        cells::gru_row(&mut GruRow { gi, gh, h_prev, h }, units)
                    });
                }
            }
        }
        if steps > 0 {
            state[0].copy_from_slice(&out[(steps - 1) * batch * units..steps * batch * units]);
        }
        if let Some(tape) = tape {
            if layer.cell == Cell::Lstm {
                tape.cs.extend_from_slice(&state[1]);
                tape.tanh_c = tanh_c;
            }
        }
    }

    /// The head over `h` rows `[rows, H_last]`: logits `[rows, out]`.
    fn head(&self, h: &[f32], rows: usize) -> Vec<f32> {
        let mut logits = vec![0f32; rows * self.head_b.len()];
        let last = self.layers.last().map_or(0, |l| l.units);
        gemm_bias(
            MatA::rows(h, rows, last),
            &self.head_t,
            &self.head_b,
            &mut logits,
            self.head_b.len(),
        );
        logits
    }

    /// Inference: `x` batch-major `[B, steps, F]` (as users give it) from
    /// `states` (updated to the final states). Returns the head's logits,
    /// time-major `[steps, B, out]` for per-step outputs, else `[B, out]`.
    ///
    /// Steps run in chunks through every layer; each chunk's input is
    /// gathered time-major into a buffer that, like the pre-activations and
    /// the layers' outputs, is reused from chunk to chunk.
    pub fn forward(&self, x: &[f32], steps: usize, batch: usize, states: &mut States) -> Vec<f32> {
        let widest = self
            .layers
            .iter()
            .map(|l| l.gates())
            .max()
            .unwrap_or(1)
            .max(1);
        let chunk = (CHUNK_FLOATS / (batch.max(1) * widest)).max(1);
        let features = self.config.input_size;
        let per_step = self.config.outputs == Outputs::Sequence;
        let mut logits = Vec::new();
        let mut last_h = Vec::new();
        let (mut seq, mut spare, mut z) = (Vec::new(), Vec::new(), Vec::new());
        let mut t0 = 0;
        while t0 < steps {
            let n = chunk.min(steps - t0);
            seq.clear();
            for t in t0..t0 + n {
                for b in 0..batch {
                    let start = (b * steps + t) * features;
                    seq.extend_from_slice(&x[start..start + features]);
                }
            }
            for (layer, state) in self.layers.iter().zip(states.iter_mut()) {
                spare.resize(n * batch * layer.units, 0.0);
                self.layer_steps(layer, &seq, n, batch, state, &mut spare, &mut z, None);
                std::mem::swap(&mut seq, &mut spare);
            }
            if per_step {
                logits.extend(self.head(&seq, n * batch));
            } else if t0 + n == steps {
                let units = self.layers.last().map_or(0, |l| l.units);
                last_h = seq[(n - 1) * batch * units..].to_vec();
            }
            t0 += n;
        }
        if per_step {
            logits
        } else {
            self.head(&last_h, batch)
        }
    }

    /// Training forward: like [`forward`](Self::forward) over the whole
    /// sequence, keeping a tape per layer. Returns the logits (time-major
    /// per step, else `[B, out]`), the last layer's outputs `[T*B, H]` and
    /// the tapes.
    pub fn forward_taped(
        &self,
        x: &[f32],
        steps: usize,
        batch: usize,
        states: &mut States,
    ) -> (Vec<f32>, Vec<f32>, Vec<Tape>) {
        let mut seq = x.to_vec();
        let mut tapes = Vec::with_capacity(self.layers.len());
        for (layer, state) in self.layers.iter().zip(states.iter_mut()) {
            let mut tape = Tape {
                hs: state[0].clone(),
                ..Default::default()
            };
            let mut out = vec![0f32; steps * batch * layer.units];
            let mut z = Vec::new();
            self.layer_steps(
                layer,
                &seq,
                steps,
                batch,
                state,
                &mut out,
                &mut z,
                Some(&mut tape),
            );
            tape.gates = z;
            tape.hs.extend_from_slice(&out);
            tape.input = std::mem::replace(&mut seq, out);
            tapes.push(tape);
        }
        let units = self.layers.last().map_or(0, |l| l.units);
        let logits = if self.config.outputs == Outputs::Sequence {
            self.head(&seq, steps * batch)
        } else {
            self.head(&seq[(steps.max(1) - 1) * batch * units..], batch)
        };
        (logits, seq, tapes)
    }

    /// Backward through the head and every layer, from `d_logits` (same
    /// layout as the logits). Gradients of the starting states are not
    /// needed: stateful training truncates at batch boundaries.
    pub fn backward(
        &self,
        weights: &Weights,
        d_logits: &[f32],
        top: &[f32],
        tapes: &[Tape],
        steps: usize,
        batch: usize,
    ) -> Grads {
        let out = self.head_b.len();
        let units = self.layers.last().map_or(0, |l| l.units);
        let per_step = self.config.outputs == Outputs::Sequence;
        let rows = if per_step { steps * batch } else { batch };
        let h_rows = if per_step {
            top
        } else {
            &top[(steps - 1) * batch * units..]
        };
        // Head: dW = dLᵀ·H, db = column sums, dH = dL·W.
        let mut d_head_w = vec![0f32; out * units];
        gemm(
            MatA::transposed(d_logits, out, rows),
            &PackedB::from_rows(h_rows, rows, units),
            &mut d_head_w,
            units,
            false,
        );
        let d_head_b = column_sums(d_logits, out);
        let mut d_h = vec![0f32; rows * units];
        gemm(
            MatA::rows(d_logits, rows, out),
            &PackedB::from_rows(&weights.head_w.data, out, units),
            &mut d_h,
            units,
            false,
        );
        let mut d_out = if per_step {
            d_h
        } else {
            let mut all = vec![0f32; steps * batch * units];
            all[(steps - 1) * batch * units..].copy_from_slice(&d_h);
            all
        };
        let mut grads: Vec<Grads> = Vec::with_capacity(self.layers.len());
        for (k, (layer, tape)) in self.layers.iter().zip(tapes).enumerate().rev() {
            let w = &weights.layers[k];
            let (layer_grads, d_x) = layer_backward(layer, w, tape, &d_out, steps, batch, k > 0);
            grads.push(layer_grads);
            d_out = d_x;
        }
        grads.reverse();
        let mut flat: Grads = grads.into_iter().flatten().collect();
        flat.push(d_head_w);
        flat.push(d_head_b);
        flat
    }
}

/// One layer's backward pass through time. Returns its gradients and,
/// when `need_dx`, the gradient of its input `[T*B, in]`.
///
/// Each step's weight gradients (`dW += dZ_tᵀ·[x_t | h_{t-1}]`) are added
/// while the step's block is in cache, so no `[T*B, gH]` buffer is kept.
fn layer_backward(
    layer: &Layer,
    w: &crate::model::LayerWeights,
    tape: &Tape,
    d_out: &[f32],
    steps: usize,
    batch: usize,
    need_dx: bool,
) -> (Grads, Vec<f32>) {
    let (units, gates, input) = (layer.units, layer.gates(), layer.input);
    let gru = layer.cell == Cell::Gru;
    let w_hh = PackedB::from_rows(&w.w_hh.data, gates, units);
    let w_ih = need_dx.then(|| PackedB::from_rows(&w.w_ih.data, gates, input));
    // One step's gradients of the pre-activations: of `x·W + b` (d_gi)
    // and, for a GRU, of `h·U + b_h` (d_gh; an LSTM's are the same).
    let mut d_gi = vec![0f32; batch * gates];
    let mut d_gh = vec![0f32; if gru { batch * gates } else { 0 }];
    // The weight gradients are summed transposed (`dWᵀ += [x | h]ᵀ·dZ`):
    // the narrow inputs are gathered column-wise and the wide `dZ` packed
    // as it lies. Each element's chain multiplies the same pairs in the
    // same order as `dZᵀ·[x | h]` would (a product commutes), so the bits
    // are those of the untransposed form.
    let mut d_w_ih_t = vec![0f32; if gru { input * gates } else { 0 }];
    let mut d_w_hh_t = vec![0f32; if gru { units * gates } else { 0 }];
    let mut d_w_joined_t = vec![0f32; if gru { 0 } else { (input + units) * gates }];
    let mut d_bias = vec![0f32; gates];
    let mut d_bias_hh = vec![0f32; if gru { gates } else { 0 }];
    let mut d_x = vec![0f32; if need_dx { steps * batch * input } else { 0 }];
    let mut d_h_next = vec![0f32; batch * units];
    let mut d_c_next = vec![0f32; batch * units];
    let none: &[f32] = &[];
    for t in (0..steps).rev() {
        let step = t * batch * units..(t + 1) * batch * units;
        let block = t * batch * gates..(t + 1) * batch * gates;
        let tape_t = &tape.gates[block];
        let d_out_t = &d_out[step.clone()];
        let (tc_t, cs_t, hs_t, ghn_t) = if gru {
            (none, none, &tape.hs[step.clone()], &tape.gh_n[step.clone()])
        } else {
            (
                &tape.tanh_c[step.clone()],
                &tape.cs[step.clone()],
                none,
                none,
            )
        };
        // Rows are independent (a row's arithmetic is the same wherever it
        // runs); threads take rows only when there is enough work.
        let min_rows = ROWS_PER_THREAD_TASK.div_ceil(units);
        if gru {
            d_gi.par_chunks_mut(gates)
                .zip(d_gh.par_chunks_mut(gates))
                .zip(d_h_next.par_chunks_mut(units))
                .enumerate()
                .with_min_len(min_rows)
                .for_each(|(b, ((d, dg), dh_next))| {
                    let at = b * units..(b + 1) * units;
                    cells::gru_back_row(
                        &mut cells::GruBackRow {
                            gates: &tape_t[b * gates..(b + 1) * gates],
                            h_prev: &hs_t[at.clone()],
                            gh_n: &ghn_t[at.clone()],
                            d_out: &d_out_t[at],
                            d,
                            dg,
                            dh_next,
                        },
                        units,
                    )
                });
        } else {
            d_gi.par_chunks_mut(gates)
                .zip(d_h_next.par_chunks_mut(units))
                .zip(d_c_next.par_chunks_mut(units))
                .enumerate()
                .with_min_len(min_rows)
                .for_each(|(b, ((d, dh_next), dc_next))| {
                    let at = b * units..(b + 1) * units;
                    cells::lstm_back_row(
                        &mut cells::LstmBackRow {
                            gates: &tape_t[b * gates..(b + 1) * gates],
                            tanh_c: &tc_t[at.clone()],
                            c_prev: &cs_t[at.clone()],
                            d_out: &d_out_t[at],
                            d,
                            dh_next,
                            dc_next,
                        },
                        units,
                    )
                });
        }
        let d_rec = if gru { &d_gh } else { &d_gi };
        let x_t = &tape.input[t * batch * input..(t + 1) * batch * input];
        let h_t = &tape.hs[step.clone()];
        // The step's weight gradients and dh_{t-1} += dZ_t·U are
        // independent: one runs beside the other.
        rayon::join(
            || {
                if gru {
                    gemm(
                        MatA::transposed(x_t, input, batch),
                        &PackedB::from_rows(&d_gi, batch, gates),
                        &mut d_w_ih_t,
                        gates,
                        true,
                    );
                    gemm(
                        MatA::transposed(h_t, units, batch),
                        &PackedB::from_rows(d_rec, batch, gates),
                        &mut d_w_hh_t,
                        gates,
                        true,
                    );
                } else {
                    // An LSTM's two products share dZ: one product over
                    // [x_t | h_{t-1}] into [dW_ih | dW_hh]ᵀ.
                    let mut joined = Vec::with_capacity(batch * (input + units));
                    for b in 0..batch {
                        joined.extend_from_slice(&x_t[b * input..(b + 1) * input]);
                        joined.extend_from_slice(&h_t[b * units..(b + 1) * units]);
                    }
                    gemm(
                        MatA::transposed(&joined, input + units, batch),
                        &PackedB::from_rows(&d_gi, batch, gates),
                        &mut d_w_joined_t,
                        gates,
                        true,
                    );
                }
            },
            || {
                gemm(
                    MatA::rows(d_rec, batch, gates),
                    &w_hh,
                    &mut d_h_next,
                    units,
                    true,
                )
            },
        );
        add_column_sums(&mut d_bias, &d_gi);
        if gru {
            add_column_sums(&mut d_bias_hh, &d_gh);
        }
        if let Some(w_ih) = &w_ih {
            let rows = t * batch * input..(t + 1) * batch * input;
            gemm(
                MatA::rows(&d_gi, batch, gates),
                w_ih,
                &mut d_x[rows],
                input,
                false,
            );
        }
    }
    let (d_w_ih, d_w_hh) = if gru {
        (
            transpose(&d_w_ih_t, input, gates),
            transpose(&d_w_hh_t, units, gates),
        )
    } else {
        let joined = transpose(&d_w_joined_t, input + units, gates);
        let mut d_w_ih = Vec::with_capacity(gates * input);
        let mut d_w_hh = Vec::with_capacity(gates * units);
        for row in joined.chunks_exact(input + units) {
            d_w_ih.extend_from_slice(&row[..input]);
            d_w_hh.extend_from_slice(&row[input..]);
        }
        (d_w_ih, d_w_hh)
    };
    let mut grads = vec![d_w_ih, d_w_hh, d_bias];
    if gru {
        grads.push(d_bias_hh);
    }
    (grads, d_x)
}

/// `m` (`rows x cols`, row-major) transposed.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows * cols);
    for c in 0..cols {
        out.extend((0..rows).map(|r| m[r * cols + c]));
    }
    out
}

/// Adds the column sums of `m` (rows in order) to `sums`.
fn add_column_sums(sums: &mut [f32], m: &[f32]) {
    for row in m.chunks_exact(sums.len()) {
        for (o, &v) in sums.iter_mut().zip(row) {
            *o += v;
        }
    }
}

/// Softmax over each `width`-wide row.
pub fn softmax(logits: &[f32], width: usize) -> Vec<f32> {
    let mut out = vec![0f32; logits.len()];
    for (row, o) in logits.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        cells::softmax_row(row, o);
    }
    out
}

/// The head's outputs from its logits.
pub fn outputs(head: Head, logits: &[f32], width: usize) -> Vec<f32> {
    match head {
        Head::Softmax => softmax(logits, width),
        Head::Linear => logits.to_vec(),
    }
}
