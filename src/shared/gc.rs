//! gc on the shared store, beside writers on many hosts, with no lock
//! that stops them. A run first applies a replay buffer's bound (of the
//! tags under a prefix, the newest N stay), then marks the states and
//! slots that no tag, stream or journal entry reaches (in `gc_marks`), and
//! removes those whose mark is at least the grace period old and that are
//! still unreached. Writers unmark what they name, in their own
//! transaction and before they rely on it (`unmark`), locking the marks in
//! the order gc does: either gc removed the row first and the writer puts
//! it back, or the writer's unmark wins and gc skips it. A push, whose
//! content lands before the refs that name it, keeps it for the grace
//! period, and its publish refuses if gc took any of it meanwhile. Objects
//! and weights files are kept (models' training records name them).

use anyhow::Result;
use postgres::Transaction;
use serde::Serialize;

use super::SharedStore;
use crate::store::{like_prefix, now_ms, RetentionReport};

/// What a gc run on the shared store does.
pub struct SharedGc {
    /// How long a mark must stand before its row is removed.
    pub grace_ms: i64,
    pub dry_run: bool,
    /// A replay buffer's bound: (prefix, how many of its newest tags stay).
    pub retention: Option<(String, usize)>,
}

/// What it did (the JSON of `statectl --store URL gc`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SharedGcReport {
    pub shared_store: String,
    pub dry_run: bool,
    pub grace_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionReport>,
    /// States and slots no ref reaches, left after this run (marked, to be
    /// removed by a run the grace period after their mark).
    pub unreached_states: u64,
    pub unreached_slots: u64,
    /// Removed (or, with --dry-run, that would be): unreached and marked
    /// for at least the grace period.
    pub states: u64,
    pub slots: u64,
    /// Slot bytes removed.
    pub bytes: u64,
}

/// The states something names, as SQL: tags, streams, journal entries.
const REACHED_STATES: &str = "SELECT state AS id FROM tags UNION SELECT state FROM streams \
     UNION SELECT state_before FROM events WHERE state_before IS NOT NULL \
     UNION SELECT state_after FROM events WHERE state_after IS NOT NULL";

impl SharedStore {
    pub fn gc(&mut self, req: &SharedGc) -> Result<SharedGcReport> {
        let shown = self.shown.clone();
        let explain = |e| super::connect::explain(&shown, "collecting garbage", &e);
        let mut report = SharedGcReport {
            shared_store: shown.clone(),
            dry_run: req.dry_run,
            grace_seconds: req.grace_ms as f64 / 1e3,
            ..Default::default()
        };
        let now = now_ms();
        let mut tx = self.client.transaction().map_err(explain)?;
        if let Some((prefix, keep)) = &req.retention {
            report.retention = Some(apply_retention(&mut tx, prefix, *keep).map_err(explain)?);
        }
        let (states, slots) = mark(&mut tx, now).map_err(explain)?;
        (report.unreached_states, report.unreached_slots) = (states, slots);
        if req.dry_run {
            // Marks and dropped tags roll back; the removal is counted.
            let due = due(&mut tx, now - req.grace_ms).map_err(explain)?;
            (report.states, report.slots) = (due.states.len() as u64, due.slots.len() as u64);
            tx.rollback().map_err(explain)?;
            return Ok(report);
        }
        tx.commit().map_err(explain)?;
        let mut tx = self.client.transaction().map_err(explain)?;
        let due = due(&mut tx, now - req.grace_ms).map_err(explain)?;
        let removed = remove(&mut tx, &due.states, &due.slots).map_err(explain)?;
        (report.states, report.slots, report.bytes) = removed;
        report.unreached_states = report.unreached_states.saturating_sub(report.states);
        report.unreached_slots = report.unreached_slots.saturating_sub(report.slots);
        tx.commit().map_err(explain)?;
        Ok(report)
    }
}

/// Drops all but the `keep` most recently set tags under `prefix` (ties:
/// the greater name is newer).
fn apply_retention(
    tx: &mut Transaction,
    prefix: &str,
    keep: usize,
) -> Result<RetentionReport, postgres::Error> {
    let rows = tx.query(
        "DELETE FROM tags WHERE name IN (SELECT name FROM tags WHERE name LIKE $1 ESCAPE '\\' \
         ORDER BY updated_at DESC, name DESC OFFSET $2) RETURNING name, updated_at",
        &[&like_prefix(prefix), &(keep as i64)],
    )?;
    let mut dropped: Vec<(i64, String)> = rows.iter().map(|r| (r.get(1), r.get(0))).collect();
    dropped.sort();
    Ok(RetentionReport {
        prefix: prefix.to_string(),
        keep_newest: keep,
        tags_dropped: dropped.len(),
        first_dropped: dropped.into_iter().take(5).map(|(_, n)| n).collect(),
    })
}

