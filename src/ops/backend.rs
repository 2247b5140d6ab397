//! The store an operation reads its sources from and records its results
//! in: the embedded SQLite store, or a shared store on PostgreSQL. Stack,
//! split, burn-in, diff and snapshot are written once against it, so a
//! learner that runs them on a shared store gets the states, ids, journal
//! entries and tags a local store gives. The two share no SQL: what
//! differs is how sources are found (a local store takes every ref form;
//! a shared store takes tags, full ids and `zeros`), how models and
//! weights files are read, and how one transaction records the results.

use anyhow::{anyhow, Result};

use super::models::{self, Model};
use super::refs::{self, Resolved, Scope};
use super::streams;
use super::tags::{self, TagRequest};
use crate::id::{ObjectId, StateId};
use crate::model::Weights;
use crate::shared::{DirectEntry, DirectState, DirectWrite, SharedStore};
use crate::state::StateValue;
use crate::store::{NewEvent, Store};
use crate::tensors::TensorFile;

/// Where an operation runs.
pub enum Backend<'a> {
    Embedded(&'a Store),
    Shared(&'a mut SharedStore),
}

/// A result to store: the state, the journal entry that says where it
/// came from, and the tag to give it.
pub struct Recorded {
    pub value: StateValue,
    pub kind: &'static str,
    pub state_before: Option<StateId>,
    /// The tag the entry names (a stack's or a split's).
    pub entry_tag: Option<String>,
    pub detail: serde_json::Value,
    pub tag: Option<TagRequest>,
}

/// Everything one operation records, in one transaction.
pub struct Recording<'a> {
    /// The model tags are set for, and entries name when `entries_name_model`.
    pub model: Option<&'a Model>,
    pub entries_name_model: bool,
    /// Bytes every entry names as its input (a burn-in's prefix).
    pub input: Option<Vec<u8>>,
    /// Sources not stored yet (`zeros` of a new batch size), stored first.
    pub unstored_sources: Vec<StateValue>,
    pub results: Vec<Recorded>,
}

impl Backend<'_> {
    /// The states `refs` name, in order.
    pub fn sources(&mut self, refs: &[String], scope: Scope) -> Result<Vec<Resolved>> {
        match self {
            Backend::Embedded(store) => store.read(|store| {
                refs.iter()
                    .map(|r| refs::resolve(store, r, scope))
                    .collect()
            }),
            Backend::Shared(shared) => shared_sources(shared, refs, scope),
        }
    }

    /// The model called `name`; with no name the newest one, or none when
    /// the store has no model (for operations that work without one).
    pub fn optional_model(&mut self, name: Option<&str>) -> Result<Option<Model>> {
        let none_there = match self {
            Backend::Embedded(store) => return models::find_optional(store, name),
            Backend::Shared(shared) => name.is_none() && shared.models()?.is_empty(),
        };
        if none_there {
            return Ok(None);
        }
        self.model(name).map(Some)
    }

    /// The model called `name`, or with no name the newest one.
    pub fn model(&mut self, name: Option<&str>) -> Result<Model> {
        match self {
            Backend::Embedded(store) => models::find(store, name),
            Backend::Shared(shared) => Model::from_record(shared.model_record(name)?),
        }
    }

    /// The model's weights, the file re-hashed.
    pub fn weights(&mut self, model: &Model) -> Result<Weights> {
        match self {
            Backend::Embedded(store) => models::weights(store, model),
            Backend::Shared(shared) => {
                let bytes = shared.weights_file(&model.record.weights)?;
                Ok(Weights::from_file(&TensorFile::decode(&bytes)?)?)
            }
        }
    }

    /// Names a state (stored first if it is not), journalled as a tag
    /// entry; a tag that names another state needs `tag.force`.
    pub fn tag_state(
        &mut self,
        state: &Resolved,
        tag: &TagRequest,
        model: Option<&Model>,
    ) -> Result<()> {
        tags::check_tag_name(&tag.name)?;
        match self {
            Backend::Embedded(store) => store.write(|store| {
                if !state.stored {
                    store.put_state(&state.value)?;
                }
                tags::apply(store, tag, &state.id, model)
            }),
            Backend::Shared(shared) => {
                shared.write_states(&DirectWrite {
                    states: &[DirectState::of(&state.value, Some(tag.name.clone()))],
                    entries: Vec::new(),
                    tag_entries: true,
                    force: tag.force,
                    objects: &[],
                    model: model.map(|m| (m.record.name.clone(), m.record.weights)),
                    stream: None,
                })?;
                Ok(())
            }
        }
    }

    /// Stores the results with their entries and tags, all or nothing;
    /// returns their ids, in order. A tag that names another state is
    /// refused unless its request forces it.
    pub fn record(&mut self, recording: &Recording) -> Result<Vec<StateId>> {
        for tag in recording.results.iter().filter_map(|r| r.tag.as_ref()) {
            tags::check_tag_name(&tag.name)?;
        }
        match self {
            Backend::Embedded(store) => record_embedded(store, recording),
            Backend::Shared(shared) => record_shared(shared, recording),
        }
    }
}

