//! Weights files under `weights/`, named by the sha256 of their bytes and
//! written atomically: temp file, fsync, rename, fsync the folder.

use std::io::Write;
use std::path::PathBuf;

use super::{io_err, Result, Store, StoreError};
use crate::id::{Digest, WeightsId};

impl Store {
    pub fn weights_path(&self, id: &WeightsId) -> PathBuf {
        self.root
            .join("weights")
            .join(format!("{}.safetensors", id.hex()))
    }

    /// Writes the file unless it is already there; returns its id and
    /// whether this call created it (so a failed command can remove it).
    pub fn put_weights(&self, bytes: &[u8]) -> Result<(WeightsId, bool)> {
        let id = WeightsId(Digest::of(&[bytes]));
        let path = self.weights_path(&id);
        if path.exists() {
            return Ok((id, false));
        }
        let dir = self.root.join("weights");
        let tmp = dir.join(format!(".{}.{}.tmp", id.hex(), std::process::id()));
        let mut file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        file.write_all(bytes).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        if let Ok(folder) = std::fs::File::open(&dir) {
            // Persists the rename; not every platform can fsync a folder.
            let _ = folder.sync_all();
        }
        Ok((id, true))
    }

    pub fn remove_weights(&self, id: &WeightsId) {
        let _ = std::fs::remove_file(self.weights_path(id));
    }

    /// The file's bytes, checked against its id.
    pub fn load_weights(&self, id: &WeightsId) -> Result<Vec<u8>> {
        let path = self.weights_path(id);
        let bytes = std::fs::read(&path).map_err(|e| {
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
