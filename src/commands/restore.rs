//! `statectl restore REF [--slot K | --slots LIST] [--batch-size N]` and
//! `statectl reset [--batch-size N]`: set a stream.

use anyhow::Result;

use super::context::Context;
use super::Output;
use crate::cli::{ResetArgs, RestoreArgs};
use crate::ops::backend::Backend;
use crate::ops::restore::{self, RestoreRequest, StreamSet};
use crate::shared::SharedStore;

pub fn run(ctx: &Context, args: RestoreArgs) -> Result<i32> {
    restore_on(&mut Backend::Embedded(&ctx.store), &ctx.out, args)
}

pub fn run_on_shared(url: &str, out: &Output, args: RestoreArgs) -> Result<i32> {
    let mut shared = SharedStore::open(url)?;
    restore_on(&mut Backend::Shared(&mut shared), out, args)
}

fn restore_on(backend: &mut Backend, out: &Output, args: RestoreArgs) -> Result<i32> {
    let model = backend.model(args.stream.model.as_deref())?;
    let set = restore::restore_on(
        backend,
        &RestoreRequest {
            model: &model,
            stream: &args.stream.stream,
            reference: &args.reference,
            slot: args.slot,
            slots: args.slots.as_deref(),
            batch_size: args.batch_size.map(|b| b as usize),
        },
    )?;
    emit(out, &set)
}

pub fn reset(ctx: &Context, args: ResetArgs) -> Result<i32> {
    reset_on(&mut Backend::Embedded(&ctx.store), &ctx.out, args)
}

pub fn reset_on_shared(url: &str, out: &Output, args: ResetArgs) -> Result<i32> {
    let mut shared = SharedStore::open(url)?;
    reset_on(&mut Backend::Shared(&mut shared), out, args)
}

fn reset_on(backend: &mut Backend, out: &Output, args: ResetArgs) -> Result<i32> {
    let model = backend.model(args.stream.model.as_deref())?;
    let set = restore::reset_on(
        backend,
        &model,
        &args.stream.stream,
        args.batch_size.map(|b| b as usize),
    )?;
    emit(out, &set)
}

fn emit(out: &Output, set: &StreamSet) -> Result<i32> {
    out.emit_report(set, || describe(set))
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
