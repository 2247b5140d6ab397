//! `statectl audit`: replay recorded predict events (and with `--train`,
//! training runs) and check outputs and new states bit for bit. A replay
//! that cannot run (damaged or missing data) is reported as failed with the
//! reason, never as a numeric mismatch.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::json;

use super::context::Context;
use super::progress::run_training;
use super::EXIT_DIFFERENT;
use crate::cli::AuditArgs;
use crate::id::{Digest, StateId, WeightsId};
use crate::model::{predict, Weights};
use crate::ops::platform;
use crate::ops::train::{InitSource, TrainPlan, TrainingRecord};
use crate::replay::{divergence, Divergence};
use crate::store::{now_ms, EventFilter, EventRecord, ModelRecord};
use crate::tensors::TensorFile;
use crate::train::{dataset_from_safetensors, keras_init};

#[derive(Debug, Serialize)]
struct EventAudit {
    event: i64,
    kind: String,
    model: Option<String>,
    /// reproduced | within-tolerance | mismatch | failed
    status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    differences: Vec<Divergence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    recorded_platform: serde_json::Value,
}

struct Replayer<'a> {
    ctx: &'a Context,
    weights: HashMap<WeightsId, std::result::Result<Weights, String>>,
}

impl Replayer<'_> {
    fn weights(&mut self, id: WeightsId) -> Result<Weights> {
        let ctx = self.ctx;
        let entry = self.weights.entry(id).or_insert_with(|| {
            let load = || -> Result<Weights> {
                let bytes = ctx.store.load_weights(&id)?;
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
        let store = &self.ctx.store;
        let input =
            TensorFile::decode(&store.load_object(&e.input.ok_or_else(|| missing("input"))?)?)?;
        let recorded =
            TensorFile::decode(&store.load_object(&e.output.ok_or_else(|| missing("output"))?)?)?;
        let before = store.load_state(&e.state_before.ok_or_else(|| missing("state before"))?)?;
        let after_id: StateId = e.state_after.ok_or_else(|| missing("state after"))?;
        let x = input
            .tensors
            .get("x")
            .ok_or_else(|| anyhow!("input object of event {} has no 'x'", e.id))?;
        let replayed = predict(&weights, x, &before)?;
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

fn select_events(ctx: &Context, args: &AuditArgs) -> Result<Vec<EventRecord>> {
    let mut events = ctx.store.events(&EventFilter {
        kind: Some("predict".into()),
        stream: args.stream.clone(),
        ..Default::default()
    })?;
    events.reverse();
    if let Some(model) = &args.model {
        ctx.store.model_by_name(model)?;
        events.retain(|e| e.model_name.as_deref() == Some(model));
    }
    if !args.events.is_empty() {
        for id in &args.events {
            if !events.iter().any(|e| e.id == *id) {
                bail!("event {id} is not a predict event matching the filters; `statectl log` lists events");
            }
        }
        events.retain(|e| args.events.contains(&e.id));
    }
    if let Some(since) = &args.since {
        let cutoff = now_ms() - super::context::parse_duration("--since", since)?;
        events.retain(|e| e.at >= cutoff);
    }
    if let Some(tag) = &args.tag {
        let state = ctx
            .store
            .tag(tag)?
            .ok_or_else(|| {
                anyhow!("tag '{tag}' not found; `statectl log` shows tags next to states")
            })?
            .state;
        events.retain(|e| e.state_after == Some(state));
    }
    Ok(events)
}

#[derive(Debug, Serialize)]
struct TrainAudit {
    model: String,
    status: &'static str,
    weights_recorded: String,
    weights_replayed: Option<String>,
    states_checked: usize,
    states_differing: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Reruns a model's training from what its events and row recorded.
fn audit_training(ctx: &Context, model: &ModelRecord) -> TrainAudit {
    let mut audit = TrainAudit {
        model: model.name.clone(),
        status: "failed",
        weights_recorded: model.weights.hex(),
        weights_replayed: None,
        states_checked: 0,
        states_differing: 0,
        reason: None,
    };
    let run = || -> Result<(WeightsId, Vec<StateId>, Vec<StateId>)> {
        let training = TrainingRecord::parse(
            &model.name,
            model
                .training
                .as_deref()
                .ok_or_else(|| anyhow!("model '{}' was imported, not trained", model.name))?,
        )?;
        let config: crate::model::ModelConfig = serde_json::from_str(&model.config)?;
        let data_id = Digest::parse_hex(&training.data)
            .ok_or_else(|| anyhow!("model '{}' records no training data id", model.name))?;
        let data_file = TensorFile::decode(&ctx.store.load_object(&crate::id::ObjectId(data_id))?)?;
        let per_step = config.outputs == crate::model::Outputs::Sequence;
        let data = dataset_from_safetensors(&data_file, Some(config.head), None, per_step)?;
        let init = match &training.init {
            InitSource::Seed { seed } => keras_init(&config, *seed),
            InitSource::Weights { weights: hex } => {
                let id = WeightsId(
                    Digest::parse_hex(hex).ok_or_else(|| anyhow!("bad init weights id '{hex}'"))?,
                );
                let mut w =
                    Weights::from_file(&TensorFile::decode(&ctx.store.load_weights(&id)?)?)?;
                w.config = config.clone();
                w
            }
        };
        let plan = TrainPlan {
            data,
            train: training.train.clone(),
            init,
            init_source: training.init.clone(),
        };
        let report = run_training(ctx.out.quiet, &plan)?;
        // Encoded like the recorded file (older files carry a batch size).
        let recorded_file = TensorFile::decode(&ctx.store.load_weights(&model.weights)?)?;
        let weights = WeightsId(Digest::of(&[&report
            .weights
            .to_file_like(&recorded_file)
            .encode()]));
        let mut replayed: Vec<StateId> = report.states.iter().map(|s| s.state.id()).collect();
        replayed.push(report.final_state.id());
        let mut recorded: Vec<EventRecord> = ctx.store.events(&EventFilter {
            model: Some(model.id),
            kind: Some("train".into()),
            ..Default::default()
        })?;
        // Stores written before model ids were unique (schema 1) may hold
        // an earlier model's events under the same id: its weights differ,
        // or, for the same weights, its run came before this model's.
        recorded.retain(|e| e.weights == Some(model.weights) && e.at >= model.created_at);
        recorded.reverse();
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

pub fn run(ctx: &Context, args: AuditArgs) -> Result<i32> {
    // One snapshot: a concurrent writer's half-seen work never reads as a
    // problem.
    ctx.store.read(|_| audit(ctx, &args))
}

fn audit(ctx: &Context, args: &AuditArgs) -> Result<i32> {
    let events = select_events(ctx, args)?;
    if events.is_empty() && args.train.is_none() && !args.allow_empty {
        bail!("no recorded prediction matches, so nothing was audited; check the filters (or the --store path), or pass --allow-empty to accept an empty audit");
    }
    let bar = if ctx.out.quiet || events.len() < 200 {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(events.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("auditing {bar:30} {pos}/{len} [{elapsed}, {per_sec}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let mut replayer = Replayer {
        ctx,
        weights: HashMap::new(),
    };
    let mut results = Vec::with_capacity(events.len());
    for e in &events {
        let recorded_platform = serde_json::from_str::<serde_json::Value>(&e.detail)
            .ok()
            .map(|d| d["platform"].clone())
            .unwrap_or_default();
        let (status, differences, reason) = match replayer.replay(e) {
            Ok(d) if d.is_empty() => ("reproduced", d, None),
            Ok(d)
                if args
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
        bar.inc(1);
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();

    let mut trainings = Vec::new();
    if let Some(name) = &args.train {
        let models = if name.is_empty() {
            ctx.store
                .list_models()?
                .into_iter()
                .filter(|m| m.training.is_some())
                .collect()
        } else {
            vec![ctx.store.model_by_name(name)?]
        };
        if models.is_empty() {
            bail!("no trained model in this store to audit; `statectl train` makes one");
        }
        for m in &models {
            trainings.push(audit_training(ctx, m));
        }
    }

    let count = |s: &str| results.iter().filter(|r| r.status == s).count();
    let (reproduced, tolerated, mismatched, failed) = (
        count("reproduced"),
        count("within-tolerance"),
        count("mismatch"),
        count("failed"),
    );
    let train_ok = trainings.iter().all(|t| t.status == "reproduced");
    let ok = mismatched == 0 && failed == 0 && train_ok;
    let current = platform();
    ctx.out.emit(
        json!({
            "ok": ok,
            "events": results,
            "reproduced": reproduced,
            "within_tolerance": tolerated,
            "mismatched": mismatched,
            "failed": failed,
            "tolerance": args.tolerance,
            "training": trainings,
            "platform": current,
            "seconds": seconds,
        }),
        || {
            let mut text = String::new();
            for r in results.iter().filter(|r| r.status != "reproduced") {
                text.push_str(&format!("event {:>6} {:<16}", r.event, r.status));
                if let Some(reason) = &r.reason {
                    text.push_str(&format!(" {reason}"));
                }
                for d in &r.differences {
                    text.push_str(&format!(" {} slot {}: max |diff| {:.3e} ({} ULPs);", d.tensor, d.slot, d.max_abs, d.max_ulps));
                }
                if r.status == "mismatch" {
                    text.push_str(&format!("\n             recorded on {}\n             replayed on {}", r.recorded_platform, current));
                }
                text.push('\n');
            }
            for t in &trainings {
                text.push_str(&format!(
                    "training of '{}': {} (weights {} -> {}, {} of {} training state(s) differ){}\n",
                    t.model,
                    t.status,
                    &t.weights_recorded[..12],
                    t.weights_replayed.as_deref().map(|w| &w[..12]).unwrap_or("-"),
                    t.states_differing,
                    t.states_checked,
                    t.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
                ));
            }
            text.push_str(&format!(
                "{} predict event(s) in {seconds:.2}s: {reproduced} reproduced bit for bit, {tolerated} within tolerance, {mismatched} mismatched, {failed} failed\n",
                results.len()
            ));
            if tolerated > 0 {
                text.push_str(&format!("differences up to {} were accepted (--tolerance)\n", args.tolerance.unwrap_or(0.0)));
            }
            text
        },
    );
    Ok(if ok { 0 } else { EXIT_DIFFERENT })
}
