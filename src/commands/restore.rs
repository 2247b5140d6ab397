//! `statectl restore REF [--slot K | --slots LIST] [--batch-size N]` and
//! `statectl reset [--batch-size N]`: set a stream.

use anyhow::Result;

use super::context::Context;
use crate::cli::{ResetArgs, RestoreArgs};
use crate::ops::restore::{self, RestoreRequest, StreamSet};

pub fn run(ctx: &Context, args: RestoreArgs) -> Result<i32> {
    let model = ctx.model(args.stream.model.as_deref())?;
    let set = restore::restore(
        &ctx.store,
        &RestoreRequest {
            model: &model,
            stream: &args.stream.stream,
            reference: &args.reference,
            slot: args.slot,
            slots: args.slots.as_deref(),
            batch_size: args.batch_size.map(|b| b as usize),
        },
    )?;
    ctx.emit_report(&set, || describe(&set))
}

pub fn reset(ctx: &Context, args: ResetArgs) -> Result<i32> {
    let model = ctx.model(args.stream.model.as_deref())?;
    let set = restore::reset(
        &ctx.store,
        &model,
        &args.stream.stream,
        args.batch_size.map(|b| b as usize),
    )?;
    ctx.emit_report(&set, || describe(&set))
}

fn describe(set: &StreamSet) -> String {
    let StreamSet {
        model,
        stream,
        source,
        state,
    } = set;
    match source {
        None => format!(
            "stream '{stream}' of '{model}' -> zeros ({})",
            state.short()
        ),
        Some(source) if source == state => {
            format!("stream '{stream}' of '{model}' -> state {}", state.short())
        }
        Some(source) => format!(
            "stream '{stream}' of '{model}' -> state {} (slots of {})",
            state.short(),
            source.short()
        ),
    }
}
