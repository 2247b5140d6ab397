//! Content-addressed rows: slots, states (slot-id lists) and tensor
//! objects. Writes are idempotent; reads re-hash what they return.

use rusqlite::{params, OptionalExtension};

use super::{now_ms, PackedAt, Result, Store, StoreError};
use crate::id::{prefix_range, Digest, ObjectId, SlotId, StateId};
use crate::state::{slot_id, state_id, Layout, StateValue};

/// A slot's row: its bytes (empty when packed) and where its pack holds
/// them.
type SlotRow = (Vec<u8>, Option<PackedAt>);

/// What the state's own query found out about its slot, if it has one.
enum OneSlot {
    /// The slot's row (bytes, or where in a pack they are).
    Row(SlotRow),
    /// The state's row says where in a pack the slot is (a hint).
    InPack(i64, u64),
    /// Several slots, or not found by the join: look the slots up.
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StateRecord {
    pub id: StateId,
    pub layout: String,
    pub slots: Vec<SlotId>,
    pub created_at: i64,
}

fn slot_list_bytes(slots: &[SlotId]) -> Vec<u8> {
    slots
        .iter()
        .flat_map(|s| s.bytes().iter().copied())
        .collect()
}

impl Store {
    /// Stores a state's slots (each once) and its slot list.
    pub fn put_state(&self, value: &StateValue) -> Result<StateId> {
        let layout = value.layout.to_string();
        let mut insert_slot = self.conn.prepare_cached(
            "INSERT OR IGNORE INTO slots (id, layout, bytes) VALUES (?1, ?2, ?3)",
        )?;
        let mut ids = Vec::with_capacity(value.batch());
        for (id, bytes) in value.encoded_slots() {
            insert_slot.execute(params![&id.bytes()[..], layout, bytes])?;
            ids.push(id);
        }
        self.put_slot_list(&layout, &ids)
    }

    /// Stores a state made of slots already in the store: a broadcast or a
    /// re-batch writes only this list.
    pub fn put_slot_list(&self, layout: &str, slots: &[SlotId]) -> Result<StateId> {
        let id = state_id(layout, slots);
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO states (id, layout, batch, slot_ids, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                &id.bytes()[..],
                layout,
                slots.len() as i64,
                slot_list_bytes(slots),
                now_ms()
            ])?;
        Ok(id)
    }

