//! Streams through a [`Backend`]: where a model's stream stands, its
//! names, a stored state by id, and one write that stores what a command
//! computed, journals it and moves the stream by compare-and-set. Predict,
//! restore and reset are written once against these, so a stream on a
//! shared store moves as one on a local store does: a writer that computed
//! from a HEAD another writer has moved since gets [`StreamMoved`].

use anyhow::Result;

use super::backend::Backend;
use super::models::Model;
use super::streams::{self, Expect, StreamMoved};
use super::tags::{self, TagRequest};
use crate::id::{Digest, ObjectId, StateId};
use crate::shared::{DirectEntry, DirectState, DirectStreamMove, DirectWrite, StreamNotAsExpected};
use crate::state::StateValue;
use crate::store::{NewEvent, Store};

/// A journal entry of a stream write.
pub struct StreamEntry {
    /// Kind, states, input, output and detail; the model and stream are
    /// the write's.
    pub event: NewEvent,
    /// The entry moves the stream to `event.state_after`, where the stream
    /// must be as this says.
    pub moves: Option<Expect>,
}

/// What one command records on a stream, in one transaction.
pub struct StreamWrite<'a> {
    pub model: &'a Model,
    pub stream: &'a str,
    /// States to store (those the entries name and the store may lack).
    pub states: Vec<&'a StateValue>,
    /// Objects to store; entries name them by their ids.
    pub objects: Vec<Vec<u8>>,
    pub entries: Vec<StreamEntry>,
    /// A tag to set on a state of `states`.
    pub tag: Option<(&'a TagRequest, StateId)>,
}

/// An object's id, as both stores give it.
pub fn object_id(bytes: &[u8]) -> ObjectId {
    ObjectId(Digest::of(&[bytes]))
}

impl Backend<'_> {
    /// Runs `read` on one consistent view: a snapshot of a local store; a
    /// shared store's reads are each current, and the stream write's
    /// compare-and-set catches a move in between.
    pub fn reading<T>(&mut self, read: impl FnOnce(&mut Backend) -> Result<T>) -> Result<T> {
        match self {
            Backend::Embedded(store) => store.read(|store| read(&mut Backend::Embedded(store))),
            Backend::Shared(_) => read(self),
        }
    }

    /// Where the model's stream stands, if it exists.
    pub fn stream_head(&mut self, model: &Model, stream: &str) -> Result<Option<StateId>> {
        match self {
            Backend::Embedded(store) => streams::head(store, model, stream),
            Backend::Shared(shared) => shared.stream_head(&model.record.name, stream),
        }
    }

    /// The model's streams and where each stands, by name.
    pub fn stream_heads(&mut self, model: &Model) -> Result<Vec<(String, StateId)>> {
        Ok(match self {
            Backend::Embedded(store) => store
                .streams_of(model.record.id)?
                .into_iter()
                .map(|s| (s.name, s.state))
                .collect(),
            Backend::Shared(shared) => shared
                .streams()?
                .into_iter()
                .filter(|s| s.model == model.record.name)
                .filter_map(|s| Some((s.name, StateId::from_slice(&s.state)?)))
                .collect(),
        })
    }

    /// Refuses a new stream whose name is one typo away from one the
    /// model has, unless the caller asked for a new stream.
    pub fn check_new_stream(&mut self, model: &Model, stream: &str, asked: bool) -> Result<()> {
        match self {
            Backend::Embedded(store) => streams::check_new_stream(store, model, stream, asked),
            Backend::Shared(shared) => {
                let names = shared.stream_names(&model.record.name)?;
                streams::refuse_near_miss(&names, model, stream, asked)
            }
        }
    }

    /// A stored state, every slot re-hashed.
    pub fn load_state(&mut self, id: &StateId) -> Result<StateValue> {
        match self {
            Backend::Embedded(store) => Ok(store.load_state(id)?),
            Backend::Shared(shared) => Ok(shared.load_states(&[id.hex()])?.remove(0).1),
        }
    }

    /// Stores, journals and moves as `write` says, all or nothing, with
    /// `before_commit` last inside the transaction; returns the entries'
    /// journal numbers, in order.
    pub fn write_stream(
        &mut self,
        write: &StreamWrite,
        before_commit: &mut dyn FnMut() -> Result<()>,
    ) -> Result<Vec<i64>> {
        if let Some((tag, _)) = write.tag {
            tags::check_tag_name(&tag.name)?;
        }
        match self {
            Backend::Embedded(store) => write_embedded(store, write, before_commit),
            Backend::Shared(shared) => {
                let states = direct_states(write);
                let objects: Vec<(ObjectId, Vec<u8>)> = write
                    .objects
                    .iter()
                    .map(|bytes| (object_id(bytes), bytes.clone()))
                    .collect();
                let direct = DirectWrite {
                    states: &states,
                    entries: write.entries.iter().map(direct_entry).collect(),
                    tag_entries: true,
                    force: write.tag.is_some_and(|(tag, _)| tag.force),
                    objects: &objects,
                    model: Some((write.model.record.name.clone(), write.model.record.weights)),
                    stream: stream_move(write),
                };
                let (_, written) = shared
                    .write_states_then(&direct, before_commit)
                    .map_err(|e| moved_error(e, write))?;
                Ok(written.event_ids)
            }
        }
    }
}

