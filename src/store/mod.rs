//! The store: one folder holding `statectl.db` (SQLite) and `weights/`.
//! It knows rows, bytes and files, never candle. All SQL lives here.
//!
//! Every read of content re-hashes it, so corruption surfaces as
//! [`StoreError::HashMismatch`] naming the id instead of wrong numbers.

mod bulk;
mod checkpointer;
mod compaction;
pub mod completion;
mod content;
mod events;
mod files;
pub mod fork_gate;
mod gc;
mod location;
mod migrate;
mod models;
mod packs;
mod refs;
mod retention;
mod runs;
mod stats;
mod transfer;
mod verify;
mod weights_files;

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use thiserror::Error;

pub use content::StateRecord;
pub use events::{EventFilter, EventRecord, NewEvent};
pub use gc::GcReport;
pub use location::resolve_path;
pub use migrate::SCHEMA_VERSION;
pub use models::{ModelRecord, TrainingRefs};
pub use packs::{PackAppender, PackFile, PackedAt};
pub use refs::{StreamRecord, TagRecord};
pub use retention::{like_prefix, RetentionReport};
pub use runs::{CheckpointRow, RunRow, RunState};
pub use stats::Counts;
pub use transfer::PortableEvent;
pub use verify::{Problem, VerifyReport};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{kind} '{name}' not found; {hint}")]
    NotFound {
        kind: &'static str,
        name: String,
        hint: String,
    },
    #[error("{kind} prefix '{prefix}' is ambiguous; it matches {}: use more digits", candidates.join(", "))]
    Ambiguous {
        kind: &'static str,
        prefix: String,
        candidates: Vec<String>,
    },
    #[error("{kind} {id} is corrupt: its bytes no longer hash to its id; run `statectl verify` to list every damaged object")]
    HashMismatch { kind: &'static str, id: String },
    #[error("store {path} has schema version {found}, newer than this statectl understands ({supported}); upgrade statectl (the store was not touched)")]
    SchemaTooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error(
        "store path {0} is not a folder; pass --store DIR with a folder (it is created if missing)"
    )]
    NotAFolder(String),
    #[error("no statectl store at {0}; check --store (or $STATECTL_STORE), or run `statectl init {0}` to create one")]
    Missing(String),
    /// A folder that is, or holds, a damaged store: said in full.
    #[error("{0}")]
    Damaged(String),
    #[error("this store has no models yet; make one with `statectl train` (or `statectl demo`), or bring one in with `statectl model import FILE`")]
    NoModels,
    #[error("{0}")]
    Conflict(String),
    /// The cause is printed by the error chain (`{:#}`), not repeated here.
    #[error("{}", sqlite_message(.0))]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot use {path}{}", io_hint(.source))]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// SQLite found the database file damaged (not merely busy or missing).
    pub fn is_corrupt(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            StoreError::Sqlite(e) => {
                matches!(e.sqlite_error_code(), Some(DatabaseCorrupt | NotADatabase))
            }
            _ => false,
        }
    }
}

/// The store's own words for SQLite's errors that users meet, with a hint.
fn sqlite_message(e: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode::*;
    match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked) => "the store is busy: another statectl command held its write lock too long; rerun the command".into(),
        Some(DiskFull) => "the disk holding the store is full; free space and rerun the command (nothing was written)".into(),
        Some(ReadOnly | PermissionDenied | CannotOpen) => "cannot open or write the store database; check that the folder exists and is writable".into(),
        Some(DatabaseCorrupt | NotADatabase) => "the store database is damaged; run `statectl verify` to see what is readable, or restore it from a backup".into(),
        _ => "store database error".into(),
    }
}

