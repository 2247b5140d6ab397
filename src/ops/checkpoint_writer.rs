//! Writes a training run's checkpoints on a thread of its own, so training
//! goes on while a checkpoint is hashed and committed. At most one
//! checkpoint is in flight: handing over the next waits until the writer
//! is free, which bounds memory to one extra copy of the run. Each
//! checkpoint is still its own transaction, so a kill at any moment leaves
//! the latest committed one.

use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

use anyhow::{anyhow, Result};

use super::runs::{save_checkpoint, CheckpointSnapshot, RunPlan};
use crate::store::Store;

pub struct CheckpointWriter {
    sender: Option<SyncSender<CheckpointSnapshot>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl CheckpointWriter {
    /// A writer with its own connection to the store at `root`.
    pub fn start(root: &Path, name: &str, run: &RunPlan) -> Result<CheckpointWriter> {
        let store = Store::open_existing(root)?;
        let (sender, receiver) = sync_channel::<CheckpointSnapshot>(0);
        let (name, run) = (name.to_string(), run.clone());
        let thread = std::thread::Builder::new()
            .name("statectl-checkpoints".into())
            .spawn(move || -> Result<()> {
                for snapshot in receiver {
                    save_checkpoint(&store, &name, &run, &snapshot)?;
                }
                Ok(())
            })?;
        Ok(CheckpointWriter {
            sender: Some(sender),
            thread: Some(thread),
        })
    }

    /// Hands a checkpoint over, waiting while the previous one is written.
    /// An error is the writer's: the checkpoint before failed.
    pub fn write(&mut self, snapshot: CheckpointSnapshot) -> Result<()> {
        let sent = self
            .sender
            .as_ref()
            .map(|s| s.send(snapshot).is_ok())
            .unwrap_or(false);
        if sent {
            Ok(())
        } else {
            // The writer stopped: its error says why.
            self.finish()?;
            Err(anyhow!("the checkpoint writer stopped"))
        }
    }

    /// Waits until every handed-over checkpoint is committed.
    pub fn finish(&mut self) -> Result<()> {
        drop(self.sender.take());
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| anyhow!("the checkpoint writer panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for CheckpointWriter {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
