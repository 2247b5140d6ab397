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
    /// An object of the write's `objects` (a burn-in's prefix).
    pub input: Option<ObjectId>,
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
}

/// What a direct write changed.
#[derive(Debug, Default, Clone, Copy)]
pub struct DirectWritten {
    pub slots_new: u64,
    pub states_new: u64,
    pub tags_set: u64,
    pub events: u64,
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
        let shown = self.shown.clone();
        let (origin, first_event) = self.origin();
        let explain = |e| super::connect::explain(&shown, "writing states", &e);
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
        let mut events = Vec::new();
        let mut next = first_event;
        let mut entry = |kind: &str, before, after, tag, input, detail| {
            events.push(PortableEvent {
                origin,
                origin_event: next,
                kind: kind.to_string(),
                at: now,
                model_name: write.model.as_ref().map(|(name, _)| name.clone()),
                weights: write.model.as_ref().map(|(_, w)| w.bytes().to_vec()),
                stream: None,
                moved_stream: false,
                state_before: before,
                state_after: after,
                input,
                output: None,
                tag,
                detail,
            });
            next += 1;
        };
        let bytes = |id: Option<StateId>| id.map(|s| s.bytes().to_vec());
        for e in &write.entries {
            let input = e.input.map(|o| o.bytes().to_vec());
            let (before, after) = (bytes(e.state_before), bytes(e.state_after));
            entry(
                e.kind,
                before,
                after,
                e.tag.clone(),
                input,
                e.detail.clone(),
            );
        }
        for t in tags.iter().filter(|_| write.tag_entries) {
            let was = before.get(&t.name).cloned();
            if was.as_ref() != Some(&t.state) {
                let tag = Some(t.name.clone());
                entry("tag", was, Some(t.state.clone()), tag, None, "null".into());
            }
        }
        let events_written = copy_events(&mut tx, &events).map_err(explain)?;
        tx.commit().map_err(explain)?;
        if let Some(writer) = self.writer.as_mut() {
            writer.next_event = next;
        }
        Ok(DirectWritten {
            slots_new,
            states_new,
            tags_set: upserted.changed,
            events: events_written,
        })
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
