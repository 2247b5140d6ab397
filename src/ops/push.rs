//! Push: send what a local store has and a shared store lacks, the git
//! way. The refs are checked first (a push that would move a tag, replace
//! a model or rewind a stream is refused before it sends a byte, unless
//! forced); then only the content the shared store lacks is sent, in
//! transactions of its own (content nothing names yet is harmless, and a
//! push killed there leaves it for the next one, which does not send it
//! again); then one transaction publishes the journal and moves the refs,
//! each by compare-and-set against what the push read.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::id::{Digest, ObjectId, SlotId, StateId, WeightsId};
use crate::shared::{
    Publication, RemoteModel, RemoteTag, SharedStore, StreamMove, StreamMovedDuringPush, Table,
};
use crate::store::{PortableEvent, Store};

/// What to push.
#[derive(Debug, Clone, Default)]
pub struct PushRequest {
    pub url: String,
    /// Only the tags matching this glob, and the states they name (no
    /// journal, models or streams).
    pub tags: Option<String>,
    /// Move tags and streams that the shared store has elsewhere, and
    /// replace models of the same name.
    pub force: bool,
    /// When another writer moves a stream while this push runs, read
    /// again and push again (up to [`RETRIES`] times), instead of failing.
    pub retry: bool,
}

/// Most times `--retry` pushes again after a stream moved under it.
pub const RETRIES: u32 = 5;

/// What a push sent (the `push` JSON).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PushReport {
    pub url: String,
    pub slots_sent: u64,
    pub slot_bytes_sent: u64,
    pub slots_already_there: u64,
    pub states_sent: u64,
    pub objects_sent: u64,
    pub weights_files_sent: u64,
    pub events_sent: u64,
    pub models_changed: u64,
    pub tags_changed: u64,
    pub streams_moved: u64,
    /// Times the push read again because a stream moved under it.
    pub retries: u32,
    pub seconds: f64,
}

/// Everything the push reads from the local store, from one snapshot.
struct Local {
    origin: [u8; 16],
    tags: Vec<RemoteTag>,
    models: Vec<RemoteModel>,
    /// (model name, stream name, state, model id)
    streams: Vec<(String, String, StateId, i64)>,
    events: Vec<PortableEvent>,
    states: Vec<StateId>,
    slots: Vec<SlotId>,
    objects: Vec<ObjectId>,
    weights: Vec<WeightsId>,
}

/// How many slots (or bytes) one content transaction carries at most.
const SLOTS_PER_SEND: usize = 4096;
const BYTES_PER_SEND: usize = 32 << 20;

pub fn push(store: &Store, request: &PushRequest) -> Result<PushReport> {
    let started = Instant::now();
    let mut retries = 0;
    loop {
        match push_once(store, request) {
            Err(e) if request.retry && retries < RETRIES && moved_during_push(&e) => retries += 1,
            Err(e) if moved_during_push(&e) && request.retry => {
                bail!("{e:#} ({retries} retries: other writers keep moving it; try again later)")
            }
            result => {
                return result.map(|mut report| {
                    report.retries = retries;
                    report.seconds = started.elapsed().as_secs_f64();
                    report
                })
            }
        }
    }
}

fn moved_during_push(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<StreamMovedDuringPush>())
}

