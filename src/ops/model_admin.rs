//! Deleting and renaming models, journalled. A deleted model's streams go
//! with it; its events stay (with the weights id they recorded), so
//! `audit` still replays them until `gc` drops them. A renamed model keeps
//! its id, so its history, `HEAD~N` and `audit --train` follow the new name.

use anyhow::{bail, Result};
use serde::Serialize;
use serde_json::json;

use super::models::{self, check_model_name};
use crate::id::WeightsId;
use crate::store::{NewEvent, Store};

/// What `model delete` removed (its JSON).
#[derive(Debug, Clone, Serialize)]
pub struct ModelDeleted {
    pub model: String,
    pub weights: WeightsId,
    /// The streams that went with it.
    pub streams: Vec<String>,
}

/// What `model rename` did (its JSON).
#[derive(Debug, Clone, Serialize)]
pub struct ModelRenamed {
    pub from: String,
    pub to: String,
}

pub fn delete(store: &Store, name: &str) -> Result<ModelDeleted> {
    store.write(|store| -> Result<_> {
        let model = models::find(store, Some(name))?;
        let streams: Vec<String> = store
            .streams_of(model.record.id)?
            .into_iter()
            .map(|s| s.name)
            .collect();
        store.append_event(&NewEvent {
            kind: "model-delete",
            model: model.event_model(),
            detail: json!({ "streams": streams }),
            ..Default::default()
        })?;
        store.delete_model(model.record.id)?;
        Ok(ModelDeleted {
            model: model.record.name,
            weights: model.record.weights,
            streams,
        })
    })
}

pub fn rename(store: &Store, from: &str, to: &str) -> Result<ModelRenamed> {
    check_model_name(to)?;
    store.write(|store| -> Result<_> {
        let model = models::find(store, Some(from))?;
        if from == to {
            bail!("model '{from}' already has that name");
        }
        if store.find_model(to)?.is_some() {
            bail!("model '{to}' already exists; delete it first (`statectl model delete {to}`) or choose another name");
        }
        store.rename_model(model.record.id, to)?;
        store.append_event(&NewEvent {
            kind: "model-rename",
            model: Some((model.record.id, to.to_string(), model.record.weights)),
            detail: json!({ "from": from, "to": to }),
            ..Default::default()
        })?;
        Ok(ModelRenamed {
            from: from.to_string(),
            to: to.to_string(),
        })
    })
}
