//! Kernel `candle` in a build without the `candle` feature: events recorded
//! with it are refused with the way to a build that replays them.

use super::prediction::Prediction;
use super::weights::Weights;
use crate::state::StateValue;
use crate::tensors::Tensor;

pub fn predict(_: &Weights, _: &Tensor, _: &StateValue) -> anyhow::Result<Prediction> {
    Err(crate::kernels::candle_not_built())
}
