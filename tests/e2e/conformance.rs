//! Conformance with Keras (tests/fixtures, from a real Keras 3 run; see
//! tests/fixtures/README.md) and the five cases of the reference experiment.

use crate::util::*;

/// Exports `state` (full hex id) and returns its `l0.h`, `l0.c` data.
fn exported(env: &Env, state: &str) -> (Vec<f32>, Vec<f32>) {
    let path = env.path("exported.safetensors");
    env.ok(&["export", state, "-o", s(&path)]);
    let file = statectl::tensors::TensorFile::decode(&std::fs::read(&path).unwrap()).unwrap();
    (
        file.tensors["l0.h"].data.clone(),
        file.tensors["l0.c"].data.clone(),
    )
}

#[test]
fn both_weight_layouts_reproduce_keras_in_all_five_cases() {
    let expected = fixture_file("expected.safetensors");
    let states = fixture_file("states.safetensors");
    let x = fixture("x_test.safetensors");
    let mut outputs_by_layout = Vec::new();
    for layout in ["keras", "torch"] {
        let env = Env::new();
        env.import_reference(layout, "ref");
        let mut outputs = Vec::new();
        for case in 1..=5 {
            let start = env.reference_state_file(&format!("case{case}"));
            env.ok(&["import", s(&start), "--tag", &format!("start{case}")]);
            env.ok(&["restore", &format!("start{case}")]);
            let out = env.json(&["predict", "--input", s(&x)]);
            let probs: Vec<f32> = matrix(&out["outputs"]).concat();
            let logits: Vec<f32> = matrix(&out["logits"]).concat();
            let want_probs = &expected.tensors[&format!("case{case}.probs")].data;
            let want_logits = &expected.tensors[&format!("case{case}.logits")].data;
            assert!(
                max_abs_diff(&probs, want_probs) < 1e-6,
                "{layout} case {case} probs"
            );
            assert!(
                max_abs_diff(&logits, want_logits) < 1e-6,
                "{layout} case {case} logits"
            );
            let (h, c) = exported(&env, out["state_after"].as_str().unwrap());
            assert!(
                max_abs_diff(&h, &states.tensors[&format!("after_case{case}.h")].data) < 1e-6,
                "{layout} case {case} h"
            );
            assert!(
                max_abs_diff(&c, &states.tensors[&format!("after_case{case}.c")].data) < 1e-6,
                "{layout} case {case} c"
            );
            outputs.push((
                bits(&matrix(&out["outputs"])),
                bits(&matrix(&out["logits"])),
                out["state_after"].clone(),
            ));
        }
        outputs_by_layout.push(outputs);
    }
    assert_eq!(
        outputs_by_layout[0], outputs_by_layout[1],
        "keras and torch layouts differ"
    );
}

#[test]
fn the_five_cases_hold_bit_for_bit_on_both_backends() {
    let env = Env::new();
    env.import_reference("keras", "ref");
    // The local store, then (with a server) a shared store that holds the
    // model and its stream only: the same commands run on each.
    let stores = crate::shared_learners::backends(&env, "five");
    let runs: Vec<Vec<serde_json::Value>> =
        stores.iter().map(|store| five_cases(&env, store)).collect();
    if let [local, shared] = &runs[..] {
        for (case, (here, there)) in local.iter().zip(shared).enumerate() {
            for key in ["state_before", "state_after", "input", "output"] {
                assert_eq!(here[key], there[key], "case {} {key}", case + 1);
            }
            assert_eq!(
                bits(&matrix(&here["outputs"])),
                bits(&matrix(&there["outputs"])),
                "case {} outputs",
                case + 1
            );
        }
    }
    // The model and where its stream stands read the same on each (a
    // shared store keeps no import origin).
    let shown: Vec<serde_json::Value> = stores
        .iter()
        .map(|store| {
            let mut shown = crate::shared_store::json_of(
                &env.run_in(store, &["--json", "model", "show", "ref"]),
            );
            shown["origin"] = serde_json::Value::Null;
            let listed =
                crate::shared_store::json_of(&env.run_in(store, &["--json", "model", "list"]));
            assert_eq!(listed["models"][0]["weights"], shown["weights"]);
            shown
        })
        .collect();
    assert!(shown.windows(2).all(|w| w[0] == w[1]), "{shown:?}");
    assert_eq!(shown[0]["streams"][0]["stream"], "main");
    // Every prediction replays bit for bit where it was recorded, also
    // after gc (what the journal names is kept), and the store verifies.
    for store in &stores {
        assert_eq!(
            env.run_in(store, &["-q", "gc"]).code,
            0,
            "gc on {}",
            s(store)
        );
        assert_eq!(
            env.run_in(store, &["verify"]).code,
            0,
            "verify on {}",
            s(store)
        );
        let audit = crate::shared_store::json_of(&env.run_in(store, &["--json", "audit"]));
        assert_eq!(audit["ok"], true, "{}: {audit}", s(store));
        assert_eq!(audit["reproduced"], 6, "{}: {audit}", s(store));
    }
}

