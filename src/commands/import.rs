//! `statectl import FILE`: states from safetensors: one state, its slots as
//! one-slot states (`--per-slot`), or several named states. All of a file
//! lands in one transaction, or none of it.

use anyhow::{anyhow, Result};
use serde_json::json;

use super::context::{Context, Output};
use crate::cli::ImportArgs;
use crate::input::read_file_bounded;
use crate::ops::import::{self, ImportRequest, ImportedState, PerSlotImport, SlotTags};
use crate::ops::shared_writes;
use crate::shared::SharedStore;
use crate::state::slot_file::SlotFile;
use crate::state::{states_from_file, FileStates};
use crate::tensors::TensorFile;

pub fn run(ctx: &Context, args: ImportArgs) -> Result<i32> {
    let source = format!("state file '{}'", args.file.display());
    if args.per_slot && !is_stdin(&args.file) {
        return per_slot(ctx, args, &source);
    }
    let states = read_states(&args, &source)?;
    let file_name = args.file.display().to_string();
    let items = import::run(&ctx.store, request(&args, &file_name, states))
        .map_err(|e| anyhow!("{source}: {e:#}"))?;
    render(&ctx.out, &items, &args, json!({}));
    Ok(0)
}

/// `statectl --store URL import FILE`: the file's states written straight
/// to the shared store, in one transaction on the server.
pub fn run_on_shared(url: &str, out: &Output, args: ImportArgs) -> Result<i32> {
    let source = format!("state file '{}'", args.file.display());
    let states = read_states(&args, &source)?;
    let mut shared = SharedStore::open(url)?;
    let file_name = args.file.display().to_string();
    let imported = shared_writes::run(&mut shared, request(&args, &file_name, states))
        .map_err(|e| anyhow!("{source}: {e:#}"))?;
    let w = imported.written;
    let written = json!({"shared_store": shared.shown(), "slots_new": w.slots_new, "states_new": w.states_new, "tags_set": w.tags_set, "events": w.events});
    render(out, &imported.states, &args, written);
    Ok(0)
}

/// The whole file's states, read within the input bound.
fn read_states(args: &ImportArgs, source: &str) -> Result<FileStates> {
    let bytes = read_file_bounded(&args.file, source)?;
    let file = TensorFile::decode(&bytes).map_err(|e| anyhow!("{source}: {e}"))?;
    states_from_file(&file).map_err(|e| anyhow!("{source}: {e}"))
}

fn request<'a>(args: &ImportArgs, file_name: &'a str, states: FileStates) -> ImportRequest<'a> {
    ImportRequest {
        file_name,
        states,
        per_slot: args.per_slot,
        tag: args.tag.clone(),
        tag_prefix: args.tag_prefix.clone(),
        force: args.force,
        allow_nonfinite: args.allow_nonfinite,
    }
}

/// One state: its id, layout and tag; several: a count (and, with --json,
/// a row each). `extra`'s fields join the JSON.
fn render(out: &Output, items: &[ImportedState], args: &ImportArgs, extra: serde_json::Value) {
    let mut json = if let [single] = items {
        json!({"state": single.state.hex(), "layout": single.value.layout.to_string(), "batch": single.value.batch(), "tag": single.tag})
    } else {
        // Built only for --json: a row per state is large for a million.
        let rows: Vec<serde_json::Value> = if out.json {
            items
                .iter()
                .map(|i| json!({"state": i.state.hex(), "from": i.from, "layout": i.value.layout.to_string(), "batch": i.value.batch(), "tag": i.tag}))
                .collect()
        } else {
            Vec::new()
        };
        json!({"states": rows, "count": items.len()})
    };
    if let (Some(json), Some(extra)) = (json.as_object_mut(), extra.as_object()) {
        json.extend(extra.clone());
    }
    out.emit(json, || match items {
        [single] => {
            let tag = single
                .tag
                .as_ref()
                .map(|t| format!(", tagged '{t}'"))
                .unwrap_or_default();
            format!(
                "imported state {} ({}, batch {}){tag}",
                single.state.short(),
                single.value.layout,
                single.value.batch()
            )
        }
        _ => format!(
            "imported {} states from {}",
            items.len(),
            args.file.display()
        ),
    });
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
