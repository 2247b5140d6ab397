//! Push and pull between the open store and a shared store (PostgreSQL).
//! A push opens a connection of its own to the store's folder and does not
//! hold the store's lock: an actor's `put_states` and `predict` go on while
//! a push runs on another thread (`Store.push_in_background`).

use std::sync::Mutex;

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use statectl::ops::backend::Backend;
use statectl::ops::import::ImportRequest;
use statectl::ops::models::LayoutMismatch;
use statectl::ops::refs::Scope;
use statectl::ops::shared_writes;
use statectl::ops::stack;
use statectl::ops::tags::TagRequest;
use statectl::state::{FileStates, StateValue};

use statectl::ops::pull::{self, PullRequest};
use statectl::ops::push::{self, PushRequest};
use statectl::store::Store as SqlStore;

use crate::errors::Failure;
use crate::reports::{json, BurnInOptions, DiffPair};
use crate::streams::{self, AuditCall, PredictCall, RestoreCall};
use crate::{slot_tags, stacked_tensors, state_of, tensor_file, Arrays, OutTensor, Store};

#[pymethods]
impl Store {
    /// Sends what the shared store at `url` lacks; the report as JSON.
    #[pyo3(signature = (url, tags=None, force=false, retry=false))]
    fn push(
        &self,
        py: Python<'_>,
        url: String,
        tags: Option<String>,
        force: bool,
        retry: bool,
    ) -> PyResult<String> {
        self.check_process().map_err(Failure::into_py)?;
        // A closed store refuses, as every other call does.
        self.locked(|_| Ok(())).map_err(Failure::into_py)?;
        let path = self.path.clone();
        py.allow_threads(|| {
            let store = SqlStore::open_existing(&path)?;
            let request = PushRequest {
                url,
                tags,
                force,
                retry,
            };
            json(&push::push(&store, &request)?)
        })
        .map_err(|e| Failure::Op(e).into_py())
    }

    /// Copies the shared store's refs and the content they need into this
    /// store; the report as JSON.
    #[pyo3(signature = (url, tags=None, force=false))]
    fn pull(
        &self,
        py: Python<'_>,
        url: String,
        tags: Option<String>,
        force: bool,
    ) -> PyResult<String> {
        self.with(py, |store| {
            json(&pull::pull(store, &PullRequest { url, tags, force })?)
        })
    }
}

/// A shared store opened for a learner's reads (`statectl.SharedStore`):
/// states straight from the server, each slot re-hashed, no pull first.
#[pyclass(module = "statectl._native")]
pub struct SharedStore {
    inner: Mutex<Option<statectl::shared::SharedStore>>,
    shown: String,
}

#[pymethods]
impl SharedStore {
    #[new]
    #[pyo3(signature = (url, cache_bytes=0))]
    fn new(py: Python<'_>, url: String, cache_bytes: usize) -> PyResult<SharedStore> {
        let mut store = py
            .allow_threads(|| statectl::shared::SharedStore::open(&url))
            .map_err(|e| Failure::Op(e).into_py())?;
        store.set_read_cache(cache_bytes);
        Ok(SharedStore {
            shown: store.shown().to_string(),
            inner: Mutex::new(Some(store)),
        })
    }

    /// The URL without its password.
    #[getter]
    fn url(&self) -> String {
        self.shown.clone()
    }

    /// The states `refs` name (tags or full ids), stacked in that order.
    fn get_states(
        &self,
        py: Python<'_>,
        refs: Vec<String>,
    ) -> PyResult<(Vec<String>, Vec<OutTensor>)> {
        let loaded = self.with(py, |store| {
            let loaded = store.load_states(&refs)?;
            if let Some(first) = loaded.first().map(|(_, v)| v.layout.clone()) {
                if let Some(i) = loaded.iter().position(|(_, v)| v.layout != first) {
                    return Err(LayoutMismatch(format!(
                        "'{}' is a {} state but '{}' is a {} state; get states of one layout at a time",
                        refs[i], loaded[i].1.layout, refs[0], first
                    ))
                    .into());
                }
            }
            Ok(loaded)
        })?;
        let ids = loaded.iter().map(|(id, _)| id.hex()).collect();
        let values: Vec<StateValue> = loaded.into_iter().map(|(_, v)| v).collect();
        Ok((ids, stacked_tensors(py, &values)?))
    }

