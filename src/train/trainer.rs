//! The training loop. Stateful training carries `(h, c)` from batch to
//! batch, detached (truncated backprop at batch boundaries), never reset
//! within a run, as Keras's `stateful=True` does. The loss is the batch mean
//! of softmax cross-entropy from logits, or of squared error.

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::adam::Adam;
use super::batch_step::BatchStep;
use super::candle_batch::CandleVars;
use super::checkpoint::{Best, Checkpoint, TrainedState};
use super::data::{Dataset, Targets};
use crate::kernels::Kernel;
use crate::model::fused::{FusedNet, States};
use crate::model::network::time_major;
use crate::model::Weights;
use crate::state::StateValue;
use crate::tensors::Tensor;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordEvery {
    /// Only the final state
    End,
    /// The state at the end of every epoch
    Epoch,
    /// The state after every batch
    Batch,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    pub batch_size: usize,
    pub epochs: usize,
    pub lr: f32,
    pub seed: u64,
    pub stateful: bool,
    pub shuffle: bool,
    pub record: RecordEvery,
    /// The kernel that computes every batch; records written before the
    /// choice existed name none and were trained with candle.
    #[serde(default = "Kernel::legacy")]
    pub kernel: Kernel,
    /// Share of the samples held out, from the end, for a validation loss
    /// after every epoch (Keras's `validation_split`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_split: Option<f32>,
    /// The last this many samples are held out instead (they came from a
    /// validation file, appended to the training data; Keras's
    /// `validation_data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_samples: Option<usize>,
    /// Stop once the validation loss has not improved for this many epochs
    /// (Keras's `EarlyStopping(patience=N)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience: Option<usize>,
    /// Keep the epoch with the lowest validation loss as well as the last
    /// (Keras's `ModelCheckpoint(save_best_only=True)`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_best: bool,
    /// Learning rates set when a run was resumed (`--resume RUN --lr`):
    /// the plan's `lr` until the first, each from its batch on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lr_changes: Vec<LrChange>,
}

/// A learning rate from a batch on (counted over all epochs, from 0).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LrChange {
    pub at_batch: usize,
    pub lr: f32,
}

impl TrainConfig {
    /// Whether samples are held out for a validation loss.
    pub fn validates(&self) -> bool {
        self.validation_split.is_some() || self.validation_samples.is_some()
    }

    /// The learning rate of batch `done` (counted over all epochs).
    pub fn lr_at(&self, done: usize) -> f32 {
        self.lr_changes
            .iter()
            .rev()
            .find(|c| c.at_batch <= done)
            .map_or(self.lr, |c| c.lr)
    }

    /// How many of `n` samples train (the rest validate), as Keras splits:
    /// the first `ceil(n * (1 - split))`.
    pub fn training_samples(&self, n: usize) -> usize {
        match (self.validation_split, self.validation_samples) {
            (Some(split), _) => ((n as f64 * (1.0 - split as f64)).ceil() as usize).min(n),
            (None, Some(held_out)) => n.saturating_sub(held_out),
            (None, None) => n,
        }
    }

    /// The most of `n` samples (the first ones) whose training part fills
    /// whole batches: what `--drop-remainder` keeps.
    pub fn full_batches_within(&self, n: usize) -> usize {
        let b = self.batch_size.max(1);
        (0..=n)
            .rev()
            .find(|&m| self.training_samples(m).is_multiple_of(b))
            .unwrap_or(0)
    }

    /// Batches in one epoch over `n` samples.
    pub fn batches_per_epoch(&self, n: usize) -> usize {
        self.training_samples(n).div_ceil(self.batch_size.max(1))
    }
}

