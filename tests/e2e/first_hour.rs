//! The first hour of a new user: no traps, output that tells the story,
//! help that helps. Each test is one finding of the first-hour review.

use crate::util::*;

fn import(env: &Env, file: &str, extra: &[&str]) -> serde_json::Value {
    let path = fixture(file);
    let mut args = vec!["model", "import", s(&path)];
    args.extend_from_slice(extra);
    env.json(&args)
}

#[test]
fn model_import_detects_the_naming_and_needs_a_head_unless_the_file_says_it() {
    let env = Env::new();
    let keras = import(
        &env,
        "weights.keras_layout.safetensors",
        &["--head", "softmax", "--name", "k"],
    );
    assert_eq!(keras["naming"], "keras");
    let torch = import(
        &env,
        "weights.torch_layout.safetensors",
        &["--head", "softmax", "--name", "t"],
    );
    assert_eq!(torch["naming"], "torch");
    assert_eq!(keras["weights"], torch["weights"]);
    // Without --head the weights cannot say what the output layer computes.
    let file = fixture("weights.keras_layout.safetensors");
    env.fails(
        &["model", "import", s(&file), "--name", "nohead"],
        1,
        "pass --head softmax (classification) or --head linear",
    );
    // statectl's own export says it: no --head needed, same weights.
    let exported = env.path("exported.safetensors");
    env.ok(&["model", "export", "k", "-o", s(&exported)]);
    let again = env.json(&["model", "import", s(&exported), "--name", "again"]);
    assert_eq!(again["weights"], keras["weights"]);
    assert_eq!(again["config"]["head"], "softmax");
    // A linear head is kept as linear: Q-values are not softmaxed.
    let linear = import(
        &env,
        "weights.torch_layout.safetensors",
        &["--head", "linear", "--name", "q"],
    );
    assert_eq!(linear["config"]["head"], "linear");
    assert_ne!(linear["weights"], torch["weights"]);
    // Names of neither scheme are refused with the names shown.
    let odd = env.write_tensors(
        "odd.safetensors",
        &[("w", statectl::tensors::Tensor::new(vec![1], vec![0.0]))],
    );
    env.fails(
        &[
            "model",
            "import",
            s(&odd),
            "--head",
            "linear",
            "--name",
            "odd",
        ],
        1,
        "neither PyTorch's",
    );
}

