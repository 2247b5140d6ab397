//! The fused network: forward (inference and training) and the hand-written
//! backward pass through time, on the kernels' [`gemm`] and [`cells`] rows.
//!
//! Sequences are time-major (`[steps, batch, features]`, one row per
//! batch slot and step), so a step's rows are contiguous and the input
//! projection of many steps is one product. Inference runs the steps in
//! chunks through every layer, so memory stays bounded by the chunk
//! whatever the input's length.

use super::{Head, LayerWeights, ModelConfig, Outputs, Weights};
use crate::kernels::cells::{self, GruRow, LstmRow};
use crate::kernels::gemm::{
    gemm, gemm_bias, gemm_bias_by, gemm_by, worth_sharing, MatA, PackedB, Threads, NR,
};
use crate::kernels::team::with_team;
use crate::state::Cell;

/// Rows x gate width of one inference chunk's pre-activations (16 MiB).
const CHUNK_FLOATS: usize = 1 << 22;

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

/// How a step's rows share the threads. Each row's bits are the same
/// either way; only who computes it differs.
#[derive(Debug, Clone, Copy)]
enum StepPlan {
    /// Chunks of this many rows, one per task: each task runs its rows'
    /// product and then their cells, so a step is one round of a
    /// [`team`](crate::kernels::team) (its threads live as long as the loop over
    /// the steps).
    Rows(usize),
    /// Fewer rows than threads (e.g. one stream): the product splits its
    /// columns between the threads, then this thread runs the cells.
    Columns,
}

impl StepPlan {
    /// The threads a step's tasks need: one per chunk of rows (with
    /// [`StepPlan::Columns`] the product itself shares its columns).
    fn team_size(self, rows: usize) -> usize {
        match self {
            StepPlan::Rows(per) => rows.div_ceil(per.max(1)),
            StepPlan::Columns => 1,
        }
    }

