//! `statectl log`: the history of a stream (or with `--all` the whole
//! journal), newest first, filtered by kind and time.

use anyhow::Result;

use super::context::{format_time, Context};
use super::render::describe;
use crate::cli::LogArgs;
use crate::ops::log::{self, LogReport, LogRequest};

pub fn run(ctx: &Context, args: LogArgs) -> Result<i32> {
    let since = match &args.since {
        Some(text) => Some(crate::ops::since::cutoff("--since", text)?),
        None => None,
    };
    let model = if args.all {
        None
    } else {
        Some(ctx.model(args.stream.model.as_deref())?)
    };
    // The table shows the newest TABLE_LIMIT events unless told; JSON is
    // for scripts and gives every event unless told. `--limit 0`: all.
    let limit = match args.limit {
        Some(0) => None,
        Some(n) => Some(n),
        None if ctx.out.json => None,
        None => Some(TABLE_LIMIT),
    };
    let mut report = log::run(
        &ctx.store,
        &LogRequest {
            scope: model.as_ref().map(|m| (m, args.stream.stream.as_str())),
            kind: args.kind.clone(),
            since,
            // One more than shown, to know whether there are more.
            limit: limit.map(|n| n + 1),
        },
    )?;
    let more = limit.is_some_and(|n| report.events.len() > n);
    report.events.truncate(limit.unwrap_or(usize::MAX));
    ctx.emit_report(&report, || {
        let mut text = table(ctx, &report);
        if more {
            text.push_str(&format!(
                "(the newest {} events; older ones: --limit N, or --limit 0 for all)\n",
                report.events.len()
            ));
        }
        text
    })
}

/// Events the table shows when `--limit` is not given.
const TABLE_LIMIT: usize = 50;

fn short(id: Option<String>) -> String {
    id.map(|h| h[..12].to_string())
        .unwrap_or_else(|| "-".into())
}

fn table(ctx: &Context, report: &LogReport) -> String {
    let scope = match (&report.model, &report.stream) {
        (Some(m), Some(s)) => format!("model '{m}', stream '{s}'"),
        _ => "all models and streams".to_string(),
    };
    let mut text = format!(
        "{scope} (times in UTC)\n{:>6}  {:<19}  {:<8} {:<12}    {:<12}  {}\n",
        "EVENT", "TIME", "KIND", "BEFORE", "AFTER", "WHAT"
    );
    // Today's tags of a state go on its newest row only.
    let mut seen = std::collections::HashSet::new();
    for e in &report.events {
        let mut what = describe(ctx, e);
        if let Some(after) = e.state_after.filter(|s| seen.insert(*s)) {
            let tags = ctx.store.tags_of(&after).unwrap_or_default();
            if !tags.is_empty() && !matches!(e.kind.as_str(), "tag" | "restore") {
                what.push_str(&format!("  tags: {}", tags.join(", ")));
            }
        }
        if report.head.is_some() && e.state_after == report.head && e.moved_stream {
            what.push_str(" (HEAD)");
        }
        if report.model.is_none() {
            what.push_str(&format!(
                "  [{}{}]",
                e.model_name.as_deref().unwrap_or("-"),
                e.stream
                    .as_ref()
                    .map(|s| format!("/{s}"))
                    .unwrap_or_default()
            ));
        }
        text.push_str(&format!(
            "{:>6}  {:<19}  {:<8} {:<12} -> {:<12}  {}\n",
            e.id,
            format_time(e.at),
            e.kind,
            short(e.state_before.map(|s| s.hex())),
            short(e.state_after.map(|s| s.hex())),
            what.trim_start()
        ));
    }
    text
}
