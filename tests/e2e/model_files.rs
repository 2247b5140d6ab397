//! The model files people already have: `.keras`, `.weights.h5` and
//! PyTorch `.pt` files made by the real tools (tests/fixtures/model_files/,
//! with the scripts that made them), imported with no flags, predicting
//! what the tools predicted, with the same weights id as the same weights
//! imported from safetensors; and hostile files refused in one line, in
//! bounded memory, with the store untouched.

use sha2::{Digest, Sha256};

use crate::util::*;

fn model_file(name: &str) -> std::path::PathBuf {
    fixture(&format!("model_files/{name}"))
}

/// Every number in a JSON array of any depth, in order.
fn flat(v: &serde_json::Value) -> Vec<f32> {
    match v {
        serde_json::Value::Array(items) => items.iter().flat_map(flat).collect(),
        other => vec![other.as_f64().expect("a number") as f32],
    }
}

struct Case {
    /// The file's stem under tests/fixtures/model_files/.
    stem: &'static str,
    file: &'static str,
    /// The same weights as safetensors, and the flags that say what the
    /// model file itself says.
    twin: &'static str,
    twin_flags: &'static [&'static str],
    layout: &'static str,
    head: &'static str,
    outputs: &'static str,
    batch: u64,
    format: &'static str,
}

const CASES: &[Case] = &[
    Case {
        stem: "lstm_stacked",
        file: "lstm_stacked.keras",
        twin: "lstm_stacked.keras_layout.safetensors",
        twin_flags: &["--head", "softmax", "--batch-size", "3"],
        layout: "lstm:8,6",
        head: "softmax",
        outputs: "last",
        batch: 3,
        format: "keras",
    },
    Case {
        stem: "gru_per_step",
        file: "gru_per_step.keras",
        twin: "gru_per_step.keras_layout.safetensors",
        twin_flags: &[
            "--head",
            "linear",
            "--outputs",
            "sequence",
            "--batch-size",
            "2",
        ],
        layout: "gru:5",
        head: "linear",
        outputs: "sequence",
        batch: 2,
        format: "keras",
    },
    Case {
        stem: "lstm_stateless",
        file: "lstm_stateless.keras",
        twin: "lstm_stateless.keras_layout.safetensors",
        twin_flags: &["--head", "linear"],
        layout: "lstm:7",
        head: "linear",
        outputs: "last",
        batch: 1,
        format: "keras",
    },
    Case {
        stem: "functional",
        file: "functional.keras",
        twin: "functional.keras_layout.safetensors",
        twin_flags: &["--head", "softmax", "--batch-size", "2"],
        layout: "lstm:5",
        head: "softmax",
        outputs: "last",
        batch: 2,
        format: "keras",
    },
    Case {
        stem: "torch_lstm2",
        file: "torch_lstm2.pt",
        twin: "torch_lstm2.torch_layout.safetensors",
        twin_flags: &["--head", "linear"],
        layout: "lstm:6,6",
        head: "linear",
        outputs: "last",
        batch: 1,
        format: "torch",
    },
    Case {
        stem: "torch_gru",
        file: "torch_gru.pt",
        twin: "torch_gru.torch_layout.safetensors",
        twin_flags: &["--head", "linear"],
        layout: "gru:5",
        head: "linear",
        outputs: "last",
        batch: 1,
        format: "torch",
    },
    Case {
        stem: "torch_checkpoint",
        file: "torch_checkpoint.pt",
        twin: "torch_checkpoint.torch_layout.safetensors",
        twin_flags: &["--head", "linear"],
        layout: "lstm:4",
        head: "linear",
        outputs: "last",
        batch: 1,
        format: "torch",
    },
];

