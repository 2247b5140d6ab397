//! Training progress for people, on stderr (nothing with `-q`), used by
//! `train`, `demo` and `audit --train`: a bar with an ETA on a terminal,
//! and off a terminal (CI, nohup) a plain line every ten seconds, so a long
//! run never looks hung.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::ops::train::TrainPlan;
use crate::train::Progress;

/// How often a plain progress line is printed off a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

pub struct TrainingProgress {
    bar: ProgressBar,
    plain: bool,
    started: Instant,
    last_line: Instant,
    total: u64,
    done: u64,
    /// Batches done before this process started (a continued run).
    skipped: u64,
    /// Where the latest checkpoint stands.
    checkpoint: Option<String>,
}

impl TrainingProgress {
    pub fn new(quiet: bool, plan: &TrainPlan) -> TrainingProgress {
        let batches = plan.train.batches_per_epoch(plan.data.len());
        TrainingProgress::for_batches(quiet, (plan.train.epochs * batches) as u64)
    }

    /// Progress over `total` batches.
    pub fn for_batches(quiet: bool, total: u64) -> TrainingProgress {
        let terminal = std::io::stderr().is_terminal();
        let bar = if quiet || !terminal {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(total)
        };
        bar.set_style(
            ProgressStyle::with_template(
                "training {bar:30} epoch {msg} [{elapsed} elapsed, about {eta} left]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        TrainingProgress {
            bar,
            plain: !quiet && !terminal,
            started: Instant::now(),
            last_line: Instant::now(),
            total,
            done: 0,
            skipped: 0,
            checkpoint: None,
        }
    }

    /// Starts the count at `done` batches (a run continued part way).
    pub fn skip(&mut self, done: u64) {
        self.done = done;
        self.skipped = done;
        self.bar.set_position(done);
    }

    /// Shows where the latest checkpoint stands from now on.
    pub fn checkpointed(&mut self, position: String) {
        self.checkpoint = Some(position);
    }

    pub fn tick(&mut self, p: &Progress) {
        let mut at = format!(
            "{}/{} batch {}/{} loss {:.4}",
            p.epoch + 1,
            p.epochs,
            p.batch + 1,
            p.batches,
            p.loss
        );
        if let Some(c) = &self.checkpoint {
            at.push_str(&format!(", checkpoint at {c}"));
        }
        self.done += 1;
        if self.plain && self.last_line.elapsed() >= PLAIN_EVERY {
            self.last_line = Instant::now();
            let elapsed = self.started.elapsed().as_secs_f64();
            let ran = (self.done - self.skipped).max(1) as f64;
            let left = elapsed / ran * (self.total - self.done.min(self.total)) as f64;
            eprintln!(
                "training: epoch {at}, {:.0}% done, {elapsed:.0}s elapsed, about {left:.0}s left",
                100.0 * self.done as f64 / self.total.max(1) as f64
            );
        }
        self.bar.set_message(at);
        self.bar.inc(1);
    }

    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
