//! Slot packs: the bytes of large slots from bulk writes (`import
//! --per-slot`, the Python package's `put_states`), appended to files
//! beside the database (`packs/<n>.pack`) instead of going into SQLite.
//!
//! In SQLite a 4 KiB slot is written twice (the WAL, then the checkpoint
//! copies it into the database) through a b-tree; appended to a pack it is
//! written once, sequentially. The `slots` row keeps the id and layout and
//! says where the bytes are (`pack`, `pack_offset`, `pack_length`), so
//! lookups, gc and verify work as for inline slots, and every read still
//! re-hashes the bytes against the id.
//!
//! Atomicity: bytes are appended only while the write transaction holds
//! SQLite's write lock (one appender at a time, across processes), and are
//! on disk (fdatasync) before the transaction that references them
//! commits. A command killed in between leaves unreferenced bytes at the
//! end of a pack, which nothing reads and gc's compaction drops. Pack
//! numbers are recorded in the `packs` table and never reused, so a file
//! handle a long-lived process keeps open never reads a different pack.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use rusqlite::{params, OptionalExtension};

use super::{io_err, Result, Store, StoreError};
use crate::id::SlotId;

/// Where a packed slot's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedAt {
    pub pack: i64,
    pub offset: u64,
    pub length: u64,
}

/// Appends slot bytes to the newest pack inside a write transaction.
pub struct PackAppender {
    file: std::io::BufWriter<File>,
    path: PathBuf,
    number: i64,
    /// The file's length before this appender: nothing committed lies
    /// beyond it, so an appender dropped unfinished truncates back to it.
    start: u64,
    at: u64,
    /// Where the last `start_writeback` stopped.
    written_back: u64,
    /// Whether this appender created the pack file, and the packs folder
    /// (if it did): an appender dropped unfinished removes them again, so
    /// a failed first bulk write leaves the store as it found it.
    made: (bool, Option<PathBuf>),
    finished: bool,
}

impl PackAppender {
    /// Appends one slot's bytes; returns where they are.
    pub fn append(&mut self, bytes: &[u8]) -> Result<PackedAt> {
        self.file.write_all(bytes).map_err(io_err(&self.path))?;
        let at = PackedAt {
            pack: self.number,
            offset: self.at,
            length: bytes.len() as u64,
        };
        self.at += bytes.len() as u64;
        Ok(at)
    }

    /// Where the next append lands: (pack number, offset).
    pub fn end(&self) -> (i64, u64) {
        (self.number, self.at)
    }

