//! What an audit reads through a [`Backend`]: objects and weights files by
//! id (re-hashed), the models, and the journal's events of one kind, so
//! that recorded predictions and trainings replay on a shared store as on
//! a local one.

use anyhow::Result;

use super::backend::Backend;
use crate::id::{ObjectId, WeightsId};
use crate::shared::SharedEventFilter;
use crate::store::{EventFilter, EventRecord, ModelRecord};

impl Backend<'_> {
    /// An object's bytes, re-hashed against its id.
    pub fn object(&mut self, id: &ObjectId) -> Result<Vec<u8>> {
        match self {
            Backend::Embedded(store) => Ok(store.load_object(id)?),
            Backend::Shared(shared) => shared.object(id),
        }
    }

    /// A weights file's bytes, re-hashed against its id.
    pub fn weights_file(&mut self, id: &WeightsId) -> Result<Vec<u8>> {
        match self {
            Backend::Embedded(store) => Ok(store.load_weights(id)?),
            Backend::Shared(shared) => shared.weights_file(id),
        }
    }

    /// Every model, oldest first.
    pub fn model_records(&mut self) -> Result<Vec<ModelRecord>> {
        match self {
            Backend::Embedded(store) => Ok(store.list_models()?),
            Backend::Shared(shared) => {
                let names: Vec<String> = shared.models()?.into_iter().map(|m| m.name).collect();
                let mut records = names
                    .iter()
                    .map(|name| shared.model_record(Some(name)))
                    .collect::<Result<Vec<_>>>()?;
                records.sort_by_key(|m| m.created_at);
                Ok(records)
            }
        }
    }

    /// The model called `name`.
    pub fn model_record(&mut self, name: &str) -> Result<ModelRecord> {
        match self {
            Backend::Embedded(store) => Ok(store.model_by_name(name)?),
            Backend::Shared(shared) => shared.model_record(Some(name)),
        }
    }

    /// The events of `kind`, oldest first, of one stream when `stream` is
    /// given.
    pub fn events_of_kind(&mut self, kind: &str, stream: Option<&str>) -> Result<Vec<EventRecord>> {
        let mut events = match self {
            Backend::Embedded(store) => store.events(&EventFilter {
                kind: Some(kind.into()),
                stream: stream.map(String::from),
                ..Default::default()
            })?,
            Backend::Shared(shared) => {
                let mut events = shared.journal(&SharedEventFilter {
                    kind: Some(kind),
                    ..Default::default()
                })?;
                events.retain(|e| stream.is_none() || e.stream.as_deref() == stream);
                events
            }
        };
        events.reverse();
        Ok(events)
    }

    /// The store's tag `name`, if it has one.
    pub fn tag_target(&mut self, name: &str) -> Result<Option<crate::id::StateId>> {
        match self {
            Backend::Embedded(store) => Ok(store.tag(name)?.map(|t| t.state)),
            Backend::Shared(shared) => Ok(shared
                .tags_named(&[name])?
                .first()
                .and_then(|t| crate::id::StateId::from_slice(&t.state))),
        }
    }
}
