//! Checking the whole store: every slot, state, object and weights file is
//! re-hashed, every ref and event is checked to point at something that
//! exists, and SQLite checks its own file. Every problem is reported, not
//! only the first.

use std::collections::HashSet;

use serde::Serialize;

use super::weights_files::WeightsEntry;
use super::{Result, Store};
use crate::id::{to_hex, Digest};
use crate::state::{slot_id, state_id};

/// One thing wrong in the store.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Problem {
    /// What kind of object: slot, state, object, weights file, tag, stream, event, database.
    pub kind: &'static str,
    /// Its id (full hex), name or number.
    pub id: String,
    pub problem: String,
}

/// What `verify` looked at, and what it found.
#[derive(Debug, Clone, Serialize, Default)]
pub struct VerifyReport {
    pub slots: usize,
    pub states: usize,
    pub objects: usize,
    pub weights_files: usize,
    pub tags: usize,
    pub streams: usize,
    pub events: usize,
    pub problems: Vec<Problem>,
    /// Files that interrupted commands left in `weights/` (temp files, files
    /// set aside by gc, weights no model or event names). Harmless, and not
    /// problems: `statectl gc` removes them.
    pub leftovers: Vec<String>,
    /// Bytes in packs that no slot names (removed slots, tails of killed
    /// writes): not problems; gc reclaims tails and wholly dead packs at
    /// once, and rewrites a pack once more of it is dead than alive.
    pub pack_dead_bytes: u64,
}

impl VerifyReport {
    fn problem(&mut self, kind: &'static str, id: String, problem: String) {
        self.problems.push(Problem { kind, id, problem });
    }
}

/// Ids of one kind that exist, as stored bytes.
type IdSet = HashSet<Vec<u8>>;

fn blob_hex(bytes: &[u8]) -> String {
    to_hex(bytes)
}

/// How many times verify looks again when the store changed under it.
const VERIFY_ATTEMPTS: usize = 8;

impl Store {
    /// [`Store::verify`] on one consistent view: the database snapshot and
    /// the packs it names. gc deletes the packs it compacted once its
    /// transaction commits, so a snapshot taken before that commit may name
    /// a pack that is gone by the time it is read, and a pack it made may
    /// look unreferenced to an older snapshot. When a look found problems
    /// or leftovers and another connection committed meanwhile, it is taken
    /// again (what a fresh snapshot still shows is real).
    pub fn verify_consistent(&self) -> Result<VerifyReport> {
        let mut attempt = 1;
        loop {
            let before = self.data_version()?;
            let report = self.read(|store| store.verify())?;
            if (report.problems.is_empty() && report.leftovers.is_empty())
                || attempt == VERIFY_ATTEMPTS
                || self.data_version()? == before
            {
                return Ok(report);
            }
            attempt += 1;
        }
    }

