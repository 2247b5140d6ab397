//! Imports written straight to a shared store (`statectl --store URL
//! import`, the Python package's `Store(url).put_states`): the same checks
//! and the same ids as an import into a local store, with the same journal
//! entries, in one transaction on the server.

use anyhow::{bail, Result};
use serde_json::json;

use super::import::{self, ImportRequest, ImportedState, SlotTags};
use super::tags;
use crate::shared::{DirectEntry, DirectState, DirectWrite, DirectWritten, SharedStore};
use crate::state::{FileStates, StateValue};

/// What a direct import stored, and what was new on the server.
pub struct SharedImport {
    pub states: Vec<ImportedState>,
    pub written: DirectWritten,
}

/// Stores a file's states (one, its slots, or named ones) on the shared
/// store, with their tags; all of them, or none.
pub fn run(shared: &mut SharedStore, req: ImportRequest) -> Result<SharedImport> {
    let per_slot = req.per_slot.then(|| {
        json!({"file": req.file_name, "per_slot": true, "layout": layout_of(&req.states), "tag_prefix": req.tag_prefix})
    });
    let (file_name, force, allow_nonfinite) =
        (req.file_name.to_string(), req.force, req.allow_nonfinite);
    let items = import::items(req)?;
    write(shared, &file_name, items, per_slot, force, allow_nonfinite)
}

/// Stores every slot of `value` as a one-slot state, slot i tagged as
/// `tags` says, under one journal entry.
pub fn put_slots(
    shared: &mut SharedStore,
    file_name: &str,
    value: StateValue,
    tags: SlotTags,
    force: bool,
    allow_nonfinite: bool,
) -> Result<SharedImport> {
    import::check_slot_names(&tags, value.batch())?;
    if let SlotTags::Prefix(prefix) = &tags {
        tags::check_tag_prefix(prefix)?;
    }
    let mut detail = json!({"file": file_name, "per_slot": true, "layout": value.layout.to_string(), "tag_prefix": match &tags { SlotTags::Prefix(p) => Some(p.clone()), _ => None }});
    if matches!(tags, SlotTags::Names(_)) {
        detail["tags"] = json!("one per slot");
    }
    let layout = value.layout.clone();
    let items = value
        .slots
        .into_iter()
        .enumerate()
        .map(|(slot, values)| {
            let one = StateValue::new(layout.clone(), vec![values])?;
            Ok((format!("slot {slot}"), tags.of(slot), one))
        })
        .collect::<Result<Vec<_>>>()?;
    write(
        shared,
        file_name,
        items,
        Some(detail),
        force,
        allow_nonfinite,
    )
}

fn layout_of(states: &FileStates) -> Option<String> {
    match states {
        FileStates::Single(value) => Some(value.layout.to_string()),
        FileStates::Named(_) => None,
    }
}

/// The checks an import into a local store makes, then one transaction:
/// per-slot imports under one journal entry, others one entry per state
/// and one per tag set.
fn write(
    shared: &mut SharedStore,
    file_name: &str,
    items: Vec<(String, Option<String>, StateValue)>,
    per_slot: Option<serde_json::Value>,
    force: bool,
    allow_nonfinite: bool,
) -> Result<SharedImport> {
    for (from, tag, value) in &items {
        if !allow_nonfinite && !value.is_finite() {
            bail!(
                "{from} holds NaN or infinite values; pass --allow-nonfinite to store them anyway"
            );
        }
        if let Some(tag) = tag {
            tags::check_tag_name(tag)?;
        }
    }
    let direct: Vec<DirectState> = items
        .iter()
        .map(|(_, tag, value)| DirectState::of(value, tag.clone()))
        .collect();
    let entries = match &per_slot {
        Some(detail) => {
            let mut detail = detail.clone();
            detail["count"] = json!(items.len());
            vec![DirectEntry {
                kind: "import",
                detail: detail.to_string(),
                ..Default::default()
            }]
        }
        None => items
            .iter()
            .zip(&direct)
            .map(|((from, _, _), state)| DirectEntry {
                kind: "import",
                state_after: Some(state.id),
                detail: json!({"file": file_name, "from": from}).to_string(),
                ..Default::default()
            })
            .collect(),
    };
    let written = shared.write_states(&DirectWrite {
        states: &direct,
        entries,
        tag_entries: per_slot.is_none(),
        force,
        objects: &[],
        model: None,
        stream: None,
    })?;
    let states = items
        .into_iter()
        .zip(&direct)
        .map(|((from, tag, value), state)| ImportedState {
            from,
            state: state.id,
            value,
            tag,
        })
        .collect();
    Ok(SharedImport { states, written })
}
