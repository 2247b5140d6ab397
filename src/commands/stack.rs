//! `statectl stack REF... [--tag NAME]`: one batch from states of one
//! layout, in order; writes a slot list, no tensor bytes. On a shared
//! store's URL it reads and writes there (tags and full ids).

use anyhow::Result;
use serde_json::json;

use super::context::{read_refs, Context};
use super::Output;
use crate::cli::StackArgs;
use crate::ops::backend::Backend;
use crate::ops::refs::Scope;
use crate::ops::stack::{self, Stacked};
use crate::shared::SharedStore;

pub fn run(ctx: &Context, args: StackArgs) -> Result<i32> {
    let model = ctx.optional_model(args.stream.model.as_deref())?;
    let refs = read_refs(ctx, &args.references, &args.refs_from)?;
    let stacked = stack::stack(
        &ctx.store,
        &refs,
        Scope {
            model: model.as_ref(),
            stream: &args.stream.stream,
            zeros_batch: Some(1),
        },
        args.tag.request().as_ref(),
    )?;
    report(&ctx.out, &args, &stacked)
}

pub fn run_on_shared(url: &str, out: &Output, args: StackArgs) -> Result<i32> {
    let mut shared = SharedStore::open(url)?;
    let refs = super::shared::read_refs(&mut shared, &args.references, &args.refs_from)?;
    let backend = &mut Backend::Shared(&mut shared);
    let model = backend.optional_model(args.stream.model.as_deref())?;
    let stacked = stack::stack_on(
        backend,
        &refs,
        Scope {
            model: model.as_ref(),
            stream: &args.stream.stream,
            zeros_batch: Some(1),
        },
        args.tag.request().as_ref(),
    )?;
    report(out, &args, &stacked)
}

fn report(out: &Output, args: &StackArgs, stacked: &Stacked) -> Result<i32> {
    let sources: Vec<serde_json::Value> = stacked
        .sources
        .iter()
        .map(|(r, id, batch)| json!({"ref": r, "state": id.hex(), "batch": batch}))
        .collect();
    out.emit(
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
