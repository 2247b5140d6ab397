//! What one training batch gives, whichever kernel computed it.

use crate::model::fused::States;

/// One batch's loss, gradients (in the trainer's flat order), final states and
/// predicted class per target row (sample-major; empty for regression).
pub struct BatchStep {
    pub loss: f32,
    pub grads: Vec<Vec<f32>>,
    pub finals: States,
    pub predicted: Vec<usize>,
}
