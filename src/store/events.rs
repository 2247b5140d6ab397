//! The append-only event journal: everything that made a state or moved a
//! ref. `HEAD~N` walks the events that moved a stream.

use rusqlite::{params, OptionalExtension, Row};

use super::{now_ms, Result, Store};
use crate::id::{ObjectId, StateId, WeightsId};

/// An event to append; unset fields stay NULL.
#[derive(Debug, Clone, Default)]
pub struct NewEvent {
    pub kind: &'static str,
    pub model: Option<(i64, String, WeightsId)>,
    pub stream: Option<String>,
    pub moved_stream: bool,
    pub state_before: Option<StateId>,
    pub state_after: Option<StateId>,
    pub input: Option<ObjectId>,
    pub output: Option<ObjectId>,
    pub tag: Option<String>,
    /// JSON object with the event's own details (platform, parameters).
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct EventRecord {
    pub id: i64,
    pub kind: String,
    pub at: i64,
    pub model: Option<i64>,
    pub model_name: Option<String>,
    pub weights: Option<WeightsId>,
    pub stream: Option<String>,
    pub moved_stream: bool,
    pub state_before: Option<StateId>,
    pub state_after: Option<StateId>,
    pub input: Option<ObjectId>,
    pub output: Option<ObjectId>,
    pub tag: Option<String>,
    pub detail: String,
    /// For an event written by another store (pulled, or read from a
    /// shared store): that store's id and the event's number there.
    pub origin: Option<([u8; 16], i64)>,
}

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub model: Option<i64>,
    pub stream: Option<String>,
    pub kind: Option<String>,
    /// Only events at or after this time (ms since the epoch).
    pub since: Option<i64>,
    pub limit: Option<usize>,
}

const COLUMNS: &str = "id, kind, at, model, model_name, weights, stream, moved_stream, state_before, state_after, input, output, tag, detail, origin, origin_event";

fn digest<T>(bytes: Option<Vec<u8>>, make: fn(&[u8]) -> Option<T>) -> Option<T> {
    bytes.as_deref().and_then(make)
}

fn from_row(r: &Row) -> rusqlite::Result<EventRecord> {
    Ok(EventRecord {
        id: r.get(0)?,
        kind: r.get(1)?,
        at: r.get(2)?,
        model: r.get(3)?,
        model_name: r.get(4)?,
        weights: digest(r.get(5)?, WeightsId::from_slice),
        stream: r.get(6)?,
        moved_stream: r.get::<_, i64>(7)? != 0,
        state_before: digest(r.get(8)?, StateId::from_slice),
        state_after: digest(r.get(9)?, StateId::from_slice),
        input: digest(r.get(10)?, ObjectId::from_slice),
        output: digest(r.get(11)?, ObjectId::from_slice),
        tag: r.get(12)?,
        detail: r.get(13)?,
        origin: match (r.get::<_, Option<Vec<u8>>>(14)?, r.get(15)?) {
            (Some(store), Some(number)) => store.try_into().ok().map(|s| (s, number)),
            _ => None,
        },
    })
}

fn blob<T>(id: &Option<T>, bytes: fn(&T) -> &[u8; 32]) -> Option<Vec<u8>> {
    id.as_ref().map(|v| bytes(v).to_vec())
}

impl Store {
    pub fn append_event(&self, e: &NewEvent) -> Result<i64> {
        let (model, model_name, weights) = match &e.model {
            Some((id, name, weights)) => (
                Some(*id),
                Some(name.clone()),
                Some(weights.bytes().to_vec()),
            ),
            None => (None, None, None),
        };
        self.conn
            .prepare_cached(
                "INSERT INTO events (kind, at, model, model_name, weights, stream, moved_stream, state_before, state_after, input, output, tag, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                e.kind,
                now_ms(),
                model,
                model_name,
                weights,
                e.stream,
                e.moved_stream as i64,
                blob(&e.state_before, StateId::bytes),
                blob(&e.state_after, StateId::bytes),
                blob(&e.input, ObjectId::bytes),
                blob(&e.output, ObjectId::bytes),
                e.tag,
                e.detail.to_string(),
            ])?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The state a stream was set to `back` moves ago (0 = the latest).
    /// `back` must fit SQLite's signed OFFSET; larger values find nothing.
    pub fn stream_move(&self, model: i64, stream: &str, back: u64) -> Result<Option<StateId>> {
        let Ok(back) = i64::try_from(back) else {
            return Ok(None);
        };
        let bytes: Option<Vec<u8>> = self
            .conn
            .prepare_cached(
                "SELECT state_after FROM events WHERE model = ?1 AND stream = ?2 AND moved_stream = 1
                 ORDER BY id DESC LIMIT 1 OFFSET ?3",
            )?
            .query_row(params![model, stream, back], |r| r.get(0))
            .optional()?;
        Ok(bytes.as_deref().and_then(StateId::from_slice))
    }

    pub fn stream_move_count(&self, model: i64, stream: &str) -> Result<usize> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM events WHERE model = ?1 AND stream = ?2 AND moved_stream = 1",
            params![model, stream],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }

    /// Events matching the filter, newest first.
    pub fn events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM events
             WHERE (?1 IS NULL OR model = ?1) AND (?2 IS NULL OR stream = ?2) AND (?3 IS NULL OR kind = ?3)
               AND (?5 IS NULL OR at >= ?5)
             ORDER BY id DESC LIMIT ?4"
        ))?;
        let limit = filter.limit.map(|l| l as i64).unwrap_or(-1);
        let rows = stmt.query_map(
            params![
                filter.model,
                filter.stream,
                filter.kind,
                limit,
                filter.since
            ],
            from_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn event(&self, id: i64) -> Result<Option<EventRecord>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM events WHERE id = ?1"),
                [id],
                from_row,
            )
            .optional()?)
    }

    /// The first event that produced `state`: its origin.
    pub fn origin_of(&self, state: &StateId) -> Result<Option<EventRecord>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM events WHERE state_after = ?1 ORDER BY id LIMIT 1"),
                [&state.bytes()[..]],
                from_row,
            )
            .optional()?)
    }
}