/// Marks what nothing reaches (a mark already there keeps its time) and
/// unmarks what is reached again; returns how many states and slots are
/// unreached.
fn mark(tx: &mut Transaction, now: i64) -> Result<(u64, u64), postgres::Error> {
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE gc_reached_states ON COMMIT DROP AS {REACHED_STATES}; \
         CREATE TEMP TABLE gc_reached_slots ON COMMIT DROP AS \
           SELECT DISTINCT substring(s.slot_ids FROM i * 32 + 1 FOR 32) AS id \
           FROM states s JOIN gc_reached_states r ON r.id = s.id \
           CROSS JOIN LATERAL generate_series(0, s.batch - 1) i; \
         ANALYZE gc_reached_states; ANALYZE gc_reached_slots;"
    ))?;
    let mut unreached = [0; 2];
    for (n, (kind, table)) in [("slot", "slots"), ("state", "states")].iter().enumerate() {
        let reached = format!("gc_reached_{table}");
        tx.execute(
            &format!(
                "INSERT INTO gc_marks (kind, id, marked_at) SELECT $1, t.id, $2 FROM {table} t \
                 WHERE NOT EXISTS (SELECT 1 FROM {reached} r WHERE r.id = t.id) ON CONFLICT DO NOTHING"
            ),
            &[kind, &now],
        )?;
        tx.execute(
            &format!(
                "DELETE FROM gc_marks m WHERE kind = $1 AND EXISTS (SELECT 1 FROM {reached} r WHERE r.id = m.id)"
            ),
            &[kind],
        )?;
        unreached[n] = tx
            .query_one("SELECT count(*) FROM gc_marks WHERE kind = $1", &[kind])?
            .get::<_, i64>(0) as u64;
    }
    Ok((unreached[1], unreached[0]))
}

/// The states and slots whose marks are at least `cutoff` old, locked in
/// (kind, id) order until the transaction ends: a writer unmarking one of
/// them waits for this transaction, or this one skips it.
/// The ids whose marks are due, by kind.
struct Due {
    states: Vec<Vec<u8>>,
    slots: Vec<Vec<u8>>,
}

fn due(tx: &mut Transaction, cutoff: i64) -> Result<Due, postgres::Error> {
    let rows = tx.query(
        "SELECT kind, id FROM gc_marks WHERE marked_at <= $1 ORDER BY kind, id FOR UPDATE",
        &[&cutoff],
    )?;
    let (mut states, mut slots) = (Vec::new(), Vec::new());
    for row in rows {
        match row.get::<_, &str>(0) {
            "state" => states.push(row.get(1)),
            _ => slots.push(row.get(1)),
        }
    }
    Ok(Due { states, slots })
}

/// Removes the due states that nothing reaches now, then the due slots
/// that no state left names, and the marks of what is gone; returns
/// (states, slots, slot bytes) removed. Reachability is read again here,
/// after the marks are locked: a writer that unmarked any of them has
/// committed by now, so what it named is seen, and one that comes later
/// waits for this transaction and puts back what it needs.
fn remove(
    tx: &mut Transaction,
    states: &[Vec<u8>],
    slots: &[Vec<u8>],
) -> Result<(u64, u64, u64), postgres::Error> {
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE gc_reached_now ON COMMIT DROP AS {REACHED_STATES}; ANALYZE gc_reached_now;"
    ))?;
    let removed_states = tx.execute(
        "DELETE FROM states s WHERE s.id = ANY($1) \
         AND NOT EXISTS (SELECT 1 FROM gc_reached_now r WHERE r.id = s.id)",
        &[&states],
    )?;
    tx.batch_execute(
        "CREATE TEMP TABLE gc_named_slots ON COMMIT DROP AS \
           SELECT DISTINCT substring(s.slot_ids FROM i * 32 + 1 FOR 32) AS id \
           FROM states s CROSS JOIN LATERAL generate_series(0, s.batch - 1) i; \
         ANALYZE gc_named_slots;",
    )?;
    let gone = tx.query_one(
        "WITH gone AS (DELETE FROM slots l WHERE l.id = ANY($1) \
           AND NOT EXISTS (SELECT 1 FROM gc_named_slots n WHERE n.id = l.id) RETURNING length(bytes) AS n) \
         SELECT count(*), COALESCE(sum(n), 0)::bigint FROM gone",
        &[&slots],
    )?;
    let (removed_slots, bytes): (i64, i64) = (gone.get(0), gone.get(1));
    tx.execute(
        "DELETE FROM gc_marks m WHERE \
           (kind = 'slot' AND m.id = ANY($1) AND NOT EXISTS (SELECT 1 FROM slots l WHERE l.id = m.id)) \
           OR (kind = 'state' AND m.id = ANY($2) AND NOT EXISTS (SELECT 1 FROM states s WHERE s.id = m.id))",
        &[&slots, &states],
    )?;
    Ok((removed_states, removed_slots as u64, bytes as u64))
}

/// Unmarks the slots and states a write is about to name, slots first (the
/// order gc locks them in). Call in the write's transaction before it
/// relies on them.
pub(super) fn unmark(
    tx: &mut Transaction,
    slots: &[&[u8]],
    states: &[&[u8]],
) -> Result<(), postgres::Error> {
    for (kind, ids) in [("slot", slots), ("state", states)] {
        for chunk in ids.chunks(65536) {
            tx.execute(
                "DELETE FROM gc_marks WHERE kind = $1 AND id = ANY($2)",
                &[&kind, &chunk],
            )?;
        }
    }
    Ok(())
}
