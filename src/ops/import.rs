//! State import: the states of a safetensors file (one, its slots as
//! one-slot states, or several named ones) land in one transaction, with
//! their tags, or none of them do.

use anyhow::{bail, Result};
use serde_json::json;

use super::tags::{self, TagRequest};
use crate::id::{SlotId, StateId};
use crate::state::slot_file::SlotFile;
use crate::state::tensor_slots::TensorSlots;
use crate::state::{slot_id, state_id, FileStates, Layout, StateValue};
use crate::store::{NewEvent, Store};

pub struct ImportRequest<'a> {
    /// Where the file came from, for the journal.
    pub file_name: &'a str,
    pub states: FileStates,
    pub per_slot: bool,
    pub tag: Option<String>,
    pub tag_prefix: Option<String>,
    pub force: bool,
    pub allow_nonfinite: bool,
}

/// One state stored.
#[derive(Debug, Clone)]
pub struct ImportedState {
    /// Where in the file it came from: "the state", "slot 3", "state 'a'".
    pub from: String,
    pub state: StateId,
    pub value: StateValue,
    pub tag: Option<String>,
}

/// The states a request stores: where each came from, its tag, its value.
pub(super) fn items(req: ImportRequest) -> Result<Vec<(String, Option<String>, StateValue)>> {
    let prefix = req.tag_prefix.as_deref();
    if let Some(prefix) = prefix {
        tags::check_tag_prefix(prefix)?;
    }
    Ok(match (req.states, req.per_slot) {
        (FileStates::Single(value), false) => {
            if prefix.is_some() {
                bail!("--tag-prefix names many states; this file holds one: use --tag NAME (or --per-slot to split it)");
            }
            vec![("the state".into(), req.tag, value)]
        }
        (FileStates::Single(value), true) => {
            let layout = value.layout.clone();
            value
                .slots
                .into_iter()
                .enumerate()
                .map(|(slot, values)| {
                    Ok((
                        format!("slot {slot}"),
                        prefix.map(|p| format!("{p}{slot}")),
                        StateValue::new(layout.clone(), vec![values])?,
                    ))
                })
                .collect::<Result<_>>()?
        }
        (FileStates::Named(_), true) => {
            bail!("--per-slot splits a file of one state; this file holds named states")
        }
        (FileStates::Named(list), false) => list
            .into_iter()
            .map(|(name, value)| {
                (
                    format!("state '{name}'"),
                    prefix.map(|p| format!("{p}{name}")),
                    value,
                )
            })
            .collect(),
    })
}

pub fn run(store: &Store, req: ImportRequest) -> Result<Vec<ImportedState>> {
    let file_name = req.file_name.to_string();
    let (force, allow_nonfinite) = (req.force, req.allow_nonfinite);
    let items = items(req)?;
    if !allow_nonfinite {
        if let Some((from, _, _)) = items.iter().find(|(_, _, v)| !v.is_finite()) {
            bail!(
                "{from} holds NaN or infinite values; pass --allow-nonfinite to store them anyway"
            );
        }
    }
    let imported: Vec<ImportedState> = items
        .into_iter()
        .map(|(from, tag, value)| ImportedState {
            from,
            state: value.id(),
            value,
            tag,
        })
        .collect();
    for item in &imported {
        if let Some(tag) = &item.tag {
            tags::check_tag_name(tag)?;
        }
    }
    store.write(|store| -> Result<()> {
        let mut collisions = Vec::new();
        for item in &imported {
            if let Some(tag) = &item.tag {
                if let Some(existing) = store.tag(tag)? {
                    if existing.state != item.state && !force {
                        collisions.push(tag.clone());
                    }
                }
            }
        }
        if !collisions.is_empty() {
            let shown: Vec<&str> = collisions.iter().take(5).map(|s| s.as_str()).collect();
            bail!(
                "{} tag(s) already name other states ({}{}); pick another --tag/--tag-prefix or pass --force to move them",
                collisions.len(),
                shown.join(", "),
                if collisions.len() > 5 { ", ..." } else { "" }
            );
        }
        for item in &imported {
            store.put_state(&item.value)?;
            store.append_event(&NewEvent {
                kind: "import",
                state_after: Some(item.state),
                detail: json!({"file": file_name, "from": item.from}),
                ..Default::default()
            })?;
            if let Some(tag) = &item.tag {
                tags::apply(
                    store,
                    &TagRequest {
                        name: tag.clone(),
                        force: true,
                    },
                    &item.state,
                    None,
                )?;
            }
        }
        Ok(())
    })?;
    Ok(imported)
}

