//! A model as the operations hold it: its row with the config parsed, and
//! the layout check every state that meets it goes through.

use anyhow::{Context as _, Result};

use crate::id::WeightsId;
use crate::model::ModelConfig;
use crate::state::{Layout, StateValue};
use crate::store::ModelRecord;

/// A model row with its parsed config.
#[derive(Debug, Clone)]
pub struct Model {
    pub record: ModelRecord,
    pub config: ModelConfig,
}

impl Model {
    /// The model as an event names it: id, name and weights.
    pub fn event_model(&self) -> Option<(i64, String, WeightsId)> {
        Some((
            self.record.id,
            self.record.name.clone(),
            self.record.weights,
        ))
    }

    pub(super) fn from_record(record: ModelRecord) -> Result<Model> {
        let config: ModelConfig = serde_json::from_str(&record.config)
            .with_context(|| format!("model '{}' has an unreadable config", record.name))?;
        Ok(Model { record, config })
    }

    /// Refuses a state made for another layout.
    pub fn check_layout(&self, state: &StateValue, label: &str) -> Result<()> {
        self.check_layout_of(&state.layout, label)
    }

    /// As [`Model::check_layout`], for a state's layout alone.
    pub fn check_layout_of(&self, layout: &Layout, label: &str) -> Result<()> {
        let want = self.config.layout();
        if *layout != want {
            return Err(LayoutMismatch(format!(
                "state {label} has layout {layout} but model '{}' needs {want}; pick a state made for this model",
                self.record.name,
            ))
            .into());
        }
        Ok(())
    }
}

/// Tensors or a state that do not have the layout they must have (a
/// model's, or any state's: `l{k}.h`, `l{k}.c` of `[batch, units]`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LayoutMismatch(pub String);
