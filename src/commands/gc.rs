//! `statectl gc [--dry-run] [--keep-events-since DURATION]`.

use anyhow::Result;
use serde_json::json;

use super::context::Context;
use crate::cli::GcArgs;

pub fn run(ctx: &Context, args: GcArgs) -> Result<i32> {
    let cutoff = match &args.keep_events_since {
        Some(text) => Some(crate::ops::since::cutoff("--keep-events-since", text)?),
        None => None,
    };
    let report = crate::ops::gc::run(&ctx.store, cutoff, args.dry_run)?;
    ctx.emit(serde_json::to_value(&report).unwrap_or(json!({})), || {
        let verb = if args.dry_run { "would remove" } else { "removed" };
        let mut text = String::new();
        if args.dry_run {
            for s in &report.states {
                text.push_str(&format!("state {}\n", &s[..12]));
            }
            for w in &report.weights_files {
                text.push_str(&format!("weights file {}\n", &w[..12]));
            }
        }
        if !report.leftovers.is_empty() {
            text.push_str(&format!(
                "{verb} {} file(s) that interrupted commands left in weights/\n",
                report.leftovers.len()
            ));
        }
        text.push_str(&format!(
            "{verb} {} event(s), {} state(s), {} slot(s), {} object(s), {} weights file(s): {} bytes\n",
            report.events,
            report.states.len(),
            report.slots,
            report.objects,
            report.weights_files.len(),
            report.bytes
        ));
        text
    });
    Ok(0)
}
