//! `statectl tag list|delete`.

use anyhow::Result;
use serde_json::json;

use super::context::Context;
use crate::cli::TagCommand;

pub fn run(ctx: &Context, cmd: TagCommand) -> Result<i32> {
    match cmd {
        TagCommand::List => {
            let tags = ctx.store.list_tags()?;
            let rows: Vec<serde_json::Value> = tags
                .iter()
                .map(|t| json!({"tag": t.name, "state": t.state.hex(), "updated_at": t.updated_at}))
                .collect();
            ctx.out.emit(json!({ "tags": rows }), || {
                if tags.is_empty() {
                    return "no tags yet; `statectl snapshot --tag NAME` names the current state"
                        .into();
                }
                tags.iter()
                    .map(|t| format!("{:<24} {}\n", t.name, t.state.short()))
                    .collect()
            });
        }
        TagCommand::Delete { name } => {
            let state = crate::ops::tags::delete(&ctx.store, &name)?;
            ctx.out.emit(
                json!({"tag": name, "state": state.hex(), "deleted": true}),
                || format!("deleted tag '{name}' (was {})", state.short()),
            );
        }
    }
    Ok(0)
}
