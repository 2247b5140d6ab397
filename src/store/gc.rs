//! Garbage collection: everything reachable from tags, streams and kept
//! events (and from models and unfinished training runs: weights files,
//! training data, init weights, checkpoints, recorded states)
//! stays; the rest goes. Runs inside the caller's write transaction, which
//! holds SQLite's write lock, so no concurrent command can add a reference
//! to something being removed; weights files are written inside those same
//! transactions for that reason. Unreferenced weights files are renamed
//! aside inside the transaction and deleted only after it commits, so a
//! failed commit loses no file that its restored rows still name.

use std::collections::HashSet;

use rusqlite::params;
use serde::Serialize;

use super::weights_files::WeightsEntry;
use super::{io_err, Result, Store};
use crate::id::{to_hex, WeightsId};

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
    /// Temp and set-aside files that killed commands left in `weights/`.
    pub leftovers: Vec<String>,
    /// Unreferenced weights files renamed aside in the transaction: the
    /// caller deletes them after the commit ([`Store::finish_removal`]) or
    /// puts them back if it failed ([`Store::undo_removal`]).
    #[serde(skip)]
    pub set_aside: Vec<WeightsId>,
    /// Packs emptied or compacted in the transaction: the caller deletes
    /// them after the commit ([`Store::remove_packs`]).
    #[serde(skip)]
    pub retired_packs: Vec<std::path::PathBuf>,
    /// What `--keep-newest N --prefix P` dropped (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<super::retention::RetentionReport>,
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
    // Packed slots hold their bytes in a pack (`pack_length`).
    let length = match table {
        "slots" => "length(bytes) + coalesce(pack_length, 0)",
        _ => "length(bytes)",
    };
    let mut stmt = conn.prepare(&format!("SELECT id, {length} FROM {table}"))?;
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
        // States a kept bulk event made (schema 4).
        live_states.extend(ids(
            conn,
            &format!("SELECT id FROM states WHERE made_by IN (SELECT id FROM events WHERE {kept})"),
            cutoff,
        )?);
        let mut live_objects = ids(conn, &format!("SELECT input FROM events WHERE {kept} UNION SELECT output FROM events WHERE {kept}"), cutoff)?;
        // Unfinished training runs' recorded states (their checkpoint files
        // are counted with the weights files below).
        live_states.extend(ids(conn, "SELECT state FROM run_states", None)?);
        let mut live_weights = ids(
            conn,
            &format!("SELECT weights FROM models UNION SELECT weights FROM events WHERE {kept} UNION SELECT file FROM checkpoints"),
            cutoff,
        )?;
        // Training records name their data object and init weights.
        for refs in self.training_refs()? {
            live_objects.extend(refs.data.map(|d| d.bytes().to_vec()));
            live_weights.extend(refs.init_weights.map(|w| w.bytes().to_vec()));
        }

        let mut leftover_paths = Vec::new();
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
        let mut dead_files = Vec::new();
        for (entry, path) in self.weights_entries()? {
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            match entry {
                WeightsEntry::File(id) if !live_weights.contains(&id.bytes()[..]) => {
                    report.bytes += size;
                    dead_files.push(id);
                }
                // Leftovers of killed commands: nothing writes them while
                // this transaction holds the write lock.
                WeightsEntry::Temp | WeightsEntry::SetAside(_) => {
                    report.bytes += size;
                    report.leftovers.push(path.display().to_string());
                    leftover_paths.push(path);
                }
                _ => {}
            }
        }
        report.states = dead_states.iter().map(|id| to_hex(id)).collect();
        report.slots = dead_slots.len();
        report.objects = dead_objects.len();
        report.weights_files = dead_files.iter().map(|id| id.hex()).collect();
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
        for path in &leftover_paths {
            std::fs::remove_file(path).map_err(io_err(path))?;
        }
        // Packs whose every slot is gone go once this transaction commits;
        // packs that are mostly dead are rewritten afterwards, outside the
        // write lock (`compaction.rs`).
        let (retired, freed) = self.unreferenced_packs()?;
        report.bytes += freed;
        report.retired_packs = retired;
        report.set_aside = self.set_aside(&dead_files)?;
        Ok(report)
    }
}
