//! Training runs that survive a kill. A run's plan is recorded when it
//! starts, a checkpoint (one transaction each) as it goes, and its model
//! when it finishes, in the transaction that removes the run. A run that
//! stopped, however it stopped, continues from its latest checkpoint to the
//! bits it would have had: see `train::train_from`.
//!
//! One process trains a run at a time: it holds an exclusive lock on
//! `runs/NAME.lock` in the store folder, which the system releases when
//! the process ends, also on SIGKILL.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::models::{self, Model};
use super::train::{record_in, stored_plan, InitSource, TrainPlan};
use crate::id::{Digest, ObjectId, WeightsId};
use crate::model::ModelConfig;
use crate::store::{CheckpointRow, NewEvent, RunRow, RunState, Store};
use crate::tensors::TensorFile;
use crate::train::{checkpoint_shapes, Checkpoint, TrainReport, TrainedState};

/// When a run writes a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointEvery {
    /// At the end of every epoch but the last.
    Epoch,
    /// After every N batches (counted over the whole run).
    Batches(usize),
}

impl CheckpointEvery {
    /// `epoch` or a positive number of batches.
    pub fn parse(text: &str) -> std::result::Result<CheckpointEvery, String> {
        if text == "epoch" {
            return Ok(CheckpointEvery::Epoch);
        }
        match text.parse::<usize>() {
            Ok(0) => Err("a checkpoint every 0 batches would never train; give a number of batches of at least 1, or `epoch`".into()),
            Ok(n) => Ok(CheckpointEvery::Batches(n)),
            Err(_) => Err(format!("'{text}' is neither `epoch` nor a number of batches")),
        }
    }

    /// Whether a checkpoint is due after `batches_done`, at an epoch's end
    /// or not.
    pub fn is_due(self, batches_done: usize, epoch_end: bool) -> bool {
        match self {
            CheckpointEvery::Epoch => epoch_end,
            CheckpointEvery::Batches(n) => batches_done.is_multiple_of(n.max(1)),
        }
    }
}

/// How a run keeps checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointPolicy {
    pub every: CheckpointEvery,
    /// Checkpoints kept per run, newest first (at least 1).
    pub keep: usize,
}

/// What a run trains, as recorded when it starts: enough to rebuild its
/// [`TrainPlan`] with nothing else given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunPlan {
    pub config: ModelConfig,
    pub train: crate::train::TrainConfig,
    pub init: InitSource,
    /// Hex id of the training data object.
    pub data: String,
    pub samples: usize,
    pub checkpoints: CheckpointPolicy,
    /// The statectl version that started it.
    pub statectl: String,
}

/// The run's lock, held while this process trains it. Its file goes when
/// the lock does, so a refused or finished command leaves nothing behind.
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still locked: a process that opened the file
        // before this finds, once it holds the lock, that the path no
        // longer names its file, and takes the lock again (`lock`).
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Takes the run's lock, or says who holds it.
pub fn lock(store: &Store, name: &str) -> Result<RunLock> {
    // The name becomes a file name: only a model name's characters.
    super::models::check_model_name(name)?;
    let dir = store.root().join("runs");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{name}.lock"));
    // A few rounds: each lost only to a holder that removed the file as
    // it let go.
    for _ in 0..8 {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) if same_file(&file, &path) => return Ok(RunLock { file, path }),
            Ok(()) => continue,
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "training run '{name}' is being trained by another process; wait for it to finish, or stop it (Ctrl-C) and continue it with `statectl train --resume {name}`"
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(anyhow!(e).context(format!("cannot lock {}", path.display())))
            }
        }
    }
    bail!(
        "training run '{name}': its lock file {} keeps being replaced; run the command again",
        path.display()
    )
}

/// Whether `path` still names the open `file` (not a file removed and
/// created anew since it was opened).
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Elsewhere an open file cannot be removed, so the path names it.
#[cfg(not(unix))]
fn same_file(_file: &File, _path: &Path) -> bool {
    true
}

