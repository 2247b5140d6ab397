//! Stable names for kinds of failure, for machine-readable errors (the
//! CLI's `--json` error objects, the Python exception classes).

/// A stable name for the kind of an error, for `--json` error objects:
/// not_found, ambiguous, corrupt, store_too_new, no_store, stream_moved,
/// layout_mismatch, conflict, io, database, or error.
pub fn error_kind(err: &anyhow::Error) -> &'static str {
    use crate::store::StoreError;
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<StoreError>() {
            return match e {
                StoreError::NotFound { .. } | StoreError::NoModels => "not_found",
                StoreError::Ambiguous { .. } => "ambiguous",
                StoreError::HashMismatch { .. } | StoreError::Damaged(_) => "corrupt",
                StoreError::SchemaTooNew { .. } => "store_too_new",
                StoreError::Missing(_) | StoreError::NotAFolder(_) => "no_store",
                StoreError::Conflict(_) => "conflict",
                StoreError::Io { .. } => "io",
                StoreError::Sqlite(_) if e.is_corrupt() => "corrupt",
                StoreError::Sqlite(_) => "database",
            };
        }
        if cause
            .downcast_ref::<crate::ops::models::LayoutMismatch>()
            .is_some()
            || cause
                .downcast_ref::<crate::ops::predict::BatchMismatch>()
                .is_some()
        {
            return "layout_mismatch";
        }
        if cause
            .downcast_ref::<crate::ops::streams::StreamMoved>()
            .is_some()
        {
            return "stream_moved";
        }
    }
    "error"
}
