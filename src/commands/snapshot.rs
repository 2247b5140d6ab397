//! `statectl snapshot [REF] --tag NAME [--force]`: name a state.

use anyhow::Result;
use serde_json::json;

use super::context::Context;
use crate::cli::SnapshotArgs;

pub fn run(ctx: &Context, args: SnapshotArgs) -> Result<i32> {
    let model = ctx.optional_model(args.stream.model.as_deref())?;
    let state = ctx.store.write(|_| -> Result<_> {
        let state = ctx.resolve(&args.reference, model.as_ref(), &args.stream.stream, None)?;
        // Re-hash before naming: a tag must not point at damaged content.
        ctx.store.load_state(&state)?;
        ctx.check_tag_free(&args.tag, Some(&state), args.force)?;
        ctx.set_tag(&args.tag, &state, model.as_ref())?;
        Ok(state)
    })?;
    ctx.out
        .emit(json!({"tag": args.tag, "state": state.hex()}), || {
            format!("tag '{}' -> state {}", args.tag, state.short())
        });
    Ok(0)
}
