//! `statectl split REF --tag-prefix P`: one state per slot, each tagged
//! P + slot, with lineage back to (source, slot).

use anyhow::Result;
use serde_json::json;

use super::context::Context;
use crate::cli::SplitArgs;
use crate::ops::refs::Scope;
use crate::ops::stack;

pub fn run(ctx: &Context, args: SplitArgs) -> Result<i32> {
    let model = ctx.optional_model(args.stream.model.as_deref())?;
    let (source, states) = stack::split(
        &ctx.store,
        &args.reference,
        Scope {
            model: model.as_ref(),
            stream: &args.stream.stream,
            zeros_batch: None,
        },
        &args.tag_prefix,
        args.force,
    )?;
    let rows: Vec<serde_json::Value> = states
        .iter()
        .map(|s| json!({"slot": s.slot, "state": s.state.hex(), "tag": s.tag}))
        .collect();
    ctx.emit(json!({"source": source.hex(), "states": rows}), || {
        if ctx.out.quiet || states.len() > 8 {
            let last = states.last().map(|s| s.tag.as_str()).unwrap_or("");
            return format!(
                "split {} into {} one-slot state(s): {} .. {last}",
                source.short(),
                states.len(),
                states.first().map(|s| s.tag.as_str()).unwrap_or("")
            );
        }
        states
            .iter()
            .map(|s| {
                format!(
                    "slot {} of {} -> {} ({})\n",
                    s.slot,
                    source.short(),
                    s.state.short(),
                    s.tag
                )
            })
            .collect()
    });
    Ok(0)
}
