//! `statectl restore REF [--slot K | --slots LIST] [--batch-size N]`: set a
//! stream to a stored state, one slot broadcast, or a re-batched selection.
//! A broadcast or re-batch stores only a new slot list.

use anyhow::{bail, Result};
use serde_json::json;

use super::context::{Context, Model};
use crate::cli::RestoreArgs;
use crate::id::StateId;
use crate::store::NewEvent;

pub fn run(ctx: &Context, args: RestoreArgs) -> Result<i32> {
    let model = ctx.model(args.stream.model.as_deref())?;
    let stream = &args.stream.stream;
    let (source, state) = ctx.store.write(|store| -> Result<_> {
        let source = ctx.resolve(&args.reference, Some(&model), stream, args.batch_size.map(|b| b as usize))?;
        // Loading re-hashes every slot: a damaged state is refused here.
        let value = store.load_state(&source)?;
        ctx.check_layout(&value, &source, &model)?;
        let batch = value.batch();
        let picks: Option<Vec<usize>> = match (args.slot, &args.slots, args.batch_size) {
            (Some(k), _, n) => Some(vec![k; n.map(|n| n as usize).unwrap_or(batch)]),
            (None, Some(list), None) => Some(list.clone()),
            (None, Some(_), Some(_)) => bail!("--slots already sets the batch size (one slot per entry); drop --batch-size"),
            (None, None, Some(n)) if n as usize == batch => None,
            (None, None, Some(n)) if batch == 1 => Some(vec![0; n as usize]),
            (None, None, Some(n)) => bail!(
                "state {} has {batch} slots; to make a batch of {n}, pick them with --slots (e.g. --slots {}) or broadcast one with --slot K",
                source.short(),
                (0..n as usize).map(|i| (i % batch).to_string()).collect::<Vec<_>>().join(",")
            ),
            (None, None, None) => None,
        };
        let state = restore_to(ctx, &model, stream, source, picks)?;
        Ok((source, state))
    })?;
    ctx.out.emit(
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

/// Sets the stream to `source`, or to the slots `picks` of it (a new slot
/// list, no new tensor bytes); journals the move. Call inside a write.
pub fn restore_to(
    ctx: &Context,
    model: &Model,
    stream: &str,
    source: StateId,
    picks: Option<Vec<usize>>,
) -> Result<StateId> {
    let store = &ctx.store;
    let value = store.load_state(&source)?;
    ctx.check_layout(&value, &source, model)?;
    let state = match &picks {
        Some(picks) => {
            value.select(picks)?;
            let record = store.state_record(&source)?;
            let slots: Vec<_> = picks.iter().map(|&k| record.slots[k]).collect();
            store.put_slot_list(&record.layout, &slots)?
        }
        None => source,
    };
    ctx.move_stream(
        model,
        stream,
        state,
        NewEvent {
            kind: if picks.is_some() { "slice" } else { "restore" },
            detail: json!({"source": source.hex(), "slots": picks}),
            ..Default::default()
        },
    )?;
    Ok(state)
}
