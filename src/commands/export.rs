//! `statectl export REF... -o FILE`: states as safetensors. One ref gives
//! `l{k}.h`, `l{k}.c` as `[batch, units]`; several give named states
//! (`<ref>.l{k}.h`); `--slots` exports a selection of one state. The layout
//! and id of each state go in the metadata.

use anyhow::Result;
use serde::Serialize;

use super::context::Context;
use super::files::StagedFile;
use crate::cli::ExportArgs;
use crate::ops::export::{self, ExportReport, ExportRequest};
use crate::ops::refs::Scope;

/// The `export` JSON: the operation's report and the file written.
#[derive(Serialize)]
struct Exported<'a> {
    #[serde(flatten)]
    report: &'a ExportReport,
    file: String,
}

pub fn run(ctx: &Context, args: ExportArgs) -> Result<i32> {
    let model = ctx.optional_model(args.stream.model.as_deref())?;
    let references = super::context::read_refs(ctx, &args.references, &args.refs_from)?;
    let report = export::run(
        &ctx.store,
        &ExportRequest {
            references: &references,
            scope: Scope {
                model: model.as_ref(),
                stream: &args.stream.stream,
                zeros_batch: None,
            },
            slots: args.slots.as_deref(),
        },
        // Written under a temp name and moved into place: a reader never
        // sees half a file, and a failed export leaves none.
        &mut |fill| StagedFile::write_with(&args.output, fill)?.commit(),
    )?;
    let file = args.output.display().to_string();
    ctx.emit_report(
        &Exported {
            report: &report,
            file: file.clone(),
        },
        || summary(&report, &file),
    )
}

/// One line; a long list is summed up (a million refs are not a message).
fn summary(report: &ExportReport, file: &str) -> String {
    const LISTED: usize = 8;
    let mut list: Vec<String> = report
        .states
        .iter()
        .take(LISTED)
        .map(|p| {
            format!(
                "{} ({}, {}, batch {})",
                p.reference,
                p.state.short(),
                p.layout,
                p.batch
            )
        })
        .collect();
    if report.states.len() > LISTED {
        list.push(format!("and {} more", report.states.len() - LISTED));
    }
    format!("wrote {} to {file}", list.join(", "))
}
