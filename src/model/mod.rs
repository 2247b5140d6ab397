//! The network: its config, its weights in torch layout (and the Keras
//! import), and the stateful forward pass (the fused kernels, and candle's
//! ops for events recorded before them). Knows tensors, never SQL.

#[cfg(feature = "candle")]
pub mod candle_net;
#[cfg(not(feature = "candle"))]
#[path = "candle_absent.rs"]
mod candle_net;
mod config;
pub mod files;
pub mod fused;
mod import;
pub mod network;
mod prediction;
mod weights;

#[cfg(feature = "candle")]
pub use candle_net::{to_candle, Network};
pub use config::{Head, ModelConfig, Outputs};
pub use import::{import_keras, import_torch, WeightsLayout};
pub use network::{predict, predict_with, Prediction};
pub use weights::{LayerWeights, ModelError, Weights, CONFIG_METADATA_KEY};
