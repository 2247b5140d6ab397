//! `statectl verify`: re-hash everything, check every ref and event, and
//! let SQLite check its file. Exit 3 when anything is wrong.

use anyhow::Result;
use serde_json::json;

use super::context::Context;
use super::EXIT_DIFFERENT;
use crate::cli::VerifyArgs;

pub fn run(ctx: &Context, args: VerifyArgs) -> Result<i32> {
    let repaired = if args.repair {
        Some(
            ctx.store
                .write(|store| store.restore_streams_from_journal())?,
        )
    } else {
        None
    };
    let report = match ctx.store.verify_consistent() {
        Ok(report) => report,
        Err(e) => return unopenable(ctx.out, e.into()),
    };
    let ok = report.problems.is_empty();
    let mut value = json!({"ok": ok, "report": report});
    if let Some(restored) = &repaired {
        value["repaired"] = json!({ "streams": restored });
    }
    ctx.emit(value, || {
        let mut text = String::new();
        for stream in repaired.iter().flatten() {
            text.push_str(&format!(
                "repaired: stream {stream} put back at the journal's last state for it\n"
            ));
        }
        if repaired.as_ref().is_some_and(|r| r.is_empty()) {
            text.push_str("repaired: nothing to put back\n");
        }
        text += &format!(
            "checked {} slot(s), {} state(s), {} object(s), {} weights file(s), {} tag(s), {} stream(s), {} event(s)\n",
            report.slots, report.states, report.objects, report.weights_files, report.tags, report.streams, report.events
        );
        for p in &report.problems {
            text.push_str(&format!("{} {}: {}\n", p.kind, p.id, p.problem));
        }
        if report.pack_dead_bytes > 0 {
            text.push_str(&format!(
                "{} byte(s) in packs belong to no slot (removed slots, or writes that were killed); `statectl gc` reclaims them\n",
                report.pack_dead_bytes
            ));
        }
        if !report.leftovers.is_empty() {
            text.push_str(&format!(
                "{} file(s) left by interrupted commands (harmless; `statectl gc` removes them):\n",
                report.leftovers.len()
            ));
            for f in &report.leftovers {
                text.push_str(&format!("  {f}\n"));
            }
        }
        text.push_str(&if ok {
            "ok: every byte matches its id\n".to_string()
        } else {
            format!("{} problem(s) found\n", report.problems.len())
        });
        text
    });
    Ok(if ok { 0 } else { EXIT_DIFFERENT })
}

/// `verify` on a store SQLite cannot even open: one database problem.
pub fn unopenable(out: super::Output, error: anyhow::Error) -> Result<i32> {
    let corrupt = error
        .downcast_ref::<crate::store::StoreError>()
        .is_some_and(|e| e.is_corrupt());
    if !corrupt {
        return Err(error);
    }
    let problem = crate::store::Problem {
        kind: "database",
        id: "statectl.db".into(),
        problem: format!(
            "SQLite cannot open it ({:#}); restore the store from a backup",
            error.root_cause()
        ),
    };
    let report = crate::store::VerifyReport {
        problems: vec![problem.clone()],
        ..Default::default()
    };
    out.emit(json!({"ok": false, "report": report}), || {
        format!(
            "{} {}: {}\n1 problem(s) found\n",
            problem.kind, problem.id, problem.problem
        )
    });
    Ok(EXIT_DIFFERENT)
}
