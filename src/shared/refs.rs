//! Refs and the journal on the shared store: reading them, and publishing
//! a push in one transaction (events, models, tags, streams), with every
//! ref moved by compare-and-set against what the push read before it sent
//! anything.

use std::collections::{HashMap, HashSet};

use anyhow::{anyhow, Result};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::Transaction;

use super::content::{count_missing, Table};
use super::gc::unmark;
use super::SharedStore;
use crate::store::{now_ms, PortableEvent};

#[derive(Debug, Clone)]
pub struct RemoteTag {
    pub name: String,
    pub state: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct RemoteStream {
    pub model: String,
    pub name: String,
    pub state: Vec<u8>,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct RemoteModel {
    pub name: String,
    pub weights: Vec<u8>,
    pub config: String,
    pub training: Option<String>,
    /// When the model was first registered, in the store it came from
    /// (`audit --train` matches its training events by it).
    pub created_at: i64,
}

/// A stream move to publish: from the state the push saw (None: the
/// stream did not exist) to the new one.
#[derive(Debug, Clone)]
pub struct StreamMove {
    pub model: String,
    pub name: String,
    pub expected: Option<Vec<u8>>,
    pub state: Vec<u8>,
}

/// Everything a push publishes in its last transaction.
pub struct Publication<'a> {
    pub origin: [u8; 16],
    pub events: &'a [PortableEvent],
    pub models: &'a [RemoteModel],
    /// Replace a model of the same name with other weights.
    pub replace_models: bool,
    pub tags: &'a [RemoteTag],
    /// Move tags that name another state.
    pub move_tags: bool,
    pub streams: &'a [StreamMove],
    /// The slots and states the push relies on (sent, or found there):
    /// unmarked for gc and checked present before anything names them.
    pub slots: &'a [&'a [u8]],
    pub states: &'a [&'a [u8]],
}

/// What publishing changed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Published {
    pub events: u64,
    pub models: u64,
    pub tags: u64,
}

impl SharedStore {
    pub fn tags(&mut self) -> Result<Vec<RemoteTag>> {
        let rows = self
            .client
            .query("SELECT name, state FROM tags ORDER BY name", &[])
            .map_err(|e| self.failed("reading tags", e))?;
        Ok(rows
            .iter()
            .map(|r| RemoteTag {
                name: r.get(0),
                state: r.get(1),
            })
            .collect())
    }

    /// Every tag with the state it names and when it was set, in natural
    /// order (`s2` before `s10`), as a local store lists them.
    pub fn tag_records(&mut self) -> Result<Vec<crate::store::TagRecord>> {
        let rows = self
            .client
            .query("SELECT name, state, updated_at FROM tags", &[])
            .map_err(|e| self.failed("reading tags", e))?;
        let mut tags: Vec<crate::store::TagRecord> = rows
            .iter()
            .filter_map(|r| {
                Some(crate::store::TagRecord {
                    name: r.get(0),
                    state: crate::id::StateId::from_slice(r.get(1))?,
                    updated_at: r.get(2),
                })
            })
            .collect();
        tags.sort_by(|a, b| crate::ops::refs::natural_cmp(&a.name, &b.name));
        Ok(tags)
    }

    /// The names of the tags that name `state`, in name order (as a local
    /// store's `show` lists them).
    pub fn tags_of(&mut self, state: &crate::id::StateId) -> Result<Vec<String>> {
        let rows = self
            .client
            .query(
                "SELECT name FROM tags WHERE state = $1",
                &[&&state.bytes()[..]],
            )
            .map_err(|e| self.failed("reading tags", e))?;
        let mut names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        names.sort();
        Ok(names)
    }

    /// The tags with these names that the shared store has.
    pub fn tags_named(&mut self, names: &[&str]) -> Result<Vec<RemoteTag>> {
        let mut found = Vec::new();
        for chunk in names.chunks(8192) {
            let rows = self
                .client
                .query(
                    "SELECT name, state FROM tags WHERE name = ANY($1)",
                    &[&chunk],
                )
                .map_err(|e| self.failed("reading tags", e))?;
            found.extend(rows.iter().map(|r| RemoteTag {
                name: r.get(0),
                state: r.get(1),
            }));
        }
        Ok(found)
    }

