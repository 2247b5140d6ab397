//! `statectl._native`: the store and operations of the CLI, in-process.
//!
//! One `Store` holds one open store (one SQLite connection) behind a mutex,
//! so Python threads may share it; every call releases the GIL while it
//! works. Arrays cross as buffers (numpy float32, C order): read once into
//! the tensors the operations take, and handed back as `bytearray`s that
//! numpy wraps without another copy. Reports (log, show, diff, audit, ...)
//! are the operations' own typed reports, serialized as the CLI's `--json`
//! gives them (the Python half turns them into typed objects), so the two
//! front ends cannot drift apart.

mod arrays;
mod errors;
mod fork;
mod forward;
mod reports;
mod sharing;
mod streams;
mod training;

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict};

use statectl::ops::backend::Backend;
use statectl::ops::import::{self, ImportRequest, PerSlotImport, SlotTags};
use statectl::ops::models::{self, LayoutMismatch};
use statectl::ops::refs::{self, Scope};
use statectl::state::tensor_slots::TensorSlots;
use statectl::state::{states_from_file, FileStates, StateValue};
use statectl::store::fork_gate;
use statectl::store::Store as SqlStore;
use statectl::tensors::{Tensor, TensorFile};

use errors::{Failure, StatectlError};

/// Named float32 arrays, as Python hands them over.
type Arrays = Vec<(String, PyBuffer<f32>)>;

/// A tensor handed back: name, shape, and its float32 bytes.
type OutTensor = (String, Vec<usize>, Py<PyByteArray>);

/// Copies the arrays into a tensor file (the form the operations read
/// state and weight files in). The one copy lets the GIL go while the
/// operation runs, whatever Python does to the arrays meanwhile.
fn tensor_file(py: Python<'_>, arrays: &Arrays) -> PyResult<TensorFile> {
    let mut file = TensorFile::default();
    for (name, buffer) in arrays {
        if !buffer.is_c_contiguous() {
            return Err(arrays::not_contiguous(name));
        }
        file.insert(
            name,
            Tensor::new(buffer.shape().to_vec(), buffer.to_vec(py)?),
        );
    }
    Ok(file)
}

/// How `put_states` names its slots: a name each, or a prefix.
fn slot_tags(tags: Option<Vec<String>>, tag_prefix: Option<String>) -> PyResult<SlotTags> {
    match (tags, tag_prefix) {
        (Some(_), Some(_)) => Err(StatectlError::new_err(
            "pass tags (one name per slot) or tag_prefix (prefix + slot number), not both",
        )),
        (Some(names), None) => Ok(SlotTags::Names(names)),
        (None, Some(prefix)) => Ok(SlotTags::Prefix(prefix)),
        (None, None) => Ok(SlotTags::None),
    }
}

/// The one unnamed state the arrays hold (`l0.h`, `l0.c`, ...).
fn state_of(file: &TensorFile) -> anyhow::Result<StateValue> {
    match states_from_file(file).map_err(|e| LayoutMismatch(format!("the arrays: {e}")))? {
        FileStates::Single(value) => Ok(value),
        FileStates::Named(_) => Err(LayoutMismatch(
            "the arrays are named like several states (<name>.l0.h); pass one state: l0.h, l0.c, ...".into(),
        )
        .into()),
    }
}

/// The state the arrays hold, checked against the named model's layout
/// when one is named (a GRU state is `l0.h` alone, so without a model a
/// missing `l0.c` cannot be told from a GRU state).
fn state_for(
    store: &SqlStore,
    file: &TensorFile,
    model: Option<&str>,
) -> anyhow::Result<StateValue> {
    let value = state_of(file)?;
    if let Some(name) = model {
        models::find(store, Some(name))?.check_layout(&value, "in the arrays")?;
    }
    Ok(value)
}

/// Float32 values as a `bytearray`, written in place (one copy).
fn bytearray_of(py: Python<'_>, parts: &[&[f32]]) -> PyResult<Py<PyByteArray>> {
    let len: usize = parts.iter().map(|p| p.len() * 4).sum();
    let array = PyByteArray::new_with(py, len, |bytes| {
        let mut at = 0;
        for part in parts {
            statectl::le_bytes::write_f32s(part, &mut bytes[at..at + part.len() * 4]);
            at += part.len() * 4;
        }
        Ok(())
    })?;
    Ok(array.unbind())
}

