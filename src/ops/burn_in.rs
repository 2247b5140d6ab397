//! Burn-in (R2D2): run a prefix from stored state(s) and store what it
//! leaves, with lineage, touching no stream. With `per_slot`, each source
//! is a one-slot state for one sequence (row) of the prefix; they run as
//! one batch and come back as one-slot states.

use anyhow::{bail, Result};
use serde_json::json;

use super::backend::{Backend, Recorded, Recording};
use super::models::Model;
use super::predict::{check_batch, input_file};
use super::refs::Scope;
use super::tags::TagRequest;
use crate::id::StateId;
use crate::model::predict;
use crate::state::StateValue;
use crate::store::Store;
use crate::tensors::Tensor;

pub struct BurnInRequest<'a> {
    pub model: &'a Model,
    pub references: &'a [String],
    /// The prefix, `[batch, steps, features]`.
    pub x: &'a Tensor,
    pub per_slot: bool,
    pub tag: Option<TagRequest>,
    /// Per-slot results are tagged with the prefix plus their source's name
    /// (the ref as given): `burned/` and `seq3` give `burned/seq3`.
    pub tag_prefix: Option<String>,
    /// What the prefix is followed by.
    pub tag_by: TagBy,
    pub force: bool,
}

/// How `tag_prefix` names each per-slot result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagBy {
    /// The source as it was named: `burned/seq3`.
    #[default]
    Source,
    /// The row of the prefix: `burned/0`, `burned/1`, ... (sampled sources
    /// repeat: every episode starts at the zero state).
    Row,
}

/// What burn-in stored (the `burn-in` JSON).
#[derive(Debug, Clone, serde::Serialize)]
pub struct BurnInReport {
    pub model: String,
    /// The prefix's length.
    pub steps: usize,
    pub states: Vec<BurnedState>,
    /// The one result's state, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<StateId>,
}

/// One stored result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BurnedState {
    /// The source as it was named (a tag, an id prefix, ...).
    pub from: String,
    pub source: StateId,
    pub state: StateId,
    pub tag: Option<String>,
}

pub fn run(store: &Store, req: &BurnInRequest) -> Result<BurnInReport> {
    run_on(&mut Backend::Embedded(store), req)
}

/// [`run`] on either backend.
pub fn run_on(backend: &mut Backend, req: &BurnInRequest) -> Result<BurnInReport> {
    let states = burn(backend, req)?;
    Ok(BurnInReport {
        model: req.model.record.name.clone(),
        steps: req.x.shape[1],
        state: match states.as_slice() {
            [one] => Some(one.state),
            _ => None,
        },
        states,
    })
}

fn burn(backend: &mut Backend, req: &BurnInRequest) -> Result<Vec<BurnedState>> {
    let model = req.model;
    let rows = req.x.shape[0];
    if !req.per_slot && req.references.len() > 1 {
        bail!("several REFs need --per-slot (one one-slot state per sequence of the prefix)");
    }
    if req.per_slot && req.references.len() != rows {
        bail!(
            "--per-slot needs one state per sequence: {} REF(s) for {rows} sequence(s) in the prefix",
            req.references.len(),
        );
    }
    if req.tag_prefix.is_some() && !req.per_slot {
        bail!("--tag-prefix names per-slot results; use --tag NAME for one state");
    }
    if let Some(prefix) = &req.tag_prefix {
        super::tags::check_tag_prefix(prefix)?;
    }
    let weights = backend.weights(model)?;
    let scope = Scope {
        model: Some(model),
        stream: "main",
        zeros_batch: Some(if req.per_slot { 1 } else { rows }),
    };
    let sources = backend.sources(req.references, scope)?;
    for (reference, state) in req.references.iter().zip(&sources) {
        model.check_layout(&state.value, &state.id.short())?;
        if req.per_slot && state.value.batch() != 1 {
            bail!(
                "--per-slot wants one-slot states, but '{reference}' ({}) has {} slots",
                state.id.short(),
                state.value.batch()
            );
        }
    }
    let start = StateValue::new(
        model.config.layout(),
        sources.iter().flat_map(|s| s.value.slots.clone()).collect(),
    )?;
    check_batch(&start, &sources[0].id.short(), rows)?;
    let burned = predict(&weights, req.x, &start)?.state;
    // (source, result, tag) per result.
    let results: Vec<(usize, StateValue, Option<TagRequest>)> = if req.per_slot {
        (0..rows)
            .map(|i| {
                Ok((
                    i,
                    burned.select(&[i])?,
                    req.tag_prefix.as_ref().map(|p| TagRequest {
                        name: match req.tag_by {
                            TagBy::Source => format!("{p}{}", req.references[i]),
                            TagBy::Row => format!("{p}{i}"),
                        },
                        force: req.force,
                    }),
                ))
            })
            .collect::<Result<_>>()?
    } else {
        vec![(0, burned, req.tag.clone())]
    };
    check_tags_unique(req, &results)?;
    let mut unstored: Vec<StateValue> = Vec::new();
    for source in sources.iter().filter(|s| !s.stored) {
        if !unstored.iter().any(|u| u.id() == source.id) {
            unstored.push(source.value.clone());
        }
    }
    let recorded = results
        .iter()
        .map(|(i, value, tag)| Recorded {
            value: value.clone(),
            kind: "burn-in",
            state_before: Some(sources[*i].id),
            entry_tag: None,
            detail: json!({"row": if req.per_slot { Some(i) } else { None }, "steps": req.x.shape[1], "platform": super::platform(), "kernel": crate::kernels::Kernel::default().name()}),
            tag: tag.clone(),
        })
        .collect();
    let ids = backend.record(&Recording {
        model: Some(model),
        entries_name_model: true,
        input: Some(input_file(req.x).encode()),
        unstored_sources: unstored,
        results: recorded,
    })?;
    Ok(results
        .iter()
        .zip(ids)
        .map(|((i, _, tag), state)| BurnedState {
            from: req.references[*i].clone(),
            source: sources[*i].id,
            state,
            tag: tag.as_ref().map(|t| t.name.clone()),
        })
        .collect())
}

/// Refuses, before anything is written, two rows whose results would take
/// one tag name with different states (a source sampled twice with
/// different sequences), pointing to naming by row.
fn check_tags_unique(
    req: &BurnInRequest,
    results: &[(usize, StateValue, Option<TagRequest>)],
) -> Result<()> {
    let mut named = std::collections::HashMap::new();
    for (row, value, tag) in results {
        let Some(tag) = tag else { continue };
        let id = value.id();
        if let Some((first, first_id)) = named.insert(tag.name.as_str(), (*row, id)) {
            if first_id != id {
                bail!(
                    "rows {first} and {row} both start from '{}' and give different states, which would both be tagged '{}'; name the results by row instead: --tag-by row (Python: tag_by=\"row\")",
                    req.references[*row],
                    tag.name
                );
            }
        }
    }
    Ok(())
}