fn write_embedded(
    store: &Store,
    write: &StreamWrite,
    before_commit: &mut dyn FnMut() -> Result<()>,
) -> Result<Vec<i64>> {
    store.write(|store| {
        for state in &write.states {
            store.put_state(state)?;
        }
        for bytes in &write.objects {
            store.put_object(bytes)?;
        }
        let mut numbers = Vec::with_capacity(write.entries.len());
        for entry in &write.entries {
            let mut event = entry.event.clone();
            numbers.push(match (entry.moves, event.state_after) {
                (Some(expect), Some(state)) => {
                    streams::move_stream(store, write.model, write.stream, state, expect, event)?
                }
                _ => {
                    event.model = write.model.event_model();
                    event.stream = Some(write.stream.to_string());
                    store.append_event(&event)?
                }
            });
        }
        if let Some((tag, state)) = write.tag {
            tags::apply(store, tag, &state, Some(write.model))?;
        }
        before_commit()?;
        Ok(numbers)
    })
}

/// On a shared store, one compare-and-set from where the first moving
/// entry expects the stream to where the last one leaves it.
fn stream_move(write: &StreamWrite) -> Option<DirectStreamMove> {
    let mut moving = write.entries.iter().filter(|e| e.moves.is_some());
    let first = moving.next()?;
    let last = moving.next_back().unwrap_or(first);
    Some(DirectStreamMove {
        model: write.model.record.name.clone(),
        name: write.stream.to_string(),
        expect: match first.moves {
            Some(Expect::Head(head)) => Some(head),
            _ => None,
        },
        state: last.event.state_after?,
    })
}

/// The states to write, the tagged one carrying its tag.
fn direct_states(write: &StreamWrite) -> Vec<DirectState> {
    write
        .states
        .iter()
        .map(|value| {
            let id = value.id();
            let tag = write
                .tag
                .filter(|(_, state)| *state == id)
                .map(|(tag, _)| tag.name.clone());
            DirectState::of(value, tag)
        })
        .collect()
}

fn direct_entry(entry: &StreamEntry) -> DirectEntry {
    let e = &entry.event;
    DirectEntry {
        kind: e.kind,
        state_before: e.state_before,
        state_after: e.state_after,
        tag: e.tag.clone(),
        input: e.input,
        output: e.output,
        moves_stream: entry.moves.is_some(),
        detail: e.detail.to_string(),
    }
}

/// A shared store's "not where expected" as the [`StreamMoved`] a local
/// store gives, naming what the writer expected.
fn moved_error(e: anyhow::Error, write: &StreamWrite) -> anyhow::Error {
    let Some(moved) = e.downcast_ref::<StreamNotAsExpected>() else {
        return e;
    };
    let expected = write
        .entries
        .iter()
        .find_map(|e| match e.moves {
            Some(Expect::Head(head)) => Some(head),
            _ => None,
        })
        .flatten();
    let show = |s: Option<StateId>| s.map(|s| s.short()).unwrap_or_else(|| "(none)".into());
    StreamMoved {
        model: write.model.record.name.clone(),
        stream: write.stream.to_string(),
        expected: show(expected),
        found: show(moved.found),
    }
    .into()
}