#[derive(Debug, Clone)]
pub struct TrainReport {
    pub weights: Weights,
    /// Mean batch loss of each epoch.
    pub losses: Vec<f32>,
    /// Every batch's loss, in order.
    pub batch_losses: Vec<f32>,
    /// Share of correct classes in the last epoch (classification only).
    pub accuracy: Option<f32>,
    pub states: Vec<TrainedState>,
    pub final_state: StateValue,
    /// Validation loss after each epoch (with a validation split).
    pub val_losses: Vec<f32>,
    /// The epoch (from 1) after which early stopping ended the run.
    pub stopped_early: Option<usize>,
    /// With `keep_best`: the report a run of as many epochs as the best one
    /// would have made (the same bits: its batches are this run's first).
    pub best: Option<Box<TrainReport>>,
}

/// Where training is, for a progress bar.
pub struct Progress {
    pub epoch: usize,
    pub epochs: usize,
    pub batch: usize,
    pub batches: usize,
    pub loss: f32,
}

fn flat(w: &Weights) -> Vec<(Vec<usize>, Vec<f32>)> {
    let mut out = Vec::new();
    for l in &w.layers {
        for t in l.params() {
            out.push((t.shape.clone(), t.data.clone()));
        }
    }
    out.push((w.head_w.shape.clone(), w.head_w.data.clone()));
    out.push((w.head_b.shape.clone(), w.head_b.data.clone()));
    out
}

fn unflat(template: &Weights, params: &[Vec<f32>]) -> Weights {
    let mut w = template.clone();
    let mut it = params.iter();
    for l in &mut w.layers {
        for t in l.params_mut() {
            t.data = it.next().cloned().unwrap_or_default();
        }
    }
    w.head_w.data = it.next().cloned().unwrap_or_default();
    w.head_b.data = it.next().cloned().unwrap_or_default();
    w
}

fn zero_states(w: &Weights, batch: usize) -> States {
    let per_layer = w.config.cell.tensors().len();
    w.config
        .units
        .iter()
        .map(|&u| vec![vec![0f32; batch * u]; per_layer])
        .collect()
}

fn state_value(w: &Weights, states: &States) -> StateValue {
    let batch = states
        .first()
        .and_then(|s| s.first())
        .map_or(0, |h| h.len() / w.config.units[0].max(1));
    StateValue::from_layers(&w.config.layout(), batch, states)
}

fn gather(x: &Tensor, picks: &[usize]) -> Tensor {
    let per = x.shape[1] * x.shape[2];
    let mut data = Vec::with_capacity(picks.len() * per);
    for &i in picks {
        data.extend_from_slice(&x.data[i * per..(i + 1) * per]);
    }
    Tensor::new(vec![picks.len(), x.shape[1], x.shape[2]], data)
}

/// Refuses batch settings training cannot run.
fn check_batching(cfg: &TrainConfig, n: usize) -> Result<()> {
    let b = cfg.batch_size;
    if b == 0 || cfg.epochs == 0 {
        bail!("--batch-size and --epochs must be at least 1");
    }
    if b > n {
        bail!("--batch-size {b} is larger than the {n} training samples; use a batch size of at most {n}");
    }
    if cfg.stateful && !n.is_multiple_of(b) {
        let fits: Vec<String> = (1..=n.min(256))
            .filter(|d| n.is_multiple_of(*d))
            .map(|d| d.to_string())
            .collect();
        bail!("stateful training needs full batches: {n} samples do not split into batches of {b}; pass --drop-remainder to leave out the last {} sample(s) (Python: pass x[:{}] and y[:{}]), pick a batch size that divides {n} ({}), or --no-stateful (Python: stateful=False)", n % b, n - n % b, n - n % b, fits.join(", "));
    }
    Ok(())
}

/// How many of the batch's target rows the model classified right (0 for
/// regression).
fn correct_classes(data: &Dataset, picks: &[usize], predicted: &[usize]) -> usize {
    let wanted: Vec<usize> = match &data.targets {
        Targets::Classes { labels, .. } => {
            let per = data.targets_per_sample();
            picks
                .iter()
                .flat_map(|&i| labels[i * per..(i + 1) * per].iter().copied())
                .collect()
        }
        Targets::Values(_) => Vec::new(),
    };
    wanted.iter().zip(predicted).filter(|(l, p)| l == p).count()
}

/// Where the loop calls its boundary hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// After a batch that did not end its epoch.
    Batch,
    /// After an epoch's last batch and its accounting.
    EpochEnd,
}

