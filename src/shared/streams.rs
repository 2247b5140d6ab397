//! Streams on the shared store: where a model's stream stands, its names,
//! the states it moved through, and a move by compare-and-set inside a
//! direct write, so that of two writers that computed from the same HEAD
//! one wins and the other is told the stream moved.

use anyhow::{anyhow, Result};
use postgres::Transaction;

use super::SharedStore;
use crate::id::StateId;

/// A stream move a direct write makes.
pub struct DirectStreamMove {
    /// The model's name (the shared store keys streams by it).
    pub model: String,
    pub name: String,
    /// `None`: wherever the stream is. `Some(None)`: it must not exist yet.
    /// `Some(Some(id))`: it must be at `id`.
    pub expect: Option<Option<StateId>>,
    pub state: StateId,
}

/// The stream was not where the writer expected; nothing was written.
#[derive(Debug, thiserror::Error)]
#[error("the stream is at another state than expected")]
pub struct StreamNotAsExpected {
    pub found: Option<StateId>,
}

impl SharedStore {
    /// Where a model's stream stands, if the shared store has it.
    pub fn stream_head(&mut self, model: &str, stream: &str) -> Result<Option<StateId>> {
        let row = self
            .client
            .query_opt(
                "SELECT state FROM streams WHERE model = $1 AND name = $2",
                &[&model, &stream],
            )
            .map_err(|e| self.failed("reading a stream", e))?;
        row.map(|r| self.state_id(r.get(0))).transpose()
    }

    /// The names of a model's streams.
    pub fn stream_names(&mut self, model: &str) -> Result<Vec<String>> {
        let rows = self
            .client
            .query(
                "SELECT name FROM streams WHERE model = $1 ORDER BY name",
                &[&model],
            )
            .map_err(|e| self.failed("reading streams", e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// The state a stream was at `back` moves before its newest (0: the
    /// state its newest move set), from the journal; `None` when it has
    /// fewer moves. Also returns how many moves it has.
    pub fn stream_move(
        &mut self,
        model: &str,
        stream: &str,
        back: u64,
    ) -> Result<(Option<StateId>, i64)> {
        let offset = back.min(i64::MAX as u64) as i64;
        let row = self
            .client
            .query_one(
                "SELECT (SELECT state_after FROM events \
                         WHERE model_name = $1 AND stream = $2 AND moved_stream \
                         ORDER BY id DESC OFFSET $3 LIMIT 1), \
                        (SELECT count(*) FROM events \
                         WHERE model_name = $1 AND stream = $2 AND moved_stream)",
                &[&model, &stream, &offset],
            )
            .map_err(|e| self.failed("reading a stream's journal", e))?;
        let state = row
            .get::<_, Option<&[u8]>>(0)
            .map(|bytes| self.state_id(bytes))
            .transpose()?;
        Ok((state, row.get(1)))
    }

    fn state_id(&self, bytes: &[u8]) -> Result<StateId> {
        StateId::from_slice(bytes).ok_or_else(|| {
            anyhow!(
                "a stream on {} names no 32-byte state id: the shared store is damaged",
                self.shown
            )
        })
    }
}

/// Moves the stream as `change` says, inside the write's transaction;
/// returns where it was (locked until the transaction ends), or the error
/// [`StreamNotAsExpected`] when it is not where the writer expected.
pub(super) fn move_stream(
    tx: &mut Transaction,
    change: &DirectStreamMove,
    now: i64,
    explain: &dyn Fn(postgres::Error) -> anyhow::Error,
) -> Result<Option<StateId>> {
    let state = &change.state.bytes()[..];
    // Two rounds at most: a stream another writer created between the
    // read and the insert is read again, locked.
    for _ in 0..2 {
        let current = tx
            .query_opt(
                "SELECT state FROM streams WHERE model = $1 AND name = $2 FOR UPDATE",
                &[&change.model, &change.name],
            )
            .map_err(explain)?
            .map(|r| StateId::from_slice(r.get(0)));
        let found = match current {
            Some(Some(id)) => Some(id),
            Some(None) => {
                return Err(anyhow!(
                    "stream {}/{} names no 32-byte state id: the shared store is damaged",
                    change.model,
                    change.name
                ))
            }
            None => None,
        };
        if change.expect.is_some_and(|expected| expected != found) {
            return Err(StreamNotAsExpected { found }.into());
        }
        if found.is_some() {
            tx.execute(
                "UPDATE streams SET state = $3, updated_at = $4 WHERE model = $1 AND name = $2",
                &[&change.model, &change.name, &state, &now],
            )
            .map_err(explain)?;
            return Ok(found);
        }
        let inserted = tx
            .execute(
                "INSERT INTO streams (model, name, state, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
                &[&change.model, &change.name, &state, &now],
            )
            .map_err(explain)?;
        if inserted == 1 {
            return Ok(None);
        }
    }
    Err(anyhow!(
        "stream {}/{} kept changing while this write ran; nothing was written; run it again",
        change.model,
        change.name
    ))
}
