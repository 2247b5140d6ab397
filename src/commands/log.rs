//! `statectl log`: the history of a stream (or with `--all` the whole
//! journal), newest first, filtered by kind and time.

use anyhow::Result;
use serde_json::json;

use super::context::{format_time, parse_duration, Context};
use super::render::{describe, event_json};
use crate::cli::LogArgs;
use crate::store::{now_ms, EventFilter};

fn short(id: Option<String>) -> String {
    id.map(|h| h[..12].to_string())
        .unwrap_or_else(|| "-".into())
}

pub fn run(ctx: &Context, args: LogArgs) -> Result<i32> {
    let since = match &args.since {
        Some(text) => Some(now_ms() - parse_duration("--since", text)?),
        None => None,
    };
    let model = if args.all {
        None
    } else {
        Some(ctx.model(args.stream.model.as_deref())?)
    };
    let events = ctx.store.events(&EventFilter {
        model: model.as_ref().map(|m| m.record.id),
        stream: model.as_ref().map(|_| args.stream.stream.clone()),
        kind: args.kind.clone(),
        since,
        limit: args.limit,
    })?;
    let head = match &model {
        Some(m) => crate::ops::streams::head(&ctx.store, m, &args.stream.stream)?,
        None => None,
    };
    let rows: Vec<serde_json::Value> = events.iter().map(event_json).collect();
    ctx.emit(
        json!({
            "model": model.as_ref().map(|m| m.record.name.clone()),
            "stream": model.as_ref().map(|_| args.stream.stream.clone()),
            "head": head.map(|h| h.hex()),
            "events": rows,
        }),
        || {
            let scope = match &model {
                Some(m) => format!("model '{}', stream '{}'", m.record.name, args.stream.stream),
                None => "all models and streams".to_string(),
            };
            let mut text = format!(
                "{scope} (times in UTC)\n{:>6}  {:<19}  {:<8} {:<12}    {:<12}  {}\n",
                "EVENT", "TIME", "KIND", "BEFORE", "AFTER", "WHAT"
            );
            // Today's tags of a state go on its newest row only.
            let mut seen = std::collections::HashSet::new();
            for e in &events {
                let mut what = describe(ctx, e);
                if let Some(after) = e.state_after.filter(|s| seen.insert(*s)) {
                    let tags = ctx.store.tags_of(&after).unwrap_or_default();
                    if !tags.is_empty() && !matches!(e.kind.as_str(), "tag" | "restore") {
                        what.push_str(&format!("  tags: {}", tags.join(", ")));
                    }
                }
                if head.is_some() && e.state_after == head && e.moved_stream {
                    what.push_str(" (HEAD)");
                }
                if model.is_none() {
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
        },
    );
    Ok(0)
}
