//! `statectl burn-in REF... --input PREFIX`: run a prefix from stored
//! state(s) with the model and store the resulting state(s) with their
//! lineage, touching no stream (R2D2's burn-in). With `--per-slot`, each
//! REF is a one-slot state for one sequence (row) of the prefix; they run
//! as one batch and come back as one-slot states.

use anyhow::Result;

use super::context::Context;
use crate::cli::BurnInArgs;
use crate::input::read_input;
use crate::ops::burn_in::{self, BurnInRequest};
use crate::ops::tags::TagRequest;

pub fn run(ctx: &Context, args: BurnInArgs) -> Result<i32> {
    let model = ctx.model(args.model.as_deref())?;
    let references = super::context::read_refs(ctx, &args.references, &args.refs_from)?;
    let x = read_input(&args.input, model.config.input_size)?;
    let report = burn_in::run(
        &ctx.store,
        &BurnInRequest {
            model: &model,
            references: &references,
            x: &x,
            per_slot: args.per_slot,
            tag: args.tag.clone().map(|name| TagRequest {
                name,
                force: args.force,
            }),
            tag_prefix: args.tag_prefix.clone(),
            tag_by: args.tag_by.into(),
            force: args.force,
        },
    )?;
    let results = &report.states;
    ctx.emit_report(&report, || {
        if ctx.out.quiet && results.len() > 1 {
            return format!(
                "burnt in {} state(s) by {} step(s)",
                results.len(),
                x.shape[1]
            );
        }
        results
            .iter()
            .map(|r| {
                let tag = r
                    .tag
                    .as_ref()
                    .map(|t| format!(" (tag '{t}')"))
                    .unwrap_or_default();
                format!(
                    "{} ({}) + {} step(s) -> {}{tag}\n",
                    r.from,
                    r.source.short(),
                    x.shape[1],
                    r.state.short()
                )
            })
            .collect()
    })
}