/// Puts the fixture's state on the model's `main` stream (zeros of the
/// input's batch when the model keeps no state) and predicts its input.
fn predict_from_fixture_state(env: &Env, model: &str, stem: &str) -> Vec<f32> {
    let expected = fixture_file(&format!("model_files/{stem}.expected.safetensors"));
    let x = &expected.tensors["x"];
    let state: Vec<(&str, statectl::tensors::Tensor)> = expected
        .tensors
        .iter()
        .filter(|(name, _)| name.starts_with('l'))
        .map(|(name, t)| (name.as_str(), t.clone()))
        .collect();
    if state.is_empty() {
        let batch = x.shape[0].to_string();
        env.ok(&["reset", "--model", model, "--batch-size", &batch]);
    } else {
        let file = env.write_tensors(&format!("{model}.state.safetensors"), &state);
        let tag = format!("{model}-start");
        env.ok(&["import", s(&file), "--tag", &tag]);
        env.ok(&["restore", &tag, "--model", model]);
    }
    let input = env.write_tensors(&format!("{model}.x.safetensors"), &[("x", x.clone())]);
    let out = env.json(&["predict", "--model", model, "--input", s(&input)]);
    let got = flat(&out["outputs"]);
    let want = &expected.tensors["y"].data;
    let diff = max_abs_diff(&got, want);
    assert!(
        diff < 1e-6,
        "{model}: predictions differ from the tool's by {diff}"
    );
    got
}

#[test]
fn keras_and_torch_files_import_with_no_flags_and_predict_what_their_tools_predicted() {
    let env = Env::new();
    for case in CASES {
        let path = model_file(case.file);
        let imported = env.json(&["model", "import", s(&path)]);
        assert_eq!(imported["model"], case.stem, "{}", case.file);
        assert_eq!(imported["layout"], case.layout, "{}", case.file);
        assert_eq!(imported["config"]["head"], case.head, "{}", case.file);
        // (`outputs` is left out of the config when it is the default, last.)
        let outputs = imported["config"]["outputs"].as_str().unwrap_or("last");
        assert_eq!(outputs, case.outputs, "{}", case.file);
        assert_eq!(
            imported["config"]["batch_size"], case.batch,
            "{}",
            case.file
        );
        assert_eq!(imported["origin"]["format"], case.format, "{}", case.file);

        // The id is of the weights, not of the file they came in.
        let twin_name = format!("{}-twin", case.stem);
        let twin_path = model_file(case.twin);
        let mut args = vec!["model", "import", s(&twin_path), "--name", &twin_name];
        args.extend_from_slice(case.twin_flags);
        let twin = env.json(&args);
        assert_eq!(
            imported["weights"], twin["weights"],
            "{}: weights id differs from the safetensors twin's",
            case.file
        );

        // model show names the file and its sha256.
        let shown = env.json(&["model", "show", case.stem]);
        let sha = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
        assert_eq!(shown["origin"]["sha256"], sha, "{}", case.file);
        assert_eq!(shown["origin"]["file"], case.file);
        let text = env.ok(&["model", "show", case.stem]);
        assert!(
            text.contains(&format!(
                "imported from {} ({}, sha256 {})",
                case.file,
                case.format,
                &sha[..16]
            )),
            "{text}"
        );

        predict_from_fixture_state(&env, case.stem, case.stem);
    }
    assert_eq!(env.json(&["audit"])["ok"], true);
}

#[test]
fn a_weights_h5_file_imports_like_its_keras_file_given_the_head() {
    let env = Env::new();
    let keras = env.json(&["model", "import", s(&model_file("lstm_stacked.keras"))]);
    env.fails(
        &[
            "model",
            "import",
            s(&model_file("lstm_stacked.weights.h5")),
            "--name",
            "w",
        ],
        1,
        "pass --head softmax",
    );
    let weights = env.json(&[
        "model",
        "import",
        s(&model_file("lstm_stacked.weights.h5")),
        "--name",
        "w",
        "--head",
        "softmax",
        "--batch-size",
        "3",
    ]);
    assert_eq!(weights["weights"], keras["weights"]);
    assert_eq!(weights["origin"]["format"], "keras-weights-h5");
    predict_from_fixture_state(&env, "w", "lstm_stacked");
    // The file's own name decides nothing: a .keras file renamed .bin
    // is still read as one.
    let renamed = env.path("model.bin");
    std::fs::copy(model_file("functional.keras"), &renamed).unwrap();
    let again = env.json(&["model", "import", s(&renamed)]);
    assert_eq!(again["origin"]["format"], "keras");
}

