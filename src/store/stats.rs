//! How much a store holds: row counts and bytes on disk, for `status`.

use std::path::Path;

use super::{Result, Store};

/// Row counts of the tables a user thinks in.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Counts {
    pub tags: i64,
    pub states: i64,
    pub slots: i64,
    pub events: i64,
}

impl Store {
    pub fn counts(&self) -> Result<Counts> {
        let count = |table: &str| -> Result<i64> {
            Ok(self
                .conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
        };
        Ok(Counts {
            tags: count("tags")?,
            states: count("states")?,
            slots: count("slots")?,
            events: count("events")?,
        })
    }

    /// Bytes of every file in the store's folder (database, journal,
    /// packs, weights).
    pub fn bytes_on_disk(&self) -> u64 {
        folder_bytes(self.root())
    }
}

fn folder_bytes(folder: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => folder_bytes(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}