/// What the boundary hook wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// How a run ended: all epochs done, or stopped by its hook at a
/// checkpoint it can be continued from.
pub enum Outcome {
    Finished(Box<TrainReport>),
    Stopped(Box<Checkpoint>),
}

/// Trains `init` on `data`; the same inputs give the same bits.
pub fn train(
    data: &Dataset,
    cfg: &TrainConfig,
    init: Weights,
    progress: &mut dyn FnMut(Progress),
) -> Result<TrainReport> {
    match train_from(data, cfg, &init, None, progress, &mut |_, _| {
        Ok(Flow::Continue)
    })? {
        Outcome::Finished(report) => Ok(*report),
        Outcome::Stopped(_) => bail!("training stopped before its last epoch"),
    }
}

/// The start of a run: `init`'s parameters, fresh moments, a zero state.
pub fn first_checkpoint(cfg: &TrainConfig, init: &Weights) -> Checkpoint {
    let params: Vec<Vec<f32>> = flat(init).into_iter().map(|(_, d)| d).collect();
    let sizes: Vec<usize> = params.iter().map(Vec::len).collect();
    Checkpoint {
        epoch: 0,
        batch: 0,
        params,
        adam: Adam::new(cfg.lr, &sizes),
        carried: zero_states(init, cfg.batch_size),
        losses: Vec::new(),
        batch_losses: Vec::new(),
        loss_sum: 0.0,
        correct: 0,
        accuracy: None,
        val_losses: Vec::new(),
        states: Vec::new(),
        best: None,
    }
}

/// The sizes of a model's parameters and the zero carried state: what a
/// checkpoint of its run must match.
pub fn checkpoint_shapes(cfg: &TrainConfig, init: &Weights) -> (Vec<usize>, States) {
    let sizes = flat(init).iter().map(|(_, d)| d.len()).collect();
    (sizes, zero_states(init, cfg.batch_size))
}

/// Trains from `from` (or the start), calling `at_boundary` after every
/// batch but the run's last; it may stop the run there. A run continued
/// from a checkpoint gives the bits of one never stopped: the shuffle is
/// replayed from the seed up to the checkpoint's epoch.
pub fn train_from(
    data: &Dataset,
    cfg: &TrainConfig,
    init: &Weights,
    from: Option<Checkpoint>,
    progress: &mut dyn FnMut(Progress),
    at_boundary: &mut dyn FnMut(&Checkpoint, Boundary) -> Result<Flow>,
) -> Result<Outcome> {
    // Training samples first; the held-out rest validates (Keras's split).
    let n = cfg.training_samples(data.len());
    let b = cfg.batch_size;
    check_settings(cfg, data.len())?;
    let batches = n.div_ceil(b);
    let mut cp = from.unwrap_or_else(|| first_checkpoint(cfg, init));
    let mut stopped_early = None;
    // candle's variables only for kernel `candle` (a build without it
    // refuses here, before any work).
    let legacy = match cfg.kernel {
        Kernel::Candle => {
            let vars = CandleVars::new(&flat(init))?;
            vars.set(&cp.params)?;
            Some(vars)
        }
        Kernel::Fused => None,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed_5eed);
    let mut order: Vec<usize> = (0..n).collect();
    for _ in 0..cp.epoch.min(cfg.epochs) {
        if cfg.shuffle {
            order.shuffle(&mut rng);
        }
    }
    while cp.epoch < cfg.epochs {
        let epoch = cp.epoch;
        // This epoch's order, also when continuing part way through it.
        if cfg.shuffle {
            order.shuffle(&mut rng);
        }
        while cp.batch < batches {
            let batch = cp.batch;
            let picks = &order[batch * b..((batch + 1) * b).min(n)];
            cp.adam.lr = cfg.lr_at(cp.batches_done(batches));
            let loss = run_batch(data, cfg, init, legacy.as_ref(), picks, &mut cp)?;
            if !loss.is_finite() {
                bail!(
                    "training diverged: the loss became {loss} at epoch {}, batch {}; lower --lr",
                    epoch + 1,
                    batch + 1
                );
            }
            if cfg.record == RecordEvery::Batch {
                cp.states.push(TrainedState {
                    epoch,
                    batch: Some(batch),
                    state: state_value(init, &cp.carried),
                });
            }
            progress(Progress {
                epoch,
                epochs: cfg.epochs,
                batch,
                batches,
                loss,
            });
            cp.batch += 1;
            if cp.batch < batches && at_boundary(&cp, Boundary::Batch)? == Flow::Stop {
                return Ok(Outcome::Stopped(Box::new(cp)));
            }
        }
        end_epoch(data, cfg, init, n, batches, &mut cp);
        if cfg.validates() {
            cp.val_losses
                .push(validation_loss(data, cfg, init, &cp.params, n));
            if cfg.keep_best && is_new_best(&cp.val_losses) {
                cp.best = Some(Best {
                    epoch: cp.epoch - 1,
                    params: cp.params.clone(),
                    carried: cp.carried.clone(),
                    accuracy: cp.accuracy,
                });
            }
            if patience_ran_out(cfg, &cp.val_losses) {
                stopped_early = Some(cp.epoch);
                break;
            }
        }
        if cp.epoch < cfg.epochs && at_boundary(&cp, Boundary::EpochEnd)? == Flow::Stop {
            return Ok(Outcome::Stopped(Box::new(cp)));
        }
    }
    let best = cp
        .best
        .as_ref()
        .map(|b| Box::new(best_report(init, &cp, b, batches)));
    Ok(Outcome::Finished(Box::new(TrainReport {
        weights: unflat(init, &cp.params),
        final_state: state_value(init, &cp.carried),
        losses: cp.losses,
        batch_losses: cp.batch_losses,
        accuracy: cp.accuracy,
        states: cp.states,
        val_losses: cp.val_losses,
        stopped_early,
        best,
    })))
}

