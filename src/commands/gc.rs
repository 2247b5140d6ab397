//! `statectl gc [--dry-run] [--keep-events-since DURATION] [--keep-newest N --prefix P]`,
//! on a local store or (with `--grace`) a shared one.

use anyhow::Result;
use serde_json::json;

use super::context::{Context, Output};
use crate::cli::GcArgs;
use crate::ops::gc::Retention;
use crate::shared::{SharedGc, SharedStore};

pub fn run(ctx: &Context, args: GcArgs) -> Result<i32> {
    if args.grace.is_some() {
        anyhow::bail!("--grace applies to gc on a shared store (statectl --store postgres://... gc); a local store's gc holds its write lock and needs none");
    }
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
            text.push_str(&retention_line(r, args.dry_run));
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

/// What a replay buffer's bound dropped, as a line.
fn retention_line(r: &crate::store::RetentionReport, dry_run: bool) -> String {
    format!(
        "{} {} tag(s) under '{}' (kept the newest {}){}\n",
        if dry_run { "would drop" } else { "dropped" },
        r.tags_dropped,
        r.prefix,
        r.keep_newest,
        if r.first_dropped.is_empty() {
            String::new()
        } else {
            format!(", the oldest: {}", r.first_dropped.join(", "))
        }
    )
}

/// `statectl --store URL gc`: marks what nothing reaches on the shared
/// store and removes what was marked at least the grace period ago.
pub fn run_on_shared(url: &str, out: &Output, args: GcArgs) -> Result<i32> {
    if args.keep_events_since.is_some() {
        anyhow::bail!("--keep-events-since applies to a local store; a shared store keeps every journal entry it was sent");
    }
    let grace = args.grace.as_deref().unwrap_or("1h");
    let grace_ms = crate::ops::since::parse_duration("--grace", grace)?;
    let mut shared = SharedStore::open(url)?;
    let report = shared.gc(&SharedGc {
        grace_ms,
        dry_run: args.dry_run,
        retention: args.prefix.zip(args.keep_newest),
    })?;
    out.emit(serde_json::to_value(&report).unwrap_or(json!({})), || {
        let mut text = String::new();
        if let Some(r) = &report.retention {
            text.push_str(&retention_line(r, args.dry_run));
        }
        text.push_str(&format!(
            "{} {} state(s) and {} slot(s) ({} bytes) that nothing reached for {grace} or more; {} state(s) and {} slot(s) reached by nothing now\n",
            if args.dry_run { "would remove" } else { "removed" },
            report.states,
            report.slots,
            report.bytes,
            report.unreached_states,
            report.unreached_slots
        ));
        text
    });
    Ok(0)
}
