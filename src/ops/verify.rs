//! Checking a whole store: re-hash every slot, state, object and weights
//! file, check every ref and event, let SQLite check its file; with
//! `repair`, first put back streams the journal says were lost.

use anyhow::Result;
use serde::Serialize;

use crate::store::{Problem, Store, StoreError, VerifyReport};

/// What verify found (the `verify` JSON).
#[derive(Debug, Clone, Serialize)]
pub struct VerifyOutcome {
    /// No problems (leftovers and dead pack bytes are not problems).
    pub ok: bool,
    pub report: VerifyReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repaired: Option<Repaired>,
    /// False when the database could not be read at all (nothing counted).
    #[serde(skip)]
    pub checked: bool,
}

/// What `repair` put back.
#[derive(Debug, Clone, Serialize)]
pub struct Repaired {
    /// Each `model/stream` put back at the journal's last state for it.
    pub streams: Vec<String>,
}

impl VerifyOutcome {
    fn of(report: VerifyReport, repaired: Option<Repaired>) -> VerifyOutcome {
        VerifyOutcome {
            ok: report.problems.is_empty(),
            report,
            repaired,
            checked: true,
        }
    }

    /// What verify found on a shared store (nothing to repair there).
    pub fn of_shared(report: VerifyReport) -> VerifyOutcome {
        VerifyOutcome::of(report, None)
    }

    /// A database SQLite cannot even read: one problem, reported as
    /// verify's finding rather than as an error. Other errors stay errors.
    pub fn unreadable(error: anyhow::Error) -> Result<VerifyOutcome> {
        let corrupt = error
            .downcast_ref::<StoreError>()
            .is_some_and(|e| e.is_corrupt());
        if !corrupt {
            return Err(error);
        }
        let problem = Problem {
            kind: "database",
            id: "statectl.db".into(),
            problem: format!(
                "SQLite cannot open it ({:#}); restore the store from a backup",
                error.root_cause()
            ),
        };
        Ok(VerifyOutcome {
            checked: false,
            ..VerifyOutcome::of(
                VerifyReport {
                    problems: vec![problem],
                    ..Default::default()
                },
                None,
            )
        })
    }
}

pub fn run(store: &Store, repair: bool) -> Result<VerifyOutcome> {
    let repaired = if repair {
        let streams = store.write(|store| store.restore_streams_from_journal())?;
        Some(Repaired { streams })
    } else {
        None
    };
    match store.verify_consistent() {
        Ok(report) => Ok(VerifyOutcome::of(report, repaired)),
        Err(e) => VerifyOutcome::unreadable(e.into()),
    }
}
