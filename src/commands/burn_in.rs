//! `statectl burn-in REF... --input PREFIX`: run a prefix from stored
//! state(s) with the model and store the resulting state(s) with their
//! lineage, touching no stream (R2D2's burn-in). With `--per-slot`, each
//! REF is a one-slot state for one sequence (row) of the prefix; they run
//! as one batch and come back as one-slot states. On a shared store's URL
//! it reads the model and states there and stores the results there.

use anyhow::Result;

use super::context::Context;
use super::Output;
use crate::cli::BurnInArgs;
use crate::input::read_input;
use crate::ops::backend::Backend;
use crate::ops::burn_in::{self, BurnInReport, BurnInRequest};
use crate::ops::tags::TagRequest;
use crate::ops::Model;
use crate::shared::SharedStore;
use crate::tensors::Tensor;

pub fn run(ctx: &Context, args: BurnInArgs) -> Result<i32> {
    let mut backend = Backend::Embedded(&ctx.store);
    let model = backend.model(args.model.as_deref())?;
    let references = super::context::read_refs(ctx, &args.references, &args.refs_from)?;
    burn(&mut backend, &ctx.out, &model, references, &args)
}

pub fn run_on_shared(url: &str, out: &Output, args: BurnInArgs) -> Result<i32> {
    let mut shared = SharedStore::open(url)?;
    let references = super::shared::read_refs(&mut shared, &args.references, &args.refs_from)?;
    let mut backend = Backend::Shared(&mut shared);
    let model = backend.model(args.model.as_deref())?;
    burn(&mut backend, out, &model, references, &args)
}

fn burn(
    backend: &mut Backend,
    out: &Output,
    model: &Model,
    references: Vec<String>,
    args: &BurnInArgs,
) -> Result<i32> {
    let x = read_input(&args.input, model.config.input_size)?;
    let report = burn_in::run_on(
        backend,
        &BurnInRequest {
            model,
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
    emit(out, &report, &x)
}

fn emit(out: &Output, report: &BurnInReport, x: &Tensor) -> Result<i32> {
    let results = &report.states;
    out.emit(serde_json::to_value(report)?, || {
        if out.quiet && results.len() > 1 {
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
    });
    Ok(0)
}
