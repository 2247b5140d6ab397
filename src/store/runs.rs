//! Training runs in progress: their plans, checkpoints and the states they
//! have recorded so far (schema 10). Rows only; what a plan or a checkpoint
//! means is `ops::runs`'s business.

use rusqlite::{params, OptionalExtension};

use super::{now_ms, Result, Store, StoreError};
use crate::id::{Digest, ObjectId, StateId, WeightsId};

/// A run that has not finished.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub name: String,
    /// JSON: what the run trains and how.
    pub plan: String,
    pub started_at: i64,
    pub updated_at: i64,
}

/// One checkpoint of a run.
#[derive(Debug, Clone)]
pub struct CheckpointRow {
    pub batches_done: usize,
    pub epoch: usize,
    pub batch: usize,
    /// The checkpoint's file in `weights/`.
    pub file: WeightsId,
    pub at: i64,
}

/// A state a run recorded (`--record`), with where in training.
#[derive(Debug, Clone)]
pub struct RunState {
    pub state: StateId,
    pub epoch: usize,
    pub batch: Option<usize>,
}

fn blob_id(bytes: Vec<u8>) -> Option<Digest> {
    Digest::from_slice(&bytes)
}

impl Store {
    /// Records a new run; a run of that name must not exist.
    pub fn create_run(&self, name: &str, plan: &str) -> Result<()> {
        let now = now_ms();
        let added = self.conn.execute(
            "INSERT OR IGNORE INTO runs (name, plan, started_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
            params![name, plan, now],
        )?;
        if added == 0 {
            return Err(StoreError::Conflict(format!(
                "a training run named '{name}' has not finished; continue it with `statectl train --resume {name}`, or delete it with `statectl model delete {name}`"
            )));
        }
        Ok(())
    }