    /// For each event, whether the shared store lacks it (by origin and
    /// number).
    pub fn missing_events(&mut self, events: &[PortableEvent]) -> Result<Vec<bool>> {
        let mut by_origin: HashMap<[u8; 16], Vec<i64>> = HashMap::new();
        for e in events {
            by_origin.entry(e.origin).or_default().push(e.origin_event);
        }
        let mut present: HashSet<([u8; 16], i64)> = HashSet::new();
        for (origin, numbers) in &by_origin {
            for chunk in numbers.chunks(65536) {
                let rows = self
                    .client
                    .query(
                        "SELECT origin_event FROM events WHERE origin = $1 AND origin_event = ANY($2)",
                        &[&&origin[..], &chunk],
                    )
                    .map_err(|e| self.failed("asking which events are missing", e))?;
                present.extend(rows.iter().map(|r| (*origin, r.get::<_, i64>(0))));
            }
        }
        Ok(events
            .iter()
            .map(|e| !present.contains(&(e.origin, e.origin_event)))
            .collect())
    }

    pub fn streams(&mut self) -> Result<Vec<RemoteStream>> {
        let rows = self
            .client
            .query(
                "SELECT model, name, state, updated_at FROM streams ORDER BY model, name",
                &[],
            )
            .map_err(|e| self.failed("reading streams", e))?;
        Ok(rows
            .iter()
            .map(|r| RemoteStream {
                model: r.get(0),
                name: r.get(1),
                state: r.get(2),
                updated_at: r.get(3),
            })
            .collect())
    }

    pub fn models(&mut self) -> Result<Vec<RemoteModel>> {
        let rows = self
            .client
            .query(
                "SELECT name, weights, config, training, created_at FROM models ORDER BY name",
                &[],
            )
            .map_err(|e| self.failed("reading models", e))?;
        Ok(rows
            .iter()
            .map(|r| RemoteModel {
                name: r.get(0),
                weights: r.get(1),
                config: r.get(2),
                training: r.get(3),
                created_at: r.get(4),
            })
            .collect())
    }

    /// The journal in the order the shared store received it.
    pub fn events(&mut self) -> Result<Vec<PortableEvent>> {
        let rows = self
            .client
            .query(
                "SELECT origin, origin_event, kind, at, model_name, weights, stream, moved_stream, \
                        state_before, state_after, input, output, tag, detail FROM events ORDER BY id",
                &[],
            )
            .map_err(|e| self.failed("reading the journal", e))?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(PortableEvent {
                    origin: r.get::<_, &[u8]>(0).try_into().ok()?,
                    origin_event: r.get(1),
                    kind: r.get(2),
                    at: r.get(3),
                    model_name: r.get(4),
                    weights: r.get(5),
                    stream: r.get(6),
                    moved_stream: r.get(7),
                    state_before: r.get(8),
                    state_after: r.get(9),
                    input: r.get(10),
                    output: r.get(11),
                    tag: r.get(12),
                    detail: r.get(13),
                })
            })
            .collect())
    }

    /// Publishes a push: all of it lands, or none. A ref that someone else
    /// moved since the push read it fails the whole transaction.
    pub fn publish(&mut self, p: &Publication) -> Result<Published> {
        let shown = self.shown.clone();
        let explain = |e| super::connect::explain(&shown, "publishing the push", &e);
        let mut tx = self.client.transaction().map_err(explain)?;
        let now = now_ms();
        note_origin(&mut tx, &p.origin, now).map_err(explain)?;
        unmark(&mut tx, p.slots, p.states).map_err(explain)?;
        for (table, ids) in [(Table::Slots, p.slots), (Table::States, p.states)] {
            let missing = count_missing(&mut tx, table, ids).map_err(explain)?;
            if missing > 0 {
                return Err(anyhow!("{missing} {} this push sent were removed by gc on {shown} while it ran (it took longer than gc's grace period); nothing was published; push again", table.plural()));
            }
        }
        let events = copy_events(&mut tx, p.events).map_err(explain)?;
        let models = publish_models(&mut tx, p, &shown)?;
        let tags = publish_tags(&mut tx, p, now, &shown)?;
        publish_streams(&mut tx, p.streams, now, &shown)?;
        tx.commit().map_err(explain)?;
        Ok(Published {
            events,
            models,
            tags,
        })
    }
}

