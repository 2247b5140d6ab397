//! `statectl snapshot [REF] --tag NAME [--force]`: name a state.

use anyhow::Result;
use serde_json::json;

use super::context::Context;
use crate::cli::SnapshotArgs;
use crate::ops::refs::Scope;
use crate::ops::tags::{self, TagRequest};

pub fn run(ctx: &Context, args: SnapshotArgs) -> Result<i32> {
    let model = ctx.optional_model(args.stream.model.as_deref())?;
    let state = tags::snapshot(
        &ctx.store,
        &args.reference,
        Scope {
            model: model.as_ref(),
            stream: &args.stream.stream,
            zeros_batch: None,
        },
        &TagRequest {
            name: args.tag.clone(),
            force: args.force,
        },
    )?;
    ctx.emit(json!({"tag": args.tag, "state": state.hex()}), || {
        format!("tag '{}' -> state {}", args.tag, state.short())
    });
    Ok(0)
}
