//! Garbage collection, in steps that each hold the write lock only
//! briefly:
//!
//! 1. one gc at a time per store (`gc.lock`);
//! 2. check the store on a read snapshot, outside the write lock (gc never
//!    collects on a store that does not verify: a slot list damaged by one
//!    flipped bit would otherwise let gc delete a tagged state's real slot,
//!    turning a repairable error into loss);
//! 3. free what needs no space (packs nothing names, dead tails), so gc
//!    makes room also on a full disk;
//! 4. in one transaction, remove what nothing reaches; after it commits,
//!    delete the weights files and packs it let go;
//! 5. rewrite mostly dead packs: the copy outside the lock, the switch in
//!    a short transaction (`store/compaction.rs`).

use anyhow::{bail, Result};
use serde_json::json;

use crate::store::{GcReport, NewEvent, Store};

/// A replay buffer's bound: keep the `keep_newest` newest tags under
/// `prefix`, drop the rest before the sweep.
#[derive(Debug, Clone)]
pub struct Retention {
    pub prefix: String,
    pub keep_newest: usize,
}

/// A dry run's report, carried out of the write as an error so that the
/// transaction (which applied the retention to see its effect) rolls back.
#[derive(Debug)]
struct DryRun(GcReport);

impl std::fmt::Display for DryRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a dry run")
    }
}

impl std::error::Error for DryRun {}

pub fn run(
    store: &Store,
    cutoff: Option<i64>,
    dry_run: bool,
    retention: Option<&Retention>,
) -> Result<GcReport> {
    let Some(_one_gc) = store.gc_lock()? else {
        bail!("another gc is running on this store; wait for it to finish, then rerun gc");
    };
    let check = store.verify_consistent()?;
    if let Some(first) = check.problems.first() {
        bail!(
            "gc refuses to run: the store has {} problem(s) (first: {} {}: {}); collecting now could delete what a damaged record still needs. Run `statectl verify`, repair or restore the store from a backup, then rerun gc",
            check.problems.len(),
            first.kind,
            first.id,
            first.problem
        );
    }
    let freed_first = match dry_run {
        true => 0,
        false => store.write(|store| store.drop_dead_pack_files())?,
    };
    if let Some(rule) = retention {
        crate::ops::tags::check_tag_prefix(&rule.prefix)?;
    }
    let mut report = sweep(store, cutoff, dry_run, retention)?;
    report.bytes += freed_first;
    if !dry_run {
        report.bytes += compact(store)?;
    }
    Ok(report)
}

/// Removes what nothing reaches, in one transaction; files go after it.
fn sweep(
    store: &Store,
    cutoff: Option<i64>,
    dry_run: bool,
    retention: Option<&Retention>,
) -> Result<GcReport> {
    let mut set_aside = Vec::new();
    let result = store.write(|store| -> Result<GcReport> {
        let retained = match retention {
            Some(rule) => Some(store.apply_retention(&rule.prefix, rule.keep_newest)?),
            None => None,
        };
        if let Some(r) = retained.as_ref().filter(|r| r.tags_dropped > 0 && !dry_run) {
            store.append_event(&NewEvent {
                kind: "retention",
                detail: json!({ "prefix": r.prefix, "keep_newest": r.keep_newest, "tags_dropped": r.tags_dropped }),
                ..Default::default()
            })?;
        }
        let mut report = store.collect_garbage(cutoff, dry_run)?;
        report.retention = retained;
        if dry_run && retention.is_some() {
            return Err(DryRun(report).into());
        }
        set_aside = report.set_aside.clone();
        Ok(report)
    });
    let result = match result {
        Err(e) if e.is::<DryRun>() => match e.downcast::<DryRun>() {
            Ok(DryRun(report)) => return Ok(report),
            Err(e) => Err(e),
        },
        other => other,
    };
    match result {
        Ok(report) => {
            store.finish_removal(&set_aside);
            store.remove_packs(&report.retired_packs);
            Ok(report)
        }
        Err(e) => {
            store.undo_removal(&set_aside);
            Err(e)
        }
    }
}

/// Rewrites mostly dead packs; returns the bytes freed.
fn compact(store: &Store) -> Result<u64> {
    let Some(copy) = store.copy_for_compaction()? else {
        return Ok(0);
    };
    let (retired, freed) = store.write(|store| store.switch_to_compacted(&copy))?;
    store.remove_packs(&retired);
    Ok(freed)
}