    /// Starts writing what was appended so far to disk, without waiting:
    /// the disk works while the caller goes on, and the final sync finds
    /// little left to write. (Linux only; elsewhere the final sync does it
    /// all.)
    pub fn start_writeback(&mut self) -> Result<()> {
        self.file.flush().map_err(io_err(&self.path))?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let from = self.written_back;
            // SAFETY: a plain syscall on a descriptor this appender owns.
            // Only a hint: a failure leaves the work to the final sync.
            unsafe {
                libc::sync_file_range(
                    self.file.get_ref().as_raw_fd(),
                    from as libc::off64_t,
                    (self.at - from) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        self.written_back = self.at;
        Ok(())
    }

    /// Puts the appended bytes on disk; call before the transaction that
    /// references them commits.
    pub fn finish(self) -> Result<()> {
        self.finish_while(|| Ok::<(), StoreError>(()))
    }

    /// Puts the appended bytes on disk on another thread while `meanwhile`
    /// runs on this one (typically: the rows that reference them go in), and
    /// returns when both are done. Call before the transaction commits.
    pub fn finish_while<T, E>(
        mut self,
        meanwhile: impl FnOnce() -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<StoreError>,
    {
        self.file.flush().map_err(io_err(&self.path))?;
        let file = self.file.get_ref();
        let (synced, result) = std::thread::scope(|scope| {
            let sync = scope.spawn(|| file.sync_data());
            let result = meanwhile();
            (sync.join(), result)
        });
        let value = result?;
        synced
            .unwrap_or_else(|_| Err(std::io::Error::other("the sync stopped unexpectedly")))
            .map_err(io_err(&self.path))?;
        self.finished = true;
        Ok(value)
    }
}

impl Drop for PackAppender {
    fn drop(&mut self) {
        if !self.finished {
            // Best effort: the bytes are unreferenced either way. (Appenders
            // run under the store's write lock: no other one uses the file.)
            let _ = self.file.flush();
            let _ = self.file.get_ref().set_len(self.start);
            if self.made.0 {
                let _ = std::fs::remove_file(&self.path);
            }
            if let Some(dir) = &self.made.1 {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

/// Most pack files a store keeps open for reading.
const MAX_OPEN_PACKS: usize = 32;

/// Closes handles of packs another process's gc deleted (a long-lived
/// process would otherwise hold their disk space until it closes the
/// store), and all of them past [`MAX_OPEN_PACKS`], so a store never holds
/// more descriptors than that. Runs when a pack not yet open is read:
/// after a compaction, reads move to the new pack.
fn forget_deleted_packs(open: &mut HashMap<i64, (File, u64)>) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        open.retain(|_, (file, _)| file.metadata().is_ok_and(|m| m.nlink() > 0));
    }
    if open.len() >= MAX_OPEN_PACKS {
        open.clear();
    }
}

/// Read at an offset without moving a shared cursor.
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            let n = std::os::windows::fs::FileExt::seek_read(
                file,
                &mut buf[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
        Ok(())
    }
}

/// A pack file found on disk.
#[derive(Debug, Clone)]
pub struct PackFile {
    pub number: i64,
    pub path: PathBuf,
    pub size: u64,
}

impl Store {
    pub fn packs_dir(&self) -> PathBuf {
        self.root.join("packs")
    }

    pub(crate) fn pack_path(&self, number: i64) -> PathBuf {
        self.packs_dir().join(format!("{number}.pack"))
    }

    /// The pack files on disk (other files in `packs/` are not packs).
    pub fn pack_files(&self) -> Result<Vec<PackFile>> {
        let dir = self.packs_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        let mut packs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&dir))?;
            if !super::files::is_regular(&entry) {
                continue;
            }
            let name = entry.file_name();
            let Some(number) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".pack"))
                .and_then(|n| n.parse::<i64>().ok())
            else {
                continue;
            };
            let size = entry.metadata().map_err(io_err(&entry.path()))?.len();
            packs.push(PackFile {
                number,
                path: entry.path(),
                size,
            });
        }
        packs.sort_by_key(|p| p.number);
        Ok(packs)
    }

