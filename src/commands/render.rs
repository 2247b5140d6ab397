//! How journal events read in words, shared by `log` and `show`, on a
//! local or a shared store.

use std::collections::HashMap;

use crate::id::{Digest, StateId};
use crate::store::EventRecord;

/// The tags of the states some events name, as they are now.
pub type TagsByState = HashMap<StateId, Vec<String>>;

/// The states `events` name (before, after, a restore's or a split's
/// source) with their tags, asked of `tags_of` once each.
pub fn tags_by_state(
    events: &[EventRecord],
    mut tags_of: impl FnMut(&StateId) -> Vec<String>,
) -> TagsByState {
    let mut tags = TagsByState::new();
    for e in events {
        let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
        let source = detail["source"]
            .as_str()
            .and_then(Digest::parse_hex)
            .map(StateId);
        for id in [e.state_before, e.state_after, source]
            .into_iter()
            .flatten()
        {
            tags.entry(id).or_insert_with(|| tags_of(&id));
        }
    }
    tags
}

/// A state's short id with its tags as they are now, e.g. `3592eecfee59 (trained)`.
fn named(known: &TagsByState, hex: &str) -> String {
    let tags = Digest::parse_hex(hex)
        .and_then(|d| known.get(&StateId(d)).cloned())
        .unwrap_or_default();
    let id = &hex[..hex.len().min(12)];
    if tags.is_empty() {
        id.to_string()
    } else {
        format!("{id} ({})", tags.join(", "))
    }
}

/// What an event did, in words: where a restore came from, which slots a
/// slice took, which tag moved, whether a prediction left its stream alone.
pub fn describe(tags: &TagsByState, e: &EventRecord) -> String {
    let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
    let source = detail["source"].as_str().map(|s| named(tags, s));
    match e.kind.as_str() {
        "restore" => format!("from {}", source.unwrap_or_default()),
        "slice" => {
            let slots: Vec<u64> = detail["slots"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
                .unwrap_or_default();
            let picked = match slots.as_slice() {
                [first, rest @ ..] if rest.iter().all(|s| s == first) => {
                    format!("slot {first} broadcast to batch {}", slots.len())
                }
                _ => format!(
                    "slots {} (batch {})",
                    slots
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                    slots.len()
                ),
            };
            format!("{picked} of {}", source.unwrap_or_default())
        }
        "reset" => format!("zeros, batch {}", detail["batch"]),
        "predict" if !e.moved_stream => "stream not advanced (--no-advance or --from)".into(),
        "tag" => format!("tag {}", e.tag.as_deref().unwrap_or("")),
        "untag" => format!("tag {} deleted", e.tag.as_deref().unwrap_or("")),
        "train" if detail["final"] == true => "training's final state".into(),
        "train" => match detail["batch"].as_u64() {
            Some(b) => format!("epoch {} batch {b}", detail["epoch"]),
            None => format!("end of epoch {}", detail["epoch"]),
        },
        "import" => format!(
            "{} of {}",
            detail["from"].as_str().unwrap_or(""),
            detail["file"].as_str().unwrap_or("")
        ),
        "burn-in" => format!("{} step(s)", detail["steps"]),
        "model-delete" => format!("model {} deleted", e.model_name.as_deref().unwrap_or("")),
        "retention" => format!(
            "dropped {} tag(s) under '{}' (kept the newest {})",
            detail["tags_dropped"],
            detail["prefix"].as_str().unwrap_or(""),
            detail["keep_newest"]
        ),
        "model-import" => format!(
            "model {} imported from {} ({})",
            e.model_name.as_deref().unwrap_or(""),
            detail["file"].as_str().unwrap_or(""),
            detail["format"].as_str().unwrap_or("")
        ),
        "model-rename" => format!(
            "model {} renamed {}",
            detail["from"].as_str().unwrap_or(""),
            detail["to"].as_str().unwrap_or("")
        ),
        "repair" => format!(
            "stream put back at event {}'s state (an earlier upgrade had lost it)",
            detail["from_event"]
        ),
        "split" => format!("slot {} of {}", detail["slot"], source.unwrap_or_default()),
        "run-delete" => format!(
            "unfinished training run '{}' deleted",
            detail["run"].as_str().unwrap_or("")
        ),
        "checkpoint" => format!(
            "checkpoint of training run '{}' at {}",
            detail["run"].as_str().unwrap_or(""),
            crate::ops::runs::position(
                detail["epoch"].as_u64().unwrap_or(0) as usize,
                detail["batch"].as_u64().unwrap_or(0) as usize
            )
        ),
        "stack" => {
            let sources: Vec<String> = detail["sources"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| format!("{} ({})", s["ref"].as_str().unwrap_or(""), s["batch"]))
                        .collect()
                })
                .unwrap_or_default();
            format!("stacked {}", sources.join(" + "))
        }
        _ => String::new(),
    }
}

/// An unfinished training run, in one line: where it stands and how to go on.
pub fn describe_run(run: &crate::ops::runs::RunSummary) -> String {
    let total = run.epochs * run.batches_per_epoch;
    let at = match &run.checkpoint {
        Some(c) => format!(
            "checkpoint at {c} ({} of {total} batches)",
            run.batches_done
        ),
        None => "no checkpoint yet".into(),
    };
    let next = if run.running {
        "training now in another process".to_string()
    } else {
        format!("continue it with `statectl train --resume {}`", run.name)
    };
    format!("training run '{}' ({}): {at}; {next}", run.name, run.layout)
}

/// [`describe`] with the tags as the local store has them now.
pub fn describe_local(ctx: &super::context::Context, e: &EventRecord) -> String {
    let tags = tags_by_state(std::slice::from_ref(e), |id| {
        ctx.store.tags_of(id).unwrap_or_default()
    });
    describe(&tags, e)
}
