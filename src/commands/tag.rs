//! `statectl tag list|delete`.

use anyhow::Result;
use serde_json::json;

use super::context::{format_time, Context};
use crate::cli::TagCommand;

pub fn run(ctx: &Context, cmd: TagCommand) -> Result<i32> {
    match cmd {
        TagCommand::List => {
            let mut tags = ctx.store.list_tags()?;
            tags.sort_by(|a, b| natural_cmp(&a.name, &b.name));
            let rows: Vec<serde_json::Value> = tags
                .iter()
                .map(|t| json!({"tag": t.name, "state": t.state.hex(), "updated_at": t.updated_at}))
                .collect();
            ctx.out.emit(json!({ "tags": rows }), || {
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
            ctx.out.emit(
                json!({"tag": name, "state": state.hex(), "deleted": true}),
                || format!("deleted tag '{name}' (was {})", state.short()),
            );
        }
    }
    Ok(0)
}

/// Orders names with their digit runs as numbers: `at-2` before `at-10`.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(&cb) {
        let order = match (x, y) {
            ((true, n), (true, m)) => {
                let (n, m) = (n.trim_start_matches('0'), m.trim_start_matches('0'));
                n.len().cmp(&m.len()).then(n.cmp(m))
            }
            _ => x.1.cmp(y.1),
        };
        if order.is_ne() {
            return order;
        }
    }
    ca.len().cmp(&cb.len()).then(a.cmp(b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn natural_order_counts_digit_runs_as_numbers() {
        let mut names = vec!["at-10", "at-2", "at-1", "b", "at-11", "a", "at-02"];
        names.sort_by(|a, b| super::natural_cmp(a, b));
        assert_eq!(names, ["a", "at-1", "at-02", "at-2", "at-10", "at-11", "b"]);
    }
}
