//! `statectl model import|list|show|export|delete|rename`.

use anyhow::Result;
use serde_json::json;

use super::context::{format_time, Context, Output};
use super::render::describe_run;
use crate::cli::{ExportFormatArg, ModelCommand, ModelExportArgs, ModelImportArgs, ModelShowArgs};
use crate::ops::backend::Backend;
use crate::ops::catalog::{self, FileImport};
use crate::ops::model_admin;
use crate::ops::train::{InitSource, TrainingRecord};
use crate::shared::SharedStore;

pub fn run(ctx: &Context, cmd: ModelCommand) -> Result<i32> {
    match cmd {
        ModelCommand::Import(args) => import(ctx, args),
        ModelCommand::List => list(ctx),
        ModelCommand::Show(args) => show(ctx, args),
        ModelCommand::Export(args) => export(ctx, args),
        ModelCommand::Delete { name } => delete(ctx, &name),
        ModelCommand::Rename { from, to } => rename(ctx, &from, &to),
    }
}

fn import(ctx: &Context, args: ModelImportArgs) -> Result<i32> {
    let imported = catalog::import_file(
        &ctx.store,
        &FileImport {
            path: &args.file,
            name: args.name.as_deref(),
            layout: args.layout.map(Into::into),
            head: args.head.map(Into::into),
            outputs: args.outputs.map(Into::into),
            layers: args.layers.as_deref(),
            batch_size: args.batch_size.map(|b| b as usize),
            replace: args.force,
        },
    )?;
    let name = &imported.model;
    for note in &imported.notes {
        ctx.out.status(note.clone());
    }
    if !imported.converted_f64.is_empty() {
        ctx.out.status(format!(
            "converted {} float64 tensor(s) to float32: {}",
            imported.converted_f64.len(),
            imported.converted_f64.join(", ")
        ));
    }
    ctx.emit_report(&imported, || {
        let c = &imported.config;
        format!(
            "imported model '{name}' from {}: {}, {} input(s), {} output(s) ({}), weights {}\nstream 'main' starts at zeros of batch {}",
            imported.origin.as_ref().map(|o| o.format.as_str()).unwrap_or("arrays"),
            imported.layout,
            c.input_size,
            c.output_size,
            c.head.name(),
            imported.weights.short(),
            c.batch_size
        )
    })
}

/// `model list` and `model show` on a shared store's URL (the others
/// change a local store's catalog, or write a local file).
pub fn run_on_shared(url: &str, out: &Output, cmd: ModelCommand) -> Result<i32> {
    let mut shared = SharedStore::open(url)?;
    let backend = &mut Backend::Shared(&mut shared);
    match cmd {
        ModelCommand::List => list_report(out, catalog::list_on(backend)?, Vec::new()),
        ModelCommand::Show(args) => show_report(out, catalog::show_on(backend, args.model.as_deref())?),
        _ => Err(anyhow::anyhow!(
            "on a shared store `model` lists and shows; import, export, delete and rename run on a local store (push sends a model there)"
        )),
    }
}

fn list(ctx: &Context) -> Result<i32> {
    let models = catalog::list(&ctx.store)?;
    let runs = crate::ops::runs::list(&ctx.store)?;
    list_report(&ctx.out, models, runs)
}

fn list_report(
    out: &Output,
    models: Vec<catalog::ModelSummary>,
    runs: Vec<crate::ops::runs::RunSummary>,
) -> Result<i32> {
    out.emit_report(&json!({ "models": models, "runs": runs }), || {
        let unfinished: String = runs.iter().map(|r| describe_run(r) + "\n").collect();
        if models.is_empty() {
            return unfinished + "no models yet; run `statectl train` or `statectl model import FILE --layout torch|keras`";
        }
        let mut text = format!(
            "{:<20} {:<14} {:<16} {:<8} {:<9} {}\n",
            "MODEL", "WEIGHTS", "LAYOUT", "HEAD", "ORIGIN", "CREATED (UTC)"
        );
        for m in &models {
            let config: Option<crate::model::ModelConfig> =
                serde_json::from_value(m.config.clone()).ok();
            let (layout, head) = config
                .map(|c| (c.layout().to_string(), c.head.name().to_string()))
                .unwrap_or_default();
            let origin = if m.trained { "trained" } else { "imported" };
            text.push_str(&format!(
                "{:<20} {:<14} {:<16} {:<8} {:<9} {}\n",
                m.model,
                m.weights.short(),
                layout,
                head,
                origin,
                format_time(m.created_at)
            ));
        }
        text + &unfinished
    })
}

