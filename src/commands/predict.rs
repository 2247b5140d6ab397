//! `statectl predict`: run a batch from a stream's state (or `--from REF`),
//! record input, output and new state with a predict event, and advance
//! the stream.

use anyhow::{bail, Result};
use serde_json::json;

use super::context::{platform, Context, Model};
use crate::cli::PredictArgs;
use crate::id::{ObjectId, StateId};
use crate::input::read_input;
use crate::model::{predict, Head, Prediction};
use crate::state::StateValue;
use crate::store::NewEvent;
use crate::tensors::{Tensor, TensorFile};

/// The output object: `outputs` and `logits`, both `[batch, out]`.
pub fn output_file(pred: &Prediction, batch: usize, out: usize) -> TensorFile {
    let mut file = TensorFile::default();
    file.insert(
        "outputs",
        Tensor::new(vec![batch, out], pred.outputs.clone()),
    );
    file.insert("logits", Tensor::new(vec![batch, out], pred.logits.clone()));
    file
}

pub fn input_file(x: &Tensor) -> TensorFile {
    let mut file = TensorFile::default();
    file.insert("x", x.clone());
    file
}

/// Explains a batch mismatch and how to re-batch.
pub fn check_batch(state: &StateValue, id: &StateId, input_batch: usize) -> Result<()> {
    let batch = state.batch();
    if batch != input_batch {
        let picks: Vec<String> = (0..input_batch).map(|i| (i % batch).to_string()).collect();
        bail!(
            "the input has batch {input_batch} but state {} has {batch} slot(s); re-batch the stream first: `statectl restore {} --slots {}`, `statectl restore {} --slot 0 --batch-size {input_batch}`, or `statectl reset --batch-size {input_batch}`",
            id.short(),
            id.short(),
            picks.join(","),
            id.short()
        );
    }
    Ok(())
}

/// What `predict` recorded.
pub struct PredictReport {
    pub event: i64,
    pub state_before: StateId,
    pub state_after: StateId,
    pub input: ObjectId,
    pub output: ObjectId,
    pub prediction: Prediction,
}

/// Runs and records one prediction; shared with the demo.
pub fn run_and_record(
    ctx: &Context,
    model: &Model,
    stream: &str,
    x: &Tensor,
    from: Option<&str>,
    advance: bool,
    tag: Option<(&str, bool)>,
) -> Result<PredictReport> {
    let weights = ctx.weights(model)?;
    let input_batch = x.shape[0];
    ctx.store.write(|store| -> Result<PredictReport> {
        let before_id = match from {
            Some(r) => ctx.resolve(r, Some(model), stream, Some(input_batch))?,
            None => ctx.ensure_stream(model, stream, input_batch)?,
        };
        let before = store.load_state(&before_id)?;
        ctx.check_layout(&before, &before_id, model)?;
        check_batch(&before, &before_id, input_batch)?;
        let prediction = predict(&weights, x, &before)?;
        let after_id = prediction.state.id();
        if let Some((name, force)) = tag {
            ctx.check_tag_free(name, Some(&after_id), force)?;
        }
        let input = store.put_object(&input_file(x).encode())?;
        let output = store.put_object(
            &output_file(&prediction, input_batch, model.config.output_size).encode(),
        )?;
        store.put_state(&prediction.state)?;
        let event = NewEvent {
            kind: "predict",
            model: model.event_model(),
            stream: Some(stream.to_string()),
            state_before: Some(before_id),
            state_after: Some(after_id),
            input: Some(input),
            output: Some(output),
            detail: json!({ "platform": platform() }),
            ..Default::default()
        };
        let event = if advance {
            ctx.move_stream(model, stream, after_id, event)?
        } else {
            store.append_event(&event)?
        };
        if let Some((name, _)) = tag {
            ctx.set_tag(name, &after_id, Some(model))?;
        }
        Ok(PredictReport {
            event,
            state_before: before_id,
            state_after: after_id,
            input,
            output,
            prediction,
        })
    })
}

fn rows(values: &[f32], width: usize) -> Vec<Vec<f32>> {
    values.chunks(width).map(|r| r.to_vec()).collect()
}

pub fn run(ctx: &Context, args: PredictArgs) -> Result<i32> {
    if let Some(path) = &args.output {
        super::context::check_output_path(path)?;
    }
    let model = ctx.model(args.stream.model.as_deref())?;
    let x = read_input(&args.input, model.config.input_size)?;
    let stream = &args.stream.stream;
    let report = run_and_record(
        ctx,
        &model,
        stream,
        &x,
        args.from.as_deref(),
        !args.no_advance,
        args.tag.as_deref().map(|t| (t, args.force)),
    )?;
    let out = model.config.output_size;
    let pred = &report.prediction;
    if let Some(path) = &args.output {
        super::export::write_file(path, &output_file(pred, x.shape[0], out).encode())?;
    }
    let mut json = json!({
        "event": report.event,
        "model": model.record.name,
        "stream": stream,
        "state_before": report.state_before.hex(),
        "state_after": report.state_after.hex(),
        "input": report.input.hex(),
        "output": report.output.hex(),
        "outputs": rows(&pred.outputs, out),
    });
    if model.config.head == Head::Softmax {
        json["logits"] = serde_json::to_value(rows(&pred.logits, out))?;
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
    ctx.out
        .emit(json, || render(&pred.outputs, out, model.config.head));
    Ok(0)
}

/// A table for people: for softmax heads the top classes per row.
fn render(outputs: &[f32], width: usize, head: Head) -> String {
    let mut text = String::new();
    for (row, values) in outputs.chunks(width).enumerate() {
        match head {
            Head::Softmax => {
                let mut ranked: Vec<(usize, f32)> = values.iter().copied().enumerate().collect();
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                let top: Vec<String> = ranked
                    .iter()
                    .take(3)
                    .map(|(c, p)| format!("class {c:>3} p={p:.6}"))
                    .collect();
                text.push_str(&format!("row {row:>3}  {}\n", top.join("   ")));
            }
            Head::Linear => {
                let vals: Vec<String> = values.iter().map(|v| format!("{v:.6}")).collect();
                text.push_str(&format!("row {row:>3}  {}\n", vals.join(" ")));
            }
        }
    }
    text
}
