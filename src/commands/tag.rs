//! `statectl tag list|delete`.

use anyhow::Result;

use std::io::Write;

use super::context::{format_time, Context};
use crate::cli::TagCommand;
use crate::ops::tags;
use crate::store::TagRecord;

pub fn run(ctx: &Context, cmd: TagCommand) -> Result<i32> {
    match cmd {
        TagCommand::List => {
            let tags = tags::list(&ctx.store)?;
            if ctx.out.json {
                ctx.out.emit_streamed(|out| write_json(out, &tags));
            } else {
                ctx.out.emit_streamed(|out| write_table(out, &tags));
            }
        }
        TagCommand::Delete { names } => delete(ctx, &names)?,
    }
    Ok(0)
}

/// One tag named: its `TagDeleted` JSON; several, or a pattern:
/// `{"deleted": [...]}`.
fn delete(ctx: &Context, names: &[String]) -> Result<()> {
    let deleted = tags::delete_many(&ctx.store, names)?;
    let lines = || {
        deleted
            .iter()
            .map(|d| format!("deleted tag '{}' (was {})", d.tag, d.state.short()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    match (names, deleted.as_slice()) {
        ([name], [one]) if !crate::ops::refs::is_pattern(name) => {
            ctx.emit_report(one, lines)?;
        }
        _ => {
            ctx.emit_report(&serde_json::json!({ "deleted": deleted }), lines)?;
        }
    }
    Ok(())
}

/// `{"tags": [...]}` exactly as `serde_json::to_string_pretty` prints it,
/// one row at a time.
fn write_json(out: &mut dyn Write, tags: &[TagRecord]) -> std::io::Result<()> {
    if tags.is_empty() {
        return writeln!(out, "{{\n  \"tags\": []\n}}");
    }
    write!(out, "{{\n  \"tags\": [\n")?;
    for (i, t) in tags.iter().enumerate() {
        let row = serde_json::to_string_pretty(&serde_json::to_value(t)?)
            .map_err(std::io::Error::other)?;
        for (k, line) in row.lines().enumerate() {
            if k > 0 {
                writeln!(out)?;
            }
            write!(out, "    {line}")?;
        }
        if i + 1 < tags.len() {
            write!(out, ",")?;
        }
        writeln!(out)?;
    }
    writeln!(out, "  ]\n}}")
}

fn write_table(out: &mut dyn Write, tags: &[TagRecord]) -> std::io::Result<()> {
    if tags.is_empty() {
        return writeln!(
            out,
            "no tags yet; `statectl snapshot --tag NAME` names the current state"
        );
    }
    writeln!(out, "{:<24} {:<12}  SET (UTC)", "TAG", "STATE")?;
    for t in tags {
        writeln!(
            out,
            "{:<24} {:<12}  {}",
            t.name,
            t.state.short(),
            format_time(t.updated_at)
        )?;
    }
    Ok(())
}
