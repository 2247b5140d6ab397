//! The legacy forward pass on candle tensors (kernel `candle`): what every
//! event recorded before `fused-1` was computed with, kept so those events
//! still replay bit for bit. Built with the `candle` feature (on by default).
//!
//! Sequences travel as one tensor per time step rather than one tensor
//! sliced per step: slicing makes candle's backward pass quadratic in the
//! sequence length.

use candle_core::{Device, Tensor as CTensor};

use super::config::{Head, ModelConfig, Outputs};
use super::prediction::Prediction;
use super::weights::Weights;
use crate::state::StateValue;
use crate::tensors::Tensor;

pub fn to_candle(t: &Tensor) -> candle_core::Result<CTensor> {
    CTensor::from_vec(t.data.clone(), t.shape.as_slice(), &Device::Cpu)
}

/// One layer's parameters as candle tensors (variables when training).
#[derive(Clone)]
pub struct LayerParams {
    /// `[gH, in]` (g = 4 for an LSTM, 3 for a GRU).
    pub w_ih: CTensor,
    /// `[gH, H]`.
    pub w_hh: CTensor,
    /// `[gH]`.
    pub bias: CTensor,
    /// `[3H]`: a GRU's recurrent bias.
    pub bias_hh: Option<CTensor>,
}

#[derive(Clone)]
pub struct Network {
    pub config: ModelConfig,
    /// Multiply one batch row at a time, so a row's result never depends on
    /// the batch around it: candle's matmul rounds differently for other
    /// batch sizes (1 ULP seen), and a slot re-batched or burnt in alone
    /// must give the same bits as in its original batch. Inference sets
    /// this; training multiplies whole batches for speed.
    pub row_exact: bool,
    pub layers: Vec<LayerParams>,
    /// `[out, H_last]`.
    pub head_w: CTensor,
    /// `[out]`.
    pub head_b: CTensor,
}

/// Per layer its state tensors, each `[batch, units]`: `[h, c]` for an
/// LSTM, `[h]` for a GRU.
pub type LayerStates = Vec<Vec<CTensor>>;

