//! Training on candle's autograd (kernel `candle`): how every training run
//! recorded before `fused-1` was computed, kept so `audit --train` still
//! reproduces those runs bit for bit. Built with the `candle` feature (on by
//! default).

use anyhow::Result;
use candle_core::{Device, Tensor as CTensor, Var, D};

use super::batch_step::BatchStep;
use super::data::{Dataset, Targets};
use crate::model::candle_net::{step_tensors, LayerParams, LayerStates, Network};
use crate::model::fused::States;
use crate::model::Weights;
use crate::tensors::Tensor;

/// The parameters as candle variables, in the trainer's flat order.
pub struct CandleVars {
    vars: Vec<Var>,
}

impl CandleVars {
    /// Variables holding `params` (`(shape, values)` in flat order).
    pub fn new(params: &[(Vec<usize>, Vec<f32>)]) -> Result<CandleVars> {
        let vars = params
            .iter()
            .map(|(s, d)| Var::from_vec(d.clone(), s.as_slice(), &Device::Cpu))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(CandleVars { vars })
    }

    /// The variables set to the updated parameters.
    pub fn set(&self, params: &[Vec<f32>]) -> Result<()> {
        for (var, p) in self.vars.iter().zip(params) {
            let shape = var.as_tensor().dims().to_vec();
            var.set(&CTensor::from_vec(p.clone(), shape, &Device::Cpu)?)?;
        }
        Ok(())
    }

    /// The network whose parameters are the variables.
    fn network(&self, template: &Weights) -> Network {
        let vars = &self.vars;
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

    /// One batch on candle's autograd over the step ops.
    pub fn batch(
        &self,
        init: &Weights,
        data: &Dataset,
        picks: &[usize],
        x: &Tensor,
        start: &States,
    ) -> Result<BatchStep> {
        let start: LayerStates = start
            .iter()
            .zip(&init.config.units)
            .map(|(layer, &u)| {
                layer
                    .iter()
                    .map(|t| CTensor::from_vec(t.clone(), (picks.len(), u), &Device::Cpu))
                    .collect()
            })
            .collect::<candle_core::Result<_>>()?;
        let net = self.network(init);
        let (logits, finals) = net.forward(&step_tensors(x)?, &start)?;
        // One row per target: a sample's last step, or each of its steps for
        // per-step outputs (the loss is their mean, as Keras's).
        let per = data.targets_per_sample();
        let rows = picks.len() * per;
        let logits = logits.reshape((rows, data.outputs()))?;
        let mut predicted = Vec::new();
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
                let argmax: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
                predicted = argmax.into_iter().map(|p| p as usize).collect();
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
        let grads = self
            .vars
            .iter()
            .map(|v| match grads.get(v.as_tensor()) {
                Some(g) => Ok(g.flatten_all()?.to_vec1::<f32>()?),
                None => Ok(vec![0.0; v.as_tensor().elem_count()]),
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        // Truncated backprop: the next batch starts from these values with no
        // graph behind them.
        let finals = finals
            .iter()
            .map(|layer| {
                layer
                    .iter()
                    .map(|t| t.flatten_all()?.to_vec1::<f32>())
                    .collect()
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(BatchStep {
            loss: loss.to_scalar::<f32>()?,
            grads,
            finals,
            predicted,
        })
    }
}

/// The target rows of the picked samples.
fn gather_rows(y: &Tensor, picks: &[usize]) -> Vec<f32> {
    let w: usize = y.shape[1..].iter().product();
    picks
        .iter()
        .flat_map(|&i| y.data[i * w..(i + 1) * w].iter().copied())
        .collect()
}
