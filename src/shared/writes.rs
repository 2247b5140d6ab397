//! Writes straight to the shared store, for an actor without a local store
//! of its own (`statectl --store URL import`, the Python package's
//! `Store(url).put_states`): slots, states, tags and their journal entries
//! in one transaction, so a write is acknowledged whole or not at all.
//! Content rows go in through binary COPY and `ON CONFLICT DO NOTHING`
//! (a retried or duplicated write is harmless); tags are created if absent
//! and moved only when forced. The writer's entries carry an origin of its
//! own, as a pushing store's do, numbered in the order it wrote them.

use anyhow::{anyhow, Result};

use super::content::{copy_into, Table};
use super::gc::unmark;
use super::refs::{copy_events, note_origin, upsert_tags, RemoteTag};
use super::streams::{move_stream, DirectStreamMove};
use super::SharedStore;
use crate::id::{ObjectId, SlotId, StateId, WeightsId};
use crate::state::{state_id, StateValue};
use crate::store::{now_ms, PortableEvent};

/// One state to write, encoded and hashed, and the tag to give it.
pub struct DirectState {
    pub id: StateId,
    layout: String,
    slots: Vec<(SlotId, Vec<u8>)>,
    pub tag: Option<String>,
}

impl DirectState {
    pub fn of(value: &StateValue, tag: Option<String>) -> DirectState {
        let layout = value.layout.to_string();
        let slots = value.encoded_slots();
        let ids: Vec<SlotId> = slots.iter().map(|(id, _)| *id).collect();
        DirectState {
            id: state_id(&layout, &ids),
            layout,
            slots,
            tag,
        }
    }
}

/// A journal entry of a direct write.
#[derive(Default)]
pub struct DirectEntry {
    pub kind: &'static str,
    pub state_before: Option<StateId>,
    pub state_after: Option<StateId>,
    /// The tag the entry names (a stack's or a split's).
    pub tag: Option<String>,
    /// An object of the write's `objects` (a burn-in's prefix, a
    /// prediction's input).
    pub input: Option<ObjectId>,
    /// An object of the write's `objects` (a prediction's output).
    pub output: Option<ObjectId>,
    /// The entry moves the write's stream (to `state_after`); with no
    /// `state_before`, it names where the stream was.
    pub moves_stream: bool,
    pub detail: String,
}

/// Everything one direct write puts in the shared store.
pub struct DirectWrite<'a> {
    pub states: &'a [DirectState],
    pub entries: Vec<DirectEntry>,
    /// A "tag" entry for every tag set or moved (a per-slot import's one
    /// entry names its tags by prefix instead).
    pub tag_entries: bool,
    /// Move tags that name other states.
    pub force: bool,
    /// Objects the entries name as input, with their bytes.
    pub objects: &'a [(ObjectId, Vec<u8>)],
    /// The model every entry (and "tag" entry) names: name and weights.
    pub model: Option<(String, WeightsId)>,
    /// The stream the write moves, by compare-and-set: when it is not
    /// where the writer expected, nothing is written
    /// ([`super::StreamNotAsExpected`]).
    pub stream: Option<DirectStreamMove>,
}

/// What a direct write changed.
#[derive(Debug, Default, Clone, Copy)]
pub struct DirectWritten {
    pub slots_new: u64,
    pub states_new: u64,
    pub tags_set: u64,
    pub events: u64,
}

/// What a direct write that moved a stream changed.
#[derive(Debug, Default, Clone)]
pub struct StreamWritten {
    /// The shared journal's numbers of the write's entries, in order.
    pub event_ids: Vec<i64>,
    /// Where the stream was before.
    pub stream_before: Option<StateId>,
}

/// The origin this connection writes its journal entries under: made on
/// its first write, numbered from 1.
pub(super) struct WriterOrigin {
    id: [u8; 16],
    next_event: i64,
}

impl SharedStore {
    /// Writes states, their tags and journal entries in one transaction.
    /// A tag that names another state refuses the whole write unless
    /// `force`.
    pub fn write_states(&mut self, write: &DirectWrite) -> Result<DirectWritten> {
        Ok(self.write_states_then(write, &mut || Ok(()))?.0)
    }

