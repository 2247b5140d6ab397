//! The model registry as users see it: register weights as a model, list
//! the models, show one, and export its weights under either naming.

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

use super::models::{self, Model, Registration};
use crate::id::{StateId, WeightsId};
use crate::model::{
    import_keras, import_torch, Head, ModelConfig, Outputs, Weights, WeightsLayout,
};
use crate::store::Store;
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
    pub batch_size: usize,
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
}

pub fn import(store: &Store, req: &ModelImport) -> Result<ModelImported> {
    let source = req.source;
    crate::limits::check_batch(req.batch_size)?;
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
        WeightsLayout::Torch => import_torch(req.file, provisional, req.batch_size),
        WeightsLayout::Keras => import_keras(req.file, req.layers, provisional, req.batch_size),
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
    let model = models::register(
        store,
        &Registration {
            name: req.name,
            weights: &weights,
            training: None,
            replace: req.replace,
        },
    )?;
    Ok(ModelImported {
        model: req.name.to_string(),
        weights: model.record.weights,
        layout: model.config.layout().to_string(),
        config: model.config,
        naming: naming(layout),
        converted_f64: req.file.converted_f64.clone(),
    })
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
    Ok(store
        .list_models()?
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
    store.read(|store| -> Result<_> {
        let model = models::find(store, name)?;
        let streams = store.streams_of(model.record.id)?;
        Ok(ModelDetail {
            model: model.record.name.clone(),
            weights: model.record.weights,
            layout: model.config.layout().to_string(),
            training: model
                .record
                .training
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok()),
            streams: streams
                .into_iter()
                .map(|s| StreamHead {
                    stream: s.name,
                    state: s.state,
                })
                .collect(),
            created_at: model.record.created_at,
            training_text: model.record.training.clone(),
            config: model.config,
        })
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
