//! The network: its config, its weights in torch layout (and the Keras
//! import), and the stateful forward pass on candle tensors. Knows tensors,
//! never SQL.

mod config;
pub mod fused;
mod import;
pub mod network;
mod weights;

pub use config::{Head, ModelConfig, Outputs};
pub use import::{import_keras, import_torch, WeightsLayout};
pub use network::{predict, predict_with, to_candle, Network, Prediction};
pub use weights::{LayerWeights, ModelError, Weights, CONFIG_METADATA_KEY};
