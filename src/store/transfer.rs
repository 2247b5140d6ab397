//! Raw content for push and pull: what this store holds, listed by id, and
//! content from another store put in as it is. Every row put in is checked
//! against its id first (a slot's bytes, a state's slot list, an object's
//! bytes), so nothing a remote sends can name content it is not.

use rusqlite::{params, OptionalExtension};

use super::{now_ms, ModelRecord, Result, Store, StoreError};
use crate::id::{Digest, ObjectId, SlotId, StateId, WeightsId};
use crate::state::{slot_id, state_id};

/// An event as it travels between stores: where it was first written and
/// its number there, and everything it records, the model by name.
#[derive(Debug, Clone)]
pub struct PortableEvent {
    pub origin: [u8; 16],
    pub origin_event: i64,
    pub kind: String,
    pub at: i64,
    pub model_name: Option<String>,
    pub weights: Option<Vec<u8>>,
    pub stream: Option<String>,
    pub moved_stream: bool,
    pub state_before: Option<Vec<u8>>,
    pub state_after: Option<Vec<u8>>,
    pub input: Option<Vec<u8>>,
    pub output: Option<Vec<u8>>,
    pub tag: Option<String>,
    pub detail: String,
}

fn ids<T>(store: &Store, sql: &str, make: fn(&[u8]) -> Option<T>) -> Result<Vec<T>> {
    let mut statement = store.conn.prepare(sql)?;
    let rows = statement.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
    let mut out = Vec::new();
    for row in rows {
        out.extend(make(&row?));
    }
    Ok(out)
}

impl Store {
    /// This store's own id (made by schema 11), which names it as the
    /// origin of its events in a shared store.
    pub fn store_identity(&self) -> Result<[u8; 16]> {
        let id: Vec<u8> =
            self.conn
                .query_row("SELECT id FROM store_identity LIMIT 1", [], |r| r.get(0))?;
        id.try_into().map_err(|_| StoreError::HashMismatch {
            kind: "store identity",
            id: "store_identity".into(),
        })
    }

    pub fn all_slot_ids(&self) -> Result<Vec<SlotId>> {
        ids(
            self,
            "SELECT id FROM slots ORDER BY rowid",
            SlotId::from_slice,
        )
    }

    pub fn all_state_ids(&self) -> Result<Vec<StateId>> {
        ids(self, "SELECT id FROM states", StateId::from_slice)
    }

    pub fn all_object_ids(&self) -> Result<Vec<ObjectId>> {
        ids(self, "SELECT id FROM objects", ObjectId::from_slice)
    }

    /// A slot's layout and bytes (from its row or its pack), re-hashed.
    pub fn slot_content(&self, id: &SlotId) -> Result<(String, Vec<u8>)> {
        let layout: Option<String> = self
            .conn
            .prepare_cached("SELECT layout FROM slots WHERE id = ?1")?
            .query_row([&id.bytes()[..]], |r| r.get(0))
            .optional()?;
        let layout = layout.ok_or_else(|| StoreError::NotFound {
            kind: "slot",
            name: id.hex(),
            hint: "the store is damaged; run `statectl verify`".into(),
        })?;
        let bytes = self.checked_slot_bytes(id, &layout, self.slot_row(id)?)?;
        Ok((layout, bytes))
    }