/// Where a per-slot import reads its slots: a file read a band at a time
/// (`import --per-slot`), or a state already in memory (the Python
/// package's `put_states`).
pub trait SlotSource {
    fn layout(&self) -> &Layout;
    /// How many slots.
    fn batch(&self) -> usize;
    /// Slots `range`, encoded (little-endian f32 in layout order), one
    /// after another, into `out`.
    fn read(&mut self, range: std::ops::Range<usize>, out: &mut Vec<u8>) -> Result<(), String>;
    /// The state id the source says it holds (a file's metadata), if any.
    fn stated_state(&self) -> Option<&str> {
        None
    }
}

impl SlotSource for SlotFile {
    fn layout(&self) -> &Layout {
        &self.layout
    }
    fn batch(&self) -> usize {
        self.batch
    }
    fn read(&mut self, range: std::ops::Range<usize>, out: &mut Vec<u8>) -> Result<(), String> {
        SlotFile::read(self, range, out)
    }
    fn stated_state(&self) -> Option<&str> {
        self.stated_state.as_deref()
    }
}

impl<D: AsRef<[f32]>> SlotSource for TensorSlots<D> {
    fn layout(&self) -> &Layout {
        &self.layout
    }
    fn batch(&self) -> usize {
        self.batch
    }
    fn read(&mut self, range: std::ops::Range<usize>, out: &mut Vec<u8>) -> Result<(), String> {
        out.clear();
        for slot in range {
            self.append_slot(slot, out);
        }
        Ok(())
    }
}

/// How the states of a per-slot import are tagged.
#[derive(Debug, Clone, Default)]
pub enum SlotTags {
    #[default]
    None,
    /// Slot i is tagged prefix + i.
    Prefix(String),
    /// Slot i is tagged with the i-th name (one per slot).
    Names(Vec<String>),
}

impl SlotTags {
    pub(super) fn of(&self, slot: usize) -> Option<String> {
        match self {
            SlotTags::None => None,
            SlotTags::Prefix(p) => Some(format!("{p}{slot}")),
            SlotTags::Names(names) => names.get(slot).cloned(),
        }
    }
}

/// A per-slot import: every slot of the source becomes a one-slot state.
pub struct PerSlotImport<'a, S: SlotSource> {
    /// Where the slots came from, for the journal.
    pub file_name: &'a str,
    pub file: S,
    pub tags: SlotTags,
    pub force: bool,
    pub allow_nonfinite: bool,
}

/// What a per-slot import stored.
#[derive(Debug, Clone)]
pub struct PerSlotReport {
    pub layout: Layout,
    /// One state per slot, in file order (slot i's tag is prefix + i).
    pub states: Vec<StateId>,
    pub tag_prefix: Option<String>,
    /// The one journal entry.
    pub event: i64,
}

/// Slots read and written per band, at most: bounded memory whatever the
/// file.
const SLOTS_PER_BAND: usize = 4096;
/// Bytes per band, at most (bands of wide slots hold fewer slots): the
/// reader runs a band ahead, so up to three bands are in memory at once.
/// Small enough that a band read, hashed and written stays in the cores'
/// caches, and that a call's fresh buffers cost few page faults (larger
/// bands were slower and held twice the memory).
const BYTES_PER_BAND: usize = 1 << 20;
/// From this size on a slot's bytes skip the staging table.
const LARGE_SLOT_BYTES: usize = 1024;

/// One band of slots, read and hashed.
struct HashedBand {
    /// The index of its first slot.
    start: usize,
    bytes: Vec<u8>,
    hashed: Vec<(SlotId, StateId, bool)>,
}

/// Reads and hashes the source's bands on another thread, one band ahead
/// of `store_band`, which runs on this one (the store stays on its
/// thread), so reading and hashing overlap with writing. Bands arrive in
/// order; their buffers go back to the reader for reuse. The first error
/// on either side ends both.
fn pipelined_bands<S: SlotSource + Send>(
    source: &mut S,
    n: usize,
    per_slot: usize,
    layout: &str,
    mut store_band: impl FnMut(&HashedBand) -> Result<()>,
) -> Result<()> {
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<HashedBand, String>>(1);
    let (spent_tx, spent_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let band_slots = (BYTES_PER_BAND / per_slot.max(1)).clamp(1, SLOTS_PER_BAND);
            let mut start = 0;
            while start < n {
                let end = (start + band_slots).min(n);
                let mut bytes = spent_rx.try_recv().unwrap_or_default();
                // Hashed in the process's own pool: this thread belongs to
                // no pool, and rayon's global one may not exist after a fork.
                let band = source.read(start..end, &mut bytes).map(|()| HashedBand {
                    start,
                    hashed: crate::parallel::pool().install(|| hash_band(&bytes, per_slot, layout)),
                    bytes,
                });
                let failed = band.is_err();
                // A closed channel: the writer stopped on an error.
                if ready_tx.send(band).is_err() || failed {
                    return;
                }
                start = end;
            }
        });
        // Dropping the receiver on an error unblocks and stops the reader.
        for band in ready_rx {
            let band = band.map_err(|e| anyhow::anyhow!(e))?;
            store_band(&band)?;
            let _ = spent_tx.send(band.bytes);
        }
        Ok(())
    })
}

