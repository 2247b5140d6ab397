//! The store: one folder holding `statectl.db` (SQLite) and `weights/`.
//! It knows rows, bytes and files, never candle. All SQL lives here.
//!
//! Every read of content re-hashes it, so corruption surfaces as
//! [`StoreError::HashMismatch`] naming the id instead of wrong numbers.

mod content;
mod events;
mod gc;
mod migrate;
mod models;
mod refs;
mod verify;
mod weights_files;

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use thiserror::Error;

pub use content::StateRecord;
pub use events::{EventFilter, EventRecord, NewEvent};
pub use gc::GcReport;
pub use migrate::SCHEMA_VERSION;
pub use models::ModelRecord;
pub use refs::{StreamRecord, TagRecord};
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
    #[error("{0}")]
    Conflict(String),
    #[error("store database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store file error at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub struct Store {
    conn: Connection,
    root: PathBuf,
}

/// Milliseconds since the Unix epoch, the store's clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating on first use) the store in folder `root`.
    pub fn open(root: &Path) -> Result<Store> {
        if root.exists() && !root.is_dir() {
            return Err(StoreError::NotAFolder(root.display().to_string()));
        }
        std::fs::create_dir_all(root.join("weights")).map_err(io_err(root))?;
        let conn = Connection::open(root.join("statectl.db"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Refuse a newer schema before anything (even the journal mode) is
        // written to the file.
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                path: root.display().to_string(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
        )?;
        let mut store = Store {
            conn,
            root: root.to_path_buf(),
        };
        migrate::apply(&mut store.conn)?;
        Ok(store)
    }

    /// An in-memory store for unit tests; weights go to `root`.
    pub fn open_in_memory(root: &Path) -> Result<Store> {
        let mut conn = Connection::open_in_memory()?;
        conn.execute_batch("PRAGMA foreign_keys = ON;")?;
        migrate::apply(&mut conn)?;
        std::fs::create_dir_all(root.join("weights")).map_err(io_err(root))?;
        Ok(Store {
            conn,
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs `f` in one immediate transaction: all of it lands, or none.
    pub fn write<T, E>(
        &self,
        f: impl FnOnce(&Store) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<StoreError>,
    {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| E::from(e.into()))?;
        match f(self) {
            Ok(value) => {
                self.conn
                    .execute_batch("COMMIT")
                    .map_err(|e| E::from(e.into()))?;
                Ok(value)
            }
            Err(err) => {
                // The rollback's own failure would hide the real error.
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(err)
            }
        }
    }
}