/// A state as tensors `l{k}.{h,c}` of `[batch, units]`.
fn state_tensors(py: Python<'_>, value: &StateValue) -> PyResult<Vec<OutTensor>> {
    stacked_tensors(py, std::slice::from_ref(value))
}

/// States of one layout stacked into one batch, in order, as tensors
/// `l{k}.{h,c}` of `[sum of batches, units]`.
fn stacked_tensors(py: Python<'_>, values: &[StateValue]) -> PyResult<Vec<OutTensor>> {
    let Some(layout) = values.first().map(|v| &v.layout) else {
        return Ok(Vec::new());
    };
    let batch: usize = values.iter().map(|v| v.batch()).sum();
    let mut out = Vec::new();
    for (layer, units) in layout.units.iter().enumerate() {
        for (k, name) in layout.cell.tensors().iter().enumerate() {
            let (start, len) = layout.span(layer, k);
            let rows: Vec<&[f32]> = values
                .iter()
                .flat_map(|v| v.slots.iter().map(|s| &s[start..start + len]))
                .collect();
            out.push((
                format!("l{layer}.{name}"),
                vec![batch, *units],
                bytearray_of(py, &rows)?,
            ));
        }
    }
    Ok(out)
}

/// Where refs are looked up: the model and stream `HEAD` and `zeros`
/// refer to.
fn scope<'a>(model: Option<&'a statectl::ops::Model>, stream: &'a str) -> Scope<'a> {
    Scope {
        model,
        stream,
        zeros_batch: None,
    }
}

/// A float32 array as a tensor (copied: the GIL is released while the
/// operation runs, and Python may change the array meanwhile).
fn tensor_of(py: Python<'_>, name: &str, array: &PyBuffer<f32>) -> PyResult<Tensor> {
    if !array.is_c_contiguous() {
        return Err(arrays::not_contiguous(name));
    }
    Ok(Tensor::new(array.shape().to_vec(), array.to_vec(py)?))
}

/// An open statectl store.
#[pyclass(module = "statectl._native", name = "Store", frozen)]
struct Store {
    /// `None` once closed. Dropped only in the process that opened it
    /// (see `fork.rs`): a child of a fork leaks its copy.
    inner: std::mem::ManuallyDrop<Mutex<Option<SqlStore>>>,
    /// The process that opened the store: the only one that may use it.
    opened_by: u32,
    #[pyo3(get)]
    path: PathBuf,
    /// Networks `forward` has packed, by weights id.
    nets: forward::Nets,
}

impl Drop for Store {
    fn drop(&mut self) {
        if self.opened_by == fork::current_process() {
            // SAFETY: `inner` is dropped once, here, and never used after.
            unsafe { std::mem::ManuallyDrop::drop(&mut self.inner) };
        }
        // In a child of a fork the copy is leaked: closing it would run
        // SQLite on the parent's connection state.
    }
}

impl Store {
    /// Refuses a store inherited through `fork()` before touching anything
    /// of it (its lock may be held by a thread the child does not have).
    fn check_process(&self) -> Result<(), Failure> {
        match fork::current_process() {
            pid if pid == self.opened_by => Ok(()),
            pid => Err(Failure::Inherited {
                path: self.path.display().to_string(),
                opened_by: self.opened_by,
                child: pid,
            }),
        }
    }

    /// Runs `work` on the open store with the GIL released, in this
    /// process's thread pool.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        work: impl FnOnce(&SqlStore) -> anyhow::Result<T> + Send,
    ) -> PyResult<T> {
        self.check_process().map_err(Failure::into_py)?;
        py.allow_threads(|| {
            let pool = statectl::parallel::pool();
            // The work runs on a pool thread (the store's connection is
            // used by one thread at a time, under the lock).
            pool.install(|| self.locked(work))
        })
        .map_err(Failure::into_py)
    }

    /// Runs `work` on the open store, holding its lock and the fork gate.
    fn locked<T>(&self, work: impl FnOnce(&SqlStore) -> anyhow::Result<T>) -> Result<T, Failure> {
        let _inside = fork_gate::enter();
        let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            None => Err(Failure::Closed(self.path.display().to_string())),
            Some(store) => work(store).map_err(Failure::Op),
        }
    }
}