    pub fn has_slot(&self, id: &SlotId) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM slots WHERE id = ?1")?
            .query_row([&id.bytes()[..]], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Puts in a slot from another store; refused unless its bytes hash to
    /// its id.
    pub fn put_foreign_slot(&self, id: &SlotId, layout: &str, bytes: &[u8]) -> Result<()> {
        if slot_id(layout, bytes) != *id {
            return Err(StoreError::HashMismatch {
                kind: "slot",
                id: id.hex(),
            });
        }
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO slots (id, layout, bytes) VALUES (?1, ?2, ?3)")?
            .execute(params![&id.bytes()[..], layout, bytes])?;
        Ok(())
    }

    /// Puts in a state from another store; refused unless its slot list
    /// hashes to its id and every slot is here.
    pub fn put_foreign_state(&self, id: &StateId, layout: &str, slots: &[SlotId]) -> Result<()> {
        if state_id(layout, slots) != *id {
            return Err(StoreError::HashMismatch {
                kind: "state",
                id: id.hex(),
            });
        }
        for slot in slots {
            if !self.has_slot(slot)? {
                return Err(StoreError::NotFound {
                    kind: "slot",
                    name: slot.hex(),
                    hint: format!("state {} names it; it was not sent", id.hex()),
                });
            }
        }
        self.put_slot_list(layout, slots)?;
        Ok(())
    }

    /// Puts in an object from another store under the id it claims.
    pub fn put_foreign_object(&self, id: &ObjectId, bytes: &[u8]) -> Result<()> {
        if Digest::of(&[bytes]) != id.0 {
            return Err(StoreError::HashMismatch {
                kind: "object",
                id: id.hex(),
            });
        }
        self.put_object(bytes)?;
        Ok(())
    }

    /// Every event of the journal as it travels: the ones this store wrote
    /// under its own id, the pulled ones under their origin.
    pub fn portable_events(&self) -> Result<Vec<PortableEvent>> {
        let own = self.store_identity()?;
        let mut statement = self.conn.prepare(
            "SELECT origin, coalesce(origin_event, id), kind, at, model_name, weights, stream, moved_stream, \
                    state_before, state_after, input, output, tag, detail FROM events ORDER BY id",
        )?;
        let rows = statement.query_map([], |r| {
            let origin: Option<Vec<u8>> = r.get(0)?;
            Ok(PortableEvent {
                origin: origin.and_then(|o| o.try_into().ok()).unwrap_or(own),
                origin_event: r.get(1)?,
                kind: r.get(2)?,
                at: r.get(3)?,
                model_name: r.get(4)?,
                weights: r.get(5)?,
                stream: r.get(6)?,
                moved_stream: r.get::<_, i64>(7)? != 0,
                state_before: r.get(8)?,
                state_after: r.get(9)?,
                input: r.get(10)?,
                output: r.get(11)?,
                tag: r.get(12)?,
                detail: r.get(13)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Appends an event from another store, keeping its origin and number;
    /// an event already here (by origin and number, or written here) is
    /// skipped. `model` is this store's id of the model it names, if any.
    /// True when it was added.
    pub fn put_foreign_event(&self, e: &PortableEvent, model: Option<i64>) -> Result<bool> {
        if e.origin == self.store_identity()? {
            return Ok(false);
        }
        let added = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO events (kind, at, model, model_name, weights, stream, moved_stream, \
                 state_before, state_after, input, output, tag, detail, origin, origin_event)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?
            .execute(params![
                e.kind,
                e.at,
                model,
                e.model_name,
                e.weights,
                e.stream,
                e.moved_stream as i64,
                e.state_before,
                e.state_after,
                e.input,
                e.output,
                e.tag,
                e.detail,
                &e.origin[..],
                e.origin_event,
            ])?;
        Ok(added == 1)
    }

    /// Registers a model from another store with its original
    /// registration time (`audit --train` finds its training events by
    /// it). A fresh model id, as ids are never reused.
    pub fn insert_foreign_model(
        &self,
        name: &str,
        weights: &WeightsId,
        config: &str,
        training: Option<&str>,
        created_at: i64,
    ) -> Result<ModelRecord> {
        self.conn.execute(
            "INSERT INTO models (name, weights, config, training, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, &weights.bytes()[..], config, training, created_at],
        )?;
        self.model_by_name(name)
    }

    /// Whether this store's journal ever moved `model`'s stream to `state`
    /// (so a stream now elsewhere is ahead of it: a fast-forward).
    pub fn stream_passed_through(&self, model: i64, stream: &str, state: &StateId) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT 1 FROM events WHERE model = ?1 AND stream = ?2 AND moved_stream = 1 AND state_after = ?3 LIMIT 1",
            )?
            .query_row(params![model, stream, &state.bytes()[..]], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Sets a stream to a state without an event (pull: the events that
    /// moved it come with it).
    pub fn put_stream_at(&self, model: i64, stream: &str, state: &StateId, at: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO streams (model, name, state, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (model, name) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            params![model, stream, &state.bytes()[..], at.max(now_ms())],
        )?;
        Ok(())
    }
}
