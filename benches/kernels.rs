//! Kernel speed, each figure beside a reference measured in the same run:
//!
//! - the batch-invariant product at the training shapes, in GFLOP/s beside
//!   candle's (non-invariant) matmul of the same shapes;
//! - one training batch of the issue's model (LSTM(256), 8 features,
//!   50 steps, batch 64, Dense(1), MSE): fused beside candle's autograd;
//! - burn-in of 256 one-slot LSTM-512 states x 40 steps: fused beside the
//!   candle path and beside numpy (OpenBLAS) doing the same matrix
//!   products (`python3` with numpy, or `STATECTL_BENCH_PYTHON`).
//!
//! `cargo bench --bench kernels`; `STATECTL_BENCH_QUICK=1` for fewer
//! repetitions; `cargo bench --bench kernels -- burn-in` (or `products`,
//! `training`) runs only that section, e.g. under a profiler. No timing is
//! asserted anywhere.

use std::time::Instant;

#[path = "common/record.rs"]
mod record;
use record::{record, Figure};

use candle_core::{Device, Tensor as CTensor};
use statectl::kernels::gemm::{gemm, MatA, PackedB};
use statectl::kernels::{sample_values as noise, Kernel};
use statectl::model::{predict_with, Head, ModelConfig, Outputs};
use statectl::state::{Cell, StateValue};
use statectl::tensors::Tensor;
use statectl::train::{keras_init, train, Dataset, RecordEvery, Targets, TrainConfig};

/// Best of `reps` runs, in seconds.
fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn products(reps: usize) {
    println!("matrix products (GFLOP/s, best of {reps}):");
    println!(
        "  {:<44} {:>8} {:>8} {:>8} {:>7}",
        "shape m x k x n", "fused", "fused Aᵀ", "candle", "ratio"
    );
    for &(m, k, n, what) in &[
        (64, 256, 1024, "recurrent step (batch 64)"),
        (64, 1024, 256, "backward dh (batch 64)"),
        (1024, 3200, 256, "weight gradient dW_hh"),
        (3200, 8, 1024, "input projection"),
        (256, 512, 2048, "burn-in step (256 slots)"),
    ] {
        let a = noise(m * k, 1);
        let b = noise(k * n, 2);
        let packed = PackedB::from_rows(&b, k, n);
        let mut c = vec![0f32; m * n];
        let fused = best(reps, || {
            gemm(MatA::rows(&a, m, k), &packed, &mut c, n, false)
        });
        // The weight gradient reads A transposed (dZᵀ): time that form too.
        let a_t = noise(k * m, 3);
        let transposed = best(reps, || {
            gemm(MatA::transposed(&a_t, m, k), &packed, &mut c, n, false)
        });
        let ca = CTensor::from_vec(a.clone(), (m, k), &Device::Cpu).expect("tensor");
        let cb = CTensor::from_vec(b.clone(), (k, n), &Device::Cpu).expect("tensor");
        let candle = best(reps, || {
            ca.matmul(&cb).expect("matmul");
        });
        let flops = 2.0 * (m * k * n) as f64;
        record(&Figure {
            workload: &format!("batch-invariant product {m} x {k} x {n} ({what})"),
            figure: flops / fused / 1e9,
            unit: "GFLOP/s",
            reference: "candle's matmul (not batch-invariant)",
            reference_figure: flops / candle / 1e9,
            ratio: candle / fused,
            ratio_means: "x candle's speed",
            rerun: "cargo bench --bench kernels -- products",
            headline: false,
        });
        println!(
            "  {:<44} {:>8.1} {:>8.1} {:>8.1} {:>6.2}x",
            format!("{m} x {k} x {n} {what}"),
            flops / fused / 1e9,
            flops / transposed / 1e9,
            flops / candle / 1e9,
            candle / fused
        );
    }
}

/// ms per batch of the issue's training shape with `kernel`.
fn training(kernel: Kernel, batches: usize) -> f64 {
    let (batch, steps, features, units) = (64, 50, 8, 256);
    let n = batch * batches;
    let data = Dataset {
        x: Tensor::new(vec![n, steps, features], noise(n * steps * features, 7)),
        targets: Targets::Values(Tensor::new(vec![n, 1], noise(n, 8))),
        per_step: false,
    };
    let config = ModelConfig {
        cell: Cell::Lstm,
        input_size: features,
        units: vec![units],
        output_size: 1,
        head: Head::Linear,
        outputs: Outputs::Last,
        batch_size: batch,
    };
    let cfg = TrainConfig {
        batch_size: batch,
        epochs: 1,
        lr: 1e-3,
        seed: 1,
        stateful: true,
        shuffle: false,
        record: RecordEvery::End,
        kernel,
        validation_split: None,
        validation_samples: None,
        patience: None,
        keep_best: false,
        lr_changes: Vec::new(),
    };
    let init = keras_init(&config, 1);
    let t = Instant::now();
    train(&data, &cfg, init, &mut |_| {}).expect("training");
    t.elapsed().as_secs_f64() * 1e3 / batches as f64
}