#[test]
fn float64_weights_are_converted_and_it_is_said() {
    let env = Env::new();
    let f64_file = env.path("w64.safetensors");
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, numpy as np\nfrom safetensors.numpy import load_file, save_file\nt = load_file(sys.argv[1])\nsave_file({k: v.astype(np.float64) for k, v in t.items()}, sys.argv[2])",
            s(&fixture("weights.torch_layout.safetensors")),
            s(&f64_file),
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = env.run(&[
        "model",
        "import",
        s(&f64_file),
        "--head",
        "softmax",
        "--name",
        "w64",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("converted 6 float64 tensor(s) to float32"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_weights_id_does_not_depend_on_the_batch_size() {
    let env = Env::new();
    let one = import(
        &env,
        "weights.keras_layout.safetensors",
        &["--head", "softmax", "--batch-size", "1", "--name", "b1"],
    );
    let six = import(
        &env,
        "weights.keras_layout.safetensors",
        &["--head", "softmax", "--batch-size", "6", "--name", "b6"],
    );
    assert_eq!(one["weights"], six["weights"]);
    assert_eq!(one["config"]["batch_size"], 1);
    assert_eq!(six["config"]["batch_size"], 6);
    let streams = env.json(&["show", "HEAD", "--model", "b6"]);
    assert_eq!(streams["batch"], 6);
}

#[test]
fn diff_within_tolerance_says_equal_and_exits_zero() {
    let env = Env::new();
    env.ok(&["-q", "demo"]);
    let run = env.run(&[
        "diff",
        "case1/end",
        "case2/end",
        "--tolerance",
        "1",
        "--exit-code",
    ]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("equal within tolerance"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("\ndiffer in"), "{}", run.stdout);
    let run = env.run(&[
        "diff",
        "case1/end",
        "case2/end",
        "--tolerance",
        "1e-9",
        "--exit-code",
    ]);
    assert_eq!(run.code, 3);
    assert!(
        run.stdout.contains("differ in slot(s) 0, 1, 2, 3, 4, 5"),
        "{}",
        run.stdout
    );
}

#[test]
fn log_shows_time_source_and_what_moved() {
    let env = Env::new();
    env.ok(&["-q", "demo"]);
    let input =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/demo_input.csv");
    env.ok(&["predict", "--input", s(&input), "--no-advance"]);
    env.ok(&["restore", "trained", "--slot", "2", "--batch-size", "32"]);
    let log = env.ok(&["log"]);
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines[0].contains("times in UTC"), "{log}");
    assert!(lines[1].contains("TIME"), "{log}");
    // Newest first: the slice names its source by tag, then the prediction
    // that left the stream alone.
    assert!(
        lines[2].contains("slot 2 broadcast to batch 32 of"),
        "{log}"
    );
    assert!(lines[2].contains("trained"), "{log}");
    assert!(lines[2].contains("(HEAD)"), "{log}");
    assert!(lines[3].contains("stream not advanced"), "{log}");
    let year = format!("{}", 1970 + statectl::store::now_ms() / 31_556_952_000);
    assert!(lines[2].contains(&year), "{log}");
    // Today's tags only on the newest row holding the state.
    assert_eq!(log.matches("tags: case1/end").count(), 1, "{log}");
    let all = env.ok(&["log", "--all", "--limit", "3"]);
    assert!(all.contains("[demo/main]"), "{all}");
}

/// What bash offers at <Tab> after `line`, with `statectl completions
/// bash` sourced and the built statectl first on PATH.
fn bash_completes(env: &Env, line: &str) -> Vec<String> {
    let script = env.path("statectl.bash");
    std::fs::write(&script, env.ok(&["completions", "bash"])).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("statectl");
    let words: Vec<&str> = line.split(' ').collect();
    let current = words.last().unwrap();
    let previous = words[words.len().saturating_sub(2)];
    let program = format!(
        "source {} && COMP_WORDS=({line}) && COMP_CWORD={} && COMP_LINE='{line}' && COMP_POINT=${{#COMP_LINE}} && COMP_TYPE=9 && _clap_complete_statectl statectl '{current}' '{previous}' && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        s(&script),
        words.len() - 1
    );
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &program])
        .env("PATH", path)
        .env_remove("STATECTL_STORE")
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    succeeded(out)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn bash_completes_commands_and_the_stores_tags_models_and_streams() {
    let env = Env::new();
    env.ok(&["demo"]);
    let store = s(&env.store()).to_string();
    let subcommands = bash_completes(&env, "statectl re");
    assert!(
        subcommands.contains(&"restore".to_string()) && subcommands.contains(&"reset".to_string()),
        "{subcommands:?}"
    );
    let tags = bash_completes(&env, &format!("statectl --store {store} show case1"));
    assert_eq!(tags, ["case1/end", "case1/start"]);
    let refs = bash_completes(&env, &format!("statectl --store {store} diff HE"));
    assert!(refs.contains(&"HEAD".to_string()), "{refs:?}");
    let models = bash_completes(
        &env,
        &format!("statectl --store {store} predict --model de"),
    );
    assert_eq!(models, ["demo"]);
    let streams = bash_completes(&env, &format!("statectl --store {store} log --stream ma"));
    assert_eq!(streams, ["main"]);
    // Completing reads the store and changes nothing; a folder without a
    // store gets no names and no store.
    let before = env.fingerprint();
    bash_completes(&env, &format!("statectl --store {store} restore c"));
    assert_eq!(env.fingerprint(), before);
    let nowhere = env.path("nowhere");
    let none = bash_completes(&env, &format!("statectl --store {} show c", s(&nowhere)));
    assert!(none.is_empty(), "{none:?}");
    assert!(!nowhere.exists());
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        assert!(
            env.ok(&["completions", shell]).contains("COMPLETE"),
            "{shell}"
        );
    }
}

#[test]
fn the_man_page_renders() {
    let env = Env::new();
    let page = env.ok(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH statectl"),
        "{}",
        &page[..200]
    );
    assert!(page.contains("restore"));
    // Every page the top page's SEE ALSO names can be made.
    let train = env.ok(&["man", "train"]);
    assert!(train.contains(".TH statectl-train"), "{}", &train[..200]);
    assert!(train.contains("epochs"));
    let import = env.ok(&["man", "model", "import"]);
    assert!(
        import.contains(".TH statectl-model-import"),
        "{}",
        &import[..200]
    );
    env.fails(
        &["man", "trian"],
        1,
        "'statectl' has no command 'trian' (did you mean 'train'?)",
    );
    env.fails(
        &["man", "model", "list", "x"],
        1,
        "'statectl model list' has no command 'x'",
    );
    let path = env.path("statectl.1");
    std::fs::write(&path, &page).unwrap();
    // Rendered with groff or mandoc where either is installed.
    for (tool, args) in [
        ("mandoc", vec!["-Tascii"]),
        ("groff", vec!["-man", "-Tascii"]),
    ] {
        if let Ok(out) = std::process::Command::new(tool)
            .args(&args)
            .arg(&path)
            .output()
        {
            assert!(
                out.status.success(),
                "{tool}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains("statectl"));
        }
    }
}

#[test]
fn help_groups_global_options_and_shows_examples() {
    let env = Env::new();
    let help = env.ok(&["restore", "--help"]);
    assert!(help.contains("Global options:"), "{help}");
    assert!(help.contains("Examples:"), "{help}");
    let help = env.ok(&["snapshot", "--help"]);
    assert_eq!(help.matches("[default: HEAD]").count(), 1, "{help}");
    let help = env.ok(&["train", "--help"]);
    assert!(help.contains("Passes over the training data"), "{help}");
    // Every cell offered is one that trains.
    assert!(
        help.contains("possible values: lstm, gru") || help.contains("gru"),
        "{help}"
    );
}

#[test]
fn an_empty_store_says_how_to_make_a_model() {
    let env = Env::new();
    env.ok(&["init"]);
    env.fails(&["show"], 1, "this store has no models yet");
    env.fails(&["log"], 1, "this store has no models yet");
}

#[test]
fn log_shows_the_newest_fifty_events_and_says_how_to_see_more() {
    let env = Env::new();
    env.import_reference("keras", "ref");
    let x = fixture("x_test.safetensors");
    env.ok(&["predict", "--input", s(&x)]);
    for i in 0..52 {
        env.ok(&["snapshot", "HEAD", "--tag", &format!("t{i}")]);
    }
    let table = env.ok(&["log", "--all"]);
    let rows = table.lines().filter(|l| l.contains(" tag ")).count();
    assert_eq!(rows, 50, "{table}");
    assert!(
        table.contains("(the newest 50 events; older ones: --limit N, or --limit 0 for all)"),
        "{table}"
    );
    let all = env.ok(&["log", "--all", "--limit", "0"]);
    assert!(
        all.lines().filter(|l| l.contains(" tag ")).count() == 52,
        "{all}"
    );
    assert!(!all.contains("the newest"), "{all}");
    // JSON is for scripts: every event unless told.
    let json = env.json(&["log", "--all"]);
    assert!(json["events"].as_array().unwrap().len() > 52);
    let few = env.ok(&["log", "--all", "--limit", "3"]);
    assert!(few.contains("(the newest 3 events"), "{few}");
}

#[test]
fn status_sums_up_a_store() {
    let env = Env::new();
    // No store: an error, and none is made.
    env.fails(&["status"], 1, "no statectl store at");
    assert!(!env.store().exists());
    env.ok(&["init", s(&env.store())]);
    let empty = env.ok(&["status"]);
    assert!(
        empty.contains("0 model(s), 0 tag(s), 0 state(s) of 0 slot(s), 0 event(s)"),
        "{empty}"
    );
    assert!(empty.contains("no events yet"), "{empty}");
    env.import_reference("keras", "ref");
    let x = fixture("x_test.safetensors");
    env.ok(&[
        "predict",
        "--input",
        s(&x),
        "--stream",
        "actor-1",
        "--tag",
        "first",
    ]);
    let text = env.ok(&["status"]);
    assert!(text.contains("model 'ref': lstm:16"), "{text}");
    assert!(text.contains("stream 'actor-1' -> "), "{text}");
    assert!(text.contains("stream 'main' -> "), "{text}");
    let json = env.json(&["status"]);
    assert_eq!(json["schema"], statectl::store::SCHEMA_VERSION);
    assert_eq!(json["tags"], 1);
    assert_eq!(json["models"][0]["streams"].as_array().unwrap().len(), 2);
    assert!(json["bytes_on_disk"].as_u64().unwrap() > 0);
    assert_eq!(json["last_event"]["kind"], "tag", "{json}");
}

#[test]
fn a_csv_series_is_cut_with_a_stride_and_a_meaningless_carried_state_is_named() {
    let env = Env::new();
    let series = "examples/data/series.csv";
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(series);
    let train = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--data",
            s(&data),
            "--seq-len",
            "20",
            "--epochs",
            "1",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--name", name]);
        env.run(&args)
    };
    // 200 rows, windows of 20 every 20 rows, each followed by its target
    // row: starts 0, 20, ..., 160.
    let apart = train(
        "apart",
        &["--stride", "20", "--no-shuffle", "--batch-size", "1"],
    );
    assert_eq!(apart.code, 0, "{}", apart.stderr);
    assert!(!apart.stderr.contains("note:"), "{}", apart.stderr);
    let shown = env.json(&["model", "show", "apart"]);
    assert_eq!(shown["training"]["samples"], 9, "{shown}");
    // The default: shuffled windows one row apart, with a carried state.
    let default = train("default", &["--drop-remainder"]);
    assert_eq!(default.code, 0, "{}", default.stderr);
    assert!(
        default.stderr.contains(
            "note: stateful training carries the state from batch to batch, but these windows are shuffled and overlapping (--stride 1 < --seq-len 20)"
        ),
        "{}",
        default.stderr
    );
    let stateless = train("stateless", &["--no-stateful"]);
    assert!(!stateless.stderr.contains("note:"), "{}", stateless.stderr);
    env.fails(
        &[
            "train",
            "--data",
            s(&data),
            "--seq-len",
            "20",
            "--stride",
            "0",
        ],
        2,
        "--stride",
    );
}
