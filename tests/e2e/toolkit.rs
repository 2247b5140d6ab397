//! The state toolkit: bulk import/export, Python interop, diff with
//! staleness, burn-in, tags and history, gc.

use assert_cmd::Command;
use statectl::tensors::{Tensor, TensorFile};

use crate::util::*;

fn python(args: &[&str]) -> String {
    let out = std::process::Command::new("python3")
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python3 {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn state_id_script() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/state_id.py")
        .display()
        .to_string()
}

#[test]
fn python_reads_statectl_exports_and_statectl_reads_python_files_with_the_same_ids() {
    let env = Env::new();
    env.ok(&["-q", "demo"]);
    let exported = env.path("case1.safetensors");
    env.ok(&["export", "case1/end", "-o", s(&exported)]);
    let case1 = env.json(&["show", "case1/end"])["state"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(python(&[&state_id_script(), s(&exported)]), case1);
    // safetensors.numpy.load_file reads it as [batch, units] float32.
    let shape = python(&["-c", &format!("from safetensors.numpy import load_file; t = load_file('{}'); print(t['l0.h'].shape, t['l0.c'].dtype)", s(&exported))]);
    assert_eq!(shape, "(6, 16) float32");

    // A two-layer state written by Python's save_file, no metadata.
    let written = env.path("from_python.safetensors");
    python(&[
        "-c",
        &format!(
            "import numpy as np\nfrom safetensors.numpy import save_file\nr = np.random.default_rng(3)\n\
             save_file({{'l0.h': r.standard_normal((4, 5), dtype=np.float32), 'l0.c': r.standard_normal((4, 5), dtype=np.float32),\
             'l1.h': r.standard_normal((4, 2), dtype=np.float32), 'l1.c': r.standard_normal((4, 2), dtype=np.float32)}}, '{}')",
            s(&written)
        ),
    ]);
    let imported = env.json(&["import", s(&written)]);
    assert_eq!(imported["layout"], "lstm:5,2");
    assert_eq!(
        imported["state"].as_str().unwrap(),
        python(&[&state_id_script(), s(&written)])
    );
}

#[test]
fn ten_thousand_lstm_512_states_import_in_one_call_and_export_back_identical() {
    let env = Env::new();
    let (n, units) = (10_000usize, 512usize);
    let values = |seed: u32| -> Vec<f32> {
        (0..n * units)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as f32 / u32::MAX as f32 - 0.5)
            .collect()
    };
    let h = Tensor::new(vec![n, units], values(1));
    let c = Tensor::new(vec![n, units], values(2));
    let file = env.write_tensors(
        "bulk.safetensors",
        &[("l0.h", h.clone()), ("l0.c", c.clone())],
    );

    // As one 10,000-slot state, and as 10,000 one-slot states.
    let whole = env.json(&["import", s(&file), "--tag", "whole"]);
    assert_eq!(whole["batch"], n);
    let per_slot = env.json(&["import", s(&file), "--per-slot", "--tag-prefix", "seq"]);
    assert_eq!(per_slot["count"], n);

    let back = env.path("back.safetensors");
    env.ok(&["export", "whole", "-o", s(&back)]);
    let read = TensorFile::decode(&std::fs::read(&back).unwrap()).unwrap();
    assert_eq!(read.tensors["l0.h"], h);
    assert_eq!(read.tensors["l0.c"], c);
    // One-slot state 9999 is row 9999, and it shares its slot with the whole state.
    let last = env.json(&["show", "seq9999"]);
    assert_eq!(
        last["slots"][0],
        env.json(&["show", "whole"])["slots"][n - 1]
    );
    let some = env.path("some.safetensors");
    env.ok(&["export", "seq0", "seq9999", "-o", s(&some)]);
    let read = TensorFile::decode(&std::fs::read(&some).unwrap()).unwrap();
    assert_eq!(read.tensors["seq9999.l0.h"].data, h.data[(n - 1) * units..]);
    let slots: i64 = env
        .db()
        .query_row("SELECT count(*) FROM slots", [], |r| r.get(0))
        .unwrap();
    assert_eq!(slots, n as i64);
}

#[test]
fn bad_bulk_files_are_refused_and_write_nothing() {
    let env = Env::new();
    env.ok(&["init"]);
    let t = |rows: usize, cols: usize, v: f32| Tensor::new(vec![rows, cols], vec![v; rows * cols]);
    let mixed = env.write_tensors(
        "mixed.safetensors",
        &[("a.l0.h", t(2, 4, 0.1)), ("a.l0.c", t(2, 3, 0.1))],
    );
    env.fails(&["import", s(&mixed)], 1, "they must match");
    // An LSTM state (it has a `c`) missing the `c` of one layer.
    let no_c = env.write_tensors(
        "noc.safetensors",
        &[
            ("a.l0.h", t(2, 4, 0.1)),
            ("a.l0.c", t(2, 4, 0.1)),
            ("a.l1.h", t(2, 4, 0.1)),
            ("b.l0.h", t(2, 4, 0.1)),
            ("b.l0.c", t(2, 4, 0.1)),
        ],
    );
    env.fails(
        &["import", s(&no_c), "--tag-prefix", "x-"],
        1,
        "state 'a' has 'a.l1.h' but no 'a.l1.c'",
    );
    let nan = env.write_tensors(
        "nan.safetensors",
        &[("l0.h", t(3, 2, f32::NAN)), ("l0.c", t(3, 2, 0.0))],
    );
    env.fails(&["import", s(&nan), "--per-slot"], 1, "--allow-nonfinite");
    let inf = env.write_tensors(
        "inf.safetensors",
        &[("l0.h", t(3, 2, f32::INFINITY)), ("l0.c", t(3, 2, 0.0))],
    );
    env.fails(&["import", s(&inf)], 1, "NaN or infinite");
    let odd = env.write_tensors(
        "odd.safetensors",
        &[
            ("l0.h", t(3, 2, 0.0)),
            ("l0.c", t(3, 2, 0.0)),
            ("l0.x", t(3, 2, 0.0)),
        ],
    );
    env.fails(&["import", s(&odd)], 1, "outside the scheme");
    // A tag prefix that would collide with existing tags.
    let ok = env.write_tensors(
        "ok.safetensors",
        &[("l0.h", t(3, 2, 0.5)), ("l0.c", t(3, 2, 0.5))],
    );
    env.ok(&["import", s(&ok), "--tag", "p1"]);
    let other = env.write_tensors(
        "other.safetensors",
        &[("l0.h", t(3, 2, 0.25)), ("l0.c", t(3, 2, 0.25))],
    );
    env.fails(
        &["import", s(&other), "--per-slot", "--tag-prefix", "p"],
        1,
        "already name other states (p1)",
    );
    env.ok(&["import", s(&nan), "--allow-nonfinite"]);
}

#[test]
fn burn_in_runs_a_prefix_without_touching_the_stream_and_per_slot_matches_the_batch() {
    let env = Env::new();
    env.import_reference("keras", "ref");
    let start = env.reference_state_file("case1");
    env.ok(&["import", s(&start), "--tag", "trained"]);
    let head = env.json(&["show", "HEAD"])["state"].clone();
    let x = fixture("x_test.safetensors");
    let burned = env.json(&["burn-in", "trained", "--input", s(&x), "--tag", "burned"]);
    assert_eq!(
        env.json(&["show", "HEAD"])["state"],
        head,
        "burn-in moved the stream"
    );
    // Burning in x from the trained state is what predicting x from it leaves.
    let p = env.json(&[
        "predict",
        "--input",
        s(&x),
        "--from",
        "trained",
        "--no-advance",
    ]);
    assert_eq!(burned["state"], p["state_after"]);
    let origin = env.json(&["show", "burned"])["origin"].clone();
    assert_eq!(origin["kind"], "burn-in");

    // Per slot: six one-slot states and a prefix of six sequences.
    let states = env.path("states.safetensors");
    env.ok(&["export", "trained", "-o", s(&states)]);
    env.ok(&["import", s(&states), "--per-slot", "--tag-prefix", "seq"]);
    let refs: Vec<String> = (0..6).map(|i| format!("seq{i}")).collect();
    let mut args = vec![
        "burn-in",
        "--per-slot",
        "--input",
        s(&x),
        "--tag-prefix",
        "b/",
    ];
    args.extend(refs.iter().map(|r| r.as_str()));
    let out = env.json(&args);
    assert_eq!(out["states"].as_array().unwrap().len(), 6);
    // Results are named after their sources.
    assert_eq!(out["states"][2]["from"], "seq2");
    assert_eq!(out["states"][2]["tag"], "b/seq2");
    let whole = env.json(&["show", "burned"])["slots"].clone();
    for i in 0..6 {
        assert_eq!(
            env.json(&["show", &format!("b/seq{i}")])["slots"][0],
            whole[i],
            "slot {i}"
        );
    }
    // Alone, in a batch of one, slot 3 burns in to the same bits.
    let x1 = env.write_tensors(
        "x1.safetensors",
        &[(
            "x",
            Tensor::new(vec![1, 3, 1], vec![0.0, 1.0 / 27.0, 2.0 / 27.0]),
        )],
    );
    let single = env.json(&["burn-in", "seq3", "--input", s(&x1)]);
    assert_eq!(
        env.json(&["show", single["state"].as_str().unwrap()])["slots"][0],
        whole[3]
    );
    let mut wrong = vec!["burn-in", "--per-slot", "--input", s(&x)];
    wrong.extend(refs[..5].iter().map(|r| r.as_str()));
    env.fails(&wrong, 1, "5 REF(s) for 6 sequence(s)");
}

#[test]
fn diff_with_input_reports_output_staleness() {
    let env = Env::new();
    env.import_reference("keras", "ref");
    let x = fixture("x_test.safetensors");
    let start = env.reference_state_file("case1");
    env.ok(&["import", s(&start), "--tag", "trained"]);
    let same = env.json(&["diff", "trained", "trained", "--input", s(&x)]);
    assert_eq!(same["outputs"]["overall"], 0.0);
    let vs_zero = env.json(&["diff", "trained", "zeros", "--input", s(&x), "--per-slot"]);
    let overall = vs_zero["outputs"]["overall"].as_f64().unwrap();
    let per_slot: Vec<f64> = vs_zero["outputs"]["per_slot"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(overall > 0.0);
    assert_eq!(per_slot.len(), 6);
    assert!(per_slot.iter().all(|v| *v <= overall + 1e-12));
    let x2 = env.write_tensors(
        "x2.safetensors",
        &[("x", Tensor::new(vec![2, 3, 1], vec![0.0; 6]))],
    );
    env.fails(
        &["diff", "trained", "zeros", "--input", s(&x2)],
        1,
        "the input has batch 2",
    );
}

#[test]
fn tags_list_delete_and_log_filters() {
    let env = Env::new();
    env.ok(&["-q", "demo"]);
    let tags = env.json(&["tag", "list"])["tags"].as_array().unwrap().len();
    assert_eq!(tags, 11);
    env.ok(&["tag", "delete", "case5/end"]);
    env.fails(
        &["tag", "delete", "case5/end"],
        1,
        "tag 'case5/end' not found",
    );
    assert_eq!(
        env.json(&["tag", "list"])["tags"].as_array().unwrap().len(),
        10
    );
    let untag = env.json(&["log", "--all", "--kind", "untag"]);
    assert_eq!(untag["events"].as_array().unwrap().len(), 1);
    let predicts = env.json(&["log", "--kind", "predict", "--limit", "2"]);
    assert_eq!(predicts["events"].as_array().unwrap().len(), 2);
    assert_eq!(
        env.json(&["log", "--since", "1h", "--kind", "predict"])["events"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let values = env.json(&["show", "case4/end", "--values"]);
    assert_eq!(values["values"]["l0.h"].as_array().unwrap().len(), 6);
    assert_eq!(values["values"]["l0.c"][0].as_array().unwrap().len(), 16);
}

#[test]
fn gc_dry_run_changes_nothing_and_gc_frees_what_it_listed() {
    let env = Env::new();
    env.ok(&["-q", "demo"]);
    env.ok(&["tag", "delete", "case2/end"]);
    let before = env.fingerprint();
    let dry = env.json(&["gc", "--dry-run", "--keep-events-since", "0s"]);
    assert_eq!(env.fingerprint(), before, "--dry-run changed the store");
    let listed = dry["states"].as_array().unwrap().clone();
    assert!(!listed.is_empty() && dry["bytes"].as_u64().unwrap() > 0);
    let case2 = env.json(&["log", "--kind", "predict"])["events"][3]["state_after"].clone();
    assert!(
        listed.contains(&case2),
        "the untagged case-2 state is garbage"
    );

    let done = env.json(&["gc", "--keep-events-since", "0s"]);
    assert_eq!(done["states"], dry["states"]);
    assert_eq!(done["bytes"], dry["bytes"]);
    let states: i64 = env
        .db()
        .query_row("SELECT count(*) FROM states", [], |r| r.get(0))
        .unwrap();
    assert!(states > 0);
    for tag in ["case1/end", "case3/end", "case4/end", "case5/end"] {
        env.ok(&["show", tag]);
    }
    let verify = env.run(&["verify"]);
    assert_eq!(verify.code, 0, "{}", verify.stdout);
    let again = env.json(&["gc"]);
    assert_eq!(again["states"].as_array().unwrap().len(), 0);
}

#[test]
fn gc_never_removes_what_a_ref_reaches_under_concurrent_use() {
    let env = std::sync::Arc::new(Env::new());
    env.import_reference("keras", "ref");
    let x = fixture("x_test.safetensors");
    let collector = {
        let env = env.clone();
        std::thread::spawn(move || {
            for _ in 0..15 {
                let run = env.run(&["-q", "gc", "--keep-events-since", "0s"]);
                assert_eq!(run.code, 0, "{}", run.stderr);
            }
        })
    };
    for i in 0..15 {
        env.ok(&[
            "-q",
            "predict",
            "--model",
            "ref",
            "--input",
            s(&x),
            "--tag",
            &format!("t{i}"),
        ]);
        let weights = fixture("weights.torch_layout.safetensors");
        env.ok(&[
            "-q",
            "model",
            "import",
            s(&weights),
            "--layout",
            "torch",
            "--head",
            "softmax",
            "--name",
            &format!("m{i}"),
        ]);
    }
    collector.join().unwrap();
    for i in 0..15 {
        env.ok(&["show", &format!("t{i}")]);
    }
    let verify = env.run(&["verify"]);
    assert_eq!(verify.code, 0, "{}", verify.stdout);
    env.ok(&[
        "-q",
        "predict",
        "--input",
        s(&x),
        "--model",
        "m14",
        "--stream",
        "fresh",
    ]);
}

#[test]
fn a_per_slot_import_is_one_journal_entry_streams_any_size_and_its_states_survive_gc() {
    let env = Env::new();
    let n = 40;
    let file = env.write_tensors(
        "many.safetensors",
        &[
            (
                "l0.h",
                Tensor::new(vec![n, 5], (0..n * 5).map(|v| v as f32 * 0.01).collect()),
            ),
            ("l0.c", Tensor::new(vec![n, 5], vec![0.25; n * 5])),
        ],
    );
    // Larger than the input limit: --per-slot reads it a band at a time.
    let out = Command::cargo_bin("statectl")
        .unwrap()
        .args([
            "--store",
            s(&env.store()),
            "--json",
            "import",
            s(&file),
            "--per-slot",
        ])
        .env("STATECTL_MAX_INPUT_BYTES", "1000")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(&succeeded(out)).unwrap();
    assert_eq!(report["count"], n);
    let ids: Vec<String> = report["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap().to_string())
        .collect();
    // The same ids as each slot imported on its own.
    let alone = env.write_tensors(
        "slot7.safetensors",
        &[
            (
                "l0.h",
                Tensor::new(vec![1, 5], (35..40).map(|v| v as f32 * 0.01).collect()),
            ),
            ("l0.c", Tensor::new(vec![1, 5], vec![0.25; 5])),
        ],
    );
    let single = env.json(&["import", s(&alone)]);
    assert_eq!(single["state"].as_str().unwrap(), ids[7]);
    // One journal entry for the 40 states.
    let log = env.json(&["log", "--all", "--kind", "import"]);
    assert_eq!(log["events"].as_array().unwrap().len(), 2, "{log}");
    // Untagged, they stay through gc: their import event keeps them.
    env.ok(&["gc"]);
    for id in &ids {
        env.ok(&["show", id]);
    }
    env.ok(&["verify"]);
    // One state per slot cannot carry one tag.
    env.fails(
        &["import", s(&file), "--per-slot", "--tag", "x"],
        2,
        "cannot be used with",
    );
}

#[test]
fn large_slots_import_per_slot_with_the_ids_they_have_alone() {
    // 2 x 160 floats = 1,280 bytes a slot: the path that reads slots again
    // in key order instead of staging their bytes.
    let env = Env::new();
    let (n, units) = (9, 160);
    let h: Vec<f32> = (0..n * units).map(|v| (v as f32 * 0.37).sin()).collect();
    let c: Vec<f32> = (0..n * units).map(|v| (v as f32 * 0.11).cos()).collect();
    let file = env.write_tensors(
        "large.safetensors",
        &[
            ("l0.h", Tensor::new(vec![n, units], h.clone())),
            ("l0.c", Tensor::new(vec![n, units], c.clone())),
        ],
    );
    let out = env.json(&["import", s(&file), "--per-slot", "--tag-prefix", "big/"]);
    for slot in [0, 4, 8] {
        let alone = env.write_tensors(
            &format!("alone{slot}.safetensors"),
            &[
                (
                    "l0.h",
                    Tensor::new(vec![1, units], h[slot * units..(slot + 1) * units].to_vec()),
                ),
                (
                    "l0.c",
                    Tensor::new(vec![1, units], c[slot * units..(slot + 1) * units].to_vec()),
                ),
            ],
        );
        let single = env.json(&["import", s(&alone)]);
        assert_eq!(out["states"][slot]["state"], single["state"]);
        let shown = env.json(&["show", &format!("big/{slot}")]);
        assert_eq!(shown["state"], single["state"]);
    }
    env.ok(&["verify"]);
}
