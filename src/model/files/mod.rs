//! The model files people already have, recognised by their content:
//! safetensors, Keras's `.keras` and `.weights.h5`, and PyTorch's
//! `torch.save` zips. Each is read into tensors under Keras's or
//! PyTorch's names, which the imports in `model::import` map to
//! statectl's weights, so the weights id never depends on the file format.

mod keras_config;
pub mod keras_export;
mod keras_weights;
mod torch_file;
mod unpickle;
mod zipped;

use anyhow::{anyhow, bail, Result};

pub use keras_config::KerasArchitecture;

use crate::model::WeightsLayout;
use crate::tensors::TensorFile;
use zipped::Zipped;

/// The largest `config.json` read: Keras writes a few kilobytes a layer.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// What kind of file it is, by its first bytes and members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Safetensors,
    /// A `.keras` zip: `config.json` and `model.weights.h5`.
    Keras,
    /// A Keras 3 `.weights.h5`.
    KerasWeights,
    /// A `torch.save` zip.
    Torch,
}

impl FileFormat {
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Safetensors => "safetensors",
            FileFormat::Keras => "keras",
            FileFormat::KerasWeights => "keras-weights-h5",
            FileFormat::Torch => "torch",
        }
    }
}

/// A model file read into named tensors.
pub struct ModelFile {
    pub format: FileFormat,
    pub tensors: TensorFile,
    /// The naming the tensors use (`None`: detect it from the names).
    pub layout: Option<WeightsLayout>,
    /// What a `.keras` file says of the model.
    pub architecture: Option<KerasArchitecture>,
    /// The recurrent layers in order, where the file fixes it.
    pub layer_order: Option<Vec<String>>,
    /// What was read and what was left, for the user.
    pub notes: Vec<String>,
}

const HDF5_MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";
/// A pickle (protocol 2) starting with torch's legacy magic number.
const TORCH_LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

/// Reads a model file of any supported format from its bytes.
pub fn read(bytes: Vec<u8>) -> Result<ModelFile> {
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return read_zip(&bytes);
    }
    if bytes.starts_with(HDF5_MAGIC) {
        let weights = keras_weights::read(bytes)?;
        return Ok(ModelFile {
            format: FileFormat::KerasWeights,
            tensors: weights.file,
            layout: Some(WeightsLayout::Keras),
            architecture: None,
            layer_order: Some(weights.recurrent),
            notes: Vec::new(),
        });
    }
    if bytes.starts_with(TORCH_LEGACY_MAGIC) {
        bail!("it is a PyTorch file in the format before PyTorch 1.6, which statectl does not read; save it again with torch.save(state_dict, path, _use_new_zipfile_serialization=True)");
    }
    if bytes.first() == Some(&0x80) && bytes.get(1).is_some_and(|&p| p <= 5) {
        bail!("it is a Python pickle, not a torch.save zip; save the model's state_dict with torch.save(model.state_dict(), path)");
    }
    let tensors = TensorFile::decode(&bytes).map_err(|e| {
        anyhow!("{e} (statectl reads safetensors, .keras, Keras .weights.h5 and PyTorch .pt files)")
    })?;
    Ok(ModelFile {
        format: FileFormat::Safetensors,
        tensors,
        layout: None,
        architecture: None,
        layer_order: None,
        notes: Vec::new(),
    })
}

fn read_zip(bytes: &[u8]) -> Result<ModelFile> {
    let mut zip = Zipped::open(bytes)?;
    if zip.has("config.json") && zip.has("model.weights.h5") {
        let architecture = keras_config::read(&zip.read("config.json", MAX_CONFIG_BYTES)?)?;
        let size = zip.size("model.weights.h5")?;
        let weights = keras_weights::read(zip.read("model.weights.h5", size)?)?;
        return Ok(ModelFile {
            format: FileFormat::Keras,
            tensors: weights.file,
            layout: Some(WeightsLayout::Keras),
            layer_order: Some(architecture.recurrent.clone()),
            architecture: Some(architecture),
            notes: Vec::new(),
        });
    }
    if zip.names().iter().any(|n| n.ends_with("data.pkl")) {
        let weights = torch_file::read(&mut zip)?;
        return Ok(ModelFile {
            format: FileFormat::Torch,
            tensors: weights.file,
            layout: Some(WeightsLayout::Torch),
            architecture: None,
            layer_order: None,
            notes: weights.notes,
        });
    }
    bail!(
        "it is a zip but neither a .keras file (config.json and model.weights.h5) nor a torch.save file (data.pkl); its members: {}",
        zip.names().iter().take(6).cloned().collect::<Vec<_>>().join(", ")
    )
}