/// Whether a process is training the run now.
pub fn is_running(store: &Store, name: &str) -> bool {
    let path = store.root().join("runs").join(format!("{name}.lock"));
    match File::options().write(true).open(path) {
        Ok(file) => matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// Records a new run (its plan, data and init weights) in one transaction.
/// Call with the run's lock held.
pub fn start(
    store: &Store,
    name: &str,
    plan: &TrainPlan,
    checkpoints: CheckpointPolicy,
) -> Result<RunPlan> {
    // Settings training would refuse are refused before anything is written.
    crate::train::check_settings(&plan.train, plan.data.len())?;
    let data_bytes = plan.data.to_file().encode();
    let run = RunPlan {
        config: plan.init.config.clone(),
        train: plan.train.clone(),
        init: plan.init_source.clone(),
        data: Digest::of(&[&data_bytes]).hex(),
        samples: plan.data.len(),
        checkpoints,
        statectl: env!("CARGO_PKG_VERSION").into(),
    };
    let text = serde_json::to_string(&run)?;
    let mut created = None;
    let result = store.write(|store| -> Result<()> {
        if store.find_model(name)?.is_some() {
            bail!("model '{name}' already exists; choose another --name");
        }
        if plan.train.keep_best {
            let (model, tag) = best_names(name);
            if store.find_model(&model)?.is_some() {
                bail!("model '{model}' already exists, and --keep-best would register the run's best epoch under that name; choose another --name or delete it (statectl model delete {model})");
            }
            if store.tag(&tag)?.is_some() {
                bail!("tag '{tag}' already exists, and --keep-best would set it to the run's best epoch's state; choose another --name or delete it (statectl tag delete {tag})");
            }
        }
        store.create_run(name, &text)?;
        store.put_object(&data_bytes)?;
        if let InitSource::Weights { .. } = plan.init_source {
            let (id, new) = store.put_weights(&plan.init.to_file().encode())?;
            created = new.then_some(id);
        }
        Ok(())
    });
    if result.is_err() {
        models::forget_created(store, created);
    }
    result.map(|()| run)
}

/// A checkpoint as it leaves the training loop: its tensors copied and
/// the states recorded since the previous one, so training can go on while
/// it is written.
pub struct CheckpointSnapshot {
    pub file: TensorFile,
    pub epoch: usize,
    pub batch: usize,
    pub batches_done: usize,
    /// How many recorded states earlier checkpoints hold.
    pub recorded: usize,
    pub new_states: Vec<TrainedState>,
}

impl CheckpointSnapshot {
    pub fn of(cp: &Checkpoint, run: &RunPlan, recorded: usize) -> CheckpointSnapshot {
        let batches = run.train.batches_per_epoch(run.samples);
        CheckpointSnapshot {
            file: cp.to_file(),
            epoch: cp.epoch,
            batch: cp.batch,
            batches_done: cp.batches_done(batches),
            recorded,
            new_states: cp.states[recorded.min(cp.states.len())..].to_vec(),
        }
    }
}

/// Writes a checkpoint: its file in `weights/`, then in one transaction its
/// row (older ones beyond the policy go, with their files), the states
/// recorded since the previous one, and a `checkpoint` event. Returns the
/// checkpoint file's id.
pub fn save_checkpoint(
    store: &Store,
    name: &str,
    run: &RunPlan,
    snapshot: &CheckpointSnapshot,
) -> Result<WeightsId> {
    let bytes = snapshot.file.encode();
    let mut created = None;
    let result = write_dropping_files(store, |store| {
        // Written under the write lock, so gc never sees it unnamed.
        let (file, new) = store.put_weights(&bytes)?;
        created = new.then_some(file);
        let mut new_states = Vec::new();
        for s in &snapshot.new_states {
            new_states.push(RunState {
                state: store.put_state(&s.state)?,
                epoch: s.epoch,
                batch: s.batch,
            });
        }
        store.put_run_states(name, snapshot.recorded, &new_states)?;
        let dropped = store.add_checkpoint(
            name,
            &CheckpointRow {
                batches_done: snapshot.batches_done,
                epoch: snapshot.epoch,
                batch: snapshot.batch,
                file,
                at: crate::store::now_ms(),
            },
            run.checkpoints.keep,
        )?;
        store.append_event(&NewEvent {
            kind: "checkpoint",
            detail: json!({
                "run": name,
                "epoch": snapshot.epoch,
                "batch": snapshot.batch,
                "checkpoint": file.hex(),
            }),
            ..Default::default()
        })?;
        Ok((file, dropped))
    });
    if result.is_err() {
        models::forget_created(store, created);
    }
    result
}

/// Runs `f` in one write transaction, then removes the checkpoint files it
/// returns in a second one, if no row names them by then. A kill between
/// the two leaves files nothing names, which `verify` lists and `gc`
/// removes; a file a row names is never removed, also when another run of
/// the same plan wrote the same bytes meanwhile.
fn write_dropping_files<T>(
    store: &Store,
    f: impl FnOnce(&Store) -> Result<(T, Vec<WeightsId>)>,
) -> Result<T> {
    let (value, files) = store.write(f)?;
    if !files.is_empty() {
        store.write(|store| store.remove_unnamed_checkpoint_files(files))?;
    }
    Ok(value)
}

/// A run read back: its plan, the [`TrainPlan`] it rebuilds, and where it
/// stands (its latest checkpoint, or `None` if it has none yet).
pub struct StoredRun {
    pub name: String,
    pub run: RunPlan,
    pub plan: TrainPlan,
    pub checkpoint: Option<Checkpoint>,
    /// The latest checkpoint's row.
    pub at: Option<CheckpointRow>,
}

/// What a resume may change of a run's plan: its number of epochs, and
/// the learning rate from the checkpoint it continues from on. Neither
/// changes a batch already trained, so the run still reproduces: as "this
/// plan, then that rate from batch K" (kept in its plan and record).
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanChange {
    pub epochs: Option<usize>,
    pub lr: Option<f32>,
}

/// Applies `change` to the run `stored` continues and keeps it in the run's
/// row, so later resumes and the finished model's record carry it. Returns
/// what changed, as words (None when nothing did).
pub fn change_plan(
    store: &Store,
    stored: &mut StoredRun,
    change: PlanChange,
) -> Result<Option<String>> {
    let name = stored.name.clone();
    let train = &mut stored.run.train;
    let batches = train.batches_per_epoch(stored.run.samples);
    let done = stored
        .checkpoint
        .as_ref()
        .map_or(0, |cp| cp.batches_done(batches));
    let mut said = Vec::new();
    if let Some(epochs) = change.epochs {
        if epochs * batches < done {
            bail!(
                "training run '{name}' has trained {done} batches ({batches} an epoch), more than {epochs} epoch(s) hold; give --epochs {} or more",
                done.div_ceil(batches)
            );
        }
        if epochs != train.epochs {
            said.push(format!("epochs {} -> {epochs}", train.epochs));
            train.epochs = epochs;
        }
    }
    if let Some(lr) = change.lr {
        if !(lr.is_finite() && lr > 0.0) {
            bail!("--lr {lr} must be a positive number");
        }
        let before = train.lr_at(done);
        if lr != before {
            // Rates set later than this checkpoint (a resume from an older
            // one) are replaced by this one.
            train.lr_changes.retain(|c| c.at_batch < done);
            train
                .lr_changes
                .push(crate::train::LrChange { at_batch: done, lr });
            said.push(format!(
                "learning rate {before} -> {lr} from batch {}",
                done + 1
            ));
        }
    }
    if said.is_empty() {
        return Ok(None);
    }
    stored.plan.train = train.clone();
    let text = serde_json::to_string(&stored.run)?;
    store.write(|s| s.set_run_plan(&name, &text).map_err(anyhow::Error::from))?;
    Ok(Some(said.join("; ")))
}

/// Reads a run to continue it, from its latest checkpoint or the one after
/// `from_checkpoint` batches. An unknown name, a finished model, an unknown
/// checkpoint or a damaged one is an error saying what to do.
pub fn load(store: &Store, name: &str, from_checkpoint: Option<usize>) -> Result<StoredRun> {
    store.read(|store| -> Result<StoredRun> {
        let row = find(store, name)?;
        let run: RunPlan = serde_json::from_str(&row.plan).map_err(|e| {
            anyhow!("training run '{name}' has an unreadable plan ({e}); run `statectl verify`")
        })?;
        let plan = rebuild_plan(store, &run)?;
        let all = store.checkpoints(name)?;
        let chosen = match from_checkpoint {
            None => all.first().cloned(),
            Some(done) => Some(
                all.iter()
                    .find(|c| c.batches_done == done)
                    .cloned()
                    .ok_or_else(|| {
                        anyhow!(
                            "training run '{name}' has no checkpoint after {done} batches; its checkpoints: {}",
                            listing(&all)
                        )
                    })?,
            ),
        };
        let checkpoint = match &chosen {
            None => None,
            Some(at) => Some(read_checkpoint(store, name, &run, &plan, at, &all)?),
        };
        Ok(StoredRun {
            name: name.to_string(),
            run,
            plan,
            checkpoint,
            at: chosen,
        })
    })
}

/// Refuses a name that is no unfinished run (naming what there is),
/// reading nothing else: a run another process trains changes its
/// checkpoints meanwhile, so they are read only under the run's lock.
pub fn check_exists(store: &Store, name: &str) -> Result<()> {
    find(store, name).map(|_| ())
}

/// The run's row, or an error naming what there is instead.
fn find(store: &Store, name: &str) -> Result<RunRow> {
    if let Some(row) = store.find_run(name)? {
        return Ok(row);
    }
    if store.find_model(name)?.is_some() {
        bail!("model '{name}' has finished training; there is no run to continue (a finished model is not trained further by --resume)");
    }
    let runs: Vec<String> = store.list_runs()?.into_iter().map(|r| r.name).collect();
    let names: Vec<&str> = runs.iter().map(String::as_str).collect();
    if names.is_empty() {
        bail!("no training run '{name}': this store has no unfinished runs");
    }
    bail!(
        "no training run '{name}'{}; unfinished runs: {}",
        crate::suggest::did_you_mean(name, names.iter().copied()),
        crate::suggest::listing(&names, 10)
    )
}

/// The data and initial weights the run recorded when it started.
fn rebuild_plan(store: &Store, run: &RunPlan) -> Result<TrainPlan> {
    let backend = &mut super::backend::Backend::Embedded(store);
    stored_plan(backend, &run.config, &run.train, &run.init, &run.data)
}

/// A checkpoint's file decoded, with the states the run had recorded.
fn read_checkpoint(
    store: &Store,
    name: &str,
    run: &RunPlan,
    plan: &TrainPlan,
    at: &CheckpointRow,
    all: &[CheckpointRow],
) -> Result<Checkpoint> {
    let older = all.iter().find(|c| c.batches_done < at.batches_done);
    let fallback = older
        .map(|c| {
            format!(
                "; to continue from the one before it, pass --from-checkpoint {} ({})",
                c.batches_done,
                position(c.epoch, c.batch)
            )
        })
        .unwrap_or_default();
    let damaged = |e: anyhow::Error| {
        anyhow!(
            "the checkpoint of training run '{name}' at {} is damaged: {e:#}{fallback}; run `statectl verify` to see what else is",
            position(at.epoch, at.batch)
        )
    };
    let bytes = store
        .load_weights(&at.file)
        .map_err(|e| damaged(e.into()))?;
    let file = TensorFile::decode(&bytes).map_err(|e| damaged(e.into()))?;
    let (sizes, carried) = checkpoint_shapes(&plan.train, &plan.init);
    let (mut cp, recorded) =
        Checkpoint::from_file(&file, run.train.lr, &sizes, &carried).map_err(damaged)?;
    for s in store.run_states(name, recorded)? {
        cp.states.push(TrainedState {
            epoch: s.epoch,
            batch: s.batch,
            state: store.load_state(&s.state)?,
        });
    }
    Ok(cp)
}

/// A run's checkpoints for an error: "186 (epoch 3 batch 0), ...".
fn listing(all: &[CheckpointRow]) -> String {
    if all.is_empty() {
        return "none yet".into();
    }
    all.iter()
        .map(|c| format!("{} ({})", c.batches_done, position(c.epoch, c.batch)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a checkpoint stands, for people: "epoch 2 batch 3" (batches done
/// in that epoch) or "the end of epoch 1".
pub fn position(epoch: usize, batch: usize) -> String {
    if batch == 0 {
        format!("the end of epoch {epoch}")
    } else {
        format!("epoch {} batch {batch}", epoch + 1)
    }
}

/// Registers the finished run's model and removes the run, in one
/// transaction.
pub fn finish(
    store: &Store,
    name: &str,
    plan: &TrainPlan,
    report: &crate::train::TrainReport,
) -> Result<Model> {
    write_dropping_files(store, |store| {
        let model = record_in(store, name, false, plan, report)?;
        if let Some(best) = &report.best {
            keep_best_in(store, name, plan, best)?;
        }
        let files = store.delete_run(name)?;
        Ok((model, files))
    })
}

/// What `--keep-best` kept of run `name`, for `--json` and Python: the
/// model, the epoch (from 1), its validation loss, weights and state, and
/// the tag.
pub fn kept_best(name: &str, best: &TrainReport) -> serde_json::Value {
    let (model, tag) = best_names(name);
    serde_json::json!({
        "model": model,
        "epoch": best.losses.len(),
        "val_loss": best.val_losses.last(),
        "weights": super::train::weights_id(&best.weights).hex(),
        "state": best.final_state.id().hex(),
        "tag": tag,
    })
}

/// The model and the tag `--keep-best` makes of run `name`'s best epoch.
pub fn best_names(name: &str) -> (String, String) {
    (format!("{name}.best"), format!("{name}/best"))
}

/// Registers the best epoch as a model trained for that many epochs (so
/// `audit --train` reruns exactly that), and tags the state it left.
/// Call inside a write.
fn keep_best_in(store: &Store, name: &str, plan: &TrainPlan, best: &TrainReport) -> Result<()> {
    let (model_name, tag) = best_names(name);
    let shorter = TrainPlan {
        data: plan.data.clone(),
        train: crate::train::TrainConfig {
            epochs: best.losses.len(),
            patience: None,
            keep_best: false,
            ..plan.train.clone()
        },
        init: plan.init.clone(),
        init_source: plan.init_source.clone(),
    };
    let model = record_in(store, &model_name, false, &shorter, best)?;
    super::tags::set_tag(store, &tag, &best.final_state.id(), Some(&model))
}

/// Removes a run that cannot go on (its training failed): what it had
/// written goes with it.
pub fn abandon(store: &Store, name: &str) -> Result<()> {
    write_dropping_files(store, |store| {
        let data = store
            .find_run(name)?
            .and_then(|row| serde_json::from_str::<RunPlan>(&row.plan).ok())
            .and_then(|run| Digest::parse_hex(&run.data));
        let files = store.delete_run(name)?;
        if let Some(data) = data {
            let named = store
                .training_refs()?
                .iter()
                .any(|r| r.data.map(|d| d.0) == Some(data))
                || store.object_named_by_events(&ObjectId(data))?;
            if !named {
                store.delete_object(&ObjectId(data))?;
            }
        }
        Ok(((), files))
    })
}

/// What `model delete` removed of an unfinished run.
#[derive(Debug, Clone, Serialize)]
pub struct RunDeleted {
    pub run: String,
    pub checkpoints: usize,
}

/// Deletes an unfinished run (not one a process is training), with its
/// checkpoints, in one transaction with a `run-delete` event.
pub fn delete(store: &Store, name: &str) -> Result<RunDeleted> {
    let _lock = lock(store, name)?;
    write_dropping_files(store, |store| {
        find(store, name)?;
        let checkpoints = store.checkpoints(name)?.len();
        let files = store.delete_run(name)?;
        store.append_event(&NewEvent {
            kind: "run-delete",
            detail: json!({ "run": name, "checkpoints": checkpoints }),
            ..Default::default()
        })?;
        Ok((
            RunDeleted {
                run: name.to_string(),
                checkpoints,
            },
            files,
        ))
    })
}

/// An unfinished run, for `model list` and `status`.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub name: String,
    pub layout: String,
    pub epochs: usize,
    pub batches_per_epoch: usize,
    /// Batches done at the latest checkpoint (0 without one).
    pub batches_done: usize,
    /// Where the latest checkpoint stands, for people.
    pub checkpoint: Option<String>,
    pub checkpoint_at: Option<i64>,
    pub started_at: i64,
    /// A process is training it now.
    pub running: bool,
}

/// Every unfinished run.
pub fn list(store: &Store) -> Result<Vec<RunSummary>> {
    store.read(|store| -> Result<Vec<RunSummary>> {
        let mut out = Vec::new();
        for row in store.list_runs()? {
            let run: RunPlan = match serde_json::from_str(&row.plan) {
                Ok(run) => run,
                Err(_) => continue,
            };
            let latest = store.checkpoints(&row.name)?.into_iter().next();
            out.push(RunSummary {
                layout: run.config.layout().to_string(),
                epochs: run.train.epochs,
                batches_per_epoch: run.train.batches_per_epoch(run.samples),
                batches_done: latest.as_ref().map_or(0, |c| c.batches_done),
                checkpoint: latest.as_ref().map(|c| position(c.epoch, c.batch)),
                checkpoint_at: latest.as_ref().map(|c| c.at),
                started_at: row.started_at,
                running: is_running(store, &row.name),
                name: row.name,
            });
        }
        Ok(out)
    })
}