/// Records that the store (or direct writer) `origin` wrote just now.
pub(super) fn note_origin(
    tx: &mut Transaction,
    origin: &[u8; 16],
    now: i64,
) -> Result<u64, postgres::Error> {
    tx.execute(
        "INSERT INTO origins (id, first_push, last_push) VALUES ($1, $2, $2) \
         ON CONFLICT (id) DO UPDATE SET last_push = excluded.last_push",
        &[&&origin[..], &now],
    )
}

pub(super) fn copy_events(
    tx: &mut Transaction,
    events: &[PortableEvent],
) -> Result<u64, postgres::Error> {
    const COLUMNS: &str =
        "origin, origin_event, kind, at, model_name, weights, stream, moved_stream, \
                           state_before, state_after, input, output, tag, detail";
    // Without the serial id (LIKE would copy its NOT NULL, not its default).
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS incoming_events ON COMMIT DELETE ROWS AS SELECT {COLUMNS} FROM events WITH NO DATA"
    ))?;
    let sink = tx.copy_in(&format!(
        "COPY incoming_events ({COLUMNS}) FROM STDIN (FORMAT binary)"
    ))?;
    let types = [
        Type::BYTEA,
        Type::INT8,
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::BYTEA,
        Type::TEXT,
        Type::BOOL,
        Type::BYTEA,
        Type::BYTEA,
        Type::BYTEA,
        Type::BYTEA,
        Type::TEXT,
        Type::TEXT,
    ];
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    for e in events {
        writer.write(&[
            &&e.origin[..],
            &e.origin_event,
            &e.kind,
            &e.at,
            &e.model_name,
            &e.weights,
            &e.stream,
            &e.moved_stream,
            &e.state_before,
            &e.state_after,
            &e.input,
            &e.output,
            &e.tag,
            &e.detail,
        ])?;
    }
    writer.finish()?;
    tx.batch_execute("ANALYZE incoming_events")?;
    // In the pushing store's order, so the shared store's numbering keeps
    // each origin's order.
    tx.execute(
        &format!(
            "INSERT INTO events ({COLUMNS}) SELECT {COLUMNS} FROM incoming_events \
             ORDER BY origin, origin_event ON CONFLICT (origin, origin_event) DO NOTHING"
        ),
        &[],
    )
}

fn publish_models(tx: &mut Transaction, p: &Publication, shown: &str) -> Result<u64> {
    let explain = |e| super::connect::explain(shown, "publishing models", &e);
    let mut changed = 0;
    for m in p.models {
        let inserted = tx
            .execute(
                "INSERT INTO models (name, weights, config, training, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (name) DO NOTHING",
                &[&m.name, &m.weights, &m.config, &m.training, &m.created_at],
            )
            .map_err(explain)?;
        if inserted == 1 {
            changed += 1;
            continue;
        }
        let replaced = tx
            .execute(
                "UPDATE models SET weights = $2, config = $3, training = $4, created_at = $6 \
                 WHERE name = $1 AND weights <> $2 AND $5",
                &[
                    &m.name,
                    &m.weights,
                    &m.config,
                    &m.training,
                    &p.replace_models,
                    &m.created_at,
                ],
            )
            .map_err(explain)?;
        changed += replaced;
        let differs = tx
            .query_opt(
                "SELECT 1 FROM models WHERE name = $1 AND weights <> $2",
                &[&m.name, &m.weights],
            )
            .map_err(explain)?;
        if differs.is_some() {
            return Err(anyhow!("model {} on {shown} has other weights than here; nothing was pushed; pull it first, or replace it with --force", m.name));
        }
    }
    Ok(changed)
}

