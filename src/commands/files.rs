//! Files commands write for the user (`-o`): checked before any work,
//! written to a temp name and moved into place, so a reader never sees
//! half a file and a file that cannot be written is known before anything
//! is recorded.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

/// A file written to a temp name beside its target, not yet in place
/// (tempfile removes it if it is dropped before [`StagedFile::commit`]).
pub struct StagedFile {
    tmp: Option<tempfile::NamedTempFile>,
    path: PathBuf,
}

impl StagedFile {
    /// Writes and syncs the bytes under a temp name.
    pub fn write(path: &Path, bytes: &[u8]) -> Result<StagedFile> {
        StagedFile::write_with(path, |out| Ok(out.write_all(bytes)?))
    }

    /// Writes what `fill` writes (buffered), and syncs it, under a temp
    /// name: for files too large to build in memory first.
    pub fn write_with(
        path: &Path,
        fill: impl FnOnce(&mut dyn std::io::Write) -> Result<()>,
    ) -> Result<StagedFile> {
        let tmp = crate::staging::temp_beside(path, ".tmp").with_context(|| cannot_write(path))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp);
        fill(&mut out)?;
        let tmp = out
            .into_inner()
            .map_err(|e| anyhow::Error::new(e.into_error()))
            .with_context(|| cannot_write(path))?;
        tmp.as_file()
            .sync_all()
            .with_context(|| cannot_write(path))?;
        Ok(StagedFile {
            tmp: Some(tmp),
            path: path.to_path_buf(),
        })
    }

    /// Moves the file into place.
    pub fn commit(&mut self) -> Result<()> {
        let Some(tmp) = self.tmp.take() else {
            return Ok(());
        };
        tmp.persist(&self.path).map_err(|e| {
            anyhow::Error::new(e.error).context(format!(
                "cannot move the finished file into place at '{}'; pick another -o path",
                self.path.display()
            ))
        })?;
        Ok(())
    }
}

fn cannot_write(path: &Path) -> String {
    format!(
        "cannot write '{}'; pick a writable -o path with room to spare",
        path.display()
    )
}

/// Writes `bytes` to `path` through a temp file and a rename, so a reader
/// never sees half a file.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    StagedFile::write(path, bytes)?.commit()
}

/// Refuses an output path whose folder does not exist, before any work is
/// done, so a command never commits and then fails to write its file.
pub fn check_output_path(path: &Path) -> Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        bail!(
            "cannot write '{}': folder '{}' does not exist; create it or pick another -o path",
            path.display(),
            parent.display()
        );
    }
    if path.is_dir() {
        bail!(
            "cannot write '{}': it is a folder; give a file name with -o",
            path.display()
        );
    }
    Ok(())
}
