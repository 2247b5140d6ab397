//! Names for shell completion, read from a store without changing it: the
//! database opened read-only (no migration, no lock file, no store created
//! where there is none). Any failure gives no names: a completion must
//! never print an error into the user's command line.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

/// Which names to list.
#[derive(Debug, Clone, Copy)]
pub enum Names {
    Tags,
    Models,
    Streams,
}

/// Up to `limit` names of `kind` starting with `prefix`, in order.
pub fn names_starting_with(root: &Path, kind: Names, prefix: &str, limit: usize) -> Vec<String> {
    let db = root.join("statectl.db");
    if !db.is_file() {
        return Vec::new();
    }
    let Ok(conn) = Connection::open_with_flags(
        &db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return Vec::new();
    };
    let table = match kind {
        Names::Tags => "tags",
        Names::Models => "models",
        Names::Streams => "streams",
    };
    // `>= prefix` and a LIKE-free bound keep this one index range scan.
    let sql = format!(
        "SELECT DISTINCT name FROM {table} WHERE name >= ?1 AND substr(name, 1, length(?1)) = ?1 ORDER BY name LIMIT ?2"
    );
    let Ok(mut stmt) = conn.prepare(&sql) else {
        return Vec::new();
    };
    stmt.query_map(rusqlite::params![prefix, limit as i64], |r| r.get(0))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}
