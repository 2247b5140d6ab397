//! Garbage collection: everything reachable from tags, streams and kept
//! events (and from models: weights files, training data, init weights)
//! stays; the rest goes. Runs inside the caller's write transaction, which
//! holds SQLite's write lock, so no concurrent command can add a reference
//! to something being removed; weights files are written inside those same
//! transactions for that reason.

use std::collections::HashSet;

use rusqlite::params;
use serde::Serialize;

use super::{io_err, Result, Store};
use crate::id::{to_hex, Digest};

#[derive(Debug, Clone, Serialize, Default)]
pub struct GcReport {
    pub dry_run: bool,
    /// Journal events older than the cutoff.
    pub events: usize,
    /// Unreachable states (full hex ids).
    pub states: Vec<String>,
    pub slots: usize,
    pub objects: usize,
    /// Unreachable weights files (full hex ids).
    pub weights_files: Vec<String>,
    /// Bytes of rows and files removed (or that would be).
    pub bytes: u64,
}

fn ids(conn: &rusqlite::Connection, sql: &str, cutoff: Option<i64>) -> Result<HashSet<Vec<u8>>> {
    let mut stmt = conn.prepare(sql)?;
    let get = |r: &rusqlite::Row| r.get::<_, Option<Vec<u8>>>(0);
    let rows = if sql.contains("?1") {
        stmt.query_map([cutoff], get)?
    } else {
        stmt.query_map([], get)?
    };
    let mut set = HashSet::new();
    for row in rows {
        if let Some(id) = row? {
            set.insert(id);
        }
    }
    Ok(set)
}

/// Rows of `table` (with `id` and `bytes` columns) whose id is not live,
/// and the bytes they hold.
fn dead_rows(
    conn: &rusqlite::Connection,
    table: &str,
    live: &HashSet<Vec<u8>>,
) -> Result<(Vec<Vec<u8>>, u64)> {
    let mut dead = Vec::new();
    let mut bytes = 0;
    let mut stmt = conn.prepare(&format!("SELECT id, length(bytes) FROM {table}"))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let (id, len): (Vec<u8>, i64) = (r.get(0)?, r.get(1)?);
        if !live.contains(&id) {
            bytes += len as u64 + 32;
            dead.push(id);
        }
    }
    Ok((dead, bytes))
}

impl Store {
    /// Finds (and unless `dry_run`, removes) what nothing reaches. Events
    /// before `cutoff` (ms since the epoch) are dropped first; `None` keeps
    /// every event. Call inside a write.
    pub fn collect_garbage(&self, cutoff: Option<i64>, dry_run: bool) -> Result<GcReport> {
        let conn = &self.conn;
        let kept = "(?1 IS NULL OR at >= ?1)";
        let mut report = GcReport {
            dry_run,
            ..Default::default()
        };
        report.events = conn.query_row(
            "SELECT count(*) FROM events WHERE ?1 IS NOT NULL AND at < ?1",
            [cutoff],
            |r| r.get::<_, i64>(0),
        )? as usize;

        let mut live_states = ids(
            conn,
            "SELECT state FROM tags UNION SELECT state FROM streams",
            None,
        )?;
        live_states.extend(ids(
            conn,
            &format!("SELECT state_before FROM events WHERE {kept} UNION SELECT state_after FROM events WHERE {kept}"),
            cutoff,
        )?);
        let mut live_objects = ids(conn, &format!("SELECT input FROM events WHERE {kept} UNION SELECT output FROM events WHERE {kept}"), cutoff)?;
        let mut live_weights = ids(
            conn,
            &format!("SELECT weights FROM models UNION SELECT weights FROM events WHERE {kept}"),
            cutoff,
        )?;
        // Training records name their data object and init weights by hex id.
        let mut stmt = conn.prepare("SELECT training FROM models WHERE training IS NOT NULL")?;
        for training in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let value: serde_json::Value = serde_json::from_str(&training?).unwrap_or_default();
            if let Some(d) = value["data"].as_str().and_then(Digest::parse_hex) {
                live_objects.insert(d.0.to_vec());
            }
            if let Some(w) = value["init"]["weights"]
                .as_str()
                .and_then(Digest::parse_hex)
            {
                live_weights.insert(w.0.to_vec());
            }
        }

        let mut live_slots = HashSet::new();
        let mut dead_states = Vec::new();
        let mut stmt = conn.prepare("SELECT id, slot_ids FROM states")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (id, list): (Vec<u8>, Vec<u8>) = (r.get(0)?, r.get(1)?);
            if live_states.contains(&id) {
                live_slots.extend(list.chunks(32).map(|c| c.to_vec()));
            } else {
                report.bytes += (list.len() + 64) as u64;
                dead_states.push(id);
            }
        }
        let (dead_slots, slot_bytes) = dead_rows(conn, "slots", &live_slots)?;
        let (dead_objects, object_bytes) = dead_rows(conn, "objects", &live_objects)?;
        report.bytes += slot_bytes + object_bytes;
        let dir = self.root.join("weights");
        let mut dead_files = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name
                .strip_suffix(".safetensors")
                .and_then(Digest::parse_hex)
            else {
                continue;
            };
            if !live_weights.contains(id.0.as_slice()) {
                report.bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                dead_files.push((id, entry.path()));
            }
        }
        report.states = dead_states.iter().map(|id| to_hex(id)).collect();
        report.slots = dead_slots.len();
        report.objects = dead_objects.len();
        report.weights_files = dead_files.iter().map(|(id, _)| id.hex()).collect();
        if dry_run {
            return Ok(report);
        }
        conn.execute(
            "DELETE FROM events WHERE ?1 IS NOT NULL AND at < ?1",
            [cutoff],
        )?;
        for (table, dead) in [
            ("states", &dead_states),
            ("slots", &dead_slots),
            ("objects", &dead_objects),
        ] {
            let mut stmt = conn.prepare(&format!("DELETE FROM {table} WHERE id = ?1"))?;
            for id in dead {
                stmt.execute(params![id])?;
            }
        }
        for (_, path) in &dead_files {
            std::fs::remove_file(path).map_err(io_err(path))?;
        }
        Ok(report)
    }
}
