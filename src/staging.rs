//! Files written for the user go to a temp file beside their target first,
//! then are renamed into place: a reader never sees half a file, and a
//! failed command leaves none (tempfile removes it when dropped).

use std::path::Path;

/// An empty temp file in `target`'s folder, named `.<target name>.<random><suffix>`,
/// with the mode `File::create` would give (0666 less the umask; tempfile's
/// own 0600 would leave the user's file unreadable to others).
pub fn temp_beside(target: &Path, suffix: &str) -> std::io::Result<tempfile::NamedTempFile> {
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let folder = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(suffix)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(folder)
}
