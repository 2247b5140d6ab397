//! `statectl status`: a store at a glance.

use anyhow::Result;

use super::context::{format_time, Context};
use super::render::{describe_local, describe_run};
use crate::ops::status::{self, StatusReport};

pub fn run(ctx: &Context) -> Result<i32> {
    let report = status::run(&ctx.store)?;
    ctx.emit_report(&report, || summary(ctx, &report))
}

/// `1.2 MB` and the like.
fn human_bytes(bytes: u64) -> String {
    let units = ["bytes", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

fn summary(ctx: &Context, report: &StatusReport) -> String {
    let counts = &report.counts;
    let mut text = format!(
        "store {} (schema {}, {} on disk)\n",
        report.store,
        report.schema,
        human_bytes(report.bytes_on_disk)
    );
    text.push_str(&format!(
        "{} model(s), {} tag(s), {} state(s) of {} slot(s), {} event(s)\n",
        report.models.len(),
        counts.tags,
        counts.states,
        counts.slots,
        counts.events
    ));
    for model in &report.models {
        text.push_str(&format!(
            "model '{}': {}\n",
            model.model,
            model.layout.as_deref().unwrap_or("(unreadable config)")
        ));
        for stream in &model.streams {
            text.push_str(&format!(
                "  stream '{}' -> {} (moved {} UTC)\n",
                stream.stream,
                stream.head.short(),
                format_time(stream.updated_at)
            ));
        }
    }
    for run in &report.runs {
        text.push_str(&describe_run(run));
        text.push('\n');
    }
    match &report.last_event {
        Some(e) => text.push_str(&format!(
            "last event {} ({}) at {} UTC: {}\n",
            e.id,
            e.kind,
            format_time(e.at),
            describe_local(ctx, e).trim()
        )),
        None => text.push_str("no events yet: `statectl demo`, `statectl train` or `statectl model import` start one\n"),
    }
    text
}
