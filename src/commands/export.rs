//! `statectl export REF -o FILE`: a state as safetensors, `l{k}.h` and
//! `l{k}.c` as `[batch, units]`, with the layout and id in the metadata.

use std::path::Path;

use anyhow::{Context as _, Result};
use serde_json::json;

use super::context::Context;
use crate::cli::ExportArgs;
use crate::id::StateId;
use crate::state::StateValue;
use crate::tensors::{Tensor, TensorFile};

/// Writes `bytes` to `path` through a temp file and a rename, so a reader
/// never sees half a file.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write '{}'", path.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write '{}'", path.display()))?;
    Ok(())
}

/// The safetensors file of a state.
pub fn state_file(value: &StateValue, id: &StateId) -> TensorFile {
    let mut file = TensorFile::default();
    let batch = value.batch();
    for (layer, units) in value.layout.units.iter().enumerate() {
        for (k, name) in value.layout.cell.tensors().iter().enumerate() {
            file.insert(
                &format!("l{layer}.{name}"),
                Tensor::new(vec![batch, *units], value.layer_tensor(layer, k)),
            );
        }
    }
    file.metadata
        .insert("layout".into(), value.layout.to_string());
    file.metadata.insert("state".into(), id.hex());
    file
}

pub fn run(ctx: &Context, args: ExportArgs) -> Result<i32> {
    let model = ctx.optional_model(args.stream.model.as_deref())?;
    let id = ctx.resolve(&args.reference, model.as_ref(), &args.stream.stream, None)?;
    let value = ctx.store.load_state(&id)?;
    write_file(&args.output, &state_file(&value, &id).encode())?;
    ctx.out.emit(
        json!({"state": id.hex(), "layout": value.layout.to_string(), "batch": value.batch(), "file": args.output.display().to_string()}),
        || format!("wrote state {} ({}, batch {}) to {}", id.short(), value.layout, value.batch(), args.output.display()),
    );
    Ok(0)
}