    /// Changes whenever another connection commits (SQLite's counter).
    fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// Checks everything; a database SQLite cannot read is reported as a
    /// problem, not an error, so `verify` still lists what it found.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let unreadable = |e: super::StoreError| {
            Problem {
            kind: "database",
            id: "statectl.db".into(),
            problem: format!(
                "SQLite cannot read all of it ({}); restore the store from a backup, or copy out what `statectl export` still reads",
                match &e {
                    super::StoreError::Sqlite(inner) => inner.to_string(),
                    other => other.to_string(),
                }
            ),
        }
        };
        if let Err(e) = self.check_sqlite(&mut report.problems) {
            report.problems.push(unreadable(e));
        }
        if let Err(e) = self.verify_into(&mut report) {
            report.problems.push(unreadable(e));
        }
        if let Err(e) = self.check_streams_against_journal(&mut report.problems) {
            report.problems.push(unreadable(e));
        }
        self.check_no_links(&mut report.problems);
        Ok(report)
    }

    /// Links and other non-files in `packs/` and `weights/`: statectl never
    /// follows them, so whatever a record expects there is unreadable.
    fn check_no_links(&self, problems: &mut Vec<Problem>) {
        for dir in [self.packs_dir(), self.weights_dir()] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if !super::files::is_regular(&entry) {
                    problems.push(Problem {
                        kind: "file",
                        id: entry.path().display().to_string(),
                        problem: "is not a regular file (a link, FIFO or folder); statectl never follows links inside a store: put the file itself there, or move it aside".into(),
                    });
                }
            }
        }
    }

    /// Every stream the journal moved, of a model that still exists with
    /// the weights that move used, must exist at the journal's last state
    /// for it (stream moves and their events commit together).
    fn check_streams_against_journal(&self, problems: &mut Vec<Problem>) -> Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT m.name, e.stream, e.state_after, s.state
             FROM events e
             JOIN models m ON m.id = e.model
             LEFT JOIN streams s ON s.model = e.model AND s.name = e.stream
             WHERE e.moved_stream = 1 AND e.stream IS NOT NULL AND e.state_after IS NOT NULL
               AND e.id = (SELECT max(l.id) FROM events l
                           WHERE l.model = e.model AND l.stream = e.stream AND l.moved_stream = 1)
               AND (e.weights IS NULL OR e.weights = m.weights)",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (model, stream, journal, now): (String, String, Vec<u8>, Option<Vec<u8>>) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            let problem = match now {
                None => format!(
                    "is missing, although the journal last moved it to state {}; `statectl verify --repair` puts it back",
                    blob_hex(&journal)
                ),
                Some(state) if state != journal => format!(
                    "is at state {}, but the journal last moved it to {}",
                    blob_hex(&state),
                    blob_hex(&journal)
                ),
                Some(_) => continue,
            };
            problems.push(Problem {
                kind: "stream",
                id: format!("{model}/{stream}"),
                problem,
            });
        }
        Ok(())
    }

    /// Puts back streams the journal moved whose rows are gone (see
    /// `migrations/0008`); returns them as `model/stream`. Call inside a
    /// write.
    pub fn restore_streams_from_journal(&self) -> Result<Vec<String>> {
        let before: i64 =
            self.conn
                .query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))?;
        self.conn
            .execute_batch(super::migrate::RESTORE_STREAMS_FROM_JOURNAL)?;
        let mut stmt = self.conn.prepare(
            "SELECT model_name, stream FROM events WHERE kind = 'repair' AND id > ?1 ORDER BY id",
        )?;
        let restored = stmt
            .query_map([before], |r| {
                Ok(format!(
                    "{}/{}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(restored)
    }

    /// SQLite's own checks of its file and of the foreign keys.
    fn check_sqlite(&self, problems: &mut Vec<Problem>) -> Result<()> {
        let mut push = |kind: &'static str, id: String, problem: String| {
            problems.push(Problem { kind, id, problem })
        };

        let integrity: Vec<String> = self
            .conn
            .prepare("PRAGMA integrity_check")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if integrity != ["ok"] {
            for line in integrity {
                push("database", "statectl.db".into(), line);
            }
        }
        let mut fk = self.conn.prepare("PRAGMA foreign_key_check")?;
        let fk_rows: Vec<(String, i64, String)> = fk
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                    r.get(2)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (table, row, parent) in fk_rows {
            push(
                "database",
                format!("{table} row {row}"),
                format!("points at a missing row of {parent}"),
            );
        }
        Ok(())
    }

    /// Every check, in an order where each finds the ids the next ones
    /// check links against.
    fn verify_into(&self, report: &mut VerifyReport) -> Result<()> {
        let (slots, packs_used) = self.check_slots(report)?;
        self.note_unused_packs(report, &packs_used)?;
        let states = self.check_states(report, &slots)?;
        let objects = self.check_objects(report)?;
        let mut leftovers = Vec::new();
        let weights = self.check_weights_files(report, &mut leftovers)?;
        self.check_training_records(report, &objects, &weights, &mut leftovers)?;
        self.check_models(report, &weights)?;
        self.check_tags(report, &states)?;
        self.check_streams(report, &states)?;
        self.check_events(report, &weights, &states, &objects)?;
        self.check_runs(report, &states, &weights)?;
        report.pack_dead_bytes = self
            .pack_usage()?
            .values()
            .map(|(size, live)| size.saturating_sub(*live))
            .sum();
        leftovers.append(&mut report.leftovers);
        leftovers.sort();
        report.leftovers = leftovers;
        Ok(())
    }

    /// Every slot's bytes (inline or packed) hash to its id. Returns the
    /// slot ids and the packs slots live in.
    fn check_slots(&self, report: &mut VerifyReport) -> Result<(IdSet, HashSet<i64>)> {
        let mut slots = HashSet::new();
        let mut packs_used = HashSet::new();
        let mut stmt = self
            .conn
            .prepare("SELECT id, layout, bytes, pack, pack_offset, pack_length FROM slots")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (id, layout, bytes): (Vec<u8>, String, Vec<u8>) = (r.get(0)?, r.get(1)?, r.get(2)?);
            report.slots += 1;
            let bytes = match super::packs::packed_at(r, 3)? {
                None => Some(bytes),
                Some(at) => {
                    packs_used.insert(at.pack);
                    match self.read_packed(at) {
                        Ok(bytes) => Some(bytes),
                        Err(e) => {
                            report.problem(
                                "slot",
                                blob_hex(&id),
                                format!("bytes unreadable from pack {}: {e}", at.pack),
                            );
                            None
                        }
                    }
                }
            };
            if let Some(bytes) = bytes {
                if slot_id(&layout, &bytes).bytes()[..] != id[..] {
                    report.problem("slot", blob_hex(&id), "bytes do not hash to the id".into());
                }
            }
            slots.insert(id);
        }
        Ok((slots, packs_used))
    }

    /// Packs nothing references (a killed import's, or emptied by gc and
    /// not yet deleted) are leftovers; gc removes them.
    fn note_unused_packs(&self, report: &mut VerifyReport, used: &HashSet<i64>) -> Result<()> {
        let newest = self.newest_pack()?;
        for pack in self.pack_files()? {
            if !used.contains(&pack.number) && Some(pack.number) != newest {
                report.leftovers.push(pack.path.display().to_string());
            }
        }
        Ok(())
    }

    /// Every state's slot list hashes to its id and names stored slots.
    fn check_states(&self, report: &mut VerifyReport, slots: &IdSet) -> Result<IdSet> {
        let mut states = HashSet::new();
        let mut stmt = self
            .conn
            .prepare("SELECT id, layout, batch, slot_ids FROM states")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (id, layout, batch, list): (Vec<u8>, String, i64, Vec<u8>) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            report.states += 1;
            let ids: Vec<crate::id::SlotId> = list
                .chunks(32)
                .filter_map(crate::id::SlotId::from_slice)
                .collect();
            if list.len() % 32 != 0
                || ids.len() as i64 != batch
                || state_id(&layout, &ids).bytes()[..] != id[..]
            {
                report.problem(
                    "state",
                    blob_hex(&id),
                    "slot list does not hash to the id".into(),
                );
            }
            for (k, slot) in ids.iter().enumerate() {
                if !slots.contains(&slot.bytes()[..]) {
                    report.problem(
                        "state",
                        blob_hex(&id),
                        format!("slot {k} ({}) is missing", slot.short()),
                    );
                }
            }
            states.insert(id);
        }
        Ok(states)
    }

    /// Every object's bytes hash to its id.
    fn check_objects(&self, report: &mut VerifyReport) -> Result<IdSet> {
        let mut objects = HashSet::new();
        let mut stmt = self.conn.prepare("SELECT id, bytes FROM objects")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (id, bytes): (Vec<u8>, Vec<u8>) = (r.get(0)?, r.get(1)?);
            report.objects += 1;
            if Digest::of(&[&bytes]).0[..] != id[..] {
                report.problem(
                    "object",
                    blob_hex(&id),
                    "bytes do not hash to the id".into(),
                );
            }
            objects.insert(id);
        }
        Ok(objects)
    }

    /// Every weights file hashes to its name; temp and set-aside files are
    /// leftovers. Returns the weights ids on disk.
    fn check_weights_files(
        &self,
        report: &mut VerifyReport,
        leftovers: &mut Vec<String>,
    ) -> Result<IdSet> {
        let mut weights = HashSet::new();
        for (entry, path) in self.weights_entries()? {
            match entry {
                WeightsEntry::File(id) => {
                    report.weights_files += 1;
                    match super::files::read_whole(&path) {
                        Ok(bytes) if Digest::of(&[&bytes]) == id.0 => {}
                        Ok(_) => report.problem(
                            "weights file",
                            id.hex(),
                            "bytes do not hash to the name".into(),
                        ),
                        Err(e) => {
                            report.problem("weights file", id.hex(), format!("unreadable: {e}"))
                        }
                    }
                    weights.insert(id.bytes().to_vec());
                }
                WeightsEntry::Temp | WeightsEntry::SetAside(_) => {
                    leftovers.push(path.display().to_string())
                }
                WeightsEntry::Other => {}
            }
        }
        Ok(weights)
    }

    /// Training records name stored data and init weights; weights files
    /// nothing names (no model, event or training record) are leftovers.
    fn check_training_records(
        &self,
        report: &mut VerifyReport,
        objects: &IdSet,
        weights: &IdSet,
        leftovers: &mut Vec<String>,
    ) -> Result<()> {
        let mut named_weights: IdSet = HashSet::new();
        let mut stmt = self.conn.prepare(
            "SELECT weights FROM models UNION SELECT weights FROM events WHERE weights IS NOT NULL
             UNION SELECT file FROM checkpoints",
        )?;
        for w in stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))? {
            named_weights.insert(w?);
        }
        match self.training_refs() {
            Ok(refs) => {
                for r in refs {
                    if let Some(data) = r.data {
                        if !objects.contains(&data.bytes()[..]) {
                            report.problem(
                                "model",
                                r.model.clone(),
                                format!("training data object {} is missing", data.hex()),
                            );
                        }
                    }
                    if let Some(init) = r.init_weights {
                        if !weights.contains(&init.bytes()[..]) {
                            report.problem(
                                "model",
                                r.model.clone(),
                                format!("init weights file {} is missing", init.hex()),
                            );
                        }
                        named_weights.insert(init.bytes().to_vec());
                    }
                }
            }
            Err(e) => report.problem("model", "(training record)".into(), e.to_string()),
        }
        for w in weights {
            if !named_weights.contains(w) {
                leftovers.push(
                    self.weights_dir()
                        .join(format!("{}.safetensors", blob_hex(w)))
                        .display()
                        .to_string(),
                );
            }
        }
        Ok(())
    }

    /// Every model's weights file exists.
    fn check_models(&self, report: &mut VerifyReport, weights: &IdSet) -> Result<()> {
        let mut stmt = self.conn.prepare("SELECT name, weights FROM models")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (name, w): (String, Vec<u8>) = (r.get(0)?, r.get(1)?);
            if !weights.contains(&w) {
                report.problem(
                    "model",
                    name,
                    format!("weights file {} is missing", blob_hex(&w)),
                );
            }
        }
        Ok(())
    }

    /// Every tag names a stored state.
    fn check_tags(&self, report: &mut VerifyReport, states: &IdSet) -> Result<()> {
        let mut stmt = self.conn.prepare("SELECT name, state FROM tags")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (name, state): (String, Vec<u8>) = (r.get(0)?, r.get(1)?);
            report.tags += 1;
            if !states.contains(&state) {
                report.problem(
                    "tag",
                    name,
                    format!("points at missing state {}", blob_hex(&state)),
                );
            }
        }
        Ok(())
    }

    /// Every stream is at a stored state.
    fn check_streams(&self, report: &mut VerifyReport, states: &IdSet) -> Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT m.name, s.name, s.state FROM streams s LEFT JOIN models m ON m.id = s.model",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (model, name, state): (Option<String>, String, Vec<u8>) =
                (r.get(0)?, r.get(1)?, r.get(2)?);
            report.streams += 1;
            let label = format!("{}/{name}", model.unwrap_or_else(|| "?".into()));
            if !states.contains(&state) {
                report.problem(
                    "stream",
                    label,
                    format!("points at missing state {}", blob_hex(&state)),
                );
            }
        }
        Ok(())
    }

    /// Every unfinished training run's checkpoint files and recorded states
    /// are stored (the files were re-hashed with every weights file).
    fn check_runs(&self, report: &mut VerifyReport, states: &IdSet, weights: &IdSet) -> Result<()> {
        for run in self.list_runs()? {
            for c in self.checkpoints(&run.name)? {
                if !weights.contains(&c.file.bytes()[..]) {
                    report.problem(
                        "run",
                        run.name.clone(),
                        format!(
                            "the checkpoint file {} of epoch {} batch {} is missing",
                            c.file.hex(),
                            c.epoch + 1,
                            c.batch
                        ),
                    );
                }
            }
            let mut stmt = self
                .conn
                .prepare("SELECT position, state FROM run_states WHERE run = ?1")?;
            let mut rows = stmt.query([&run.name])?;
            while let Some(r) = rows.next()? {
                let (position, state): (i64, Vec<u8>) = (r.get(0)?, r.get(1)?);
                if !states.contains(&state) {
                    report.problem(
                        "run",
                        run.name.clone(),
                        format!(
                            "recorded state {position} ({}) is missing",
                            blob_hex(&state)
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// Every event's weights, states and objects are stored.
    fn check_events(
        &self,
        report: &mut VerifyReport,
        weights: &IdSet,
        states: &IdSet,
        objects: &IdSet,
    ) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, weights, state_before, state_after, input, output FROM events")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            report.events += 1;
            let id: i64 = r.get(0)?;
            let refs: [(&str, Option<Vec<u8>>, &IdSet); 5] = [
                ("weights file", r.get(1)?, weights),
                ("state_before", r.get(2)?, states),
                ("state_after", r.get(3)?, states),
                ("input object", r.get(4)?, objects),
                ("output object", r.get(5)?, objects),
            ];
            for (what, value, set) in refs {
                if let Some(v) = value {
                    if !set.contains(&v) {
                        report.problem(
                            "event",
                            id.to_string(),
                            format!("its {what} {} is missing", blob_hex(&v)),
                        );
                    }
                }
            }
        }
        Ok(())
    }
}
