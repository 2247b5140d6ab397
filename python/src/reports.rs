//! The store's operations that answer with a report: each calls the
//! operation directly (no command line, no files) and returns its report
//! serialized as the CLI's `--json` gives it; `statectl/_reports.py` turns
//! that into typed objects.

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use serde::Serialize;

use statectl::model::{Head, Outputs, WeightsLayout};
use statectl::ops::backend::Backend;
use statectl::ops::burn_in::{self, BurnInRequest, TagBy};
use statectl::ops::catalog::{self, FileImport, ModelImport};
use statectl::ops::diff::{self, DiffRequest};
use statectl::ops::log::{self, LogRequest};
use statectl::ops::refs;
use statectl::ops::show::{self, ShowRequest};
use statectl::ops::since::cutoff;
use statectl::ops::tags::{self, TagRequest};
use statectl::ops::{gc, stack, verify};
use statectl::ops::{model_admin, models};
use statectl::tensors::Tensor;

use crate::errors::StatectlError;
use crate::streams::{self, AuditCall, RestoreCall};
use crate::{scope, tensor_file, tensor_of, Arrays, Store};

/// A report as JSON text, exactly the CLI's `--json` value (through
/// `serde_json::Value` as the CLI goes: float32 numbers print as the
/// float64 they widen to, which Python reads back to the same bits).
pub(crate) fn json(report: &impl Serialize) -> anyhow::Result<String> {
    Ok(serde_json::to_value(report)?.to_string())
}