/// A shared store's states by tag, full id, `HEAD` or `HEAD~N` (of the
/// scope's stream), read together; `zeros` is computed, as on a local
/// store, for the scope's model and batch size (else the stream's, else
/// the model's).
fn shared_sources(
    shared: &mut SharedStore,
    refs: &[String],
    scope: Scope,
) -> Result<Vec<Resolved>> {
    let mut named = Vec::with_capacity(refs.len());
    for reference in refs.iter().filter(|r| *r != "zeros") {
        named.push(match refs::head_offset(reference)? {
            Some(back) => shared_head(shared, reference, back, scope)?.hex(),
            None => reference.clone(),
        });
    }
    let mut loaded = shared.load_states(&named)?.into_iter();
    let mut resolved = Vec::with_capacity(refs.len());
    for reference in refs {
        resolved.push(if reference == "zeros" {
            let value = shared_zeros(shared, scope)?;
            Resolved {
                id: value.id(),
                value,
                stored: false,
            }
        } else {
            let (id, value) = loaded
                .next()
                .ok_or_else(|| anyhow!("'{reference}' named no state"))?;
            Resolved {
                id,
                value,
                stored: true,
            }
        });
    }
    Ok(resolved)
}

/// The state `HEAD~back` names on a shared store.
fn shared_head(shared: &mut SharedStore, text: &str, back: u64, scope: Scope) -> Result<StateId> {
    let model = scope
        .model
        .ok_or_else(|| anyhow!("'{text}' needs a model; pass --model NAME"))?;
    let (name, stream) = (&model.record.name, scope.stream);
    streams::refuse_unknown(&shared.stream_names(name)?, model, stream)?;
    let (state, moves) = shared.stream_move(name, stream, back)?;
    let head = match back {
        0 => shared.stream_head(name, stream)?,
        _ => state,
    };
    head.ok_or_else(|| match moves {
        0 => anyhow!(
            "stream '{stream}' of model '{name}' has no state yet on {}; run `statectl predict` or `statectl reset` on it first",
            shared.shown()
        ),
        _ => anyhow!(
            "'{text}' goes past the start of stream '{stream}' of model '{name}': it has {moves} state(s), so HEAD~{} is the oldest",
            moves - 1
        ),
    })
}

/// `zeros` on a shared store: of the scope's batch size, else the
/// stream's, else the model's.
fn shared_zeros(shared: &mut SharedStore, scope: Scope) -> Result<StateValue> {
    let model = scope.model.ok_or_else(|| {
        anyhow!("'zeros' needs a model for its layout: name the model with --model")
    })?;
    let batch = match scope.zeros_batch {
        Some(batch) => batch,
        None => match shared.stream_head(&model.record.name, scope.stream)? {
            Some(head) => shared.load_states(&[head.hex()])?.remove(0).1.batch(),
            None => model.config.batch_size,
        },
    };
    Ok(StateValue::zeros(&model.config.layout(), batch))
}

fn record_embedded(store: &Store, recording: &Recording) -> Result<Vec<StateId>> {
    store.write(|store| {
        let input = match &recording.input {
            Some(bytes) => Some(store.put_object(bytes)?),
            None => None,
        };
        for source in &recording.unstored_sources {
            store.put_state(source)?;
        }
        let entry_model = recording
            .model
            .filter(|_| recording.entries_name_model)
            .and_then(|m| m.event_model());
        recording
            .results
            .iter()
            .map(|result| {
                let id = store.put_state(&result.value)?;
                store.append_event(&NewEvent {
                    kind: result.kind,
                    model: entry_model.clone(),
                    state_before: result.state_before,
                    state_after: Some(id),
                    input,
                    tag: result.entry_tag.clone(),
                    detail: result.detail.clone(),
                    ..Default::default()
                })?;
                if let Some(tag) = &result.tag {
                    tags::apply(store, tag, &id, recording.model)?;
                }
                Ok(id)
            })
            .collect()
    })
}

fn record_shared(shared: &mut SharedStore, recording: &Recording) -> Result<Vec<StateId>> {
    let input = recording
        .input
        .as_ref()
        .map(|bytes| (ObjectId(crate::id::Digest::of(&[bytes])), bytes.clone()));
    // A result given the same tag twice (a source burnt in twice by the
    // same rows) is one state: tagged once.
    let mut tagged = std::collections::HashSet::new();
    let results: Vec<DirectState> = recording
        .results
        .iter()
        .map(|r| {
            let tag = r.tag.as_ref().map(|t| t.name.clone());
            DirectState::of(&r.value, tag.filter(|name| tagged.insert(name.clone())))
        })
        .collect();
    let states: Vec<DirectState> = recording
        .unstored_sources
        .iter()
        .map(|source| DirectState::of(source, None))
        .chain(results)
        .collect();
    let ids: Vec<StateId> = states[recording.unstored_sources.len()..]
        .iter()
        .map(|s| s.id)
        .collect();
    let entries = recording
        .results
        .iter()
        .zip(&ids)
        .map(|(result, id)| DirectEntry {
            kind: result.kind,
            state_before: result.state_before,
            state_after: Some(*id),
            tag: result.entry_tag.clone(),
            input: input.as_ref().map(|(id, _)| *id),
            detail: result.detail.to_string(),
            ..Default::default()
        })
        .collect();
    shared.write_states(&DirectWrite {
        states: &states,
        entries,
        tag_entries: true,
        force: recording
            .results
            .iter()
            .any(|r| r.tag.as_ref().is_some_and(|t| t.force)),
        objects: input.as_slice(),
        model: recording
            .model
            .filter(|_| recording.entries_name_model)
            .map(|m| (m.record.name.clone(), m.record.weights)),
        stream: None,
    })?;
    Ok(ids)
}
