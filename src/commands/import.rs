//! `statectl import FILE`: a state from safetensors (`l{k}.h`, `l{k}.c` as
//! `[batch, units]`). Metadata that states a layout or an id must agree
//! with the tensors; a file that lies is refused.

use anyhow::{bail, Context as _, Result};
use serde_json::json;

use super::context::Context;
use crate::cli::ImportArgs;
use crate::state::{Layout, StateValue};
use crate::store::NewEvent;
use crate::tensors::TensorFile;

/// Reads the state a file holds, checking names, shapes and metadata.
pub fn state_from_file(file: &TensorFile, source: &str) -> Result<StateValue> {
    let scheme = "expected tensors l0.h, l0.c (then l1.h, l1.c, ...) as [batch, units]";
    let mut layers: Vec<Vec<Vec<f32>>> = Vec::new();
    let mut units = Vec::new();
    let mut batch = None;
    for layer in 0.. {
        let (h_name, c_name) = (format!("l{layer}.h"), format!("l{layer}.c"));
        let (h, c) = match (file.tensors.get(&h_name), file.tensors.get(&c_name)) {
            (None, None) => break,
            (Some(_), None) => bail!(
                "{source} has '{h_name}' but no '{c_name}': an LSTM state needs both; {scheme}"
            ),
            (None, Some(_)) => bail!(
                "{source} has '{c_name}' but no '{h_name}': an LSTM state needs both; {scheme}"
            ),
            (Some(h), Some(c)) => (h, c),
        };
        for (name, t) in [(&h_name, h), (&c_name, c)] {
            if t.shape.len() != 2 || t.shape.contains(&0) {
                bail!("{source}: '{name}' has shape {}; {scheme}", t.shape_text());
            }
        }
        if h.shape != c.shape {
            bail!(
                "{source}: '{h_name}' is {} but '{c_name}' is {}; they must match",
                h.shape_text(),
                c.shape_text()
            );
        }
        let b = *batch.get_or_insert(h.shape[0]);
        if h.shape[0] != b {
            bail!("{source}: '{h_name}' has batch {} but layer 0 has batch {b}; every layer needs the same batch", h.shape[0]);
        }
        units.push(h.shape[1]);
        layers.push(vec![h.data.clone(), c.data.clone()]);
    }
    let Some(batch) = batch else {
        bail!(
            "{source} holds no state (tensors: {}); {scheme}",
            file.names().join(", ")
        );
    };
    let known = 2 * layers.len();
    if file.tensors.len() != known {
        let extra: Vec<&str> = file
            .names()
            .into_iter()
            .filter(|n| {
                !(n.starts_with('l') && (n.ends_with(".h") || n.ends_with(".c"))) || {
                    let layer = n[1..n.len() - 2].parse::<usize>().ok();
                    layer.is_none_or(|l| l >= layers.len())
                }
            })
            .collect();
        bail!(
            "{source} has tensors outside the scheme ({}); {scheme}",
            extra.join(", ")
        );
    }
    let layout = Layout::lstm(&units);
    if let Some(stated) = file.metadata.get("layout") {
        if *stated != layout.to_string() {
            bail!("{source} says its layout is '{stated}' but its tensors make {layout}; the file is inconsistent");
        }
    }
    let value = StateValue::from_layers(&layout, batch, &layers);
    if let Some(stated) = file.metadata.get("state") {
        let id = value.id();
        if !stated.eq_ignore_ascii_case(&id.hex()) {
            bail!(
                "{source} says it holds state {stated} but its values hash to {}; the file was changed after export",
                id.hex()
            );
        }
    }
    Ok(value)
}

pub fn run(ctx: &Context, args: ImportArgs) -> Result<i32> {
    let source = format!("state file '{}'", args.file.display());
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {source}"))?;
    let file = TensorFile::decode(&bytes).with_context(|| source.clone())?;
    let value = state_from_file(&file, &source)?;
    if !args.allow_nonfinite && !value.is_finite() {
        bail!("{source} holds NaN or infinite values; pass --allow-nonfinite to store them anyway");
    }
    let id = value.id();
    if let Some(tag) = &args.tag {
        ctx.check_tag_free(tag, Some(&id), args.force)?;
    }
    ctx.store.write(|store| -> Result<()> {
        store.put_state(&value)?;
        store.append_event(&NewEvent {
            kind: "import",
            state_after: Some(id),
            detail: json!({"file": args.file.display().to_string()}),
            ..Default::default()
        })?;
        if let Some(tag) = &args.tag {
            ctx.set_tag(tag, &id, None)?;
        }
        Ok(())
    })?;
    ctx.out.emit(
        json!({"state": id.hex(), "layout": value.layout.to_string(), "batch": value.batch(), "tag": args.tag}),
        || {
            let tag = args.tag.as_ref().map(|t| format!(", tagged '{t}'")).unwrap_or_default();
            format!("imported state {} ({}, batch {}){tag}", id.short(), value.layout, value.batch())
        },
    );
    Ok(0)
}