/// Appends the band's slots `run` (neighbours) to the pack in one write.
fn append_run(
    pack: &mut crate::store::PackAppender,
    band: &HashedBand,
    run: std::ops::Range<usize>,
    per_slot: usize,
    packed: &mut Vec<(SlotId, crate::store::PackedAt)>,
) -> Result<()> {
    let at = pack.append(&band.bytes[run.start * per_slot..run.end * per_slot])?;
    for (k, j) in run.enumerate() {
        let offset = at.offset + (k * per_slot) as u64;
        packed.push((
            band.hashed[j].0,
            crate::store::PackedAt {
                offset,
                length: per_slot as u64,
                ..at
            },
        ));
    }
    Ok(())
}

/// Each slot of a band: its id, its one-slot state's id, and whether all
/// its values are finite. Slots are independent, so the band is split
/// across threads; the results come back in slot order.
fn hash_band(band: &[u8], per_slot: usize, layout: &str) -> Vec<(SlotId, StateId, bool)> {
    use rayon::prelude::*;
    band.par_chunks_exact(per_slot)
        .with_min_len(64)
        .map(|bytes| {
            // Non-finite: every exponent bit set (NaN or infinity).
            let finite = bytes
                .chunks_exact(4)
                .all(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & 0x7f80_0000 != 0x7f80_0000);
            let slot = slot_id(layout, bytes);
            (slot, state_id(layout, &[slot]), finite)
        })
        .collect()
}

/// One name a slot, and no name for two slots (it would stay on whichever
/// the sorted copy met last: refused, as one tag names one state).
pub(super) fn check_slot_names(tags: &SlotTags, n: usize) -> Result<()> {
    let SlotTags::Names(names) = tags else {
        return Ok(());
    };
    if names.len() != n {
        bail!(
            "{} tag name(s) for {n} slot(s); give one name per slot",
            names.len()
        );
    }
    let mut first_slot = std::collections::HashMap::with_capacity(n);
    for (slot, name) in names.iter().enumerate() {
        if let Some(earlier) = first_slot.insert(name.as_str(), slot) {
            bail!("tag name '{name}' is given to slots {earlier} and {slot}; give each slot its own name");
        }
    }
    Ok(())
}

/// Refuses staged tags that already name other states.
fn refuse_tag_collisions(store: &Store) -> Result<()> {
    let (count, shown) = store.staged_tag_collisions(5)?;
    if count > 0 {
        bail!(
            "{count} tag(s) already name other states ({}{}); pick another --tag-prefix or pass --force to move them",
            shown.join(", "),
            if count > 5 { ", ..." } else { "" }
        );
    }
    Ok(())
}

/// Moves the staged rows into the store. With a pack, the rows go in
/// while the pack's bytes go to disk; the transaction commits only after
/// both.
fn commit_staged(
    store: &Store,
    pack: Option<crate::store::PackAppender>,
    mut packed: Vec<(SlotId, crate::store::PackedAt)>,
    layout: &str,
    event: i64,
    staged_tags: usize,
) -> Result<()> {
    match pack {
        Some(pack) => {
            let (number, end) = pack.end();
            pack.finish_while(|| {
                store.record_pack_length(number, end)?;
                packed.sort_unstable_by_key(|(id, _)| *id);
                for (id, at) in &packed {
                    store.put_packed_slot(layout, id, *at)?;
                }
                Ok::<(), anyhow::Error>(store.stage_commit(layout, event, true, staged_tags)?)
            })?
        }
        None => store.stage_commit(layout, event, false, staged_tags)?,
    }
    Ok(())
}

/// A file that names the state it holds must hash to it.
fn check_stated_state(stated: &str, layout: &str, slots: &[SlotId]) -> Result<()> {
    let id = state_id(layout, slots);
    if !stated.eq_ignore_ascii_case(&id.hex()) {
        bail!("the file says it holds state {stated} but its values hash to {}; the file was changed after export", id.hex());
    }
    Ok(())
}

