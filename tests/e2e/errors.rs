//! Bad input: a clear one-line error, exit 1 (usage: 2), store unchanged.

use statectl::tensors::Tensor;

use crate::util::*;

fn env_with_model() -> Env {
    let env = Env::new();
    env.import_reference("keras", "ref");
    env
}

#[test]
fn missing_truncated_and_lying_files_are_refused() {
    let env = env_with_model();
    env.fails(
        &[
            "model",
            "import",
            "/nonexistent/w.safetensors",
            "--layout",
            "torch",
            "--head",
            "softmax",
        ],
        1,
        "cannot read model file",
    );
    env.fails(
        &["predict", "--input", "/nonexistent/x.safetensors"],
        1,
        "No such file or directory (os error 2); check the path",
    );
    let bytes = std::fs::read(fixture("weights.torch_layout.safetensors")).unwrap();
    let cut = env.path("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    env.fails(
        &[
            "model",
            "import",
            s(&cut),
            "--layout",
            "torch",
            "--head",
            "softmax",
            "--name",
            "cut",
        ],
        1,
        "not a valid safetensors file",
    );

    let state = env.reference_state_file("case1");
    let mut file = statectl::tensors::TensorFile::decode(&std::fs::read(&state).unwrap()).unwrap();
    file.metadata.insert("state".into(), "00".repeat(32));
    let lying = env.path("lying.safetensors");
    std::fs::write(&lying, file.encode()).unwrap();
    env.fails(
        &["import", s(&lying)],
        1,
        "the file was changed after export",
    );
    file.metadata.insert("state".into(), String::new());
    file.metadata.remove("state");
    file.metadata.insert("layout".into(), "lstm:8".into());
    std::fs::write(&lying, file.encode()).unwrap();
    env.fails(&["import", s(&lying)], 1, "says its layout is 'lstm:8'");
}

#[test]
fn wrong_tensor_names_or_shapes_are_refused() {
    let env = env_with_model();
    let keras = fixture("weights.keras_layout.safetensors");
    env.fails(
        &[
            "model",
            "import",
            s(&keras),
            "--layout",
            "torch",
            "--head",
            "softmax",
            "--name",
            "x",
        ],
        1,
        "lacks tensor",
    );
    let mut file = fixture_file("weights.keras_layout.safetensors");
    file.insert(
        "lstm/recurrent_kernel",
        Tensor::new(vec![16, 60], vec![0.0; 960]),
    );
    let bad = env.path("bad.safetensors");
    std::fs::write(&bad, file.encode()).unwrap();
    env.fails(
        &[
            "model",
            "import",
            s(&bad),
            "--layout",
            "keras",
            "--head",
            "softmax",
            "--name",
            "x",
        ],
        1,
        "has shape [16, 60]",
    );
    env.fails(
        &[
            "model",
            "import",
            s(&keras),
            "--layout",
            "keras",
            "--head",
            "softmax",
            "--name",
            "ref",
        ],
        1,
        "already exists",
    );
    // A `c` makes the state an LSTM's, so every layer needs both.
    let no_c = env.write_tensors(
        "noc.safetensors",
        &[
            ("l0.h", Tensor::new(vec![1, 2], vec![0.0; 2])),
            ("l0.c", Tensor::new(vec![1, 2], vec![0.0; 2])),
            ("l1.h", Tensor::new(vec![1, 2], vec![0.0; 2])),
        ],
    );
    env.fails(&["import", s(&no_c)], 1, "no 'l1.c'");
    let odd = env.write_tensors(
        "odd.safetensors",
        &[("hidden", Tensor::new(vec![1, 2], vec![0.0; 2]))],
    );
    env.fails(&["import", s(&odd)], 1, "outside the scheme");
}

#[test]
fn states_that_do_not_fit_are_refused() {
    let env = env_with_model();
    let small = env.write_tensors(
        "small.safetensors",
        &[
            ("l0.h", Tensor::new(vec![6, 8], vec![0.5; 48])),
            ("l0.c", Tensor::new(vec![6, 8], vec![0.5; 48])),
        ],
    );
    env.ok(&["import", s(&small), "--tag", "small"]);
    env.fails(
        &["restore", "small"],
        1,
        "has layout lstm:8 but model 'ref' needs lstm:16",
    );
    let x = fixture("x_test.safetensors");
    env.fails(
        &["predict", "--input", s(&x), "--from", "small"],
        1,
        "has layout lstm:8",
    );
    env.fails(
        &["restore", "HEAD", "--slot", "9"],
        1,
        "slot 9 is out of range",
    );
    env.ok(&["restore", "HEAD", "--slots", "0,1"]);
    env.fails(
        &["predict", "--input", s(&x)],
        1,
        "the input has batch 6 but state",
    );
    env.fails(
        &["restore", "HEAD", "--batch-size", "4"],
        1,
        "pick them with --slots",
    );
}