/// A hint for a file error, after the path; the cause follows in the chain.
fn io_hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(28) => " (the disk is full; free space and rerun)",
        Some(17) | Some(20) => " (something that is not a folder is in the way; move it aside)",
        Some(13) => " (permission denied; check the folder's permissions)",
        _ => "",
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub struct Store {
    /// Declared before `conn` so it stops (and its connection closes)
    /// before the store's own connection closes and checkpoints the rest.
    checkpointer: Option<checkpointer::Checkpointer>,
    conn: Connection,
    root: PathBuf,
    /// Pack files opened for reading, by number (numbers are never reused,
    /// so a handle never goes stale).
    /// Each with the size it had when last asked.
    open_packs: std::cell::RefCell<std::collections::HashMap<i64, (std::fs::File, u64)>>,
}

/// Milliseconds since the Unix epoch, the store's clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How long a command waits for another's write lock before it gives up.
/// Writers hold it only to commit (computation runs before), so a wait this
/// long means something is wrong, not busy.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Puts the database in WAL mode (a no-op once it is). On a fresh store the
/// switch writes the file header: SQLite takes a read lock, then upgrades it,
/// and an upgrade that meets another process's lock fails at once without
/// calling the busy handler (its deadlock rule). Many first commands on one
/// fresh store all meet here, so the switch is retried until `BUSY_TIMEOUT`.
fn use_write_ahead_log(conn: &Connection) -> Result<()> {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Ok(_) => break,
            Err(e)
                if matches!(e.sqlite_error_code(), Some(DatabaseBusy | DatabaseLocked))
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL;")?;
    Ok(())
}

/// Refuses a store folder whose own folders are links (or not folders), or
/// that holds store data (packs, weights; a WAL beside a missing file)
/// beside a missing or empty `statectl.db`: such a store is damaged, not
/// new, and creating a database
/// over its data would make verify call it healthy and gc delete it.
fn refuse_damaged_folder(root: &Path, db: &Path) -> Result<()> {
    for name in ["packs", "weights"] {
        if let Some(why) = files::not_own_folder(&root.join(name)) {
            return Err(StoreError::Damaged(why));
        }
    }
    let db_missing = match std::fs::symlink_metadata(db) {
        Ok(meta) => meta.is_file() && meta.len() == 0,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    };
    if !db_missing {
        return Ok(());
    }
    let holds = |name: &str| {
        std::fs::read_dir(root.join(name)).is_ok_and(|mut entries| entries.next().is_some())
    };
    let mut data: Vec<&str> = ["packs/", "weights/"]
        .into_iter()
        .filter(|name| holds(name))
        .collect();
    // A WAL beside an empty statectl.db is how SQLite holds a store whose
    // first writes are not yet copied into the file (another process may
    // be creating it right now): SQLite reads it whole. Only a WAL whose
    // database file is gone is data without its store.
    if !db.exists() && root.join("statectl.db-wal").exists() {
        data.push("statectl.db-wal");
    }
    if data.is_empty() {
        return Ok(());
    }
    Err(StoreError::Damaged(format!(
        "{} holds store data ({}) but its statectl.db is {}: the store is damaged, not new; restore statectl.db from a backup (nothing was created or changed)",
        root.display(),
        data.join(", "),
        if db.exists() { "empty" } else { "missing" }
    )))
}

