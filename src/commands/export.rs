//! `statectl export REF... -o FILE`: states as safetensors. One ref gives
//! `l{k}.h`, `l{k}.c` as `[batch, units]`; several give named states
//! (`<ref>.l{k}.h`); `--slots` exports a selection of one state. The layout
//! and id of each state go in the metadata.

use anyhow::{bail, Result};
use serde_json::json;

use super::context::Context;
use super::files::{write_file, StagedFile};
use crate::cli::ExportArgs;
use crate::ops::export;
use crate::ops::refs::Scope;
use crate::state::states_to_file;

pub fn run(ctx: &Context, args: ExportArgs) -> Result<i32> {
    let model = ctx.optional_model(args.stream.model.as_deref())?;
    let references = super::context::read_refs(ctx, &args.references, &args.refs_from)?;
    if references.len() > 1 {
        if args.slots.is_some() {
            bail!("--slots selects from one state; export one ref at a time with it");
        }
        return run_many(ctx, &args, model.as_ref(), &references);
    }
    // Loading re-hashes every slot: damaged content is never exported.
    let mut value = ctx
        .resolve(&references[0], model.as_ref(), &args.stream.stream, None)?
        .value;
    if let Some(slots) = &args.slots {
        value = value.select(slots)?;
    }
    write_file(&args.output, &states_to_file(&[(None, &value)]).encode())?;
    let row = json!({"ref": references[0], "state": value.id().hex(), "layout": value.layout.to_string(), "batch": value.batch()});
    let mut json = json!({"states": [row.clone()], "file": args.output.display().to_string()});
    for key in ["state", "layout", "batch"] {
        json[key] = row[key].clone();
    }
    ctx.emit(json, || {
        format!(
            "wrote {} ({}, {}, batch {}) to {}",
            references[0],
            value.id().short(),
            value.layout,
            value.batch(),
            args.output.display()
        )
    });
    Ok(0)
}

/// Several states, as named states, streamed one at a time from one
/// snapshot of the store.
fn run_many(
    ctx: &Context,
    args: &ExportArgs,
    model: Option<&crate::ops::models::Model>,
    references: &[String],
) -> Result<i32> {
    let scope = Scope {
        model,
        stream: &args.stream.stream,
        zeros_batch: None,
    };
    let planned = ctx.store.read(|store| -> Result<_> {
        let planned = export::plan(store, references, scope)?;
        let mut staged =
            StagedFile::write_with(&args.output, |out| export::write(store, &planned, out))?;
        staged.commit()?;
        Ok(planned)
    })?;
    let rows: Vec<serde_json::Value> = planned
        .iter()
        .map(|p| json!({"ref": p.reference, "state": p.id.hex(), "layout": p.layout.to_string(), "batch": p.batch}))
        .collect();
    ctx.emit(
        json!({"states": rows, "file": args.output.display().to_string()}),
        || {
            // A long list is summed up: a million refs are not a message.
            const LISTED: usize = 8;
            let mut list: Vec<String> = planned
                .iter()
                .take(LISTED)
                .map(|p| {
                    format!(
                        "{} ({}, {}, batch {})",
                        p.reference,
                        p.id.short(),
                        p.layout,
                        p.batch
                    )
                })
                .collect();
            if planned.len() > LISTED {
                list.push(format!("and {} more", planned.len() - LISTED));
            }
            format!("wrote {} to {}", list.join(", "), args.output.display())
        },
    );
    Ok(0)
}
