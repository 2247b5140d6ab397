//! The model registry as users see it: register weights as a model, list
//! the models, show one, and export its weights under either naming.

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

use std::path::Path;

use sha2::{Digest, Sha256};

use super::backend::Backend;
use super::models::{self, Model, Registration};
use crate::id::{StateId, WeightsId};
use crate::input::read_file_bounded;
use crate::model::files::{self, FileFormat, KerasArchitecture};
use crate::model::{
    import_keras, import_torch, Head, ModelConfig, Outputs, Weights, WeightsLayout,
};
use crate::store::{EventFilter, NewEvent, Store};
use crate::tensors::TensorFile;

/// Weights to register as a model.
pub struct ModelImport<'a> {
    pub name: &'a str,
    /// Names the file in messages.
    pub source: &'a str,
    pub file: &'a TensorFile,
    /// The naming scheme; detected from the tensor names when `None`.
    pub layout: Option<WeightsLayout>,
    /// What the output layer computes; the file's own metadata when `None`.
    pub head: Option<Head>,
    pub outputs: Option<Outputs>,
    /// Keras layer names, in order, when the file holds several networks.
    pub layers: Option<&'a [String]>,
    /// The `main` stream's batch [default: as the file says, else 1].
    pub batch_size: Option<usize>,
    /// Replace a model of that name (its events stay in the journal).
    pub replace: bool,
}

/// A registered model (the `model import` JSON).
#[derive(Debug, Clone, Serialize)]
pub struct ModelImported {
    pub model: String,
    pub weights: WeightsId,
    pub layout: String,
    pub config: ModelConfig,
    /// `torch` or `keras`: how the file named its tensors.
    pub naming: &'static str,
    /// float64 tensors stored as float32.
    pub converted_f64: Vec<String>,
    /// The file it came from (null for arrays handed over directly).
    pub origin: Option<Origin>,
    /// What the reader took from the file and what it left.
    pub notes: Vec<String>,
}

/// Where an imported model came from: recorded in the journal with the
/// model (`model show`), so its weights can be traced to the file.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Origin {
    /// `safetensors`, `keras`, `keras-weights-h5` or `torch`.
    pub format: String,
    /// The file's name as given.
    pub file: String,
    /// sha256 of the file's bytes.
    pub sha256: String,
}

/// A model file to import: any format [`files::read`] recognises.
pub struct FileImport<'a> {
    pub path: &'a Path,
    /// [default: the file name up to its first '.']
    pub name: Option<&'a str>,
    pub layout: Option<WeightsLayout>,
    pub head: Option<Head>,
    pub outputs: Option<Outputs>,
    pub layers: Option<&'a [String]>,
    pub batch_size: Option<usize>,
    pub replace: bool,
}

/// Reads a model file (safetensors, `.keras`, `.weights.h5`, `.pt`) and
/// registers it, recording the file's format and sha256 as its origin.
pub fn import_file(store: &Store, req: &FileImport) -> Result<ModelImported> {
    let source = req.path.display().to_string();
    let bytes = read_file_bounded(req.path, &format!("model file '{source}'"))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let read = files::read(bytes).with_context(|| format!("model file '{source}'"))?;
    if let Some(arch) = &read.architecture {
        check_agreement(arch, req).with_context(|| format!("model file '{source}'"))?;
    }
    let name = match req.name {
        Some(n) => n.to_string(),
        None => req
            .path
            .file_name()
            .and_then(|s| s.to_str())
            .map(|s| s.split('.').next().unwrap_or(s).to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "model".into()),
    };
    let arch = read.architecture.as_ref();
    // PyTorch's model ends in its nn.Linear: the logits, as it computes them.
    let head = req
        .head
        .or(arch.map(|a| a.head))
        .or((read.format == FileFormat::Torch).then_some(Head::Linear));
    let origin = Origin {
        format: read.format.name().to_string(),
        file: req
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| source.clone()),
        sha256,
    };
    let mut imported = register_import(
        store,
        &ModelImport {
            name: &name,
            source: &source,
            file: &read.tensors,
            layout: req.layout.or(read.layout),
            head,
            outputs: req.outputs.or(arch.map(|a| a.outputs)),
            layers: req.layers.or(read.layer_order.as_deref()),
            batch_size: req.batch_size.or(arch.and_then(|a| a.batch_size)),
            replace: req.replace,
        },
        Some(&origin),
    )?;
    imported.notes = read.notes;
    Ok(imported)
}

