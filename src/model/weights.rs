//! Weights in the PyTorch layout candle-nn's LSTM uses, with one bias per
//! layer as Keras has (`bias_hh` is folded into `bias_ih` on import and
//! written back as zeros, so the file still loads into `nn.LSTM`).

use thiserror::Error;

use super::config::ModelConfig;
use crate::tensors::{shape_text, Tensor, TensorFile};

/// Metadata key holding the model config as JSON in a weights file. One
/// key only, so the file's bytes (and its id) never depend on key order.
pub const CONFIG_METADATA_KEY: &str = "statectl.config";

#[derive(Debug, Error)]
pub enum ModelError {
    #[error("weights file lacks tensor '{name}'; {hint}")]
    MissingTensor { name: String, hint: String },
    #[error("tensor '{name}' has shape {found}, expected {expected}")]
    Shape {
        name: String,
        found: String,
        expected: String,
    },
    #[error("{0}")]
    Layout(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LayerWeights {
    /// `[4H, in]`, gate blocks i, f, g, o.
    pub w_ih: Tensor,
    /// `[4H, H]`.
    pub w_hh: Tensor,
    /// `[4H]`, the one bias (Keras's `bias`, torch's `bias_ih + bias_hh`).
    pub bias: Tensor,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub config: ModelConfig,
    pub layers: Vec<LayerWeights>,
    /// `[out, H_last]`.
    pub head_w: Tensor,
    /// `[out]`.
    pub head_b: Tensor,
}

pub fn expect_shape(name: &str, tensor: &Tensor, expected: &[usize]) -> Result<(), ModelError> {
    if tensor.shape != expected {
        return Err(ModelError::Shape {
            name: name.to_string(),
            found: tensor.shape_text(),
            expected: shape_text(expected),
        });
    }
    Ok(())
}

impl Weights {
    /// Checks every tensor against the config.
    pub fn validate(&self) -> Result<(), ModelError> {
        let cfg = &self.config;
        if self.layers.len() != cfg.units.len() {
            return Err(ModelError::Layout(format!(
                "{} layer weight set(s) for {} layer(s)",
                self.layers.len(),
                cfg.units.len()
            )));
        }
        for (k, layer) in self.layers.iter().enumerate() {
            let h = cfg.units[k];
            expect_shape(
                &format!("lstm.weight_ih_l{k}"),
                &layer.w_ih,
                &[4 * h, cfg.layer_input(k)],
            )?;
            expect_shape(&format!("lstm.weight_hh_l{k}"), &layer.w_hh, &[4 * h, h])?;
            expect_shape(&format!("lstm.bias_ih_l{k}"), &layer.bias, &[4 * h])?;
        }
        let last = *cfg.units.last().unwrap_or(&0);
        expect_shape("head.weight", &self.head_w, &[cfg.output_size, last])?;
        expect_shape("head.bias", &self.head_b, &[cfg.output_size])?;
        Ok(())
    }

    /// The weights file: torch names, the architecture in the metadata.
    /// The batch size is left out: it belongs to a stream, and the same
    /// weights must have the same id whatever batch a stream starts with.
    pub fn to_file(&self) -> TensorFile {
        let mut config = serde_json::to_value(&self.config).unwrap_or_default();
        if let Some(map) = config.as_object_mut() {
            map.remove("batch_size");
        }
        self.file_with_config(config.to_string())
    }

    /// The same weights encoded the way `recorded` (a weights file of this
    /// store) was: files written before the batch size left the metadata
    /// carry it, and a replay must compare like with like.
    pub fn to_file_like(&self, recorded: &TensorFile) -> TensorFile {
        let legacy_batch = recorded
            .metadata
            .get(CONFIG_METADATA_KEY)
            .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
            .and_then(|c| c.get("batch_size").and_then(|b| b.as_u64()));
        match legacy_batch {
            Some(batch) => {
                let mut config = self.config.clone();
                config.batch_size = batch as usize;
                self.file_with_config(serde_json::to_string(&config).unwrap_or_default())
            }
            None => self.to_file(),
        }
    }

    fn file_with_config(&self, config: String) -> TensorFile {
        let mut file = TensorFile::default();
        for (k, layer) in self.layers.iter().enumerate() {
            file.insert(&format!("lstm.weight_ih_l{k}"), layer.w_ih.clone());
            file.insert(&format!("lstm.weight_hh_l{k}"), layer.w_hh.clone());
            file.insert(&format!("lstm.bias_ih_l{k}"), layer.bias.clone());
            let zeros = Tensor::new(layer.bias.shape.clone(), vec![0.0; layer.bias.data.len()]);
            file.insert(&format!("lstm.bias_hh_l{k}"), zeros);
        }
        file.insert("head.weight", self.head_w.clone());
        file.insert("head.bias", self.head_b.clone());
        file.metadata
            .insert(CONFIG_METADATA_KEY.to_string(), config);
        file
    }

    /// Reads a weights file statectl wrote (config in its metadata).
    pub fn from_file(file: &TensorFile) -> Result<Weights, ModelError> {
        let config: ModelConfig = file
            .metadata
            .get(CONFIG_METADATA_KEY)
            .and_then(|text| serde_json::from_str(text).ok())
            .ok_or_else(|| {
                ModelError::Layout(format!(
                    "weights file has no '{CONFIG_METADATA_KEY}' metadata; bring outside weights in with `statectl model import FILE --layout torch|keras`"
                ))
            })?;
        super::import::import_torch(file, config.head, config.batch_size)
    }

    /// Every parameter value, for checks such as finiteness.
    pub fn all_values(&self) -> impl Iterator<Item = &f32> {
        self.layers
            .iter()
            .flat_map(|l| l.w_ih.data.iter().chain(&l.w_hh.data).chain(&l.bias.data))
            .chain(&self.head_w.data)
            .chain(&self.head_b.data)
    }
}
