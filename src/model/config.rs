//! The model config: what a weights file alone does not say.

use serde::{Deserialize, Serialize};

use crate::state::{Cell, Layout};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Head {
    /// Classification: outputs are softmax probabilities over classes.
    Softmax,
    /// Regression: outputs are the head's values as they are.
    Linear,
}

impl Head {
    pub fn name(&self) -> &'static str {
        match self {
            Head::Softmax => "softmax",
            Head::Linear => "linear",
        }
    }
}

/// Where the head reads the recurrent output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outputs {
    /// At the last step only: outputs `[batch, out]` (Keras's default).
    #[default]
    Last,
    /// At every step (Keras's `return_sequences=True` then a Dense; R2D2's
    /// Q-value per step): outputs `[batch, steps, out]`.
    Sequence,
}

impl Outputs {
    pub fn is_last(&self) -> bool {
        *self == Outputs::Last
    }

    pub fn name(&self) -> &'static str {
        match self {
            Outputs::Last => "last",
            Outputs::Sequence => "sequence",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub cell: Cell,
    pub input_size: usize,
    /// Width of each stacked layer, input side first.
    pub units: Vec<usize>,
    pub output_size: usize,
    pub head: Head,
    /// Left out of the serialised config when `last`, so configs and
    /// weights ids written before per-step outputs existed stay the same.
    #[serde(default, skip_serializing_if = "Outputs::is_last")]
    pub outputs: Outputs,
    /// Batch size of the zero state a new stream starts from: a property of
    /// the model row, not of the weights (weights files leave it out).
    #[serde(default = "one")]
    pub batch_size: usize,
}

fn one() -> usize {
    1
}

impl ModelConfig {
    pub fn layout(&self) -> Layout {
        Layout {
            cell: self.cell,
            units: self.units.clone(),
        }
    }

    /// Input width of layer `k`.
    pub fn layer_input(&self, k: usize) -> usize {
        if k == 0 {
            self.input_size
        } else {
            self.units[k - 1]
        }
    }
}