impl Network {
    pub fn from_weights(w: &Weights) -> candle_core::Result<Network> {
        let layers = w
            .layers
            .iter()
            .map(|l| {
                Ok(LayerParams {
                    w_ih: to_candle(&l.w_ih)?,
                    w_hh: to_candle(&l.w_hh)?,
                    bias: to_candle(&l.bias)?,
                    bias_hh: l.bias_hh.as_ref().map(to_candle).transpose()?,
                })
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(Network {
            config: w.config.clone(),
            row_exact: true,
            layers,
            head_w: to_candle(&w.head_w)?,
            head_b: to_candle(&w.head_b)?,
        })
    }

    /// One step of the layer's cell from `state` (`[h, c]` or `[h]`).
    fn step(
        &self,
        p: &LayerParams,
        x: &CTensor,
        state: &[CTensor],
    ) -> candle_core::Result<Vec<CTensor>> {
        match (&p.bias_hh, state) {
            (None, [h, c]) => {
                let (h, c) = self.lstm_step(p, x, h, c)?;
                Ok(vec![h, c])
            }
            (Some(bias_hh), [h]) => Ok(vec![self.gru_step(p, bias_hh, x, h)?]),
            _ => Err(candle_core::Error::Msg(
                "state tensors do not fit the layer's cell".into(),
            )),
        }
    }

    /// One GRU step, PyTorch's formula (Keras's with `reset_after=True`):
    /// `r = σ(x·W_r + b_ir + h·U_r + b_hr)`, `z` likewise,
    /// `n = tanh(x·W_n + b_in + r ⊙ (h·U_n + b_hn))`, `h' = (1 − z) ⊙ n + z ⊙ h`.
    fn gru_step(
        &self,
        p: &LayerParams,
        bias_hh: &CTensor,
        x: &CTensor,
        h: &CTensor,
    ) -> candle_core::Result<CTensor> {
        let gi = self.matmul(x, &p.w_ih)?.broadcast_add(&p.bias)?;
        let gh = self.matmul(h, &p.w_hh)?.broadcast_add(bias_hh)?;
        let (i, r_h) = (gi.chunk(3, 1)?, gh.chunk(3, 1)?);
        let r = candle_nn::ops::sigmoid(&i[0].add(&r_h[0])?)?;
        let z = candle_nn::ops::sigmoid(&i[1].add(&r_h[1])?)?;
        let n = i[2].add(&r.mul(&r_h[2])?)?.tanh()?;
        // (1 - z) * n + z * h, written as n - z*n + z*h.
        n.sub(&z.mul(&n)?)?.add(&z.mul(h)?)
    }

    /// One LSTM step, Keras's order of operations:
    /// `z = x·W + h·U + b`; gates i, f, g, o; `c' = f*c + i*g`; `h' = o*tanh(c')`.
    fn lstm_step(
        &self,
        p: &LayerParams,
        x: &CTensor,
        h: &CTensor,
        c: &CTensor,
    ) -> candle_core::Result<(CTensor, CTensor)> {
        let z = self
            .matmul(x, &p.w_ih)?
            .add(&self.matmul(h, &p.w_hh)?)?
            .broadcast_add(&p.bias)?;
        let gates = z.chunk(4, 1)?;
        let i = candle_nn::ops::sigmoid(&gates[0])?;
        let f = candle_nn::ops::sigmoid(&gates[1])?;
        let g = gates[2].tanh()?;
        let o = candle_nn::ops::sigmoid(&gates[3])?;
        let c = f.mul(c)?.add(&i.mul(&g)?)?;
        let h = o.mul(&c.tanh()?)?;
        Ok((h, c))
    }

    /// `x · wᵀ` for `x` `[batch, in]` and `w` `[out, in]`.
    fn matmul(&self, x: &CTensor, w: &CTensor) -> candle_core::Result<CTensor> {
        let batch = x.dim(0)?;
        if !self.row_exact || batch == 1 {
            return x.matmul(&w.t()?);
        }
        let rows = (0..batch)
            .map(|r| x.narrow(0, r, 1)?.matmul(&w.t()?))
            .collect::<candle_core::Result<Vec<_>>>()?;
        CTensor::cat(&rows, 0)
    }

    /// Runs the steps (`[batch, in]` each) through every layer from the
    /// given states; returns the head's logits (`[batch, out]` at the last
    /// step, or `[batch, steps, out]` for per-step outputs) and each
    /// layer's final state.
    pub fn forward(
        &self,
        steps: &[CTensor],
        states: &LayerStates,
    ) -> candle_core::Result<(CTensor, LayerStates)> {
        let mut seq: Vec<CTensor> = steps.to_vec();
        let mut finals = Vec::with_capacity(self.layers.len());
        for (params, start) in self.layers.iter().zip(states) {
            let mut state = start.clone();
            let mut out = Vec::with_capacity(seq.len());
            for x in &seq {
                state = self.step(params, x, &state)?;
                out.push(state[0].clone());
            }
            finals.push(state);
            seq = out;
        }
        let head = |h: &CTensor| self.matmul(h, &self.head_w)?.broadcast_add(&self.head_b);
        let logits = match self.config.outputs {
            Outputs::Last => head(
                seq.last()
                    .ok_or_else(|| candle_core::Error::Msg("empty sequence".into()))?,
            )?,
            // The head at every step: `[batch, steps, out]`.
            Outputs::Sequence => CTensor::stack(
                &seq.iter()
                    .map(head)
                    .collect::<candle_core::Result<Vec<_>>>()?,
                1,
            )?,
        };
        Ok((logits, finals))
    }
}

/// Splits `x` `[batch, steps, features]` into one candle tensor per step.
pub fn step_tensors(x: &Tensor) -> candle_core::Result<Vec<CTensor>> {
    let (batch, steps, features) = (x.shape[0], x.shape[1], x.shape[2]);
    (0..steps)
        .map(|t| {
            let mut data = Vec::with_capacity(batch * features);
            for b in 0..batch {
                let start = (b * steps + t) * features;
                data.extend_from_slice(&x.data[start..start + features]);
            }
            CTensor::from_vec(data, (batch, features), &Device::Cpu)
        })
        .collect()
}

pub fn state_tensors(state: &StateValue) -> candle_core::Result<LayerStates> {
    let batch = state.batch();
    (0..state.layout.units.len())
        .map(|k| {
            let units = state.layout.units[k];
            (0..state.layout.cell.tensors().len())
                .map(|t| CTensor::from_vec(state.layer_tensor(k, t), (batch, units), &Device::Cpu))
                .collect()
        })
        .collect()
}

pub fn state_value(config: &ModelConfig, states: &LayerStates) -> candle_core::Result<StateValue> {
    let batch = states
        .first()
        .and_then(|s| s.first())
        .map(|h| h.dims()[0])
        .unwrap_or(0);
    let tensors = states
        .iter()
        .map(|layer| {
            layer
                .iter()
                .map(|t| t.flatten_all()?.to_vec1::<f32>())
                .collect::<candle_core::Result<Vec<_>>>()
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(StateValue::from_layers(&config.layout(), batch, &tensors))
}

/// Runs `x` from `state` on candle's ops, one batch row at a time.
pub fn predict(weights: &Weights, x: &Tensor, state: &StateValue) -> anyhow::Result<Prediction> {
    let net = Network::from_weights(weights)?;
    let (logits, finals) = net.forward(&step_tensors(x)?, &state_tensors(state)?)?;
    let outputs = match weights.config.head {
        Head::Softmax => candle_nn::ops::softmax_last_dim(&logits)?,
        Head::Linear => logits.clone(),
    };
    Ok(Prediction {
        shape: logits.dims().to_vec(),
        logits: logits.flatten_all()?.to_vec1()?,
        outputs: outputs.flatten_all()?.to_vec1()?,
        state: state_value(&weights.config, &finals)?,
    })
}
