//! Rewriting packs that are mostly dead, with writers held off only for
//! the switch.
//!
//! gc removes dead slots' rows in its own transaction; their bytes stay in
//! the packs. A pack more than half dead is rewritten: its live slots are
//! copied (each re-hashed against its id) into a new file under a temp
//! name, outside the write lock, while other commands read and write as
//! usual. Then, under the lock and in one transaction, the file gets a new
//! pack number and the rows that still point where the copy found them are
//! moved to it; an old pack is deleted after the commit only if no row
//! names it any more (an appender may have added to it meanwhile, if it
//! was the newest). gc runs one at a time per store (`gc.lock`), so temp
//! files of a killed compaction are known leftovers to the next gc.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use rusqlite::params;

use super::{io_err, PackedAt, Result, Store, StoreError};
use crate::id::SlotId;
use crate::state::slot_id;

/// A pack is rewritten once more of it is dead than alive, and at least
/// this much: rewriting a few dead slots costs more than it frees.
const MIN_DEAD_TO_COMPACT: u64 = 64 << 10;

/// Prefix of a compaction's temp file in `packs/`.
const TEMP_PREFIX: &str = ".compact-";

/// One live slot copied: where it was, and where it is in the new file.
struct Moved {
    id: Vec<u8>,
    from: PackedAt,
    to_offset: u64,
}

/// Live slots of mostly dead packs, copied into a temp file, not yet
/// switched to.
pub struct CompactionCopy {
    temp: PathBuf,
    length: u64,
    moved: Vec<Moved>,
    sources: Vec<i64>,
    /// Bytes the sources hold beyond their live slots.
    dead: u64,
}

impl Drop for CompactionCopy {
    fn drop(&mut self) {
        // Switched: the temp name is gone. Not switched: nothing names it.
        let _ = std::fs::remove_file(&self.temp);
    }
}

impl Store {
    /// Packs more than half dead, with their dead bytes. Reads.
    fn packs_to_compact(&self) -> Result<Vec<(i64, u64)>> {
        let mut found: Vec<(i64, u64)> = self
            .pack_usage()?
            .into_iter()
            .filter(|(_, (size, live))| {
                *live > 0 && size.saturating_sub(*live) > (*live).max(MIN_DEAD_TO_COMPACT)
            })
            .map(|(number, (size, live))| (number, size - live))
            .collect();
        found.sort();
        Ok(found)
    }

    /// Copies the live slots of every mostly dead pack into a temp file,
    /// on one read snapshot, holding no lock; `None` when no pack needs it.
    pub fn copy_for_compaction(&self) -> Result<Option<CompactionCopy>> {
        self.read(|store| store.copy_live_slots())
    }

    fn copy_live_slots(&self) -> Result<Option<CompactionCopy>> {
        let packs = self.packs_to_compact()?;
        if packs.is_empty() {
            return Ok(None);
        }
        let temp = self
            .packs_dir()
            .join(format!("{TEMP_PREFIX}{}.tmp", std::process::id()));
        let file = super::files::open_for_appending(&temp).map_err(io_err(&temp))?;
        let mut copy = CompactionCopy {
            temp,
            length: 0,
            moved: Vec::new(),
            sources: packs.iter().map(|(n, _)| *n).collect(),
            dead: packs.iter().map(|(_, d)| d).sum(),
        };
        file.set_len(0).map_err(io_err(&copy.temp))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        for (pack, _) in &packs {
            let mut stmt = self.conn.prepare(
                "SELECT id, layout, pack_offset, pack_length FROM slots WHERE pack = ?1 ORDER BY pack_offset",
            )?;
            let rows: Vec<(Vec<u8>, String, i64, i64)> = stmt
                .query_map([pack], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (id, layout, offset, length) in rows {
                let from = PackedAt {
                    pack: *pack,
                    offset: offset.max(0) as u64,
                    length: length.max(0) as u64,
                };
                let bytes = self.read_packed(from)?;
                if SlotId::from_slice(&id).is_none_or(|s| slot_id(&layout, &bytes) != s) {
                    return Err(StoreError::HashMismatch {
                        kind: "slot",
                        id: crate::id::to_hex(&id),
                    });
                }
                out.write_all(&bytes).map_err(io_err(&copy.temp))?;
                copy.moved.push(Moved {
                    id,
                    from,
                    to_offset: copy.length,
                });
                copy.length += from.length;
            }
        }
        let file = out
            .into_inner()
            .map_err(|e| io_err(&copy.temp)(e.into_error()))?;
        file.sync_data().map_err(io_err(&copy.temp))?;
        Ok(Some(copy))
    }

    /// Gives the copy a pack number and moves to it every row still where
    /// the copy found it. Call inside a write; returns the old packs to
    /// delete once it commits (those no row names any more) and the bytes
    /// that frees.
    pub fn switch_to_compacted(&self, copy: &CompactionCopy) -> Result<(Vec<PathBuf>, u64)> {
        let number = self.unused_pack_number()?;
        self.conn.execute(
            "INSERT INTO packs (number, created_at, length) VALUES (?1, ?2, ?3)",
            params![number, super::now_ms(), copy.length as i64],
        )?;
        let path = self.pack_path(number);
        std::fs::rename(&copy.temp, &path).map_err(io_err(&path))?;
        super::weights_files::sync_folder(&self.packs_dir());
        let mut update = self.conn.prepare_cached(
            "UPDATE slots SET pack = ?2, pack_offset = ?3 WHERE id = ?1 AND pack = ?4 AND pack_offset = ?5",
        )?;
        for m in &copy.moved {
            update.execute(params![
                &m.id,
                number,
                m.to_offset as i64,
                m.from.pack,
                m.from.offset as i64
            ])?;
        }
        let still_named: HashMap<i64, (u64, u64)> = self.pack_usage()?;
        let mut retired = Vec::new();
        let mut freed = 0;
        for pack in &copy.sources {
            // One-slot states that remembered the old place learn the new
            // one (without it they would still read right, only slower).
            self.conn.execute(
                "UPDATE states SET (slot_pack, slot_offset) = \
                   (SELECT pack, pack_offset FROM slots WHERE slots.id = states.slot_ids) \
                 WHERE slot_pack = ?1",
                [pack],
            )?;
            if still_named.get(pack).is_none_or(|(_, live)| *live == 0) {
                retired.push(self.pack_path(*pack));
            }
        }
        if retired.len() == copy.sources.len() {
            freed = copy.dead;
        }
        Ok((retired, freed))
    }

    /// Temp files of compactions that were killed (call holding the gc
    /// lock: no other compaction is writing one).
    pub(crate) fn remove_compaction_leftovers(&self) {
        let Ok(entries) = std::fs::read_dir(self.packs_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// Holds this store's gc lock (`gc.lock` beside the database) until
    /// dropped: one gc at a time. `None` when another process holds it.
    pub fn gc_lock(&self) -> Result<Option<std::fs::File>> {
        let path = self.root().join("gc.lock");
        let file = super::files::open_for_appending(&path).map_err(io_err(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
        }
    }
}
