//! `statectl tag list|delete`.

use anyhow::Result;
use serde_json::json;

use super::context::{format_time, Context};
use crate::cli::TagCommand;

pub fn run(ctx: &Context, cmd: TagCommand) -> Result<i32> {
    match cmd {
        TagCommand::List => {
            let mut tags = ctx.store.list_tags()?;
            tags.sort_by(|a, b| crate::ops::refs::natural_cmp(&a.name, &b.name));
            let rows: Vec<serde_json::Value> = tags
                .iter()
                .map(|t| json!({"tag": t.name, "state": t.state.hex(), "updated_at": t.updated_at}))
                .collect();
            ctx.emit(json!({ "tags": rows }), || {
                if tags.is_empty() {
                    return "no tags yet; `statectl snapshot --tag NAME` names the current state"
                        .into();
                }
                let mut text = format!("{:<24} {:<12}  {}\n", "TAG", "STATE", "SET (UTC)");
                for t in &tags {
                    text.push_str(&format!(
                        "{:<24} {:<12}  {}\n",
                        t.name,
                        t.state.short(),
                        format_time(t.updated_at)
                    ));
                }
                text
            });
        }
        TagCommand::Delete { name } => {
            let state = crate::ops::tags::delete(&ctx.store, &name)?;
            ctx.emit(
                json!({"tag": name, "state": state.hex(), "deleted": true}),
                || format!("deleted tag '{name}' (was {})", state.short()),
            );
        }
    }
    Ok(0)
}