/// The five cases (and a re-batch to two slots) on `store`, a folder or
/// a shared store's URL; returns each prediction's report.
fn five_cases(env: &Env, store: &std::path::Path) -> Vec<serde_json::Value> {
    let json = |args: &[&str]| {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        crate::shared_store::json_of(&env.run_in(store, &all))
    };
    let ok = |args: &[&str]| {
        let run = env.run_in(store, args);
        assert_eq!(run.code, 0, "{args:?} on {}: {}", s(store), run.stderr);
    };
    let x = fixture("x_test.safetensors");
    let trained = env.reference_state_file("case1");
    ok(&["import", s(&trained), "--tag", "trained"]);
    ok(&["restore", "trained"]);

    // Case 1: the state training left gives six different rows.
    let case1 = json(&["predict", "--input", s(&x), "--tag", "case1"]);
    let rows1 = bits(&matrix(&case1["outputs"]));
    for i in 0..6 {
        for j in i + 1..6 {
            assert_ne!(rows1[i], rows1[j], "case 1 rows {i} and {j} are equal");
        }
    }
    // Case 2: no reset, so the carried state changes the answer.
    let case2 = json(&["predict", "--input", s(&x)]);
    assert_ne!(bits(&matrix(&case2["outputs"])), rows1);
    assert_eq!(case2["state_before"], case1["state_after"]);

    // Case 3: restoring the case-1 state reproduces case 1 exactly.
    ok(&["restore", "trained"]);
    let case3 = json(&["predict", "--input", s(&x)]);
    assert_eq!(bits(&matrix(&case3["outputs"])), rows1);
    assert_eq!(
        bits(&matrix(&case3["logits"])),
        bits(&matrix(&case1["logits"]))
    );
    assert_eq!(case3["state_after"], case1["state_after"]);

    // Case 4: from zeros every row is the same, bit for bit.
    ok(&["reset"]);
    let case4 = json(&["predict", "--input", s(&x)]);
    let rows4 = bits(&matrix(&case4["outputs"]));
    assert!(rows4.iter().all(|r| *r == rows4[0]));
    let class0 = matrix(&case4["outputs"])[0][0];
    assert!((class0 - 0.036_775_29).abs() < 1e-6, "{class0}");

    // Case 5: slot 0 broadcast to all six slots.
    ok(&["restore", "trained", "--slot", "0"]);
    let trained_slots = json(&["show", "trained"])["slots"].clone();
    let head = json(&["show", "HEAD"]);
    assert_eq!(head["batch"], 6);
    for slot in head["slots"].as_array().unwrap() {
        assert_eq!(slot, &trained_slots[0]);
    }
    let case5 = json(&["predict", "--input", s(&x)]);
    for row in bits(&matrix(&case5["outputs"])) {
        assert_eq!(row, rows1[0]);
    }

    // Re-batching: slots 0 and 3 as a batch of two.
    ok(&["restore", "trained", "--slots", "0,3"]);
    let x2 = env.write_tensors(
        "x2.safetensors",
        &[(
            "x",
            statectl::tensors::Tensor::new(
                vec![2, 3, 1],
                vec![0.0, 1.0 / 27.0, 2.0 / 27.0, 0.0, 1.0 / 27.0, 2.0 / 27.0],
            ),
        )],
    );
    let two = json(&["predict", "--input", s(&x2)]);
    // Rows are computed one at a time: a slot gives the same bits in a
    // batch of two as in its batch of six.
    let rows2 = bits(&matrix(&two["outputs"]));
    assert_eq!(rows2, vec![rows1[0].clone(), rows1[3].clone()]);

    // Bad input: one line, exit 1, and the stream, tags and journal as
    // they were.
    ok(&["restore", "trained"]);
    let x1 = env.write_tensors(
        "x1.safetensors",
        &[(
            "x",
            statectl::tensors::Tensor::new(vec![1, 3, 1], vec![0.0; 3]),
        )],
    );
    let unchanged = || {
        (
            json(&["show", "HEAD"])["state"].clone(),
            crate::shared_store::tags(env, store),
            json(&["log", "--all"])["events"].as_array().unwrap().len(),
        )
    };
    let before = unchanged();
    for (args, says) in [
        (vec!["predict", "--input", s(&x1)], "the input has batch 1"),
        (
            vec!["predict", "--input", s(&x), "--stream", "mian"],
            "did you mean 'main'",
        ),
        (
            vec!["predict", "--input", s(&x), "--model", "nope"],
            "'nope'",
        ),
        (
            vec!["predict", "--input", s(&x), "--tag", "trained"],
            "--force",
        ),
        (
            vec!["predict", "--input", s(&x), "--from", "HEAD~99"],
            "goes past the start",
        ),
        (vec!["restore", "nope"], "'nope'"),
        (vec!["restore", "trained", "--slot", "9"], "slot 9"),
        (vec!["reset", "--batch-size", "100000000"], "batch"),
        (vec!["predict", "--input", s(&x), "--tag", "HEAD"], "HEAD"),
    ] {
        let run = env.run_in(store, &args);
        assert_eq!(
            run.code,
            1,
            "{args:?} on {}: {}{}",
            s(store),
            run.stdout,
            run.stderr
        );
        assert!(
            run.stderr.contains(says),
            "{args:?} on {}: {}",
            s(store),
            run.stderr
        );
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        assert_eq!(unchanged(), before, "{args:?} changed {}", s(store));
    }
    vec![case1, case2, case3, case4, case5, two]
}

#[test]
fn head_walks_back_along_the_stream_and_exports_reimport_to_the_same_id() {
    let env = Env::new();
    env.import_reference("torch", "ref");
    let x = fixture("x_test.safetensors");
    let zeros = env.json(&["show", "HEAD"])["state"].clone();
    let first = env.json(&["predict", "--input", s(&x)]);
    let second = env.json(&["predict", "--input", s(&x)]);
    assert_eq!(env.json(&["show", "HEAD"])["state"], second["state_after"]);
    assert_eq!(env.json(&["show", "HEAD~1"])["state"], first["state_after"]);
    assert_eq!(env.json(&["show", "HEAD~2"])["state"], zeros);

    let path = env.path("head.safetensors");
    env.ok(&["export", "HEAD~1", "-o", s(&path)]);
    let other = Env::new();
    let imported = other.json(&["import", s(&path)]);
    assert_eq!(imported["state"], first["state_after"]);

    // --no-advance records the event but leaves the stream alone.
    let third = env.json(&["predict", "--input", s(&x), "--no-advance"]);
    assert_eq!(third["state_before"], second["state_after"]);
    assert_eq!(env.json(&["show", "HEAD"])["state"], second["state_after"]);
}
