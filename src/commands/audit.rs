//! `statectl audit`: replay recorded predictions (and with `--train`,
//! training) and check them bit for bit (the operation is `ops::audit`);
//! exit 3 when anything differs or fails.

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use super::context::Context;
use super::{Output, EXIT_DIFFERENT};
use crate::cli::AuditArgs;
use crate::ops::audit::{self, AuditReport, AuditRequest};
use crate::ops::backend::Backend;
use crate::shared::SharedStore;
use crate::train::Progress;

pub fn run(ctx: &Context, args: AuditArgs) -> Result<i32> {
    audit_with(&ctx.out, args, |request, on_event, progress| {
        audit::run(&ctx.store, request, on_event, progress)
    })
}

/// `audit` on a shared store: its recorded predictions (and trainings)
/// replayed from what it holds, without a pull.
pub fn run_on_shared(url: &str, out: &Output, args: AuditArgs) -> Result<i32> {
    let mut shared = SharedStore::open(url)?;
    audit_with(out, args, |request, on_event, progress| {
        audit::run_on(
            &mut Backend::Shared(&mut shared),
            request,
            on_event,
            progress,
        )
    })
}

type Replay<'a> = &'a mut dyn FnMut(usize, usize);
type Training<'a> = &'a mut dyn FnMut(&Progress);

fn audit_with(
    out: &Output,
    args: AuditArgs,
    audit: impl FnOnce(&AuditRequest, Replay, Training) -> Result<AuditReport>,
) -> Result<i32> {
    let since = match &args.since {
        Some(text) => Some(crate::ops::since::cutoff("--since", text)?),
        None => None,
    };
    let request = AuditRequest {
        model: args.model.clone(),
        stream: args.stream.clone(),
        events: args.events.clone(),
        since,
        tag: args.tag.clone(),
        tolerance: args.tolerance,
        train: args.train.clone(),
        allow_empty: args.allow_empty,
    };
    let bar = ProgressBar::hidden();
    bar.set_style(
        ProgressStyle::with_template("auditing {bar:30} {pos}/{len} [{elapsed}, {per_sec}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let quiet = out.quiet;
    let mut training_bar: Option<super::progress::TrainingProgress> = None;
    let report = audit(
        &request,
        &mut |done, total| {
            // A bar only for long audits.
            if done == 1 && total >= 200 && !quiet {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                bar.set_length(total as u64);
            }
            bar.set_position(done as u64);
        },
        &mut |p| {
            let progress = training_bar.get_or_insert_with(|| {
                super::progress::TrainingProgress::for_batches(quiet, (p.epochs * p.batches) as u64)
            });
            progress.tick(p);
        },
    )?;
    bar.finish_and_clear();
    if let Some(progress) = training_bar {
        progress.finish();
    }
    let results = &report.events;
    let trainings = &report.training;
    let seconds = report.seconds;
    let (reproduced, tolerated, mismatched, failed) = (
        report.reproduced,
        report.within_tolerance,
        report.mismatched,
        report.failed,
    );
    let current = &report.platform;
    out.emit(
        serde_json::to_value(&report)?,
        || {
            let mut text = String::new();
            for r in results.iter().filter(|r| r.status != "reproduced") {
                text.push_str(&format!("event {:>6} {:<16}", r.event, r.status));
                if let Some(reason) = &r.reason {
                    text.push_str(&format!(" {reason}"));
                }
                for d in &r.differences {
                    text.push_str(&format!(" {} slot {}: max |diff| {:.3e} ({} ULPs);", d.tensor, d.slot, d.max_abs, d.max_ulps));
                }
                if r.status == "mismatch" {
                    text.push_str(&format!("\n             recorded on {}\n             replayed on {}", r.recorded_platform, current));
                }
                text.push('\n');
            }
            for t in trainings {
                text.push_str(&format!(
                    "training of '{}': {} (weights {} -> {}, {} of {} training state(s) differ){}\n",
                    t.model,
                    t.status,
                    &t.weights_recorded[..12],
                    t.weights_replayed.as_deref().map(|w| &w[..12]).unwrap_or("-"),
                    t.states_differing,
                    t.states_checked,
                    t.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
                ));
            }
            text.push_str(&format!(
                "{} predict event(s) in {seconds:.2}s: {reproduced} reproduced bit for bit, {tolerated} within tolerance, {mismatched} mismatched, {failed} failed\n",
                results.len()
            ));
            if tolerated > 0 {
                text.push_str(&format!("differences up to {} were accepted (--tolerance)\n", args.tolerance.unwrap_or(0.0)));
            }
            text
        },
    );
    Ok(if report.ok { 0 } else { EXIT_DIFFERENT })
}
