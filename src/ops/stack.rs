//! Stack and split: building a batch from stored states, and one state per
//! slot, as R2D2's learner and actors do. Both write only slot lists (the
//! slots are stored already) and journal their sources, so every result
//! has lineage back to (source, slot).

use anyhow::{bail, Result};
use serde_json::json;

use super::backend::{Backend, Recorded, Recording};
use super::refs::{Resolved, Scope};
use super::tags::TagRequest;
use crate::id::StateId;
use crate::state::{Layout, StateValue};
use crate::store::Store;

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
    stack_on(&mut Backend::Embedded(store), refs, scope, tag)
}

/// [`stack`] on either backend.
pub fn stack_on(
    backend: &mut Backend,
    refs: &[String],
    scope: Scope,
    tag: Option<&TagRequest>,
) -> Result<Stacked> {
    let resolved = backend.sources(refs, scope)?;
    let mut sources = Vec::new();
    let mut layout: Option<Layout> = None;
    let mut slots = Vec::new();
    for (text, source) in refs.iter().zip(&resolved) {
        let this = &source.value.layout;
        match &layout {
            None => layout = Some(this.clone()),
            Some(l) if l != this => bail!(
                "cannot stack '{text}' ({}): it has layout {this} but the first state has {l}; stack states of one layout",
                source.id.short(),
            ),
            Some(_) => {}
        }
        crate::limits::check_batch(slots.len() + source.value.batch())?;
        slots.extend(source.value.slots.iter().cloned());
        sources.push((text.clone(), source.id, source.value.batch()));
    }
    let Some(layout) = layout else {
        bail!("stack needs at least one REF");
    };
    let batch = slots.len();
    let stacked = StateValue::new(layout.clone(), slots)?;
    let ids = backend.record(&Recording {
        model: scope.model,
        entries_name_model: false,
        input: None,
        unstored_sources: unstored(&resolved),
        results: vec![Recorded {
            value: stacked,
            kind: "stack",
            state_before: None,
            entry_tag: tag.map(|t| t.name.clone()),
            detail: json!({
                "sources": sources.iter().map(|(r, id, batch)| json!({"ref": r, "state": id.hex(), "batch": batch})).collect::<Vec<_>>(),
            }),
            tag: tag.cloned(),
        }],
    })?;
    Ok(Stacked {
        state: ids[0],
        batch,
        layout: layout.to_string(),
        sources,
    })
}

/// The sources a store does not hold yet (`zeros` of a new batch size).
fn unstored(sources: &[Resolved]) -> Vec<StateValue> {
    sources
        .iter()
        .filter(|s| !s.stored)
        .map(|s| s.value.clone())
        .collect()
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
    split_on(
        &mut Backend::Embedded(store),
        reference,
        scope,
        prefix,
        force,
    )
}

/// [`split`] on either backend.
pub fn split_on(
    backend: &mut Backend,
    reference: &str,
    scope: Scope,
    prefix: &str,
    force: bool,
) -> Result<(StateId, Vec<SplitState>)> {
    super::tags::check_tag_prefix(prefix)?;
    let resolved = backend.sources(&[reference.to_string()], scope)?;
    let source = &resolved[0];
    let results = (0..source.value.batch())
        .map(|slot| {
            let name = format!("{prefix}{slot}");
            Ok(Recorded {
                value: source.value.select(&[slot])?,
                kind: "split",
                state_before: Some(source.id),
                entry_tag: Some(name.clone()),
                detail: json!({"source": source.id.hex(), "slot": slot}),
                tag: Some(TagRequest { name, force }),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let tags: Vec<String> = results.iter().filter_map(|r| r.entry_tag.clone()).collect();
    let ids = backend.record(&Recording {
        model: scope.model,
        entries_name_model: false,
        input: None,
        unstored_sources: unstored(&resolved),
        results,
    })?;
    let out = ids
        .into_iter()
        .zip(tags)
        .enumerate()
        .map(|(slot, (state, tag))| SplitState { slot, state, tag })
        .collect();
    Ok((source.id, out))
}
