//! `statectl log`: the history of a stream (or with `--all` the whole
//! journal), newest first, filtered by kind and time. On a shared store's
//! URL: its whole journal (or with `--model` one stream), each event with
//! the store it came from.

use anyhow::Result;

use super::context::{format_time, Context};
use super::render::{describe, tags_by_state, TagsByState};
use super::Output;
use crate::cli::LogArgs;
use crate::ops::log::{self, LogReport, LogRequest, SharedLogRequest};
use crate::shared::SharedStore;

pub fn run(ctx: &Context, args: LogArgs) -> Result<i32> {
    let since = since(&args)?;
    let model = if args.all {
        None
    } else {
        Some(ctx.model(args.stream.model.as_deref())?)
    };
    let limit = shown(&args, ctx.out.json);
    let report = log::run(
        &ctx.store,
        &LogRequest {
            scope: model.as_ref().map(|m| (m, args.stream.stream.as_str())),
            kind: args.kind.clone(),
            since,
            // One more than shown, to know whether there are more.
            limit: limit.map(|n| n + 1),
        },
    )?;
    let tags = tags_by_state(&report.events, |id| {
        ctx.store.tags_of(id).unwrap_or_default()
    });
    emit(&ctx.out, report, limit, &tags)
}

pub fn run_on_shared(url: &str, out: &Output, args: LogArgs) -> Result<i32> {
    let since = since(&args)?;
    let limit = shown(&args, out.json);
    let mut shared = SharedStore::open(url)?;
    let report = log::run_on_shared(
        &mut shared,
        &SharedLogRequest {
            scope: args
                .stream
                .model
                .as_deref()
                .map(|m| (m, args.stream.stream.as_str())),
            kind: args.kind.clone(),
            since,
            limit: limit.map(|n| n + 1),
        },
    )?;
    let tags = tags_by_state(&report.events, |id| shared.tags_of(id).unwrap_or_default());
    emit(out, report, limit, &tags)
}

fn since(args: &LogArgs) -> Result<Option<i64>> {
    args.since
        .as_deref()
        .map(|text| crate::ops::since::cutoff("--since", text))
        .transpose()
}

/// The table shows the newest TABLE_LIMIT events unless told; JSON is
/// for scripts and gives every event unless told. `--limit 0`: all.
fn shown(args: &LogArgs, json: bool) -> Option<usize> {
    match args.limit {
        Some(0) => None,
        Some(n) => Some(n),
        None if json => None,
        None => Some(TABLE_LIMIT),
    }
}

/// Prints the report, `limit` events of the one more read.
fn emit(
    out: &Output,
    mut report: LogReport,
    limit: Option<usize>,
    tags: &TagsByState,
) -> Result<i32> {
    let more = limit.is_some_and(|n| report.events.len() > n);
    report.events.truncate(limit.unwrap_or(usize::MAX));
    out.emit(serde_json::to_value(&report)?, || {
        let mut text = table(&report, tags);
        if more {
            text.push_str(&format!(
                "(the newest {} events; older ones: --limit N, or --limit 0 for all)\n",
                report.events.len()
            ));
        }
        text
    });
    Ok(0)
}

/// Events the table shows when `--limit` is not given.
const TABLE_LIMIT: usize = 50;

fn short(id: Option<String>) -> String {
    id.map(|h| h[..12].to_string())
        .unwrap_or_else(|| "-".into())
}

fn table(report: &LogReport, tags: &TagsByState) -> String {
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
        let mut what = describe(tags, e);
        if let Some(after) = e.state_after.filter(|s| seen.insert(*s)) {
            let names = tags.get(&after).cloned().unwrap_or_default();
            if !names.is_empty() && !matches!(e.kind.as_str(), "tag" | "restore") {
                what.push_str(&format!("  tags: {}", names.join(", ")));
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
        if let Some((store, number)) = &e.origin {
            what.push_str(&format!(
                "  (store {} event {number})",
                &hex::encode(store)[..8]
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
