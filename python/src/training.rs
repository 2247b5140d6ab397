//! `Store.train` and `Store.resume`: a training run in-process, on the same
//! operations as `statectl train` (checkpoints, exact resume). The GIL is
//! released while it trains; it is taken back once a batch to report
//! progress and to see a Ctrl-C (`KeyboardInterrupt`), which stops the run
//! after a checkpoint and is raised once the checkpoint is committed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::json;

use statectl::ops::runs::{self, CheckpointEvery, CheckpointPolicy, RunPlan};
use statectl::ops::train::{model_config, InitSource, TrainPlan};
use statectl::ops::training_run::{self, RunEnd, RunObserver};
use statectl::state::Cell;
use statectl::store::Store as SqlStore;
use statectl::tensors::TensorFile;
use statectl::train::{dataset_from_safetensors, keras_init, Progress, RecordEvery, TrainConfig};

use crate::errors::{Failure, StatectlError};
use crate::reports::{choice, json};
use crate::{tensor_of, Store};

/// Progress to a Python callable, and a stop when Python saw Ctrl-C.
struct PythonObserver<'a> {
    progress: Option<&'a Py<PyAny>>,
    /// Set by the thread that watches for Ctrl-C.
    stop: &'a AtomicBool,
    /// A progress callback's error, which stops the run too.
    failed: Mutex<Option<PyErr>>,
}

impl RunObserver for PythonObserver<'_> {
    fn starting_at(&mut self, _batches_done: usize, _position: Option<String>) {}
    fn batch(&mut self, p: &Progress) {
        let Some(callback) = self.progress else {
            return;
        };
        Python::with_gil(|py| {
            let info = PyDict::new(py);
            let set = [
                ("epoch", (p.epoch + 1).into_pyobject(py)),
                ("epochs", p.epochs.into_pyobject(py)),
                ("batch", (p.batch + 1).into_pyobject(py)),
                ("batches", p.batches.into_pyobject(py)),
            ];
            let result = set
                .into_iter()
                .try_for_each(|(k, v)| info.set_item(k, v?))
                .and_then(|()| info.set_item("loss", p.loss))
                .and_then(|()| callback.call1(py, (info,)).map(drop));
            if let Err(e) = result {
                self.remember(e);
            }
        });
    }
    fn checkpointed(&mut self, _position: String) {}
    fn stop_requested(&mut self) -> bool {
        self.stop.load(Ordering::SeqCst)
            || self
                .failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some()
    }
}

impl PythonObserver<'_> {
    fn remember(&self, e: PyErr) {
        let mut slot = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
    }
}

fn policy(
    every: Option<&str>,
    keep: Option<usize>,
    base: CheckpointPolicy,
) -> PyResult<CheckpointPolicy> {
    let every = match every {
        None => base.every,
        Some(text) => CheckpointEvery::parse(text)
            .map_err(|e| StatectlError::new_err(format!("checkpoint_every='{text}': {e}")))?,
    };
    match keep {
        Some(0) => Err(StatectlError::new_err(
            "keep_checkpoints=0: keep at least 1",
        )),
        _ => Ok(CheckpointPolicy {
            every,
            keep: keep.unwrap_or(base.keep),
        }),
    }
}

impl Store {
    /// Runs `work` on the open store in this process's thread pool, with
    /// the GIL released, while this thread watches for Ctrl-C (Python sees
    /// signals only on its main thread): a `KeyboardInterrupt` sets the
    /// flag `work` is given and is returned beside its result.
    fn with_ctrl_c<T: Send>(
        &self,
        py: Python<'_>,
        work: impl FnOnce(&SqlStore, &AtomicBool) -> anyhow::Result<T> + Send,
    ) -> PyResult<(T, Option<PyErr>)> {
        self.check_process().map_err(Failure::into_py)?;
        let stop = AtomicBool::new(false);
        let mut caught = None;
        let result = py.allow_threads(|| {
            std::thread::scope(|scope| {
                let worker = scope.spawn(|| {
                    statectl::parallel::pool().install(|| self.locked(|store| work(store, &stop)))
                });
                while !worker.is_finished() {
                    std::thread::sleep(Duration::from_millis(20));
                    if caught.is_none() {
                        if let Err(e) = Python::with_gil(|py| py.check_signals()) {
                            caught = Some(e);
                            stop.store(true, Ordering::SeqCst);
                        }
                    }
                }
                worker.join().unwrap_or_else(|_| {
                    Err(Failure::Op(anyhow::anyhow!("the training thread panicked")))
                })
            })
        });
        Ok((result.map_err(Failure::into_py)?, caught))
    }
}

/// A plan for a run, made inside the store's lock: the run, its plan, and
/// the checkpoint it continues from.
type Started = (RunPlan, TrainPlan, Option<statectl::train::Checkpoint>);

