//! Setting a stream: to a stored state, to a selection of its slots (a
//! broadcast or a re-batch, which stores only a new slot list), or to
//! zeros. One transaction each.

use anyhow::Result;
use serde::Serialize;

use super::backend::Backend;
use super::backend_streams::{StreamEntry, StreamWrite};
use super::models::Model;
use super::refs::Scope;
use super::streams::{self, Expect};
use crate::id::StateId;
use crate::state::StateValue;
use crate::store::{NewEvent, Store};

/// Where to set the stream.
pub struct RestoreRequest<'a> {
    pub model: &'a Model,
    pub stream: &'a str,
    /// A tag, an id prefix, HEAD, HEAD~N or zeros.
    pub reference: &'a str,
    /// Broadcast this slot to every slot of the batch.
    pub slot: Option<usize>,
    /// Pick these slots, in this order, as the new batch.
    pub slots: Option<&'a [usize]>,
    /// The batch size of a broadcast (or of zeros).
    pub batch_size: Option<usize>,
}

/// Where a stream was set (the `restore` and `reset` JSON).
#[derive(Debug, Clone, Serialize)]
pub struct StreamSet {
    pub model: String,
    pub stream: String,
    /// The state restored from (`restore` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<StateId>,
    /// The stream's new state.
    pub state: StateId,
}

pub fn restore(store: &Store, req: &RestoreRequest) -> Result<StreamSet> {
    restore_on(&mut Backend::Embedded(store), req)
}

/// Sets the stream to the state `req` names, or to slots of it, on
/// either store.
pub fn restore_on(backend: &mut Backend, req: &RestoreRequest) -> Result<StreamSet> {
    // Loading re-hashes every slot: a damaged state is refused here.
    let scope = Scope {
        model: Some(req.model),
        stream: req.stream,
        zeros_batch: req.batch_size,
    };
    let source = backend
        .reading(|backend| backend.sources(&[req.reference.to_string()], scope))?
        .remove(0);
    req.model.check_layout(&source.value, &source.id.short())?;
    let picks = streams::picks_for(
        source.value.batch(),
        &source.id.short(),
        req.slot,
        req.slots,
        req.batch_size,
    )?;
    let selected = match &picks {
        Some(picks) => Some(source.value.select(picks)?),
        None => None,
    };
    let value = selected.as_ref().unwrap_or(&source.value);
    let state = value.id();
    let entry = streams::restore_entry(&source.id, picks.as_deref());
    set_stream(backend, req.model, req.stream, value, entry)?;
    Ok(StreamSet {
        model: req.model.record.name.clone(),
        stream: req.stream.to_string(),
        source: Some(source.id),
        state,
    })
}

/// Sets the stream to zeros of `batch_size` slots (default: the stream's
/// current batch size, else the model's).
pub fn reset(
    store: &Store,
    model: &Model,
    stream: &str,
    batch_size: Option<usize>,
) -> Result<StreamSet> {
    reset_on(&mut Backend::Embedded(store), model, stream, batch_size)
}

/// [`reset`] on either store.
pub fn reset_on(
    backend: &mut Backend,
    model: &Model,
    stream: &str,
    batch_size: Option<usize>,
) -> Result<StreamSet> {
    let batch = match batch_size {
        Some(n) => n,
        None => backend.reading(|backend| match backend.stream_head(model, stream)? {
            Some(head) => Ok(backend.load_state(&head)?.batch()),
            None => Ok(model.config.batch_size),
        })?,
    };
    crate::limits::check_batch(batch)?;
    let zeros = StateValue::zeros(&model.config.layout(), batch);
    set_stream(backend, model, stream, &zeros, streams::reset_entry(batch))?;
    Ok(StreamSet {
        model: model.record.name.clone(),
        stream: stream.to_string(),
        source: None,
        state: zeros.id(),
    })
}

/// Stores `value` and moves the stream to it wherever it was, journalled
/// as `entry` says.
fn set_stream(
    backend: &mut Backend,
    model: &Model,
    stream: &str,
    value: &StateValue,
    entry: NewEvent,
) -> Result<()> {
    backend.write_stream(
        &StreamWrite {
            model,
            stream,
            states: vec![value],
            objects: Vec::new(),
            entries: vec![StreamEntry {
                event: NewEvent {
                    state_after: Some(value.id()),
                    ..entry
                },
                moves: Some(Expect::Any),
            }],
            tag: None,
        },
        &mut || Ok(()),
    )?;
    Ok(())
}
