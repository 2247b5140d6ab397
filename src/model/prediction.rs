//! What a forward pass gives, whichever kernel computed it.

use crate::state::StateValue;

/// What one stateful prediction gives.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// `shape` row-major.
    pub logits: Vec<f32>,
    /// `shape`: softmax probabilities, or the logits for a linear head.
    pub outputs: Vec<f32>,
    /// `[batch, out]`, or `[batch, steps, out]` for per-step outputs.
    pub shape: Vec<usize>,
    pub state: StateValue,
}
