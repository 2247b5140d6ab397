//! Predict, restore, reset and audit for both Python stores: the same
//! arguments, checked once, run through `ops::backend::Backend` on a local
//! store or a shared one.

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use statectl::kernels::Kernel;
use statectl::model::Head;
use statectl::ops::audit::{self, AuditRequest};
use statectl::ops::backend::Backend;
use statectl::ops::predict::{self, PredictReport, PredictRequest};
use statectl::ops::restore::{self, RestoreRequest};
use statectl::ops::since::cutoff;
use statectl::ops::tags::TagRequest;
use statectl::tensors::Tensor;

use crate::errors::StatectlError;
use crate::reports::json;
use crate::{bytearray_of, tensor_of};

/// A prediction's arguments, checked.
pub struct PredictCall {
    x: Tensor,
    model: Option<String>,
    stream: String,
    from: Option<String>,
    advance: bool,
    tag: Option<TagRequest>,
    retry: bool,
    kernel: Kernel,
    new_stream: bool,
}

/// A recorded prediction and what its dict needs of the model.
pub struct Predicted {
    report: PredictReport,
    model: String,
    head: Head,
}

impl PredictCall {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        py: Python<'_>,
        x: &PyBuffer<f32>,
        model: Option<String>,
        stream: String,
        from: Option<String>,
        advance: bool,
        (tag, force): (Option<String>, bool),
        retry: bool,
        kernel: &str,
        new_stream: bool,
    ) -> PyResult<PredictCall> {
        let kernel = match kernel {
            "fused" | "fused-1" => Kernel::Fused,
            "candle" => Kernel::Candle,
            other => {
                return Err(StatectlError::new_err(format!(
                    "unknown kernel '{other}'; use 'fused' (the default) or 'candle'"
                )))
            }
        };
        Ok(PredictCall {
            x: tensor_of(py, "x", x)?,
            model,
            stream,
            from,
            advance,
            tag: tag.map(|name| TagRequest { name, force }),
            retry,
            kernel,
            new_stream,
        })
    }

    /// Runs and records the prediction, as `statectl predict` does.
    pub fn run(&self, backend: &mut Backend) -> anyhow::Result<Predicted> {
        let model = backend.model(self.model.as_deref())?;
        statectl::input::check_input(&self.x, "x", model.config.input_size)?;
        let report = predict::run_on(
            backend,
            &PredictRequest {
                model: &model,
                stream: &self.stream,
                x: &self.x,
                from: self.from.as_deref(),
                advance: self.advance,
                tag: self.tag.clone(),
                retry: self.retry,
                kernel: self.kernel,
                new_stream: self.new_stream,
            },
            &mut |_: &statectl::model::Prediction| Ok(()),
        )?;
        Ok(Predicted {
            report,
            model: model.record.name.clone(),
            head: model.config.head,
        })
    }
}

impl Predicted {
    /// The dict `statectl.Prediction` is made from.
    pub fn into_dict(self, py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
        let report = &self.report;
        let pred = &report.prediction;
        let out = PyDict::new(py);
        out.set_item("event", report.event)?;
        out.set_item("created_stream", report.created_stream)?;
        out.set_item("model", &self.model)?;
        out.set_item("state_before", report.state_before.hex())?;
        out.set_item("state_after", report.state_after.hex())?;
        out.set_item("input", report.input.hex())?;
        out.set_item("output", report.output.hex())?;
        out.set_item("shape", pred.shape.clone())?;
        out.set_item("outputs", bytearray_of(py, &[&pred.outputs])?)?;
        out.set_item(
            "logits",
            match self.head {
                Head::Softmax => Some(bytearray_of(py, &[&pred.logits])?),
                Head::Linear => None,
            },
        )?;
        Ok(out)
    }
}

/// Where `restore` sets a stream.
pub struct RestoreCall {
    pub reference: String,
    pub model: Option<String>,
    pub stream: String,
    pub slot: Option<usize>,
    pub slots: Option<Vec<usize>>,
    pub batch_size: Option<usize>,
}

impl RestoreCall {
    /// Sets the stream; the report as JSON.
    pub fn run(&self, backend: &mut Backend) -> anyhow::Result<String> {
        let model = backend.model(self.model.as_deref())?;
        json(&restore::restore_on(
            backend,
            &RestoreRequest {
                model: &model,
                stream: &self.stream,
                reference: &self.reference,
                slot: self.slot,
                slots: self.slots.as_deref(),
                batch_size: self.batch_size,
            },
        )?)
    }
}

/// Sets a stream to zeros; the report as JSON.
pub fn reset(
    backend: &mut Backend,
    model: Option<&str>,
    stream: &str,
    batch_size: Option<usize>,
) -> anyhow::Result<String> {
    let model = backend.model(model)?;
    json(&restore::reset_on(backend, &model, stream, batch_size)?)
}

/// What `audit` replays.
pub struct AuditCall {
    pub model: Option<String>,
    pub stream: Option<String>,
    pub events: Vec<i64>,
    pub since: Option<String>,
    pub tag: Option<String>,
    pub tolerance: Option<f64>,
    pub train: Option<String>,
    pub allow_empty: bool,
}

impl AuditCall {
    /// Replays what the call selects; the report as JSON.
    pub fn run(self, backend: &mut Backend) -> anyhow::Result<String> {
        let request = AuditRequest {
            since: self.since.map(|s| cutoff("since", &s)).transpose()?,
            model: self.model,
            stream: self.stream,
            events: self.events,
            tag: self.tag,
            tolerance: self.tolerance,
            train: self.train,
            allow_empty: self.allow_empty,
        };
        json(&audit::run_on(
            backend,
            &request,
            &mut |_, _| {},
            &mut |_| {},
        )?)
    }
}
