//! Audit: replay recorded predict events (and training runs) and check
//! outputs and new states bit for bit. A replay that cannot run (damaged or
//! missing data) is reported as failed with the reason, never as a numeric
//! mismatch. Reads one snapshot of the store; writes nothing.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

use super::backend::Backend;
use super::train::{self, TrainingRecord};
use crate::id::{Digest, StateId, WeightsId};
use crate::kernels::Kernel;
use crate::model::{predict_with, Weights};
use crate::replay::{divergence, Divergence};
use crate::store::{EventRecord, ModelRecord, Store};
use crate::tensors::TensorFile;
use crate::train::Progress;

/// Which recorded predictions (and trainings) to replay.
#[derive(Debug, Clone, Default)]
pub struct AuditRequest {
    pub model: Option<String>,
    pub stream: Option<String>,
    /// Only these event numbers.
    pub events: Vec<i64>,
    /// Only events at or after this time (ms since the epoch).
    pub since: Option<i64>,
    /// Only the events that produced this tag's state.
    pub tag: Option<String>,
    /// Accept differences up to this (absolute).
    pub tolerance: Option<f64>,
    /// Rerun the training of this model (`Some("")`: of every trained model).
    pub train: Option<String>,
    /// An audit that matches nothing is not an error.
    pub allow_empty: bool,
}

/// What an audit found (the `audit` JSON).
#[derive(Debug, Serialize)]
pub struct AuditReport {
    /// Nothing mismatched or failed, and every training reproduced.
    pub ok: bool,
    pub events: Vec<EventAudit>,
    pub reproduced: usize,
    pub within_tolerance: usize,
    pub mismatched: usize,
    pub failed: usize,
    pub tolerance: Option<f64>,
    pub training: Vec<TrainAudit>,
    /// Where the replays ran.
    pub platform: serde_json::Value,
    /// Time the predict replays took.
    pub seconds: f64,
}

impl AuditReport {
    pub fn count(&self, status: &str) -> usize {
        self.events.iter().filter(|e| e.status == status).count()
    }

