//! Pull: copy a shared store's refs and the content they need into a
//! local store, for offline work and audit. Refs are checked first (a tag
//! here that names another state, a model here with other weights, a
//! stream here that the shared store's journal never passed through are
//! refused before anything is written, unless forced); content lands in
//! bounded transactions, each row checked against its id; the journal
//! and the refs land in one last transaction. A pull killed at any moment
//! leaves the local store consistent, and the next one completes it.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::id::{ObjectId, SlotId, StateId, WeightsId};
use crate::shared::{RemoteModel, RemoteStream, RemoteTag, SharedStore, Table};
use crate::store::{PortableEvent, Store};

/// What to pull.
#[derive(Debug, Clone, Default)]
pub struct PullRequest {
    pub url: String,
    /// Only the tags matching this glob, and the states they name.
    pub tags: Option<String>,
    /// Move local tags and streams to where the shared store has them.
    pub force: bool,
}

/// What a pull received (the `pull` JSON).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PullReport {
    pub url: String,
    pub slots_received: u64,
    pub slot_bytes_received: u64,
    pub states_received: u64,
    pub objects_received: u64,
    pub weights_files_received: u64,
    pub events_received: u64,
    pub models_added: u64,
    pub tags_changed: u64,
    pub streams_moved: u64,
    pub seconds: f64,
}

/// The shared store's refs and journal, as read before anything is
/// written here.
struct Remote {
    tags: Vec<RemoteTag>,
    models: Vec<RemoteModel>,
    streams: Vec<RemoteStream>,
    events: Vec<PortableEvent>,
    states: Vec<[u8; 32]>,
}

const ROWS_PER_FETCH: usize = 2048;