/// Runs a started run in the store and turns its end into a report, or
/// raises what stopped it (Ctrl-C, or the progress callback's error).
fn train_to_end(
    py: Python<'_>,
    store: &Store,
    name: &str,
    start: impl FnOnce(&SqlStore) -> anyhow::Result<Started> + Send,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let ((report, failed), caught) = store.with_ctrl_c(py, |sql, stop| {
        let _lock = runs::lock(sql, name)?;
        let (run, plan, from) = start(sql)?;
        let mut observer = PythonObserver {
            progress: progress.as_ref(),
            stop,
            failed: Mutex::new(None),
        };
        let end = training_run::train(sql, name, &run, &plan, from, &mut observer)?;
        let failed = observer.failed.into_inner().unwrap_or_else(|p| p.into_inner());
        Ok(match end {
            RunEnd::Finished(done) => {
                let (model, report) = *done;
                let report = json(&json!({
                    "model": name,
                    "weights": model.record.weights.hex(),
                    "layout": model.config.layout().to_string(),
                    "final_state": report.final_state.id().hex(),
                    "losses": report.losses,
                    "accuracy": report.accuracy,
                    "val_losses": report.val_losses,
                    "stopped_early": report.stopped_early,
                    "best": report.best.as_ref().map(|b| runs::kept_best(name, b)),
                }))?;
                (report, failed)
            }
            RunEnd::Stopped(position) => {
                eprintln!("training run '{name}' stopped at {position}, after writing a checkpoint there; continue it with store.resume('{name}')");
                (String::new(), failed)
            }
        })
    })?;
    match caught.or(failed) {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

#[pymethods]
impl Store {
    /// Trains a new model on `x` [n, steps, features] and `y` in a
    /// checkpointed run named `name`.
    #[pyo3(signature = (x, y, name, cell="lstm", units=vec![16], head=None, classes=None, per_step=false, batch_size=6, epochs=2, lr=1e-3, seed=42, stateful=true, shuffle=true, record="epoch", checkpoint_every=None, keep_checkpoints=None, progress=None, validation_split=None, patience=None, keep_best=false, validation_samples=None))]
    #[allow(clippy::too_many_arguments)]
    fn train(
        &self,
        py: Python<'_>,
        x: PyBuffer<f32>,
        y: PyBuffer<f32>,
        name: String,
        cell: &str,
        units: Vec<usize>,
        head: Option<&str>,
        classes: Option<usize>,
        per_step: bool,
        batch_size: usize,
        epochs: usize,
        lr: f32,
        seed: u64,
        stateful: bool,
        shuffle: bool,
        record: &str,
        checkpoint_every: Option<&str>,
        keep_checkpoints: Option<usize>,
        progress: Option<Py<PyAny>>,
        validation_split: Option<f32>,
        patience: Option<usize>,
        keep_best: bool,
        validation_samples: Option<usize>,
    ) -> PyResult<String> {
        use statectl::model::Head;
        let cell = choice(
            "cell",
            Some(cell),
            &[("lstm", Cell::Lstm), ("gru", Cell::Gru)],
        )?
        .unwrap_or(Cell::Lstm);
        let head = choice(
            "head",
            head,
            &[("softmax", Head::Softmax), ("linear", Head::Linear)],
        )?;
        let record = choice(
            "record",
            Some(record),
            &[
                ("end", RecordEvery::End),
                ("epoch", RecordEvery::Epoch),
                ("batch", RecordEvery::Batch),
            ],
        )?
        .unwrap_or(RecordEvery::Epoch);
        if batch_size == 0 || epochs == 0 || !(lr.is_finite() && lr > 0.0) {
            return Err(StatectlError::new_err(
                "batch_size and epochs must be at least 1 and lr a positive number",
            ));
        }
        let checkpoints = policy(
            checkpoint_every,
            keep_checkpoints,
            CheckpointPolicy {
                every: CheckpointEvery::Epoch,
                keep: 2,
            },
        )?;
        let mut file = TensorFile::default();
        file.insert("x", tensor_of(py, "x", &x)?);
        file.insert("y", tensor_of(py, "y", &y)?);
        let train = TrainConfig {
            batch_size,
            epochs,
            lr,
            seed,
            stateful,
            shuffle,
            record,
            kernel: Default::default(),
            validation_split,
            validation_samples,
            patience,
            keep_best,
            lr_changes: Vec::new(),
        };
        let run_name = name.clone();
        train_to_end(
            py,
            self,
            &name,
            move |sql| {
                statectl::ops::models::check_model_name(&run_name)?;
                let data = dataset_from_safetensors(&file, head, classes, per_step)?;
                let config = model_config(&data, cell, units, head, batch_size)?;
                let plan = TrainPlan {
                    init: keras_init(&config, seed),
                    init_source: InitSource::Seed { seed },
                    data,
                    train,
                };
                let run = runs::start(sql, &run_name, &plan, checkpoints)?;
                Ok((run, plan, None))
            },
            progress,
        )
    }

    /// Continues an unfinished run from its latest checkpoint.
    #[pyo3(signature = (name, checkpoint_every=None, keep_checkpoints=None, progress=None, from_checkpoint=None, epochs=None, lr=None))]
    // Python's keyword arguments, one for each of `train --resume`'s flags.
    #[allow(clippy::too_many_arguments)]
    fn resume(
        &self,
        py: Python<'_>,
        name: String,
        checkpoint_every: Option<&str>,
        keep_checkpoints: Option<usize>,
        progress: Option<Py<PyAny>>,
        from_checkpoint: Option<usize>,
        epochs: Option<usize>,
        lr: Option<f32>,
    ) -> PyResult<String> {
        let every = checkpoint_every.map(str::to_string);
        let run_name = name.clone();
        train_to_end(
            py,
            self,
            &name,
            move |sql| {
                let mut stored = runs::load(sql, &run_name, from_checkpoint)?;
                stored.run.checkpoints =
                    policy(every.as_deref(), keep_checkpoints, stored.run.checkpoints)
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                runs::change_plan(sql, &mut stored, runs::PlanChange { epochs, lr })?;
                Ok((stored.run, stored.plan, stored.checkpoint))
            },
            progress,
        )
    }
}
