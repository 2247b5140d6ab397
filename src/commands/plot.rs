//! `statectl plot loss|state|staleness`: charts of what the store holds,
//! drawn by `charts` as SVG or PNG (by the output's extension).

use anyhow::Result;
use serde_json::json;

use super::context::Context;
use crate::charts::{self, GroupedBars, Heatmaps, LineChart, Panel};
use crate::cli::PlotCommand;
use crate::input::read_input;
use crate::ops::plot_data;

pub fn run(ctx: &Context, cmd: PlotCommand) -> Result<i32> {
    let (output, what) = match cmd {
        PlotCommand::Loss {
            models,
            output,
            log_scale,
        } => {
            let chart = losses(ctx, &models, log_scale)?;
            charts::write(&output, &chart)?;
            (output, format!("losses of {}", models.join(", ")))
        }
        PlotCommand::State {
            reference,
            output,
            stream,
        } => {
            let model = ctx.optional_model(stream.model.as_deref())?;
            let state = ctx.resolve(&reference, model.as_ref(), &stream.stream, None)?;
            let value = &state.value;
            let mut panels = Vec::new();
            for (layer, units) in value.layout.units.iter().enumerate() {
                for (k, name) in value.layout.cell.tensors().iter().enumerate() {
                    panels.push(Panel {
                        title: format!("l{layer}.{name}"),
                        rows: value.batch(),
                        cols: *units,
                        values: value.layer_tensor(layer, k),
                    });
                }
            }
            // A stream's HEAD (or HEAD~N) says whose stream it is.
            let whose = match &model {
                Some(m) if reference.starts_with("HEAD") => {
                    format!(" of model '{}', stream '{}'", m.record.name, stream.stream)
                }
                _ => String::new(),
            };
            let chart = Heatmaps {
                title: format!(
                    "state {}{whose} ({}): {} ({}, batch {})",
                    reference,
                    state.id.short(),
                    "slots x units",
                    value.layout,
                    value.batch()
                ),
                panels,
            };
            charts::write(&output, &chart)?;
            (output, format!("state {}", state.id.short()))
        }
        PlotCommand::Staleness {
            a,
            b,
            input,
            output,
            stream,
        } => {
            let model = ctx.model(stream.model.as_deref())?;
            let x = read_input(&input, model.config.input_size)?;
            let batch = x.shape[0];
            let stale =
                plot_data::staleness_against(&ctx.store, &model, &stream.stream, &x, &a, &b)?;
            let series = b
                .iter()
                .zip(stale)
                .map(|(other, s)| {
                    (
                        format!("{other} (mean {:.3e})", s.mean_over_slots),
                        s.per_slot,
                    )
                })
                .collect();
            let chart = GroupedBars {
                title: format!(
                    "model '{}', staleness against {a}: max|y_a - y_b| / max|y_a| per slot",
                    model.record.name
                ),
                x_label: "slot".into(),
                y_label: "staleness".into(),
                groups: (0..batch).map(|i| i.to_string()).collect(),
                series,
            };
            charts::write(&output, &chart)?;
            (output, format!("staleness of {} against {a}", b.join(", ")))
        }
    };
    ctx.emit(json!({"file": output.display().to_string()}), || {
        format!("wrote {what} to {}", output.display())
    });
    Ok(0)
}

/// One loss per epoch as points at epochs 1, 2, ...
fn by_epoch(losses: &[f32]) -> Vec<(f64, f64)> {
    losses
        .iter()
        .enumerate()
        .map(|(e, l)| (e as f64 + 1.0, *l as f64))
        .collect()
}

/// Per-epoch losses of each model, and per-batch ones where recorded.
fn losses(ctx: &Context, models: &[String], log_y: bool) -> Result<LineChart> {
    let mut series = Vec::new();
    for model in plot_data::losses(&ctx.store, models)? {
        let name = &model.model;
        if !model.per_batch.is_empty() {
            let per_epoch = model.per_batch.len() as f64 / model.per_epoch.len().max(1) as f64;
            let batches = model
                .per_batch
                .iter()
                .enumerate()
                .map(|(b, l)| ((b as f64 + 1.0) / per_epoch, *l as f64))
                .collect();
            series.push((format!("{name} (per batch)"), batches));
        }
        series.push((format!("{name} (per epoch)"), by_epoch(&model.per_epoch)));
        if !model.validation.is_empty() {
            series.push((format!("{name} (validation)"), by_epoch(&model.validation)));
        }
    }
    Ok(LineChart {
        title: "training loss".into(),
        x_label: "epoch".into(),
        y_label: if log_y { "loss (log scale)" } else { "loss" }.into(),
        series,
        log_y,
    })
}
