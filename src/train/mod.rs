//! Training: data sets, Keras-like initial weights, Keras's Adam, and the
//! stateful training loop. Knows tensors, never SQL.

mod adam;
mod batch_step;
#[cfg(feature = "candle")]
mod candle_batch;
#[cfg(not(feature = "candle"))]
#[path = "candle_absent.rs"]
mod candle_batch;
mod checkpoint;
mod data;
mod init;
mod trainer;

pub use adam::Adam;
pub use checkpoint::{Best, Checkpoint, TrainedState};
pub use data::{alphabet, dataset_from_csv, dataset_from_safetensors, Dataset, Targets};
pub use init::keras_init;
pub use trainer::{
    check_settings, checkpoint_shapes, first_checkpoint, train, train_from, Boundary, Flow,
    LrChange, Outcome, Progress, RecordEvery, TrainConfig, TrainReport,
};
