//! The numbers behind `statectl plot`: training losses of models, and how
//! stale states are against a reference on one input. Drawing is the
//! front end's.

use anyhow::{anyhow, Result};

use super::models::{self, Model};
use super::predict::check_batch;
use super::refs::{self, Scope};
use super::train::TrainingRecord;
use crate::model::{predict, Outputs};
use crate::replay::{staleness, Staleness};
use crate::store::Store;
use crate::tensors::Tensor;

/// One model's recorded training losses.
#[derive(Debug, Clone)]
pub struct Losses {
    pub model: String,
    pub per_epoch: Vec<f32>,
    /// Empty unless training recorded every batch.
    pub per_batch: Vec<f32>,
    /// Validation loss per epoch; empty without a validation split.
    pub validation: Vec<f32>,
}

/// The losses each named model recorded while it trained.
pub fn losses(store: &Store, names: &[String]) -> Result<Vec<Losses>> {
    names
        .iter()
        .map(|name| {
            let model = models::find(store, Some(name))?;
            let text = model.record.training.as_deref().ok_or_else(|| {
                anyhow!("model '{name}' was imported, not trained: it has no losses to plot")
            })?;
            let record = TrainingRecord::parse(name, text)?;
            Ok(Losses {
                model: name.clone(),
                per_epoch: record.losses,
                per_batch: record.batch_losses,
                validation: record.val_losses,
            })
        })
        .collect()
}

/// How differently `model` answers `x` from each of `others` than from
/// `reference`, in order.
pub fn staleness_against(
    store: &Store,
    model: &Model,
    stream: &str,
    x: &Tensor,
    reference: &str,
    others: &[String],
) -> Result<Vec<Staleness>> {
    let batch = x.shape[0];
    let weights = models::weights(store, model)?;
    let outputs = |text: &str| -> Result<Vec<f32>> {
        let scope = Scope {
            model: Some(model),
            stream,
            zeros_batch: Some(batch),
        };
        let state = refs::resolve(store, text, scope)?;
        model.check_layout(&state.value, text)?;
        check_batch(&state.value, text, batch)?;
        Ok(predict(&weights, x, &state.value)?.outputs)
    };
    let base = outputs(reference)?;
    let steps = if model.config.outputs == Outputs::Sequence {
        x.shape[1]
    } else {
        1
    };
    others
        .iter()
        .map(|other| {
            Ok(staleness(
                &base,
                &outputs(other)?,
                model.config.output_size,
                steps,
            ))
        })
        .collect()
}
