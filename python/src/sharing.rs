//! Push and pull between the open store and a shared store (PostgreSQL).
//! A push opens a connection of its own to the store's folder and does not
//! hold the store's lock: an actor's `put_states` and `predict` go on while
//! a push runs on another thread (`Store.push_in_background`).

use std::sync::Mutex;

use pyo3::prelude::*;

use statectl::ops::models::LayoutMismatch;
use statectl::state::StateValue;

use statectl::ops::pull::{self, PullRequest};
use statectl::ops::push::{self, PushRequest};
use statectl::store::Store as SqlStore;

use crate::errors::Failure;
use crate::reports::json;
use crate::{stacked_tensors, OutTensor, Store};

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
    fn new(py: Python<'_>, url: String) -> PyResult<SharedStore> {
        let store = py
            .allow_threads(|| statectl::shared::SharedStore::open(&url))
            .map_err(|e| Failure::Op(e).into_py())?;
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
        let loaded = py
            .allow_threads(|| -> anyhow::Result<_> {
                let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
                let store = guard
                    .as_mut()
                    .ok_or_else(|| anyhow::anyhow!("the shared store {} was closed", self.shown))?;
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
            })
            .map_err(|e| Failure::Op(e).into_py())?;
        let ids = loaded.iter().map(|(id, _)| id.hex()).collect();
        let values: Vec<StateValue> = loaded.into_iter().map(|(_, v)| v).collect();
        Ok((ids, stacked_tensors(py, &values)?))
    }

    /// Closes the connection; later reads raise.
    fn close(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}
