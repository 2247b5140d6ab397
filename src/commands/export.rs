//! `statectl export REF... -o FILE`: states as safetensors. One ref gives
//! `l{k}.h`, `l{k}.c` as `[batch, units]`; several give named states
//! (`<ref>.l{k}.h`); `--slots` exports a selection of one state. The layout
//! and id of each state go in the metadata.

use anyhow::{bail, Result};
use serde_json::json;

use super::context::Context;
use super::files::write_file;
use crate::cli::ExportArgs;
use crate::state::states_to_file;

pub fn run(ctx: &Context, args: ExportArgs) -> Result<i32> {
    let model = ctx.optional_model(args.stream.model.as_deref())?;
    let references = super::context::read_refs(ctx, &args.references, &args.refs_from)?;
    let mut states = Vec::new();
    for reference in &references {
        // Loading re-hashes every slot: damaged content is never exported.
        let mut value = ctx
            .resolve(reference, model.as_ref(), &args.stream.stream, None)?
            .value;
        if let Some(slots) = &args.slots {
            if references.len() > 1 {
                bail!("--slots selects from one state; export one ref at a time with it");
            }
            value = value.select(slots)?;
        }
        states.push((reference.clone(), value));
    }
    let single = states.len() == 1;
    let named: Vec<(Option<String>, &crate::state::StateValue)> = states
        .iter()
        .map(|(r, v)| (if single { None } else { Some(r.clone()) }, v))
        .collect();
    write_file(&args.output, &states_to_file(&named).encode())?;
    let rows: Vec<serde_json::Value> = states
        .iter()
        .map(|(r, v)| json!({"ref": r, "state": v.id().hex(), "layout": v.layout.to_string(), "batch": v.batch()}))
        .collect();
    let mut json = json!({"states": rows, "file": args.output.display().to_string()});
    if single {
        json["state"] = rows[0]["state"].clone();
        json["layout"] = rows[0]["layout"].clone();
        json["batch"] = rows[0]["batch"].clone();
    }
    ctx.emit(json, || {
        let list: Vec<String> = states
            .iter()
            .map(|(r, v)| {
                format!(
                    "{r} ({}, {}, batch {})",
                    v.id().short(),
                    v.layout,
                    v.batch()
                )
            })
            .collect();
        format!("wrote {} to {}", list.join(", "), args.output.display())
    });
    Ok(0)
}
