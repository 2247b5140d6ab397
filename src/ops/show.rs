//! One state as users inspect it: layout, slots, tags, the event that
//! first produced it, per-tensor statistics and (on request) its values.

use anyhow::Result;
use serde::ser::SerializeMap;
use serde::Serialize;

use super::refs::{self, Scope};
use crate::id::{SlotId, StateId};
use crate::state::StateValue;
use crate::store::{EventRecord, Store};

/// Which state, and whether to include its values.
pub struct ShowRequest<'a> {
    pub reference: &'a str,
    pub scope: Scope<'a>,
    pub values: bool,
}

/// One state (the `show` JSON).
#[derive(Debug, Clone, Serialize)]
pub struct ShowReport {
    pub state: StateId,
    pub layout: String,
    pub batch: usize,
    /// Slot ids in batch order.
    pub slots: Vec<SlotId>,
    pub tags: Vec<String>,
    /// The first event that produced the state.
    pub origin: Option<EventRecord>,
    pub stats: Vec<TensorStats>,
    /// `l{k}.h` -> [batch][units], in layer order, h before c.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<TensorRows>,
}

/// Statistics of one tensor over every slot. NaN and infinities are kept
/// (JSON shows them as null).
#[derive(Debug, Clone, Serialize)]
pub struct TensorStats {
    pub layer: usize,
    pub tensor: &'static str,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub mean_abs: f64,
}

/// Named tensors as rows of numbers, one row per slot, in a fixed order
/// (a JSON object by name).
#[derive(Debug, Clone, Default)]
pub struct TensorRows(pub Vec<(String, Vec<Vec<f32>>)>);

impl Serialize for TensorRows {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, rows) in &self.0 {
            map.serialize_entry(name, rows)?;
        }
        map.end()
    }
}

pub fn run(store: &Store, req: &ShowRequest) -> Result<ShowReport> {
    store.read(|store| -> Result<_> {
        let resolved = refs::resolve(store, req.reference, req.scope)?;
        let (id, value) = (resolved.id, resolved.value);
        let (tags, origin) = (store.tags_of(&id)?, store.origin_of(&id)?);
        Ok(report_of(id, &value, tags, origin, req.values))
    })
}

/// The report of a state already read (a shared store's has no origin:
/// its journal entries come from many stores).
pub fn report_of(
    id: StateId,
    value: &StateValue,
    tags: Vec<String>,
    origin: Option<EventRecord>,
    values: bool,
) -> ShowReport {
    ShowReport {
        state: id,
        layout: value.layout.to_string(),
        batch: value.batch(),
        slots: value.encoded_slots().iter().map(|(s, _)| *s).collect(),
        tags,
        origin,
        stats: tensor_stats(value),
        values: values.then(|| tensor_rows(value)),
    }
}

fn tensor_stats(value: &StateValue) -> Vec<TensorStats> {
    let mut stats = Vec::new();
    for layer in 0..value.layout.units.len() {
        for (k, name) in value.layout.cell.tensors().iter().enumerate() {
            let data = value.layer_tensor(layer, k);
            let n = data.len() as f64;
            let nan = data.iter().any(|v| v.is_nan());
            let pick = |f: fn(f32, f32) -> f32, start: f32| {
                if nan {
                    f64::NAN
                } else {
                    data.iter().copied().fold(start, f) as f64
                }
            };
            stats.push(TensorStats {
                layer,
                tensor: name,
                min: pick(f32::min, f32::INFINITY),
                max: pick(f32::max, f32::NEG_INFINITY),
                mean: data.iter().map(|v| *v as f64).sum::<f64>() / n,
                mean_abs: data.iter().map(|v| v.abs() as f64).sum::<f64>() / n,
            });
        }
    }
    stats
}

/// Every tensor of the state, one row of numbers per slot.
pub fn tensor_rows(value: &StateValue) -> TensorRows {
    let mut rows = Vec::new();
    for (layer, units) in value.layout.units.iter().enumerate() {
        for (k, name) in value.layout.cell.tensors().iter().enumerate() {
            let data = value.layer_tensor(layer, k);
            rows.push((
                format!("l{layer}.{name}"),
                data.chunks(*units).map(<[f32]>::to_vec).collect(),
            ));
        }
    }
    TensorRows(rows)
}