/// Seconds numpy takes for burn-in's matrix products (the input
/// projection of every step, then one recurrent product per step), or
/// None when python3 with numpy is not at hand.
fn numpy_burn_in(slots: usize, steps: usize, features: usize, units: usize) -> Option<f64> {
    let script = format!(
        r#"
import time, numpy as np
rng = np.random.default_rng(0)
x = rng.standard_normal(({slots} * {steps}, {features}), dtype=np.float32)
w = rng.standard_normal(({features}, 4 * {units}), dtype=np.float32)
u = rng.standard_normal(({units}, 4 * {units}), dtype=np.float32)
h = rng.standard_normal(({slots}, {units}), dtype=np.float32)
best = 1e9
for _ in range(5):
    t = time.perf_counter()
    z = x @ w
    for s in range({steps}):
        z[s * {slots}:(s + 1) * {slots}] += h @ u
    best = min(best, time.perf_counter() - t)
print(best)
"#
    );
    let python = std::env::var("STATECTL_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .args(["-c", &script])
        .env(
            "OMP_NUM_THREADS",
            std::env::var("RAYON_NUM_THREADS").unwrap_or_default(),
        )
        .output()
        .ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// Burn-in of 256 one-slot LSTM-512 states over 40 steps of 512 features.
fn burn_in(reps: usize) {
    let (slots, steps, features, units) = (256, 40, 512, 512);
    let config = ModelConfig {
        cell: Cell::Lstm,
        input_size: features,
        units: vec![units],
        output_size: 1,
        head: Head::Linear,
        outputs: Outputs::Last,
        batch_size: slots,
    };
    let w = keras_init(&config, 3);
    let x = Tensor::new(
        vec![slots, steps, features],
        noise(slots * steps * features, 4),
    );
    let layout = config.layout();
    let state = StateValue::new(
        layout.clone(),
        (0..slots)
            .map(|s| noise(layout.slot_len(), 10 + s as u32))
            .collect(),
    )
    .expect("state");
    let flops = 2.0 * (slots * steps * 4 * units * (features + units)) as f64;
    let fused = best(reps, || {
        predict_with(Kernel::Fused, &w, &x, &state).expect("burn-in");
    });
    let candle = best(1, || {
        predict_with(Kernel::Candle, &w, &x, &state).expect("burn-in");
    });
    println!(
        "\nburn-in: 256 one-slot LSTM-512 states x 40 steps of 512 features ({:.0} GFLOP):",
        flops / 1e9
    );
    println!(
        "  fused-1 {:.3} s ({:.0} GFLOP/s)   candle {:.3} s ({:.2}x)",
        fused,
        flops / fused / 1e9,
        candle,
        candle / fused
    );
    let workload = "burn-in: 256 one-slot LSTM-512 states x 40 steps of 512 features";
    let rerun = "STATECTL_BENCH_PYTHON=.venv/bin/python cargo bench --bench kernels -- burn-in";
    record(&Figure {
        workload,
        figure: fused,
        unit: "s",
        reference: "candle's ops",
        reference_figure: candle,
        ratio: fused / candle,
        ratio_means: "x candle's time",
        rerun,
        headline: false,
    });
    match numpy_burn_in(slots, steps, features, units) {
        Some(numpy) => {
            println!(
                "  numpy/OpenBLAS, the same matrix products only: {numpy:.3} s; fused-1 takes {:.2}x numpy's time",
                fused / numpy
            );
            record(&Figure {
                workload,
                figure: fused,
                unit: "s",
                reference: "numpy/OpenBLAS doing only the same matrix products",
                reference_figure: numpy,
                ratio: fused / numpy,
                ratio_means: "x numpy's time",
                rerun,
                headline: true,
            });
        }
        None => println!(
            "  (python3 with numpy not found: set STATECTL_BENCH_PYTHON for the numpy reference)"
        ),
    }
}

fn main() {
    if std::env::var("RAYON_NUM_THREADS").is_err() {
        std::env::set_var("RAYON_NUM_THREADS", "2");
    }
    let quick = std::env::var("STATECTL_BENCH_QUICK").is_ok();
    // Cargo passes `--bench`; any other argument names the sections to run.
    let sections: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| sections.is_empty() || sections.iter().any(|s| s == name);
    if wanted("products") {
        products(if quick { 3 } else { 20 });
    }
    if wanted("burn-in") {
        burn_in(if quick { 2 } else { 5 });
    }
    if !wanted("training") {
        return;
    }
    let batches = if quick { 30 } else { 100 };
    println!("\ntraining step: LSTM(256), 8 features, 50 steps, batch 64, Dense(1), MSE, Adam ({batches} batches):");
    let fused = training(Kernel::Fused, batches);
    let candle = training(Kernel::Candle, batches);
    println!(
        "  fused-1 {fused:7.1} ms/batch   candle {candle:7.1} ms/batch   ({:.2}x)",
        candle / fused
    );
    println!(
        "  (5.2 GFLOP a batch: fused-1 at {:.0} GFLOP/s)",
        5.24e9 / (fused / 1e3) / 1e9
    );
    record(&Figure {
        workload: "training step in-process: LSTM(256), 8 features, 50 steps, batch 64, Dense(1), MSE, Adam",
        figure: fused,
        unit: "ms/batch",
        reference: "candle's autograd",
        reference_figure: candle,
        ratio: candle / fused,
        ratio_means: "x candle's speed",
        rerun: "cargo bench --bench kernels -- training",
        headline: false,
    });
}