fn show(ctx: &Context, args: ModelShowArgs) -> Result<i32> {
    show_report(&ctx.out, catalog::show(&ctx.store, args.model.as_deref())?)
}

fn show_report(out: &Output, model: catalog::ModelDetail) -> Result<i32> {
    out.emit_report(&model, || {
            let c = &model.config;
            let mut text = format!(
                "model    {}\nweights  {}\nlayout   {}\ninputs   {}\noutputs  {} ({})\nbatch    {}\n",
                model.model,
                model.weights.hex(),
                c.layout(),
                c.input_size,
                c.output_size,
                c.head.name(),
                c.batch_size
            );
            text.push_str(&format!("created  {} UTC\n", format_time(model.created_at)));
            match model.training_text.as_deref().map(|t| TrainingRecord::parse(&model.model, t)) {
                None => text.push_str(&match &model.origin {
                    Some(o) => format!("origin   imported from {} ({}, sha256 {})\n", o.file, o.format, &o.sha256[..16.min(o.sha256.len())]),
                    None => "origin   imported\n".to_string(),
                }),
                Some(Err(e)) => text.push_str(&format!("origin   trained ({e})\n")),
                Some(Ok(t)) => {
                    let init = match &t.init {
                        InitSource::Seed { seed } => format!("seed {seed}"),
                        InitSource::Weights { weights, model: None } => format!("weights {}", &weights[..12.min(weights.len())]),
                        InitSource::Weights { weights, model: Some(from) } => format!("weights {} of model '{from}' (fine-tuned)", &weights[..12.min(weights.len())]),
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
                    if !t.val_losses.is_empty() {
                        let v: Vec<String> = t.val_losses.iter().map(|l| format!("{l:.4}")).collect();
                        text.push_str(&format!("val loss {}\n", v.join(" ")));
                    }
                    if let Some(epoch) = t.stopped_early {
                        text.push_str(&format!("stopped  early, after epoch {epoch} of {} (patience {})\n", tc.epochs, tc.patience.unwrap_or(0)));
                    }
                    if let Some(a) = t.accuracy {
                        text.push_str(&format!("accuracy {:.1}% (last epoch)\n", a * 100.0));
                    }
                }
            }
            for s in &model.streams {
                text.push_str(&format!("stream   {} at {}\n", s.stream, s.state.short()));
            }
            text
    })
}

fn export(ctx: &Context, args: ModelExportArgs) -> Result<i32> {
    let model = ctx.model(Some(&args.model))?;
    let layout = args.layout.into();
    let (bytes, naming) = match args.format {
        ExportFormatArg::Safetensors => (
            catalog::export_weights(&ctx.store, &model, layout)?,
            catalog::naming(layout),
        ),
        ExportFormatArg::Keras => (catalog::export_keras(&ctx.store, &model)?, "keras-model"),
    };
    super::files::write_file(&args.output, &bytes)?;
    ctx.emit(
        json!({"model": model.record.name, "weights": model.record.weights.hex(), "file": args.output.display().to_string(), "naming": naming}),
        || match args.format {
            ExportFormatArg::Keras => format!(
                "wrote model '{}' as a Keras 3 model (stateful, batch {}) to {}",
                model.record.name,
                model.config.batch_size,
                args.output.display()
            ),
            ExportFormatArg::Safetensors => format!(
                "wrote model '{}' ({naming} names) to {}",
                model.record.name,
                args.output.display()
            ),
        },
    );
    Ok(0)
}

fn delete(ctx: &Context, name: &str) -> Result<i32> {
    if ctx.store.find_model(name)?.is_none() && ctx.store.find_run(name)?.is_some() {
        let deleted = crate::ops::runs::delete(&ctx.store, name)?;
        return ctx.emit_report(&deleted, || {
            format!("deleted unfinished training run '{name}' and its checkpoints")
        });
    }
    let deleted = model_admin::delete(&ctx.store, name)?;
    ctx.emit_report(&deleted, || {
        format!(
            "deleted model '{}' (weights {}) and its stream(s) {}; its events stay in the journal",
            deleted.model,
            deleted.weights.short(),
            deleted.streams.join(", ")
        )
    })
}

fn rename(ctx: &Context, from: &str, to: &str) -> Result<i32> {
    let renamed = model_admin::rename(&ctx.store, from, to)?;
    ctx.emit_report(&renamed, || format!("renamed model '{from}' to '{to}'"))
}
