//! Predict-and-record: run a batch from a stream's state (or from a ref),
//! then record input, output, new state and a predict event, and advance
//! the stream. The forward pass runs before the transaction; the commit
//! checks that the stream has not moved meanwhile.

use anyhow::Result;
use serde_json::json;

use super::backend::Backend;
use super::backend_streams::{object_id, StreamEntry, StreamWrite};
use super::models::Model;
use super::refs::{Resolved, Scope};
use super::streams::{self, Expect, StreamMoved};
use super::tags::{self, TagRequest};
use crate::id::{ObjectId, StateId};
use crate::kernels::Kernel;
use crate::model::{predict_with, Prediction, Weights};
use crate::state::StateValue;
use crate::store::{NewEvent, Store};
use crate::tensors::{Tensor, TensorFile};

/// What to predict.
pub struct PredictRequest<'a> {
    pub model: &'a Model,
    pub stream: &'a str,
    /// `[batch, steps, features]`.
    pub x: &'a Tensor,
    /// Start from this ref instead of the stream's HEAD.
    pub from: Option<&'a str>,
    /// Move the stream to the new state.
    pub advance: bool,
    pub tag: Option<TagRequest>,
    /// When another command moves the stream first, recompute from its new
    /// state instead of failing.
    pub retry: bool,
    /// What computes it (recorded with the event).
    pub kernel: Kernel,
    /// The stream may be new even if its name is one typo away from an
    /// existing one.
    pub new_stream: bool,
}

/// What was recorded.
#[derive(Debug, Clone)]
pub struct PredictReport {
    pub event: i64,
    pub state_before: StateId,
    pub state_after: StateId,
    pub input: ObjectId,
    pub output: ObjectId,
    pub prediction: Prediction,
    /// The stream did not exist before this prediction.
    pub created_stream: bool,
}

/// The output object: `outputs` and `logits`, both `[batch, out]` (or
/// `[batch, steps, out]` for per-step outputs).
pub fn output_file(pred: &Prediction) -> TensorFile {
    let mut file = TensorFile::default();
    file.insert(
        "outputs",
        Tensor::new(pred.shape.clone(), pred.outputs.clone()),
    );
    file.insert(
        "logits",
        Tensor::new(pred.shape.clone(), pred.logits.clone()),
    );
    file
}

/// The input object: `x`.
pub fn input_file(x: &Tensor) -> TensorFile {
    let mut file = TensorFile::default();
    file.insert("x", x.clone());
    file
}

/// An input whose batch is not the state's: what each front end explains
/// with its own way to re-batch.
#[derive(Debug, thiserror::Error)]
#[error("the input has batch {input_batch} but state {label} has {batch} slot(s); re-batch the stream first: `statectl restore {label} --slots {}`, `statectl restore {label} --slot 0 --batch-size {input_batch}`, or `statectl reset --batch-size {input_batch}`", self.picks().join(","))]
pub struct BatchMismatch {
    pub input_batch: usize,
    /// The state as the caller named it.
    pub label: String,
    pub batch: usize,
}

impl BatchMismatch {
    /// Slots that re-batch the state to the input's batch, cycling (at
    /// most 64 shown).
    pub fn picks(&self) -> Vec<String> {
        (0..self.input_batch.min(64))
            .map(|i| (i % self.batch.max(1)).to_string())
            .collect()
    }
}

/// Refuses an input whose batch is not the state's, saying how to re-batch.
pub fn check_batch(state: &StateValue, label: &str, input_batch: usize) -> Result<()> {
    let batch = state.batch();
    if batch != input_batch {
        return Err(BatchMismatch {
            input_batch,
            label: label.to_string(),
            batch,
        }
        .into());
    }
    Ok(())
}

/// Where a prediction starts.
struct Start {
    state: Resolved,
    /// The stream's head when the state was read (`from` a ref: whatever
    /// it is, unless the stream advances).
    head: Option<StateId>,
}

fn read_start(backend: &mut Backend, req: &PredictRequest) -> Result<Start> {
    let model = req.model;
    let batch = req.x.shape[0];
    backend.reading(|backend| {
        let head = backend.stream_head(model, req.stream)?;
        if head.is_none() {
            backend.check_new_stream(model, req.stream, req.new_stream)?;
        }
        let state = match (req.from, head) {
            (Some(r), _) => backend
                .sources(
                    &[r.to_string()],
                    Scope {
                        model: Some(model),
                        stream: req.stream,
                        zeros_batch: Some(batch),
                    },
                )?
                .remove(0),
            (None, Some(id)) => Resolved {
                id,
                value: backend.load_state(&id)?,
                stored: true,
            },
            // A new stream starts at zeros of the input's batch.
            (None, None) => {
                let value = StateValue::zeros(&model.config.layout(), batch);
                Resolved {
                    id: value.id(),
                    value,
                    stored: false,
                }
            }
        };
        model.check_layout(&state.value, &state.id.short())?;
        check_batch(&state.value, &state.id.short(), batch)?;
        Ok(Start { state, head })
    })
}

