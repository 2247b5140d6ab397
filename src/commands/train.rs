//! `statectl train`: train a stateful LSTM, save its weights, record the
//! model, the training states and a train event, and set the `main`
//! stream to the state training left (as Keras keeps it after `fit`).

use anyhow::{bail, Context as _, Result};
use serde_json::json;

use super::context::Context;
use crate::cli::TrainArgs;
use crate::input::read_file_bounded;
use crate::model::{
    import_keras, import_torch, Head, ModelConfig, Outputs, Weights, WeightsLayout,
};
use crate::ops::train::{InitSource, TrainPlan};
use crate::tensors::TensorFile;
use crate::train::{
    alphabet, dataset_from_csv, dataset_from_safetensors, keras_init, Dataset, TrainConfig,
};

/// The training data: the built-in alphabet, a CSV series cut into
/// windows, or a safetensors file.
fn training_data(args: &TrainArgs, classes: Option<usize>, per_step: bool) -> Result<Dataset> {
    Ok(match &args.data {
        None => alphabet(),
        Some(path) => {
            let source = format!("training data '{}'", path.display());
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
                )?
            } else {
                let file = TensorFile::decode(&bytes).with_context(|| source.clone())?;
                dataset_from_safetensors(&file, args.head.map(Into::into), classes, per_step)
                    .with_context(|| source.clone())?
            }
        }
    })
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
            (w, InitSource::Weights { weights: id.hex() })
        }
    })
}

fn plan(args: &TrainArgs) -> Result<TrainPlan> {
    if !(args.lr.is_finite() && args.lr > 0.0) {
        bail!("--lr {} must be a positive number", args.lr);
    }
    let classes = args.classes.map(|c| c as usize);
    let per_step = Outputs::from(args.outputs) == Outputs::Sequence;
    let data = training_data(args, classes, per_step)?;
    if per_step && !data.per_step {
        bail!("--outputs sequence trains on a target per step: give --data (a CSV series, or safetensors with y as [n, steps] or [n, steps, outputs])");
    }
    let mut data = data;
    if args.drop_remainder {
        let b = (args.batch_size as usize).max(1);
        data.truncate(data.len() / b * b);
        if data.is_empty() {
            bail!(
                "--drop-remainder leaves no sample: the data has fewer than --batch-size {b} samples"
            );
        }
    }
    let head = args.head.map(Into::into).unwrap_or(data.head());
    if head != data.head() {
        bail!(
            "--head {} does not fit the data's targets, which call for a {} head",
            head.name(),
            data.head().name()
        );
    }
    let units: Vec<usize> = args.units.iter().map(|u| *u as usize).collect();
    crate::limits::check_units(&units)?;
    crate::limits::check_batch(args.batch_size as usize)?;
    let config = ModelConfig {
        cell: args.cell.into(),
        input_size: data.features(),
        units,
        output_size: data.outputs(),
        head,
        outputs: if data.per_step {
            Outputs::Sequence
        } else {
            Outputs::Last
        },
        batch_size: args.batch_size as usize,
    };
    let train = TrainConfig {
        batch_size: args.batch_size as usize,
        epochs: args.epochs as usize,
        lr: args.lr,
        seed: args.seed,
        stateful: !args.no_stateful,
        shuffle: !args.no_shuffle,
        record: args.record.into(),
        kernel: args.kernel.into(),
    };
    let (init, init_source) = initial_weights(args, &config, head)?;
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

pub fn run(ctx: &Context, args: TrainArgs) -> Result<i32> {
    let plan = plan(&args)?;
    let name = match &args.name {
        Some(n) => {
            crate::ops::models::check_model_name(n)?;
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
    let report = super::progress::run_training(ctx.out.quiet, &plan)?;
    // After training, so that a refused run's error stays one line.
    if let Some(note) = series_note(&args) {
        ctx.out.status(note);
    }
    let model = crate::ops::train::record(&ctx.store, &name, false, &plan, &report)?;
    let final_state = Some(report.final_state.id().hex());
    ctx.emit(
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