    fn new(
        events: Vec<EventAudit>,
        training: Vec<TrainAudit>,
        tolerance: Option<f64>,
        seconds: f64,
    ) -> AuditReport {
        let count = |status: &str| events.iter().filter(|e| e.status == status).count();
        let (reproduced, within_tolerance, mismatched, failed) = (
            count("reproduced"),
            count("within-tolerance"),
            count("mismatch"),
            count("failed"),
        );
        AuditReport {
            ok: mismatched == 0 && failed == 0 && training.iter().all(|t| t.status == "reproduced"),
            reproduced,
            within_tolerance,
            mismatched,
            failed,
            events,
            training,
            tolerance,
            platform: super::platform(),
            seconds,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EventAudit {
    pub event: i64,
    pub kind: String,
    pub model: Option<String>,
    /// reproduced | within-tolerance | mismatch | failed
    pub status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<Divergence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub recorded_platform: serde_json::Value,
}

struct Replayer<'a, 'b> {
    backend: &'a mut Backend<'b>,
    weights: HashMap<WeightsId, std::result::Result<Weights, String>>,
}

impl Replayer<'_, '_> {
    fn weights(&mut self, id: WeightsId) -> Result<Weights> {
        let backend = &mut *self.backend;
        let entry = self.weights.entry(id).or_insert_with(|| {
            let mut load = || -> Result<Weights> {
                let bytes = backend.weights_file(&id)?;
                Ok(Weights::from_file(&TensorFile::decode(&bytes)?)?)
            };
            load().map_err(|e| format!("{e:#}"))
        });
        entry.clone().map_err(|e| anyhow!(e))
    }

    /// Recomputes one predict event; returns the differences found.
    fn replay(&mut self, e: &EventRecord) -> Result<Vec<Divergence>> {
        let missing = |what: &str| anyhow!("event {} records no {what}", e.id);
        let weights = self.weights(e.weights.ok_or_else(|| missing("weights"))?)?;
        let store = &mut *self.backend;
        let input = TensorFile::decode(&store.object(&e.input.ok_or_else(|| missing("input"))?)?)?;
        let recorded =
            TensorFile::decode(&store.object(&e.output.ok_or_else(|| missing("output"))?)?)?;
        let before = store.load_state(&e.state_before.ok_or_else(|| missing("state before"))?)?;
        let after_id: StateId = e.state_after.ok_or_else(|| missing("state after"))?;
        let x = input
            .tensors
            .get("x")
            .ok_or_else(|| anyhow!("input object of event {} has no 'x'", e.id))?;
        let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
        let kernel = Kernel::of_detail(&detail).map_err(|m| anyhow!("event {}: {m}", e.id))?;
        let replayed = predict_with(kernel, &weights, x, &before)?;
        // Load the recorded new state too: a damaged record is a failure,
        // even when the replay's id would match it.
        let recorded_after = store.load_state(&after_id)?;
        // One row per batch slot: its outputs at the last step, or at
        // every step for per-step outputs.
        let width: usize = replayed.shape[1..].iter().product();
        let mut diffs = Vec::new();
        for (name, values) in [("outputs", &replayed.outputs), ("logits", &replayed.logits)] {
            let recorded = recorded
                .tensors
                .get(name)
                .ok_or_else(|| anyhow!("output object of event {} has no '{name}'", e.id))?;
            diffs.extend(divergence(name, values, &recorded.data, width));
        }
        if replayed.state.id() != after_id {
            let layout = &replayed.state.layout;
            for layer in 0..layout.units.len() {
                for (k, t) in layout.cell.tensors().iter().enumerate() {
                    diffs.extend(divergence(
                        &format!("state l{layer}.{t}"),
                        &replayed.state.layer_tensor(layer, k),
                        &recorded_after.layer_tensor(layer, k),
                        layout.units[layer],
                    ));
                }
            }
            if diffs.iter().all(|d| !d.tensor.starts_with("state")) {
                bail!("the new state's values match but its id does not; run `statectl verify`");
            }
        }
        Ok(diffs)
    }
}

/// Whether the event names the model: by its row where the event has one
/// (a local store's own events, also under an earlier name), else by name
/// (a shared store's).
fn names_model(e: &EventRecord, model: &ModelRecord) -> bool {
    match e.model {
        Some(id) => id == model.id,
        None => e.model_name.as_deref() == Some(&model.name),
    }
}

fn select_events(store: &mut Backend, args: &AuditRequest) -> Result<Vec<EventRecord>> {
    let mut events = store.events_of_kind("predict", args.stream.as_deref())?;
    if let Some(model) = &args.model {
        // The model's own events, and those recorded under this name.
        let record = store.model_record(model)?;
        events.retain(|e| names_model(e, &record) || e.model_name.as_deref() == Some(model));
    }
    if !args.events.is_empty() {
        for id in &args.events {
            if !events.iter().any(|e| e.id == *id) {
                bail!("event {id} is not a predict event matching the filters; `statectl log` lists events");
            }
        }
        events.retain(|e| args.events.contains(&e.id));
    }
    if let Some(cutoff) = args.since {
        events.retain(|e| e.at >= cutoff);
    }
    if let Some(tag) = &args.tag {
        let state = store.tag_target(tag)?.ok_or_else(|| {
            anyhow!("tag '{tag}' not found; `statectl log` shows tags next to states")
        })?;
        events.retain(|e| e.state_after == Some(state));
    }
    Ok(events)
}

#[derive(Debug, Serialize)]
pub struct TrainAudit {
    pub model: String,
    /// reproduced | mismatch | failed
    pub status: &'static str,
    pub weights_recorded: String,
    pub weights_replayed: Option<String>,
    pub states_checked: usize,
    pub states_differing: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Reruns a model's training from what its events and row recorded.
fn audit_training(
    store: &mut Backend,
    model: &ModelRecord,
    progress: &mut dyn FnMut(&Progress),
) -> TrainAudit {
    let mut audit = TrainAudit {
        model: model.name.clone(),
        status: "failed",
        weights_recorded: model.weights.hex(),
        weights_replayed: None,
        states_checked: 0,
        states_differing: 0,
        reason: None,
    };
    let mut run = || -> Result<(WeightsId, Vec<StateId>, Vec<StateId>)> {
        let training = TrainingRecord::parse(
            &model.name,
            model
                .training
                .as_deref()
                .ok_or_else(|| anyhow!("model '{}' was imported, not trained", model.name))?,
        )?;
        let config: crate::model::ModelConfig = serde_json::from_str(&model.config)?;
        let plan = train::stored_plan(
            store,
            &config,
            &training.train,
            &training.init,
            &training.data,
        )?;
        let report = train::run(&plan, progress)?;
        // Encoded like the recorded file (older files carry a batch size).
        let recorded_file = TensorFile::decode(&store.weights_file(&model.weights)?)?;
        let weights = WeightsId(Digest::of(&[&report
            .weights
            .to_file_like(&recorded_file)
            .encode()]));
        let mut replayed: Vec<StateId> = report.states.iter().map(|s| s.state.id()).collect();
        replayed.push(report.final_state.id());
        let mut recorded: Vec<EventRecord> = store.events_of_kind("train", None)?;
        // Stores written before model ids were unique (schema 1) may hold
        // an earlier model's events under the same id: its weights differ,
        // or, for the same weights, its run came before this model's.
        recorded.retain(|e| {
            names_model(e, model) && e.weights == Some(model.weights) && e.at >= model.created_at
        });
        let recorded = recorded.iter().filter_map(|e| e.state_after).collect();
        Ok((weights, replayed, recorded))
    };
    match run() {
        Err(e) => audit.reason = Some(format!("{e:#}")),
        Ok((weights, replayed, recorded)) => {
            audit.weights_replayed = Some(weights.hex());
            audit.states_checked = recorded.len();
            audit.states_differing = if replayed.len() == recorded.len() {
                replayed
                    .iter()
                    .zip(&recorded)
                    .filter(|(a, b)| a != b)
                    .count()
            } else {
                recorded.len().max(replayed.len())
            };
            audit.status = if weights == model.weights && audit.states_differing == 0 {
                "reproduced"
            } else {
                "mismatch"
            };
        }
    }
    audit
}

/// Replays what `req` selects, on one snapshot of the store. `on_event`
/// sees (done, total) after each predict replay; `progress` sees training
/// replays.
pub fn run(
    store: &Store,
    req: &AuditRequest,
    on_event: &mut dyn FnMut(usize, usize),
    progress: &mut dyn FnMut(&Progress),
) -> Result<AuditReport> {
    store.read(|store| run_on(&mut Backend::Embedded(store), req, on_event, progress))
}

/// [`run`] on either store.
pub fn run_on(
    store: &mut Backend,
    req: &AuditRequest,
    on_event: &mut dyn FnMut(usize, usize),
    progress: &mut dyn FnMut(&Progress),
) -> Result<AuditReport> {
    let events = select_events(store, req)?;
    if events.is_empty() && req.train.is_none() && !req.allow_empty {
        bail!("no recorded prediction matches, so nothing was audited; check the filters (or the --store path), or pass --allow-empty to accept an empty audit");
    }
    let started = std::time::Instant::now();
    let mut replayer = Replayer {
        backend: store,
        weights: HashMap::new(),
    };
    let mut results = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let recorded_platform = serde_json::from_str::<serde_json::Value>(&e.detail)
            .ok()
            .map(|d| d["platform"].clone())
            .unwrap_or_default();
        let (status, differences, reason) = match replayer.replay(e) {
            Ok(d) if d.is_empty() => ("reproduced", d, None),
            Ok(d)
                if req
                    .tolerance
                    .is_some_and(|t| d.iter().all(|x| x.max_abs <= t)) =>
            {
                ("within-tolerance", d, None)
            }
            Ok(d) => ("mismatch", d, None),
            Err(err) => ("failed", Vec::new(), Some(format!("{err:#}"))),
        };
        results.push(EventAudit {
            event: e.id,
            kind: e.kind.clone(),
            model: e.model_name.clone(),
            status,
            differences,
            reason,
            recorded_platform,
        });
        on_event(i + 1, events.len());
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut training = Vec::new();
    if let Some(name) = &req.train {
        let models = if name.is_empty() {
            store
                .model_records()?
                .into_iter()
                .filter(|m| m.training.is_some())
                .collect()
        } else {
            vec![store.model_record(name)?]
        };
        if models.is_empty() {
            bail!("no trained model in this store to audit; `statectl train` makes one");
        }
        for m in &models {
            training.push(audit_training(store, m, progress));
        }
    }
    Ok(AuditReport::new(results, training, req.tolerance, seconds))
}
