//! `statectl train`: train a stateful LSTM, save its weights, record the
//! model, the training states and a train event, and set the `main`
//! stream to the state training left (as Keras keeps it after `fit`).

use anyhow::{bail, Context as _, Result};
use serde_json::json;

use super::context::Context;
use super::interrupt;
use super::progress::TrainingProgress;
use crate::cli::TrainArgs;
use crate::input::read_file_bounded;
use crate::model::{
    import_keras, import_torch, Head, ModelConfig, Outputs, Weights, WeightsLayout,
};
use crate::ops::runs::{self, CheckpointEvery, CheckpointPolicy, RunPlan};
use crate::ops::train::{InitSource, TrainPlan};
use crate::ops::training_run::{self, RunEnd, RunObserver};
use crate::tensors::TensorFile;
use crate::train::{
    alphabet, dataset_from_csv, dataset_from_safetensors, keras_init, Checkpoint, Dataset,
    Progress, TrainConfig,
};

/// The training data: the built-in alphabet, a CSV series cut into
/// windows, or a safetensors file.
fn training_data(args: &TrainArgs, classes: Option<usize>, per_step: bool) -> Result<Dataset> {
    match &args.data {
        None => Ok(alphabet()),
        Some(path) => read_dataset(args, path, "training data", classes, per_step),
    }
}

/// A data file (`--data`, `--validation-data`): a CSV time series cut into
/// windows, or safetensors `x` and `y`.
fn read_dataset(
    args: &TrainArgs,
    path: &std::path::Path,
    what: &str,
    classes: Option<usize>,
    per_step: bool,
) -> Result<Dataset> {
    let source = format!("{what} '{}'", path.display());
    let bytes = read_file_bounded(path, &source)?;
    if path.extension().and_then(|e| e.to_str()) == Some("csv") {
        let seq_len = args.seq_len.ok_or_else(|| {
            anyhow::anyhow!("a CSV time series needs --seq-len N (the window length)")
        })?;
        dataset_from_csv(
            &bytes,
            &source,
            seq_len as usize,
            args.stride as usize,
            args.target,
            classes,
            per_step,
        )
    } else {
        let file = TensorFile::decode(&bytes).with_context(|| source.clone())?;
        dataset_from_safetensors(&file, args.head.map(Into::into), classes, per_step)
            .with_context(|| source.clone())
    }
}

/// Appends `--validation-data`'s samples to the (already truncated)
/// training data, held out as the last ones; the classes stay the
/// training data's.
fn append_validation(
    args: &TrainArgs,
    data: &mut Dataset,
    train: &mut TrainConfig,
    per_step: bool,
) -> Result<()> {
    let Some(path) = &args.validation_data else {
        return Ok(());
    };
    let classes = match &data.targets {
        crate::train::Targets::Classes { classes, .. } => Some(*classes),
        crate::train::Targets::Values(_) => None,
    };
    let held_out = read_dataset(args, path, "validation data", classes, per_step)?;
    let count = held_out.len();
    data.append(held_out).map_err(|e| {
        anyhow::anyhow!(
            "validation data '{}' does not fit the training data: {e}",
            path.display()
        )
    })?;
    train.validation_samples = Some(count);
    Ok(())
}

