//! `statectl push URL` and `statectl pull URL`: a local store and a shared
//! store exchange what the other lacks.

use anyhow::Result;
use serde_json::json;

use super::context::Context;
use crate::cli::{PullArgs, PushArgs};
use crate::ops::pull::{pull, PullRequest};
use crate::ops::push::{push, PushRequest};

pub fn run_push(ctx: &Context, args: PushArgs) -> Result<i32> {
    let report = push(
        &ctx.store,
        &PushRequest {
            url: args.url,
            tags: args.tags,
            force: args.force,
            retry: args.retry,
        },
    )?;
    if report.retries > 0 {
        ctx.out.status(format!(
            "a stream moved while the push ran; read again and pushed again ({} time(s))",
            report.retries
        ));
    }
    ctx.emit(serde_json::to_value(&report).unwrap_or(json!({})), || {
        format!(
            "pushed to {}: {} slot(s) ({} bytes; {} already there), {} state(s), {} object(s), {} weights file(s), {} event(s); {} model(s), {} tag(s) and {} stream(s) changed ({:.2} s)\n",
            report.url,
            report.slots_sent,
            report.slot_bytes_sent,
            report.slots_already_there,
            report.states_sent,
            report.objects_sent,
            report.weights_files_sent,
            report.events_sent,
            report.models_changed,
            report.tags_changed,
            report.streams_moved,
            report.seconds
        )
    });
    Ok(0)
}

pub fn run_pull(ctx: &Context, args: PullArgs) -> Result<i32> {
    let report = pull(
        &ctx.store,
        &PullRequest {
            url: args.url,
            tags: args.tags,
            force: args.force,
        },
    )?;
    ctx.emit(serde_json::to_value(&report).unwrap_or(json!({})), || {
        format!(
            "pulled from {}: {} slot(s) ({} bytes), {} state(s), {} object(s), {} weights file(s), {} event(s); {} model(s) added, {} tag(s) and {} stream(s) changed ({:.2} s)\n",
            report.url,
            report.slots_received,
            report.slot_bytes_received,
            report.states_received,
            report.objects_received,
            report.weights_files_received,
            report.events_received,
            report.models_added,
            report.tags_changed,
            report.streams_moved,
            report.seconds
        )
    });
    Ok(0)
}
