//! `statectl model import|list|show|export`.

use anyhow::{bail, Context as _, Result};
use serde_json::json;

use super::context::{format_time, Context};
use crate::cli::{ModelCommand, ModelExportArgs, ModelImportArgs, ModelShowArgs};
use crate::input::read_file_bounded;
use crate::model::{import_keras, import_torch, Head, Weights, WeightsLayout};
use crate::ops::models::{self, Registration};
use crate::ops::train::{InitSource, TrainingRecord};
use crate::tensors::TensorFile;

pub fn run(ctx: &Context, cmd: ModelCommand) -> Result<i32> {
    match cmd {
        ModelCommand::Import(args) => import(ctx, args),
        ModelCommand::List => list(ctx),
        ModelCommand::Show(args) => show(ctx, args),
        ModelCommand::Export(args) => export(ctx, args),
    }
}

fn import(ctx: &Context, args: ModelImportArgs) -> Result<i32> {
    let path = args.file.display().to_string();
    let bytes = read_file_bounded(&args.file, &format!("weights file '{path}'"))?;
    let file = TensorFile::decode(&bytes).with_context(|| format!("weights file '{path}'"))?;
    let batch = args.batch_size as usize;
    crate::limits::check_batch(batch)?;
    let layout = match args.layout {
        Some(layout) => layout.into(),
        None => detect_layout(&file).with_context(|| format!("weights file '{path}'"))?,
    };
    // The head: as asked, else as the file says; the weights are read
    // first either way, so a damaged file is reported as such.
    let said = Weights::stated_config(&file).map(|c| c.head);
    let head = args.head.map(Into::into).or(said);
    let provisional = head.unwrap_or(Head::Softmax);
    let weights = match layout {
        WeightsLayout::Torch => import_torch(&file, provisional, batch),
        WeightsLayout::Keras => import_keras(&file, args.layers.as_deref(), provisional, batch),
    }
    .with_context(|| format!("weights file '{path}'"))?;
    let mut weights = weights;
    weights.config.outputs = args
        .outputs
        .map(Into::into)
        .or(Weights::stated_config(&file).map(|c| c.outputs))
        .unwrap_or_default();
    if head.is_none() {
        bail!("weights file '{path}' does not say what its output layer computes: pass --head softmax (classification) or --head linear (regression, Q-values)");
    }
    if !file.converted_f64.is_empty() {
        ctx.out.status(format!(
            "converted {} float64 tensor(s) to float32: {}",
            file.converted_f64.len(),
            file.converted_f64.join(", ")
        ));
    }
    let name = match args.name {
        Some(n) => n,
        None => args
            .file
            .file_stem()
            .and_then(|s| s.to_str())
            .map(|s| s.split('.').next().unwrap_or(s).to_string())
            .unwrap_or_else(|| "model".into()),
    };
    crate::limits::check_units(&weights.config.units)?;
    let model = models::register(
        &ctx.store,
        &Registration {
            name: &name,
            weights: &weights,
            training: None,
            replace: false,
        },
    )?;
    let naming = match layout {
        WeightsLayout::Torch => "torch",
        WeightsLayout::Keras => "keras",
    };
    let layout = model.config.layout().to_string();
    ctx.emit(
        json!({"model": name, "weights": model.record.weights.hex(), "layout": layout, "config": model.config, "naming": naming, "converted_f64": file.converted_f64}),
        || {
            format!(
                "imported model '{name}': {layout}, {} input(s), {} output(s) ({}), weights {}\nstream 'main' starts at zeros of batch {}",
                model.config.input_size,
                model.config.output_size,
                model.config.head.name(),
                model.record.weights.short(),
                model.config.batch_size
            )
        },
    );
    Ok(0)
}

/// Which naming scheme a weights file uses: PyTorch's (`weight_ih_l0`)
/// or Keras's (`.../kernel`); refuses a file with both or neither.
fn detect_layout(file: &TensorFile) -> Result<WeightsLayout> {
    let names = file.names();
    let torch = names.iter().any(|n| n.contains("weight_ih_l"));
    let keras = names
        .iter()
        .any(|n| n.ends_with("/kernel") || n.ends_with("recurrent_kernel"));
    match (torch, keras) {
        (true, false) => Ok(WeightsLayout::Torch),
        (false, true) => Ok(WeightsLayout::Keras),
        (true, true) => bail!("it holds both PyTorch names (weight_ih_l0) and Keras names (.../kernel); pass --layout torch or --layout keras"),
        (false, false) => bail!("its tensor names ({}) are neither PyTorch's (lstm.weight_ih_l0, ...) nor Keras's (lstm/kernel, ...); rename them, or pass --layout torch|keras", names.iter().take(6).cloned().collect::<Vec<_>>().join(", ")),
    }
}