/// The schema version in a database file's header (`user_version`), read
/// through an immutable read-only SQLite connection: it takes no lock and
/// creates no `-shm`, so a store newer than this binary is refused before
/// anything is touched. (Reading the file with `std::fs` instead would
/// close a descriptor of the database in this process, which drops every
/// POSIX lock the process's other connections hold on it; SQLite's own VFS
/// defers such closes.)
fn header_schema_version(db: &Path) -> Option<i64> {
    use rusqlite::OpenFlags;
    let path = db.to_str()?;
    let escaped = path
        .replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23");
    let conn = Connection::open_with_flags(
        format!("file:{escaped}?immutable=1"),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    conn.query_row("PRAGMA user_version", [], |r| r.get(0)).ok()
}

/// The schema version a committed but not yet checkpointed write left in
/// the database's WAL (`statectl.db-wal`), read from the file without
/// SQLite (which holds no lock on the WAL file itself, so closing this
/// descriptor costs no connection its locks): the last committed copy of
/// page 1 holds the header. Frames are taken while their salts match the
/// WAL header's (later ones belong to an older generation of the file),
/// and with `checked` only while their checksums chain from the header, as
/// SQLite's recovery does. Unchecked, only frame headers and 4 bytes of
/// each copy of page 1 are read (a large WAL costs seeks, not reads);
/// checked, every frame is read once, one page at a time.
fn wal_schema_version(db: &Path, checked: bool) -> Option<i64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut wal_path = db.as_os_str().to_owned();
    wal_path.push("-wal");
    let mut wal = std::fs::File::open(PathBuf::from(wal_path)).ok()?;
    let len = wal.metadata().ok()?.len();
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let mut header = [0u8; 32];
    wal.read_exact(&mut header).ok()?;
    let big_endian = match be(&header[0..4]) {
        0x377f0683 => true,
        0x377f0682 => false,
        _ => return None,
    };
    let page = be(&header[8..12]) as u64;
    let mut sum = wal_checksum(big_endian, &header[0..24], (0, 0));
    if page < 100 || (checked && sum != (be(&header[24..28]), be(&header[28..32]))) {
        return None;
    }
    let (mut pending, mut committed) = (None, None);
    let mut at = 32u64;
    let mut frame = [0u8; 24];
    let mut body = vec![0u8; if checked { page as usize } else { 4 }];
    while at + 24 + page <= len {
        wal.seek(SeekFrom::Start(at)).ok()?;
        wal.read_exact(&mut frame).ok()?;
        if frame[8..16] != header[16..24] {
            break;
        }
        let first_page = be(&frame[0..4]) == 1;
        if checked {
            wal.read_exact(&mut body).ok()?;
            sum = wal_checksum(
                big_endian,
                &body,
                wal_checksum(big_endian, &frame[0..8], sum),
            );
            if sum != (be(&frame[16..20]), be(&frame[20..24])) {
                break;
            }
            if first_page {
                pending = Some(be(&body[60..64]) as i32 as i64);
            }
        } else if first_page {
            wal.seek(SeekFrom::Start(at + 24 + 60)).ok()?;
            wal.read_exact(&mut body[..4]).ok()?;
            pending = Some(be(&body[..4]) as i32 as i64);
        }
        if be(&frame[4..8]) != 0 {
            committed = pending.or(committed);
        }
        at += 24 + page;
    }
    committed
}

