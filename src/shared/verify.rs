//! `statectl --store URL verify`: the shared store checked as an embedded
//! one is: every slot, object and weights file re-hashed against its id
//! (on the server, so no byte crosses the network), every state re-hashed
//! from its slot list with every slot present, and every tag, stream and
//! model naming something that is there. Read in one snapshot, so writers
//! may go on meanwhile.

use std::collections::HashSet;

use anyhow::Result;
use postgres::fallible_iterator::FallibleIterator;

use super::SharedStore;
use crate::id::{SlotId, StateId};
use crate::state::state_id;
use crate::store::{Problem, VerifyReport};

/// Content whose bytes must hash to their id, checked by the server:
/// (kind, table, the expected id as SQL).
const REHASHED: [(&str, &str, &str); 3] = [
    (
        "slot",
        "slots",
        "sha256('statectl.slot.v1'::bytea || '\\x00'::bytea || convert_to(layout, 'UTF8') || '\\x00'::bytea || bytes)",
    ),
    ("object", "objects", "sha256(bytes)"),
    ("weights file", "weights_files", "sha256(bytes)"),
];

/// Refs that must name present content: (kind, the name as SQL, table,
/// column, target table, what the problem says).
const NAMED: [(&str, &str, &str, &str, &str, &str); 3] = [
    (
        "tag",
        "name",
        "tags",
        "state",
        "states",
        "names a state that is not there",
    ),
    (
        "stream",
        "model || '/' || name",
        "streams",
        "state",
        "states",
        "is at a state that is not there",
    ),
    (
        "model",
        "name",
        "models",
        "weights",
        "weights_files",
        "has no weights file",
    ),
];

impl SharedStore {
    /// Checks the whole shared store; problems are findings, not errors.
    pub fn verify(&mut self) -> Result<VerifyReport> {
        let shown = self.shown.clone();
        let explain = |e| super::connect::explain(&shown, "verifying", &e);
        let mut tx = self
            .client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(explain)?;
        let mut report = VerifyReport::default();
        let count = |tx: &mut postgres::Transaction, table: &str| -> Result<usize> {
            let n: i64 = tx
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .map_err(explain)?
                .get(0);
            Ok(n as usize)
        };
        report.slots = count(&mut tx, "slots")?;
        report.objects = count(&mut tx, "objects")?;
        report.weights_files = count(&mut tx, "weights_files")?;
        report.tags = count(&mut tx, "tags")?;
        report.streams = count(&mut tx, "streams")?;
        report.events = count(&mut tx, "events")?;
        for (kind, table, expected) in REHASHED {
            let rows = tx
                .query(
                    &format!("SELECT id FROM {table} WHERE id <> {expected} ORDER BY id"),
                    &[],
                )
                .map_err(explain)?;
            for row in rows {
                report.problems.push(Problem {
                    kind,
                    id: hex::encode(row.get::<_, &[u8]>(0)),
                    problem: "its bytes do not hash to its id".into(),
                });
            }
        }
        check_states(&mut tx, &mut report).map_err(explain)?;
        for (kind, name, table, column, target, problem) in NAMED {
            let rows = tx
                .query(
                    &format!(
                        "SELECT {name} FROM {table} t WHERE NOT EXISTS \
                         (SELECT 1 FROM {target} x WHERE x.id = t.{column}) ORDER BY 1"
                    ),
                    &[],
                )
                .map_err(explain)?;
            for row in rows {
                report.problems.push(Problem {
                    kind,
                    id: row.get(0),
                    problem: problem.into(),
                });
            }
        }
        tx.commit().map_err(explain)?;
        Ok(report)
    }
}

/// Every state re-hashed from its layout and slot list, and each of its
/// slots present; read a row at a time.
fn check_states(
    tx: &mut postgres::Transaction,
    report: &mut VerifyReport,
) -> Result<(), postgres::Error> {
    let slots: HashSet<SlotId> = tx
        .query("SELECT id FROM slots", &[])?
        .iter()
        .filter_map(|r| SlotId::from_slice(r.get(0)))
        .collect();
    let none: [&str; 0] = [];
    let mut rows = tx.query_raw("SELECT id, layout, slot_ids FROM states", none)?;
    while let Some(row) = rows.next()? {
        report.states += 1;
        let (id, layout, list): (&[u8], &str, &[u8]) = (row.get(0), row.get(1), row.get(2));
        let listed: Vec<SlotId> = list.chunks(32).filter_map(SlotId::from_slice).collect();
        let hashes =
            list.len() % 32 == 0 && StateId::from_slice(id) == Some(state_id(layout, &listed));
        let mut problem = |text: String| {
            report.problems.push(Problem {
                kind: "state",
                id: hex::encode(id),
                problem: text,
            })
        };
        if !hashes {
            problem("its layout and slot list do not hash to its id".into());
        }
        if let Some(missing) = listed.iter().find(|s| !slots.contains(s)) {
            problem(format!("names slot {}, which is not there", missing.hex()));
        }
    }
    Ok(())
}
