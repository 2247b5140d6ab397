//! Push and pull between the open store and a shared store (PostgreSQL).
//! A push opens a connection of its own to the store's folder and does not
//! hold the store's lock: an actor's `put_states` and `predict` go on while
//! a push runs on another thread (`Store.push_in_background`).

use pyo3::prelude::*;

use statectl::ops::pull::{self, PullRequest};
use statectl::ops::push::{self, PushRequest};
use statectl::store::Store as SqlStore;

use crate::errors::Failure;
use crate::reports::json;
use crate::Store;

#[pymethods]
impl Store {
    /// Sends what the shared store at `url` lacks; the report as JSON.
    #[pyo3(signature = (url, tags=None, force=false))]
    fn push(
        &self,
        py: Python<'_>,
        url: String,
        tags: Option<String>,
        force: bool,
    ) -> PyResult<String> {
        self.check_process().map_err(Failure::into_py)?;
        // A closed store refuses, as every other call does.
        self.locked(|_| Ok(())).map_err(Failure::into_py)?;
        let path = self.path.clone();
        py.allow_threads(|| {
            let store = SqlStore::open_existing(&path)?;
            json(&push::push(&store, &PushRequest { url, tags, force })?)
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
