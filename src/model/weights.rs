//! Weights in the PyTorch layout (`nn.LSTM`, `nn.GRU`). An LSTM layer has
//! one bias, as Keras has (`bias_hh` is folded into `bias_ih` on import and
//! written back as zeros, so the file still loads into `nn.LSTM`); a GRU
//! layer keeps both, since its recurrent bias sits inside `r ⊙ (…)`.

use thiserror::Error;

use super::config::ModelConfig;
use crate::state::Cell;
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
    /// `[gH, in]`: LSTM gate blocks i, f, g, o (g = 4); GRU r, z, n (g = 3).
    pub w_ih: Tensor,
    /// `[gH, H]`.
    pub w_hh: Tensor,
    /// `[gH]`: the LSTM's one bias (Keras's `bias`, torch's `bias_ih +
    /// bias_hh`), or the GRU's input bias `bias_ih`.
    pub bias: Tensor,
    /// `[3H]`: the GRU's recurrent bias `bias_hh`; `None` for an LSTM.
    pub bias_hh: Option<Tensor>,
}

impl LayerWeights {
    /// The layer's parameters in a fixed order (training walks them).
    pub fn params(&self) -> Vec<&Tensor> {
        let mut out = vec![&self.w_ih, &self.w_hh, &self.bias];
        out.extend(&self.bias_hh);
        out
    }

    pub fn params_mut(&mut self) -> Vec<&mut Tensor> {
        let mut out = vec![&mut self.w_ih, &mut self.w_hh, &mut self.bias];
        out.extend(&mut self.bias_hh);
        out
    }
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
        let (cell, g) = (cfg.cell.name(), cfg.cell.gates());
        for (k, layer) in self.layers.iter().enumerate() {
            let h = cfg.units[k];
            expect_shape(
                &format!("{cell}.weight_ih_l{k}"),
                &layer.w_ih,
                &[g * h, cfg.layer_input(k)],
            )?;
            expect_shape(&format!("{cell}.weight_hh_l{k}"), &layer.w_hh, &[g * h, h])?;
            expect_shape(&format!("{cell}.bias_ih_l{k}"), &layer.bias, &[g * h])?;
            match (&layer.bias_hh, cfg.cell) {
                (Some(b), Cell::Gru) => expect_shape(&format!("{cell}.bias_hh_l{k}"), b, &[g * h])?,
                (None, Cell::Lstm) => {}
                (None, Cell::Gru) => {
                    return Err(ModelError::MissingTensor {
                        name: format!("gru.bias_hh_l{k}"),
                        hint: "a GRU keeps its recurrent bias (it sits inside r ⊙ (W_hn h + b_hn)): give torch's bias_hh, or Keras's bias as [2, 3H]".into(),
                    })
                }
                (Some(_), Cell::Lstm) => {
                    return Err(ModelError::Layout("an LSTM layer has one bias; fold bias_hh into bias_ih".into()))
                }
            }
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
        let cell = self.config.cell.name();
        for (k, layer) in self.layers.iter().enumerate() {
            file.insert(&format!("{cell}.weight_ih_l{k}"), layer.w_ih.clone());
            file.insert(&format!("{cell}.weight_hh_l{k}"), layer.w_hh.clone());
            file.insert(&format!("{cell}.bias_ih_l{k}"), layer.bias.clone());
            let bias_hh = layer.bias_hh.clone().unwrap_or_else(|| {
                Tensor::new(layer.bias.shape.clone(), vec![0.0; layer.bias.data.len()])
            });
            file.insert(&format!("{cell}.bias_hh_l{k}"), bias_hh);
        }
        file.insert("head.weight", self.head_w.clone());
        file.insert("head.bias", self.head_b.clone());
        file.metadata
            .insert(CONFIG_METADATA_KEY.to_string(), config);
        file
    }

    /// The weights under Keras's names: per recurrent layer `lstm/...`
    /// (then `lstm_1/...`; `gru/...` for a GRU) with `kernel` [in, gH],
    /// `recurrent_kernel` [H, gH] and `bias` ([4H] for an LSTM; [2, 3H],
    /// input then recurrent row, for a GRU, whose gate blocks go back to
    /// Keras's z, r, h), and the head as `dense/kernel` [H, out],
    /// `dense/bias`. The architecture stays in the metadata.
    pub fn to_keras_file(&self) -> TensorFile {
        let t = |x: &Tensor| {
            Tensor::new(
                vec![x.shape[1], x.shape[0]],
                crate::tensors::transpose(&x.data, x.shape[0], x.shape[1]),
            )
        };
        let cell = self.config.cell;
        let mut file = self.to_file();
        file.tensors.clear();
        for (k, (layer, &h)) in self.layers.iter().zip(&self.config.units).enumerate() {
            let name = if k == 0 {
                cell.name().to_string()
            } else {
                format!("{}_{k}", cell.name())
            };
            match (&layer.bias_hh, cell) {
                (Some(bias_hh), Cell::Gru) => {
                    // Torch rows r, z, n back to Keras blocks z, r, h.
                    let keras_blocks = |x: &Tensor| {
                        let width = x.shape[1];
                        let block = |i: usize| &x.data[i * h * width..(i + 1) * h * width];
                        Tensor::new(x.shape.clone(), [block(1), block(0), block(2)].concat())
                    };
                    let column = |b: &Tensor| Tensor::new(vec![3 * h, 1], b.data.clone());
                    file.insert(&format!("{name}/kernel"), t(&keras_blocks(&layer.w_ih)));
                    file.insert(
                        &format!("{name}/recurrent_kernel"),
                        t(&keras_blocks(&layer.w_hh)),
                    );
                    let bias = [
                        keras_blocks(&column(&layer.bias)).data,
                        keras_blocks(&column(bias_hh)).data,
                    ]
                    .concat();
                    file.insert(&format!("{name}/bias"), Tensor::new(vec![2, 3 * h], bias));
                }
                _ => {
                    file.insert(&format!("{name}/kernel"), t(&layer.w_ih));
                    file.insert(&format!("{name}/recurrent_kernel"), t(&layer.w_hh));
                    file.insert(&format!("{name}/bias"), layer.bias.clone());
                }
            }
        }
        file.insert("dense/kernel", t(&self.head_w));
        file.insert("dense/bias", self.head_b.clone());
        file
    }

    /// The architecture a statectl weights file (either naming) states in
    /// its metadata, if any.
    pub fn stated_config(file: &TensorFile) -> Option<ModelConfig> {
        file.metadata
            .get(CONFIG_METADATA_KEY)
            .and_then(|text| serde_json::from_str(text).ok())
    }

    /// Every parameter value, for checks such as finiteness.
    pub fn all_values(&self) -> impl Iterator<Item = &f32> {
        self.layers
            .iter()
            .flat_map(|l| l.params().into_iter().flat_map(|t| t.data.iter()))
            .chain(&self.head_w.data)
            .chain(&self.head_b.data)
    }
}
