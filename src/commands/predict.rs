//! `statectl predict`: run a batch from a stream's state (or `--from REF`),
//! record input, output and new state with a predict event, and advance
//! the stream.

use anyhow::{bail, Result};
use serde_json::json;

use super::context::Context;
use super::Output;
use crate::cli::PredictArgs;
use crate::id::StateId;
use crate::input::{read_input, read_series};
use crate::model::Head;
use crate::ops::backend::Backend;
use crate::ops::predict::{self, output_file, PredictReport, PredictRequest};
use crate::ops::Model;
use crate::shared::SharedStore;
use crate::tensors::Tensor;

/// Values of `shape` as nested JSON arrays: `[batch][out]` or
/// `[batch][steps][out]`.
fn nested(values: &[f32], shape: &[usize]) -> serde_json::Value {
    match shape {
        [] | [_] => json!(values),
        [_, rest @ ..] => {
            let width: usize = rest.iter().product();
            serde_json::Value::Array(
                values
                    .chunks(width.max(1))
                    .map(|chunk| nested(chunk, rest))
                    .collect(),
            )
        }
    }
}

/// The `-o` file of a prediction, if one was asked for.
struct OutputFile<'a> {
    path: Option<&'a std::path::Path>,
    staged: Option<super::files::StagedFile>,
}

impl predict::Outputs for OutputFile<'_> {
    fn stage(&mut self, prediction: &crate::model::Prediction) -> Result<()> {
        if let Some(path) = self.path {
            // A retry stages again; the earlier temp file goes on drop.
            self.staged = Some(super::files::StagedFile::write(
                path,
                &output_file(prediction).encode(),
            )?);
        }
        Ok(())
    }

    fn publish(&mut self) -> Result<()> {
        match self.staged.as_mut() {
            Some(file) => file.commit(),
            None => Ok(()),
        }
    }
}

pub fn run(ctx: &Context, args: PredictArgs) -> Result<i32> {
    predict_on(&mut Backend::Embedded(&ctx.store), &ctx.out, args)
}

/// `predict` on a shared store: the stream there moves by compare-and-set.
pub fn run_on_shared(url: &str, out: &Output, args: PredictArgs) -> Result<i32> {
    if let Some(path) = &args.output {
        super::files::check_output_path(path)?;
    }
    let mut shared = SharedStore::open(url)?;
    predict_on(&mut Backend::Shared(&mut shared), out, args)
}

fn predict_on(backend: &mut Backend, out: &Output, args: PredictArgs) -> Result<i32> {
    if let Some(path) = &args.output {
        super::files::check_output_path(path)?;
    }
    let model = backend.model(args.stream.model.as_deref())?;
    let x = match (&args.input, &args.series) {
        (Some(input), _) => read_input(input, model.config.input_size)?,
        (None, Some(series)) => read_series(series, model.config.input_size)?,
        (None, None) => bail!("give the input: --input FILE, or --series FILE"),
    };
    if args.forecast.is_some() {
        check_forecastable(&model)?;
    }
    let stream = &args.stream.stream;
    // The -o file is written to a temp name before the write lock, and
    // moved into place inside the transaction that records the prediction:
    // a file that cannot be written or moved records nothing.
    let mut output = OutputFile {
        path: args.output.as_deref(),
        staged: None,
    };
    let report = predict::run_on(
        backend,
        &PredictRequest {
            model: &model,
            stream,
            x: &x,
            from: args.from.as_deref(),
            advance: !args.no_advance,
            tag: args.tag.request(),
            retry: args.retry,
            kernel: args.kernel.into(),
            new_stream: args.new_stream,
        },
        &mut output,
    )?;
    let pred = &report.prediction;
    let mut json = json!({
        "event": report.event,
        "model": model.record.name,
        "stream": stream,
        "state_before": report.state_before.hex(),
        "state_after": report.state_after.hex(),
        "input": report.input.hex(),
        "output": report.output.hex(),
        "outputs": nested(&pred.outputs, &pred.shape),
        "created_stream": report.created_stream,
    });
    if model.config.head == Head::Softmax {
        json["logits"] = nested(&pred.logits, &pred.shape);
    }
    if report.created_stream {
        out.status(format!(
            "created stream '{stream}' of model '{}', starting from zeros",
            model.record.name
        ));
    }
    out.status(format!(
        "event {}: state {} -> {}{}",
        report.event,
        report.state_before.short(),
        report.state_after.short(),
        if args.no_advance {
            " (stream not advanced)"
        } else {
            ""
        }
    ));
    let mut text = render(&pred.outputs, &pred.shape, model.config.head);
    if let Some(steps) = args.forecast {
        let ahead = forecast(backend, &args, &model, &report, steps as usize)?;
        json["forecast"] = json!(ahead.values);
        json["forecast_events"] = json!(ahead.events);
        json["forecast_state_after"] = json!(ahead.state_after.hex());
        text.push_str(&render_forecast(&ahead.values));
    }
    out.emit(json, || text);
    Ok(0)
}

