//! The fused kernels are batch-invariant: a slot's outputs and new state
//! have the same bits whether it runs alone, in a batch of 2, 7, 64 or 256,
//! at any position in the batch, on 1 thread or 2. Forward passes and
//! burn-in (a prediction's new state) alike; random shapes.

use proptest::prelude::*;
use statectl::kernels::Kernel;

fn noise(n: usize, seed: u64) -> Vec<f32> {
    statectl::kernels::sample_values(n, seed as u32)
}
use statectl::model::{predict_with, Head, ModelConfig, Outputs, Prediction, Weights};
use statectl::state::{Cell, StateValue};
use statectl::tensors::Tensor;
use statectl::train::keras_init;

fn run(threads: usize, w: &Weights, x: &Tensor, state: &StateValue) -> Prediction {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    pool.install(|| predict_with(Kernel::Fused, w, x, state).expect("prediction"))
}

/// Slots `slots` of the full batch's input and state.
fn pick(x: &Tensor, state: &StateValue, slots: &[usize]) -> (Tensor, StateValue) {
    let per = x.shape[1] * x.shape[2];
    let data = slots
        .iter()
        .flat_map(|&s| x.data[s * per..(s + 1) * per].iter().copied())
        .collect();
    let x = Tensor::new(vec![slots.len(), x.shape[1], x.shape[2]], data);
    let state = StateValue::new(
        state.layout.clone(),
        slots.iter().map(|&s| state.slots[s].clone()).collect(),
    )
    .expect("state");
    (x, state)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn a_slot_gives_the_same_bits_in_any_batch_on_any_thread_count(
        gru in any::<bool>(),
        units in prop::collection::vec(1usize..40, 1..3),
        features in 1usize..6,
        steps in 1usize..5,
        per_step in any::<bool>(),
        softmax in any::<bool>(),
        seed in 0u64..1000,
    ) {
        let config = ModelConfig {
            cell: if gru { Cell::Gru } else { Cell::Lstm },
            input_size: features,
            units: units.clone(),
            output_size: 3,
            head: if softmax { Head::Softmax } else { Head::Linear },
            outputs: if per_step { Outputs::Sequence } else { Outputs::Last },
            batch_size: 1,
        };
        let mut w = keras_init(&config, seed);
        for l in &mut w.layers {
            l.bias.data = noise(l.bias.data.len(), seed + 1);
        }
        let full = 256;
        let x = Tensor::new(vec![full, steps, features], noise(full * steps * features, seed + 2));
        let layout = config.layout();
        let slots: Vec<Vec<f32>> = (0..full)
            .map(|s| noise(layout.slot_len(), seed * 1000 + s as u64))
            .collect();
        let state = StateValue::new(layout, slots).expect("state");
        let reference = run(2, &w, &x, &state);
        let width = reference.outputs.len() / full;
        for (batch, threads) in [(1, 1), (2, 2), (7, 1), (7, 2), (64, 2), (256, 1)] {
            // Slots from the middle of the batch, so positions differ too.
            let chosen: Vec<usize> = (0..batch).map(|i| (i * 37 + 101) % full).collect();
            let (xs, ss) = pick(&x, &state, &chosen);
            let got = run(threads, &w, &xs, &ss);
            for (row, &slot) in chosen.iter().enumerate() {
                let at = |v: &[f32], r: usize| bits(&v[r * width..(r + 1) * width]);
                prop_assert_eq!(at(&got.outputs, row), at(&reference.outputs, slot), "outputs: batch {} threads {}", batch, threads);
                prop_assert_eq!(at(&got.logits, row), at(&reference.logits, slot), "logits: batch {} threads {}", batch, threads);
                prop_assert_eq!(bits(&got.state.slots[row]), bits(&reference.state.slots[slot]), "state: batch {} threads {}", batch, threads);
            }
        }
    }

    #[test]
    fn fused_forward_passes_match_the_candle_path(
        gru in any::<bool>(),
        units in prop::collection::vec(1usize..40, 1..3),
        features in 1usize..6,
        steps in 1usize..5,
        per_step in any::<bool>(),
        seed in 0u64..1000,
    ) {
        let config = ModelConfig {
            cell: if gru { Cell::Gru } else { Cell::Lstm },
            input_size: features,
            units,
            output_size: 4,
            head: Head::Softmax,
            outputs: if per_step { Outputs::Sequence } else { Outputs::Last },
            batch_size: 1,
        };
        let w = keras_init(&config, seed);
        let batch = 9;
        let x = Tensor::new(vec![batch, steps, features], noise(batch * steps * features, seed + 2));
        let layout = config.layout();
        let slots = (0..batch).map(|s| noise(layout.slot_len(), seed + 10 + s as u64)).collect();
        let state = StateValue::new(layout, slots).expect("state");
        let fused = predict_with(Kernel::Fused, &w, &x, &state).expect("fused");
        let candle = predict_with(Kernel::Candle, &w, &x, &state).expect("candle");
        prop_assert_eq!(&fused.shape, &candle.shape);
        for (what, a, b) in [
            ("outputs", &fused.outputs, &candle.outputs),
            ("logits", &fused.logits, &candle.logits),
        ] {
            for (p, q) in a.iter().zip(b.iter()) {
                prop_assert!((p - q).abs() <= 1e-6, "{}: {} vs {}", what, p, q);
            }
        }
        for (p, q) in fused.state.slots.iter().flatten().zip(candle.state.slots.iter().flatten()) {
            prop_assert!((p - q).abs() <= 1e-6, "state: {} vs {}", p, q);
        }
    }
}