/// Stores every slot of the file as a one-slot state (tagged prefix + i),
/// all in one transaction under one journal entry, or nothing: a bad slot,
/// a tag collision or a failed write rolls the whole import back.
pub fn run_per_slot<S: SlotSource + Send>(
    store: &Store,
    mut req: PerSlotImport<S>,
) -> Result<PerSlotReport> {
    let layout = req.file.layout().clone();
    let layout_text = layout.to_string();
    let (n, per_slot) = (req.file.batch(), layout.slot_len() * 4);
    check_slot_names(&req.tags, n)?;
    // Slots this large go to a pack as they are read (in file order,
    // written once), not through the staging table and its sort.
    let large = per_slot >= LARGE_SLOT_BYTES;
    let prefix = match &req.tags {
        SlotTags::Prefix(p) => Some(p.clone()),
        _ => None,
    };
    if let Some(prefix) = &prefix {
        tags::check_tag_prefix(prefix)?;
    }
    let (states, event) = store.write(|store| -> Result<(Vec<StateId>, i64)> {
        store.sort_with_helpers()?;
        let mut detail = json!({"file": req.file_name, "per_slot": true, "count": n, "layout": layout_text, "tag_prefix": prefix});
        if matches!(req.tags, SlotTags::Names(_)) {
            detail["tags"] = json!("one per slot");
        }
        let event = store.append_event(&NewEvent {
            kind: "import",
            detail,
            ..Default::default()
        })?;
        let mut states = Vec::with_capacity(n);
        let mut slots = Vec::with_capacity(n);
        // Large slots: appended to a pack the moment they are hashed (the
        // bytes stored are the bytes hashed), once each; their rows go in
        // afterwards, in key order.
        let mut pack = if large { Some(store.pack_appender()?) } else { None };
        // Sized once for every slot of the file: growing them rehashed and
        // copied, on fresh pages, a tenth of a large import's time.
        let expected = if large { n } else { 0 };
        let mut packed: Vec<(SlotId, crate::store::PackedAt)> = Vec::with_capacity(expected);
        let mut seen = std::collections::HashMap::with_capacity(expected);
        store.stage_begin()?;
        let mut stager = store.stager()?;
        let mut staged_tags = 0;
        let (file, tags) = (&mut req.file, &req.tags);
        pipelined_bands(file, n, per_slot, &layout_text, |band| {
            // Slots new to the store, as runs of neighbours: one write each.
            let mut run: Option<std::ops::Range<usize>> = None;
            for (j, (slot, state, finite)) in band.hashed.iter().enumerate() {
                let i = band.start + j;
                if !req.allow_nonfinite && !finite {
                    bail!("slot {i} holds NaN or infinite values; pass --allow-nonfinite to store them anyway");
                }
                let tag = tags.of(i);
                if let Some(tag) = &tag {
                    tags::check_tag_name(tag)?;
                }
                let bytes = &band.bytes[j * per_slot..(j + 1) * per_slot];
                // Where the slot's bytes are (or land), for its state's
                // row: a slot seen before in this file or stored before
                // keeps its place.
                let mut packed_at = None;
                if let Some(pack) = pack.as_mut() {
                    let known = match seen.get(slot) {
                        Some(place) => Some(*place),
                        None => store
                            .slot_place(slot)?
                            .map(|place| place.map(|at| (at.pack, at.offset))),
                    };
                    if let Some(place) = known {
                        packed_at = place;
                    } else {
                        let r = match run.take() {
                            Some(r) if r.end == j => r.start..j + 1,
                            Some(r) => {
                                append_run(pack, band, r, per_slot, &mut packed)?;
                                j..j + 1
                            }
                            None => j..j + 1,
                        };
                        // The run is not written yet: it starts at the
                        // pack's end, and its slots follow each other.
                        let (number, end) = pack.end();
                        packed_at = Some((number, end + ((j - r.start) * per_slot) as u64));
                        run = Some(r);
                    }
                    seen.insert(*slot, packed_at);
                }
                let staged: &[u8] = if large { &[] } else { bytes };
                staged_tags += usize::from(tag.is_some());
                stager.stage(slot, staged, state, tag.as_deref(), packed_at)?;
                slots.push(*slot);
                states.push(*state);
            }
            if let Some(pack) = pack.as_mut() {
                if let Some(r) = run {
                    append_run(pack, band, r, per_slot, &mut packed)?;
                }
                pack.start_writeback()?;
            }
            Ok(())
        })?;
        drop(stager);
        if !req.force {
            refuse_tag_collisions(store)?;
        }
        commit_staged(store, pack, packed, &layout_text, event, staged_tags)?;
        if let Some(stated) = req.file.stated_state() {
            check_stated_state(stated, &layout_text, &slots)?;
        }
        Ok((states, event))
    })?;
    Ok(PerSlotReport {
        layout,
        states,
        tag_prefix: prefix,
        event,
    })
}
