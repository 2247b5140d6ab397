//! Retention for replay buffers: of the tags under a prefix, keep the
//! newest N and drop the rest, releasing the states only they named, so a
//! ring buffer of states stays bounded. Runs inside gc's write
//! transaction, before the sweep.

use rusqlite::params;
use serde::Serialize;

use super::{Result, Store};

/// What a retention rule dropped (part of gc's report).
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct RetentionReport {
    pub prefix: String,
    pub keep_newest: usize,
    /// Tags dropped (the older ones under the prefix).
    pub tags_dropped: usize,
    /// The first few dropped, oldest first, for the report.
    pub first_dropped: Vec<String>,
}

/// `LIKE` pattern text with its wildcards escaped (`\` is the escape).
pub fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl Store {
    /// Drops all but the `keep_newest` most recently set tags under
    /// `prefix` (ties: the greater name is newer), and unlinks their states
    /// from the bulk event that made them when no other tag names them, so
    /// the sweep that follows removes them. Call inside a write.
    pub fn apply_retention(&self, prefix: &str, keep_newest: usize) -> Result<RetentionReport> {
        let mut stmt = self.conn.prepare(
            "SELECT name, state FROM tags WHERE name LIKE ?1 ESCAPE '\\'
             ORDER BY updated_at DESC, name DESC LIMIT -1 OFFSET ?2",
        )?;
        let dropped: Vec<(String, Vec<u8>)> = stmt
            .query_map(params![like_prefix(prefix), keep_newest as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut delete = self
            .conn
            .prepare_cached("DELETE FROM tags WHERE name = ?1")?;
        for (name, _) in &dropped {
            delete.execute([name])?;
        }
        // A state another tag still names stays made by its event.
        let mut unlink = self.conn.prepare_cached(
            "UPDATE states SET made_by = NULL
             WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM tags WHERE state = ?1)",
        )?;
        for (_, state) in &dropped {
            unlink.execute([state])?;
        }
        Ok(RetentionReport {
            prefix: prefix.to_string(),
            keep_newest,
            tags_dropped: dropped.len(),
            first_dropped: dropped
                .iter()
                .rev()
                .take(5)
                .map(|(n, _)| n.clone())
                .collect(),
        })
    }
}