/// Whether the newest validation loss is lower than every one before it
/// (strictly, as `EarlyStopping` counts an improvement).
fn is_new_best(val_losses: &[f32]) -> bool {
    match val_losses.split_last() {
        Some((last, before)) => before.iter().all(|v| last < v),
        None => false,
    }
}

/// What a run stopped after the best epoch would have reported: the best
/// epoch's weights and state, and everything recorded up to its end.
fn best_report(init: &Weights, cp: &Checkpoint, best: &Best, batches: usize) -> TrainReport {
    let epochs = best.epoch + 1;
    TrainReport {
        weights: unflat(init, &best.params),
        final_state: state_value(init, &best.carried),
        losses: cp.losses[..epochs.min(cp.losses.len())].to_vec(),
        batch_losses: cp.batch_losses[..(epochs * batches).min(cp.batch_losses.len())].to_vec(),
        accuracy: best.accuracy,
        states: cp
            .states
            .iter()
            .filter(|s| s.epoch < epochs)
            .cloned()
            .collect(),
        val_losses: cp.val_losses[..epochs.min(cp.val_losses.len())].to_vec(),
        stopped_early: None,
        best: None,
    }
}

/// One batch: its gradients, Adam's update, the carried state and the
/// epoch's sums. Returns the batch's loss.
fn run_batch(
    data: &Dataset,
    cfg: &TrainConfig,
    init: &Weights,
    legacy: Option<&CandleVars>,
    picks: &[usize],
    cp: &mut Checkpoint,
) -> Result<f32> {
    let x = gather(&data.x, picks);
    let start = if cfg.stateful {
        cp.carried.clone()
    } else {
        zero_states(init, picks.len())
    };
    let step = match legacy {
        Some(vars) => vars.batch(init, data, picks, &x, &start)?,
        None => fused_batch(&unflat(init, &cp.params), data, picks, &x, start),
    };
    cp.correct += correct_classes(data, picks, &step.predicted);
    cp.adam.update(&mut cp.params, &step.grads);
    if let Some(vars) = legacy {
        vars.set(&cp.params)?;
    }
    cp.loss_sum += step.loss as f64;
    cp.batch_losses.push(step.loss);
    // Truncated backprop: the next batch starts from these values with no
    // graph behind them.
    cp.carried = step.finals;
    Ok(step.loss)
}

