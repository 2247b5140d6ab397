//! Comparing two states of one layout and batch size: per tensor and per
//! slot, and with an input, how differently the model answers from each
//! (how stale one is for the other).

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

use super::backend::Backend;
use super::models::Model;
use super::predict::check_batch;
use super::refs::{Resolved, Scope};
use crate::id::StateId;
use crate::model::predict;
use crate::replay::{staleness, Staleness};
use crate::state::{compare, LayerDiff, SlotDiff};
use crate::store::Store;
use crate::tensors::Tensor;

/// What to compare.
pub struct DiffRequest<'a> {
    pub a: &'a str,
    pub b: &'a str,
    pub scope: Scope<'a>,
    /// Report each slot.
    pub per_slot: bool,
    /// Differences up to this size do not count as different.
    pub tolerance: Option<f64>,
    /// `[batch, steps, features]`: run the scope's model on it from both.
    pub input: Option<&'a Tensor>,
}

/// The comparison (the `diff` JSON).
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    pub a: StateId,
    pub b: StateId,
    pub layout: String,
    pub batch: usize,
    pub bit_equal: bool,
    pub max_abs: f64,
    pub tolerance: Option<f64>,
    /// Not bit-equal, or (with a tolerance) differing by more than it.
    pub different: bool,
    pub layers: Vec<LayerDiff>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<Vec<SlotDiff>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Staleness>,
    /// Every slot's comparison, also without `per_slot` (for the verdict).
    #[serde(skip)]
    pub all_slots: Vec<SlotDiff>,
}

pub fn run(store: &Store, req: &DiffRequest) -> Result<DiffReport> {
    run_on(&mut Backend::Embedded(store), req)
}

/// [`run`] on either backend.
pub fn run_on(backend: &mut Backend, req: &DiffRequest) -> Result<DiffReport> {
    let (a, b) = resolve_pair(backend, req)?;
    let cmp = compare(&a.value, &b.value);
    let outputs = match req.input {
        None => None,
        Some(x) => Some(outputs_staleness(backend, req.scope.model, x, &a, &b)?),
    };
    let different = match req.tolerance {
        Some(t) => cmp.max_abs > t,
        None => !cmp.bit_equal,
    };
    Ok(DiffReport {
        a: a.id,
        b: b.id,
        layout: a.value.layout.to_string(),
        batch: cmp.batch,
        bit_equal: cmp.bit_equal,
        max_abs: cmp.max_abs,
        tolerance: req.tolerance,
        different,
        layers: cmp.layers,
        slots: req.per_slot.then(|| cmp.slots.clone()),
        outputs,
        all_slots: cmp.slots,
    })
}

/// Both states, checked comparable; `zeros` takes the other's batch size.
fn resolve_pair(backend: &mut Backend, req: &DiffRequest) -> Result<(Resolved, Resolved)> {
    let mut resolve = |text: &str, zeros_batch: Option<usize>| -> Result<Resolved> {
        let scope = Scope {
            zeros_batch,
            ..req.scope
        };
        let mut found = backend.sources(&[text.to_string()], scope)?;
        found
            .pop()
            .ok_or_else(|| anyhow!("'{text}' named no state"))
    };
    let (a, b) = if req.a == "zeros" {
        let b = resolve(req.b, None)?;
        (resolve(req.a, Some(b.value.batch()))?, b)
    } else {
        let a = resolve(req.a, None)?;
        let batch = a.value.batch();
        (a, resolve(req.b, Some(batch))?)
    };
    if a.value.layout != b.value.layout {
        bail!(
            "cannot compare: {} has layout {} but {} has {}",
            req.a,
            a.value.layout,
            req.b,
            b.value.layout
        );
    }
    if a.value.batch() != b.value.batch() {
        bail!(
            "cannot compare: {} has {} slot(s) but {} has {}; restore a selection with --slots to compare like with like",
            req.a,
            a.value.batch(),
            req.b,
            b.value.batch()
        );
    }
    Ok((a, b))
}

/// How differently the model answers `x` from `a` and from `b`; per-step
/// outputs are compared at every step.
fn outputs_staleness(
    backend: &mut Backend,
    model: Option<&Model>,
    x: &Tensor,
    a: &Resolved,
    b: &Resolved,
) -> Result<Staleness> {
    let model = model.ok_or_else(|| {
        anyhow!("diff --input runs a model; this store has none: import or train one first")
    })?;
    model.check_layout(&a.value, &a.id.short())?;
    check_batch(&a.value, &a.id.short(), x.shape[0])?;
    let weights = backend.weights(model)?;
    let ya = predict(&weights, x, &a.value)?;
    let yb = predict(&weights, x, &b.value)?.outputs;
    let steps = if ya.shape.len() == 3 { ya.shape[1] } else { 1 };
    Ok(staleness(&ya.outputs, &yb, model.config.output_size, steps))
}
