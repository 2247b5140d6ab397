//! States as safetensors files: `l{k}.h`, `l{k}.c` as `[batch, units]` for
//! one state, or `<name>.l{k}.h`, `<name>.l{k}.c` for several named states
//! in one file. Metadata says each state's layout and id; a file whose
//! metadata disagrees with its tensors is refused.

use std::collections::BTreeMap;

use super::layout::{Cell, Layout};
use super::value::StateValue;
use crate::id::StateId;
use crate::tensors::{Tensor, TensorFile};

const SCHEME: &str = "expected tensors l0.h, l0.c (then l1.h, l1.c, ...; a GRU state has h only) as [batch, units], or <name>.l0.h, <name>.l0.c for named states";

/// What a state file holds.
#[derive(Debug, Clone, PartialEq)]
pub enum FileStates {
    /// One state (`l{k}.h`, `l{k}.c`).
    Single(StateValue),
    /// Named states (`<name>.l{k}.h`, ...), in name order.
    Named(Vec<(String, StateValue)>),
}

fn meta_key(name: Option<&str>, key: &str) -> String {
    match name {
        Some(n) => format!("{n}.{key}"),
        None => key.to_string(),
    }
}

/// The file of one state (`name` None) or of named states.
pub fn states_to_file(states: &[(Option<String>, &StateValue)]) -> TensorFile {
    let mut file = TensorFile::default();
    for (name, value) in states {
        let prefix = name.as_ref().map(|n| format!("{n}.")).unwrap_or_default();
        for (layer, units) in value.layout.units.iter().enumerate() {
            for (k, tensor) in value.layout.cell.tensors().iter().enumerate() {
                file.insert(
                    &format!("{prefix}l{layer}.{tensor}"),
                    Tensor::new(vec![value.batch(), *units], value.layer_tensor(layer, k)),
                );
            }
        }
        file.metadata.insert(
            meta_key(name.as_deref(), "layout"),
            value.layout.to_string(),
        );
        file.metadata
            .insert(meta_key(name.as_deref(), "state"), value.id().hex());
    }
    file
}

/// Splits a tensor name into (state name, layer, tensor) if it follows the scheme.
fn parse_name(full: &str) -> Option<(Option<&str>, usize, &str)> {
    let (rest, tensor) = full.rsplit_once('.')?;
    if tensor != "h" && tensor != "c" {
        return None;
    }
    let (name, layer) = match rest.rsplit_once('.') {
        Some((name, layer)) => (Some(name), layer),
        None => (None, rest),
    };
    let layer: usize = layer.strip_prefix('l')?.parse().ok()?;
    if name == Some("") {
        return None;
    }
    Some((name, layer, tensor))
}

fn build(
    name: Option<&str>,
    tensors: &BTreeMap<(usize, &str), &Tensor>,
    file: &TensorFile,
) -> Result<StateValue, String> {
    let label = name
        .map(|n| format!("state '{n}'"))
        .unwrap_or_else(|| "the state".into());
    let prefix = name.map(|n| format!("{n}.")).unwrap_or_default();
    let last = tensors.keys().map(|(l, _)| *l).max().unwrap_or(0);
    if last >= crate::limits::MAX_LAYERS {
        return Err(format!(
            "{label} names layer {last}, beyond the {} layers a state may have; {SCHEME}",
            crate::limits::MAX_LAYERS
        ));
    }
    let layers = if tensors.is_empty() { 0 } else { last + 1 };
    // An LSTM state carries `c` beside every `h`; a GRU state `h` alone.
    let cell = if tensors.keys().any(|(_, t)| *t == "c") {
        Cell::Lstm
    } else {
        Cell::Gru
    };
    let mut units = Vec::new();
    let mut data = Vec::new();
    let mut batch = None;
    for layer in 0..layers {
        let (h_name, c_name) = (format!("{prefix}l{layer}.h"), format!("{prefix}l{layer}.c"));
        let found: Vec<(&String, &Tensor)> = match (tensors.get(&(layer, "h")), tensors.get(&(layer, "c")), cell) {
            (Some(h), Some(c), Cell::Lstm) => vec![(&h_name, *h), (&c_name, *c)],
            (Some(h), None, Cell::Gru) => vec![(&h_name, *h)],
            (Some(_), None, Cell::Lstm) => {
                return Err(format!(
                    "{label} has '{h_name}' but no '{c_name}': an LSTM state needs both (a GRU state has no 'c' in any layer)"
                ))
            }
            (None, Some(_), _) => {
                return Err(format!(
                    "{label} has '{c_name}' but no '{h_name}': an LSTM state needs both"
                ))
            }
            (Some(_), Some(_), Cell::Gru) => unreachable!("a 'c' makes the state an LSTM's"),
            (None, None, _) => {
                return Err(format!(
                    "{label} has no layer {layer} ('{h_name}') but has later layers"
                ))
            }
        };
        for (n, t) in &found {
            if t.shape.len() != 2 || t.shape.contains(&0) {
                return Err(format!("'{n}' has shape {}; {SCHEME}", t.shape_text()));
            }
        }
        let h = found[0].1;
        if let Some((_, c)) = found.get(1) {
            if h.shape != c.shape {
                return Err(format!(
                    "'{h_name}' is {} but '{c_name}' is {}; they must match",
                    h.shape_text(),
                    c.shape_text()
                ));
            }
        }
        let b = *batch.get_or_insert(h.shape[0]);
        if h.shape[0] != b {
            return Err(format!("'{h_name}' has batch {} but layer 0 has batch {b}; every layer needs the same batch", h.shape[0]));
        }
        if h.shape[1] > crate::limits::MAX_UNITS {
            return Err(format!(
                "'{h_name}' has {} units, more than the {} a layer may have; {SCHEME}",
                h.shape[1],
                crate::limits::MAX_UNITS
            ));
        }
        units.push(h.shape[1]);
        data.push(found.iter().map(|(_, t)| t.data.clone()).collect());
    }
    let layout = Layout { cell, units };
    if let Some(stated) = file.metadata.get(&meta_key(name, "layout")) {
        if *stated != layout.to_string() {
            return Err(format!("{label}: the file says its layout is '{stated}' but its tensors make {layout}; the file is inconsistent"));
        }
    }
    let value = StateValue::from_layers(&layout, batch.unwrap_or(0), &data);
    if let Some(stated) = file.metadata.get(&meta_key(name, "state")) {
        let id: StateId = value.id();
        if !stated.eq_ignore_ascii_case(&id.hex()) {
            return Err(format!(
                "{label}: the file says it holds state {stated} but its values hash to {}; the file was changed after export",
                id.hex()
            ));
        }
    }
    Ok(value)
}