    /// Writes one state straight to the shared store; returns its id.
    #[pyo3(signature = (tensors, tag=None, force=false, allow_nonfinite=false))]
    fn put_state(
        &self,
        py: Python<'_>,
        tensors: Arrays,
        tag: Option<String>,
        force: bool,
        allow_nonfinite: bool,
    ) -> PyResult<String> {
        let file = tensor_file(py, &tensors)?;
        self.with(py, |store| {
            let request = ImportRequest {
                file_name: "(python)",
                states: FileStates::Single(state_of(&file)?),
                per_slot: false,
                tag,
                tag_prefix: None,
                force,
                allow_nonfinite,
            };
            let written = shared_writes::run(store, request)?;
            Ok(written.states[0].state.hex())
        })
    }

    /// Writes every slot of a batch straight to the shared store as a
    /// one-slot state, in one transaction under one journal entry; returns
    /// the ids in slot order.
    #[pyo3(signature = (tensors, tags=None, tag_prefix=None, force=false, allow_nonfinite=false))]
    fn put_states(
        &self,
        py: Python<'_>,
        tensors: Arrays,
        tags: Option<Vec<String>>,
        tag_prefix: Option<String>,
        force: bool,
        allow_nonfinite: bool,
    ) -> PyResult<Vec<String>> {
        let tags = slot_tags(tags, tag_prefix)?;
        let file = tensor_file(py, &tensors)?;
        self.with(py, |store| {
            let value = state_of(&file)?;
            let written =
                shared_writes::put_slots(store, "(python)", value, tags, force, allow_nonfinite)?;
            Ok(written.states.iter().map(|s| s.state.hex()).collect())
        })
    }