/// SQLite's WAL checksum of `data` continuing from `(s0, s1)`, over words
/// of the byte order the WAL's magic number names.
fn wal_checksum(big_endian: bool, data: &[u8], (mut s0, mut s1): (u32, u32)) -> (u32, u32) {
    let word = |b: &[u8]| {
        let b = [b[0], b[1], b[2], b[3]];
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    for pair in data.chunks_exact(8) {
        s0 = s0.wrapping_add(word(&pair[0..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(word(&pair[4..8])).wrapping_add(s0);
    }
    (s0, s1)
}

impl Store {
    /// Opens the store in folder `root`, creating it on first use (commands
    /// that write).
    pub fn open(root: &Path) -> Result<Store> {
        Store::open_with(root, true)
    }

    /// Opens an existing store; a folder without one is refused and left
    /// alone (commands that only read: a mistyped `--store` must not look
    /// like an empty, healthy store).
    pub fn open_existing(root: &Path) -> Result<Store> {
        Store::open_with(root, false)
    }

    fn open_with(root: &Path, create: bool) -> Result<Store> {
        if root.exists() && !root.is_dir() {
            return Err(StoreError::NotAFolder(root.display().to_string()));
        }
        let db = root.join("statectl.db");
        refuse_damaged_folder(root, &db)?;
        let too_new = |found: i64| StoreError::SchemaTooNew {
            path: root.display().to_string(),
            found,
            supported: SCHEMA_VERSION,
        };
        if db.is_file() {
            // The quick WAL scan reads frame headers only; a frame a writer is
            // still appending can look like anything, so a version that
            // seems too new is confirmed by checksums before refusing.
            let in_wal = wal_schema_version(&db, false)
                .filter(|v| *v > SCHEMA_VERSION)
                .and_then(|_| wal_schema_version(&db, true));
            let newest = header_schema_version(&db).into_iter().chain(in_wal).max();
            if let Some(found) = newest.filter(|v| *v > SCHEMA_VERSION) {
                return Err(too_new(found));
            }
        } else if !create {
            return Err(StoreError::Missing(root.display().to_string()));
        } else {
            std::fs::create_dir_all(root).map_err(io_err(root))?;
        }
        let conn = Connection::open(&db)?;
        // Room for every statement the store caches (rusqlite keeps 16 by
        // default, fewer than the store uses, so a long-lived connection
        // would parse some of them again and again).
        conn.set_prepared_statement_cache_capacity(64);
        // A newer version may sit in a WAL not yet checkpointed: ask SQLite
        // too, with the checkpoint-on-close off so refusing leaves the WAL
        // as it was.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(too_new(found));
        }
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            false,
        )?;
        let weights = root.join("weights");
        std::fs::create_dir_all(&weights).map_err(io_err(&weights))?;
        use_write_ahead_log(&conn)?;
        let mut store = Store {
            conn,
            root: root.to_path_buf(),
            open_packs: Default::default(),
            checkpointer: None,
        };
        // Foreign keys go on after migrating: a migration that rebuilds a
        // table must not cascade deletes (SQLite's documented recipe).
        migrate::apply(&mut store.conn, &store.root)?;
        store.conn.execute_batch("PRAGMA foreign_keys = ON;")?;
        Ok(store)
    }

    /// Reads the database through a memory map (up to 1 GiB; pages past it
    /// are read as before). For long-lived processes making many small
    /// reads, such as the Python package: it saves a system call and a
    /// page copy per read. Writes still go through the WAL.
    pub fn map_for_reads(&self) -> Result<()> {
        self.conn.pragma_update(None, "mmap_size", 1i64 << 30)?;
        Ok(())
    }

    /// Copies the WAL into the database on a helper thread instead of in
    /// the call whose commit crossed the threshold (see `checkpointer.rs`).
    /// For long-lived processes that write often, such as the Python
    /// package; a short command has nothing to gain.
    pub fn checkpoint_in_background(&mut self) -> Result<()> {
        if self.checkpointer.is_none() {
            self.conn
                .pragma_update(None, "wal_autocheckpoint", checkpointer::BACKSTOP_PAGES)?;
            self.checkpointer = Some(checkpointer::Checkpointer::start(
                &self.root.join("statectl.db"),
            )?);
        }
        Ok(())
    }

    /// An in-memory store for unit tests; weights go to `root`.
    pub fn open_in_memory(root: &Path) -> Result<Store> {
        let mut conn = Connection::open_in_memory()?;
        migrate::apply(&mut conn, root)?;
        conn.execute_batch("PRAGMA foreign_keys = ON;")?;
        std::fs::create_dir_all(root.join("weights")).map_err(io_err(root))?;
        Ok(Store {
            conn,
            root: root.to_path_buf(),
            open_packs: Default::default(),
            checkpointer: None,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs `f` in one immediate transaction: all of it lands, or none (a
    /// `rusqlite::Transaction` rolls back when dropped, also on a panic).
    pub fn write<T, E>(
        &self,
        f: impl FnOnce(&Store) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<StoreError>,
    {
        self.transaction(rusqlite::TransactionBehavior::Immediate, f)
    }

    /// Runs `f` on one consistent snapshot of the database: a concurrent
    /// writer's commit is either wholly seen or not at all.
    pub fn read<T, E>(
        &self,
        f: impl FnOnce(&Store) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<StoreError>,
    {
        self.transaction(rusqlite::TransactionBehavior::Deferred, f)
    }

    fn transaction<T, E>(
        &self,
        behavior: rusqlite::TransactionBehavior,
        f: impl FnOnce(&Store) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<StoreError>,
    {
        let sql = |e: rusqlite::Error| E::from(e.into());
        if !self.conn.is_autocommit() {
            // Already inside the caller's transaction: it commits once.
            return f(self);
        }
        // Statements from the connection's cache, not parsed anew per
        // transaction: a Python loop of get_state runs one transaction a
        // call, and parsing these three was a tenth of its time.
        let begin = match behavior {
            rusqlite::TransactionBehavior::Immediate => "BEGIN IMMEDIATE",
            rusqlite::TransactionBehavior::Exclusive => "BEGIN EXCLUSIVE",
            _ => "BEGIN DEFERRED",
        };
        self.conn
            .prepare_cached(begin)
            .and_then(|mut s| s.execute([]))
            .map_err(sql)?;
        // Rolls back when `f` fails or panics, or the commit fails.
        let open = RollbackUnlessCommitted(&self.conn);
        // A deferred transaction takes its snapshot at the first read.
        self.conn
            .prepare_cached("SELECT count(*) FROM sqlite_master")
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
            .map_err(sql)?;
        let value = f(self)?;
        // A read wrote nothing, so committing it only ends the snapshot.
        self.conn
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
            .map_err(sql)?;
        std::mem::forget(open);
        Ok(value)
    }
}

/// Rolls back the connection's open transaction when dropped (on an error
/// or a panic before its commit); forgotten once the commit succeeds.
struct RollbackUnlessCommitted<'c>(&'c Connection);

impl Drop for RollbackUnlessCommitted<'_> {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            // Nothing more to do if this fails: the connection is then
            // already outside a transaction, or unusable.
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::StateId;
    use crate::state::{Layout, StateValue};

    fn states_seen_by_another_connection(root: &Path) -> i64 {
        Connection::open(root.join("statectl.db"))
            .unwrap()
            .query_row("SELECT count(*) FROM states", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_failed_or_panicking_write_rolls_back_and_the_next_one_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let value = |x: f32| StateValue::new(Layout::lstm(&[1]), vec![vec![x, x]]).unwrap();
        let failed: Result<()> = store.write(|s| {
            s.put_state(&value(1.0))?;
            Err(StoreError::NoModels)
        });
        assert!(failed.is_err());
        assert!(
            store.conn.is_autocommit(),
            "the failed write left its transaction open"
        );
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.write(|s| -> Result<()> {
                s.put_state(&value(2.0))?;
                panic!("a bug in the middle of a write")
            })
        }));
        assert!(panicked.is_err());
        assert!(
            store.conn.is_autocommit(),
            "the panicking write left its transaction open"
        );
        assert_eq!(states_seen_by_another_connection(dir.path()), 0);
        // The next write is a transaction of its own, and commits.
        store.write(|s| s.put_state(&value(3.0))).unwrap();
        assert_eq!(states_seen_by_another_connection(dir.path()), 1);
        assert!(!store.has_state(&value(1.0).id()).unwrap());
        assert!(store.read(|s| s.has_state(&value(3.0).id())).unwrap());
    }

    #[test]
    fn the_helper_copies_the_wal_into_the_database_while_the_store_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("statectl.db");
        let mut store = Store::open(dir.path()).unwrap();
        store.checkpoint_in_background().unwrap();
        let before = std::fs::metadata(&db).unwrap().len();
        // About 600 pages, under the backstop: without the helper they
        // stay in the WAL until the store closes.
        let units = 512;
        let ids: Vec<StateId> = (0..300)
            .map(|k| {
                let value =
                    StateValue::new(Layout::lstm(&[units]), vec![vec![k as f32; 2 * units]])
                        .unwrap();
                store.write(|s| s.put_state(&value)).unwrap()
            })
            .collect();
        let grown = (0..500).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            std::fs::metadata(&db).unwrap().len() > before + 300 * 4096
        });
        assert!(
            grown,
            "the database file did not grow: the WAL was not copied"
        );
        // Closing stops the helper and checkpoints the rest; everything is
        // there when the store opens again.
        drop(store);
        assert!(!dir.path().join("statectl.db-wal").exists());
        let store = Store::open(dir.path()).unwrap();
        for id in &ids {
            assert!(store.load_state(id).is_ok());
        }
    }
}