fn publish_tags(tx: &mut Transaction, p: &Publication, now: i64, shown: &str) -> Result<u64> {
    let upserted = upsert_tags(tx, p.tags, p.move_tags, now, shown)?;
    if let Some(name) = upserted.clash {
        return Err(anyhow!("tag {name} on {shown} names another state than here; nothing was pushed; pull first, or move it with --force"));
    }
    Ok(upserted.changed)
}

/// What `upsert_tags` did.
pub(super) struct TagUpsert {
    /// Tags inserted or moved.
    pub changed: u64,
    /// Without `move_tags`: the first (by name) tag that names another
    /// state; the caller refuses, and the transaction rolls back.
    pub clash: Option<String>,
}

/// Creates the tags that are absent and, with `move_tags`, moves those
/// that name another state, in one statement fed by binary COPY.
pub(super) fn upsert_tags(
    tx: &mut Transaction,
    tags: &[RemoteTag],
    move_tags: bool,
    now: i64,
    shown: &str,
) -> Result<TagUpsert> {
    let explain = |e| super::connect::explain(shown, "writing tags", &e);
    tx.batch_execute(
        "CREATE TEMP TABLE IF NOT EXISTS incoming_tags (LIKE tags) ON COMMIT DELETE ROWS",
    )
    .map_err(explain)?;
    let sink = tx
        .copy_in("COPY incoming_tags (name, state, updated_at) FROM STDIN (FORMAT binary)")
        .map_err(explain)?;
    let mut writer = BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::BYTEA, Type::INT8]);
    for t in tags {
        writer.write(&[&t.name, &t.state, &now]).map_err(explain)?;
    }
    writer.finish().map_err(explain)?;
    // A temporary table has no statistics until analyzed.
    tx.batch_execute("ANALYZE incoming_tags").map_err(explain)?;
    // One pass: new tags are inserted; a tag that names another state is
    // moved when asked, and otherwise returned unchanged as a clash.
    // `xmax = 0` marks an inserted row.
    let rows = tx
        .query(
            "INSERT INTO tags (name, state, updated_at) SELECT name, state, updated_at FROM incoming_tags \
             ON CONFLICT (name) DO UPDATE \
             SET state = CASE WHEN $1 THEN excluded.state ELSE tags.state END, \
                 updated_at = CASE WHEN $1 THEN excluded.updated_at ELSE tags.updated_at END \
             WHERE tags.state <> excluded.state \
             RETURNING name, xmax = 0",
            &[&move_tags],
        )
        .map_err(explain)?;
    let clash = match move_tags {
        true => None,
        false => rows
            .iter()
            .filter(|r| !r.get::<_, bool>(1))
            .map(|r| r.get::<_, String>(0))
            .min(),
    };
    Ok(TagUpsert {
        changed: rows.len() as u64,
        clash,
    })
}

/// Another writer moved a stream between the push's read and its publish
/// (the compare-and-set found another state): the whole publication rolled
/// back, and a push that reads again may succeed (`push --retry`).
#[derive(Debug)]
pub struct StreamMovedDuringPush(pub String);

impl std::fmt::Display for StreamMovedDuringPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StreamMovedDuringPush {}

fn publish_streams(
    tx: &mut Transaction,
    moves: &[StreamMove],
    now: i64,
    shown: &str,
) -> Result<()> {
    let explain = |e| super::connect::explain(shown, "publishing streams", &e);
    for m in moves {
        let moved = match &m.expected {
            None => tx.execute(
                "INSERT INTO streams (model, name, state, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&m.model, &m.name, &m.state, &now],
            ),
            Some(expected) => tx.execute(
                "UPDATE streams SET state = $3, updated_at = $4 WHERE model = $1 AND name = $2 AND state = $5",
                &[&m.model, &m.name, &m.state, &now, expected],
            ),
        }
        .map_err(explain)?;
        if moved != 1 {
            return Err(StreamMovedDuringPush(format!(
                "stream {}/{} on {shown} moved while this push ran; nothing was published; run the push again, or push --retry to do so at once",
                m.model, m.name
            ))
            .into());
        }
    }
    Ok(())
}
