//! `statectl tag list|delete`.

use anyhow::Result;

use std::io::Write;

use super::context::{format_time, Context, Output};
use crate::cli::TagCommand;
use crate::ops::tags;
use crate::store::TagRecord;

pub fn run(ctx: &Context, cmd: TagCommand) -> Result<i32> {
    match cmd {
        TagCommand::List => list(&ctx.out, &tags::list(&ctx.store)?),
        TagCommand::Delete { names } => delete(ctx, &names)?,
    }
    Ok(0)
}

/// `statectl --store URL tag list`: the shared store's tags, listed as a
/// local store's are.
pub fn list_on_shared(url: &str, out: &Output) -> Result<i32> {
    let tags = crate::shared::SharedStore::open(url)?.tag_records()?;
    list(out, &tags);
    Ok(0)
}

fn list(out: &Output, tags: &[TagRecord]) {
    if out.json {
        out.emit_streamed(|o| write_json(o, tags));
    } else {
        out.emit_streamed(|o| write_table(o, tags));
    }
}

fn delete(ctx: &Context, names: &[String]) -> Result<()> {
    report_deleted(&ctx.out, names, &tags::delete_many(&ctx.store, names)?)
}

/// `statectl --store URL tag delete NAME...`: the shared store's tags, by
/// name or pattern, in one transaction.
pub fn delete_on_shared(url: &str, out: &Output, names: &[String]) -> Result<i32> {
    let mut shared = crate::shared::SharedStore::open(url)?;
    let deleted = tags::delete_many_on_shared(&mut shared, names)?;
    report_deleted(out, names, &deleted)?;
    Ok(0)
}

/// One tag named: its `TagDeleted` JSON; several, or a pattern:
/// `{"deleted": [...]}`.
fn report_deleted(out: &Output, names: &[String], deleted: &[tags::TagDeleted]) -> Result<()> {
    let lines = || {
        deleted
            .iter()
            .map(|d| format!("deleted tag '{}' (was {})", d.tag, d.state.short()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    match (names, deleted) {
        ([name], [one]) if !crate::ops::refs::is_pattern(name) => {
            out.emit(serde_json::to_value(one)?, lines);
        }
        _ => {
            out.emit(serde_json::json!({ "deleted": deleted }), lines);
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