/// An option's value from a fixed set, or an error naming the choices.
pub(crate) fn choice<T: Copy>(
    what: &str,
    given: Option<&str>,
    choices: &[(&str, T)],
) -> PyResult<Option<T>> {
    let Some(given) = given else { return Ok(None) };
    match choices.iter().find(|(name, _)| *name == given) {
        Some((_, value)) => Ok(Some(*value)),
        None => Err(StatectlError::new_err(format!(
            "{what}='{given}' is not one of: {}",
            choices
                .iter()
                .map(|(n, _)| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[pymethods]
impl Store {
    /// Names a state (the stream's HEAD by default); returns its id.
    #[pyo3(signature = (tag, reference, model=None, stream="main".to_string(), force=false))]
    fn snapshot(
        &self,
        py: Python<'_>,
        tag: String,
        reference: String,
        model: Option<String>,
        stream: String,
        force: bool,
    ) -> PyResult<String> {
        self.with(py, |store| {
            let model = models::find_optional(store, model.as_deref())?;
            let state = statectl::ops::snapshot::snapshot(
                store,
                &reference,
                scope(model.as_ref(), &stream),
                &TagRequest { name: tag, force },
            )?;
            Ok(state.hex())
        })
    }

    /// Sets a stream to a stored state, a broadcast slot or a selection.
    #[pyo3(signature = (reference, model=None, stream="main".to_string(), slot=None, slots=None, batch_size=None))]
    #[allow(clippy::too_many_arguments)]
    fn restore(
        &self,
        py: Python<'_>,
        reference: String,
        model: Option<String>,
        stream: String,
        slot: Option<usize>,
        slots: Option<Vec<usize>>,
        batch_size: Option<usize>,
    ) -> PyResult<String> {
        let call = RestoreCall {
            reference,
            model,
            stream,
            slot,
            slots,
            batch_size,
        };
        self.with(py, |store| call.run(&mut Backend::Embedded(store)))
    }

    /// Sets a stream to zeros.
    #[pyo3(signature = (model=None, stream="main".to_string(), batch_size=None))]
    fn reset(
        &self,
        py: Python<'_>,
        model: Option<String>,
        stream: String,
        batch_size: Option<usize>,
    ) -> PyResult<String> {
        self.with(py, |store| {
            streams::reset(
                &mut Backend::Embedded(store),
                model.as_deref(),
                &stream,
                batch_size,
            )
        })
    }

    /// Runs stored states through a prefix and stores the states reached.
    #[pyo3(signature = (references, x, model=None, per_slot=false, tag=None, tag_prefix=None, force=false, tag_by="source"))]
    #[allow(clippy::too_many_arguments)]
    fn burn_in(
        &self,
        py: Python<'_>,
        references: Vec<String>,
        x: PyBuffer<f32>,
        model: Option<String>,
        per_slot: bool,
        tag: Option<String>,
        tag_prefix: Option<String>,
        force: bool,
        tag_by: &str,
    ) -> PyResult<String> {
        let options = BurnInOptions::new(per_slot, tag, tag_prefix, force, tag_by)?;
        let x = tensor_of(py, "x", &x)?;
        self.with(py, |store| {
            let references = refs::expand(store, &references, &[])?;
            options.run(
                &mut Backend::Embedded(store),
                model.as_deref(),
                &references,
                &x,
            )
        })
    }

    /// The journal, newest first.
    #[pyo3(signature = (model=None, stream="main".to_string(), all=false, kind=None, since=None, limit=None))]
    #[allow(clippy::too_many_arguments)]
    fn log(
        &self,
        py: Python<'_>,
        model: Option<String>,
        stream: String,
        all: bool,
        kind: Option<String>,
        since: Option<String>,
        limit: Option<usize>,
    ) -> PyResult<String> {
        self.with(py, |store| {
            let since = since.map(|s| cutoff("since", &s)).transpose()?;
            let model = match all {
                true => None,
                false => Some(models::find(store, model.as_deref())?),
            };
            json(&log::run(
                store,
                &LogRequest {
                    scope: model.as_ref().map(|m| (m, stream.as_str())),
                    kind,
                    since,
                    limit,
                },
            )?)
        })
    }

    /// One state's layout, slots, tags, origin, statistics (and values).
    #[pyo3(signature = (reference, model=None, stream="main".to_string(), values=false))]
    fn show(
        &self,
        py: Python<'_>,
        reference: String,
        model: Option<String>,
        stream: String,
        values: bool,
    ) -> PyResult<String> {
        self.with(py, |store| {
            let model = models::find_optional(store, model.as_deref())?;
            json(&show::run(
                store,
                &ShowRequest {
                    reference: &reference,
                    scope: scope(model.as_ref(), &stream),
                    values,
                },
            )?)
        })
    }

    /// Compares two states (and with `inputs`, the model's answers).
    #[pyo3(signature = (a, b, inputs=None, per_slot=false, tolerance=None, model=None, stream="main".to_string()))]
    #[allow(clippy::too_many_arguments)]
    fn diff(
        &self,
        py: Python<'_>,
        a: String,
        b: String,
        inputs: Option<PyBuffer<f32>>,
        per_slot: bool,
        tolerance: Option<f64>,
        model: Option<String>,
        stream: String,
    ) -> PyResult<String> {
        let inputs = inputs.map(|x| tensor_of(py, "inputs", &x)).transpose()?;
        self.with(py, |store| {
            let pair = DiffPair {
                a: &a,
                b: &b,
                inputs: inputs.as_ref(),
                per_slot,
                tolerance,
            };
            pair.run(&mut Backend::Embedded(store), model.as_deref(), &stream)
        })
    }

    /// Replays recorded predictions (and trainings) bit for bit.
    #[pyo3(signature = (model=None, stream=None, events=Vec::new(), since=None, tag=None, tolerance=None, train=None, allow_empty=false))]
    #[allow(clippy::too_many_arguments)]
    fn audit(
        &self,
        py: Python<'_>,
        model: Option<String>,
        stream: Option<String>,
        events: Vec<i64>,
        since: Option<String>,
        tag: Option<String>,
        tolerance: Option<f64>,
        train: Option<String>,
        allow_empty: bool,
    ) -> PyResult<String> {
        let call = AuditCall {
            model,
            stream,
            events,
            since,
            tag,
            tolerance,
            train,
            allow_empty,
        };
        // One snapshot of the store for the whole audit.
        self.with(py, |store| {
            store.read(|store| call.run(&mut Backend::Embedded(store)))
        })
    }

    /// Re-hashes everything stored and checks every link.
    #[pyo3(signature = (repair=false))]
    fn verify(&self, py: Python<'_>, repair: bool) -> PyResult<String> {
        self.with(py, |store| json(&verify::run(store, repair)?))
    }

    /// Collects what nothing reaches, after the optional journal cutoff
    /// and replay-buffer retention (the CLI's `gc`).
    #[pyo3(signature = (dry_run=false, keep_events_since=None, keep_newest=None, prefix=None))]
    fn gc(
        &self,
        py: Python<'_>,
        dry_run: bool,
        keep_events_since: Option<String>,
        keep_newest: Option<usize>,
        prefix: Option<String>,
    ) -> PyResult<String> {
        self.with(py, |store| {
            let cutoff = keep_events_since
                .as_deref()
                .map(|text| statectl::ops::since::cutoff("keep_events_since", text))
                .transpose()?;
            let retention = match (keep_newest, prefix) {
                (Some(keep_newest), Some(prefix)) => Some(gc::Retention {
                    prefix,
                    keep_newest,
                }),
                (None, None) => None,
                _ => anyhow::bail!(
                    "keep_newest and prefix go together: gc(keep_newest=1000, prefix=\"buf/\")"
                ),
            };
            json(&gc::run(store, cutoff, dry_run, retention.as_ref())?)
        })
    }

    /// Every tag, in natural order.
    fn tags(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |store| json(&tags::list(store)?))
    }

    /// Deletes a tag (journalled).
    fn delete_tag(&self, py: Python<'_>, name: String) -> PyResult<String> {
        self.with(py, |store| json(&tags::delete(store, &name)?))
    }

    /// Deletes the tags named or matched by patterns, in one transaction.
    fn delete_tags(&self, py: Python<'_>, names: Vec<String>) -> PyResult<String> {
        self.with(py, |store| json(&tags::delete_many(store, &names)?))
    }

    /// Removes a model and its streams (journalled).
    fn delete_model(&self, py: Python<'_>, name: String) -> PyResult<String> {
        self.with(py, |store| json(&model_admin::delete(store, &name)?))
    }

    /// Gives a model a new name (journalled).
    fn rename_model(&self, py: Python<'_>, name: String, new_name: String) -> PyResult<String> {
        self.with(py, |store| {
            json(&model_admin::rename(store, &name, &new_name)?)
        })
    }

    /// The models in the store.
    fn models(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |store| json(&catalog::list(store)?))
    }

    /// One model in full (the newest when `name` is None).
    #[pyo3(signature = (name=None))]
    fn model(&self, py: Python<'_>, name: Option<String>) -> PyResult<String> {
        self.with(py, |store| json(&catalog::show(store, name.as_deref())?))
    }

    /// Registers weights (PyTorch or Keras names) as a model.
    #[pyo3(signature = (tensors, name, head=None, layout=None, batch_size=1, outputs=None, layers=None, force=false))]
    #[allow(clippy::too_many_arguments)]
    fn import_model(
        &self,
        py: Python<'_>,
        tensors: Arrays,
        name: String,
        head: Option<String>,
        layout: Option<String>,
        batch_size: usize,
        outputs: Option<String>,
        layers: Option<Vec<String>>,
        force: bool,
    ) -> PyResult<String> {
        let head = head_choice(head.as_deref())?;
        let layout = choice(
            "layout",
            layout.as_deref(),
            &[
                ("torch", WeightsLayout::Torch),
                ("keras", WeightsLayout::Keras),
            ],
        )?;
        let outputs = outputs_choice(outputs.as_deref())?;
        let file = tensor_file(py, &tensors)?;
        self.with(py, |store| {
            json(&catalog::import(
                store,
                &ModelImport {
                    name: &name,
                    source: "(the arrays)",
                    file: &file,
                    layout,
                    head,
                    outputs,
                    layers: layers.as_deref(),
                    batch_size: Some(batch_size),
                    replace: force,
                },
            )?)
        })
    }

    /// Registers a model file (safetensors, `.keras`, `.weights.h5`, `.pt`)
    /// as a model; what the file says need not be repeated.
    #[pyo3(signature = (path, name=None, head=None, batch_size=None, outputs=None, layers=None, force=false))]
    #[allow(clippy::too_many_arguments)]
    fn import_model_file(
        &self,
        py: Python<'_>,
        path: std::path::PathBuf,
        name: Option<String>,
        head: Option<String>,
        batch_size: Option<usize>,
        outputs: Option<String>,
        layers: Option<Vec<String>>,
        force: bool,
    ) -> PyResult<String> {
        let head = head_choice(head.as_deref())?;
        let outputs = outputs_choice(outputs.as_deref())?;
        self.with(py, |store| {
            json(&catalog::import_file(
                store,
                &FileImport {
                    path: &path,
                    name: name.as_deref(),
                    layout: None,
                    head,
                    outputs,
                    layers: layers.as_deref(),
                    batch_size,
                    replace: force,
                },
            )?)
        })
    }

    /// Stacks states of one layout into one batch; returns its id.
    #[pyo3(signature = (references, tag=None, force=false, model=None, stream="main".to_string()))]
    fn stack(
        &self,
        py: Python<'_>,
        references: Vec<String>,
        tag: Option<String>,
        force: bool,
        model: Option<String>,
        stream: String,
    ) -> PyResult<String> {
        self.with(py, |store| {
            let model = models::find_optional(store, model.as_deref())?;
            let references = refs::expand(store, &references, &[])?;
            let stacked = stack::stack(
                store,
                &references,
                statectl::ops::refs::Scope {
                    zeros_batch: Some(1),
                    ..scope(model.as_ref(), &stream)
                },
                tag.map(|name| TagRequest { name, force }).as_ref(),
            )?;
            Ok(stacked.state.hex())
        })
    }

    /// One one-slot state per slot, tagged prefix + slot; returns their ids.
    #[pyo3(signature = (reference, tag_prefix, force=false, model=None, stream="main".to_string()))]
    fn split(
        &self,
        py: Python<'_>,
        reference: String,
        tag_prefix: String,
        force: bool,
        model: Option<String>,
        stream: String,
    ) -> PyResult<Vec<String>> {
        self.with(py, |store| {
            let model = models::find_optional(store, model.as_deref())?;
            let (_, parts) = stack::split(
                store,
                &reference,
                scope(model.as_ref(), &stream),
                &tag_prefix,
                force,
            )?;
            Ok(parts.iter().map(|p| p.state.hex()).collect())
        })
    }
}

/// What `diff` takes from Python besides the store and the model: the
/// same for a local and a shared store.
pub(crate) struct DiffPair<'a> {
    pub a: &'a str,
    pub b: &'a str,
    pub inputs: Option<&'a Tensor>,
    pub per_slot: bool,
    pub tolerance: Option<f64>,
}

impl DiffPair<'_> {
    /// Compares the two states with the model called `model` (the newest
    /// without a name, none if the store has none); the report as JSON.
    pub(crate) fn run(
        &self,
        backend: &mut Backend,
        model: Option<&str>,
        stream: &str,
    ) -> anyhow::Result<String> {
        let model = backend.optional_model(model)?;
        if let (Some(x), Some(model)) = (self.inputs, &model) {
            statectl::input::check_input(x, "inputs", model.config.input_size)?;
        }
        json(&diff::run_on(
            backend,
            &DiffRequest {
                a: self.a,
                b: self.b,
                scope: scope(model.as_ref(), stream),
                per_slot: self.per_slot,
                tolerance: self.tolerance,
                input: self.inputs,
            },
        )?)
    }
}

/// What burn-in takes from Python besides the store, the refs, the prefix
/// and the model: the same for a local and a shared store.
pub(crate) struct BurnInOptions {
    per_slot: bool,
    tag: Option<String>,
    tag_prefix: Option<String>,
    force: bool,
    tag_by: TagBy,
}

impl BurnInOptions {
    pub(crate) fn new(
        per_slot: bool,
        tag: Option<String>,
        tag_prefix: Option<String>,
        force: bool,
        tag_by: &str,
    ) -> PyResult<BurnInOptions> {
        let tag_by = choice(
            "tag_by",
            Some(tag_by),
            &[("source", TagBy::Source), ("row", TagBy::Row)],
        )?
        .unwrap_or_default();
        Ok(BurnInOptions {
            per_slot,
            tag,
            tag_prefix,
            force,
            tag_by,
        })
    }

    /// Burns `references` in by `x` with the model called `model` (the
    /// newest without a name); the report as JSON.
    pub(crate) fn run(
        self,
        backend: &mut Backend,
        model: Option<&str>,
        references: &[String],
        x: &Tensor,
    ) -> anyhow::Result<String> {
        let model = backend.model(model)?;
        statectl::input::check_input(x, "x", model.config.input_size)?;
        json(&burn_in::run_on(
            backend,
            &BurnInRequest {
                model: &model,
                references,
                x,
                per_slot: self.per_slot,
                tag: self.tag.map(|name| TagRequest {
                    name,
                    force: self.force,
                }),
                tag_prefix: self.tag_prefix,
                tag_by: self.tag_by,
                force: self.force,
            },
        )?)
    }
}

/// `head=` as Python gives it: `softmax`, `linear` or None.
fn head_choice(head: Option<&str>) -> PyResult<Option<Head>> {
    choice(
        "head",
        head,
        &[("softmax", Head::Softmax), ("linear", Head::Linear)],
    )
}

/// `outputs=` as Python gives it: `last`, `sequence` or None.
fn outputs_choice(outputs: Option<&str>) -> PyResult<Option<Outputs>> {
    choice(
        "outputs",
        outputs,
        &[("last", Outputs::Last), ("sequence", Outputs::Sequence)],
    )
}
