//! Bulk writes: many one-slot states (with tags) in the caller's write
//! transaction, journalled by one event that every state names
//! (`made_by`).
//!
//! Ids are hashes, so rows arriving in file order land at random places in
//! the B-trees, and once a tree outgrows the page cache every insert reads
//! and rewrites a page. So rows are first appended to a staging table (in
//! SQLite's temp database: bounded memory), then copied into the store
//! sorted by key, which walks each tree once, in order.

use rusqlite::params;

use super::{now_ms, Result, Store};
use crate::id::{SlotId, StateId};

impl Store {
    /// Lets SQLite's sorter (the sorted copies below, and index builds)
    /// sort and write its runs on helper threads while this thread reads
    /// the next run. The page cache stays at SQLite's default (2 MiB):
    /// the sorter sizes its in-memory runs by it, and small runs sort in
    /// the cores' caches (a large cache made imports slower and bigger).
    pub fn sort_with_helpers(&self) -> Result<()> {
        let helpers = rayon::current_num_threads() as i64;
        self.conn.pragma_update(None, "threads", helpers)?;
        Ok(())
    }

    /// Starts staging (empties what an earlier failed run left).
    pub fn stage_begin(&self) -> Result<()> {
        self.conn.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS staged (slot BLOB NOT NULL, bytes BLOB NOT NULL, state BLOB NOT NULL, tag TEXT, slot_pack INTEGER, slot_offset INTEGER);
             DELETE FROM temp.staged;",
        )?;
        Ok(())
    }

    /// The staging table's insert, prepared once for a whole import.
    pub fn stager(&self) -> Result<Stager<'_>> {
        Ok(Stager(self.conn.prepare_cached(
            "INSERT INTO temp.staged (slot, bytes, state, tag, slot_pack, slot_offset) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?))
    }

    /// Staged tags that name other states now (up to `limit`), and how
    /// many there are.
    pub fn staged_tag_collisions(&self, limit: usize) -> Result<(usize, Vec<String>)> {
        // A store without tags has no collisions, and the join would still
        // read every staged row (a fifth of a second for a million).
        let no_tags: bool =
            self.conn
                .query_row("SELECT NOT EXISTS (SELECT 1 FROM tags)", [], |r| r.get(0))?;
        if no_tags {
            return Ok((0, Vec::new()));
        }
        let sql = "FROM temp.staged s JOIN tags t ON t.name = s.tag WHERE t.state != s.state";
        let count: i64 = self
            .conn
            .query_row(&format!("SELECT count(*) {sql}"), [], |r| r.get(0))?;
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT s.tag {sql} ORDER BY s.rowid LIMIT ?1"))?;
        let names = stmt
            .query_map([limit as i64], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok((count as usize, names))
    }

    /// Copies what is staged into the store, each table in key order, then
    /// empties the staging table.
    /// With `slots_stored`, the caller has stored the slots itself (staged
    /// with empty bytes). `staged_tags`: how many staged states have a tag.
    pub fn stage_commit(
        &self,
        layout: &str,
        event: i64,
        slots_stored: bool,
        staged_tags: usize,
    ) -> Result<()> {
        let now = now_ms();
        if !slots_stored {
            self.conn.execute(
                "INSERT OR IGNORE INTO slots (id, layout, bytes) SELECT slot, ?1, bytes FROM temp.staged ORDER BY slot",
                [layout],
            )?;
        }
        self.conn.execute(
            "INSERT OR IGNORE INTO states (id, layout, batch, slot_ids, created_at, made_by, slot_pack, slot_offset) \
             SELECT state, ?1, 1, slot, ?2, ?3, slot_pack, slot_offset FROM temp.staged ORDER BY state",
            params![layout, now, event],
        )?;
        // The index of tags by state is keyed by hash: rebuilding it after
        // (one sort) beats a random insert per tag when the import brings
        // more tags than the store has.
        let staged_tags = staged_tags as i64;
        // Counted only up to what matters (a store of a million tags is
        // not counted on every small write).
        let existing: i64 = self.conn.query_row(
            "SELECT count(*) FROM (SELECT 1 FROM tags LIMIT ?1)",
            [staged_tags],
            |r| r.get(0),
        )?;
        let rebuild = staged_tags > existing;
        if rebuild {
            self.conn.execute_batch("DROP INDEX tags_by_state;")?;
        }
        // In name order, also into an empty table: tags in file order ("s/9"
        // before "s/10") land all over the tree, which costs a third more.
        if staged_tags > 0 {
            self.conn.execute(
                "INSERT INTO tags (name, state, updated_at) SELECT tag, state, ?1 FROM temp.staged WHERE tag IS NOT NULL ORDER BY tag \
                 ON CONFLICT(name) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                [now],
            )?;
        }
        if rebuild {
            self.conn
                .execute_batch("CREATE INDEX tags_by_state ON tags (state);")?;
        }
        self.conn.execute_batch("DROP TABLE temp.staged;")?;
        Ok(())
    }
}

/// Stages rows for `stage_commit` through one prepared statement (held for
/// the whole import: looking it up in the statement cache for each of a
/// million rows cost a tenth of the staging).
pub struct Stager<'s>(rusqlite::CachedStatement<'s>);

impl Stager<'_> {
    /// Stages one slot, its one-slot state, its tag, and where in a pack
    /// the slot's bytes are (if they are in one and the caller knows).
    pub fn stage(
        &mut self,
        slot: &SlotId,
        bytes: &[u8],
        state: &StateId,
        tag: Option<&str>,
        packed: Option<(i64, u64)>,
    ) -> Result<()> {
        let (pack, offset) = packed.map_or((None, None), |(p, o)| (Some(p), Some(o as i64)));
        self.0.execute(params![
            &slot.bytes()[..],
            bytes,
            &state.bytes()[..],
            tag,
            pack,
            offset
        ])?;
        Ok(())
    }
}
