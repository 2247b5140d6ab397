//! `statectl show REF`: one state's layout, slots, tags, origin and
//! per-tensor statistics.

use anyhow::Result;

use super::context::{Context, Output};
use crate::cli::ShowArgs;
use crate::ops::backend::Backend;
use crate::ops::refs::{Resolved, Scope};
use crate::ops::show::{self, ShowReport, ShowRequest};
use crate::shared::SharedStore;

pub fn run(ctx: &Context, args: ShowArgs) -> Result<i32> {
    let model = ctx.optional_model(args.stream.model.as_deref())?;
    let report = show::run(
        &ctx.store,
        &ShowRequest {
            reference: &args.reference,
            scope: Scope {
                model: model.as_ref(),
                stream: &args.stream.stream,
                zeros_batch: None,
            },
            values: args.values,
        },
    )?;
    ctx.emit_report(&report, || text(Some(ctx), &report))
}

/// `statectl --store URL show REF`: a state read straight from the
/// shared store (re-hashed), with the tags that name it there.
pub fn run_on_shared(url: &str, out: &Output, args: ShowArgs) -> Result<i32> {
    let mut shared = SharedStore::open(url)?;
    let backend = &mut Backend::Shared(&mut shared);
    let references = std::slice::from_ref(&args.reference);
    let Resolved { id, value, .. } =
        super::shared::resolve(backend, references, &args.stream)?.remove(0);
    let tags = shared.tags_of(&id)?;
    let report = show::report_of(id, &value, tags, None, args.values);
    out.emit(serde_json::to_value(&report)?, || text(None, &report));
    Ok(0)
}

/// The text of a report; `ctx` describes its origin event (a local
/// store's).
fn text(ctx: Option<&Context>, report: &ShowReport) -> String {
    let tags = if report.tags.is_empty() {
        "-".to_string()
    } else {
        report.tags.join(", ")
    };
    let mut text = format!(
        "state   {}\nlayout  {}\nbatch   {}\ntags    {tags}\n",
        report.state.hex(),
        report.layout,
        report.batch,
    );
    if let (Some(e), Some(ctx)) = (&report.origin, ctx) {
        let what = super::render::describe_local(ctx, e);
        text.push_str(&format!(
            "origin  event {} ({}{}){}\n",
            e.id,
            e.kind,
            e.model_name
                .as_ref()
                .map(|m| format!(", model '{m}'"))
                .unwrap_or_default(),
            if what.is_empty() {
                String::new()
            } else {
                format!(": {what}")
            }
        ));
    }
    // Runs of equal slots on one line: a broadcast is one line, not 32.
    let slots = &report.slots;
    let mut i = 0;
    while i < slots.len() {
        let run = slots[i..].iter().take_while(|s| **s == slots[i]).count();
        let which = if run == 1 {
            format!("slot {i}")
        } else {
            format!("slots {i}-{}", i + run - 1)
        };
        text.push_str(&format!("{which:<12}  {}\n", slots[i].short()));
        i += run;
    }
    for s in &report.stats {
        text.push_str(&format!(
            "l{}.{}  min {:.6}  max {:.6}  mean {:.6}  mean|x| {:.6}\n",
            s.layer, s.tensor, s.min, s.max, s.mean, s.mean_abs
        ));
    }
    for (name, rows) in report.values.iter().flat_map(|v| &v.0) {
        for (slot, row) in rows.iter().enumerate() {
            // Shortest text that reads back as the same float32.
            let nums: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
            text.push_str(&format!("{name} slot {slot}: {}\n", nums.join(" ")));
        }
    }
    text
}
