//! Keras 3's `model.weights.h5` (inside a `.keras` file, or saved alone by
//! `save_weights`): one group per layer under `layers/`, named from the
//! layer's class (`lstm`, `lstm_1`, `dense`), its variables the datasets
//! `vars/0, 1, ...` (a recurrent layer's under `cell/vars`), and the user's
//! layer name as the `name` attribute of its `vars` group. Read into
//! statectl's Keras names (`<layer>/kernel`, `<layer>/recurrent_kernel`,
//! `<layer>/bias`), which the Keras import maps as for safetensors.

use anyhow::{anyhow, bail, Result};
use hdf5_pure::{AttrValue, DType, Dataset, File, Group};

use crate::tensors::{Tensor, TensorFile};

/// A weights file read into Keras names.
pub struct KerasWeights {
    pub file: TensorFile,
    /// The recurrent layers' names in the order Keras created them (the
    /// `_1`, `_2` suffixes of their groups).
    pub recurrent: Vec<String>,
}

const RECURRENT_PARTS: [&str; 3] = ["kernel", "recurrent_kernel", "bias"];
const DENSE_PARTS: [&str; 2] = ["kernel", "bias"];

fn h5_error(e: hdf5_pure::Error) -> anyhow::Error {
    anyhow!(
        "its HDF5 structure cannot be read ({e}); the file may be damaged: save the weights again"
    )
}

/// The user's name of a layer: its `vars` group's `name` attribute.
fn layer_name(group: &Group, fallback: &str) -> String {
    group
        .group("vars")
        .ok()
        .and_then(|vars| vars.attrs().ok())
        .and_then(|attrs| match attrs.get("name") {
            Some(
                AttrValue::String(name)
                | AttrValue::VarLenString(name)
                | AttrValue::AsciiString(name),
            ) => Some(name.clone()),
            _ => None,
        })
        .unwrap_or_else(|| fallback.to_string())
}

/// One float tensor, its size checked against the file before it is read.
fn read_tensor(
    dataset: &Dataset,
    path: &str,
    file_size: u64,
    file: &mut TensorFile,
) -> Result<Tensor> {
    let shape: Vec<usize> = dataset
        .shape()
        .map_err(h5_error)?
        .into_iter()
        .map(|d| usize::try_from(d).unwrap_or(usize::MAX))
        .collect();
    let bytes = shape
        .iter()
        .try_fold(4usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n as u64 <= file_size)
        .ok_or_else(|| {
            anyhow!(
                "its dataset '{path}' claims shape {shape:?}, more float32 values than the file's {file_size} bytes hold; the file is damaged or not a weights file"
            )
        })?;
    if !dataset.filters().is_empty() {
        bail!("its dataset '{path}' is compressed; Keras writes weights uncompressed: save them again with save_weights");
    }
    let data = match dataset.dtype().map_err(h5_error)? {
        DType::F32 => dataset.read_f32().map_err(h5_error)?,
        DType::F64 => {
            file.converted_f64.push(path.to_string());
            dataset.read_f64().map_err(h5_error)?.into_iter().map(|v| v as f32).collect()
        }
        other => bail!("its dataset '{path}' holds {other:?} values; statectl imports float32 (or float64) weights"),
    };
    if data.len() * 4 != bytes {
        bail!(
            "its dataset '{path}' holds {} values for shape {shape:?}; the file is damaged",
            data.len()
        );
    }
    Ok(Tensor::new(shape, data))
}

/// The variables `vars/0, 1, ...` of a group, as `<layer>/<part>`.
fn read_vars(
    vars: &Group,
    where_: &str,
    layer: &str,
    parts: &[&str],
    file_size: u64,
    file: &mut TensorFile,
) -> Result<()> {
    let mut names = vars.datasets().map_err(h5_error)?;
    names.sort_by_key(|n| n.parse::<usize>().unwrap_or(usize::MAX));
    let expected: Vec<String> = (0..parts.len()).map(|i| i.to_string()).collect();
    if names != expected {
        bail!(
            "its group '{where_}' holds variables [{}] where a layer with {} has [{}]; statectl cannot represent this layer",
            names.join(", "),
            parts.join(", "),
            expected.join(", ")
        );
    }
    for (index, part) in parts.iter().enumerate() {
        let path = format!("{where_}/{index}");
        let dataset = vars.dataset(&index.to_string()).map_err(h5_error)?;
        let tensor = read_tensor(&dataset, &path, file_size, file)?;
        file.insert(&format!("{layer}/{part}"), tensor);
    }
    Ok(())
}

/// `lstm_12` sorts after `lstm_2`: Keras numbers layers of one class in
/// the order it made them.
fn creation_order(group: &str) -> (String, usize) {
    match group.rsplit_once('_') {
        Some((base, n)) if n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() => {
            (base.to_string(), n.parse().unwrap_or(usize::MAX))
        }
        _ => (group.to_string(), 0),
    }
}

/// Reads every layer's variables.
pub fn read(bytes: Vec<u8>) -> Result<KerasWeights> {
    let file_size = bytes.len() as u64;
    let h5 = File::from_bytes(bytes).map_err(h5_error)?;
    let layers = h5.group("layers").map_err(|_| {
        anyhow!("it has no 'layers' group, so it is not a Keras 3 weights file (Keras 2's .h5 layout is not read: load the model in Keras 3 and save it again)")
    })?;
    let mut groups = layers.groups().map_err(h5_error)?;
    groups.sort_by_key(|g| creation_order(g));
    let mut file = TensorFile::default();
    let mut recurrent = Vec::new();
    for g in &groups {
        let group = layers.group(g).map_err(h5_error)?;
        let name = layer_name(&group, g);
        let inner = group.groups().map_err(h5_error)?;
        if let Some(other) = inner
            .iter()
            .find(|s| !matches!(s.as_str(), "vars" | "cell"))
        {
            bail!(
                "its layer '{name}' (group 'layers/{g}') holds '{other}', a nested layer statectl cannot represent (it runs LSTM/GRU layers and one Dense head)"
            );
        }
        if inner.iter().any(|s| s == "cell") {
            let vars = group.group("cell/vars").map_err(h5_error)?;
            read_vars(
                &vars,
                &format!("layers/{g}/cell/vars"),
                &name,
                &RECURRENT_PARTS,
                file_size,
                &mut file,
            )?;
            recurrent.push(name);
        } else if let Ok(vars) = group.group("vars") {
            if !vars.datasets().map_err(h5_error)?.is_empty() {
                read_vars(
                    &vars,
                    &format!("layers/{g}/vars"),
                    &name,
                    &DENSE_PARTS,
                    file_size,
                    &mut file,
                )?;
            }
        }
    }
    if recurrent.is_empty() {
        bail!("it holds no LSTM or GRU layer (no 'layers/*/cell/vars' group); statectl imports recurrent models");
    }
    Ok(KerasWeights { file, recurrent })
}
