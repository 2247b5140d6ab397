//! Exporting many states to one safetensors file, streamed: the header is
//! made from each state's layout and batch (read from its row, no slot
//! bytes), then each state is loaded (every slot re-hashed), written and
//! dropped, so memory holds one state at a time however many are named.
//! The file is byte for byte what encoding them all in memory would give.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{bail, Result};

use super::refs::{self, Scope};
use crate::id::StateId;
use crate::state::{states_to_file, Layout, StateValue};
use crate::store::Store;
use crate::tensors::{safetensors_header, MAX_HEADER_BYTES};

/// One state named in the file as `<reference>.l{k}.{h,c}`.
pub struct PlannedState {
    pub reference: String,
    pub id: StateId,
    pub layout: Layout,
    pub batch: usize,
    /// A state computed rather than stored (`zeros` of a new batch size).
    computed: Option<StateValue>,
}

/// Resolves every ref to its state's id, layout and batch, without reading
/// slot bytes, and refuses a set whose file header would be larger than
/// safetensors readers accept (statectl's own: 16 MiB).
pub fn plan(store: &Store, references: &[String], scope: Scope) -> Result<Vec<PlannedState>> {
    let mut planned = Vec::with_capacity(references.len());
    let mut header_estimate = 0usize;
    for reference in references {
        let (id, computed) = refs::resolve_id(store, reference, scope)?;
        let (layout, batch) = match &computed {
            Some(value) => (value.layout.clone(), value.batch()),
            None => {
                let record = store.state_record(&id)?;
                let layout: Layout = record
                    .layout
                    .parse()
                    .map_err(|e| anyhow::anyhow!("state {}: {e}", id.short()))?;
                (layout, record.slots.len())
            }
        };
        header_estimate += header_bytes(reference, &layout);
        refuse_large_header(header_estimate, references.len())?;
        planned.push(PlannedState {
            reference: reference.clone(),
            id,
            layout,
            batch,
            computed,
        });
    }
    Ok(planned)
}

/// At most how many bytes a state adds to the file's header: names are
/// JSON-escaped at most 6x; each tensor entry's numbers and keys take
/// under 120 bytes; the two metadata entries ~100.
fn header_bytes(reference: &str, layout: &Layout) -> usize {
    let tensors = layout.units.len() * layout.cell.tensors().len();
    (reference.len() * 6 + 120) * tensors + reference.len() * 12 + 100
}

/// Refuses a set of `count` states whose header would be larger than
/// safetensors readers accept (statectl's own: 16 MiB).
fn refuse_large_header(estimate: usize, count: usize) -> Result<()> {
    if estimate as u64 > MAX_HEADER_BYTES {
        bail!(
            "{count} states make a file whose safetensors header would pass {} MiB, more than statectl (and most readers) accept; export them in several files (a narrower pattern, or --refs-from with fewer lines), or read them from Python with Store.get_states",
            MAX_HEADER_BYTES >> 20
        );
    }
    Ok(())
}

/// A state's value by id, for `write`.
pub type Load<'a> = dyn FnMut(&StateId) -> Result<StateValue> + 'a;

/// Writes the planned states as named states (`<reference>.l0.h`, ...),
/// with each one's layout and id in the metadata; stored states are read
/// through `load` one at a time.
pub fn write(planned: &[PlannedState], load: &mut Load, out: &mut dyn Write) -> Result<()> {
    let mut metadata = BTreeMap::new();
    // Tensor name -> (state, layer, tensor k, shape), in sorted name order.
    let mut tensors: BTreeMap<String, (usize, usize, usize, [usize; 2])> = BTreeMap::new();
    for (i, state) in planned.iter().enumerate() {
        let name = &state.reference;
        metadata.insert(format!("{name}.layout"), state.layout.to_string());
        metadata.insert(format!("{name}.state"), state.id.hex());
        for (layer, units) in state.layout.units.iter().enumerate() {
            for (k, tensor) in state.layout.cell.tensors().iter().enumerate() {
                tensors.insert(
                    format!("{name}.l{layer}.{tensor}"),
                    (i, layer, k, [state.batch, *units]),
                );
            }
        }
    }
    let (header, _) = safetensors_header(
        &metadata,
        tensors
            .iter()
            .map(|(name, (_, _, _, shape))| (name.as_str(), &shape[..])),
    );
    out.write_all(&header)?;
    let mut loaded: Option<(usize, StateValue)> = None;
    for (state, layer, k, _) in tensors.values() {
        if loaded.as_ref().map(|(i, _)| i) != Some(state) {
            let planned = &planned[*state];
            let value = match &planned.computed {
                Some(value) => value.clone(),
                None => load(&planned.id)?,
            };
            loaded = Some((*state, value));
        }
        let value = &loaded.as_ref().expect("loaded above").1;
        let data = value.layer_tensor(*layer, *k);
        out.write_all(&crate::le_bytes::f32s_to_bytes(&data))?;
    }
    Ok(())
}

