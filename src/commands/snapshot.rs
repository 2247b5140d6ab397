//! `statectl snapshot [REF] --tag NAME [--force]`: name a state.

use anyhow::Result;
use serde_json::json;

use super::context::{Context, Output};
use crate::cli::SnapshotArgs;
use crate::ops::backend::Backend;
use crate::ops::refs::Scope;
use crate::ops::snapshot;
use crate::ops::tags::TagRequest;
use crate::shared::SharedStore;

pub fn run(ctx: &Context, args: SnapshotArgs) -> Result<i32> {
    name(&mut Backend::Embedded(&ctx.store), &ctx.out, args)
}

/// On a shared store's URL: REF is a tag, a full id or `zeros` (with
/// `--model`).
pub fn run_on_shared(url: &str, out: &Output, args: SnapshotArgs) -> Result<i32> {
    let mut shared = SharedStore::open(url)?;
    name(&mut Backend::Shared(&mut shared), out, args)
}

fn name(backend: &mut Backend, out: &Output, args: SnapshotArgs) -> Result<i32> {
    let model = backend.optional_model(args.stream.model.as_deref())?;
    let state = snapshot::snapshot_on(
        backend,
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
    out.emit(json!({"tag": args.tag, "state": state.hex()}), || {
        format!("tag '{}' -> state {}", args.tag, state.short())
    });
    Ok(0)
}