/// One push: read, check, send, publish. Content sent before a publish
/// that fails stays (it is harmless, and the next attempt does not send
/// it again).
fn push_once(store: &Store, request: &PushRequest) -> Result<PushReport> {
    let started = Instant::now();
    let mut remote = SharedStore::open(&request.url)?;
    let mut local = store.read(|s| read_local(s, request.tags.as_deref()))?;
    let streams = plan_streams(store, &mut remote, &local, request.force)?;
    keep_what_differs(&mut remote, &mut local, request.force)?;
    let mut report = PushReport {
        url: remote.shown().to_string(),
        ..Default::default()
    };
    send_slots(store, &mut remote, &local.slots, &mut report)?;
    report.states_sent = send_states(store, &mut remote, &local.states)?;
    report.objects_sent = send_blobs(
        &mut remote,
        Table::Objects,
        ids(&local.objects, |o| o.0),
        |id| Ok(store.load_object(&ObjectId(Digest(*id)))?),
    )?;
    report.weights_files_sent = send_blobs(
        &mut remote,
        Table::WeightsFiles,
        ids(&local.weights, |w| w.0),
        |id| Ok(store.load_weights(&WeightsId(Digest(*id)))?),
    )?;
    if local.events.is_empty()
        && local.models.is_empty()
        && local.tags.is_empty()
        && streams.is_empty()
    {
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let slots: Vec<&[u8]> = local.slots.iter().map(|s| &s.bytes()[..]).collect();
    let states: Vec<&[u8]> = local.states.iter().map(|s| &s.bytes()[..]).collect();
    let published = remote.publish(&Publication {
        origin: local.origin,
        events: &local.events,
        models: &local.models,
        replace_models: request.force,
        tags: &local.tags,
        move_tags: request.force,
        streams: &streams,
        slots: &slots,
        states: &states,
    })?;
    report.events_sent = published.events;
    report.models_changed = published.models;
    report.tags_changed = published.tags;
    report.streams_moved = streams.len() as u64;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn ids<T>(items: &[T], digest: fn(&T) -> Digest) -> Vec<[u8; 32]> {
    items.iter().map(|item| digest(item).0).collect()
}

fn read_local(store: &Store, selection: Option<&str>) -> Result<Local> {
    let origin = store.store_identity()?;
    let matches =
        |name: &str| selection.is_none_or(|glob| wildmatch::WildMatch::new(glob).matches(name));
    let tags: Vec<RemoteTag> = store
        .list_tags()?
        .into_iter()
        .filter(|t| matches(&t.name))
        .map(|t| RemoteTag {
            name: t.name,
            state: t.state.bytes().to_vec(),
        })
        .collect();
    if let Some(glob) = selection {
        if tags.is_empty() {
            bail!(
                "no tag here matches {glob}; nothing was pushed (statectl tag list shows the tags)"
            );
        }
        return read_selected(store, origin, tags);
    }
    let models = store.list_models()?;
    let mut streams = Vec::new();
    for m in &models {
        for s in store.streams_of(m.id)? {
            streams.push((m.name.clone(), s.name, s.state, m.id));
        }
    }
    let events = store.portable_events()?;
    let mut weights: Vec<WeightsId> = models.iter().map(|m| m.weights).collect();
    weights.extend(
        events
            .iter()
            .filter_map(|e| e.weights.as_deref().and_then(WeightsId::from_slice)),
    );
    let mut seen = HashSet::new();
    weights.retain(|w| seen.insert(*w));
    Ok(Local {
        origin,
        tags,
        models: models
            .into_iter()
            .map(|m| RemoteModel {
                name: m.name,
                weights: m.weights.bytes().to_vec(),
                config: m.config,
                training: m.training,
                created_at: m.created_at,
            })
            .collect(),
        streams,
        events,
        states: store.all_state_ids()?,
        slots: store.all_slot_ids()?,
        objects: store.all_object_ids()?,
        weights,
    })
}

/// The tags, the states they name and those states' slots; nothing else.
fn read_selected(store: &Store, origin: [u8; 16], tags: Vec<RemoteTag>) -> Result<Local> {
    let mut states = Vec::new();
    let mut slots = Vec::new();
    let (mut seen_states, mut seen_slots) = (HashSet::new(), HashSet::new());
    for tag in &tags {
        let Some(state) = StateId::from_slice(&tag.state) else {
            continue;
        };
        if seen_states.insert(state) {
            states.push(state);
            let record = store.state_record(&state)?;
            slots.extend(record.slots.into_iter().filter(|s| seen_slots.insert(*s)));
        }
    }
    Ok(Local {
        origin,
        tags,
        models: Vec::new(),
        streams: Vec::new(),
        events: Vec::new(),
        states,
        slots,
        objects: Vec::new(),
        weights: Vec::new(),
    })
}

/// The stream moves to publish. A stream the shared store has at a state
/// this store's journal moved it through is behind: it moves forward. Any
/// other state there is refused unless forced, naming both.
fn plan_streams(
    store: &Store,
    remote: &mut SharedStore,
    local: &Local,
    force: bool,
) -> Result<Vec<StreamMove>> {
    if local.streams.is_empty() {
        return Ok(Vec::new());
    }
    let there: HashMap<(String, String), Vec<u8>> = remote
        .streams()?
        .into_iter()
        .map(|s| ((s.model, s.name), s.state))
        .collect();
    let mut moves = Vec::new();
    for (model, name, state, model_id) in &local.streams {
        let expected = there.get(&(model.clone(), name.clone())).cloned();
        if let Some(theirs) = &expected {
            if theirs[..] == state.bytes()[..] {
                continue;
            }
            let behind = StateId::from_slice(theirs)
                .map(|t| store.stream_passed_through(*model_id, name, &t))
                .transpose()?
                .unwrap_or(false);
            if !behind && !force {
                bail!(
                    "stream {model}/{name} is at {} on {} and at {} here, and neither follows from the other; nothing was pushed; pull it first, or overwrite it with --force",
                    hex::encode(theirs),
                    remote.shown(),
                    state.hex()
                );
            }
        }
        moves.push(StreamMove {
            model: model.clone(),
            name: name.clone(),
            expected,
            state: state.bytes().to_vec(),
        });
    }
    Ok(moves)
}

/// Drops the tags, models and events the shared store already has as they
/// are here, so publishing sends only what differs; refuses, before
/// anything is sent, tags that name another state there and models of the
/// same name with other weights (unless forced).
fn keep_what_differs(remote: &mut SharedStore, local: &mut Local, force: bool) -> Result<()> {
    let names: Vec<&str> = local.tags.iter().map(|t| t.name.as_str()).collect();
    let there: HashMap<String, Vec<u8>> = remote
        .tags_named(&names)?
        .into_iter()
        .map(|t| (t.name, t.state))
        .collect();
    if let Some(t) = local
        .tags
        .iter()
        .find(|t| there.get(&t.name).is_some_and(|s| *s != t.state))
    {
        if !force {
            bail!(
                "tag {} names {} on {} and {} here; nothing was pushed; pull first, or move it there with --force",
                t.name,
                hex::encode(&there[&t.name]),
                remote.shown(),
                hex::encode(&t.state)
            );
        }
    }
    local.tags.retain(|t| there.get(&t.name) != Some(&t.state));
    let models: HashMap<String, Vec<u8>> = remote
        .models()?
        .into_iter()
        .map(|m| (m.name, m.weights))
        .collect();
    if let Some(m) = local
        .models
        .iter()
        .find(|m| models.get(&m.name).is_some_and(|w| *w != m.weights))
    {
        if !force {
            bail!(
                "model {} on {} has other weights than here; nothing was pushed; rename one of them, or replace it there with --force",
                m.name,
                remote.shown()
            );
        }
    }
    local
        .models
        .retain(|m| models.get(&m.name) != Some(&m.weights));
    let missing = remote.missing_events(&local.events)?;
    let mut index = 0;
    local.events.retain(|_| {
        index += 1;
        missing[index - 1]
    });
    Ok(())
}

/// Sends the slots the shared store lacks, in bounded transactions.
fn send_slots(
    store: &Store,
    remote: &mut SharedStore,
    slots: &[SlotId],
    report: &mut PushReport,
) -> Result<()> {
    let missing = remote.missing(Table::Slots, &ids(slots, |s| s.0))?;
    report.slots_already_there = (slots.len() - missing.len()) as u64;
    let mut batch: Vec<(SlotId, String, Vec<u8>)> = Vec::new();
    let mut batch_bytes = 0;
    for (i, id) in missing.iter().enumerate() {
        let slot = SlotId(Digest(*id));
        let (layout, bytes) = store.slot_content(&slot)?;
        batch_bytes += bytes.len();
        batch.push((slot, layout, bytes));
        if batch.len() == SLOTS_PER_SEND || batch_bytes >= BYTES_PER_SEND || i + 1 == missing.len()
        {
            remote.send(Table::Slots, |w| {
                batch
                    .iter()
                    .try_for_each(|(id, layout, bytes)| w.write(&[&&id.bytes()[..], layout, bytes]))
            })?;
            report.slots_sent += batch.len() as u64;
            report.slot_bytes_sent += batch_bytes as u64;
            batch.clear();
            batch_bytes = 0;
        }
    }
    Ok(())
}

/// Sends the state rows the shared store lacks (after their slots).
fn send_states(store: &Store, remote: &mut SharedStore, states: &[StateId]) -> Result<u64> {
    let missing = remote.missing(Table::States, &ids(states, |s| s.0))?;
    for chunk in missing.chunks(SLOTS_PER_SEND) {
        let mut rows = Vec::with_capacity(chunk.len());
        for id in chunk {
            let record = store.state_record(&StateId(Digest(*id)))?;
            let list: Vec<u8> = record.slots.iter().flat_map(|s| *s.bytes()).collect();
            rows.push((
                record.layout,
                record.slots.len() as i32,
                list,
                record.created_at,
                *id,
            ));
        }
        remote.send(Table::States, |w| {
            rows.iter().try_for_each(|(layout, batch, list, at, id)| {
                w.write(&[&&id[..], layout, batch, list, at])
            })
        })?;
    }
    Ok(missing.len() as u64)
}

/// Sends the id-and-bytes rows (objects, weights files) the shared store
/// lacks, one transaction each.
fn send_blobs(
    remote: &mut SharedStore,
    table: Table,
    ids: Vec<[u8; 32]>,
    load: impl Fn(&[u8; 32]) -> Result<Vec<u8>>,
) -> Result<u64> {
    let missing = remote.missing(table, &ids)?;
    for id in &missing {
        let bytes = load(id)?;
        remote.send(table, |w| w.write(&[&&id[..], &bytes]))?;
    }
    Ok(missing.len() as u64)
}
