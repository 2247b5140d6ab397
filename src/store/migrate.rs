//! Schema migrations: the numbered files in `migrations/`, applied in order
//! in one transaction and tracked in `user_version`. Append-only: never
//! remove or reorder a migration.

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
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Brings the schema up to date. Many processes may open a fresh store at
/// once: the version is read again under the write lock, so exactly one of
/// them migrates and the others see its result.
pub fn apply(conn: &mut Connection, _root: &Path) -> rusqlite::Result<()> {
    if version(conn)? >= SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = version(&tx)?;
    if current >= SCHEMA_VERSION {
        return Ok(());
    }
    for sql in &MIGRATIONS[current as usize..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}
