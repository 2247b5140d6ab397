//! Where the store is when the user does not say.

use std::path::{Path, PathBuf};

/// The store folder: the one given, else `$STATECTL_STORE`, else the
/// nearest `.statectl` holding a store in the current folder or a parent
/// (see [`discover`]), else `./.statectl` (the CLI and the Python package
/// resolve alike).
pub fn resolve_path(given: Option<PathBuf>) -> PathBuf {
    given
        .or_else(|| std::env::var_os("STATECTL_STORE").map(PathBuf::from))
        .or_else(|| {
            let here = std::env::current_dir().ok()?;
            let home = std::env::var_os("HOME").map(PathBuf::from);
            discover(&here, home.as_deref())
        })
        .unwrap_or_else(|| PathBuf::from(".statectl"))
}

/// The nearest `.statectl` holding a store, from `here` up, as git finds
/// `.git`: `.statectl` itself when it is in `here`, else the parent's
/// absolute path. The walk ends after `home` (a store above it is not the
/// user's) and at a filesystem boundary (a mount is another tree).
pub fn discover(here: &Path, home: Option<&Path>) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let device = std::fs::metadata(here).ok()?.dev();
    for folder in here.ancestors() {
        if std::fs::metadata(folder).map(|m| m.dev()).ok() != Some(device) {
            return None;
        }
        let candidate = folder.join(".statectl");
        if candidate.join("statectl.db").is_file() {
            return Some(if folder == here {
                PathBuf::from(".statectl")
            } else {
                candidate
            });
        }
        if home == Some(folder) {
            return None;
        }
    }
    None
}
