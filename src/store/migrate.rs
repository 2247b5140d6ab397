//! Schema migrations: the numbered files in `migrations/`, applied in order
//! in one transaction and tracked in `user_version`. Append-only: never
//! remove or reorder a migration.
//!
//! Foreign keys are off while migrating, as SQLite's documented recipe for
//! rebuilding a table requires: the bundled SQLite turns them on for every
//! new connection, and with them on, a migration's `DROP TABLE` of a rebuilt
//! parent cascades into its children (schema 2's rebuild of `models`
//! deleted every stream that way). The migration commits only if
//! `PRAGMA foreign_key_check` then finds no broken reference.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_initial.sql"),
    include_str!("../../migrations/0002_model_ids_never_reused.sql"),
    include_str!("../../migrations/0003_tags_by_state.sql"),
    include_str!("../../migrations/0004_bulk_imports.sql"),
    include_str!("../../migrations/0005_slots_in_a_rowid_table.sql"),
    include_str!("../../migrations/0006_slot_packs.sql"),
    include_str!("../../migrations/0007_one_slot_pack_hints.sql"),
    RESTORE_STREAMS_FROM_JOURNAL,
    include_str!("../../migrations/0009_pack_lengths.sql"),
    include_str!("../../migrations/0010_training_runs.sql"),
    include_str!("../../migrations/0011_shared_store_origins.sql"),
];

/// Puts back every stream the journal moved whose model still exists but
/// whose row is gone (stores upgraded from schema 1 by a build that let
/// the `models` rebuild cascade), at the journal's last state for it, with
/// a `repair` event per stream. Idempotent: `verify --repair` runs it too.
pub(crate) const RESTORE_STREAMS_FROM_JOURNAL: &str =
    include_str!("../../migrations/0008_streams_back_from_the_journal.sql");

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Brings the schema up to date. Many processes may open a fresh store at
/// once: the version is read again under the write lock, so exactly one of
/// them migrates and the others see its result. Leaves foreign keys off:
/// the caller turns them on.
pub fn apply(conn: &mut Connection, _root: &Path) -> rusqlite::Result<()> {
    if version(conn)? >= SCHEMA_VERSION {
        return Ok(());
    }
    // A no-op inside a transaction, so it comes first.
    conn.execute_batch("PRAGMA foreign_keys = OFF;")?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = version(&tx)?;
    if current >= SCHEMA_VERSION {
        return Ok(());
    }
    for sql in &MIGRATIONS[current as usize..] {
        tx.execute_batch(sql)?;
    }
    let broken: i64 = tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
        r.get(0)
    })?;
    if broken > 0 {
        // Rolled back when `tx` drops: the store stays as it was.
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
            Some(format!(
                "upgrading the schema from version {current} would leave {broken} broken reference(s); the store was not changed"
            )),
        ));
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}
