//! `statectl predict`: run a batch from a stream's state (or `--from REF`),
//! record input, output and new state with a predict event, and advance
//! the stream.

use anyhow::Result;
use serde_json::json;

use super::context::Context;
use crate::cli::PredictArgs;
use crate::input::read_input;
use crate::model::Head;
use crate::ops::predict::{self, output_file, PredictRequest};

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
    if let Some(path) = &args.output {
        super::files::check_output_path(path)?;
    }
    let model = ctx.model(args.stream.model.as_deref())?;
    let x = read_input(&args.input, model.config.input_size)?;
    let stream = &args.stream.stream;
    // The -o file is written to a temp name before the write lock, and
    // moved into place inside the transaction that records the prediction:
    // a file that cannot be written or moved records nothing.
    let mut output = OutputFile {
        path: args.output.as_deref(),
        staged: None,
    };
    let report = predict::run(
        &ctx.store,
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
        ctx.out.status(format!(
            "created stream '{stream}' of model '{}', starting from zeros",
            model.record.name
        ));
    }
    ctx.out.status(format!(
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
    ctx.emit(json, || {
        render(&pred.outputs, &pred.shape, model.config.head)
    });
    Ok(0)
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
