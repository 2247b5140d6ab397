//! `statectl train`: train a stateful LSTM, save its weights, record the
//! model, the training states and a train event, and set the `main`
//! stream to the state training left (as Keras keeps it after `fit`).

use anyhow::{bail, Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::context::{Context, Model};
use crate::cli::TrainArgs;
use crate::model::{import_keras, import_torch, ModelConfig, Weights, WeightsLayout};
use crate::state::Cell;
use crate::store::NewEvent;
use crate::tensors::TensorFile;
use crate::train::{
    alphabet, dataset_from_csv, dataset_from_safetensors, keras_init, train, Dataset, TrainConfig,
    TrainReport,
};

/// Everything a training run is made of, as recorded with it.
pub struct TrainPlan {
    pub data: Dataset,
    pub train: TrainConfig,
    pub init: Weights,
    /// `{"seed": N}` or `{"weights": hex}`.
    pub init_source: serde_json::Value,
}

/// The reference experiment: alphabet data, LSTM(16), softmax over 27
/// classes, batch 6, 2 epochs, lr 1e-3, seed 42, stateful.
pub fn reference_plan() -> TrainPlan {
    let data = alphabet();
    let config = ModelConfig {
        cell: Cell::Lstm,
        input_size: 1,
        units: vec![16],
        output_size: 27,
        head: data.head(),
        batch_size: 6,
    };
    let train = TrainConfig {
        batch_size: 6,
        epochs: 2,
        lr: 1e-3,
        seed: 42,
        stateful: true,
        shuffle: true,
        record: crate::train::RecordEvery::Epoch,
    };
    TrainPlan {
        init: keras_init(&config, train.seed),
        init_source: json!({"seed": train.seed}),
        data,
        train,
    }
}

fn plan(args: &TrainArgs) -> Result<TrainPlan> {
    if args.cell != "lstm" {
        bail!(
            "--cell {} is not supported yet; statectl trains LSTM cells (--cell lstm)",
            args.cell
        );
    }
    if !(args.lr.is_finite() && args.lr > 0.0) {
        bail!("--lr {} must be a positive number", args.lr);
    }
    let classes = args.classes.map(|c| c as usize);
    let data = match &args.data {
        None => alphabet(),
        Some(path) => {
            let source = format!("training data '{}'", path.display());
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {source}"))?;
            if path.extension().and_then(|e| e.to_str()) == Some("csv") {
                let seq_len = args.seq_len.ok_or_else(|| {
                    anyhow::anyhow!("a CSV time series needs --seq-len N (the window length)")
                })?;
                dataset_from_csv(&bytes, &source, seq_len as usize, args.target, classes)?
            } else {
                let file = TensorFile::decode(&bytes).with_context(|| source.clone())?;
                dataset_from_safetensors(&file, args.head, classes)
                    .with_context(|| source.clone())?
            }
        }
    };
    let head = args.head.unwrap_or(data.head());
    if head != data.head() {
        bail!(
            "--head {} does not fit the data's targets, which call for a {} head",
            head.name(),
            data.head().name()
        );
    }
    let config = ModelConfig {
        cell: Cell::Lstm,
        input_size: data.features(),
        units: args.units.iter().map(|u| *u as usize).collect(),
        output_size: data.outputs(),
        head,
        batch_size: args.batch_size as usize,
    };
    let train = TrainConfig {
        batch_size: args.batch_size as usize,
        epochs: args.epochs as usize,
        lr: args.lr,
        seed: args.seed,
        stateful: !args.no_stateful,
        shuffle: !args.no_shuffle,
        record: args.record,
    };
    let (init, init_source) = match &args.init {
        None => (keras_init(&config, args.seed), json!({"seed": args.seed})),
        Some(path) => {
            let source = format!("--init weights '{}'", path.display());
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {source}"))?;
            let file = TensorFile::decode(&bytes).with_context(|| source.clone())?;
            let mut w = match args.init_layout {
                WeightsLayout::Torch => import_torch(&file, head, config.batch_size),
                WeightsLayout::Keras => import_keras(&file, None, head, config.batch_size),
            }
            .with_context(|| source.clone())?;
            let got = (&w.config.units, w.config.input_size, w.config.output_size);
            if got != (&config.units, config.input_size, config.output_size) {
                bail!(
                    "{source} do not fit the model: they are {} with {} input(s) and {} output(s), the model needs {} with {} input(s) and {} output(s)",
                    w.config.layout(),
                    w.config.input_size,
                    w.config.output_size,
                    config.layout(),
                    config.input_size,
                    config.output_size
                );
            }
            w.config = config.clone();
            let id = crate::id::Digest::of(&[&w.to_file().encode()]);
            (w, json!({"weights": id.hex()}))
        }
    };
    Ok(TrainPlan {
        data,
        train,
        init,
        init_source,
    })
}

/// Runs the plan with a progress bar on stderr (unless quiet).
pub fn run_training(ctx: &Context, plan: &TrainPlan) -> Result<TrainReport> {
    let batches = plan.data.len().div_ceil(plan.train.batch_size.max(1));
    let bar = if ctx.out.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new((plan.train.epochs * batches) as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("training {bar:30} epoch {msg} [{elapsed}, {per_sec}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = train(&plan.data, &plan.train, plan.init.clone(), &mut |p| {
        bar.set_message(format!(
            "{}/{} batch {}/{} loss {:.4}",
            p.epoch + 1,
            p.epochs,
            p.batch + 1,
            p.batches,
            p.loss
        ));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    Ok(report)
}

/// Stores what training made: weights, model row, data object, training
/// states and events, and the `main` stream at the final state; all in one
/// transaction.
pub fn record_training(
    ctx: &Context,
    name: &str,
    replace: bool,
    plan: &TrainPlan,
    report: &TrainReport,
) -> Result<Model> {
    let data_bytes = plan.data.to_file().encode();
    let training = json!({
        "train": plan.train,
        "init": plan.init_source,
        "data": crate::id::Digest::of(&[&data_bytes]).hex(),
        "losses": report.losses,
        "accuracy": report.accuracy,
        "samples": plan.data.len(),
        "statectl": env!("CARGO_PKG_VERSION"),
    });
    let weights = &report.weights;
    super::model::register(ctx, name, weights, Some(&training), replace, |model| {
        // The init weights are kept so `audit --train` can rerun from them.
        if plan.init_source.get("weights").is_some() {
            ctx.store.put_weights(&plan.init.to_file().encode())?;
        }
        let data = ctx.store.put_object(&data_bytes)?;
        for trained in &report.states {
            let id = ctx.store.put_state(&trained.state)?;
            ctx.store.append_event(&NewEvent {
                kind: "train",
                model: model.event_model(),
                state_after: Some(id),
                input: Some(data),
                detail: json!({"epoch": trained.epoch + 1, "batch": trained.batch.map(|b| b + 1)}),
                ..Default::default()
            })?;
        }
        let final_id = ctx.store.put_state(&report.final_state)?;
        ctx.move_stream(
            model,
            "main",
            final_id,
            NewEvent {
                kind: "train",
                input: Some(data),
                detail: json!({"final": true, "training": training}),
                ..Default::default()
            },
        )?;
        Ok(())
    })
}

pub fn run(ctx: &Context, args: TrainArgs) -> Result<i32> {
    let plan = plan(&args)?;
    let name = match &args.name {
        Some(n) if n.is_empty() || n.chars().any(|c| c.is_whitespace()) => {
            bail!("'{n}' cannot be a model name: use letters, digits, '-' or '_'")
        }
        Some(n) => {
            if ctx.store.find_model(n)?.is_some() {
                bail!("model '{n}' already exists; choose another --name");
            }
            n.clone()
        }
        None => {
            let taken: Vec<String> = ctx
                .store
                .list_models()?
                .into_iter()
                .map(|m| m.name)
                .collect();
            (1..)
                .map(|i| format!("model-{i}"))
                .find(|n| !taken.contains(n))
                .unwrap_or_default()
        }
    };
    let report = run_training(ctx, &plan)?;
    let model = record_training(ctx, &name, false, &plan, &report)?;
    let final_state = ctx.head(&model, "main")?.map(|s| s.hex());
    ctx.out.emit(
        json!({
            "model": name,
            "weights": model.record.weights.hex(),
            "layout": model.config.layout().to_string(),
            "final_state": final_state,
            "losses": report.losses,
            "accuracy": report.accuracy,
        }),
        || {
            let acc = report.accuracy.map(|a| format!(", accuracy {:.1}%", a * 100.0)).unwrap_or_default();
            format!(
                "trained model '{name}' ({}, {} epoch(s)): loss {:.4} -> {:.4}{acc}\nweights {}\nstream 'main' -> {}",
                model.config.layout(),
                report.losses.len(),
                report.losses.first().copied().unwrap_or(f32::NAN),
                report.losses.last().copied().unwrap_or(f32::NAN),
                model.record.weights.short(),
                final_state.as_deref().map(|s| &s[..12]).unwrap_or("-")
            )
        },
    );
    Ok(0)
}
