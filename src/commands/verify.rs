//! `statectl verify`: re-hash everything, check every ref and event, and
//! let SQLite check its file. Exit 3 when anything is wrong.

use anyhow::Result;

use super::context::Context;
use super::EXIT_DIFFERENT;
use crate::cli::VerifyArgs;
use crate::ops::verify::{self, VerifyOutcome};

pub fn run(ctx: &Context, args: VerifyArgs) -> Result<i32> {
    let outcome = verify::run(&ctx.store, args.repair)?;
    ctx.emit_report(&outcome, || text(&outcome))?;
    Ok(exit_code(&outcome))
}

/// `statectl --store URL verify`: the shared store re-hashed and its refs
/// checked; exit 3 when anything is wrong.
pub fn run_on_shared(shared: &mut crate::shared::SharedStore, out: &super::Output) -> Result<i32> {
    let outcome = VerifyOutcome::of_shared(shared.verify()?);
    out.emit(serde_json::to_value(&outcome)?, || text(&outcome));
    Ok(exit_code(&outcome))
}

/// `verify` on a store SQLite cannot even open: one database problem.
pub fn unopenable(out: super::Output, error: anyhow::Error) -> Result<i32> {
    let outcome = VerifyOutcome::unreadable(error)?;
    out.emit(serde_json::to_value(&outcome)?, || text(&outcome));
    Ok(exit_code(&outcome))
}

fn exit_code(outcome: &VerifyOutcome) -> i32 {
    if outcome.ok {
        0
    } else {
        EXIT_DIFFERENT
    }
}

fn text(outcome: &VerifyOutcome) -> String {
    let report = &outcome.report;
    let mut text = String::new();
    if let Some(repaired) = &outcome.repaired {
        for stream in &repaired.streams {
            text.push_str(&format!(
                "repaired: stream {stream} put back at the journal's last state for it\n"
            ));
        }
        if repaired.streams.is_empty() {
            text.push_str("repaired: nothing to put back\n");
        }
    }
    if outcome.checked {
        text += &format!(
            "checked {} slot(s), {} state(s), {} object(s), {} weights file(s), {} tag(s), {} stream(s), {} event(s)\n",
            report.slots, report.states, report.objects, report.weights_files, report.tags, report.streams, report.events
        );
    }
    for p in &report.problems {
        text.push_str(&format!("{} {}: {}\n", p.kind, p.id, p.problem));
    }
    if report.pack_dead_bytes > 0 {
        text.push_str(&format!(
            "{} byte(s) in packs belong to no slot (removed slots, or writes that were killed); `statectl gc` reclaims them\n",
            report.pack_dead_bytes
        ));
    }
    if !report.leftovers.is_empty() {
        text.push_str(&format!(
            "{} file(s) left by interrupted commands (harmless; `statectl gc` removes them):\n",
            report.leftovers.len()
        ));
        for f in &report.leftovers {
            text.push_str(&format!("  {f}\n"));
        }
    }
    text.push_str(&if outcome.ok {
        "ok: every byte matches its id\n".to_string()
    } else {
        format!("{} problem(s) found\n", report.problems.len())
    });
    text
}