#[pymethods]
impl Store {
    /// Opens the store at `path` (else `$STATECTL_STORE`, else
    /// `./.statectl`, as the CLI resolves it). Without `create`, a folder
    /// holding no store is refused rather than made.
    #[new]
    #[pyo3(signature = (path=None, create=false))]
    fn new(py: Python<'_>, path: Option<PathBuf>, create: bool) -> PyResult<Store> {
        let path = statectl::store::resolve_path(path);
        fork_gate::wait_for_sqlite_work_before_forks();
        // (Work done while holding the GIL needs no token: a fork from
        // Python holds the GIL too.)
        let mut store = py
            .allow_threads(|| {
                let _inside = fork_gate::enter();
                if create {
                    SqlStore::open(&path)
                } else {
                    SqlStore::open_existing(&path)
                }
            })
            .map_err(|e| Failure::Op(e.into()).into_py())?;
        // A long-lived process making many small reads: map the database
        // so a read is a memory access, not a pread copying a page.
        store
            .map_for_reads()
            .map_err(|e| Failure::Op(e.into()).into_py())?;
        // A loop of writes: the WAL is copied into the database on a helper
        // thread, not inside every few calls (which halved the rate of
        // small put_states calls).
        store
            .checkpoint_in_background()
            .map_err(|e| Failure::Op(e.into()).into_py())?;
        Ok(Store {
            inner: std::mem::ManuallyDrop::new(Mutex::new(Some(store))),
            opened_by: fork::current_process(),
            path,
            nets: forward::Nets::default(),
        })
    }

    /// Closes the store; later calls raise `ClosedStoreError`.
    fn close(&self, py: Python<'_>) {
        if self.check_process().is_err() {
            // A child's copy of its parent's store: nothing of it is the
            // child's to close (the parent's store stays open there).
            return;
        }
        py.allow_threads(|| {
            let _inside = fork_gate::enter();
            self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        });
    }

