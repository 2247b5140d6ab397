//! The shared store's journal as `log` shows it: newest first, filtered
//! on the server, each event with the store it came from and its number
//! there.

use anyhow::Result;

use super::SharedStore;
use crate::id::{ObjectId, StateId, WeightsId};
use crate::store::EventRecord;

/// Which events to read; every field narrows.
#[derive(Debug, Default)]
pub struct SharedEventFilter<'a> {
    /// One model's stream, by the model's name.
    pub stream: Option<(&'a str, &'a str)>,
    pub kind: Option<&'a str>,
    /// Only events at or after this time (ms since the epoch).
    pub since: Option<i64>,
    pub limit: Option<usize>,
}

impl SharedStore {
    /// Events newest first, as the filter says.
    pub fn journal(&mut self, filter: &SharedEventFilter) -> Result<Vec<EventRecord>> {
        let (model, stream) = filter.stream.unzip();
        let limit = filter.limit.map(|n| n.min(i64::MAX as usize) as i64);
        let rows = self
            .client
            .query(
                "SELECT id, kind, at, model_name, weights, stream, moved_stream, state_before, \
                        state_after, input, output, tag, detail, origin, origin_event \
                 FROM events \
                 WHERE ($1::text IS NULL OR model_name = $1) AND ($2::text IS NULL OR stream = $2) \
                   AND ($3::text IS NULL OR kind = $3) AND ($4::bigint IS NULL OR at >= $4) \
                 ORDER BY id DESC LIMIT $5",
                &[&model, &stream, &filter.kind, &filter.since, &limit],
            )
            .map_err(|e| self.failed("reading the journal", e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let id = |i: usize| r.get::<_, Option<&[u8]>>(i);
                EventRecord {
                    id: r.get(0),
                    kind: r.get(1),
                    at: r.get(2),
                    model: None,
                    model_name: r.get(3),
                    weights: id(4).and_then(WeightsId::from_slice),
                    stream: r.get(5),
                    moved_stream: r.get(6),
                    state_before: id(7).and_then(StateId::from_slice),
                    state_after: id(8).and_then(StateId::from_slice),
                    input: id(9).and_then(ObjectId::from_slice),
                    output: id(10).and_then(ObjectId::from_slice),
                    tag: r.get(11),
                    detail: r.get(12),
                    origin: id(13)
                        .and_then(|o| o.try_into().ok())
                        .map(|o| (o, r.get(14))),
                }
            })
            .collect())
    }
}
