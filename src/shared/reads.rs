//! A learner's reads straight from the shared store, without a pull:
//! states by tag or full id, in three queries for any number of them (the
//! tags, the state rows, the slots), every state row and slot re-hashed
//! against its id on the way out, as the embedded store does. With a read
//! cache, rows and slots read before come from it (content-addressed,
//! never stale), and only the tags are asked of the server.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};

use super::cache::StateRecord;
use super::SharedStore;
use crate::id::{Digest, SlotId, StateId};
use crate::state::{slot_id, state_id, Layout, StateValue};

impl SharedStore {
    /// The states `refs` name (tags, or full 64-digit ids), in order.
    pub fn load_states(&mut self, refs: &[String]) -> Result<Vec<(StateId, StateValue)>> {
        let ids = self.resolve(refs)?;
        let records = self.state_records(&ids)?;
        let slots = self.slot_values(records.values().flat_map(|(_, slots)| slots.iter()))?;
        ids.iter()
            .map(|id| {
                let (layout, list) = records
                    .get(id)
                    .ok_or_else(|| anyhow!("state {} is not on {}", id.hex(), self.shown))?;
                let parsed: Layout = layout.parse().map_err(|e| {
                    anyhow!(
                        "state {} on {} has layout {layout}: {e}",
                        id.hex(),
                        self.shown
                    )
                })?;
                let values = list.iter().map(|s| slots[s].clone()).collect();
                let value = StateValue::new(parsed, values)
                    .map_err(|e| anyhow!("state {} on {}: {e}", id.hex(), self.shown))?;
                Ok((*id, value))
            })
            .collect()
    }

    /// The state rows of `ids` (from the cache where it has them), each
    /// re-hashed when read from the server.
    fn state_records(&mut self, ids: &[StateId]) -> Result<HashMap<StateId, StateRecord>> {
        let mut records: HashMap<StateId, StateRecord> = HashMap::new();
        let mut unique: Vec<[u8; 32]> = Vec::new();
        for id in ids {
            if records.contains_key(id) {
                continue;
            }
            match self.cache.as_mut().and_then(|c| c.state(id)) {
                Some(record) => {
                    records.insert(*id, record);
                }
                None => unique.push(*id.bytes()),
            }
        }
        unique.sort_unstable();
        unique.dedup();
        if unique.is_empty() {
            return Ok(records);
        }
        let rows = self
            .client
            .query(
                "SELECT id, layout, slot_ids FROM states WHERE id = ANY($1)",
                &[&unique.iter().map(|id| &id[..]).collect::<Vec<_>>()],
            )
            .map_err(|e| self.failed("reading states", e))?;
        for row in &rows {
            let (id, layout, list): (&[u8], String, &[u8]) = (row.get(0), row.get(1), row.get(2));
            let id = StateId::from_slice(id)
                .ok_or_else(|| anyhow!("a state id on {} is not 32 bytes", self.shown))?;
            let slots: Vec<SlotId> = list.chunks(32).filter_map(SlotId::from_slice).collect();
            if list.len() % 32 != 0 || state_id(&layout, &slots) != id {
                bail!(
                    "state {} on {} does not hash to its id: the shared store is damaged",
                    id.hex(),
                    self.shown
                );
            }
            if let Some(cache) = self.cache.as_mut() {
                cache.put_state(id, (layout.clone(), slots.clone()));
            }
            records.insert(id, (layout, slots));
        }
        Ok(records)
    }

    /// Slot values by id: from the cache where it has them, the rest read
    /// (and re-hashed) in one query, then cached.
    fn slot_values<'a>(
        &mut self,
        ids: impl Iterator<Item = &'a SlotId>,
    ) -> Result<HashMap<SlotId, Vec<f32>>> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for id in ids {
            if found.contains_key(id) {
                continue;
            }
            match self.cache.as_mut().and_then(|c| c.slot(id)) {
                Some(values) => {
                    found.insert(*id, values);
                }
                None => missing.push(*id),
            }
        }
        let read = self.load_slots(missing.iter())?;
        if let Some(cache) = self.cache.as_mut() {
            for (id, values) in &read {
                cache.put_slot(*id, values.clone());
            }
        }
        found.extend(read);
        Ok(found)
    }

    /// Tags by name, full ids as they are; a ref that is neither is
    /// refused, naming it.
    fn resolve(&mut self, refs: &[String]) -> Result<Vec<StateId>> {
        let names: Vec<&str> = refs
            .iter()
            .filter(|r| Digest::parse_hex(r).is_none())
            .map(|r| r.as_str())
            .collect();
        let tags: HashMap<String, Vec<u8>> = self
            .tags_named(&names)?
            .into_iter()
            .map(|t| (t.name, t.state))
            .collect();
        refs.iter()
            .map(|r| match Digest::parse_hex(r) {
                Some(digest) => Ok(StateId(digest)),
                None => tags
                    .get(r)
                    .and_then(|state| StateId::from_slice(state))
                    .ok_or_else(|| anyhow!("no tag '{r}' on {}; a shared store's states are read by tag or by full 64-digit id", self.shown)),
            })
            .collect()
    }

    /// Slot values by id, each re-hashed.
    fn load_slots<'a>(
        &mut self,
        ids: impl Iterator<Item = &'a SlotId>,
    ) -> Result<HashMap<SlotId, Vec<f32>>> {
        let mut wanted: Vec<[u8; 32]> = ids.map(|s| *s.bytes()).collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = self.rows(super::Table::Slots, &wanted)?;
        let mut slots = HashMap::with_capacity(rows.len());
        for row in &rows {
            let (id, layout, bytes): (&[u8], &str, &[u8]) = (row.get(0), row.get(1), row.get(2));
            let Some(id) = SlotId::from_slice(id) else {
                continue;
            };
            if slot_id(layout, bytes) != id {
                bail!(
                    "slot {} on {} does not hash to its id: the shared store is damaged",
                    id.hex(),
                    self.shown
                );
            }
            slots.insert(id, StateValue::slot_from_bytes(bytes));
        }
        if let Some(missing) = wanted
            .iter()
            .find(|w| !slots.contains_key(&SlotId(Digest(**w))))
        {
            bail!(
                "slot {} is not on {}: the shared store is damaged",
                hex::encode(missing),
                self.shown
            );
        }
        Ok(slots)
    }
}