/// Reads the states a file holds, checking names, shapes and metadata.
pub fn states_from_file(file: &TensorFile) -> Result<FileStates, String> {
    let mut groups: BTreeMap<Option<&str>, BTreeMap<(usize, &str), &Tensor>> = BTreeMap::new();
    let mut strays = Vec::new();
    for (full, tensor) in &file.tensors {
        match parse_name(full) {
            Some((name, layer, t)) => {
                groups.entry(name).or_default().insert((layer, t), tensor);
            }
            None => strays.push(full.as_str()),
        }
    }
    if !strays.is_empty() {
        return Err(format!(
            "tensor name(s) outside the scheme: {}; {SCHEME}",
            strays.join(", ")
        ));
    }
    if groups.is_empty() {
        return Err(format!("the file holds no state; {SCHEME}"));
    }
    if groups.contains_key(&None) {
        if groups.len() > 1 {
            return Err("the file mixes an unnamed state (l0.h) with named ones (<name>.l0.h); keep one kind per file".into());
        }
        return Ok(FileStates::Single(build(None, &groups[&None], file)?));
    }
    let named = groups
        .iter()
        .map(|(name, tensors)| {
            let name = name.unwrap_or_default();
            build(Some(name), tensors, file).map(|v| (name.to_string(), v))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(FileStates::Named(named))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(units: &[usize], batch: usize, seed: f32) -> StateValue {
        let layout = Layout::lstm(units);
        let slots = (0..batch)
            .map(|b| {
                (0..layout.slot_len())
                    .map(|i| seed + (b * 100 + i) as f32)
                    .collect()
            })
            .collect();
        StateValue::new(layout, slots).unwrap()
    }

    #[test]
    fn single_and_named_files_round_trip() {
        let a = value(&[3, 2], 4, 0.5);
        let file = states_to_file(&[(None, &a)]);
        assert_eq!(states_from_file(&file), Ok(FileStates::Single(a.clone())));
        let b = value(&[5], 1, 1.5);
        let file = states_to_file(&[(Some("x.y".into()), &a), (Some("b".into()), &b)]);
        assert_eq!(
            states_from_file(&file),
            Ok(FileStates::Named(vec![("b".into(), b), ("x.y".into(), a)]))
        );
    }

    #[test]
    fn mixed_and_stray_names_are_refused() {
        let a = value(&[2], 1, 0.0);
        let mut file = states_to_file(&[(None, &a)]);
        file.insert("s.l0.h", Tensor::new(vec![1, 2], vec![0.0; 2]));
        file.insert("s.l0.c", Tensor::new(vec![1, 2], vec![0.0; 2]));
        assert!(states_from_file(&file).unwrap_err().contains("mixes"));
        let mut file = states_to_file(&[(None, &a)]);
        file.insert("hidden", Tensor::new(vec![1], vec![0.0]));
        assert!(states_from_file(&file)
            .unwrap_err()
            .contains("outside the scheme"));
    }
}