    /// For `rows` rows of `work_per_row` multiply-adds each.
    fn new(rows: usize, work_per_row: usize) -> StepPlan {
        let threads = rayon::current_num_threads().max(1);
        if !worth_sharing(rows, work_per_row) {
            StepPlan::Rows(rows.max(1))
        } else if rows >= threads {
            StepPlan::Rows(rows.div_ceil(threads))
        } else {
            StepPlan::Columns
        }
    }
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
    // Long on purpose: one loop over the steps whose body is one round of a
    // thread team sharing the step's buffers; split, the buffers and the
    // order of the sums that keeps the bits would be spread over helpers
    // passed a dozen slices each.
    #[allow(clippy::too_many_arguments, clippy::too_many_lines)]
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
        let plan = StepPlan::new(batch, units * gates);
        with_team(plan.team_size(batch), |team| {
            for t in 0..steps {
                let (before, now) = out.split_at_mut(t * batch * units);
                let h_prev: &[f32] = if t == 0 {
                    &h_state[0][..batch * units]
                } else {
                    &before[(t - 1) * batch * units..]
                };
                let h_now = &mut now[..batch * units];
                let zt = &mut z[t * batch * gates..(t + 1) * batch * gates];
                match layer.cell {
                    Cell::Lstm => {
                        if let Some(tape) = tape.as_deref_mut() {
                            tape.cs.extend_from_slice(&c_state[0]);
                        }
                        let tc = if tape.is_some() {
                            &mut tanh_c[t * batch * units..(t + 1) * batch * units]
                        } else {
                            &mut tanh_c[..]
                        };
                        // Some rows: z += h·U, then the cell, row by row.
                        let step = |h_prev: &[f32],
                                    z: &mut [f32],
                                    c: &mut [f32],
                                    tc: &mut [f32],
                                    h: &mut [f32],
                                    threads: Threads| {
                            let rows = h_prev.len() / units;
                            let recurrent = MatA::rows(h_prev, rows, units);
                            gemm_by(threads, recurrent, &layer.w_hh_t, z, gates, true);
                            for (((z, c), tanh_c), h) in z
                                .chunks_exact_mut(gates)
                                .zip(c.chunks_exact_mut(units))
                                .zip(tc.chunks_exact_mut(units))
                                .zip(h.chunks_exact_mut(units))
                            {
                                cells::lstm_row(&mut LstmRow { z, c, tanh_c, h }, units);
                            }
                        };
                        let c = &mut c_state[0][..batch * units];
                        match plan {
                            StepPlan::Columns => step(h_prev, zt, c, tc, h_now, Threads::Shared),
                            StepPlan::Rows(per) => {
                                let mut chunks: Vec<_> = zt
                                    .chunks_mut(per * gates)
                                    .zip(c.chunks_mut(per * units))
                                    .zip(tc.chunks_mut(per * units))
                                    .zip(h_now.chunks_mut(per * units))
                                    .zip(h_prev.chunks(per * units))
                                    .collect();
                                team.for_each(&mut chunks, |((((z, c), tc), h), h_prev)| {
                                    step(h_prev, z, c, tc, h, Threads::This)
                                })
                            }
                        }
                    }
                    Cell::Gru => {
                        let bias_hh = layer.bias_hh.as_deref().unwrap_or(&[]);
                        // Some rows: gh = b_h + h·U, then the cell, row by row.
                        let step = |h_prev: &[f32],
                                    gi: &mut [f32],
                                    gh: &mut [f32],
                                    h: &mut [f32],
                                    threads: Threads| {
                            let rows = h_prev.len() / units;
                            let recurrent = MatA::rows(h_prev, rows, units);
                            gemm_bias_by(threads, recurrent, &layer.w_hh_t, bias_hh, gh, gates);
                            for (((gi, gh), h_prev), h) in gi
                                .chunks_exact_mut(gates)
                                .zip(gh.chunks_exact(gates))
                                .zip(h_prev.chunks_exact(units))
                                .zip(h.chunks_exact_mut(units))
                            {
                                cells::gru_row(&mut GruRow { gi, gh, h_prev, h }, units);
                            }
                        };
                        match plan {
                            StepPlan::Columns => step(h_prev, zt, &mut gh, h_now, Threads::Shared),
                            StepPlan::Rows(per) => {
                                let mut chunks: Vec<_> = zt
                                    .chunks_mut(per * gates)
                                    .zip(gh.chunks_mut(per * gates))
                                    .zip(h_now.chunks_mut(per * units))
                                    .zip(h_prev.chunks(per * units))
                                    .collect();
                                team.for_each(&mut chunks, |(((gi, gh), h), h_prev)| {
                                    step(h_prev, gi, gh, h, Threads::This)
                                })
                            }
                        }
                        if let Some(tape) = tape.as_deref_mut() {
                            for row in gh.chunks_exact(gates) {
                                tape.gh_n.extend_from_slice(&row[2 * units..]);
                            }
                        }
                    }
                }
            }
        });
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
        tapes: Vec<Tape>,
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
/// Each step backwards is one round of a few tasks (one per
/// thread). Task `i` takes a chunk of rows of step `t`: their cell
/// gradients, then their share of `dh_{t-1} += dZ_t·U`. Beside that it
/// takes a chunk of gate columns of step `t+1`'s weight gradients
/// (`dWᵀ += [x | h]ᵀ·dZ_{t+1}`, and the bias sums), whose inputs the
/// previous round finished. So the threads share every step's work in one
/// round of a [`team`](crate::kernels::team), and each step's blocks are used while
/// they are in cache.
///
/// The cell gradients overwrite the tape's gate activations (read just
/// before), so `dZ` of every step is kept without another buffer for the
/// input's gradient, one product over all steps at the end.
///
/// Every element's sum runs in the order of every earlier `fused-1` build
/// (steps T-1 .. 0, then slots 0 .. B-1), so the bits are the same.
// Long on purpose, as `layer_steps`: the summation order above lives in
// one place.
#[allow(clippy::too_many_lines)]
fn layer_backward(
    layer: &Layer,
    w: &LayerWeights,
    mut tape: Tape,
    d_out: &[f32],
    steps: usize,
    batch: usize,
    need_dx: bool,
) -> (Grads, Vec<f32>) {
    let (units, gates, input) = (layer.units, layer.gates(), layer.input);
    let gru = layer.cell == Cell::Gru;
    let w_hh = PackedB::from_rows(&w.w_hh.data, gates, units);
    // A GRU's gradients of `h·U + b_h` differ from those of `x·W + b_i`
    // (an LSTM's are the same): one step's, and the step after's.
    let mut d_gh = vec![0f32; if gru { batch * gates } else { 0 }];
    let mut d_gh_after = d_gh.clone();
    let mut d_h_next = vec![0f32; batch * units];
    let mut d_c_next = vec![0f32; batch * units];
    let plan = StepPlan::new(batch, units * gates);
    let (per, threads) = match plan {
        StepPlan::Rows(per) => (per, Threads::This),
        StepPlan::Columns => (batch.max(1), Threads::Shared),
    };
    let tasks = batch.div_ceil(per).max(1);
    let mut parts: Vec<WeightPart> = (0..tasks)
        .map(|i| WeightPart::new(column_share(gates, tasks, i), input, units, gru))
        .collect();
    // `[x_t | h_{t-1}]ᵀ` `[in + H, B]` of the step whose weight gradients
    // this round adds, and of the step whose the next round adds (which
    // this round's tasks lay out, a share of the features each).
    let features = input + units;
    let mut inputs_t = vec![0f32; features * batch];
    let mut inputs_next = inputs_t.clone();
    let features_per_task = features.div_ceil(tasks).max(1);
    // Iteration `s` runs the cells of step s-1 and the weight gradients of
    // step s (the last step has none before it; step 0 none after).
    with_team(plan.team_size(batch), |team| {
        for s in (0..=steps).rev() {
            let now = s.checked_sub(1);
            let after = (s < steps).then_some(s);
            let (earlier, later) = tape.gates.split_at_mut(s * batch * gates);
            let d_after: &[f32] = if after.is_some() {
                &later[..batch * gates]
            } else {
                &[]
            };
            std::mem::swap(&mut d_gh, &mut d_gh_after);
            let dg_after: &[f32] = if gru && after.is_some() {
                &d_gh_after
            } else {
                d_after
            };
            let columns = ColumnsInput {
                d: d_after,
                dg: dg_after,
                inputs_t: &inputs_t,
                batch,
                gates,
                input,
                threads,
            };
            let mut rows: Vec<Option<RowsTask>> = match now {
                None => (0..tasks).map(|_| None).collect(),
                Some(t) => {
                    let step = t * batch * units..(t + 1) * batch * units;
                    let chunk = per * units;
                    let none: &[f32] = &[];
                    let (tanh_c, c_prev, h_prev, gh_n) = if gru {
                        (none, none, &tape.hs[step.clone()], &tape.gh_n[step.clone()])
                    } else {
                        (
                            &tape.tanh_c[step.clone()],
                            &tape.cs[step.clone()],
                            none,
                            none,
                        )
                    };
                    let part = |v, i| row_chunk(v, i, chunk);
                    let mut dg_chunks = d_gh.chunks_mut(per * gates);
                    earlier[t * batch * gates..]
                        .chunks_mut(per * gates)
                        .zip(d_h_next.chunks_mut(chunk))
                        .zip(d_c_next.chunks_mut(chunk))
                        .enumerate()
                        .map(|(i, ((d, dh_next), dc_next))| {
                            Some(RowsTask {
                                d,
                                dg: dg_chunks.next().unwrap_or_default(),
                                dh_next,
                                dc_next,
                                tanh_c: part(tanh_c, i),
                                c_prev: part(c_prev, i),
                                h_prev: part(h_prev, i),
                                gh_n: part(gh_n, i),
                                d_out: part(&d_out[step.clone()], i),
                            })
                        })
                        .collect()
                }
            };
            // The next round's inputs (step `now`), a share of the features
            // per task.
            let mut next: Vec<Option<(usize, &mut [f32])>> = (0..tasks).map(|_| None).collect();
            if now.is_some() {
                let shares = inputs_next.chunks_mut(features_per_task * batch);
                for (i, share) in shares.enumerate() {
                    next[i] = Some((i * features_per_task, share));
                }
            }
            let (x_all, h_all) = (&tape.input, &tape.hs);
            let mut tasks: Vec<_> = rows
                .iter_mut()
                .zip(parts.iter_mut())
                .zip(next.iter_mut())
                .collect();
            team.for_each(&mut tasks, |((rows, part), next)| {
                if let (Some(t), Some((first, out))) = (now, next) {
                    let (x_t, h_t) = (&x_all[t * batch * input..], &h_all[t * batch * units..]);
                    transposed_inputs(x_t, h_t, batch, input, units, *first, out);
                }
                if let Some(rows) = rows {
                    rows.run(layer.cell, units, gates, &w_hh, threads);
                }
                if after.is_some() {
                    part.add(&columns);
                }
            });
            drop(tasks);
            std::mem::swap(&mut inputs_t, &mut inputs_next);
        }
    });
    let mut d_w_ih = vec![0f32; gates * input];
    let mut d_w_hh = vec![0f32; gates * units];
    let mut d_bias = Vec::with_capacity(gates);
    let mut d_bias_hh = Vec::with_capacity(gates);
    for part in &parts {
        part.place(&mut d_w_ih, input, &part.ih);
        part.place(&mut d_w_hh, units, &part.hh);
        d_bias.extend_from_slice(&part.bias);
        d_bias_hh.extend_from_slice(&part.bias_hh);
    }
    let mut grads = vec![d_w_ih, d_w_hh, d_bias];
    if gru {
        grads.push(d_bias_hh);
    }
    // The input's gradient, every step in one product (rows independent).
    let mut d_x = vec![0f32; if need_dx { steps * batch * input } else { 0 }];
    if need_dx {
        let w_ih = PackedB::from_rows(&w.w_ih.data, gates, input);
        let d_all = MatA::rows(&tape.gates, steps * batch, gates);
        gemm(d_all, &w_ih, &mut d_x, input, false);
    }
    (grads, d_x)
}

/// Chunk `i` (`chunk` long) of `v`; nothing of an empty `v`.
fn row_chunk(v: &[f32], i: usize, chunk: usize) -> &[f32] {
    if v.is_empty() {
        v
    } else {
        &v[i * chunk..((i + 1) * chunk).min(v.len())]
    }
}

/// Task `i` of `tasks`'s gate columns: equal shares, in whole AVX-512
/// panel pairs.
fn column_share(gates: usize, tasks: usize, i: usize) -> std::ops::Range<usize> {
    let width = gates.div_ceil(tasks).next_multiple_of(2 * NR);
    (i * width).min(gates)..((i + 1) * width).min(gates)
}

/// Features `first..` of `[x_t | h_{t-1}]ᵀ` `[in + H, B]` into `out`
/// (`[features, B]`), from one step's rows of the layer's input `x_t`
/// `[B, in]` and of `h_{t-1}` `[B, H]`: feature by feature, so its parts
/// read as the `A` of the weight gradients' products.
fn transposed_inputs(
    x_t: &[f32],
    h_t: &[f32],
    batch: usize,
    input: usize,
    units: usize,
    first: usize,
    out: &mut [f32],
) {
    let count = out.len() / batch.max(1);
    for b in 0..batch {
        let x = &x_t[b * input..(b + 1) * input];
        let h = &h_t[b * units..(b + 1) * units];
        for (f, &v) in x.iter().chain(h).enumerate().skip(first).take(count) {
            out[(f - first) * batch + b] = v;
        }
    }
}

/// One task's rows of one step backward.
struct RowsTask<'a> {
    /// In: the rows' gate activations; out: their gradients (`x·W + b_i`).
    d: &'a mut [f32],
    /// GRU: receives the gradients of `h·U + b_h`.
    dg: &'a mut [f32],
    dh_next: &'a mut [f32],
    dc_next: &'a mut [f32],
    tanh_c: &'a [f32],
    c_prev: &'a [f32],
    h_prev: &'a [f32],
    gh_n: &'a [f32],
    d_out: &'a [f32],
}

