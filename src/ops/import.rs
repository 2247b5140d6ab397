//! State import: the states of a safetensors file (one, its slots as
//! one-slot states, or several named ones) land in one transaction, with
//! their tags, or none of them do.

use anyhow::{bail, Result};
use serde_json::json;

use super::tags::{self, TagRequest};
use crate::id::StateId;
use crate::state::{FileStates, StateValue};
use crate::store::{NewEvent, Store};

pub struct ImportRequest<'a> {
    /// Where the file came from, for the journal.
    pub file_name: &'a str,
    pub states: FileStates,
    pub per_slot: bool,
    pub tag: Option<String>,
    pub tag_prefix: Option<String>,
    pub force: bool,
    pub allow_nonfinite: bool,
}

/// One state stored.
#[derive(Debug, Clone)]
pub struct ImportedState {
    /// Where in the file it came from: "the state", "slot 3", "state 'a'".
    pub from: String,
    pub state: StateId,
    pub value: StateValue,
    pub tag: Option<String>,
}

fn items(req: ImportRequest) -> Result<Vec<(String, Option<String>, StateValue)>> {
    let prefix = req.tag_prefix.as_deref();
    Ok(match (req.states, req.per_slot) {
        (FileStates::Single(value), false) => {
            if prefix.is_some() {
                bail!("--tag-prefix names many states; this file holds one: use --tag NAME (or --per-slot to split it)");
            }
            vec![("the state".into(), req.tag, value)]
        }
        (FileStates::Single(value), true) => {
            let layout = value.layout.clone();
            value
                .slots
                .into_iter()
                .enumerate()
                .map(|(slot, values)| {
                    Ok((
                        format!("slot {slot}"),
                        prefix.map(|p| format!("{p}{slot}")),
                        StateValue::new(layout.clone(), vec![values])?,
                    ))
                })
                .collect::<Result<_>>()?
        }
        (FileStates::Named(_), true) => {
            bail!("--per-slot splits a file of one state; this file holds named states")
        }
        (FileStates::Named(list), false) => list
            .into_iter()
            .map(|(name, value)| {
                (
                    format!("state '{name}'"),
                    prefix.map(|p| format!("{p}{name}")),
                    value,
                )
            })
            .collect(),
    })
}

pub fn run(store: &Store, req: ImportRequest) -> Result<Vec<ImportedState>> {
    let file_name = req.file_name.to_string();
    let (force, allow_nonfinite) = (req.force, req.allow_nonfinite);
    let items = items(req)?;
    if !allow_nonfinite {
        if let Some((from, _, _)) = items.iter().find(|(_, _, v)| !v.is_finite()) {
            bail!(
                "{from} holds NaN or infinite values; pass --allow-nonfinite to store them anyway"
            );
        }
    }
    let imported: Vec<ImportedState> = items
        .into_iter()
        .map(|(from, tag, value)| ImportedState {
            from,
            state: value.id(),
            value,
            tag,
        })
        .collect();
    for item in &imported {
        if let Some(tag) = &item.tag {
            tags::check_tag_name(tag)?;
        }
    }
    store.write(|store| -> Result<()> {
        let mut collisions = Vec::new();
        for item in &imported {
            if let Some(tag) = &item.tag {
                if let Some(existing) = store.tag(tag)? {
                    if existing.state != item.state && !force {
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
        for item in &imported {
            store.put_state(&item.value)?;
            store.append_event(&NewEvent {
                kind: "import",
                state_after: Some(item.state),
                detail: json!({"file": file_name, "from": item.from}),
                ..Default::default()
            })?;
            if let Some(tag) = &item.tag {
                tags::apply(
                    store,
                    &TagRequest {
                        name: tag.clone(),
                        force: true,
                    },
                    &item.state,
                    None,
                )?;
            }
        }
        Ok(())
    })?;
    Ok(imported)
}