#[test]
fn flags_that_contradict_a_keras_file_are_refused_naming_the_disagreement() {
    let env = Env::new();
    env.ok(&[
        "model",
        "import",
        s(&model_file("gru_per_step.keras")),
        "--name",
        "first",
    ]);
    let file = model_file("lstm_stacked.keras");
    for (flags, fragment) in [
        (
            &["--head", "linear"][..],
            "--head linear disagrees with the file: its Dense layer 'dense' computes softmax",
        ),
        (&["--outputs", "sequence"][..], "return_sequences=False"),
        (
            &["--batch-size", "5"][..],
            "the stateful model's batch size is 3",
        ),
        (
            &["--layers", "lstm_1,lstm"][..],
            "whose recurrent layers are lstm,lstm_1",
        ),
    ] {
        let mut args = vec!["model", "import", s(&file)];
        args.extend_from_slice(flags);
        env.fails(&args, 1, fragment);
    }
    // Flags that agree are fine.
    env.ok(&[
        "model",
        "import",
        s(&file),
        "--head",
        "softmax",
        "--batch-size",
        "3",
    ]);
    // A PyTorch file's head is its nn.Linear; softmax on top is the user's call.
    let soft = env.json(&[
        "model",
        "import",
        s(&model_file("torch_gru.pt")),
        "--head",
        "softmax",
        "--name",
        "soft",
    ]);
    assert_eq!(soft["config"]["head"], "softmax");
    let note = env.run(&["model", "import", s(&model_file("torch_checkpoint.pt"))]);
    assert_eq!(note.code, 0);
    assert!(note.stderr.contains("read the state_dict under 'state_dict'; ignored the checkpoint's other entries (optimizer, epoch)"), "{}", note.stderr);
}

/// A `.keras` copy of a fixture with `config.json` replaced.
fn keras_with_config(env: &Env, name: &str, config: &[u8]) -> std::path::PathBuf {
    use std::io::{Read, Write};
    let source = std::fs::File::open(model_file("gru_per_step.keras")).unwrap();
    let mut zip = zip::ZipArchive::new(source).unwrap();
    let path = env.path(name);
    let mut out = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..zip.len() {
        let mut member = zip.by_index(i).unwrap();
        let member_name = member.name().unwrap().to_string();
        let mut bytes = Vec::new();
        member.read_to_end(&mut bytes).unwrap();
        out.start_file(member_name.as_str(), stored).unwrap();
        out.write_all(if member_name == "config.json" {
            config
        } else {
            &bytes
        })
        .unwrap();
    }
    out.finish().unwrap();
    path
}

/// Runs statectl with its address space capped at 512 MiB: a reader that
/// tried to allocate what a hostile header claims would abort.
fn run_in_512_mib(env: &Env, args: &[&str]) -> Run {
    let bin = assert_cmd::cargo::cargo_bin("statectl");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 524288 && exec \"$0\" \"$@\"")
        .arg(&bin)
        .arg("--store")
        .arg(env.store())
        .args(args)
        .env_remove("STATECTL_STORE")
        .output()
        .unwrap();
    Run::from(out)
}

/// Like `Env::fails`, under [`run_in_512_mib`].
fn fails_in_512_mib(env: &Env, args: &[&str], fragment: &str) {
    let before = env.fingerprint();
    let run = run_in_512_mib(env, args);
    assert_eq!(
        run.code, 1,
        "statectl {args:?}: {}{}",
        run.stdout, run.stderr
    );
    assert_eq!(
        run.stderr.trim_end().lines().count(),
        1,
        "not one line: {}",
        run.stderr
    );
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert!(
        run.stderr.contains(fragment),
        "statectl {args:?}: stderr lacks '{fragment}': {}",
        run.stderr
    );
    assert_eq!(
        env.fingerprint(),
        before,
        "statectl {args:?} changed the store"
    );
}

