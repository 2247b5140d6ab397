//! A training run from a checkpoint (or its start) to its end or a stop,
//! for every front end: checkpoints are handed to a writer thread as the
//! run's policy says, and when the front end asks to stop; a finished run
//! registers its model. The front end sees progress through a
//! [`RunObserver`].

use std::cell::RefCell;

use anyhow::Result;

use super::checkpoint_writer::CheckpointWriter;
use super::models::Model;
use super::runs::{self, CheckpointSnapshot, RunPlan};
use super::train::TrainPlan;
use crate::store::Store;
use crate::train::{train_from, Boundary, Checkpoint, Flow, Outcome, Progress, TrainReport};

/// What a front end sees of a run, and how it stops one.
pub trait RunObserver {
    /// The run starts with `batches_done` batches behind it (a resumed run),
    /// from the checkpoint at `position`.
    fn starting_at(&mut self, batches_done: usize, position: Option<String>);
    fn batch(&mut self, progress: &Progress);
    /// A checkpoint at `position` was handed to the writer.
    fn checkpointed(&mut self, position: String);
    /// Asked after every batch: true writes a checkpoint and stops.
    fn stop_requested(&mut self) -> bool;
}

/// How a run ended in this process.
pub enum RunEnd {
    Finished(Box<(Model, TrainReport)>),
    /// Stopped when asked, after a checkpoint at this position.
    Stopped(String),
}

/// Trains a started run from `from` (or its start). A run whose training
/// fails (it diverged) is removed, as it cannot go on; one whose checkpoint
/// could not be written keeps the ones before.
pub fn train(
    store: &Store,
    name: &str,
    run: &RunPlan,
    plan: &TrainPlan,
    from: Option<Checkpoint>,
    observer: &mut dyn RunObserver,
) -> Result<RunEnd> {
    let batches = plan.train.batches_per_epoch(plan.data.len());
    if let Some(cp) = &from {
        observer.starting_at(
            cp.batches_done(batches),
            Some(runs::position(cp.epoch, cp.batch)),
        );
    }
    // Both the batch callback and the checkpoint hook report to it.
    let observer = RefCell::new(observer);
    let mut recorded = from.as_ref().map_or(0, |cp| cp.states.len());
    let mut writer = CheckpointWriter::start(store.root(), name, run)?;
    let mut checkpoint_failed = false;
    let mut at_boundary = |cp: &Checkpoint, boundary: Boundary| -> Result<Flow> {
        let stop = observer.borrow_mut().stop_requested();
        let due = run
            .checkpoints
            .every
            .is_due(cp.batches_done(batches), boundary == Boundary::EpochEnd);
        if due || stop {
            checkpoint_failed = true;
            writer.write(CheckpointSnapshot::of(cp, run, recorded))?;
            checkpoint_failed = false;
            recorded = cp.states.len();
            observer
                .borrow_mut()
                .checkpointed(runs::position(cp.epoch, cp.batch));
        }
        Ok(if stop { Flow::Stop } else { Flow::Continue })
    };
    let outcome = train_from(
        &plan.data,
        &plan.train,
        &plan.init,
        from,
        &mut |p| observer.borrow_mut().batch(&p),
        &mut at_boundary,
    );
    // Every checkpoint handed over is committed (or its error known) before
    // the run stops, finishes or is removed.
    writer.finish()?;
    match outcome {
        Err(e) if !checkpoint_failed => {
            runs::abandon(store, name)?;
            Err(e)
        }
        Err(e) => Err(e),
        Ok(Outcome::Stopped(cp)) => Ok(RunEnd::Stopped(runs::position(cp.epoch, cp.batch))),
        Ok(Outcome::Finished(report)) => {
            let model = runs::finish(store, name, plan, &report)?;
            Ok(RunEnd::Finished(Box::new((model, *report))))
        }
    }
}