    /// Replaces a run's plan (a resume that changed its epochs or rate).
    pub fn set_run_plan(&self, name: &str, plan: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET plan = ?2, updated_at = ?3 WHERE name = ?1",
            params![name, plan, now_ms()],
        )?;
        Ok(())
    }

    pub fn find_run(&self, name: &str) -> Result<Option<RunRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, plan, started_at, updated_at FROM runs WHERE name = ?1",
                [name],
                run_row,
            )
            .optional()?)
    }

    pub fn list_runs(&self) -> Result<Vec<RunRow>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, plan, started_at, updated_at FROM runs ORDER BY name")?;
        let rows = stmt.query_map([], run_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Removes a run with its checkpoints' rows and recorded-state rows.
    /// Returns the checkpoint files no row names any more, for the caller
    /// to remove with the transaction.
    pub fn delete_run(&self, name: &str) -> Result<Vec<WeightsId>> {
        let files: Vec<WeightsId> = self
            .checkpoints(name)?
            .into_iter()
            .map(|c| c.file)
            .collect();
        self.conn
            .execute("DELETE FROM runs WHERE name = ?1", [name])?;
        self.unnamed_checkpoint_files(files)
    }

    /// Adds a checkpoint, then keeps only the newest `keep` of the run's
    /// checkpoints. Returns the files of the dropped ones that no row names
    /// any more, for the caller to remove with the transaction.
    pub fn add_checkpoint(
        &self,
        name: &str,
        row: &CheckpointRow,
        keep: usize,
    ) -> Result<Vec<WeightsId>> {
        self.conn.execute(
            "INSERT OR REPLACE INTO checkpoints (run, batches_done, epoch, batch, file, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                name,
                row.batches_done as i64,
                row.epoch as i64,
                row.batch as i64,
                &row.file.bytes()[..],
                row.at
            ],
        )?;
        self.conn.execute(
            "UPDATE runs SET updated_at = ?2 WHERE name = ?1",
            params![name, row.at],
        )?;
        let mut dropped = Vec::new();
        for old in self.checkpoints(name)?.into_iter().skip(keep.max(1)) {
            self.conn.execute(
                "DELETE FROM checkpoints WHERE run = ?1 AND batches_done = ?2",
                params![name, old.batches_done as i64],
            )?;
            dropped.push(old.file);
        }
        self.unnamed_checkpoint_files(dropped)
    }

    /// Of `files`, those no checkpoint row names (two runs of one plan
    /// write the same bytes, so one file may serve both).
    fn unnamed_checkpoint_files(&self, mut files: Vec<WeightsId>) -> Result<Vec<WeightsId>> {
        files.sort_by_key(|f| *f.bytes());
        files.dedup();
        let mut unnamed = Vec::new();
        for file in files {
            let named: bool = self.conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM checkpoints WHERE file = ?1)",
                [&file.bytes()[..]],
                |r| r.get(0),
            )?;
            if !named {
                unnamed.push(file);
            }
        }
        Ok(unnamed)
    }

    /// A run's checkpoints, newest first.
    pub fn checkpoints(&self, name: &str) -> Result<Vec<CheckpointRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT batches_done, epoch, batch, file, at FROM checkpoints
             WHERE run = ?1 ORDER BY batches_done DESC",
        )?;
        let rows = stmt.query_map([name], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (done, epoch, batch, file, at) = row?;
            let file = blob_id(file).ok_or_else(|| {
                StoreError::Damaged(format!(
                    "a checkpoint of run '{name}' names a file id that is not 32 bytes; run `statectl verify`"
                ))
            })?;
            out.push(CheckpointRow {
                batches_done: done as usize,
                epoch: epoch as usize,
                batch: batch as usize,
                file: WeightsId(file),
                at,
            });
        }
        Ok(out)
    }

    /// Records `states` as the run's recorded states from `position` on,
    /// replacing any rows there (left by a checkpoint that was given up).
    pub fn put_run_states(&self, name: &str, position: usize, states: &[RunState]) -> Result<()> {
        self.conn.execute(
            "DELETE FROM run_states WHERE run = ?1 AND position >= ?2",
            params![name, position as i64],
        )?;
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO run_states (run, position, state, epoch, batch) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (i, s) in states.iter().enumerate() {
            stmt.execute(params![
                name,
                (position + i) as i64,
                &s.state.bytes()[..],
                s.epoch as i64,
                s.batch.map(|b| b as i64)
            ])?;
        }
        Ok(())
    }

    /// The first `count` states the run recorded, in order.
    pub fn run_states(&self, name: &str, count: usize) -> Result<Vec<RunState>> {
        let mut stmt = self.conn.prepare(
            "SELECT state, epoch, batch FROM run_states WHERE run = ?1 AND position < ?2 ORDER BY position",
        )?;
        let rows = stmt.query_map(params![name, count as i64], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (state, epoch, batch) = row?;
            let state = blob_id(state).ok_or_else(|| {
                StoreError::Damaged(format!(
                    "run '{name}' names a recorded state id that is not 32 bytes; run `statectl verify`"
                ))
            })?;
            out.push(RunState {
                state: StateId(state),
                epoch: epoch as usize,
                batch: batch.map(|b| b as usize),
            });
        }
        if out.len() != count {
            return Err(StoreError::Damaged(format!(
                "run '{name}' should have {count} recorded state(s) but has {}; run `statectl verify`",
                out.len()
            )));
        }
        Ok(out)
    }

    /// Removes those of `files` that no checkpoint row names. Call inside a
    /// write, so no other run can come to name one meanwhile. (A
    /// checkpoint file's bytes say they are a checkpoint: no model or event
    /// names one.)
    pub fn remove_unnamed_checkpoint_files(&self, files: Vec<WeightsId>) -> Result<()> {
        for file in self.unnamed_checkpoint_files(files)? {
            let path = self.weights_path(&file);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(super::io_err(&path)(e))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether a journal event names the object as its input or output.
    pub fn object_named_by_events(&self, object: &ObjectId) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM events WHERE input = ?1 OR output = ?1)",
            [&object.bytes()[..]],
            |r| r.get(0),
        )?)
    }

    /// Removes an object (the caller checked nothing names it).
    pub fn delete_object(&self, object: &ObjectId) -> Result<()> {
        self.conn
            .execute("DELETE FROM objects WHERE id = ?1", [&object.bytes()[..]])?;
        Ok(())
    }
}

fn run_row(r: &rusqlite::Row) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        name: r.get(0)?,
        plan: r.get(1)?,
        started_at: r.get(2)?,
        updated_at: r.get(3)?,
    })
}
