//! Stack and split: building a batch from stored states, and one state per
//! slot, as R2D2's learner and actors do. Both write only slot lists (the
//! slots are stored already) and journal their sources, so every result
//! has lineage back to (source, slot).

use anyhow::{bail, Result};
use serde_json::json;

use super::refs::{self, Scope};
use super::tags::{self, TagRequest};
use crate::id::StateId;
use crate::store::{NewEvent, Store};

/// A stacked state and what it was made of.
#[derive(Debug, Clone)]
pub struct Stacked {
    pub state: StateId,
    pub layout: String,
    pub batch: usize,
    /// (ref as given, state id, its batch size), in order.
    pub sources: Vec<(String, StateId, usize)>,
}

/// Concatenates the states `refs` name (one layout, any batch sizes), in
/// order, into one state.
pub fn stack(
    store: &Store,
    refs: &[String],
    scope: Scope,
    tag: Option<&TagRequest>,
) -> Result<Stacked> {
    store.write(|store| {
        let mut sources = Vec::new();
        let mut layout: Option<String> = None;
        let mut slots = Vec::new();
        for text in refs {
            let resolved = refs::resolve(store, text, scope)?;
            if !resolved.stored {
                store.put_state(&resolved.value)?;
            }
            let record = store.state_record(&resolved.id)?;
            match &layout {
                None => layout = Some(record.layout.clone()),
                Some(l) if *l != record.layout => bail!(
                    "cannot stack '{text}' ({}): it has layout {} but the first state has {l}; stack states of one layout",
                    resolved.id.short(),
                    record.layout
                ),
                Some(_) => {}
            }
            crate::limits::check_batch(slots.len() + record.slots.len())?;
            slots.extend(record.slots.iter().copied());
            sources.push((text.clone(), resolved.id, record.slots.len()));
        }
        let layout = layout.unwrap_or_default();
        let state = store.put_slot_list(&layout, &slots)?;
        store.append_event(&NewEvent {
            kind: "stack",
            state_after: Some(state),
            tag: tag.map(|t| t.name.clone()),
            detail: json!({
                "sources": sources.iter().map(|(r, id, batch)| json!({"ref": r, "state": id.hex(), "batch": batch})).collect::<Vec<_>>(),
            }),
            ..Default::default()
        })?;
        if let Some(tag) = tag {
            tags::apply(store, tag, &state, scope.model)?;
        }
        Ok(Stacked {
            state,
            batch: slots.len(),
            layout,
            sources,
        })
    })
}

/// One state of a split: slot `slot` of the source.
#[derive(Debug, Clone)]
pub struct SplitState {
    pub slot: usize,
    pub state: StateId,
    pub tag: String,
}

/// One one-slot state per slot of `reference`, tagged `prefix` + slot.
pub fn split(
    store: &Store,
    reference: &str,
    scope: Scope,
    prefix: &str,
    force: bool,
) -> Result<(StateId, Vec<SplitState>)> {
    super::tags::check_tag_prefix(prefix)?;
    store.write(|store| {
        let resolved = refs::resolve(store, reference, scope)?;
        if !resolved.stored {
            store.put_state(&resolved.value)?;
        }
        let record = store.state_record(&resolved.id)?;
        let mut out = Vec::new();
        for (slot, slot_id) in record.slots.iter().enumerate() {
            let state = store.put_slot_list(&record.layout, &[*slot_id])?;
            let tag = TagRequest {
                name: format!("{prefix}{slot}"),
                force,
            };
            store.append_event(&NewEvent {
                kind: "split",
                state_before: Some(resolved.id),
                state_after: Some(state),
                tag: Some(tag.name.clone()),
                detail: json!({"source": resolved.id.hex(), "slot": slot}),
                ..Default::default()
            })?;
            tags::apply(store, &tag, &state, scope.model)?;
            out.push(SplitState {
                slot,
                state,
                tag: tag.name,
            });
        }
        Ok((resolved.id, out))
    })
}