/// Refuses flags that contradict what a `.keras` file says.
fn check_agreement(arch: &KerasArchitecture, req: &FileImport) -> Result<()> {
    if let Some(head) = req.head.filter(|h| *h != arch.head) {
        bail!(
            "--head {} disagrees with the file: its Dense layer '{}' computes {}; leave --head out",
            head.name(),
            arch.head_layer,
            arch.head.name()
        );
    }
    if let Some(outputs) = req.outputs.filter(|o| *o != arch.outputs) {
        bail!(
            "--outputs {} disagrees with the file: its last recurrent layer has return_sequences={}; leave --outputs out",
            outputs.name(),
            if arch.outputs.is_last() { "False" } else { "True" }
        );
    }
    if let (Some(given), Some(fixed)) = (req.batch_size, arch.batch_size) {
        if given != fixed {
            bail!(
                "--batch-size {given} disagrees with the file: the stateful model's batch size is {fixed}; leave --batch-size out, or change the stream's batch later with `statectl reset --batch-size {given}`"
            );
        }
    }
    if let Some(layers) = req.layers.filter(|l| *l != arch.recurrent.as_slice()) {
        bail!(
            "--layers {} disagrees with the file, whose recurrent layers are {}; leave --layers out",
            layers.join(","),
            arch.recurrent.join(",")
        );
    }
    Ok(())
}

pub fn import(store: &Store, req: &ModelImport) -> Result<ModelImported> {
    register_import(store, req, None)
}

fn register_import(
    store: &Store,
    req: &ModelImport,
    origin: Option<&Origin>,
) -> Result<ModelImported> {
    let source = req.source;
    let batch_size = req.batch_size.unwrap_or(1);
    crate::limits::check_batch(batch_size)?;
    let layout = match req.layout {
        Some(layout) => layout,
        None => detect_layout(req.file).with_context(|| format!("weights file '{source}'"))?,
    };
    // The head: as asked, else as the file says; the weights are read
    // first either way, so a damaged file is reported as such.
    let stated = Weights::stated_config(req.file);
    let head = req.head.or(stated.as_ref().map(|c| c.head));
    let provisional = head.unwrap_or(Head::Softmax);
    let mut weights = match layout {
        WeightsLayout::Torch => import_torch(req.file, provisional, batch_size),
        WeightsLayout::Keras => import_keras(req.file, req.layers, provisional, batch_size),
    }
    .with_context(|| format!("weights file '{source}'"))?;
    weights.config.outputs = req
        .outputs
        .or(stated.map(|c| c.outputs))
        .unwrap_or_default();
    if head.is_none() {
        bail!("weights file '{source}' does not say what its output layer computes: pass --head softmax (classification) or --head linear (regression, Q-values)");
    }
    crate::limits::check_units(&weights.config.units)?;
    let registration = Registration {
        name: req.name,
        weights: &weights,
        training: None,
        replace: req.replace,
    };
    let model = store.write(|store| -> Result<_> {
        let (model, created) = models::register_in(store, &registration)?;
        if let Some(origin) = origin {
            let recorded = store.append_event(&NewEvent {
                kind: "model-import",
                model: model.event_model(),
                detail: serde_json::to_value(origin)?,
                ..Default::default()
            });
            if let Err(e) = recorded {
                models::forget_created(store, created);
                return Err(e.into());
            }
        }
        Ok(model)
    })?;
    Ok(ModelImported {
        model: req.name.to_string(),
        weights: model.record.weights,
        layout: model.config.layout().to_string(),
        config: model.config,
        naming: naming(layout),
        converted_f64: req.file.converted_f64.clone(),
        origin: origin.cloned(),
        notes: Vec::new(),
    })
}

/// The origin recorded with a model's import, if it came from a file.
pub fn origin_of(store: &Store, model: i64) -> Result<Option<Origin>> {
    let events = store.events(&EventFilter {
        model: Some(model),
        kind: Some("model-import".into()),
        ..Default::default()
    })?;
    Ok(events
        .iter()
        .max_by_key(|e| e.id)
        .and_then(|e| serde_json::from_str(&e.detail).ok()))
}

pub fn naming(layout: WeightsLayout) -> &'static str {
    match layout {
        WeightsLayout::Torch => "torch",
        WeightsLayout::Keras => "keras",
    }
}

