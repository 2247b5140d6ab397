//! The journal as users read it: a stream's history (or the whole
//! journal), newest first, filtered by kind, time and count.

use anyhow::Result;
use serde::ser::SerializeStruct;
use serde::Serialize;

use super::models::Model;
use super::streams;
use crate::id::StateId;
use crate::shared::{SharedEventFilter, SharedStore};
use crate::store::{EventFilter, EventRecord, Store};

/// Which events to read.
pub struct LogRequest<'a> {
    /// One model's stream; `None` reads every model and stream.
    pub scope: Option<(&'a Model, &'a str)>,
    pub kind: Option<String>,
    /// Only events at or after this time (ms since the epoch).
    pub since: Option<i64>,
    pub limit: Option<usize>,
}

/// The events found (the `log` JSON).
#[derive(Debug, Clone, Serialize)]
pub struct LogReport {
    pub model: Option<String>,
    pub stream: Option<String>,
    /// The stream's state now.
    pub head: Option<StateId>,
    pub events: Vec<EventRecord>,
}

pub fn run(store: &Store, req: &LogRequest) -> Result<LogReport> {
    store.read(|store| -> Result<_> {
        if let Some((model, stream)) = req.scope {
            streams::check_exists(store, model, stream)?;
        }
        let events = store.events(&EventFilter {
            model: req.scope.map(|(m, _)| m.record.id),
            stream: req.scope.map(|(_, s)| s.to_string()),
            kind: req.kind.clone(),
            since: req.since,
            limit: req.limit,
        })?;
        let head = match req.scope {
            Some((model, stream)) => streams::head(store, model, stream)?,
            None => None,
        };
        Ok(LogReport {
            model: req.scope.map(|(m, _)| m.record.name.clone()),
            stream: req.scope.map(|(_, s)| s.to_string()),
            head,
            events,
        })
    })
}

/// Which part of a shared store's journal to read: the whole journal, or
/// with `scope` one model's stream (by the model's name).
pub struct SharedLogRequest<'a> {
    pub scope: Option<(&'a str, &'a str)>,
    pub kind: Option<String>,
    pub since: Option<i64>,
    pub limit: Option<usize>,
}

/// `log` on a shared store: the same report, each event with its origin.
pub fn run_on_shared(shared: &mut SharedStore, req: &SharedLogRequest) -> Result<LogReport> {
    let head = match req.scope {
        Some((model, stream)) => {
            let head = shared.stream_head(model, stream)?;
            if head.is_none() {
                anyhow::bail!(
                    "{} has no stream '{stream}' of model '{model}'; without --model, log shows its whole journal",
                    shared.shown()
                );
            }
            head
        }
        None => None,
    };
    let events = shared.journal(&SharedEventFilter {
        stream: req.scope,
        kind: req.kind.as_deref(),
        since: req.since,
        limit: req.limit,
    })?;
    Ok(LogReport {
        model: req.scope.map(|(m, _)| m.to_string()),
        stream: req.scope.map(|(_, s)| s.to_string()),
        head,
        events,
    })
}

/// One event as the JSON contract gives it: `event`, `kind`, `at`,
/// `model` (its name), `stream`, the ids, `tag`, `detail` as JSON, and for
/// an event another store wrote, `origin`: that store's id and the
/// event's number there.
impl Serialize for EventRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let detail: serde_json::Value = serde_json::from_str(&self.detail).unwrap_or_default();
        let mut e = s.serialize_struct("Event", 11)?;
        e.serialize_field("event", &self.id)?;
        e.serialize_field("kind", &self.kind)?;
        e.serialize_field("at", &self.at)?;
        e.serialize_field("model", &self.model_name)?;
        e.serialize_field("stream", &self.stream)?;
        e.serialize_field("state_before", &self.state_before)?;
        e.serialize_field("state_after", &self.state_after)?;
        e.serialize_field("input", &self.input)?;
        e.serialize_field("output", &self.output)?;
        e.serialize_field("tag", &self.tag)?;
        e.serialize_field("detail", &detail)?;
        if let Some((store, number)) = &self.origin {
            e.serialize_field(
                "origin",
                &serde_json::json!({"store": hex::encode(store), "event": number}),
            )?;
        }
        e.end()
    }
}