pub fn pull(store: &Store, request: &PullRequest) -> Result<PullReport> {
    let started = Instant::now();
    let mut remote = SharedStore::open(&request.url)?;
    let wanted = read_remote(&mut remote, request.tags.as_deref())?;
    store.read(|s| refuse_clashes(s, &wanted, remote.shown(), request.force))?;
    let mut report = PullReport {
        url: remote.shown().to_string(),
        ..Default::default()
    };
    receive_states(store, &mut remote, &wanted.states, &mut report)?;
    if request.tags.is_none() {
        report.objects_received = receive_objects(store, &mut remote)?;
        report.weights_files_received =
            receive_weights(store, &mut remote, &wanted.models, &wanted.events)?;
    }
    store.write(|s| land_refs(s, &wanted, &mut report))?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn read_remote(remote: &mut SharedStore, selection: Option<&str>) -> Result<Remote> {
    let mut tags = remote.tags()?;
    if let Some(glob) = selection {
        let pattern = wildmatch::WildMatch::new(glob);
        tags.retain(|t| pattern.matches(&t.name));
        if tags.is_empty() {
            bail!(
                "no tag on {} matches {glob}; nothing was pulled",
                remote.shown()
            );
        }
        let mut seen = HashSet::new();
        let states = tags
            .iter()
            .filter_map(|t| t.state[..].try_into().ok())
            .filter(|s: &[u8; 32]| seen.insert(*s))
            .collect();
        return Ok(Remote {
            tags,
            models: Vec::new(),
            streams: Vec::new(),
            events: Vec::new(),
            states,
        });
    }
    Ok(Remote {
        tags,
        models: remote.models()?,
        streams: remote.streams()?,
        events: remote.events()?,
        states: remote.all_ids(Table::States)?,
    })
}

/// Refuses, before anything is written, a local tag that names another
/// state, a local model of the same name with other weights, and a local
/// stream the shared store's journal never moved through (unless forced).
fn refuse_clashes(store: &Store, wanted: &Remote, shown: &str, force: bool) -> Result<()> {
    for m in &wanted.models {
        if let Some(here) = store.find_model(&m.name)? {
            if here.weights.bytes()[..] != m.weights[..] {
                bail!("model {} here has other weights than on {shown}; nothing was pulled; rename it here first (statectl model rename {} NEW)", m.name, m.name);
            }
        }
    }
    if force {
        return Ok(());
    }
    for t in &wanted.tags {
        if let Some(here) = store.tag(&t.name)? {
            if here.state.bytes()[..] != t.state[..] {
                bail!("tag {} names {} here and {} on {shown}; nothing was pulled; move it with --force, or pull other tags (--tags)", t.name, here.state.hex(), hex::encode(&t.state));
            }
        }
    }
    for s in &wanted.streams {
        let Some(model) = store.find_model(&s.model)? else {
            continue;
        };
        let Some(here) = store.stream(model.id, &s.name)? else {
            continue;
        };
        let passed = wanted.events.iter().any(|e| {
            e.moved_stream
                && e.model_name.as_deref() == Some(s.model.as_str())
                && e.stream.as_deref() == Some(s.name.as_str())
                && e.state_after.as_deref() == Some(&here.state.bytes()[..])
        });
        if here.state.bytes()[..] != s.state[..] && !passed {
            bail!("stream {}/{} is at {} here and at {} on {shown}, and neither follows from the other; nothing was pulled; push it, or take theirs with --force", s.model, s.name, here.state.hex(), hex::encode(&s.state));
        }
    }
    Ok(())
}

/// Receives the states this store lacks, their slots first, in bounded
/// transactions.
fn receive_states(
    store: &Store,
    remote: &mut SharedStore,
    states: &[[u8; 32]],
    report: &mut PullReport,
) -> Result<()> {
    let have: HashSet<StateId> = store.all_state_ids()?.into_iter().collect();
    let missing: Vec<[u8; 32]> = states
        .iter()
        .filter(|s| !have.contains(&StateId::from_slice(&s[..]).expect("32 bytes")))
        .copied()
        .collect();
    let slots_here: HashSet<SlotId> = store.all_slot_ids()?.into_iter().collect();
    for chunk in missing.chunks(ROWS_PER_FETCH) {
        let rows = remote.rows(Table::States, chunk)?;
        let mut records = Vec::with_capacity(rows.len());
        let mut slots = Vec::new();
        for row in &rows {
            let (id, layout, list): (&[u8], String, &[u8]) = (row.get(0), row.get(1), row.get(3));
            let list: Vec<SlotId> = list.chunks(32).filter_map(SlotId::from_slice).collect();
            slots.extend(
                list.iter()
                    .filter(|s| !slots_here.contains(s))
                    .map(|s| *s.bytes()),
            );
            records.push((StateId::from_slice(id), layout, list));
        }
        slots.sort_unstable();
        slots.dedup();
        receive_slots(store, remote, &slots, report)?;
        store.write(|s| -> Result<()> {
            for (id, layout, list) in &records {
                let Some(id) = id else { bail!("the shared store holds a state whose id is not 32 bytes; run statectl verify there") };
                s.put_foreign_state(id, layout, list)?;
            }
            Ok(())
        })?;
        report.states_received += records.len() as u64;
    }
    Ok(())
}

fn receive_slots(
    store: &Store,
    remote: &mut SharedStore,
    slots: &[[u8; 32]],
    report: &mut PullReport,
) -> Result<()> {
    for chunk in slots.chunks(ROWS_PER_FETCH) {
        let rows = remote.rows(Table::Slots, chunk)?;
        store.write(|s| -> Result<()> {
            for row in &rows {
                let (id, layout, bytes): (&[u8], &str, &[u8]) =
                    (row.get(0), row.get(1), row.get(2));
                let Some(id) = SlotId::from_slice(id) else {
                    bail!("the shared store holds a slot whose id is not 32 bytes")
                };
                s.put_foreign_slot(&id, layout, bytes)?;
                report.slot_bytes_received += bytes.len() as u64;
            }
            Ok(())
        })?;
        report.slots_received += rows.len() as u64;
    }
    Ok(())
}

fn receive_objects(store: &Store, remote: &mut SharedStore) -> Result<u64> {
    let have: HashSet<ObjectId> = store.all_object_ids()?.into_iter().collect();
    let missing: Vec<[u8; 32]> = remote
        .all_ids(Table::Objects)?
        .into_iter()
        .filter(|id| ObjectId::from_slice(id).is_some_and(|o| !have.contains(&o)))
        .collect();
    for chunk in missing.chunks(64) {
        let rows = remote.rows(Table::Objects, chunk)?;
        store.write(|s| -> Result<()> {
            for row in &rows {
                let (id, bytes): (&[u8], &[u8]) = (row.get(0), row.get(1));
                if let Some(id) = ObjectId::from_slice(id) {
                    s.put_foreign_object(&id, bytes)?;
                }
            }
            Ok(())
        })?;
    }
    Ok(missing.len() as u64)
}

/// Receives the weights files the pulled models and events name.
fn receive_weights(
    store: &Store,
    remote: &mut SharedStore,
    models: &[RemoteModel],
    events: &[PortableEvent],
) -> Result<u64> {
    let named = models
        .iter()
        .map(|m| &m.weights[..])
        .chain(events.iter().filter_map(|e| e.weights.as_deref()));
    let mut missing: Vec<[u8; 32]> = named
        .filter_map(WeightsId::from_slice)
        .filter(|w| !store.weights_path(w).is_file())
        .map(|w| *w.bytes())
        .collect();
    missing.sort_unstable();
    missing.dedup();
    for id in &missing {
        let rows = remote.rows(Table::WeightsFiles, std::slice::from_ref(id))?;
        let Some(row) = rows.first() else {
            bail!("the shared store names weights file {} but does not hold it; push it again from a store that has it", hex::encode(id));
        };
        let bytes: &[u8] = row.get(1);
        store.write(|s| -> Result<()> {
            let (got, _) = s.put_weights(bytes)?;
            if got.bytes() != id {
                s.remove_created_weights(&got);
                bail!("weights file {} from the shared store does not hash to its id; run statectl verify there", hex::encode(id));
            }
            Ok(())
        })?;
    }
    Ok(missing.len() as u64)
}

/// Models, the journal, tags and streams, in one transaction.
fn land_refs(store: &Store, wanted: &Remote, report: &mut PullReport) -> Result<()> {
    let mut model_ids: HashMap<String, (i64, Vec<u8>)> = HashMap::new();
    for m in &wanted.models {
        let here = match store.find_model(&m.name)? {
            Some(here) => here,
            None => {
                let Some(weights) = WeightsId::from_slice(&m.weights) else {
                    continue;
                };
                report.models_added += 1;
                store.insert_foreign_model(
                    &m.name,
                    &weights,
                    &m.config,
                    m.training.as_deref(),
                    m.created_at,
                )?
            }
        };
        model_ids.insert(m.name.clone(), (here.id, here.weights.bytes().to_vec()));
    }
    for e in &wanted.events {
        // An event names this store's model only when it ran on the same
        // weights (an event of a model since replaced names none).
        let model = e
            .model_name
            .as_ref()
            .and_then(|name| model_ids.get(name))
            .and_then(|(id, weights)| (e.weights.as_deref() == Some(&weights[..])).then_some(*id));
        report.events_received += store.put_foreign_event(e, model)? as u64;
    }
    for t in &wanted.tags {
        let Some(state) = StateId::from_slice(&t.state) else {
            continue;
        };
        if store.tag(&t.name)?.is_none_or(|here| here.state != state) {
            store.set_tag(&t.name, &state)?;
            report.tags_changed += 1;
        }
    }
    for s in &wanted.streams {
        let (Some((model, _)), Some(state)) =
            (model_ids.get(&s.model), StateId::from_slice(&s.state))
        else {
            continue;
        };
        if store
            .stream(*model, &s.name)?
            .is_none_or(|here| here.state != state)
        {
            store.put_stream_at(*model, &s.name, &state, s.updated_at)?;
            report.streams_moved += 1;
        }
    }
    Ok(())
}