/// Forecasting feeds outputs back as inputs: a linear head at the last
/// step with as many outputs as the model reads features.
fn check_forecastable(model: &Model) -> Result<()> {
    let c = &model.config;
    if c.head != Head::Linear || !c.outputs.is_last() || c.output_size != c.input_size {
        bail!(
            "model '{}' cannot forecast: its {} head gives {} output(s) {}, but a forecast feeds each output back as the next step's {} input feature(s); forecast with a linear, last-step model whose outputs are its inputs (train one with --data SERIES.csv and as many outputs as columns)",
            model.record.name,
            c.head.name(),
            c.output_size,
            if c.outputs.is_last() { "at the last step" } else { "at every step" },
            c.input_size
        );
    }
    Ok(())
}

/// The steps a forecast predicted, each one recorded.
struct Forecast {
    values: Vec<Vec<f32>>,
    events: Vec<i64>,
    state_after: StateId,
}

/// Predicts `steps` more steps after the series, each from the state the
/// one before left, its input the output before it.
fn forecast(
    backend: &mut Backend,
    args: &PredictArgs,
    model: &Model,
    first: &PredictReport,
    steps: usize,
) -> Result<Forecast> {
    let features = model.config.input_size;
    let mut next = first.prediction.outputs.clone();
    let mut state = first.state_after;
    let mut ahead = Forecast {
        values: Vec::with_capacity(steps),
        events: Vec::with_capacity(steps),
        state_after: state,
    };
    for _ in 0..steps {
        let x = Tensor::new(vec![1, 1, features], next);
        // Advancing: the stream's HEAD is the state the step before left.
        // Not advancing: name that state outright.
        let from = state.hex();
        let report = predict::run_on(
            backend,
            &PredictRequest {
                model,
                stream: &args.stream.stream,
                x: &x,
                from: args.no_advance.then_some(from.as_str()),
                advance: !args.no_advance,
                tag: None,
                retry: false,
                kernel: args.kernel.into(),
                new_stream: false,
            },
            &mut OutputFile {
                path: None,
                staged: None,
            },
        )?;
        next = report.prediction.outputs.clone();
        ahead.values.push(next.clone());
        ahead.events.push(report.event);
        state = report.state_after;
    }
    ahead.state_after = state;
    Ok(ahead)
}

fn render_forecast(values: &[Vec<f32>]) -> String {
    let mut text = String::from("forecast:\n");
    for (i, row) in values.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:.6}")).collect();
        text.push_str(&format!("{:>+4}  {}\n", i + 1, cells.join("  ")));
    }
    text
}

/// A table for people: for softmax heads the top classes per row (and per
/// step, for per-step outputs).
fn render(outputs: &[f32], shape: &[usize], head: Head) -> String {
    let width = *shape.last().unwrap_or(&1);
    let steps = if shape.len() == 3 { shape[1] } else { 1 };
    let mut text = String::new();
    for (i, values) in outputs.chunks(width.max(1)).enumerate() {
        let row = if steps > 1 {
            format!("{:>3} step {:>3}", i / steps, i % steps)
        } else {
            format!("{i:>3}")
        };
        match head {
            Head::Softmax => {
                let mut ranked: Vec<(usize, f32)> = values.iter().copied().enumerate().collect();
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                let top: Vec<String> = ranked
                    .iter()
                    .take(3)
                    .map(|(c, p)| format!("class {c:>3} p={p:.6}"))
                    .collect();
                text.push_str(&format!("row {row}  {}\n", top.join("   ")));
            }
            Head::Linear => {
                let vals: Vec<String> = values.iter().map(|v| format!("{v:.6}")).collect();
                text.push_str(&format!("row {row}  {}\n", vals.join(" ")));
            }
        }
    }
    text
}
