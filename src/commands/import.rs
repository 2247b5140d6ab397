//! `statectl import FILE`: states from safetensors: one state, its slots as
//! one-slot states (`--per-slot`), or several named states. All of a file
//! lands in one transaction, or none of it.

use anyhow::{anyhow, Result};
use serde_json::json;

use super::context::Context;
use crate::cli::ImportArgs;
use crate::input::read_file_bounded;
use crate::ops::import::{self, ImportRequest, PerSlotImport, SlotTags};
use crate::state::slot_file::SlotFile;
use crate::state::states_from_file;
use crate::tensors::TensorFile;

pub fn run(ctx: &Context, args: ImportArgs) -> Result<i32> {
    let source = format!("state file '{}'", args.file.display());
    if args.per_slot && !is_stdin(&args.file) {
        return per_slot(ctx, args, &source);
    }
    let bytes = read_file_bounded(&args.file, &source)?;
    let file = TensorFile::decode(&bytes).map_err(|e| anyhow!("{source}: {e}"))?;
    let states = states_from_file(&file).map_err(|e| anyhow!("{source}: {e}"))?;
    let file_name = args.file.display().to_string();
    let items = import::run(
        &ctx.store,
        ImportRequest {
            file_name: &file_name,
            states,
            per_slot: args.per_slot,
            tag: args.tag.clone(),
            tag_prefix: args.tag_prefix.clone(),
            force: args.force,
            allow_nonfinite: args.allow_nonfinite,
        },
    )
    .map_err(|e| anyhow!("{source}: {e:#}"))?;
    if let [single] = items.as_slice() {
        let id = single.state;
        ctx.emit(
            json!({"state": id.hex(), "layout": single.value.layout.to_string(), "batch": single.value.batch(), "tag": single.tag}),
            || {
                let tag = single.tag.as_ref().map(|t| format!(", tagged '{t}'")).unwrap_or_default();
                format!("imported state {} ({}, batch {}){tag}", id.short(), single.value.layout, single.value.batch())
            },
        );
    } else {
        // Built only for --json: a row per state is large for a million.
        let rows: Vec<serde_json::Value> = if ctx.out.json {
            items
                .iter()
                .map(|i| json!({"state": i.state.hex(), "from": i.from, "layout": i.value.layout.to_string(), "batch": i.value.batch(), "tag": i.tag}))
                .collect()
        } else {
            Vec::new()
        };
        ctx.emit(json!({"states": rows, "count": items.len()}), || {
            format!(
                "imported {} states from {}",
                items.len(),
                args.file.display()
            )
        });
    }
    Ok(0)
}

fn is_stdin(path: &std::path::Path) -> bool {
    path.as_os_str() == "-"
}

/// `--per-slot` from a file: read a band of slots at a time (a file of any
/// size in bounded memory), one transaction, one journal entry.
fn per_slot(ctx: &Context, args: ImportArgs, source: &str) -> Result<i32> {
    let file = SlotFile::open(&args.file).map_err(|e| anyhow!("{source}: {e}"))?;
    let file_name = args.file.display().to_string();
    let report = import::run_per_slot(
        &ctx.store,
        PerSlotImport {
            file_name: &file_name,
            file,
            tags: args
                .tag_prefix
                .clone()
                .map(SlotTags::Prefix)
                .unwrap_or_default(),
            force: args.force,
            allow_nonfinite: args.allow_nonfinite,
        },
    )
    .map_err(|e| anyhow!("{source}: {e:#}"))?;
    let tag = |i: usize| report.tag_prefix.as_ref().map(|p| format!("{p}{i}"));
    // Built only for --json: a row per state is large for a million.
    let rows: Vec<serde_json::Value> = if ctx.out.json {
        report
            .states
            .iter()
            .enumerate()
            .map(|(i, id)| json!({"state": id.hex(), "from": format!("slot {i}"), "layout": report.layout.to_string(), "batch": 1, "tag": tag(i)}))
            .collect()
    } else {
        Vec::new()
    };
    ctx.emit(
        json!({"states": rows, "count": report.states.len(), "event": report.event}),
        || {
            format!(
                "imported {} states from {}",
                report.states.len(),
                args.file.display()
            )
        },
    );
    Ok(0)
}