/// An epoch's mean loss, accuracy and recorded state; the cursor moves to
/// the next epoch's first batch.
fn end_epoch(
    data: &Dataset,
    cfg: &TrainConfig,
    init: &Weights,
    n: usize,
    batches: usize,
    cp: &mut Checkpoint,
) {
    cp.losses.push((cp.loss_sum / batches as f64) as f32);
    if matches!(data.targets, Targets::Classes { .. }) {
        cp.accuracy = Some(cp.correct as f32 / (n * data.targets_per_sample()) as f32);
    }
    if cfg.record == RecordEvery::Epoch && cfg.stateful {
        cp.states.push(TrainedState {
            epoch: cp.epoch,
            batch: None,
            state: state_value(init, &cp.carried),
        });
    }
    cp.epoch += 1;
    cp.batch = 0;
    cp.loss_sum = 0.0;
    cp.correct = 0;
}

/// Refuses settings training cannot run on `n` samples.
pub fn check_settings(cfg: &TrainConfig, n: usize) -> Result<()> {
    check_validation(cfg, n)?;
    check_batching(cfg, cfg.training_samples(n))
}

/// Refuses a validation split that leaves no sample on either side, and
/// patience without a validation loss to watch.
fn check_validation(cfg: &TrainConfig, n: usize) -> Result<()> {
    if let Some(split) = cfg.validation_split {
        let kept = cfg.training_samples(n);
        if !(split > 0.0 && split < 1.0) || kept == 0 || kept == n {
            bail!("a validation split of {split} leaves {kept} of the {n} samples for training and {} for validation; give a share between 0 and 1 that leaves some of each", n - kept.min(n));
        }
    }
    if let Some(held_out) = cfg.validation_samples {
        if held_out == 0 || held_out >= n {
            bail!("the validation data's {held_out} sample(s) leave {} of the {n} for training; give validation data and training data of at least one sample each", n.saturating_sub(held_out));
        }
    }
    if cfg.keep_best && !cfg.validates() {
        bail!("keeping the best epoch chooses it by the validation loss: give a validation split with it");
    }
    if cfg.patience.is_some() && !cfg.validates() {
        bail!(
            "early stopping watches the validation loss: give a validation split with the patience"
        );
    }
    Ok(())
}

/// The mean loss over the held-out samples (from `from` on), each batch
/// run from the zero state, in order, with the current parameters.
/// Training's carried state is not touched, so validating changes no
/// training number.
fn validation_loss(
    data: &Dataset,
    cfg: &TrainConfig,
    init: &Weights,
    params: &[Vec<f32>],
    from: usize,
) -> f32 {
    let weights = unflat(init, params);
    let held_out: Vec<usize> = (from..data.len()).collect();
    let (mut sum, mut rows) = (0f64, 0usize);
    for picks in held_out.chunks(cfg.batch_size.max(1)) {
        let x = gather(&data.x, picks);
        let step = fused_batch(&weights, data, picks, &x, zero_states(init, picks.len()));
        let r = picks.len() * data.targets_per_sample();
        sum += step.loss as f64 * r as f64;
        rows += r;
    }
    (sum / rows.max(1) as f64) as f32
}

/// Whether the validation loss has gone `patience` epochs without a new
/// (strictly lower) best, as Keras's `EarlyStopping` counts.
fn patience_ran_out(cfg: &TrainConfig, val_losses: &[f32]) -> bool {
    let Some(patience) = cfg.patience else {
        return false;
    };
    let mut best = 0;
    for (i, v) in val_losses.iter().enumerate() {
        if *v < val_losses[best] {
            best = i;
        }
    }
    val_losses.len() - 1 - best >= patience
}

