//! The training loop. Stateful training carries `(h, c)` from batch to
//! batch, detached (truncated backprop at batch boundaries), never reset
//! within a run, as Keras's `stateful=True` does. The loss is the batch mean
//! of softmax cross-entropy from logits, or of squared error.

use anyhow::{bail, Result};
use candle_core::{Device, Tensor as CTensor, Var, D};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::adam::Adam;
use super::data::{Dataset, Targets};
use crate::model::network::{state_value, step_tensors, LayerParams, LayerStates};
use crate::model::{Network, Weights};
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
}

/// A state training left, with where it was left.
#[derive(Debug, Clone)]
pub struct TrainedState {
    pub epoch: usize,
    pub batch: Option<usize>,
    pub state: StateValue,
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

/// The network whose parameters are `vars`, in [`flat`]'s order.
fn network(template: &Weights, vars: &[Var]) -> Network {
    let mut next = vars.iter().map(|v| v.as_tensor().clone());
    let mut take = || next.next().expect("one variable per parameter");
    let layers = template
        .layers
        .iter()
        .map(|l| LayerParams {
            w_ih: take(),
            w_hh: take(),
            bias: take(),
            bias_hh: l.bias_hh.as_ref().map(|_| take()),
        })
        .collect();
    let n = vars.len();
    let t = |i: usize| vars[i].as_tensor().clone();
    Network {
        config: template.config.clone(),
        row_exact: false,
        layers,
        head_w: t(n - 2),
        head_b: t(n - 1),
    }
}

fn zero_states(w: &Weights, batch: usize) -> Result<LayerStates> {
    let per_layer = w.config.cell.tensors().len();
    w.config
        .units
        .iter()
        .map(|&u| {
            (0..per_layer)
                .map(|_| {
                    Ok(CTensor::zeros(
                        (batch, u),
                        candle_core::DType::F32,
                        &Device::Cpu,
                    )?)
                })
                .collect()
        })
        .collect()
}

fn gather(x: &Tensor, picks: &[usize]) -> Tensor {
    let per = x.shape[1] * x.shape[2];
    let mut data = Vec::with_capacity(picks.len() * per);
    for &i in picks {
        data.extend_from_slice(&x.data[i * per..(i + 1) * per]);
    }
    Tensor::new(vec![picks.len(), x.shape[1], x.shape[2]], data)
}

/// Trains `init` on `data`; the same inputs give the same bits.
pub fn train(
    data: &Dataset,
    cfg: &TrainConfig,
    init: Weights,
    progress: &mut dyn FnMut(Progress),
) -> Result<TrainReport> {
    let n = data.len();
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
        bail!("stateful training needs full batches: {n} samples do not split into batches of {b}; pass --drop-remainder to leave out the last {} sample(s), pick a batch size that divides {n} ({}), or --no-stateful", n % b, fits.join(", "));
    }
    let batches = n.div_ceil(b);
    let shapes = flat(&init);
    let sizes: Vec<usize> = shapes.iter().map(|(_, d)| d.len()).collect();
    let mut params: Vec<Vec<f32>> = shapes.iter().map(|(_, d)| d.clone()).collect();
    let vars = shapes
        .iter()
        .map(|(s, d)| Var::from_vec(d.clone(), s.as_slice(), &Device::Cpu))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let mut adam = Adam::new(cfg.lr, &sizes);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed_5eed);
    let mut order: Vec<usize> = (0..n).collect();
    let mut carried = zero_states(&init, b)?;
    let mut losses = Vec::new();
    let mut batch_losses = Vec::new();
    let mut states = Vec::new();
    let mut accuracy = None;
    for epoch in 0..cfg.epochs {
        if cfg.shuffle {
            order.shuffle(&mut rng);
        }
        let (mut loss_sum, mut correct) = (0f64, 0usize);
        for batch in 0..batches {
            let picks = &order[batch * b..((batch + 1) * b).min(n)];
            let x = gather(&data.x, picks);
            let start = if cfg.stateful {
                carried.clone()
            } else {
                zero_states(&init, picks.len())?
            };
            let net = network(&init, &vars);
            let (logits, finals) = net.forward(&step_tensors(&x)?, &start)?;
            // One row per target: a sample's last step, or each of its
            // steps for per-step outputs (the loss is their mean, as Keras's).
            let per = data.targets_per_sample();
            let rows = picks.len() * per;
            let logits = logits.reshape((rows, data.outputs()))?;
            let loss = match &data.targets {
                Targets::Classes { labels, classes } => {
                    let wanted: Vec<usize> = picks
                        .iter()
                        .flat_map(|&i| labels[i * per..(i + 1) * per].iter().copied())
                        .collect();
                    let mut onehot = vec![0f32; rows * classes];
                    for (r, &label) in wanted.iter().enumerate() {
                        onehot[r * classes + label] = 1.0;
                    }
                    let onehot = CTensor::from_vec(onehot, (rows, *classes), &Device::Cpu)?;
                    let predicted: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
                    correct += wanted
                        .iter()
                        .zip(&predicted)
                        .filter(|(&l, &p)| l == p as usize)
                        .count();
                    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
                    (log_probs.mul(&onehot)?.sum_all()?.neg()? / rows as f64)?
                }
                Targets::Values(y) => {
                    let y = gather_rows(y, picks);
                    let y = CTensor::from_vec(y, (rows, data.outputs()), &Device::Cpu)?;
                    logits.sub(&y)?.sqr()?.mean_all()?
                }
            };
            let grads = loss.backward()?;
            let grad_values = vars
                .iter()
                .zip(&sizes)
                .map(|(v, &size)| match grads.get(v.as_tensor()) {
                    Some(g) => Ok(g.flatten_all()?.to_vec1::<f32>()?),
                    None => Ok(vec![0.0; size]),
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            adam.update(&mut params, &grad_values);
            for (var, (p, (shape, _))) in vars.iter().zip(params.iter().zip(&shapes)) {
                var.set(&CTensor::from_vec(
                    p.clone(),
                    shape.as_slice(),
                    &Device::Cpu,
                )?)?;
            }
            let loss_value = loss.to_scalar::<f32>()?;
            if !loss_value.is_finite() {
                bail!("training diverged: the loss became {loss_value} at epoch {}, batch {}; lower --lr", epoch + 1, batch + 1);
            }
            loss_sum += loss_value as f64;
            batch_losses.push(loss_value);
            // Truncated backprop: the next batch starts from these values
            // with no graph behind them.
            carried = finals
                .iter()
                .map(|layer| layer.iter().map(|t| t.detach()).collect())
                .collect();
            if cfg.record == RecordEvery::Batch {
                states.push(TrainedState {
                    epoch,
                    batch: Some(batch),
                    state: state_value(&init.config, &carried)?,
                });
            }
            progress(Progress {
                epoch,
                epochs: cfg.epochs,
                batch,
                batches,
                loss: loss_value,
            });
        }
        losses.push((loss_sum / batches as f64) as f32);
        if matches!(data.targets, Targets::Classes { .. }) {
            accuracy = Some(correct as f32 / (n * data.targets_per_sample()) as f32);
        }
        if cfg.record == RecordEvery::Epoch && cfg.stateful {
            states.push(TrainedState {
                epoch,
                batch: None,
                state: state_value(&init.config, &carried)?,
            });
        }
    }
    let final_state = state_value(&init.config, &carried)?;
    Ok(TrainReport {
        weights: unflat(&init, &params),
        losses,
        batch_losses,
        accuracy,
        states,
        final_state,
    })
}

fn gather_rows(y: &Tensor, picks: &[usize]) -> Vec<f32> {
    let w: usize = y.shape[1..].iter().product();
    picks
        .iter()
        .flat_map(|&i| y.data[i * w..(i + 1) * w].iter().copied())
        .collect()
}