/// Records one computed prediction in one write: its input, output and
/// new state, a predict entry, the stream's move (a new stream's first
/// use journalled as a reset to zeros before it) and the tag.
fn record(
    backend: &mut Backend,
    req: &PredictRequest,
    start: &Start,
    prediction: Prediction,
    before_commit: &mut dyn FnMut() -> Result<()>,
) -> Result<PredictReport> {
    let model = req.model;
    let after_id = prediction.state.id();
    let mut states = Vec::new();
    let mut entries = Vec::new();
    let mut expected_head = start.head;
    if req.from.is_none() && start.head.is_none() {
        // First use of the stream: it starts at zeros, journalled as a reset.
        crate::limits::check_batch(req.x.shape[0])?;
        entries.push(StreamEntry {
            event: NewEvent {
                state_after: Some(start.state.id),
                ..streams::reset_entry(req.x.shape[0])
            },
            moves: Some(Expect::Head(None)),
        });
        expected_head = Some(start.state.id);
    }
    if !start.state.stored {
        states.push(&start.state.value);
    }
    states.push(&prediction.state);
    let input_bytes = input_file(req.x).encode();
    let output_bytes = output_file(&prediction).encode();
    let (input, output) = (object_id(&input_bytes), object_id(&output_bytes));
    // From a ref, the stream jumps to the result wherever it was; what it
    // was is checked all the same, to journal it truly.
    let moves = req.advance.then_some(match req.from {
        Some(_) => Expect::Any,
        None => Expect::Head(expected_head),
    });
    entries.push(StreamEntry {
        event: NewEvent {
            kind: "predict",
            state_before: Some(start.state.id),
            state_after: Some(after_id),
            input: Some(input),
            output: Some(output),
            detail: json!({ "platform": super::platform(), "kernel": req.kernel.name() }),
            ..Default::default()
        },
        moves,
    });
    let numbers = backend.write_stream(
        &StreamWrite {
            model,
            stream: req.stream,
            states,
            objects: vec![input_bytes, output_bytes],
            entries,
            tag: req.tag.as_ref().map(|tag| (tag, after_id)),
        },
        before_commit,
    )?;
    Ok(PredictReport {
        event: numbers.last().copied().unwrap_or_default(),
        state_before: start.state.id,
        state_after: after_id,
        input,
        output,
        prediction,
        created_stream: start.head.is_none() && (req.from.is_none() || req.advance),
    })
}

/// What a caller does with a prediction beside recording it (the CLI's
/// `-o` file), in two steps so that a failure of either records nothing.
pub trait Outputs {
    /// After the prediction is computed, before the write lock: the slow
    /// part (write the file under a temp name). Runs again on a retry.
    fn stage(&mut self, prediction: &Prediction) -> Result<()>;
    /// Inside the write, after the rows are in and before the commit: the
    /// quick part (move the file into place). An error rolls back.
    fn publish(&mut self) -> Result<()>;
}

/// A closure is an [`Outputs`] that only stages (nothing to publish):
/// `&mut |_: &Prediction| Ok(())` records the prediction and nothing else.
impl<F: FnMut(&Prediction) -> Result<()>> Outputs for F {
    fn stage(&mut self, prediction: &Prediction) -> Result<()> {
        self(prediction)
    }
    fn publish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Runs and records one prediction on a local store, with `outputs`
/// staged before and published inside the transaction that records it.
pub fn run(
    store: &Store,
    req: &PredictRequest,
    outputs: &mut dyn Outputs,
) -> Result<PredictReport> {
    run_on(&mut Backend::Embedded(store), req, outputs)
}

/// Runs and records one prediction on either store.
pub fn run_on(
    backend: &mut Backend,
    req: &PredictRequest,
    outputs: &mut dyn Outputs,
) -> Result<PredictReport> {
    let weights: Weights = backend.weights(req.model)?;
    if let Some(tag) = &req.tag {
        tags::check_tag_name(&tag.name)?;
        if let Backend::Embedded(store) = backend {
            tags::check_tag_free(store, &tag.name, None, true)?;
        }
    }
    // A bounded number of rounds: each one lost to a writer that made
    // progress, so the store is never stuck, only busy.
    let mut rounds = 0;
    loop {
        let start = read_start(backend, req)?;
        let prediction = predict_with(req.kernel, &weights, req.x, &start.state.value)?;
        outputs.stage(&prediction)?;
        let recorded = record(backend, req, &start, prediction, &mut || outputs.publish());
        match recorded {
            Err(e) if req.retry && rounds < 100 && e.downcast_ref::<StreamMoved>().is_some() => {
                rounds += 1;
            }
            other => return other,
        }
    }
}

/// Runs and records a prediction inside the caller's write (the demo,
/// whose whole run is one transaction).
pub fn run_in(store: &Store, weights: &Weights, req: &PredictRequest) -> Result<PredictReport> {
    let backend = &mut Backend::Embedded(store);
    let start = read_start(backend, req)?;
    let prediction = predict_with(req.kernel, weights, req.x, &start.state.value)?;
    record(backend, req, &start, prediction, &mut || Ok(()))
}
