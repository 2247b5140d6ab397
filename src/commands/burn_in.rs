//! `statectl burn-in REF... --input PREFIX`: run a prefix from stored
//! state(s) with the model and store the resulting state(s) with their
//! lineage, touching no stream (R2D2's burn-in). With `--per-slot`, each
//! REF is a one-slot state for one sequence (row) of the prefix; they run
//! as one batch and come back as one-slot states.

use anyhow::{bail, Result};
use serde_json::json;

use super::context::{check_tag_name, platform, Context};
use super::predict::{check_batch, input_file};
use crate::cli::BurnInArgs;
use crate::id::StateId;
use crate::input::read_input;
use crate::model::predict;
use crate::state::StateValue;
use crate::store::NewEvent;

pub fn run(ctx: &Context, args: BurnInArgs) -> Result<i32> {
    let model = ctx.model(args.model.as_deref())?;
    let x = read_input(&args.input, model.config.input_size)?;
    let rows = x.shape[0];
    if !args.per_slot && args.references.len() > 1 {
        bail!("several REFs need --per-slot (one one-slot state per sequence of the prefix)");
    }
    if args.per_slot && args.references.len() != rows {
        bail!(
            "--per-slot needs one state per sequence: {} REF(s) for {rows} sequence(s) in '{}'",
            args.references.len(),
            args.input
        );
    }
    if args.tag_prefix.is_some() && !args.per_slot {
        bail!("--tag-prefix names per-slot results; use --tag NAME for one state");
    }
    let weights = ctx.weights(&model)?;
    let mut sources = Vec::new();
    for reference in &args.references {
        let id = ctx.resolve(reference, Some(&model), "main", None)?;
        let value = ctx.store.load_state(&id)?;
        ctx.check_layout(&value, &id, &model)?;
        if args.per_slot && value.batch() != 1 {
            bail!(
                "--per-slot wants one-slot states, but '{reference}' ({}) has {} slots",
                id.short(),
                value.batch()
            );
        }
        sources.push((id, value));
    }
    let start = StateValue::new(
        model.config.layout(),
        sources.iter().flat_map(|(_, v)| v.slots.clone()).collect(),
    )?;
    check_batch(&start, &sources[0].0, rows)?;
    let burned = predict(&weights, &x, &start)?.state;
    // (source, result, tag) per stored result.
    let results: Vec<(StateId, StateValue, Option<String>)> = if args.per_slot {
        sources
            .iter()
            .enumerate()
            .map(|(i, (id, _))| {
                Ok((
                    *id,
                    burned.select(&[i])?,
                    args.tag_prefix.as_ref().map(|p| format!("{p}{i}")),
                ))
            })
            .collect::<Result<_>>()?
    } else {
        vec![(sources[0].0, burned, args.tag.clone())]
    };
    for (_, value, tag) in &results {
        if let Some(tag) = tag {
            check_tag_name(tag)?;
            ctx.check_tag_free(tag, Some(&value.id()), args.force)?;
        }
    }
    let ids = ctx.store.write(|store| -> Result<Vec<StateId>> {
        let input = store.put_object(&input_file(&x).encode())?;
        let mut ids = Vec::new();
        for (i, (source, value, tag)) in results.iter().enumerate() {
            let id = store.put_state(value)?;
            store.append_event(&NewEvent {
                kind: "burn-in",
                model: model.event_model(),
                state_before: Some(*source),
                state_after: Some(id),
                input: Some(input),
                detail: json!({"row": if args.per_slot { Some(i) } else { None }, "steps": x.shape[1], "platform": platform()}),
                ..Default::default()
            })?;
            if let Some(tag) = tag {
                ctx.set_tag(tag, &id, Some(&model))?;
            }
            ids.push(id);
        }
        Ok(ids)
    })?;
    let rows_json: Vec<serde_json::Value> = results
        .iter()
        .zip(&ids)
        .map(
            |((source, _, tag), id)| json!({"source": source.hex(), "state": id.hex(), "tag": tag}),
        )
        .collect();
    let mut json = json!({"model": model.record.name, "steps": x.shape[1], "states": rows_json});
    if ids.len() == 1 {
        json["state"] = json!(ids[0].hex());
    }
    ctx.out.emit(json, || {
        results
            .iter()
            .zip(&ids)
            .map(|((source, _, tag), id)| {
                let tag = tag
                    .as_ref()
                    .map(|t| format!(" (tag '{t}')"))
                    .unwrap_or_default();
                format!(
                    "{} + {} step(s) -> {}{tag}\n",
                    source.short(),
                    x.shape[1],
                    id.short()
                )
            })
            .collect()
    });
    Ok(0)
}
