//! Kernel `candle` in a build without the `candle` feature: a training run
//! asking for it is refused with the way to a build that has it.

use std::convert::Infallible;

use anyhow::Result;

use super::batch_step::BatchStep;
use super::data::Dataset;
use crate::model::fused::States;
use crate::model::Weights;
use crate::tensors::Tensor;

/// Never made: [`CandleVars::new`] refuses.
pub struct CandleVars {
    never: Infallible,
}

impl CandleVars {
    pub fn new(_: &[(Vec<usize>, Vec<f32>)]) -> Result<CandleVars> {
        Err(crate::kernels::candle_not_built())
    }

    pub fn set(&self, _: &[Vec<f32>]) -> Result<()> {
        match self.never {}
    }

    pub fn batch(
        &self,
        _: &Weights,
        _: &Dataset,
        _: &[usize],
        _: &Tensor,
        _: &States,
    ) -> Result<BatchStep> {
        match self.never {}
    }
}