    /// Runs states read from the shared store through a prefix with a model
    /// there, and stores the states reached there; the report as JSON.
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
        let x = crate::tensor_of(py, "x", &x)?;
        self.with(py, |store| {
            let references = expand(store, &references)?;
            options.run(
                &mut Backend::Shared(store),
                model.as_deref(),
                &references,
                &x,
            )
        })
    }

    /// Runs and records one prediction on a stream of the shared store
    /// (moved by compare-and-set), exactly as `statectl predict` does.
    #[pyo3(signature = (x, model=None, stream="main".to_string(), from_=None, advance=true, tag=None, force=false, retry=false, kernel="fused", new_stream=false))]
    #[allow(clippy::too_many_arguments)]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: PyBuffer<f32>,
        model: Option<String>,
        stream: String,
        from_: Option<String>,
        advance: bool,
        tag: Option<String>,
        force: bool,
        retry: bool,
        kernel: &str,
        new_stream: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let call = PredictCall::new(
            py,
            &x,
            model,
            stream,
            from_,
            advance,
            (tag, force),
            retry,
            kernel,
            new_stream,
        )?;
        self.with(py, |store| call.run(&mut Backend::Shared(store)))?
            .into_dict(py)
    }

    /// Sets a stream of the shared store to a state there, a broadcast
    /// slot or a selection; the report as JSON.
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
        self.with(py, |store| call.run(&mut Backend::Shared(store)))
    }

    /// Sets a stream of the shared store to zeros; the report as JSON.
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
                &mut Backend::Shared(store),
                model.as_deref(),
                &stream,
                batch_size,
            )
        })
    }

    /// Replays the shared store's recorded predictions (and trainings)
    /// bit for bit from what it holds; the report as JSON.
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
        self.with(py, |store| call.run(&mut Backend::Shared(store)))
    }

    /// Stacks states of one layout into one batch on the shared store;
    /// returns its id.
    #[pyo3(signature = (references, tag=None, force=false))]
    fn stack(
        &self,
        py: Python<'_>,
        references: Vec<String>,
        tag: Option<String>,
        force: bool,
    ) -> PyResult<String> {
        self.with(py, |store| {
            let references = expand(store, &references)?;
            let stacked = stack::stack_on(
                &mut Backend::Shared(store),
                &references,
                shared_scope(),
                tag.map(|name| TagRequest { name, force }).as_ref(),
            )?;
            Ok(stacked.state.hex())
        })
    }

    /// One one-slot state per slot, tagged prefix + slot, on the shared
    /// store; returns their ids.
    #[pyo3(signature = (reference, tag_prefix, force=false))]
    fn split(
        &self,
        py: Python<'_>,
        reference: String,
        tag_prefix: String,
        force: bool,
    ) -> PyResult<Vec<String>> {
        self.with(py, |store| {
            let (_, parts) = stack::split_on(
                &mut Backend::Shared(store),
                &reference,
                shared_scope(),
                &tag_prefix,
                force,
            )?;
            Ok(parts.iter().map(|p| p.state.hex()).collect())
        })
    }

    /// Compares two states on the shared store (and with `inputs`, the
    /// model's answers from each); the report as JSON.
    #[pyo3(signature = (a, b, inputs=None, per_slot=false, tolerance=None, model=None))]
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
    ) -> PyResult<String> {
        let inputs = inputs
            .map(|x| crate::tensor_of(py, "inputs", &x))
            .transpose()?;
        self.with(py, |store| {
            let pair = DiffPair {
                a: &a,
                b: &b,
                inputs: inputs.as_ref(),
                per_slot,
                tolerance,
            };
            pair.run(&mut Backend::Shared(store), model.as_deref(), "main")
        })
    }

    /// The shared store's journal, newest first (with `model`, one of its
    /// streams), each event with its origin; as JSON.
    #[pyo3(signature = (model=None, stream="main".to_string(), kind=None, since=None, limit=None))]
    fn log(
        &self,
        py: Python<'_>,
        model: Option<String>,
        stream: String,
        kind: Option<String>,
        since: Option<String>,
        limit: Option<usize>,
    ) -> PyResult<String> {
        self.with(py, |store| {
            let since = since
                .map(|s| statectl::ops::since::cutoff("since", &s))
                .transpose()?;
            json(&statectl::ops::log::run_on_shared(
                store,
                &statectl::ops::log::SharedLogRequest {
                    scope: model.as_deref().map(|m| (m, stream.as_str())),
                    kind,
                    since,
                    limit,
                },
            )?)
        })
    }

    /// Names a state on the shared store; returns its id.
    #[pyo3(signature = (tag, reference, model=None, force=false))]
    fn snapshot(
        &self,
        py: Python<'_>,
        tag: String,
        reference: String,
        model: Option<String>,
        force: bool,
    ) -> PyResult<String> {
        self.with(py, |store| {
            let mut backend = Backend::Shared(store);
            let model = backend.optional_model(model.as_deref())?;
            let state = statectl::ops::snapshot::snapshot_on(
                &mut backend,
                &reference,
                Scope {
                    model: model.as_ref(),
                    ..shared_scope()
                },
                &TagRequest { name: tag, force },
            )?;
            Ok(state.hex())
        })
    }

    /// Every tag and the state it names, in natural order, as JSON.
    fn tags(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |store| {
            let mut tags = store.tag_records()?;
            tags.sort_by(|a, b| statectl::ops::refs::natural_cmp(&a.name, &b.name));
            json(&tags)
        })
    }

    /// Deletes the tags named or matched by patterns, in one transaction.
    fn delete_tags(&self, py: Python<'_>, names: Vec<String>) -> PyResult<String> {
        self.with(py, |store| {
            json(&statectl::ops::tags::delete_many_on_shared(store, &names)?)
        })
    }

    /// The read cache's size and hits as JSON (`null` without one).
    fn cache_info(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |store| json(&store.read_cache_stats()))
    }

    /// Checks the whole shared store; the report as JSON (`ok`, `report`).
    fn verify(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |store| {
            json(&statectl::ops::verify::VerifyOutcome::of_shared(
                store.verify()?,
            ))
        })
    }

    /// Closes the connection; later reads raise.
    fn close(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// Refs with tag patterns (`"buf/*"`) expanded against the shared
/// store's tags.
fn expand(
    store: &mut statectl::shared::SharedStore,
    references: &[String],
) -> anyhow::Result<Vec<String>> {
    statectl::ops::refs::expand_with(references, &[], || {
        Ok(store.tags()?.into_iter().map(|t| t.name).collect())
    })
}

/// A shared store's refs are tags and full ids: no model or stream scope.
fn shared_scope() -> Scope<'static> {
    Scope {
        model: None,
        stream: "main",
        zeros_batch: None,
    }
}

impl SharedStore {
    /// Runs `work` on the open connection, without the GIL.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        work: impl FnOnce(&mut statectl::shared::SharedStore) -> anyhow::Result<T> + Send,
    ) -> PyResult<T> {
        py.allow_threads(|| {
            let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let store = guard
                .as_mut()
                .ok_or_else(|| anyhow::anyhow!("the shared store {} was closed", self.shown))?;
            work(store)
        })
        .map_err(|e| Failure::Op(e).into_py())
    }
}