/// Writes a file's bytes into the writer it is given.
pub type Fill<'a> = dyn FnMut(&mut dyn Write) -> Result<()> + 'a;

/// Where an export's file goes: called once with what fills it.
pub type FileSink<'a> = dyn FnMut(&mut Fill) -> Result<()> + 'a;

/// What to export.
pub struct ExportRequest<'a> {
    pub references: &'a [String],
    pub scope: Scope<'a>,
    /// A selection of one state's slots.
    pub slots: Option<&'a [usize]>,
}

/// One exported state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportedState {
    #[serde(rename = "ref")]
    pub reference: String,
    pub state: StateId,
    pub layout: String,
    pub batch: usize,
}

/// What was exported (the `export` JSON, less the file name): one state
/// also gives its `state`, `layout` and `batch` at the top.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportReport {
    pub states: Vec<ExportedState>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub single: Option<OneState>,
}

/// The one state of a one-state export.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OneState {
    pub state: StateId,
    pub layout: String,
    pub batch: usize,
}

/// Writes the states `req` names, from one snapshot of the store, through
/// `write` (which gets the file's bytes as a writer to fill): one state as
/// `l{k}.h`, `l{k}.c`; several as named states, streamed one at a time.
/// Every slot is re-hashed on the way out.
pub fn run(store: &Store, req: &ExportRequest, write: &mut FileSink) -> Result<ExportReport> {
    if req.references.len() > 1 && req.slots.is_some() {
        bail!("--slots selects from one state; export one ref at a time with it");
    }
    store.read(|store| match req.references {
        [one] => export_one(store, one, req, write),
        many => export_many(store, many, req.scope, write),
    })
}

fn export_one(
    store: &Store,
    reference: &str,
    req: &ExportRequest,
    write: &mut FileSink,
) -> Result<ExportReport> {
    let value = refs::resolve(store, reference, req.scope)?.value;
    export_value(reference, value, req.slots, write)
}

/// One state (or a selection of its slots) as `l{k}.h`, `l{k}.c`.
fn export_value(
    reference: &str,
    mut value: StateValue,
    slots: Option<&[usize]>,
    write: &mut FileSink,
) -> Result<ExportReport> {
    if let Some(slots) = slots {
        value = value.select(slots)?;
    }
    let bytes = states_to_file(&[(None, &value)]).encode();
    write(&mut |out| Ok(out.write_all(&bytes)?))?;
    let row = ExportedState {
        reference: reference.to_string(),
        state: value.id(),
        layout: value.layout.to_string(),
        batch: value.batch(),
    };
    Ok(ExportReport {
        single: Some(OneState {
            state: row.state,
            layout: row.layout.clone(),
            batch: row.batch,
        }),
        states: vec![row],
    })
}

/// Exports states already read (a shared store's, each re-hashed as it
/// was read), named by the refs they were read by, in that order: the same
/// file, byte for byte, as exporting them from a local store.
pub fn run_loaded(
    loaded: Vec<(String, StateId, StateValue)>,
    slots: Option<&[usize]>,
    write: &mut FileSink,
) -> Result<ExportReport> {
    if loaded.len() > 1 && slots.is_some() {
        bail!("--slots selects from one state; export one ref at a time with it");
    }
    if let [(reference, _, value)] = &loaded[..] {
        return export_value(reference, value.clone(), slots, write);
    }
    let mut estimate = 0;
    let planned: Vec<PlannedState> = loaded
        .into_iter()
        .map(|(reference, id, value)| {
            estimate += header_bytes(&reference, &value.layout);
            PlannedState {
                reference,
                id,
                layout: value.layout.clone(),
                batch: value.batch(),
                computed: Some(value),
            }
        })
        .collect();
    refuse_large_header(estimate, planned.len())?;
    let mut nothing_to_load =
        |id: &StateId| -> Result<StateValue> { bail!("state {} was not read", id.short()) };
    write(&mut |out| self::write(&planned, &mut nothing_to_load, out))?;
    Ok(report_many(planned))
}

fn export_many(
    store: &Store,
    references: &[String],
    scope: Scope,
    write: &mut FileSink,
) -> Result<ExportReport> {
    let planned = plan(store, references, scope)?;
    let mut load = |id: &StateId| -> Result<StateValue> { Ok(store.load_state(id)?) };
    write(&mut |out| self::write(&planned, &mut load, out))?;
    Ok(report_many(planned))
}

fn report_many(planned: Vec<PlannedState>) -> ExportReport {
    ExportReport {
        states: planned
            .into_iter()
            .map(|p| ExportedState {
                reference: p.reference,
                state: p.id,
                layout: p.layout.to_string(),
                batch: p.batch,
            })
            .collect(),
        single: None,
    }
}
