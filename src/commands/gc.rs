//! `statectl gc [--dry-run] [--keep-events-since DURATION] [--keep-newest N --prefix P]`.

use anyhow::Result;
use serde_json::json;

use super::context::Context;
use crate::cli::GcArgs;
use crate::ops::gc::Retention;

pub fn run(ctx: &Context, args: GcArgs) -> Result<i32> {
    let cutoff = match &args.keep_events_since {
        Some(text) => Some(crate::ops::since::cutoff("--keep-events-since", text)?),
        None => None,
    };
    let retention = match (args.keep_newest, args.prefix) {
        (Some(keep_newest), Some(prefix)) => Some(Retention {
            prefix,
            keep_newest,
        }),
        _ => None,
    };
    let report = crate::ops::gc::run(&ctx.store, cutoff, args.dry_run, retention.as_ref())?;
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
        if let Some(r) = &report.retention {
            text.push_str(&format!(
                "{} {} tag(s) under '{}' (kept the newest {}){}\n",
                if args.dry_run { "would drop" } else { "dropped" },
                r.tags_dropped,
                r.prefix,
                r.keep_newest,
                if r.first_dropped.is_empty() {
                    String::new()
                } else {
                    format!(", the oldest: {}", r.first_dropped.join(", "))
                }
            ));
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