/// Which naming scheme a weights file uses: PyTorch's (`weight_ih_l0`)
/// or Keras's (`.../kernel`); refuses a file with both or neither.
fn detect_layout(file: &TensorFile) -> Result<WeightsLayout> {
    let names = file.names();
    let torch = names.iter().any(|n| n.contains("weight_ih_l"));
    let keras = names
        .iter()
        .any(|n| n.ends_with("/kernel") || n.ends_with("recurrent_kernel"));
    match (torch, keras) {
        (true, false) => Ok(WeightsLayout::Torch),
        (false, true) => Ok(WeightsLayout::Keras),
        (true, true) => bail!("it holds both PyTorch names (weight_ih_l0) and Keras names (.../kernel); pass --layout torch or --layout keras"),
        (false, false) => bail!("its tensor names ({}) are neither PyTorch's (lstm.weight_ih_l0, ...) nor Keras's (lstm/kernel, ...); rename them, or pass --layout torch|keras", names.iter().take(6).cloned().collect::<Vec<_>>().join(", ")),
    }
}

/// One model in the list (the `model list` JSON's rows).
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub model: String,
    pub weights: WeightsId,
    /// As stored (null when unreadable).
    pub config: serde_json::Value,
    pub created_at: i64,
    /// Trained here (else imported).
    #[serde(skip)]
    pub trained: bool,
}

pub fn list(store: &Store) -> Result<Vec<ModelSummary>> {
    list_on(&mut Backend::Embedded(store))
}

/// Every model of either store, oldest first.
pub fn list_on(backend: &mut Backend) -> Result<Vec<ModelSummary>> {
    Ok(backend
        .model_records()?
        .into_iter()
        .map(|m| ModelSummary {
            config: serde_json::from_str(&m.config).unwrap_or_default(),
            model: m.name,
            weights: m.weights,
            created_at: m.created_at,
            trained: m.training.is_some(),
        })
        .collect())
}

/// One model in full (the `model show` JSON).
#[derive(Debug, Clone, Serialize)]
pub struct ModelDetail {
    pub model: String,
    pub weights: WeightsId,
    pub layout: String,
    pub config: ModelConfig,
    /// How it was trained (null when imported).
    pub training: Option<serde_json::Value>,
    /// The file it was imported from (null when trained, or imported from arrays).
    pub origin: Option<Origin>,
    pub streams: Vec<StreamHead>,
    #[serde(skip)]
    pub created_at: i64,
    /// The training record as stored.
    #[serde(skip)]
    pub training_text: Option<String>,
}

/// Where one stream of a model is.
#[derive(Debug, Clone, Serialize)]
pub struct StreamHead {
    pub stream: String,
    pub state: StateId,
}

pub fn show(store: &Store, name: Option<&str>) -> Result<ModelDetail> {
    store.read(|store| show_on(&mut Backend::Embedded(store), name))
}

/// One model of either store (the newest when no name is given); a
/// shared store keeps no import origin.
pub fn show_on(backend: &mut Backend, name: Option<&str>) -> Result<ModelDetail> {
    let model = backend.model(name)?;
    let streams = backend.stream_heads(&model)?;
    let origin = match backend {
        Backend::Embedded(store) => origin_of(store, model.record.id)?,
        Backend::Shared(_) => None,
    };
    Ok(ModelDetail {
        model: model.record.name.clone(),
        weights: model.record.weights,
        layout: model.config.layout().to_string(),
        training: model
            .record
            .training
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok()),
        origin,
        streams: streams
            .into_iter()
            .map(|(stream, state)| StreamHead { stream, state })
            .collect(),
        created_at: model.record.created_at,
        training_text: model.record.training.clone(),
        config: model.config,
    })
}

/// The model's weights as a safetensors file under `layout`'s names: the
/// stored file itself for PyTorch names (re-hashed on load), converted for
/// Keras names.
pub fn export_weights(store: &Store, model: &Model, layout: WeightsLayout) -> Result<Vec<u8>> {
    Ok(match layout {
        WeightsLayout::Torch => store.load_weights(&model.record.weights)?,
        WeightsLayout::Keras => models::weights(store, model)?.to_keras_file().encode(),
    })
}

/// The model as a Keras 3 `.keras` file: stateful layers at its batch size.
pub fn export_keras(store: &Store, model: &Model) -> Result<Vec<u8>> {
    let mut weights = models::weights(store, model)?;
    // The stored weights leave the batch out of their id; the model keeps it.
    weights.config.batch_size = model.config.batch_size;
    files::keras_export::write(&weights)
}
