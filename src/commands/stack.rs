//! `statectl stack REF... [--tag NAME]`: one batch from states of one
//! layout, in order; writes a slot list, no tensor bytes.

use anyhow::Result;
use serde_json::json;

use super::context::{read_refs, Context};
use crate::cli::StackArgs;
use crate::ops::refs::Scope;
use crate::ops::stack;

pub fn run(ctx: &Context, args: StackArgs) -> Result<i32> {
    let model = ctx.optional_model(args.stream.model.as_deref())?;
    let refs = read_refs(ctx, &args.references, &args.refs_from)?;
    let tag = args.tag.request();
    let stacked = stack::stack(
        &ctx.store,
        &refs,
        Scope {
            model: model.as_ref(),
            stream: &args.stream.stream,
            zeros_batch: Some(1),
        },
        tag.as_ref(),
    )?;
    let sources: Vec<serde_json::Value> = stacked
        .sources
        .iter()
        .map(|(r, id, batch)| json!({"ref": r, "state": id.hex(), "batch": batch}))
        .collect();
    ctx.emit(
        json!({"state": stacked.state.hex(), "layout": stacked.layout, "batch": stacked.batch, "tag": args.tag.tag, "sources": sources}),
        || {
            let tag = args.tag.tag.as_ref().map(|t| format!(", tagged '{t}'")).unwrap_or_default();
            format!(
                "stacked {} state(s) into {} ({}, batch {}){tag}",
                stacked.sources.len(),
                stacked.state.short(),
                stacked.layout,
                stacked.batch
            )
        },
    );
    Ok(0)
}
