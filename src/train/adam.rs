//! Adam in Keras's form ("epsilon-hat"):
//! `alpha = lr*sqrt(1-b2^t)/(1-b1^t); m += (g-m)(1-b1); v += (g²-v)(1-b2);
//! w -= alpha*m/(sqrt(v)+eps)`, eps 1e-7, no weight decay. candle-nn's AdamW
//! divides the bias-corrected moments and decays weights by default; on the
//! reference model the two part by about 4e-3 within 8 steps.

use rayon::prelude::*;

pub struct Adam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
    step: i32,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl Adam {
    pub fn new(lr: f32, sizes: &[usize]) -> Adam {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            step: 0,
            m: sizes.iter().map(|n| vec![0.0; *n]).collect(),
            v: sizes.iter().map(|n| vec![0.0; *n]).collect(),
        }
    }

    /// Adam part way through a run: `step` updates made, with these
    /// moments (as [`Adam::step`] and [`Adam::moments`] gave them).
    pub fn resumed(lr: f32, step: i32, m: Vec<Vec<f32>>, v: Vec<Vec<f32>>) -> Adam {
        Adam {
            step,
            m,
            v,
            ..Adam::new(lr, &[])
        }
    }

    /// Updates made so far.
    pub fn step(&self) -> i32 {
        self.step
    }

    /// The first and second moments, in the parameters' order.
    pub fn moments(&self) -> (&[Vec<f32>], &[Vec<f32>]) {
        (&self.m, &self.v)
    }

    /// One update of every parameter from its gradient.
    pub fn update(&mut self, params: &mut [Vec<f32>], grads: &[Vec<f32>]) {
        self.step += 1;
        let t = self.step;
        let alpha = self.lr * (1.0 - self.beta2.powi(t)).sqrt() / (1.0 - self.beta1.powi(t));
        let (beta1, beta2, epsilon) = (self.beta1, self.beta2, self.epsilon);
        for (i, (w, g)) in params.iter_mut().zip(grads).enumerate() {
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            // Each element is updated on its own, so splitting a large
            // parameter across threads changes no bit.
            w.par_chunks_mut(ELEMENTS_PER_TASK)
                .zip(m.par_chunks_mut(ELEMENTS_PER_TASK))
                .zip(v.par_chunks_mut(ELEMENTS_PER_TASK))
                .zip(g.par_chunks(ELEMENTS_PER_TASK))
                .for_each(|(((w, m), v), g)| {
                    for j in 0..w.len() {
                        m[j] += (g[j] - m[j]) * (1.0 - beta1);
                        v[j] += (g[j] * g[j] - v[j]) * (1.0 - beta2);
                        w[j] -= (m[j] * alpha) / (v[j].sqrt() + epsilon);
                    }
                });
        }
    }
}

/// Parameters smaller than this are updated by one thread.
const ELEMENTS_PER_TASK: usize = 1 << 15;
