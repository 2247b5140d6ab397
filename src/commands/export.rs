//! `statectl export REF... -o FILE`: states as safetensors. One ref gives
//! `l{k}.h`, `l{k}.c` as `[batch, units]`; several give named states
//! (`<ref>.l{k}.h`); `--slots` exports a selection of one state. The layout
//! and id of each state go in the metadata.

use anyhow::Result;
use serde::Serialize;

use super::context::{Context, Output};
use super::files::StagedFile;
use crate::cli::ExportArgs;
use crate::ops::backend::Backend;
use crate::ops::export::{self, ExportReport, ExportRequest};
use crate::ops::refs::Scope;
use crate::shared::SharedStore;

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

/// `statectl --store URL export REF... -o FILE`: states read straight from
/// the shared store (tags, tag patterns, full ids, HEAD~N), each re-hashed; the
/// same file, byte for byte, as exporting them from a local store.
pub fn run_on_shared(url: &str, out: &Output, args: ExportArgs) -> Result<i32> {
    let mut shared = SharedStore::open(url)?;
    let references = super::shared::read_refs(&mut shared, &args.references, &args.refs_from)?;
    let backend = &mut Backend::Shared(&mut shared);
    let loaded = super::shared::resolve(backend, &references, &args.stream)?
        .into_iter()
        .zip(&references)
        .map(|(resolved, reference)| (reference.clone(), resolved.id, resolved.value))
        .collect();
    let report = export::run_loaded(loaded, args.slots.as_deref(), &mut |fill| {
        StagedFile::write_with(&args.output, fill)?.commit()
    })?;
    let file = args.output.display().to_string();
    let exported = Exported {
        report: &report,
        file: file.clone(),
    };
    out.emit(serde_json::to_value(&exported)?, || summary(&report, &file));
    Ok(0)
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
