//! Where the store is when the user does not say.

use std::path::PathBuf;

/// The store folder: the one given, else `$STATECTL_STORE`, else
/// `./.statectl` (the CLI and the Python package resolve alike).
pub fn resolve_path(given: Option<PathBuf>) -> PathBuf {
    given
        .or_else(|| std::env::var_os("STATECTL_STORE").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(".statectl"))
}