/// The weights training starts from: Keras's initialisation from the seed,
/// or a weights file that must fit the model.
fn initial_weights(
    args: &TrainArgs,
    config: &ModelConfig,
    head: Head,
) -> Result<(Weights, InitSource)> {
    Ok(match &args.init {
        None => (
            keras_init(config, args.seed),
            InitSource::Seed { seed: args.seed },
        ),
        Some(path) => {
            let source = format!("--init weights '{}'", path.display());
            let bytes = read_file_bounded(path, &source)?;
            let file = TensorFile::decode(&bytes).with_context(|| source.clone())?;
            let mut w = match args.init_layout.into() {
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
            let id = crate::ops::train::weights_id(&w);
            (
                w,
                InitSource::Weights {
                    weights: id.hex(),
                    model: None,
                },
            )
        }
    })
}

/// `--from MODEL`: the stored model's weights, which must fit the data.
fn fine_tuned(ctx: &Context, name: &str, data: &Dataset) -> Result<Weights> {
    let model = crate::ops::models::find(&ctx.store, Some(name))?;
    let c = &model.config;
    if (data.features(), data.outputs()) != (c.input_size, c.output_size) {
        bail!(
            "--from {name}: model '{name}' takes {} input(s) and gives {} output(s), but the data has {} feature(s) and {} output(s)",
            c.input_size,
            c.output_size,
            data.features(),
            data.outputs()
        );
    }
    if data.head() != c.head {
        bail!(
            "--from {name}: model '{name}' has a {} head, but the data's targets call for a {} head",
            c.head.name(),
            data.head().name()
        );
    }
    let file = TensorFile::decode(&ctx.store.load_weights(&model.record.weights)?)?;
    Ok(Weights::from_file(&file)?)
}

pub(super) fn plan(ctx: &Context, args: &TrainArgs) -> Result<TrainPlan> {
    let lr = args.lr.unwrap_or(DEFAULT_LR);
    if !(lr.is_finite() && lr > 0.0) {
        bail!("--lr {lr} must be a positive number");
    }
    // Fine-tuning keeps the stored model's architecture.
    let base = match &args.from {
        Some(name) => Some(crate::ops::models::find(&ctx.store, Some(name))?.config),
        None => None,
    };
    let classes = args.classes.map(|c| c as usize);
    let per_step = match &base {
        Some(c) => c.outputs == Outputs::Sequence,
        None => Outputs::from(args.outputs) == Outputs::Sequence,
    };
    let data = training_data(args, classes, per_step)?;
    if per_step && !data.per_step {
        bail!("--outputs sequence trains on a target per step: give --data (a CSV series, or safetensors with y as [n, steps] or [n, steps, outputs])");
    }
    let mut train = TrainConfig {
        batch_size: args.batch_size as usize,
        epochs: args.epochs.unwrap_or(DEFAULT_EPOCHS) as usize,
        lr,
        seed: args.seed,
        stateful: !args.no_stateful,
        shuffle: !args.no_shuffle,
        record: args.record.into(),
        kernel: args.kernel.into(),
        validation_split: args.validation_split,
        validation_samples: None,
        patience: args.patience.map(|p| p as usize),
        keep_best: args.keep_best,
        lr_changes: Vec::new(),
    };
    let mut data = data;
    if args.drop_remainder {
        let b = (args.batch_size as usize).max(1);
        data.truncate(train.full_batches_within(data.len()));
        if data.is_empty() {
            bail!(
                "--drop-remainder leaves no sample: the data has fewer than --batch-size {b} samples"
            );
        }
    }
    append_validation(args, &mut data, &mut train, per_step)?;
    let units: Vec<usize> = match &base {
        Some(c) => c.units.clone(),
        None => args.units.iter().map(|u| *u as usize).collect(),
    };
    let cell = base.as_ref().map_or(args.cell.into(), |c| c.cell);
    let head = args.head.map(Into::into);
    let config =
        crate::ops::train::model_config(&data, cell, units, head, args.batch_size as usize)?;
    let head = config.head;
    let (init, init_source) = match &args.from {
        Some(name) => {
            let mut w = fine_tuned(ctx, name, &data)?;
            w.config = config.clone();
            let id = crate::ops::train::weights_id(&w);
            (
                w,
                InitSource::Weights {
                    weights: id.hex(),
                    model: Some(name.clone()),
                },
            )
        }
        None => initial_weights(args, &config, head)?,
    };
    Ok(TrainPlan {
        data,
        train,
        init,
        init_source,
    })
}

/// Why a carried state means nothing for these windows, when it does not:
/// stateful training carries each batch row's state into the next batch,
/// which continues the series only for consecutive windows in order.
fn series_note(args: &TrainArgs) -> Option<String> {
    let seq_len = args.seq_len?;
    let is_csv = args.data.as_ref()?.extension().and_then(|e| e.to_str()) == Some("csv");
    if !is_csv || args.no_stateful {
        return None;
    }
    let mut why = Vec::new();
    if !args.no_shuffle {
        why.push("shuffled".to_string());
    }
    if args.stride < seq_len {
        why.push(format!(
            "overlapping (--stride {} < --seq-len {seq_len})",
            args.stride
        ));
    }
    (!why.is_empty()).then(|| {
        format!(
            "note: stateful training carries the state from batch to batch, but these windows are {}, so a batch does not start where the series left off; for a state that continues the series use --stride {seq_len} --no-shuffle --batch-size 1, or pass --no-stateful",
            why.join(" and ")
        )
    })
}

/// The name a new run trains under: `--name`, or the first free `model-N`.
fn new_model_name(ctx: &Context, args: &TrainArgs) -> Result<String> {
    if let Some(n) = &args.name {
        crate::ops::models::check_model_name(n)?;
        if ctx.store.find_model(n)?.is_some() {
            bail!("model '{n}' already exists; choose another --name");
        }
        return Ok(n.clone());
    }
    let mut taken: Vec<String> = ctx
        .store
        .list_models()?
        .into_iter()
        .map(|m| m.name)
        .collect();
    taken.extend(runs::list(&ctx.store)?.into_iter().map(|r| r.name));
    Ok((1..)
        .map(|i| format!("model-{i}"))
        .find(|n| !taken.contains(n))
        .unwrap_or_default())
}

/// The CLI's view of a run: a progress bar (or plain lines) on stderr, and
/// a stop when Ctrl-C or SIGTERM came.
struct CliObserver {
    progress: TrainingProgress,
}

impl RunObserver for CliObserver {
    fn starting_at(&mut self, batches_done: usize, position: Option<String>) {
        self.progress.skip(batches_done as u64);
        if let Some(p) = position {
            self.progress.checkpointed(p);
        }
    }
    fn batch(&mut self, progress: &Progress) {
        self.progress.tick(progress);
    }
    fn checkpointed(&mut self, position: String) {
        self.progress.checkpointed(position);
    }
    fn stop_requested(&mut self) -> bool {
        interrupt::requested()
    }
}

/// Trains a started run to its end (or a stop), with progress and Ctrl-C.
fn train_run(
    ctx: &Context,
    name: &str,
    run: &RunPlan,
    plan: &TrainPlan,
    from: Option<Checkpoint>,
) -> Result<RunEnd> {
    interrupt::install();
    let mut observer = CliObserver {
        progress: TrainingProgress::new(ctx.out.quiet, plan),
    };
    let end = training_run::train(&ctx.store, name, run, plan, from, &mut observer);
    observer.progress.finish();
    end
}

/// The checkpoint policy: the flags given, else the run's, else the
/// defaults (every epoch, two kept).
fn policy(args: &TrainArgs, recorded: Option<CheckpointPolicy>) -> CheckpointPolicy {
    let base = recorded.unwrap_or(CheckpointPolicy {
        every: CheckpointEvery::Epoch,
        keep: 2,
    });
    CheckpointPolicy {
        every: args.checkpoint_every.unwrap_or(base.every),
        keep: args.keep_checkpoints.map_or(base.keep, |k| k as usize),
    }
}

/// `--epochs` and `--lr` when not given (kept unset so that `--resume`
/// can tell a change from a default).
const DEFAULT_EPOCHS: u32 = 2;
const DEFAULT_LR: f32 = 1e-3;

pub fn run(ctx: &Context, args: TrainArgs) -> Result<i32> {
    if let Some(name) = &args.resume {
        return resume(ctx, name, &args);
    }
    let plan = plan(ctx, &args)?;
    let name = new_model_name(ctx, &args)?;
    let ended = train_new(ctx, &args, &name, &plan)?;
    Ok(report(ctx, &name, ended))
}

/// Trains a new run `name` to its end, or to where Ctrl-C stopped it.
pub(super) fn train_new(
    ctx: &Context,
    args: &TrainArgs,
    name: &str,
    plan: &TrainPlan,
) -> Result<RunEnd> {
    let _lock = runs::lock(&ctx.store, name)?;
    let run = runs::start(&ctx.store, name, plan, policy(args, None))?;
    let ended = train_run(ctx, name, &run, plan, None)?;
    // After training, so that a refused run's error stays one line.
    if let (RunEnd::Finished(..), Some(note)) = (&ended, series_note(args)) {
        ctx.out.status(note);
    }
    Ok(ended)
}

/// `train --resume RUN`: the run's latest checkpoint, on to its end.
fn resume(ctx: &Context, name: &str, args: &TrainArgs) -> Result<i32> {
    // Checked before locking, so an unknown name leaves no lock file.
    runs::check_exists(&ctx.store, name)?;
    let _lock = runs::lock(&ctx.store, name)?;
    let mut stored = runs::load(&ctx.store, name, args.from_checkpoint)?;
    stored.run.checkpoints = policy(args, Some(stored.run.checkpoints));
    let change = runs::PlanChange {
        epochs: args.epochs.map(|e| e as usize),
        lr: args.lr,
    };
    if let Some(changed) = runs::change_plan(&ctx.store, &mut stored, change)? {
        ctx.out
            .status(format!("changed training run '{name}': {changed}"));
    }
    ctx.out.status(match &stored.at {
        Some(at) => format!(
            "continuing training run '{name}' from its checkpoint at {}",
            runs::position(at.epoch, at.batch)
        ),
        None => {
            format!("continuing training run '{name}' from its start (it had no checkpoint yet)")
        }
    });
    let ended = train_run(ctx, name, &stored.run, &stored.plan, stored.checkpoint)?;
    Ok(report(ctx, name, ended))
}

/// The validation losses and an early stop, as lines (empty without a
/// validation split).
fn validation_summary(val_losses: &[f32], stopped_early: Option<usize>) -> String {
    let (Some(first), Some(last)) = (val_losses.first(), val_losses.last()) else {
        return String::new();
    };
    let best = val_losses.iter().copied().fold(f32::INFINITY, f32::min);
    let mut text = format!("validation loss {first:.4} -> {last:.4} (best {best:.4})\n");
    if let Some(epoch) = stopped_early {
        text.push_str(&format!(
            "stopped early after epoch {epoch}: the validation loss had stopped improving\n"
        ));
    }
    text
}

/// What `--keep-best` kept, as a line.
fn best_line(name: &str, best: &crate::train::TrainReport) -> String {
    let (model, tag) = crate::ops::runs::best_names(name);
    format!(
        "kept the best epoch ({}, validation loss {:.4}) as model '{model}' and its state as tag '{tag}'\n",
        best.losses.len(),
        best.val_losses.last().copied().unwrap_or(f32::NAN)
    )
}

/// Prints how the run ended; returns the exit status.
pub(super) fn report(ctx: &Context, name: &str, ended: RunEnd) -> i32 {
    let (model, report) = match ended {
        RunEnd::Finished(done) => *done,
        RunEnd::Stopped(position) => {
            let resume = format!("statectl train --resume {name}");
            // On stderr also with -q, as an error would be: the run did not
            // finish, and this says how to finish it.
            eprintln!("training run '{name}' stopped at {position}, after writing a checkpoint there; continue it with `{resume}`");
            if ctx.out.json {
                ctx.emit(
                    json!({"run": name, "stopped_at": position, "resume": resume}),
                    String::new,
                );
            }
            return interrupt::STOPPED;
        }
    };
    let final_state = Some(report.final_state.id().hex());
    ctx.emit(
        json!({
            "model": name,
            "weights": model.record.weights.hex(),
            "layout": model.config.layout().to_string(),
            "final_state": final_state,
            "losses": report.losses,
            "accuracy": report.accuracy,
        })
        .as_object()
        .cloned()
        .map(|mut out| {
            // Only runs with a validation split say how validation went.
            if !report.val_losses.is_empty() {
                out.insert("val_losses".into(), json!(report.val_losses));
                out.insert("stopped_early".into(), json!(report.stopped_early));
            }
            if let Some(best) = &report.best {
                out.insert("best".into(), runs::kept_best(name, best));
            }
            serde_json::Value::Object(out)
        })
        .unwrap_or_default(),
        || {
            let acc = report.accuracy.map(|a| format!(", accuracy {:.1}%", a * 100.0)).unwrap_or_default();
            let mut validation = validation_summary(&report.val_losses, report.stopped_early);
            if let Some(best) = &report.best {
                validation.push_str(&best_line(name, best));
            }
            format!(
                "trained model '{name}' ({}, {} epoch(s)): loss {:.4} -> {:.4}{acc}\n{validation}weights {}\nstream 'main' -> {}",
                model.config.layout(),
                report.losses.len(),
                report.losses.first().copied().unwrap_or(f32::NAN),
                report.losses.last().copied().unwrap_or(f32::NAN),
                model.record.weights.short(),
                final_state.as_deref().map(|s| &s[..12]).unwrap_or("-")
            )
        },
    );
    0
}