    /// Writes as [`write_states`](Self::write_states) does, and runs
    /// `before_commit` last inside the transaction (an error there rolls
    /// the write back); also returns the entries' journal numbers and
    /// where the moved stream was.
    pub fn write_states_then(
        &mut self,
        write: &DirectWrite,
        before_commit: &mut dyn FnMut() -> Result<()>,
    ) -> Result<(DirectWritten, StreamWritten)> {
        let shown = self.shown.clone();
        let (origin, first_event) = self.origin();
        let explain = |e: postgres::Error| super::connect::explain(&shown, "writing states", &e);
        let mut tx = self.client.transaction().map_err(explain)?;
        let now = now_ms();
        note_origin(&mut tx, &origin, now).map_err(explain)?;
        let slot_ids: Vec<&[u8]> = write
            .states
            .iter()
            .flat_map(|s| s.slots.iter().map(|(id, _)| &id.bytes()[..]))
            .collect();
        let state_ids: Vec<&[u8]> = write.states.iter().map(|s| &s.id.bytes()[..]).collect();
        unmark(&mut tx, &slot_ids, &state_ids).map_err(explain)?;
        let slots_new = copy_slots(&mut tx, write.states).map_err(explain)?;
        let states_new = copy_states(&mut tx, write.states, now).map_err(explain)?;
        copy_objects(&mut tx, write.objects).map_err(explain)?;
        let tags: Vec<RemoteTag> = write
            .states
            .iter()
            .filter_map(|s| {
                s.tag.as_ref().map(|name| RemoteTag {
                    name: name.clone(),
                    state: s.id.bytes().to_vec(),
                })
            })
            .collect();
        let before = match write.tag_entries {
            true => tags_before(&mut tx, &tags).map_err(explain)?,
            false => Default::default(),
        };
        let upserted = upsert_tags(&mut tx, &tags, write.force, now, &shown)?;
        if let Some(name) = upserted.clash {
            return Err(anyhow!(
                "tag {name} on {shown} names another state; nothing was written; pick another tag, or move it with --force"
            ));
        }
        let stream_before = match &write.stream {
            Some(change) => move_stream(&mut tx, change, now, &explain)?,
            None => None,
        };
        let events = journal(
            write,
            (origin, first_event),
            now,
            stream_before,
            &tags,
            &before,
        );
        let next = first_event + events.len() as i64;
        let events_written = copy_events(&mut tx, &events).map_err(explain)?;
        let event_ids = match &write.stream {
            Some(_) => entry_numbers(&mut tx, &origin, first_event, write.entries.len())
                .map_err(explain)?,
            None => Vec::new(),
        };
        before_commit()?;
        tx.commit().map_err(explain)?;
        if let Some(writer) = self.writer.as_mut() {
            writer.next_event = next;
        }
        Ok((
            DirectWritten {
                slots_new,
                states_new,
                tags_set: upserted.changed,
                events: events_written,
            },
            StreamWritten {
                event_ids,
                stream_before,
            },
        ))
    }
}

impl SharedStore {
    /// This connection's origin and the number its next entry takes.
    fn origin(&mut self) -> ([u8; 16], i64) {
        let writer = self.writer.get_or_insert_with(|| WriterOrigin {
            id: rand::random(),
            next_event: 1,
        });
        (writer.id, writer.next_event)
    }

    /// Deletes tags by name in one transaction, an "untag" entry each;
    /// returns what each named. A name that is not a tag there refuses
    /// the whole delete.
    pub fn delete_tags(&mut self, names: &[String]) -> Result<Vec<(String, StateId)>> {
        let shown = self.shown.clone();
        let (origin, first_event) = self.origin();
        let explain = |e| super::connect::explain(&shown, "deleting tags", &e);
        let mut tx = self.client.transaction().map_err(explain)?;
        let now = now_ms();
        note_origin(&mut tx, &origin, now).map_err(explain)?;
        let rows = tx
            .query(
                "DELETE FROM tags WHERE name = ANY($1) RETURNING name, state",
                &[&names],
            )
            .map_err(explain)?;
        let gone: std::collections::HashMap<String, Vec<u8>> =
            rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let mut deleted = Vec::new();
        let mut events = Vec::new();
        for name in names {
            let Some(state) = gone.get(name) else {
                return Err(anyhow!(
                    "tag '{name}' not found on {shown}; nothing was deleted; `statectl --store URL tag list` shows its tags"
                ));
            };
            if deleted.iter().any(|(n, _)| n == name) {
                continue;
            }
            let id = StateId::from_slice(state).ok_or_else(|| {
                anyhow!("tag {name} on {shown} names no 32-byte id: the shared store is damaged")
            })?;
            events.push(PortableEvent {
                origin,
                origin_event: first_event + events.len() as i64,
                kind: "untag".into(),
                at: now,
                model_name: None,
                weights: None,
                stream: None,
                moved_stream: false,
                state_before: Some(state.clone()),
                state_after: None,
                input: None,
                output: None,
                tag: Some(name.clone()),
                detail: "null".into(),
            });
            deleted.push((name.clone(), id));
        }
        copy_events(&mut tx, &events).map_err(explain)?;
        tx.commit().map_err(explain)?;
        if let Some(writer) = self.writer.as_mut() {
            writer.next_event = first_event + events.len() as i64;
        }
        Ok(deleted)
    }
}