impl RowsTask<'_> {
    /// The rows' cell gradients, then `dh_{t-1} += dZ·U` for them.
    fn run(&mut self, cell: Cell, units: usize, gates: usize, w_hh: &PackedB, threads: Threads) {
        let rows = self.d.len() / gates;
        for b in 0..rows {
            let at = b * units..(b + 1) * units;
            let gate_row = &mut self.d[b * gates..(b + 1) * gates];
            match cell {
                Cell::Gru => cells::gru_back_row(
                    &mut cells::GruBackRow {
                        gates: gate_row,
                        h_prev: &self.h_prev[at.clone()],
                        gh_n: &self.gh_n[at.clone()],
                        d_out: &self.d_out[at.clone()],
                        dg: &mut self.dg[b * gates..(b + 1) * gates],
                        dh_next: &mut self.dh_next[at],
                    },
                    units,
                ),
                Cell::Lstm => cells::lstm_back_row(
                    &mut cells::LstmBackRow {
                        gates: gate_row,
                        tanh_c: &self.tanh_c[at.clone()],
                        c_prev: &self.c_prev[at.clone()],
                        d_out: &self.d_out[at.clone()],
                        dh_next: &mut self.dh_next[at.clone()],
                        dc_next: &mut self.dc_next[at],
                    },
                    units,
                ),
            }
        }
        let d_rec = if cell == Cell::Gru {
            &*self.dg
        } else {
            &*self.d
        };
        let a = MatA::rows(d_rec, rows, gates);
        gemm_by(threads, a, w_hh, self.dh_next, units, true);
    }
}

