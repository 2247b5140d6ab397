//! `statectl log`: the history of a stream, newest first.

use anyhow::Result;
use serde_json::json;

use super::context::Context;
use crate::cli::LogArgs;
use crate::store::{EventFilter, EventRecord};

fn short(id: Option<String>) -> String {
    id.map(|h| h[..12].to_string())
        .unwrap_or_else(|| "-".into())
}

pub fn event_json(e: &EventRecord) -> serde_json::Value {
    json!({
        "event": e.id,
        "kind": e.kind,
        "at": e.at,
        "model": e.model_name,
        "stream": e.stream,
        "state_before": e.state_before.map(|s| s.hex()),
        "state_after": e.state_after.map(|s| s.hex()),
        "input": e.input.map(|s| s.hex()),
        "output": e.output.map(|s| s.hex()),
        "tag": e.tag,
        "detail": serde_json::from_str::<serde_json::Value>(&e.detail).unwrap_or_default(),
    })
}

pub fn run(ctx: &Context, args: LogArgs) -> Result<i32> {
    let model = ctx.model(args.stream.model.as_deref())?;
    let events = ctx.store.events(&EventFilter {
        model: Some(model.record.id),
        stream: Some(args.stream.stream.clone()),
        limit: args.limit,
        ..Default::default()
    })?;
    let head = ctx.head(&model, &args.stream.stream)?;
    let rows: Vec<serde_json::Value> = events.iter().map(event_json).collect();
    ctx.out.emit(
        json!({"model": model.record.name, "stream": args.stream.stream, "head": head.map(|h| h.hex()), "events": rows}),
        || {
            let mut text = format!(
                "model '{}', stream '{}'\n{:>6}  {:<8} {:<12}    {:<12}  {}\n",
                model.record.name, args.stream.stream, "EVENT", "KIND", "BEFORE", "AFTER", "TAGS"
            );
            for e in &events {
                let tags = e
                    .state_after
                    .map(|s| ctx.store.tags_of(&s).unwrap_or_default().join(","))
                    .unwrap_or_default();
                let mark = if e.state_after == head && e.moved_stream { " (HEAD)" } else { "" };
                text.push_str(&format!(
                    "{:>6}  {:<8} {:<12} -> {:<12}  {tags}{mark}\n",
                    e.id,
                    e.kind,
                    short(e.state_before.map(|s| s.hex())),
                    short(e.state_after.map(|s| s.hex()))
                ));
            }
            text
        },
    );
    Ok(0)
}