    /// A state's row, its slot list checked against its id.
    pub fn state_record(&self, id: &StateId) -> Result<StateRecord> {
        let row = self
            .conn
            .prepare_cached("SELECT layout, batch, slot_ids, created_at FROM states WHERE id = ?1")?
            .query_row([&id.bytes()[..]], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .optional()?;
        Self::checked_record(id, row)
    }

    /// A state's record and, when it has one slot, where its bytes are, in
    /// one query (one read of the database instead of two: the common case
    /// of reading a replay buffer's states). A one-slot state that
    /// remembers its slot's place in a pack (schema 7) needs no lookup in
    /// `slots` at all; one that does not gets the slot's row joined.
    fn state_record_with_one_slot(&self, id: &StateId) -> Result<(StateRecord, OneSlot)> {
        type Row = ((String, i64, Vec<u8>, i64), OneSlot);
        let row: Option<Row> = self
            .conn
            .prepare_cached(
                "SELECT s.layout, s.batch, s.slot_ids, s.created_at, s.slot_pack, s.slot_offset, \
                        l.bytes, l.pack, l.pack_offset, l.pack_length \
                 FROM states s LEFT JOIN slots l \
                   ON l.id = CASE WHEN s.batch = 1 AND s.slot_pack IS NULL THEN s.slot_ids END \
                 WHERE s.id = ?1",
            )?
            .query_row([&id.bytes()[..]], |r| {
                let hint: (Option<i64>, Option<i64>) = (r.get(4)?, r.get(5)?);
                let bytes: Option<Vec<u8>> = r.get(6)?;
                let packed = super::packs::packed_at(r, 7)?;
                let one = match (hint, bytes) {
                    ((Some(pack), Some(offset)), _) => OneSlot::InPack(pack, offset.max(0) as u64),
                    (_, Some(bytes)) => OneSlot::Row((bytes, packed)),
                    _ => OneSlot::Unknown,
                };
                Ok(((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?), one))
            })
            .optional()?;
        let (record, slot) = match row {
            Some((record, slot)) => (Some(record), slot),
            None => (None, OneSlot::Unknown),
        };
        Ok((Self::checked_record(id, record)?, slot))
    }

    /// A state row as read, checked against its id.
    fn checked_record(
        id: &StateId,
        row: Option<(String, i64, Vec<u8>, i64)>,
    ) -> Result<StateRecord> {
        let (layout, batch, list, created_at) = row.ok_or_else(|| StoreError::NotFound {
            kind: "state",
            name: id.hex(),
            hint: "it was never stored here, or gc removed it".into(),
        })?;
        let slots: Vec<SlotId> = list.chunks(32).filter_map(SlotId::from_slice).collect();
        if list.len() % 32 != 0 || slots.len() as i64 != batch || state_id(&layout, &slots) != *id {
            return Err(StoreError::HashMismatch {
                kind: "state",
                id: id.hex(),
            });
        }
        Ok(StateRecord {
            id: *id,
            layout,
            slots,
            created_at,
        })
    }

    /// A state's numbers, every slot re-hashed.
    pub fn load_state(&self, id: &StateId) -> Result<StateValue> {
        let (record, one_slot) = self.state_record_with_one_slot(id)?;
        let layout: Layout = record
            .layout
            .parse()
            .map_err(|_| StoreError::HashMismatch {
                kind: "state",
                id: id.hex(),
            })?;
        let mut slots: Vec<Vec<f32>> = Vec::with_capacity(record.slots.len());
        let mut one_slot = match one_slot {
            OneSlot::Row(row) => Some(row),
            OneSlot::InPack(pack, offset) if record.slots.len() == 1 => {
                let at = PackedAt {
                    pack,
                    offset,
                    length: (layout.slot_len() * 4) as u64,
                };
                // A hint that does not hash to the slot (stale, or the
                // pack is gone) falls back to the slot's row.
                let hinted = self
                    .read_packed(at)
                    .ok()
                    .filter(|bytes| slot_id(&record.layout, bytes) == record.slots[0]);
                if let Some(bytes) = hinted {
                    slots.push(StateValue::slot_from_bytes(&bytes));
                }
                None
            }
            OneSlot::InPack(..) | OneSlot::Unknown => None,
        };
        // A broadcast repeats one slot: read and hash it once. (A slot
        // read through its hint is already in `slots`.)
        let mut first_at: std::collections::HashMap<SlotId, usize> = Default::default();
        for slot in record.slots.iter().skip(slots.len()) {
            if let Some(&i) = first_at.get(slot) {
                slots.push(slots[i].clone());
                continue;
            }
            first_at.insert(*slot, slots.len());
            let row = match one_slot.take() {
                Some(row) => Some(row),
                None => self.slot_row(slot)?,
            };
            slots.push(StateValue::slot_from_bytes(&self.checked_slot_bytes(
                slot,
                &record.layout,
                row,
            )?));
        }
        StateValue::new(layout, slots).map_err(|_| StoreError::HashMismatch {
            kind: "state",
            id: id.hex(),
        })
    }

    pub(super) fn slot_row(&self, id: &SlotId) -> Result<Option<SlotRow>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT bytes, pack, pack_offset, pack_length FROM slots WHERE id = ?1",
            )?
            .query_row([&id.bytes()[..]], |r| {
                Ok((r.get(0)?, super::packs::packed_at(r, 1)?))
            })
            .optional()?)
    }

    /// A slot's bytes from its row (or from its pack), checked against its
    /// id.
    pub(super) fn checked_slot_bytes(
        &self,
        id: &SlotId,
        layout: &str,
        row: Option<SlotRow>,
    ) -> Result<Vec<u8>> {
        let (bytes, packed) = row.ok_or_else(|| StoreError::NotFound {
            kind: "slot",
            name: id.hex(),
            hint: "the store is damaged; run `statectl verify`".into(),
        })?;
        let bytes = match packed {
            Some(at) => self.read_packed(at)?,
            None => bytes,
        };
        if slot_id(layout, &bytes) != *id {
            return Err(StoreError::HashMismatch {
                kind: "slot",
                id: id.hex(),
            });
        }
        Ok(bytes)
    }

    /// States whose id starts with the hex `prefix` (at most `limit`).
    /// Whether a state row with this id exists (no re-hash).
    pub fn has_state(&self, id: &StateId) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM states WHERE id = ?1")?
            .query_row([&id.bytes()[..]], |_| Ok(()))
            .optional()?
            .is_some())
    }

    pub fn states_with_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<StateId>> {
        let Some(range) = prefix_range(prefix) else {
            return Ok(Vec::new());
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM states WHERE id BETWEEN ?1 AND ?2 ORDER BY id LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![&range.low[..], &range.high[..], limit as i64],
            |r| r.get::<_, Vec<u8>>(0),
        )?;
        let mut ids = Vec::new();
        for row in rows {
            if let Some(id) = StateId::from_slice(&row?) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    pub fn put_object(&self, bytes: &[u8]) -> Result<ObjectId> {
        let id = ObjectId(Digest::of(&[bytes]));
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO objects (id, bytes) VALUES (?1, ?2)")?
            .execute(params![&id.bytes()[..], bytes])?;
        Ok(id)
    }

    pub fn load_object(&self, id: &ObjectId) -> Result<Vec<u8>> {
        let bytes: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT bytes FROM objects WHERE id = ?1")?
            .query_row([&id.bytes()[..]], |r| r.get(0))
            .optional()?;
        let bytes = bytes.ok_or_else(|| StoreError::NotFound {
            kind: "object",
            name: id.hex(),
            hint: "it was never stored here, or gc removed it".into(),
        })?;
        if Digest::of(&[&bytes]) != id.0 {
            return Err(StoreError::HashMismatch {
                kind: "object",
                id: id.hex(),
            });
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in_memory(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn states_round_trip_and_share_slots() {
        let (_dir, store) = store();
        let layout = Layout::lstm(&[2]);
        let value = StateValue::new(layout, vec![vec![1.0, 2.0, 3.0, 4.0], vec![0.5; 4]]).unwrap();
        let id = store.put_state(&value).unwrap();
        assert_eq!(id, value.id());
        assert_eq!(store.load_state(&id).unwrap(), value);
        let broadcast = value.select(&[0, 0, 0]).unwrap();
        store.put_state(&broadcast).unwrap();
        let slots: i64 = store
            .conn
            .query_row("SELECT count(*) FROM slots", [], |r| r.get(0))
            .unwrap();
        assert_eq!(slots, 2);
    }

    #[test]
    fn a_flipped_slot_byte_is_reported_with_its_id() {
        let (_dir, store) = store();
        let value = StateValue::new(Layout::lstm(&[1]), vec![vec![1.0, 2.0]]).unwrap();
        let id = store.put_state(&value).unwrap();
        store
            .conn
            .execute("UPDATE slots SET bytes = x'0000803f00000041'", [])
            .unwrap();
        let err = store.load_state(&id).unwrap_err();
        assert!(
            matches!(err, StoreError::HashMismatch { kind: "slot", .. }),
            "{err}"
        );
    }

    #[test]
    fn prefixes_find_states_through_the_index() {
        let (_dir, store) = store();
        let value = StateValue::zeros(&Layout::lstm(&[3]), 2);
        let id = store.put_state(&value).unwrap();
        let found = store.states_with_prefix(&id.hex()[..5], 10).unwrap();
        assert_eq!(found, vec![id]);
        assert!(store.states_with_prefix("zzzz", 10).unwrap().is_empty());
    }
}