/// Each distinct slot of the states, once.
fn copy_slots(
    tx: &mut postgres::Transaction,
    states: &[DirectState],
) -> Result<u64, postgres::Error> {
    let mut seen = std::collections::HashSet::new();
    copy_into(tx, Table::Slots, |writer| {
        for state in states {
            for (id, bytes) in &state.slots {
                if seen.insert(*id) {
                    writer.write(&[&&id.bytes()[..], &state.layout, bytes])?;
                }
            }
        }
        Ok(())
    })
}

fn copy_states(
    tx: &mut postgres::Transaction,
    states: &[DirectState],
    now: i64,
) -> Result<u64, postgres::Error> {
    let mut seen = std::collections::HashSet::new();
    copy_into(tx, Table::States, |writer| {
        for state in states.iter().filter(|s| seen.insert(s.id)) {
            let list: Vec<u8> = state.slots.iter().flat_map(|(id, _)| *id.bytes()).collect();
            let batch = state.slots.len() as i32;
            writer.write(&[&&state.id.bytes()[..], &state.layout, &batch, &list, &now])?;
        }
        Ok(())
    })
}

fn copy_objects(
    tx: &mut postgres::Transaction,
    objects: &[(ObjectId, Vec<u8>)],
) -> Result<u64, postgres::Error> {
    if objects.is_empty() {
        return Ok(0);
    }
    copy_into(tx, Table::Objects, |writer| {
        for (id, bytes) in objects {
            writer.write(&[&&id.bytes()[..], bytes])?;
        }
        Ok(())
    })
}

/// The journal entries of a direct write, numbered from `first` under
/// `origin`: the write's own, then a "tag" entry for each tag it set or
/// moved (when it journals tags), saying what the tag named `before`.
fn journal(
    write: &DirectWrite,
    (origin, first): ([u8; 16], i64),
    now: i64,
    stream_before: Option<StateId>,
    tags: &[RemoteTag],
    before: &std::collections::HashMap<String, Vec<u8>>,
) -> Vec<PortableEvent> {
    let mut events = Vec::new();
    let mut next = first;
    let mut entry = |kind: &str, before, after, tag, (input, output), (stream, moves), detail| {
        events.push(PortableEvent {
            origin,
            origin_event: next,
            kind: kind.to_string(),
            at: now,
            model_name: write.model.as_ref().map(|(name, _)| name.clone()),
            weights: write.model.as_ref().map(|(_, w)| w.bytes().to_vec()),
            stream,
            moved_stream: moves,
            state_before: before,
            state_after: after,
            input,
            output,
            tag,
            detail,
        });
        next += 1;
    };
    let bytes = |id: Option<StateId>| id.map(|s| s.bytes().to_vec());
    let object = |id: Option<ObjectId>| id.map(|o| o.bytes().to_vec());
    // A stream write's entries name its stream; those that move it
    // and name no state before it moved from where it was.
    let stream_name = write.stream.as_ref().map(|m| m.name.clone());
    for e in &write.entries {
        let moves = e.moves_stream && write.stream.is_some();
        let was = e.state_before.or(stream_before.filter(|_| moves));
        entry(
            e.kind,
            bytes(was),
            bytes(e.state_after),
            e.tag.clone(),
            (object(e.input), object(e.output)),
            (stream_name.clone(), moves),
            e.detail.clone(),
        );
    }
    for t in tags.iter().filter(|_| write.tag_entries) {
        let was = before.get(&t.name).cloned();
        if was.as_ref() != Some(&t.state) {
            let tag = Some(t.name.clone());
            let after = Some(t.state.clone());
            let no_stream = (None, false);
            entry(
                "tag",
                was,
                after,
                tag,
                (None, None),
                no_stream,
                "null".into(),
            );
        }
    }
    events
}

/// The shared journal's numbers of the `count` entries written under
/// `origin` from `first` on, in order.
fn entry_numbers(
    tx: &mut postgres::Transaction,
    origin: &[u8; 16],
    first: i64,
    count: usize,
) -> Result<Vec<i64>, postgres::Error> {
    let rows = tx.query(
        "SELECT id FROM events WHERE origin = $1 AND origin_event >= $2 AND origin_event < $3 \
         ORDER BY origin_event",
        &[&&origin[..], &first, &(first + count as i64)],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The states these tags name now (locked until the transaction ends, so
/// the "tag" entries say what each one moved from).
fn tags_before(
    tx: &mut postgres::Transaction,
    tags: &[RemoteTag],
) -> Result<std::collections::HashMap<String, Vec<u8>>, postgres::Error> {
    let names: Vec<&str> = tags.iter().map(|t| t.name.as_str()).collect();
    let rows = tx.query(
        "SELECT name, state FROM tags WHERE name = ANY($1) FOR UPDATE",
        &[&names],
    )?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
