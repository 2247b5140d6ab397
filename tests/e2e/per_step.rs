//! Per-step outputs (Keras's `return_sequences=True` then a Dense; R2D2's
//! Q-value at every step): Keras conformance, predict shapes, audit,
//! staleness over steps, training on per-step targets, and bad input.

use statectl::tensors::{Tensor, TensorFile};

use crate::util::*;

fn seq_file(name: &str) -> TensorFile {
    TensorFile::decode(&std::fs::read(fixture(&format!("keras_gru/{name}"))).unwrap()).unwrap()
}

/// `[batch][steps][out]` JSON as flat f32 values.
fn flat3(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|row| matrix(row).concat())
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn seq_env() -> Env {
    let env = Env::new();
    let weights = fixture("keras_gru/seq_weights.keras_layout.safetensors");
    let out = env.json(&[
        "model",
        "import",
        s(&weights),
        "--head",
        "linear",
        "--outputs",
        "sequence",
        "--batch-size",
        "3",
        "--name",
        "core",
    ]);
    assert_eq!(out["config"]["outputs"], "sequence");
    let states = seq_file("seq_states.safetensors");
    let start = env.write_tensors(
        "start.safetensors",
        &[
            ("l0.h", states.tensors["start.l0.h"].clone()),
            ("l0.c", states.tensors["start.l0.c"].clone()),
        ],
    );
    env.ok(&["import", s(&start), "--tag", "start"]);
    env
}

