//! Training progress for people: a bar on stderr (hidden with `-q`), used
//! by `train`, `demo` and `audit --train`.

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use crate::ops::train::TrainPlan;
use crate::train::{Progress, TrainReport};

/// Runs the plan with a progress bar on stderr (unless quiet).
pub fn run_training(quiet: bool, plan: &TrainPlan) -> Result<TrainReport> {
    let bar = progress_bar(quiet, plan);
    let report = crate::ops::train::run(plan, &mut |p| tick(&bar, p));
    bar.finish_and_clear();
    report
}

/// A training progress bar on stderr (hidden when quiet).
pub fn progress_bar(quiet: bool, plan: &TrainPlan) -> ProgressBar {
    let batches = plan.data.len().div_ceil(plan.train.batch_size.max(1));
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new((plan.train.epochs * batches) as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("training {bar:30} epoch {msg} [{elapsed}, {per_sec}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

pub fn tick(bar: &ProgressBar, p: &Progress) {
    bar.set_message(format!(
        "{}/{} batch {}/{} loss {:.4}",
        p.epoch + 1,
        p.epochs,
        p.batch + 1,
        p.batches,
        p.loss
    ));
    bar.inc(1);
}