/// The fused path (kernel `fused-1`): the fused forward with a tape, the
/// loss and its gradient by hand, and backprop through time by hand.
fn fused_batch(
    weights: &Weights,
    data: &Dataset,
    picks: &[usize],
    x: &Tensor,
    mut states: States,
) -> BatchStep {
    let net = FusedNet::new(weights);
    let (batch, steps) = (picks.len(), x.shape[1]);
    let (logits, top, tapes) = net.forward_taped(&time_major(x), steps, batch, &mut states);
    let per = data.targets_per_sample();
    let out = data.outputs();
    let rows = batch * per;
    // Logit row r is (step t, slot b) time-major for per-step outputs, else
    // slot b: the target row of sample picks[b] at step t.
    let target_row = |r: usize| {
        let (t, b) = if per > 1 {
            (r / batch, r % batch)
        } else {
            (0, r)
        };
        picks[b] * per + t
    };
    let mut d_logits = vec![0f32; logits.len()];
    let mut loss = 0f64;
    let mut predicted = Vec::new();
    match &data.targets {
        Targets::Classes { labels, .. } => {
            let mut by_row = vec![0usize; rows];
            for (r, (l, d)) in logits
                .chunks_exact(out)
                .zip(d_logits.chunks_exact_mut(out))
                .enumerate()
            {
                let label = labels[target_row(r)];
                let max = l.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
                let sum: f64 = l.iter().map(|&v| (v as f64 - max).exp()).sum();
                loss += max + sum.ln() - l[label] as f64;
                for (j, (dv, &v)) in d.iter_mut().zip(l).enumerate() {
                    let p = (v as f64 - max).exp() / sum;
                    let onehot = if j == label { 1.0 } else { 0.0 };
                    *dv = ((p - onehot) / rows as f64) as f32;
                }
                // Sample-major order, as the labels are.
                let (t, b) = if per > 1 {
                    (r / batch, r % batch)
                } else {
                    (0, r)
                };
                by_row[b * per + t] = argmax(l);
            }
            predicted = by_row;
            loss /= rows as f64;
        }
        Targets::Values(y) => {
            let n = (rows * out) as f64;
            for (r, (l, d)) in logits
                .chunks_exact(out)
                .zip(d_logits.chunks_exact_mut(out))
                .enumerate()
            {
                let want = &y.data[target_row(r) * out..(target_row(r) + 1) * out];
                for ((dv, &v), &w) in d.iter_mut().zip(l).zip(want) {
                    let e = v as f64 - w as f64;
                    loss += e * e;
                    *dv = (2.0 * e / n) as f32;
                }
            }
            loss /= n;
        }
    }
    let grads = net.backward(weights, &d_logits, &top, tapes, steps, batch);
    BatchStep {
        loss: loss as f32,
        grads,
        finals: states,
        predicted,
    }
}

/// The first index of the largest value.
fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

// The fused kernels' gradients are checked against candle's autograd.
#[cfg(all(test, feature = "candle"))]
mod tests {
    use super::*;
    use crate::kernels::sample_values as noise;
    use crate::model::{Head, ModelConfig, Outputs};
    use crate::state::Cell;
    use crate::train::keras_init;

    /// Both kernels on one batch: losses, gradients and final states agree.
    fn compare(cell: Cell, units: Vec<usize>, head: Head, outputs: Outputs, seed: u32) {
        compare_batch(cell, units, head, outputs, seed, 5);
    }