#[test]
fn unknown_ambiguous_and_past_the_start_refs_are_refused() {
    let env = env_with_model();
    env.fails(&["show", "nosuchtag"], 1, "ref 'nosuchtag' not found");
    env.fails(&["show", "HEAD~5"], 1, "goes past the start");
    env.fails(&["show", "HEAD~x"], 1, "bad ref");
    // Two zero states whose ids share their first four hex digits.
    let layout = statectl::state::Layout::lstm(&[16]);
    let mut seen = std::collections::HashMap::new();
    let (a, b, prefix) = (1..5000usize)
        .find_map(|batch| {
            let id = statectl::state::StateValue::zeros(&layout, batch)
                .id()
                .hex();
            let prefix = id[..4].to_string();
            seen.insert(prefix.clone(), batch)
                .map(|other| (other, batch, prefix))
        })
        .unwrap();
    env.ok(&["reset", "--batch-size", &a.to_string()]);
    env.ok(&["reset", "--batch-size", &b.to_string()]);
    env.fails(&["show", &prefix], 1, "is ambiguous");
}

#[test]
fn bad_inputs_are_refused() {
    let env = env_with_model();
    let csv = env.path("bad.csv");
    std::fs::write(&csv, "0,1,2\n0,x,2\n").unwrap();
    env.fails(&["predict", "--input", s(&csv)], 1, "'x' is not a number");
    std::fs::write(&csv, "0,1,2\n0,1\n").unwrap();
    env.fails(&["predict", "--input", s(&csv)], 1, "ragged");
    std::fs::write(&csv, "").unwrap();
    env.fails(&["predict", "--input", s(&csv)], 1, "is empty");
    let no_x = env.write_tensors(
        "nox.safetensors",
        &[("y", Tensor::new(vec![1, 3, 1], vec![0.0; 3]))],
    );
    env.fails(&["predict", "--input", s(&no_x)], 1, "has no tensor 'x'");
    let wide = env.write_tensors(
        "wide.safetensors",
        &[("x", Tensor::new(vec![6, 3, 2], vec![0.0; 36]))],
    );
    env.fails(
        &["predict", "--input", s(&wide)],
        1,
        "2 feature(s) per step but the model takes 1",
    );
}

#[test]
fn bad_store_paths_and_newer_stores_are_refused_untouched() {
    let env = Env::new();
    let file = env.path("plainfile");
    std::fs::write(&file, "x").unwrap();
    let run = env.run_in(&file, &["model", "list"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("is not a folder"), "{}", run.stderr);
    assert_eq!(std::fs::read(&file).unwrap(), b"x");

    let env = env_with_model();
    let db = env.store().join("statectl.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let bytes = std::fs::read(&db).unwrap();
    env.fails(
        &["model", "list"],
        1,
        "newer than this statectl understands",
    );
    assert_eq!(std::fs::read(&db).unwrap(), bytes);
}

#[test]
fn usage_errors_exit_2() {
    let env = env_with_model();
    env.fails(
        &["restore", "HEAD", "--slot", "0", "--slots", "1"],
        2,
        "cannot be used with",
    );
    env.fails(&["frobnicate"], 2, "unrecognized subcommand");
}

#[test]
fn tags_that_would_shadow_refs_are_refused() {
    let env = env_with_model();
    env.fails(&["snapshot", "--tag", "HEAD"], 1, "cannot be a tag");
    env.fails(&["snapshot", "--tag", "beef"], 1, "cannot be a tag");
}

#[test]
fn an_unwritable_output_path_fails_before_anything_is_recorded() {
    let env = env_with_model();
    let x = fixture("x_test.safetensors");
    env.fails(
        &[
            "predict",
            "--input",
            s(&x),
            "-o",
            "/nonexistent/dir/out.safetensors",
        ],
        1,
        "does not exist",
    );
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let env = Env::new();
    // A state big enough that its values overflow the pipe's buffer.
    let big = env.write_tensors(
        "big.safetensors",
        &[
            ("l0.h", Tensor::new(vec![2000, 64], vec![0.25; 128_000])),
            ("l0.c", Tensor::new(vec![2000, 64], vec![0.5; 128_000])),
        ],
    );
    env.ok(&["import", s(&big), "--tag", "big"]);
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; {} --store {} show big --values | head -c 1 >/dev/null",
            assert_cmd::cargo::cargo_bin("statectl").display(),
            s(&env.store())
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
