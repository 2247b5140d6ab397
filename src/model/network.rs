//! The stateful forward pass. State is a value passed in and returned,
//! never kept inside the network: that is what makes snapshots, restores and
//! replays exact.

use anyhow::{bail, Result};

use super::config::Outputs;
pub use super::prediction::Prediction;
use super::weights::Weights;
use crate::kernels::Kernel;
use crate::model::fused::{FusedNet, States};
use crate::state::StateValue;
use crate::tensors::Tensor;

/// Runs `x` `[batch, steps, features]` from `state` with the default
/// kernel. The caller checks shapes against the model and the state and
/// explains a mismatch.
pub fn predict(weights: &Weights, x: &Tensor, state: &StateValue) -> Result<Prediction> {
    predict_with(Kernel::default(), weights, x, state)
}

/// [`predict`] with a chosen kernel (a replay uses the recorded one).
pub fn predict_with(
    kernel: Kernel,
    weights: &Weights,
    x: &Tensor,
    state: &StateValue,
) -> Result<Prediction> {
    if x.shape.len() != 3 || x.shape[1] == 0 {
        bail!("the input needs at least one time step");
    }
    match kernel {
        Kernel::Candle => super::candle_net::predict(weights, x, state),
        Kernel::Fused => Ok(predict_fused(&FusedNet::new(weights), x, state)),
    }
}

/// `x` `[batch, steps, features]` as time-major `[steps, batch, features]`.
pub fn time_major(x: &Tensor) -> Vec<f32> {
    let (batch, steps, features) = (x.shape[0], x.shape[1], x.shape[2]);
    let mut out = Vec::with_capacity(x.data.len());
    for t in 0..steps {
        for b in 0..batch {
            let start = (b * steps + t) * features;
            out.extend_from_slice(&x.data[start..start + features]);
        }
    }
    out
}

/// Time-major `[steps, batch, width]` rows as batch-major `[batch, steps, width]`.
pub fn batch_major(rows: &[f32], steps: usize, batch: usize, width: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len());
    for b in 0..batch {
        for t in 0..steps {
            let start = (t * batch + b) * width;
            out.extend_from_slice(&rows[start..start + width]);
        }
    }
    out
}

/// A state as the fused kernels' per-layer tensors.
pub fn fused_states(state: &StateValue) -> States {
    (0..state.layout.units.len())
        .map(|k| {
            (0..state.layout.cell.tensors().len())
                .map(|t| state.layer_tensor(k, t))
                .collect()
        })
        .collect()
}

/// The fused kernels' prediction (weights packed once by the caller).
pub fn predict_fused(net: &FusedNet, x: &Tensor, state: &StateValue) -> Prediction {
    let (batch, steps) = (x.shape[0], x.shape[1]);
    let out = net.config.output_size;
    let mut states = fused_states(state);
    let logits = net.forward(&x.data, steps, batch, &mut states);
    let (logits, shape) = match net.config.outputs {
        Outputs::Last => (logits, vec![batch, out]),
        Outputs::Sequence => (
            batch_major(&logits, steps, batch, out),
            vec![batch, steps, out],
        ),
    };
    Prediction {
        outputs: crate::model::fused::outputs(net.config.head, &logits, out),
        logits,
        shape,
        state: StateValue::from_layers(&state.layout, batch, &states),
    }
}
