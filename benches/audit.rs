//! Audit speed: record N predict events of the reference model (default
//! 10,000; `STATECTL_BENCH_EVENTS` to change), then time `statectl audit`
//! replaying all of them. Beside it, measured in the same run: the time to
//! record them, and the bare forward passes with no store, so the ratios
//! hold on a noisy machine.

use std::path::Path;
use std::time::Instant;

use clap::Parser;
use statectl::cli::Cli;
use statectl::ops::{self, predict::PredictRequest};
use statectl::state::StateValue;
use statectl::store::Store;
use statectl::tensors::{Tensor, TensorFile};

#[path = "common/record.rs"]
mod results;

fn run(store: &Path, args: &[&str]) {
    let mut all = vec!["statectl", "--store", store.to_str().unwrap_or("."), "-q"];
    all.extend_from_slice(args);
    let code = statectl::commands::run(Cli::parse_from(all)).expect("command failed");
    assert_eq!(code, 0, "{args:?} exited {code}");
}

fn main() {
    std::env::set_var("RAYON_NUM_THREADS", "2");
    let events: usize = std::env::var("STATECTL_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("store");
    let weights = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/weights.torch_layout.safetensors");
    run(
        &store,
        &[
            "model",
            "import",
            weights.to_str().unwrap_or(""),
            "--layout",
            "torch",
            "--head",
            "softmax",
            "--batch-size",
            "6",
            "--name",
            "ref",
        ],
    );

    let x_file = TensorFile::decode(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/x_test.safetensors"),
        )
        .expect("fixture"),
    )
    .expect("fixture");
    let x: Tensor = x_file.tensors["x"].clone();
    // The library API, as the CLI (and a Python binding) calls it.
    let store = Store::open(&store).expect("store");
    let model = ops::models::find(&store, Some("ref")).expect("model");
    let request = PredictRequest {
        model: &model,
        stream: "main",
        x: &x,
        from: None,
        advance: true,
        tag: None,
        retry: false,
        kernel: Default::default(),
        new_stream: false,
    };

    let started = Instant::now();
    for _ in 0..events {
        ops::predict::run(&store, &request, &mut |_: &statectl::model::Prediction| {
            Ok(())
        })
        .expect("predict");
    }
    let record = started.elapsed().as_secs_f64();

    let w = ops::models::weights(&store, &model).expect("weights");
    let mut state = StateValue::zeros(&model.config.layout(), 6);
    let started = Instant::now();
    for _ in 0..events {
        state = statectl::model::predict(&w, &x, &state)
            .expect("forward")
            .state;
    }
    let forward = started.elapsed().as_secs_f64();

    let started = Instant::now();
    run(store.root(), &["audit"]);
    let audit = started.elapsed().as_secs_f64();

    println!("predict events:              {events}");
    println!(
        "bare forward passes:         {forward:8.3} s  ({:7.1} us/event)  reference",
        forward * 1e6 / events as f64
    );
    println!(
        "record (predict + store):    {record:8.3} s  ({:7.1} us/event)  {:5.2}x forward",
        record * 1e6 / events as f64,
        record / forward
    );
    println!("audit (replay + compare):    {audit:8.3} s  ({:7.1} us/event)  {:5.2}x forward, {:5.2}x record", audit * 1e6 / events as f64, audit / forward, audit / record);
    results::record(&results::Figure {
        workload: &format!("audit of {events} predict events (LSTM(16), batch 6)"),
        figure: audit,
        unit: "s",
        reference: "recording them (predict and store)",
        reference_figure: record,
        ratio: audit / record,
        ratio_means: "x the recording's time",
        rerun: "cargo bench --bench audit",
        headline: true,
    });
}