#[test]
fn per_step_outputs_match_keras_and_audit_every_step() {
    let env = seq_env();
    let x = fixture("keras_gru/seq_x.safetensors");
    let out_file = env.path("q.safetensors");
    let out = env.json(&[
        "predict",
        "--input",
        s(&x),
        "--from",
        "start",
        "-o",
        s(&out_file),
    ]);
    // [batch 3][steps 6][outputs 2]
    assert_eq!(out["outputs"].as_array().unwrap().len(), 3);
    assert_eq!(out["outputs"][0].as_array().unwrap().len(), 6);
    assert_eq!(out["outputs"][0][0].as_array().unwrap().len(), 2);
    let expected = seq_file("seq_expected.safetensors");
    let y = flat3(&out["outputs"]);
    assert!(
        max_abs_diff(&y, &expected.tensors["y"].data) < 1e-6,
        "{}",
        max_abs_diff(&y, &expected.tensors["y"].data)
    );
    let written = TensorFile::decode(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(written.tensors["outputs"].shape, vec![3, 6, 2]);
    let after = env.path("after.safetensors");
    env.ok(&["export", "HEAD", "-o", s(&after)]);
    let after = TensorFile::decode(&std::fs::read(&after).unwrap()).unwrap();
    let states = seq_file("seq_states.safetensors");
    for t in ["h", "c"] {
        let d = max_abs_diff(
            &after.tensors[&format!("l0.{t}")].data,
            &states.tensors[&format!("after.l0.{t}")].data,
        );
        assert!(d < 1e-6, "after.l0.{t}: {d}");
    }
    assert_eq!(env.json(&["audit"])["reproduced"], 1);
    // A change at the last step of one slot is found by the audit.
    let event = out["event"].as_i64().unwrap();
    let output_id = out["output"].as_str().unwrap().to_string();
    let mut recorded = TensorFile::decode(
        &env.db()
            .query_row(
                "SELECT bytes FROM objects WHERE id = ?1",
                [id_bytes(&output_id)],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .unwrap(),
    )
    .unwrap();
    let last = recorded.tensors["outputs"].data.len() - 1;
    recorded.tensors.get_mut("outputs").unwrap().data[last] += 1e-3;
    // Recorded as if it had been so: a consistent object the event names.
    let bytes = recorded.encode();
    let id = {
        use sha2::{Digest, Sha256};
        Sha256::digest(&bytes).to_vec()
    };
    let db = env.db();
    db.execute(
        "INSERT INTO objects (id, bytes) VALUES (?1, ?2)",
        rusqlite::params![id, bytes],
    )
    .unwrap();
    db.execute(
        "UPDATE events SET output = ?1 WHERE id = ?2",
        rusqlite::params![id, event],
    )
    .unwrap();
    let run = env.run(&["--json", "audit", "--event", &event.to_string()]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let e = &report["events"][0];
    assert_eq!(e["status"], "mismatch", "{report}");
    // Slot 2's row holds its 6 steps: the change at its last step is found.
    assert_eq!(e["differences"][0]["tensor"], "outputs");
    assert_eq!(e["differences"][0]["slot"], 2);
}

#[test]
fn staleness_over_steps_reports_max_and_mean_per_slot() {
    let env = seq_env();
    let x = fixture("keras_gru/seq_x.safetensors");
    let d = env.json(&["diff", "start", "zeros", "--input", s(&x), "--per-slot"]);
    let o = &d["outputs"];
    assert_eq!(o["steps"], 6);
    let per_slot = o["per_slot"].as_array().unwrap();
    let means = o["per_slot_mean_over_steps"].as_array().unwrap();
    assert_eq!(per_slot.len(), 3);
    for (max, mean) in per_slot.iter().zip(means) {
        let (max, mean) = (max.as_f64().unwrap(), mean.as_f64().unwrap());
        assert!(mean > 0.0 && mean <= max + 1e-12, "{mean} > {max}");
    }
    let text = env.ok(&["diff", "start", "zeros", "--input", s(&x), "--per-slot"]);
    assert!(
        text.contains("over 6 steps") && text.contains("mean over steps"),
        "{text}"
    );
}

#[test]
fn a_per_step_model_learns_a_time_series_tenfold() {
    let env = Env::new();
    let csv = env.path("sine.csv");
    let mut text = String::from("value\n");
    for t in 0..120 {
        text.push_str(&format!("{}\n", (t as f32 * 0.3).sin()));
    }
    std::fs::write(&csv, text).unwrap();
    let out = env.json(&[
        "-q",
        "train",
        "--data",
        s(&csv),
        "--seq-len",
        "8",
        "--outputs",
        "sequence",
        "--batch-size",
        "8",
        "--epochs",
        "150",
        "--no-stateful",
        "--lr",
        "0.01",
        "--cell",
        "gru",
        "--name",
        "seq",
    ]);
    let losses = out["losses"].as_array().unwrap();
    let (first, last) = (
        losses[0].as_f64().unwrap(),
        losses.last().unwrap().as_f64().unwrap(),
    );
    assert!(last * 10.0 < first, "loss {first} -> {last}");
    assert_eq!(
        env.json(&["model", "show", "seq"])["config"]["outputs"],
        "sequence"
    );
    let input = env.write_tensors(
        "x.safetensors",
        &[("x", Tensor::new(vec![1, 8, 1], vec![0.1; 8]))],
    );
    env.ok(&["reset", "--batch-size", "1"]);
    let p = env.json(&["predict", "--input", s(&input)]);
    assert_eq!(p["outputs"][0].as_array().unwrap().len(), 8);
    assert_eq!(env.json(&["audit", "--train", "seq"])["ok"], true);
}

#[test]
fn per_step_targets_that_do_not_fit_are_refused() {
    let env = Env::new();
    env.ok(&["init"]);
    let data = env.write_tensors(
        "bad.safetensors",
        &[
            ("x", Tensor::new(vec![4, 5, 1], vec![0.1; 20])),
            ("y", Tensor::new(vec![4, 3, 1], vec![0.2; 12])),
        ],
    );
    env.fails(
        &["train", "--data", s(&data), "--batch-size", "2"],
        1,
        "do not match 'x' [4, 5, 1]",
    );
    let flat = env.write_tensors(
        "flat.safetensors",
        &[
            ("x", Tensor::new(vec![4, 5, 1], vec![0.1; 20])),
            ("y", Tensor::new(vec![4], vec![1.0; 4])),
        ],
    );
    env.fails(
        &[
            "train",
            "--data",
            s(&flat),
            "--outputs",
            "sequence",
            "--batch-size",
            "2",
        ],
        1,
        "need a target per step",
    );
    env.fails(
        &["train", "--outputs", "sequence"],
        1,
        "trains on a target per step",
    );
}

#[test]
fn per_step_class_indices_train_and_predict_per_step_probabilities() {
    let env = Env::new();
    // The alphabet read one letter at a time: each step's target is the
    // next letter.
    let (n, steps) = (24, 3);
    let x: Vec<f32> = (0..n)
        .flat_map(|i| (0..steps).map(move |k| (i + k) as f32 / 27.0))
        .collect();
    let y: Vec<f32> = (0..n)
        .flat_map(|i| (0..steps).map(move |k| ((i + k + 1) % 27) as f32))
        .collect();
    let data = env.write_tensors(
        "steps.safetensors",
        &[
            ("x", Tensor::new(vec![n, steps, 1], x)),
            ("y", Tensor::new(vec![n, steps], y)),
        ],
    );
    let out = env.json(&[
        "-q",
        "train",
        "--data",
        s(&data),
        "--outputs",
        "sequence",
        "--classes",
        "27",
        "--epochs",
        "3",
        "--name",
        "letters",
    ]);
    assert!(out["accuracy"].as_f64().is_some());
    let input =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/demo_input.csv");
    let p = env.json(&["predict", "--input", s(&input)]);
    let row: Vec<f32> = matrix(&p["outputs"][0]).concat();
    assert_eq!(row.len(), steps * 27);
    for step in row.chunks(27) {
        let total: f32 = step.iter().sum();
        assert!(
            (total - 1.0).abs() < 1e-5,
            "a step's probabilities sum to {total}"
        );
    }
    assert_eq!(env.json(&["audit", "--train", "letters"])["ok"], true);
}
