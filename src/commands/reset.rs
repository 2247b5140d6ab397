//! `statectl reset [--batch-size N]`: set a stream to zeros.

use anyhow::Result;
use serde_json::json;

use super::context::{Context, Model};
use crate::cli::ResetArgs;
use crate::id::StateId;
use crate::state::StateValue;
use crate::store::NewEvent;

pub fn run(ctx: &Context, args: ResetArgs) -> Result<i32> {
    let model = ctx.model(args.stream.model.as_deref())?;
    let stream = &args.stream.stream;
    let state = ctx.store.write(|store| -> Result<_> {
        let batch = match (args.batch_size, ctx.head(&model, stream)?) {
            (Some(n), _) => n as usize,
            (None, Some(head)) => store.state_record(&head)?.slots.len(),
            (None, None) => model.config.batch_size,
        };
        reset_to_zeros(ctx, &model, stream, batch)
    })?;
    ctx.out.emit(
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

/// Sets the stream to zeros of `batch` slots; journals it. Call inside a write.
pub fn reset_to_zeros(ctx: &Context, model: &Model, stream: &str, batch: usize) -> Result<StateId> {
    let zeros = ctx
        .store
        .put_state(&StateValue::zeros(&model.config.layout(), batch))?;
    ctx.move_stream(
        model,
        stream,
        zeros,
        NewEvent {
            kind: "reset",
            detail: json!({"batch": batch}),
            ..Default::default()
        },
    )?;
    Ok(zeros)
}