    /// The newest pack number recorded, if any.
    pub(crate) fn newest_pack(&self) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row("SELECT max(number) FROM packs", [], |r| r.get(0))?)
    }

    /// Opens pack `number` (recorded in this transaction if new) for
    /// appending. Call inside a write transaction.
    fn appender_for(&self, number: i64) -> Result<PackAppender> {
        self.conn.execute(
            "INSERT OR IGNORE INTO packs (number, created_at) VALUES (?1, ?2)",
            params![number, super::now_ms()],
        )?;
        let dir = self.packs_dir();
        let made_dir = !dir.exists();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        if made_dir {
            // The new folder's name is durable before anything in it counts.
            super::weights_files::sync_folder(&self.root);
        }
        let path = self.pack_path(number);
        let made_file = !path.exists();
        let file = super::files::open_for_appending(&path).map_err(io_err(&path))?;
        let start = file.metadata().map_err(io_err(&path))?.len();
        Ok(PackAppender {
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            path,
            number,
            start,
            at: start,
            written_back: start,
            made: (made_file, made_dir.then_some(dir)),
            finished: false,
        })
    }

    /// Starts appending to the newest pack, or to a new one when the newest
    /// pack's file is missing or shorter than its committed length (bytes
    /// appended there would sit where a restored backup of it puts slots
    /// the store still names). Call inside a write transaction, and
    /// `finish` the appender before it commits.
    pub fn pack_appender(&self) -> Result<PackAppender> {
        let newest: Option<(i64, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT number, length FROM packs ORDER BY number DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((number, length)) = newest else {
            return self.appender_for(self.unused_pack_number()?);
        };
        let length = match length {
            Some(length) => length.max(0) as u64,
            None => self.pack_end_from_slots(number)?,
        };
        let on_disk = std::fs::symlink_metadata(self.pack_path(number))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        match on_disk {
            Some(size) if size >= length => {
                if size > length {
                    // Bytes past the committed length are a killed or failed
                    // write's: nothing names them. Dropped before appending,
                    // so they never sit between live slots.
                    self.truncate_dead_tail(number, length)?;
                }
                self.appender_for(number)
            }
            _ => self.appender_for(self.unused_pack_number()?),
        }
    }

    /// Cuts pack `number` back to `length`, its committed end. Call under
    /// the write lock (no appender is at work).
    fn truncate_dead_tail(&self, number: i64, length: u64) -> Result<()> {
        let path = self.pack_path(number);
        let file = super::files::open_for_appending(&path).map_err(io_err(&path))?;
        file.set_len(length).map_err(io_err(&path))?;
        file.sync_data().map_err(io_err(&path))
    }

    /// Bytes in each pack that no slot row names (`number -> (file size,
    /// live bytes)`): removed slots, and the tails killed writes left.
    pub(crate) fn pack_usage(&self) -> Result<HashMap<i64, (u64, u64)>> {
        let mut usage: HashMap<i64, (u64, u64)> = self
            .pack_files()?
            .into_iter()
            .map(|p| (p.number, (p.size, 0)))
            .collect();
        let mut stmt = self.conn.prepare(
            "SELECT pack, sum(pack_length) FROM slots WHERE pack IS NOT NULL GROUP BY pack",
        )?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))? {
            let (pack, live) = row?;
            if let Some(entry) = usage.get_mut(&pack) {
                entry.1 = live.max(0) as u64;
            }
        }
        Ok(usage)
    }

    /// What gc can free without writing anything (so also on a full disk):
    /// packs nothing names are deleted and dead tails past a pack's
    /// committed length cut. Call under the write lock; returns the bytes
    /// freed.
    pub fn drop_dead_pack_files(&self) -> Result<u64> {
        let newest = self.newest_pack()?;
        let lengths: HashMap<i64, Option<i64>> = self
            .conn
            .prepare("SELECT number, length FROM packs")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let (retired, mut freed) = self.unreferenced_packs()?;
        for (number, (size, live)) in self.pack_usage()? {
            if live == 0 && Some(number) != newest {
                continue; // retired above
            }
            if let Some(Some(length)) = lengths.get(&number) {
                let length = (*length).max(0) as u64;
                if size > length {
                    self.truncate_dead_tail(number, length)?;
                    freed += size - length;
                }
            }
        }
        self.remove_packs(&retired);
        self.remove_compaction_leftovers();
        Ok(freed)
    }

    /// A pack number never used: above every recorded pack and every pack
    /// file on disk.
    pub(crate) fn unused_pack_number(&self) -> Result<i64> {
        let recorded = self.newest_pack()?.unwrap_or(0);
        let on_disk = self.pack_files()?.last().map_or(0, |p| p.number);
        Ok(recorded.max(on_disk) + 1)
    }

    /// Where the slots recorded in pack `number` end (packs recorded before
    /// schema 9 have no length): one pass over the slots.
    fn pack_end_from_slots(&self, number: i64) -> Result<u64> {
        let end: Option<i64> = self.conn.query_row(
            "SELECT max(pack_offset + pack_length) FROM slots WHERE pack = ?1",
            [number],
            |r| r.get(0),
        )?;
        Ok(end.unwrap_or(0).max(0) as u64)
    }

    /// Records where the committed bytes of pack `number` end; call in the
    /// transaction that references them.
    pub fn record_pack_length(&self, number: i64, length: u64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE packs SET length = max(coalesce(length, 0), ?2) WHERE number = ?1",
            )?
            .execute(params![number, length as i64])?;
        Ok(())
    }

    /// Whether a slot with this id is stored (inline or packed).
    /// Whether the slot is stored, and where, if its bytes are in a pack.
    pub fn slot_place(&self, id: &SlotId) -> Result<Option<Option<PackedAt>>> {
        Ok(self
            .conn
            .prepare_cached("SELECT pack, pack_offset, pack_length FROM slots WHERE id = ?1")?
            .query_row([&id.bytes()[..]], |r| packed_at(r, 0))
            .optional()?)
    }

    /// Records a slot whose bytes were appended to a pack.
    pub fn put_packed_slot(&self, layout: &str, id: &SlotId, at: PackedAt) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO slots (id, layout, bytes, pack, pack_offset, pack_length) VALUES (?1, ?2, x'', ?3, ?4, ?5)",
            )?
            .execute(params![
                &id.bytes()[..],
                layout,
                at.pack,
                at.offset as i64,
                at.length as i64
            ])?;
        Ok(())
    }

    /// A packed slot's bytes (not yet checked against its id).
    pub(crate) fn read_packed(&self, at: PackedAt) -> Result<Vec<u8>> {
        let mut open = self.open_packs.borrow_mut();
        // The path is only made for opening and for errors: formatting it
        // showed in the per-call time of reading one state.
        let (file, known_size) = match open.get_mut(&at.pack) {
            Some(open) => open,
            None => {
                forget_deleted_packs(&mut open);
                let path = self.pack_path(at.pack);
                let file = super::files::open_for_reading(&path).map_err(io_err(&path))?;
                open.entry(at.pack).or_insert((file, 0))
            }
        };
        // The row's length and offset come from the database: check them
        // against the file before allocating, so a damaged row is reported
        // as such instead of asking for an impossible buffer. The size seen
        // last is asked again only when a read would pass it (the pack may
        // have grown since), so a read in bounds costs no extra call.
        let end = at.offset.checked_add(at.length);
        if end.is_none_or(|end| end > *known_size) {
            *known_size = file
                .metadata()
                .map_err(|e| io_err(&self.pack_path(at.pack))(e))?
                .len();
        }
        if end.is_none_or(|end| end > *known_size) {
            return Err(StoreError::Damaged(format!(
                "a slot's row says its bytes are at {}..{} of pack {}, which holds {} bytes; `statectl verify` lists what is damaged",
                at.offset,
                at.offset as u128 + at.length as u128,
                at.pack,
                known_size
            )));
        }
        let mut bytes = vec![0u8; at.length as usize];
        read_exact_at(file, &mut bytes, at.offset)
            .map_err(|e| io_err(&self.pack_path(at.pack))(e))?;
        Ok(bytes)
    }

    /// Packs nothing names any more (their slots removed, or a killed
    /// write's), apart from the newest (appenders use it): deleted once the
    /// caller's transaction commits. Returns them and their bytes.
    pub(crate) fn unreferenced_packs(&self) -> Result<(Vec<PathBuf>, u64)> {
        let newest = self.newest_pack()?;
        let mut retired = Vec::new();
        let mut freed = 0;
        for (number, (size, live)) in self.pack_usage()? {
            if live == 0 && Some(number) != newest {
                freed += size;
                retired.push(self.pack_path(number));
            }
        }
        retired.sort();
        Ok((retired, freed))
    }

    /// Deletes retired packs once the transaction that retired them has
    /// committed.
    pub fn remove_packs(&self, paths: &[PathBuf]) {
        // Handles to deleted files would hold their space until closed.
        self.open_packs.borrow_mut().clear();
        for path in paths {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Where a slot row's bytes are packed (columns `pack`, `pack_offset`,
/// `pack_length` from `first`), or `None` for bytes held inline.
pub(crate) fn packed_at(row: &rusqlite::Row, first: usize) -> rusqlite::Result<Option<PackedAt>> {
    let pack: Option<i64> = row.get(first)?;
    let offset: Option<i64> = row.get(first + 1)?;
    let length: Option<i64> = row.get(first + 2)?;
    Ok(match (pack, offset, length) {
        (Some(pack), Some(offset), Some(length)) => Some(PackedAt {
            pack,
            offset: offset.max(0) as u64,
            length: length.max(0) as u64,
        }),
        _ => None,
    })
}
