//! `statectl import FILE`: states from safetensors: one state, its slots as
//! one-slot states (`--per-slot`), or several named states. All of a file
//! lands in one transaction, or none of it.

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::json;

use super::context::Context;
use crate::cli::ImportArgs;
use crate::state::{states_from_file, FileStates, StateValue};
use crate::store::NewEvent;
use crate::tensors::TensorFile;

/// One state to store, with its tag and where in the file it came from.
struct Item {
    label: String,
    tag: Option<String>,
    value: StateValue,
}

fn items(states: FileStates, args: &ImportArgs) -> Result<Vec<Item>> {
    let prefix = args.tag_prefix.as_deref();
    Ok(match (states, args.per_slot) {
        (FileStates::Single(value), false) => {
            if prefix.is_some() {
                bail!("--tag-prefix names many states; this file holds one: use --tag NAME (or --per-slot to split it)");
            }
            vec![Item {
                label: "the state".into(),
                tag: args.tag.clone(),
                value,
            }]
        }
        (FileStates::Single(value), true) => (0..value.batch())
            .map(|slot| {
                Ok(Item {
                    label: format!("slot {slot}"),
                    tag: prefix.map(|p| format!("{p}{slot}")),
                    value: value.select(&[slot])?,
                })
            })
            .collect::<Result<_>>()?,
        (FileStates::Named(_), true) => {
            bail!("--per-slot splits a file of one state; this file holds named states")
        }
        (FileStates::Named(list), false) => list
            .into_iter()
            .map(|(name, value)| Item {
                label: format!("state '{name}'"),
                tag: prefix.map(|p| format!("{p}{name}")),
                value,
            })
            .collect(),
    })
}

pub fn run(ctx: &Context, args: ImportArgs) -> Result<i32> {
    let source = format!("state file '{}'", args.file.display());
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {source}"))?;
    let file = TensorFile::decode(&bytes).with_context(|| source.clone())?;
    let states = states_from_file(&file).map_err(|e| anyhow!("{source}: {e}"))?;
    let items = items(states, &args)?;
    if !args.allow_nonfinite {
        if let Some(bad) = items.iter().find(|i| !i.value.is_finite()) {
            bail!("{source}: {} holds NaN or infinite values; pass --allow-nonfinite to store them anyway", bad.label);
        }
    }
    let ids: Vec<_> = items.iter().map(|i| i.value.id()).collect();
    let mut collisions = Vec::new();
    for (item, id) in items.iter().zip(&ids) {
        if let Some(tag) = &item.tag {
            crate::commands::context::check_tag_name(tag)?;
            if let Some(existing) = ctx.store.tag(tag)? {
                if existing.state != *id && !args.force {
                    collisions.push(tag.clone());
                }
            }
        }
    }
    if !collisions.is_empty() {
        let shown: Vec<&str> = collisions.iter().take(5).map(|s| s.as_str()).collect();
        bail!(
            "{} tag(s) already name other states ({}{}); pick another --tag/--tag-prefix or pass --force to move them",
            collisions.len(),
            shown.join(", "),
            if collisions.len() > 5 { ", ..." } else { "" }
        );
    }
    let file_name = args.file.display().to_string();
    ctx.store.write(|store| -> Result<()> {
        for (item, id) in items.iter().zip(&ids) {
            store.put_state(&item.value)?;
            store.append_event(&NewEvent {
                kind: "import",
                state_after: Some(*id),
                detail: json!({"file": file_name, "from": item.label}),
                ..Default::default()
            })?;
            if let Some(tag) = &item.tag {
                ctx.set_tag(tag, id, None)?;
            }
        }
        Ok(())
    })?;
    if let [single] = items.as_slice() {
        let id = ids[0];
        ctx.out.emit(
            json!({"state": id.hex(), "layout": single.value.layout.to_string(), "batch": single.value.batch(), "tag": single.tag}),
            || {
                let tag = single.tag.as_ref().map(|t| format!(", tagged '{t}'")).unwrap_or_default();
                format!("imported state {} ({}, batch {}){tag}", id.short(), single.value.layout, single.value.batch())
            },
        );
    } else {
        let rows: Vec<serde_json::Value> = items
            .iter()
            .zip(&ids)
            .map(|(i, id)| json!({"state": id.hex(), "from": i.label, "layout": i.value.layout.to_string(), "batch": i.value.batch(), "tag": i.tag}))
            .collect();
        ctx.out
            .emit(json!({"states": rows, "count": items.len()}), || {
                format!(
                    "imported {} states from {}",
                    items.len(),
                    args.file.display()
                )
            });
    }
    Ok(0)
}
