//! `statectl split REF --tag-prefix P`: one state per slot, each tagged
//! P + slot, with lineage back to (source, slot). On a shared store's URL
//! it reads and writes there (tags and full ids).

use anyhow::Result;
use serde_json::json;

use super::context::Context;
use super::Output;
use crate::cli::SplitArgs;
use crate::id::StateId;
use crate::ops::backend::Backend;
use crate::ops::refs::Scope;
use crate::ops::stack::{self, SplitState};
use crate::shared::SharedStore;

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
    report(&ctx.out, source, &states)
}

pub fn run_on_shared(url: &str, out: &Output, args: SplitArgs) -> Result<i32> {
    let mut shared = SharedStore::open(url)?;
    let backend = &mut Backend::Shared(&mut shared);
    let model = backend.optional_model(args.stream.model.as_deref())?;
    let (source, states) = stack::split_on(
        backend,
        &args.reference,
        Scope {
            model: model.as_ref(),
            stream: &args.stream.stream,
            zeros_batch: None,
        },
        &args.tag_prefix,
        args.force,
    )?;
    report(out, source, &states)
}

fn report(out: &Output, source: StateId, states: &[SplitState]) -> Result<i32> {
    let rows: Vec<serde_json::Value> = states
        .iter()
        .map(|s| json!({"slot": s.slot, "state": s.state.hex(), "tag": s.tag}))
        .collect();
    out.emit(json!({"source": source.hex(), "states": rows}), || {
        if out.quiet || states.len() > 8 {
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
