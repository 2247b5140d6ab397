//! Weights files under `weights/`, named by the sha256 of their bytes and
//! written atomically: temp file, fsync, rename, fsync the folder.
//!
//! Other names in the folder are leftovers of interrupted commands:
//! `.<hex>.<pid>.tmp` (a write killed before its rename) and `.<hex>.gc`
//! (a file gc set aside, killed before it could delete it). Files are only
//! written or removed while the store's write lock is held, so a leftover
//! seen under that lock is never work in progress.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{io_err, Result, Store, StoreError};
use crate::id::{Digest, WeightsId};

/// What a name in `weights/` is.
#[derive(Debug, Clone, PartialEq)]
pub enum WeightsEntry {
    File(WeightsId),
    Temp,
    SetAside(WeightsId),
    Other,
}

pub fn classify(name: &str) -> WeightsEntry {
    if let Some(id) = name
        .strip_suffix(".safetensors")
        .and_then(Digest::parse_hex)
    {
        return WeightsEntry::File(WeightsId(id));
    }
    if let Some(rest) = name.strip_prefix('.') {
        if rest.ends_with(".tmp") {
            return WeightsEntry::Temp;
        }
        if let Some(id) = rest.strip_suffix(".gc").and_then(Digest::parse_hex) {
            return WeightsEntry::SetAside(WeightsId(id));
        }
    }
    WeightsEntry::Other
}

pub(crate) fn sync_folder(dir: &Path) {
    if let Ok(folder) = std::fs::File::open(dir) {
        // Persists renames; not every platform can fsync a folder.
        let _ = folder.sync_all();
    }
}

impl Store {
    pub fn weights_dir(&self) -> PathBuf {
        self.root.join("weights")
    }

    pub fn weights_path(&self, id: &WeightsId) -> PathBuf {
        self.weights_dir().join(format!("{}.safetensors", id.hex()))
    }

    fn set_aside_path(&self, id: &WeightsId) -> PathBuf {
        self.weights_dir().join(format!(".{}.gc", id.hex()))
    }

    /// Every entry of `weights/` with its path. Call under the write lock
    /// when acting on leftovers.
    pub fn weights_entries(&self) -> Result<Vec<(WeightsEntry, PathBuf)>> {
        let dir = self.weights_dir();
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Links and other non-files are never the store's: not read,
            // not collected.
            let kind = if super::files::is_regular(&entry) {
                classify(&name)
            } else {
                WeightsEntry::Other
            };
            entries.push((kind, entry.path()));
        }
        entries.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(entries)
    }

    /// Writes the file unless it is already there; returns its id and
    /// whether this call created it. Call inside a write, so gc (which
    /// holds the same lock) never sees the file unreferenced.
    pub fn put_weights(&self, bytes: &[u8]) -> Result<(WeightsId, bool)> {
        let id = WeightsId(Digest::of(&[bytes]));
        let path = self.weights_path(&id);
        self.recover_set_aside(&id);
        let existing = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
        if existing {
            let intact =
                super::files::read_whole(&path).is_ok_and(|bytes| Digest::of(&[&bytes]) == id.0);
            if intact {
                return Ok((id, false));
            }
            // A damaged copy: the good bytes replace it (the rename below).
        }
        let dir = self.weights_dir();
        let tmp = dir.join(format!(".{}.{}.tmp", id.hex(), std::process::id()));
        let written = (|| {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err(&path)(e));
        }
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io_err(&path)(e)
        })?;
        sync_folder(&dir);
        Ok((id, !existing))
    }

    /// Removes a file this command created, before its transaction rolls
    /// back: the write lock is still held, so no other command can have
    /// come to rely on it.
    pub fn remove_created_weights(&self, id: &WeightsId) {
        let _ = std::fs::remove_file(self.weights_path(id));
    }

    /// A file gc set aside but never deleted, because the command was
    /// killed before it committed, is still wanted: put it back.
    fn recover_set_aside(&self, id: &WeightsId) {
        let aside = self.set_aside_path(id);
        if aside.exists() && !self.weights_path(id).exists() {
            let _ = std::fs::rename(&aside, self.weights_path(id));
        }
    }

    /// Renames unreferenced files out of the way (inside gc's transaction);
    /// [`Store::finish_removal`] deletes them once it committed, and
    /// [`Store::undo_removal`] puts them back if it did not.
    pub fn set_aside(&self, ids: &[WeightsId]) -> Result<Vec<WeightsId>> {
        let mut done = Vec::new();
        for id in ids {
            let from = self.weights_path(id);
            if let Err(e) = std::fs::rename(&from, self.set_aside_path(id)) {
                self.undo_removal(&done);
                return Err(io_err(&from)(e));
            }
            done.push(*id);
        }
        sync_folder(&self.weights_dir());
        Ok(done)
    }

    pub fn finish_removal(&self, ids: &[WeightsId]) {
        for id in ids {
            let _ = std::fs::remove_file(self.set_aside_path(id));
        }
    }

    pub fn undo_removal(&self, ids: &[WeightsId]) {
        for id in ids {
            let _ = std::fs::rename(self.set_aside_path(id), self.weights_path(id));
        }
        sync_folder(&self.weights_dir());
    }

    /// The file's bytes, checked against its id.
    pub fn load_weights(&self, id: &WeightsId) -> Result<Vec<u8>> {
        self.recover_set_aside(id);
        let path = self.weights_path(id);
        let bytes = super::files::read_whole(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::NotFound {
                    kind: "weights file",
                    name: path.display().to_string(),
                    hint: "it was deleted; run `statectl verify`".into(),
                }
            } else {
                io_err(&path)(e)
            }
        })?;
        if Digest::of(&[&bytes]) != id.0 {
            return Err(StoreError::HashMismatch {
                kind: "weights file",
                id: id.hex(),
            });
        }
        Ok(bytes)
    }
}
