//! A store at a glance: its models with their streams' heads, how many
//! tags, states, slots and events it holds, its size and schema, and its
//! last event.

use anyhow::Result;
use serde::Serialize;

use crate::id::StateId;
use crate::store::{Counts, EventFilter, EventRecord, Store, SCHEMA_VERSION};

/// The `status` JSON.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub store: String,
    pub schema: i64,
    pub bytes_on_disk: u64,
    pub models: Vec<ModelStatus>,
    /// Training runs that have not finished.
    pub runs: Vec<super::runs::RunSummary>,
    #[serde(flatten)]
    pub counts: Counts,
    pub last_event: Option<EventRecord>,
}

/// One model and where its streams are.
#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    pub model: String,
    /// `lstm 16 -> 27 softmax` and the like; null when unreadable.
    pub layout: Option<String>,
    pub streams: Vec<StreamStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamStatus {
    pub stream: String,
    pub head: StateId,
    pub updated_at: i64,
}

pub fn run(store: &Store) -> Result<StatusReport> {
    store.read(|store| -> Result<_> {
        let mut models = Vec::new();
        for record in store.list_models()? {
            let streams = store
                .streams_of(record.id)?
                .into_iter()
                .map(|s| StreamStatus {
                    stream: s.name,
                    head: s.state,
                    updated_at: s.updated_at,
                })
                .collect();
            let layout = super::models::Model::from_record(record.clone())
                .ok()
                .map(|m| m.config.layout().to_string());
            models.push(ModelStatus {
                model: record.name,
                layout,
                streams,
            });
        }
        let last_event = store
            .events(&EventFilter {
                limit: Some(1),
                ..Default::default()
            })?
            .pop();
        Ok(StatusReport {
            store: store.root().display().to_string(),
            schema: SCHEMA_VERSION,
            bytes_on_disk: store.bytes_on_disk(),
            models,
            runs: super::runs::list(store)?,
            counts: store.counts()?,
            last_event,
        })
    })
}
