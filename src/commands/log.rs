//! `statectl log`: the history of a stream (or with `--all` the whole
//! journal), newest first, filtered by kind and time.

use anyhow::Result;
use serde_json::json;

use super::context::{format_time, parse_duration, Context};
use super::render::event_json;
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
    ctx.out.emit(
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
                    if !tags.is_empty() && e.kind != "tag" {
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

/// A state's short id with its tags as they are now, e.g. `3592eecfee59 (trained)`.
fn named(ctx: &Context, hex: &str) -> String {
    let tags = crate::id::Digest::parse_hex(hex)
        .map(|d| {
            ctx.store
                .tags_of(&crate::id::StateId(d))
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let id = &hex[..hex.len().min(12)];
    if tags.is_empty() {
        id.to_string()
    } else {
        format!("{id} ({})", tags.join(", "))
    }
}

/// What an event did, in words: where a restore came from, which slots a
/// slice took, which tag moved, whether a prediction left its stream alone.
fn describe(ctx: &Context, e: &crate::store::EventRecord) -> String {
    let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
    let source = detail["source"].as_str().map(|s| named(ctx, s));
    match e.kind.as_str() {
        "restore" => format!("from {}", source.unwrap_or_default()),
        "slice" => {
            let slots: Vec<u64> = detail["slots"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
                .unwrap_or_default();
            let picked = match slots.as_slice() {
                [first, rest @ ..] if rest.iter().all(|s| s == first) => {
                    format!("slot {first} broadcast to batch {}", slots.len())
                }
                _ => format!(
                    "slots {} (batch {})",
                    slots
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                    slots.len()
                ),
            };
            format!("{picked} of {}", source.unwrap_or_default())
        }
        "reset" => format!("zeros, batch {}", detail["batch"]),
        "predict" if !e.moved_stream => "stream not advanced (--no-advance or --from)".into(),
        "tag" => format!("tag {}", e.tag.as_deref().unwrap_or("")),
        "untag" => format!("tag {} deleted", e.tag.as_deref().unwrap_or("")),
        "train" if detail["final"] == true => "training's final state".into(),
        "train" => match detail["batch"].as_u64() {
            Some(b) => format!("epoch {} batch {b}", detail["epoch"]),
            None => format!("end of epoch {}", detail["epoch"]),
        },
        "import" => format!(
            "{} of {}",
            detail["from"].as_str().unwrap_or(""),
            detail["file"].as_str().unwrap_or("")
        ),
        "burn-in" => format!("{} step(s)", detail["steps"]),
        _ => String::new(),
    }
}
