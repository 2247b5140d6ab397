//! Opening the store's own files without following symbolic links.
//!
//! A store's `packs/` and `weights/` belong to it alone: a link there (to
//! another store's folder, or to any file) would let this store's gc delete
//! another's data and its imports append to a file outside the store. So
//! the folders must be real folders, and every pack or weights file is
//! opened with `O_NOFOLLOW` and must be a regular file (`O_NONBLOCK` makes
//! opening a FIFO return at once instead of waiting for a writer; it does
//! nothing to a regular file's reads and writes).

use std::fs::{File, OpenOptions};
use std::path::Path;

/// Opens `path` for reading: a regular file, never through a link.
pub fn open_for_reading(path: &Path) -> std::io::Result<File> {
    regular(no_follow(OpenOptions::new().read(true)).open(path)?, path)
}

/// Opens (creating if missing) `path` for appending: a regular file, never
/// through a link.
pub fn open_for_appending(path: &Path) -> std::io::Result<File> {
    regular(
        no_follow(OpenOptions::new().create(true).append(true)).open(path)?,
        path,
    )
}

/// A file's bytes: a regular file, never through a link.
pub fn read_whole(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = open_for_reading(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn no_follow(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    options
}

fn regular(file: File, path: &Path) -> std::io::Result<File> {
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{} is not a regular file (a FIFO, device or folder in the store's place); move it aside",
                path.display()
            ),
        ))
    }
}

/// `Some(why)` when `path` is a link instead of a real folder of the
/// store: such a store is refused before anything is touched.
pub fn not_own_folder(path: &Path) -> Option<String> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if meta.file_type().is_symlink() {
        Some(format!(
            "{} is a symbolic link; a store's folders must be its own (a linked or shared folder lets one store's gc delete another's data): replace the link with a copy of the folder",
            path.display()
        ))
    } else {
        // A file in a folder's place fails where the folder is first used,
        // with the file system's own words.
        None
    }
}

/// Whether a folder entry is a regular file (links are not followed).
pub fn is_regular(entry: &std::fs::DirEntry) -> bool {
    entry.file_type().is_ok_and(|t| t.is_file())
}