    #[getter]
    fn closed(&self) -> bool {
        if self.check_process().is_err() {
            return true;
        }
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    /// Stores one state; returns its id (hex).
    #[pyo3(signature = (tensors, tag=None, force=false, allow_nonfinite=false, model=None))]
    fn put_state(
        &self,
        py: Python<'_>,
        tensors: Arrays,
        tag: Option<String>,
        force: bool,
        allow_nonfinite: bool,
        model: Option<String>,
    ) -> PyResult<String> {
        let file = tensor_file(py, &tensors)?;
        self.with(py, |store| {
            let value = state_for(store, &file, model.as_deref())?;
            let stored = import::run(
                store,
                ImportRequest {
                    file_name: "(python)",
                    states: FileStates::Single(value),
                    per_slot: false,
                    tag,
                    tag_prefix: None,
                    force,
                    allow_nonfinite,
                },
            )?;
            Ok(stored[0].state.hex())
        })
    }

    /// Stores every slot of a batch as a one-slot state, in one
    /// transaction under one journal entry; returns the ids in slot order.
    #[pyo3(signature = (tensors, tags=None, tag_prefix=None, force=false, allow_nonfinite=false, model=None))]
    #[allow(clippy::too_many_arguments)]
    fn put_states(
        &self,
        py: Python<'_>,
        tensors: Arrays,
        tags: Option<Vec<String>>,
        tag_prefix: Option<String>,
        force: bool,
        allow_nonfinite: bool,
        model: Option<String>,
    ) -> PyResult<Vec<String>> {
        let named = arrays::copied(py, &tensors)?;
        let tags = slot_tags(tags, tag_prefix)?;
        self.with(py, |store| {
            let value = TensorSlots::from_arrays(named)
                .map_err(|e| LayoutMismatch(format!("the arrays: {e}")))?;
            if let Some(name) = model.as_deref() {
                models::find(store, Some(name))?.check_layout_of(&value.layout, "in the arrays")?;
            }
            let report = import::run_per_slot(
                store,
                PerSlotImport {
                    file_name: "(python)",
                    file: value,
                    tags,
                    force,
                    allow_nonfinite,
                },
            )?;
            Ok(report.states.iter().map(|id| id.hex()).collect())
        })
    }

    /// A stored state's tensors: `[(name, shape, bytes)]`.
    #[pyo3(signature = (reference, model=None, stream="main".to_string()))]
    fn get_state(
        &self,
        py: Python<'_>,
        reference: String,
        model: Option<String>,
        stream: String,
    ) -> PyResult<(String, Vec<OutTensor>)> {
        let resolved = self.with(py, |store| {
            // Only HEAD, HEAD~N and zeros need a model (the newest, unless
            // named); ids and tags resolve without one.
            let needs_model =
                model.is_some() || reference.starts_with("HEAD") || reference == "zeros";
            let model = match needs_model {
                true => models::find_optional(store, model.as_deref())?,
                false => None,
            };
            refs::resolve(store, &reference, scope(model.as_ref(), &stream))
        })?;
        Ok((resolved.id.hex(), state_tensors(py, &resolved.value)?))
    }

    /// Several stored states, read from one snapshot of the store and
    /// stacked into one batch in the order given (a learner's batch of
    /// start states): `(ids, [(name, shape, bytes)])`.
    #[pyo3(signature = (references, model=None, stream="main".to_string()))]
    fn get_states(
        &self,
        py: Python<'_>,
        references: Vec<String>,
        model: Option<String>,
        stream: String,
    ) -> PyResult<(Vec<String>, Vec<OutTensor>)> {
        if references.is_empty() {
            return Err(StatectlError::new_err(
                "no refs given; pass a list of one or more tags, ids or HEAD~N",
            ));
        }
        let resolved = self.with(py, |store| {
            let needs_model = model.is_some()
                || references
                    .iter()
                    .any(|r| r.starts_with("HEAD") || r == "zeros");
            let model = match needs_model {
                true => models::find_optional(store, model.as_deref())?,
                false => None,
            };
            let resolved = store.read(|store| -> anyhow::Result<Vec<_>> {
                references
                    .iter()
                    .map(|r| refs::resolve(store, r, scope(model.as_ref(), &stream)))
                    .collect()
            })?;
            let first = &resolved[0].value.layout;
            if let Some(i) = resolved.iter().position(|r| r.value.layout != *first) {
                return Err(LayoutMismatch(format!(
                    "'{}' is a {} state but '{}' is a {} state; get states of one layout at a time",
                    references[i], resolved[i].value.layout, references[0], first
                ))
                .into());
            }
            Ok(resolved)
        })?;
        let ids = resolved.iter().map(|r| r.id.hex()).collect();
        let values: Vec<StateValue> = resolved.into_iter().map(|r| r.value).collect();
        Ok((ids, stacked_tensors(py, &values)?))
    }

    /// Runs and records one prediction, exactly as `statectl predict`.
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
        let call = streams::PredictCall::new(
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
        self.with(py, |store| call.run(&mut Backend::Embedded(store)))?
            .into_dict(py)
    }
}

/// Encodes named float32 arrays as a safetensors file's bytes (the form
/// `model import` and `--input` read), with string metadata.
#[pyfunction]
#[pyo3(signature = (tensors, metadata=None))]
fn encode_safetensors<'py>(
    py: Python<'py>,
    tensors: Arrays,
    metadata: Option<std::collections::BTreeMap<String, String>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut file = tensor_file(py, &tensors)?;
    file.metadata = metadata.unwrap_or_default();
    let bytes = py.allow_threads(|| file.encode());
    Ok(PyBytes::new(py, &bytes))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Store>()?;
    m.add_class::<sharing::SharedStore>()?;
    m.add_function(wrap_pyfunction!(encode_safetensors, m)?)?;
    errors::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