fn list(ctx: &Context) -> Result<i32> {
    let models = ctx.store.list_models()?;
    let rows: Vec<serde_json::Value> = models
        .iter()
        .map(|m| {
            let config: serde_json::Value = serde_json::from_str(&m.config).unwrap_or_default();
            json!({"model": m.name, "weights": m.weights.hex(), "config": config, "created_at": m.created_at})
        })
        .collect();
    ctx.emit(json!({ "models": rows }), || {
        let mut text = format!(
            "{:<20} {:<14} {:<16} {:<8} {:<9} {}\n",
            "MODEL", "WEIGHTS", "LAYOUT", "HEAD", "ORIGIN", "CREATED (UTC)"
        );
        for m in &models {
            let config: Option<crate::model::ModelConfig> = serde_json::from_str(&m.config).ok();
            let (layout, head) = config
                .map(|c| (c.layout().to_string(), c.head.name().to_string()))
                .unwrap_or_default();
            let origin = if m.training.is_some() { "trained" } else { "imported" };
            text.push_str(&format!(
                "{:<20} {:<14} {:<16} {:<8} {:<9} {}\n",
                m.name,
                m.weights.short(),
                layout,
                head,
                origin,
                format_time(m.created_at)
            ));
        }
        if models.is_empty() {
            text = "no models yet; run `statectl train` or `statectl model import FILE --layout torch|keras`".into();
        }
        text
    });
    Ok(0)
}

fn show(ctx: &Context, args: ModelShowArgs) -> Result<i32> {
    let model = ctx.model(args.model.as_deref())?;
    let streams = ctx.store.streams_of(model.record.id)?;
    let training: Option<serde_json::Value> = model
        .record
        .training
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok());
    let stream_rows: Vec<serde_json::Value> = streams
        .iter()
        .map(|s| json!({"stream": s.name, "state": s.state.hex()}))
        .collect();
    ctx.emit(
        json!({
            "model": model.record.name,
            "weights": model.record.weights.hex(),
            "layout": model.config.layout().to_string(),
            "config": model.config,
            "training": training,
            "streams": stream_rows,
        }),
        || {
            let c = &model.config;
            let mut text = format!(
                "model    {}\nweights  {}\nlayout   {}\ninputs   {}\noutputs  {} ({})\nbatch    {}\n",
                model.record.name,
                model.record.weights.hex(),
                c.layout(),
                c.input_size,
                c.output_size,
                c.head.name(),
                c.batch_size
            );
            text.push_str(&format!("created  {} UTC\n", format_time(model.record.created_at)));
            match model.record.training.as_deref().map(|t| TrainingRecord::parse(&model.record.name, t)) {
                None => text.push_str("origin   imported\n"),
                Some(Err(e)) => text.push_str(&format!("origin   trained ({e})\n")),
                Some(Ok(t)) => {
                    let init = match &t.init {
                        InitSource::Seed { seed } => format!("seed {seed}"),
                        InitSource::Weights { weights } => format!("weights {}", &weights[..12.min(weights.len())]),
                    };
                    let tc = &t.train;
                    text.push_str(&format!(
                        "origin   trained on {} samples (data {}), init {init}\ntraining {} epoch(s), batch {}, Adam lr {}, {}, {}, record {}\n",
                        t.samples,
                        &t.data[..12.min(t.data.len())],
                        tc.epochs,
                        tc.batch_size,
                        tc.lr,
                        if tc.stateful { "stateful" } else { "not stateful" },
                        if tc.shuffle { "shuffled" } else { "in order" },
                        format!("{:?}", tc.record).to_lowercase(),
                    ));
                    let losses: Vec<String> = t.losses.iter().map(|l| format!("{l:.4}")).collect();
                    text.push_str(&format!("losses   {}\n", losses.join(" ")));
                    if let Some(a) = t.accuracy {
                        text.push_str(&format!("accuracy {:.1}% (last epoch)\n", a * 100.0));
                    }
                }
            }
            for s in &streams {
                text.push_str(&format!("stream   {} at {}\n", s.name, s.state.short()));
            }
            text
        },
    );
    Ok(0)
}

fn export(ctx: &Context, args: ModelExportArgs) -> Result<i32> {
    let model = ctx.model(Some(&args.model))?;
    let layout = args.layout.into();
    let bytes = match layout {
        // The stored file itself, re-hashed on load.
        WeightsLayout::Torch => ctx.store.load_weights(&model.record.weights)?,
        WeightsLayout::Keras => ctx.weights(&model)?.to_keras_file().encode(),
    };
    super::files::write_file(&args.output, &bytes)?;
    let naming = match layout {
        WeightsLayout::Torch => "torch",
        WeightsLayout::Keras => "keras",
    };
    ctx.emit(
        json!({"model": model.record.name, "weights": model.record.weights.hex(), "file": args.output.display().to_string(), "naming": naming}),
        || format!("wrote model '{}' ({naming} names) to {}", model.record.name, args.output.display()),
    );
    Ok(0)
}
