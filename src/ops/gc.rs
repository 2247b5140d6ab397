//! Garbage collection: first checks the store on a read snapshot, outside
//! the write lock (gc never collects on a store that does not verify: a
//! slot list damaged by one flipped bit would otherwise let gc delete a
//! tagged state's real slot, turning a repairable error into loss), then
//! in one transaction removes what nothing reaches and compacts packs
//! (every slot it copies is re-hashed on the way), then deletes the
//! unreferenced weights files and packs it retired once that committed.

use anyhow::{bail, Result};

use crate::store::{GcReport, Store};

pub fn run(store: &Store, cutoff: Option<i64>, dry_run: bool) -> Result<GcReport> {
    // The check re-hashes every byte: it reads one consistent snapshot
    // before the write lock is taken, so writers never wait on it.
    let check = store.verify_consistent()?;
    // First what needs no space: on a full disk the sweep below cannot
    // write its deletions, but dead packs and dead tails can still go.
    let freed_first = match dry_run || !check.problems.is_empty() {
        true => 0,
        false => store.write(|store| store.drop_dead_pack_files())?,
    };
    let mut set_aside = Vec::new();
    let mut retired_packs = Vec::new();
    let result = store.write(|store| -> Result<GcReport> {
        if let Some(first) = check.problems.first() {
            bail!(
                "gc refuses to run: the store has {} problem(s) (first: {} {}: {}); collecting now could delete what a damaged record still needs. Run `statectl verify`, repair or restore the store from a backup, then rerun gc",
                check.problems.len(),
                first.kind,
                first.id,
                first.problem
            );
        }
        let mut report = store.collect_garbage(cutoff, dry_run)?;
        report.bytes += freed_first;
        set_aside = report.set_aside.clone();
        retired_packs = report.retired_packs.clone();
        Ok(report)
    });
    match result {
        Ok(report) => {
            store.finish_removal(&set_aside);
            store.remove_packs(&retired_packs);
            Ok(report)
        }
        Err(e) => {
            store.undo_removal(&set_aside);
            Err(e)
        }
    }
}
