//! The stateful forward pass on candle tensors. State is a value passed in
//! and returned, never kept inside the network: that is what makes
//! snapshots, restores and replays exact.
//!
//! Sequences travel as one tensor per time step rather than one tensor
//! sliced per step: slicing makes candle's backward pass quadratic in the
//! sequence length.

use candle_core::{Device, Tensor as CTensor};

use super::config::{Head, ModelConfig};
use super::weights::Weights;
use crate::state::StateValue;
use crate::tensors::Tensor;

pub fn to_candle(t: &Tensor) -> candle_core::Result<CTensor> {
    CTensor::from_vec(t.data.clone(), t.shape.as_slice(), &Device::Cpu)
}

/// One layer's parameters as candle tensors (variables when training).
#[derive(Clone)]
pub struct LayerParams {
    /// `[4H, in]`.
    pub w_ih: CTensor,
    /// `[4H, H]`.
    pub w_hh: CTensor,
    /// `[4H]`.
    pub bias: CTensor,
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

/// Per layer `(h, c)`, each `[batch, units]`.
pub type LayerStates = Vec<(CTensor, CTensor)>;

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

    /// One LSTM step, Keras's order of operations:
    /// `z = x·W + h·U + b`; gates i, f, g, o; `c' = f*c + i*g`; `h' = o*tanh(c')`.
    fn step(
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
    /// given states; returns the head's logits `[batch, out]` at the last
    /// step and each layer's final `(h, c)`.
    pub fn forward(
        &self,
        steps: &[CTensor],
        states: &LayerStates,
    ) -> candle_core::Result<(CTensor, LayerStates)> {
        let mut seq: Vec<CTensor> = steps.to_vec();
        let mut finals = Vec::with_capacity(self.layers.len());
        for (params, (h0, c0)) in self.layers.iter().zip(states) {
            let (mut h, mut c) = (h0.clone(), c0.clone());
            let mut out = Vec::with_capacity(seq.len());
            for x in &seq {
                (h, c) = self.step(params, x, &h, &c)?;
                out.push(h.clone());
            }
            finals.push((h, c));
            seq = out;
        }
        let last = seq
            .last()
            .ok_or_else(|| candle_core::Error::Msg("empty sequence".into()))?;
        let logits = self
            .matmul(last, &self.head_w)?
            .broadcast_add(&self.head_b)?;
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
            let h = CTensor::from_vec(state.layer_tensor(k, 0), (batch, units), &Device::Cpu)?;
            let c = CTensor::from_vec(state.layer_tensor(k, 1), (batch, units), &Device::Cpu)?;
            Ok((h, c))
        })
        .collect()
}

pub fn state_value(config: &ModelConfig, states: &LayerStates) -> candle_core::Result<StateValue> {
    let batch = states.first().map(|(h, _)| h.dims()[0]).unwrap_or(0);
    let tensors = states
        .iter()
        .map(|(h, c)| {
            Ok(vec![
                h.flatten_all()?.to_vec1::<f32>()?,
                c.flatten_all()?.to_vec1::<f32>()?,
            ])
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(StateValue::from_layers(&config.layout(), batch, &tensors))
}

/// What one stateful prediction gives.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// `[batch, out]` row-major.
    pub logits: Vec<f32>,
    /// `[batch, out]`: softmax probabilities, or the logits for a linear head.
    pub outputs: Vec<f32>,
    pub state: StateValue,
}

/// Runs `x` `[batch, steps, features]` from `state`. The caller checks
/// shapes against the model and the state and explains a mismatch.
pub fn predict(
    weights: &Weights,
    x: &Tensor,
    state: &StateValue,
) -> candle_core::Result<Prediction> {
    let net = Network::from_weights(weights)?;
    let (logits, finals) = net.forward(&step_tensors(x)?, &state_tensors(state)?)?;
    let outputs = match weights.config.head {
        Head::Softmax => candle_nn::ops::softmax_last_dim(&logits)?,
        Head::Linear => logits.clone(),
    };
    Ok(Prediction {
        logits: logits.flatten_all()?.to_vec1()?,
        outputs: outputs.flatten_all()?.to_vec1()?,
        state: state_value(&weights.config, &finals)?,
    })
}
