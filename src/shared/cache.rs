//! A learner's cache of what it read from the shared store: state rows
//! and slot values, by id. An id is the hash of its content, so an entry
//! can never be stale (tags, which move, are always asked of the server),
//! and every entry was re-hashed when it was read. Bounded by bytes: once
//! over its budget, the least recently used entries go until it is at
//! three quarters of it (evicting in bulk keeps each read O(its states)).

use std::collections::HashMap;

use crate::id::{SlotId, StateId};

/// A state row: its layout and slot list.
pub type StateRecord = (String, Vec<SlotId>);

/// What the cache holds and how it has served.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct CacheStats {
    pub budget_bytes: usize,
    pub bytes: usize,
    pub slots: usize,
    pub states: usize,
    /// Slots served from the cache, and read from the server.
    pub slot_hits: u64,
    pub slot_misses: u64,
}

pub struct ReadCache {
    budget: usize,
    used: usize,
    /// Advances on every use; an entry's last use orders evictions.
    clock: u64,
    slots: HashMap<SlotId, (Vec<f32>, u64)>,
    states: HashMap<StateId, (StateRecord, u64)>,
    hits: u64,
    misses: u64,
}

/// Bytes an entry is counted as (its values or ids, and the map's own
/// share, roughly).
fn slot_cost(values: &[f32]) -> usize {
    values.len() * 4 + 64
}

fn state_cost(record: &StateRecord) -> usize {
    record.0.len() + record.1.len() * 32 + 96
}

impl ReadCache {
    pub fn new(budget: usize) -> ReadCache {
        ReadCache {
            budget,
            used: 0,
            clock: 0,
            slots: HashMap::new(),
            states: HashMap::new(),
            hits: 0,
            misses: 0,
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    pub fn state(&mut self, id: &StateId) -> Option<StateRecord> {
        let now = self.tick();
        self.states.get_mut(id).map(|(record, used)| {
            *used = now;
            record.clone()
        })
    }

    pub fn slot(&mut self, id: &SlotId) -> Option<Vec<f32>> {
        let now = self.tick();
        match self.slots.get_mut(id) {
            Some((values, used)) => {
                *used = now;
                self.hits += 1;
                Some(values.clone())
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    pub fn put_state(&mut self, id: StateId, record: StateRecord) {
        let now = self.tick();
        let cost = state_cost(&record);
        if let Some((old, _)) = self.states.insert(id, (record, now)) {
            self.used -= state_cost(&old);
        }
        self.used += cost;
        self.shrink();
    }

    pub fn put_slot(&mut self, id: SlotId, values: Vec<f32>) {
        let now = self.tick();
        let cost = slot_cost(&values);
        if let Some((old, _)) = self.slots.insert(id, (values, now)) {
            self.used -= slot_cost(&old);
        }
        self.used += cost;
        self.shrink();
    }

    /// Over budget: drops the least recently used entries until at three
    /// quarters of it.
    fn shrink(&mut self) {
        if self.used <= self.budget {
            return;
        }
        let mut ages: Vec<(u64, Option<SlotId>, Option<StateId>)> = self
            .slots
            .iter()
            .map(|(id, (_, used))| (*used, Some(*id), None))
            .chain(
                self.states
                    .iter()
                    .map(|(id, (_, used))| (*used, None, Some(*id))),
            )
            .collect();
        ages.sort_unstable_by_key(|(used, _, _)| *used);
        let target = self.budget / 4 * 3;
        for (_, slot, state) in ages {
            if self.used <= target {
                break;
            }
            if let Some((values, _)) = slot.and_then(|id| self.slots.remove(&id)) {
                self.used -= slot_cost(&values);
            }
            if let Some((record, _)) = state.and_then(|id| self.states.remove(&id)) {
                self.used -= state_cost(&record);
            }
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            budget_bytes: self.budget,
            bytes: self.used,
            slots: self.slots.len(),
            states: self.states.len(),
            slot_hits: self.hits,
            slot_misses: self.misses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Digest;

    fn slot(n: u8) -> SlotId {
        SlotId(Digest([n; 32]))
    }

    #[test]
    fn stays_within_its_budget_and_keeps_what_was_used_last() {
        let mut cache = ReadCache::new(10 * slot_cost(&[0.0; 256]));
        for n in 0..10 {
            cache.put_slot(slot(n), vec![n as f32; 256]);
        }
        // Slot 0 used again: the oldest is now slot 1.
        assert!(cache.slot(&slot(0)).is_some());
        cache.put_slot(slot(10), vec![10.0; 256]);
        let stats = cache.stats();
        assert!(stats.bytes <= stats.budget_bytes, "{stats:?}");
        assert!(cache.slot(&slot(0)).is_some());
        assert!(cache.slot(&slot(10)).is_some());
        assert!(cache.slot(&slot(1)).is_none());
        assert_eq!(cache.slot(&slot(10)).unwrap(), vec![10.0; 256]);
    }

    #[test]
    fn an_entry_larger_than_the_budget_is_not_kept() {
        let mut cache = ReadCache::new(100);
        cache.put_slot(slot(1), vec![1.0; 256]);
        assert!(cache.slot(&slot(1)).is_none());
        assert_eq!(cache.stats().bytes, 0);
    }
}