/// What every task reads to add one step's weight gradients.
struct ColumnsInput<'a> {
    /// The step's `dZ` (of `x·W + b_i`) `[B, gH]`.
    d: &'a [f32],
    /// Of `h·U + b_h` (an LSTM's: `d` again).
    dg: &'a [f32],
    /// `[x | h]ᵀ` `[in + H, B]`.
    inputs_t: &'a [f32],
    batch: usize,
    gates: usize,
    input: usize,
    threads: Threads,
}

/// One task's gate columns of a layer's weight gradients, summed over the
/// steps: `dW_ihᵀ` `[in, w]`, `dW_hhᵀ` `[H, w]` and the bias sums.
struct WeightPart {
    cols: std::ops::Range<usize>,
    ih: Vec<f32>,
    hh: Vec<f32>,
    bias: Vec<f32>,
    bias_hh: Vec<f32>,
}

impl WeightPart {
    fn new(cols: std::ops::Range<usize>, input: usize, units: usize, gru: bool) -> WeightPart {
        let width = cols.len();
        WeightPart {
            ih: vec![0f32; input * width],
            hh: vec![0f32; units * width],
            bias: vec![0f32; width],
            bias_hh: vec![0f32; if gru { width } else { 0 }],
            cols,
        }
    }

    /// Adds one step: `[x | h]ᵀ·dZ` in these columns, and the column sums.
    fn add(&mut self, step: &ColumnsInput) {
        let (batch, gates, input) = (step.batch, step.gates, step.input);
        let units = self.hh.len() / self.cols.len().max(1);
        if self.cols.is_empty() {
            return;
        }
        let width = self.cols.len();
        let product = |a: MatA, d: &[f32], c: &mut [f32]| {
            let b = PackedB::from_columns(d, batch, gates, self.cols.clone());
            gemm_by(step.threads, a, &b, c, width, true);
        };
        let (x_t, h_t) = step.inputs_t.split_at(input * batch);
        product(MatA::rows(x_t, input, batch), step.d, &mut self.ih);
        product(MatA::rows(h_t, units, batch), step.dg, &mut self.hh);
        add_column_sums(&mut self.bias, step.d, gates, self.cols.start);
        if !self.bias_hh.is_empty() {
            add_column_sums(&mut self.bias_hh, step.dg, gates, self.cols.start);
        }
    }

    /// Writes this part (`[n, w]`, transposed) into its rows of the
    /// gradient `[gH, n]`.
    fn place(&self, grad: &mut [f32], n: usize, part: &[f32]) {
        let width = self.cols.len();
        for (j, gate) in self.cols.clone().enumerate() {
            for f in 0..n {
                grad[gate * n + f] = part[f * width + j];
            }
        }
    }
}

/// Adds to `sums` the column sums, rows in order, of `m` (`ld` wide)
/// from column `first` on.
fn add_column_sums(sums: &mut [f32], m: &[f32], ld: usize, first: usize) {
    for row in m.chunks_exact(ld) {
        for (o, &v) in sums.iter_mut().zip(&row[first..]) {
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
