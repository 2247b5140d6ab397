//! `statectl reset [--batch-size N]`: set a stream to zeros.

use anyhow::Result;
use serde_json::json;

use super::context::Context;
use crate::cli::ResetArgs;
use crate::ops::streams;

pub fn run(ctx: &Context, args: ResetArgs) -> Result<i32> {
    let model = ctx.model(args.stream.model.as_deref())?;
    let stream = &args.stream.stream;
    let state = ctx.store.write(|store| -> Result<_> {
        let batch = match (args.batch_size, streams::head(store, &model, stream)?) {
            (Some(n), _) => n as usize,
            (None, Some(head)) => store.state_record(&head)?.slots.len(),
            (None, None) => model.config.batch_size,
        };
        streams::reset_to_zeros(store, &model, stream, batch, None)
    })?;
    ctx.emit(
        json!({"model": model.record.name, "stream": stream, "state": state.hex()}),
        || {
            format!(
                "stream '{stream}' of '{}' -> zeros ({})",
                model.record.name,
                state.short()
            )
        },
    );
    Ok(0)
}