    /// [`compare`] on a batch of `n`; returns the fused kernel's step.
    fn compare_batch(
        cell: Cell,
        units: Vec<usize>,
        head: Head,
        outputs: Outputs,
        seed: u32,
        n: usize,
    ) -> BatchStep {
        let (steps, features, out) = (4, 3, 6);
        let per = if outputs == Outputs::Sequence {
            steps
        } else {
            1
        };
        let config = ModelConfig {
            cell,
            input_size: features,
            units,
            output_size: out,
            head,
            outputs,
            batch_size: n,
        };
        let mut weights = keras_init(&config, seed as u64);
        for l in &mut weights.layers {
            // Non-zero biases exercise every path.
            l.bias.data = noise(l.bias.data.len(), seed + 9);
            if let Some(b) = &mut l.bias_hh {
                b.data = noise(b.data.len(), seed + 10);
            }
        }
        let x = Tensor::new(vec![n, steps, features], noise(n * steps * features, seed));
        let targets = match head {
            Head::Softmax => Targets::Classes {
                labels: (0..n * per)
                    .map(|i| (i * 7 + seed as usize) % out)
                    .collect(),
                classes: out,
            },
            Head::Linear => {
                let shape = if per > 1 {
                    vec![n, steps, out]
                } else {
                    vec![n, out]
                };
                Targets::Values(Tensor::new(shape, noise(n * per * out, seed + 1)))
            }
        };
        let data = Dataset {
            x: x.clone(),
            targets,
            per_step: per > 1,
        };
        // The batch's samples out of order.
        let picks: Vec<usize> = (0..n).map(|i| (i * 3 + 3) % n).collect();
        let x = gather(&data.x, &picks);
        let mut start = zero_states(&weights, n);
        for (k, layer) in start.iter_mut().enumerate() {
            for (t, s) in layer.iter_mut().enumerate() {
                *s = noise(s.len(), seed + 20 + (k * 2 + t) as u32);
            }
        }
        let vars = CandleVars::new(&flat(&weights)).unwrap();
        let candle = vars.batch(&weights, &data, &picks, &x, &start).unwrap();
        let fused = fused_batch(&weights, &data, &picks, &x, start.clone());
        let what = format!("{cell:?} {:?} {head:?} {outputs:?}", config.units);
        assert!(
            (candle.loss - fused.loss).abs() <= 1e-6 * candle.loss.abs().max(1.0),
            "{what}: loss"
        );
        assert_eq!(candle.predicted, fused.predicted, "{what}");
        for (p, (c, f)) in candle.grads.iter().zip(&fused.grads).enumerate() {
            let scale = c.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
            for (a, b) in c.iter().zip(f) {
                assert!(
                    (a - b).abs() <= 1e-5 * scale,
                    "{what}: parameter {p}: {a} vs {b} (scale {scale})"
                );
            }
        }
        for (c, f) in candle
            .finals
            .iter()
            .flatten()
            .zip(fused.finals.iter().flatten())
        {
            for (a, b) in c.iter().zip(f) {
                assert!((a - b).abs() <= 1e-6, "{what}: final state {a} vs {b}");
            }
        }
        // The same batch on one thread: the same bits.
        let alone = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| fused_batch(&weights, &data, &picks, &x, start));
        assert_eq!(alone.loss.to_bits(), fused.loss.to_bits(), "{what}");
        for (p, (a, b)) in alone.grads.iter().zip(&fused.grads).enumerate() {
            let same = a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{what}: parameter {p} differs on one thread");
        }
        fused
    }

    /// Layers wide enough that two threads split a step: its rows and the
    /// weight gradients' columns (uneven shares for the GRU), or, with one
    /// row, its products' columns. Each matches candle and gives the bits
    /// of one thread.
    #[test]
    fn fused_gradients_are_the_same_bits_however_the_threads_split_a_step() {
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for (seed, (cell, units, n)) in [
            (Cell::Lstm, vec![96, 80], 8),
            (Cell::Gru, vec![112], 8),
            (Cell::Lstm, vec![512], 1),
        ]
        .into_iter()
        .enumerate()
        {
            two.install(|| {
                compare_batch(
                    cell,
                    units,
                    Head::Linear,
                    Outputs::Sequence,
                    40 + seed as u32,
                    n,
                )
            });
        }
    }

    #[test]
    fn fused_gradients_match_candles_autograd() {
        let mut seed = 1;
        for cell in [Cell::Lstm, Cell::Gru] {
            for units in [vec![7], vec![9, 5]] {
                for head in [Head::Softmax, Head::Linear] {
                    for outputs in [Outputs::Last, Outputs::Sequence] {
                        compare(cell, units.clone(), head, outputs, seed);
                        seed += 1;
                    }
                }
            }
        }
    }
}
