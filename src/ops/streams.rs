//! Streams: each model's current state per stream name. Moving one is
//! journalled, and checked against the state the caller started from, so a
//! command that computed from an older HEAD never overwrites a newer one.

use anyhow::{bail, Result};
use serde_json::json;

use super::model_handle::Model;
use crate::id::StateId;
use crate::state::StateValue;
use crate::store::{NewEvent, Store};
use crate::suggest;

/// The stream's current state, if the stream exists.
pub fn head(store: &Store, model: &Model, stream: &str) -> Result<Option<StateId>> {
    Ok(store.stream(model.record.id, stream)?.map(|s| s.state))
}

/// The model's stream names.
fn stream_names(store: &Store, model: &Model) -> Result<Vec<String>> {
    Ok(store
        .streams_of(model.record.id)?
        .into_iter()
        .map(|s| s.name)
        .collect())
}

/// Refuses to start a stream whose name is one typo away from one the
/// model has (`mian` beside `main`), unless the caller asked for a new
/// stream; any other new name starts a stream.
pub fn check_new_stream(store: &Store, model: &Model, stream: &str, asked: bool) -> Result<()> {
    refuse_near_miss(&stream_names(store, model)?, model, stream, asked)
}

/// [`check_new_stream`] given the model's stream names.
pub fn refuse_near_miss(names: &[String], model: &Model, stream: &str, asked: bool) -> Result<()> {
    if asked {
        return Ok(());
    }
    if let Some(meant) = suggest::near_miss(stream, names.iter().map(String::as_str)) {
        bail!(
            "model '{}' has no stream '{stream}'; did you mean '{meant}'? To start a new stream '{stream}' from zeros, pass --new-stream (Python: new_stream=True)",
            model.record.name
        );
    }
    Ok(())
}

/// Refuses to read a stream the model does not have, naming the ones it
/// has. A model with no streams yet reads as empty.
pub fn check_exists(store: &Store, model: &Model, stream: &str) -> Result<()> {
    refuse_unknown(&stream_names(store, model)?, model, stream)
}

/// [`check_exists`] given the model's stream names.
pub fn refuse_unknown(names: &[String], model: &Model, stream: &str) -> Result<()> {
    if names.is_empty() || names.iter().any(|n| n == stream) {
        return Ok(());
    }
    let listed: Vec<&str> = names.iter().map(String::as_str).collect();
    bail!(
        "model '{}' has no stream '{stream}'{}; its streams: {}",
        model.record.name,
        suggest::did_you_mean(stream, listed.iter().copied()),
        suggest::listing(&listed, 10)
    )
}

/// What the caller expects the stream's head to be when it commits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expect {
    /// Whatever it is (restore, reset: the user names the new state).
    Any,
    /// Exactly this (`None`: the stream does not exist yet).
    Head(Option<StateId>),
}

/// The error a moved stream gives; the caller may retry on it.
#[derive(Debug, thiserror::Error)]
#[error("stream '{stream}' of model '{model}' moved from {expected} to {found} while this command ran, so nothing was recorded; rerun it, or pass --retry to recompute from the new state")]
pub struct StreamMoved {
    pub model: String,
    pub stream: String,
    pub expected: String,
    pub found: String,
}

/// Sets the stream to `state`, journalling the move. Call inside a write.
pub fn move_stream(
    store: &Store,
    model: &Model,
    stream: &str,
    state: StateId,
    expect: Expect,
    mut event: NewEvent,
) -> Result<i64> {
    let before = head(store, model, stream)?;
    if let Expect::Head(expected) = expect {
        if expected != before {
            let show = |s: Option<StateId>| s.map(|s| s.short()).unwrap_or_else(|| "(none)".into());
            return Err(StreamMoved {
                model: model.record.name.clone(),
                stream: stream.to_string(),
                expected: show(expected),
                found: show(before),
            }
            .into());
        }
    }
    store.set_stream(model.record.id, stream, &state)?;
    event.model = model.event_model();
    event.stream = Some(stream.to_string());
    event.moved_stream = true;
    event.state_before = event.state_before.or(before);
    event.state_after = Some(state);
    Ok(store.append_event(&event)?)
}

/// Stores zeros of `batch` slots and sets the stream to them, journalled as
/// a reset. Call inside a write.
pub fn reset_to_zeros(
    store: &Store,
    model: &Model,
    stream: &str,
    batch: usize,
    expect: Option<Expect>,
) -> Result<StateId> {
    crate::limits::check_batch(batch)?;
    let zeros = store.put_state(&StateValue::zeros(&model.config.layout(), batch))?;
    move_stream(
        store,
        model,
        stream,
        zeros,
        expect.unwrap_or(Expect::Any),
        reset_entry(batch),
    )?;
    Ok(zeros)
}

/// The journal entry of a move to zeros of `batch` slots.
pub fn reset_entry(batch: usize) -> NewEvent {
    NewEvent {
        kind: "reset",
        detail: json!({ "batch": batch }),
        ..Default::default()
    }
}

/// The journal entry of a move to `source`, or to the slots `picks` of it
/// (a slice).
pub fn restore_entry(source: &StateId, picks: Option<&[usize]>) -> NewEvent {
    NewEvent {
        kind: if picks.is_some() { "slice" } else { "restore" },
        detail: json!({"source": source.hex(), "slots": picks}),
        ..Default::default()
    }
}

/// How to build the new state from the source: as it is, or a selection
/// of its slots (a broadcast or a re-batch).
pub fn picks_for(
    batch: usize,
    source_label: &str,
    slot: Option<usize>,
    slots: Option<&[usize]>,
    batch_size: Option<usize>,
) -> Result<Option<Vec<usize>>> {
    if let Some(n) = batch_size {
        crate::limits::check_batch(n)?;
    }
    if let Some(list) = slots {
        crate::limits::check_batch(list.len())?;
    }
    Ok(match (slot, slots, batch_size) {
        (Some(k), _, n) => Some(vec![k; n.unwrap_or(batch)]),
        (None, Some(list), None) => Some(list.to_vec()),
        (None, Some(_), Some(_)) => bail!("--slots already sets the batch size (one slot per entry); drop --batch-size"),
        (None, None, Some(n)) if n == batch => None,
        (None, None, Some(n)) if batch == 1 => Some(vec![0; n]),
        (None, None, Some(n)) => bail!(
            "state {source_label} has {batch} slots; to make a batch of {n}, pick them with --slots (e.g. --slots {}) or broadcast one with --slot K",
            (0..n).map(|i| (i % batch).to_string()).collect::<Vec<_>>().join(",")
        ),
        (None, None, None) => None,
    })
}

/// Sets the stream to `source`, or to the slots `picks` of it (no new
/// tensor bytes: the slots are stored already, or are zeros); journals the
/// move as a restore or a slice. Call inside a write.
pub fn restore_to(
    store: &Store,
    model: &Model,
    stream: &str,
    source: &super::Resolved,
    picks: Option<&[usize]>,
) -> Result<StateId> {
    model.check_layout(&source.value, &source.id.short())?;
    let state = match picks {
        Some(picks) => store.put_state(&source.value.select(picks)?)?,
        None => store.put_state(&source.value)?,
    };
    move_stream(
        store,
        model,
        stream,
        state,
        Expect::Any,
        restore_entry(&source.id, picks),
    )?;
    Ok(state)
}