#[test]
fn hostile_and_damaged_model_files_are_refused_in_one_line_in_bounded_memory() {
    let env = Env::new();
    env.ok(&[
        "model",
        "import",
        s(&model_file("torch_gru.pt")),
        "--name",
        "kept",
    ]);
    let nested = keras_with_config(
        &env,
        "nested.keras",
        &[b"[".repeat(100_000), b"]".repeat(100_000)].concat(),
    );
    let huge = keras_with_config(
        &env,
        "huge.keras",
        &[&b"{\"pad\": \""[..], &b"x".repeat(5 << 20), b"\"}"].concat(),
    );
    let truncated_pt = env.path("truncated.pt");
    let whole = std::fs::read(model_file("torch_lstm2.pt")).unwrap();
    std::fs::write(&truncated_pt, &whole[..whole.len() / 2]).unwrap();
    let truncated_h5 = env.path("truncated.weights.h5");
    let whole = std::fs::read(model_file("lstm_stacked.weights.h5")).unwrap();
    std::fs::write(&truncated_h5, &whole[..whole.len() / 3]).unwrap();
    let cases: Vec<(std::path::PathBuf, &str)> = vec![
        (
            model_file("bad_zip_bomb.keras"),
            "its zip member 'model.weights.h5' is compressed (Deflated)",
        ),
        (
            model_file("bad_compressed.keras"),
            "its zip member 'config.json' is compressed",
        ),
        (
            nested,
            "its config.json is not valid JSON (recursion limit exceeded",
        ),
        (
            huge,
            "its zip member 'config.json' is 5242891 bytes, more than the 4194304",
        ),
        (
            model_file("bad_nested_config.keras"),
            "recursion limit exceeded",
        ),
        (
            model_file("bad_truncated.keras"),
            "it is not a readable zip",
        ),
        (
            model_file("bad_huge_shape.weights.h5"),
            "claims shape [1048576, 1048576], more float32 values than the file's",
        ),
        (
            model_file("bad_legacy.pt"),
            "_use_new_zipfile_serialization=True",
        ),
        (
            model_file("bad_pickle_global.pt"),
            "it holds a pickled call of os.system (never made), not a state_dict",
        ),
        (
            model_file("bad_huge_tensor.pt"),
            "its tensor 'rnn.weight_ih_l0' claims shape [1048576, 1048576]",
        ),
        (
            model_file("bad_bidirectional.keras"),
            "layer 'bidirectional' (Bidirectional) cannot be represented",
        ),
        (
            model_file("bad_gru_reset_before.keras"),
            "has reset_after=False",
        ),
        (truncated_pt, "it is not a readable zip"),
        (truncated_h5, "its HDF5 structure cannot be read"),
    ];
    for (path, fragment) in &cases {
        fails_in_512_mib(
            &env,
            &[
                "model",
                "import",
                s(path),
                "--name",
                "bad",
                "--head",
                "linear",
            ],
            fragment,
        );
    }
    // The pickle's os.system was never called.
    assert!(!std::path::Path::new("statectl-was-pwned.txt").exists());
    assert!(!env.path("statectl-was-pwned.txt").exists());
    // A good file under the same cap imports: the cap is not what refused.
    let ok = run_in_512_mib(
        &env,
        &[
            "model",
            "import",
            s(&model_file("lstm_stacked.keras")),
            "--name",
            "fine",
        ],
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
}

#[test]
fn a_model_exported_as_keras_imports_back_as_the_same_model() {
    let env = Env::new();
    for file in ["lstm_stacked.keras", "gru_per_step.keras"] {
        let first = env.json(&["model", "import", s(&model_file(file))]);
        let name = first["model"].as_str().unwrap().to_string();
        let out = env.path(&format!("{name}.copy.keras"));
        env.ok(&["model", "export", &name, "--format", "keras", "-o", s(&out)]);
        let again_name = format!("{name}-again");
        let again = env.json(&["model", "import", s(&out), "--name", &again_name]);
        assert_eq!(again["weights"], first["weights"], "{file}");
        assert_eq!(again["config"], first["config"], "{file}");
        // Written the same way twice: the file is a function of the model.
        let twice = env.path("twice.keras");
        env.ok(&[
            "model",
            "export",
            &name,
            "--format",
            "keras",
            "-o",
            s(&twice),
        ]);
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&twice).unwrap());
    }
}
