//! Setting a stream: to a stored state, to a selection of its slots (a
//! broadcast or a re-batch, which stores only a new slot list), or to
//! zeros. One transaction each.

use anyhow::Result;
use serde::Serialize;

use super::models::Model;
use super::refs::{self, Scope};
use super::streams;
use crate::id::StateId;
use crate::store::Store;

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
    let (source, state) = store.write(|store| -> Result<_> {
        // Loading re-hashes every slot: a damaged state is refused here.
        let source = refs::resolve(
            store,
            req.reference,
            Scope {
                model: Some(req.model),
                stream: req.stream,
                zeros_batch: req.batch_size,
            },
        )?;
        req.model.check_layout(&source.value, &source.id.short())?;
        let picks = streams::picks_for(
            source.value.batch(),
            &source.id.short(),
            req.slot,
            req.slots,
            req.batch_size,
        )?;
        let state = streams::restore_to(store, req.model, req.stream, &source, picks.as_deref())?;
        Ok((source.id, state))
    })?;
    Ok(StreamSet {
        model: req.model.record.name.clone(),
        stream: req.stream.to_string(),
        source: Some(source),
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
    let state = store.write(|store| -> Result<_> {
        let batch = match (batch_size, streams::head(store, model, stream)?) {
            (Some(n), _) => n,
            (None, Some(head)) => store.state_record(&head)?.slots.len(),
            (None, None) => model.config.batch_size,
        };
        streams::reset_to_zeros(store, model, stream, batch, None)
    })?;
    Ok(StreamSet {
        model: model.record.name.clone(),
        stream: stream.to_string(),
        source: None,
        state,
    })
}
