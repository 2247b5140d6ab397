//! `statectl restore REF [--slot K | --slots LIST] [--batch-size N]`: set a
//! stream to a stored state, one slot broadcast, or a re-batched selection.
//! A broadcast or re-batch stores only a new slot list.

use anyhow::Result;
use serde_json::json;

use super::context::Context;
use crate::cli::RestoreArgs;
use crate::ops::refs::{self, Scope};
use crate::ops::streams;

pub fn run(ctx: &Context, args: RestoreArgs) -> Result<i32> {
    let model = ctx.model(args.stream.model.as_deref())?;
    let stream = &args.stream.stream;
    let batch_size = args.batch_size.map(|b| b as usize);
    let (source, state) = ctx.store.write(|store| -> Result<_> {
        // Loading re-hashes every slot: a damaged state is refused here.
        let source = refs::resolve(
            store,
            &args.reference,
            Scope {
                model: Some(&model),
                stream,
                zeros_batch: batch_size,
            },
        )?;
        model.check_layout(&source.value, &source.id.short())?;
        let picks = streams::picks_for(
            source.value.batch(),
            &source.id.short(),
            args.slot,
            args.slots.as_deref(),
            batch_size,
        )?;
        let state = streams::restore_to(store, &model, stream, &source, picks.as_deref())?;
        Ok((source.id, state))
    })?;
    ctx.emit(
        json!({"model": model.record.name, "stream": stream, "source": source.hex(), "state": state.hex()}),
        || {
            if state == source {
                format!("stream '{stream}' of '{}' -> state {}", model.record.name, state.short())
            } else {
                format!(
                    "stream '{stream}' of '{}' -> state {} (slots of {})",
                    model.record.name,
                    state.short(),
                    source.short()
                )
            }
        },
    );
    Ok(0)
}
