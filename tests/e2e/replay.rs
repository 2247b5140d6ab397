//! R2D2's replay workflow inside the store: stack and split with lineage,
//! ref patterns and `--refs-from`, staleness means, charts, and the whole
//! loop as a CLI script.

use crate::util::*;

fn slot_rows(env: &Env) -> i64 {
    env.db()
        .query_row("SELECT count(*) FROM slots", [], |r| r.get(0))
        .unwrap()
}

fn replay_env() -> Env {
    let env = Env::new();
    env.ok(&["-q", "demo"]);
    let replay =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/replay.safetensors");
    env.ok(&["import", s(&replay), "--per-slot", "--tag-prefix", "seq"]);
    env
}

fn id(env: &Env, r: &str) -> String {
    env.json(&["show", r])["state"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn stack_then_split_round_trips_without_writing_slot_bytes() {
    let env = replay_env();
    let slots_before = slot_rows(&env);
    let stacked = env.json(&["stack", "seq*", "--tag", "batch"]);
    assert_eq!(stacked["batch"], 8);
    // Natural order: seq0 .. seq7, and the slot ids are the sources'.
    let from: Vec<&str> = stacked["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ref"].as_str().unwrap())
        .collect();
    assert_eq!(
        from,
        ["seq0", "seq1", "seq2", "seq3", "seq4", "seq5", "seq6", "seq7"]
    );
    let slots = env.json(&["show", "batch"])["slots"].clone();
    for i in 0..8 {
        assert_eq!(
            env.json(&["show", &format!("seq{i}")])["slots"][0],
            slots[i]
        );
    }
    let split = env.json(&["split", "batch", "--tag-prefix", "back/"]);
    for i in 0..8 {
        assert_eq!(
            split["states"][i]["state"].as_str().unwrap(),
            id(&env, &format!("seq{i}"))
        );
        assert_eq!(split["states"][i]["tag"], format!("back/{i}"));
    }
    assert_eq!(
        slot_rows(&env),
        slots_before,
        "stack or split wrote slot bytes"
    );
    // States of several slots stack too, in the order given.
    let mixed = env.json(&["stack", "case1/end", "seq3", "case2/end"]);
    assert_eq!(mixed["batch"], 13);
    assert_eq!(
        env.json(&["show", &mixed["state"].as_str().unwrap()[..12]])["slots"][6],
        slots[3]
    );
}

#[test]
fn split_and_stack_keep_their_lineage() {
    let env = replay_env();
    env.ok(&["split", "case1/end", "--tag-prefix", "c1/"]);
    let source = id(&env, "case1/end");
    let shown = env.json(&["show", "c1/4"]);
    let origin = &shown["origin"];
    assert_eq!(origin["kind"], "split");
    assert_eq!(origin["detail"]["source"], source.as_str());
    assert_eq!(origin["detail"]["slot"], 4);
    assert!(env
        .ok(&["show", "c1/4"])
        .contains(&format!("slot 4 of {}", &source[..12])));
    env.ok(&["stack", "c1/*", "--tag", "again"]);
    let log = env.ok(&["log", "--all", "--kind", "stack"]);
    assert!(log.contains("stacked c1/0 (1) + c1/1 (1)"), "{log}");
    let log = env.ok(&["log", "--all", "--kind", "split", "--limit", "1"]);
    assert!(log.contains("slot 5 of"), "{log}");
}

#[test]
fn patterns_and_refs_files_select_exactly_in_natural_order() {
    let env = replay_env();
    for i in [10, 2, 1] {
        env.ok(&["snapshot", "seq0", "--tag", &format!("buf/k5/{i}")]);
    }
    env.ok(&["snapshot", "seq0", "--tag", "buf/k50/1"]);
    let out = env.path("sel.safetensors");
    let exported = env.json(&["export", "buf/k5/*", "-o", s(&out)]);
    let refs: Vec<&str> = exported["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ref"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["buf/k5/1", "buf/k5/2", "buf/k5/10"]);
    let list = env.path("refs.txt");
    std::fs::write(&list, "# sampled\nseq7\n\nseq2\nbuf/k5/1?\n").unwrap();
    let stacked = env.json(&["stack", "--refs-from", s(&list)]);
    let from: Vec<&str> = stacked["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ref"].as_str().unwrap())
        .collect();
    assert_eq!(from, ["seq7", "seq2", "buf/k5/10"]);
    // From stdin.
    let out = assert_cmd::Command::cargo_bin("statectl")
        .unwrap()
        .args([
            "--store",
            s(&env.store()),
            "--json",
            "stack",
            "--refs-from",
            "-",
        ])
        .write_stdin("seq1\nseq0\n")
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["batch"], 2);
    // Bad patterns and missing refs: clear errors, nothing written.
    env.fails(
        &["stack", "nothing/*"],
        1,
        "pattern 'nothing/*' matches no tag",
    );
    std::fs::write(&list, "seq1\nnot-a-tag\n").unwrap();
    env.fails(
        &["stack", "--refs-from", s(&list), "--tag", "x"],
        1,
        "ref 'not-a-tag' not found",
    );
    env.fails(&["stack"], 1, "no ref given");
}

#[test]
fn diff_staleness_mean_is_the_mean_of_its_slots() {
    let env = replay_env();
    env.ok(&["stack", "seq*", "--tag", "stored"]);
    env.ok(&["restore", "trained", "--slot", "0", "--batch-size", "8"]);
    env.ok(&["snapshot", "--tag", "true"]);
    let x = env.write_tensors(
        "x.safetensors",
        &[(
            "x",
            statectl::tensors::Tensor::new(
                vec![8, 4, 1],
                (0..32).map(|i| (i % 27) as f32 / 27.0).collect(),
            ),
        )],
    );
    let d = env.json(&["diff", "true", "stored", "--input", s(&x), "--per-slot"]);
    let o = &d["outputs"];
    let per_slot: Vec<f64> = o["per_slot"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let mean = per_slot.iter().sum::<f64>() / per_slot.len() as f64;
    assert!((o["mean_over_slots"].as_f64().unwrap() - mean).abs() < 1e-12);
    let max = per_slot.iter().copied().fold(0.0, f64::max);
    assert_eq!(o["max_over_slots"].as_f64().unwrap(), max);
    let text = env.ok(&["diff", "true", "stored", "--input", s(&x)]);
    assert!(text.contains("per slot: mean"), "{text}");
}

fn svg(path: &std::path::Path) -> (usize, Vec<String>, Vec<(String, String)>) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed SVG");
    let rects = doc.descendants().filter(|n| n.has_tag_name("rect")).count();
    let texts = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect();
    let fills = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect"))
        .map(|n| {
            (
                n.attribute("fill").unwrap_or("").to_string(),
                n.attribute("height").unwrap_or("").to_string(),
            )
        })
        .collect();
    (rects, texts, fills)
}

#[test]
fn each_plot_writes_a_well_formed_labelled_chart() {
    let env = replay_env();
    env.ok(&[
        "-q", "train", "--record", "batch", "--epochs", "3", "--name", "b3",
    ]);
    // Losses: two models, one with per-batch losses: three series.
    let loss = env.path("loss.svg");
    env.ok(&["plot", "loss", "demo", "b3", "-o", s(&loss)]);
    let (_, texts, _) = svg(&loss);
    for label in [
        "training loss",
        "epoch",
        "loss",
        "demo (per epoch)",
        "b3 (per batch)",
        "b3 (per epoch)",
    ] {
        assert!(
            texts.iter().any(|t| t == label),
            "no '{label}' in {texts:?}"
        );
    }
    // A state: one cell per slot and unit, per layer and tensor (+ the
    // background, and each panel's colour bar of 64 steps).
    let state = env.path("state.svg");
    env.ok(&["plot", "state", "case1/end", "-o", s(&state)]);
    let (rects, texts, _) = svg(&state);
    assert_eq!(rects, 1 + 2 * 6 * 16 + 2 * 64);
    assert!(texts.iter().any(|t| t == "unit") && texts.iter().any(|t| t == "slot"));
    // A stream's HEAD says whose stream it is.
    let head = env.path("head.svg");
    env.ok(&["plot", "state", "HEAD", "-o", s(&head)]);
    let (_, texts, _) = svg(&head);
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("state HEAD of model 'b3', stream 'main' (")),
        "{texts:?}"
    );
    // Staleness: one bar per slot and series, and a legend entry per series.
    env.ok(&["stack", "seq0", "seq1", "seq2", "--tag", "stored"]);
    env.ok(&["restore", "trained", "--slot", "0", "--batch-size", "3"]);
    env.ok(&["snapshot", "--tag", "true"]);
    let x = env.write_tensors(
        "x.safetensors",
        &[(
            "x",
            statectl::tensors::Tensor::new(vec![3, 4, 1], vec![0.1; 12]),
        )],
    );
    let bars = env.path("staleness.svg");
    env.ok(&[
        "plot",
        "staleness",
        "true",
        "zeros",
        "stored",
        "--input",
        s(&x),
        "-o",
        s(&bars),
    ]);
    let (_, texts, fills) = svg(&bars);
    let first_series = fills.iter().filter(|(f, _)| f == "#1F77B4").count();
    assert_eq!(first_series, 3 + 1, "3 bars and a legend key: {fills:?}");
    assert!(
        texts.iter().any(|t| t.starts_with("zeros (mean")),
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t == "staleness") && texts.iter().any(|t| t == "slot"));
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("model 'b3', staleness against true")),
        "{texts:?}"
    );
    // PNG where asked: it decodes, at the chart's size.
    let png = env.path("state.png");
    env.ok(&["plot", "state", "trained", "-o", s(&png)]);
    let decoder = png::Decoder::new(std::fs::File::open(&png).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (900, 540));
    // A name that says no format is refused, and nothing is left behind.
    env.fails(
        &["plot", "state", "trained", "-o", s(&env.path("chart.pdf"))],
        1,
        "name the file .svg or .png",
    );
    assert!(!env.path("chart.pdf").exists());
}

#[test]
fn the_r2d2_replay_example_runs_with_the_cli_alone() {
    let env = Env::new();
    // As the README runs it: the chart named relative to where it runs.
    let chart = env.path("r2d2.svg");
    let out = std::process::Command::new("bash")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/r2d2_replay.sh"))
        .arg("r2d2.svg")
        .current_dir(env.dir.path())
        .env("STATECTL", assert_cmd::cargo::cargo_bin("statectl"))
        .env("STATECTL_STORE", env.store())
        // No Python on the PATH: the loop needs none.
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let figure = |name: &str| -> f64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no '{name}' figure in:\n{stdout}"))
    };
    assert_eq!(
        crate::readme::output_blocks()[1].trim_end(),
        stdout.trim_end(),
        "the README's R2D2 printout is not what examples/r2d2_replay.sh prints"
    );
    let (zero, stored, burned) = (figure("zero"), figure("stored"), figure("burn-in"));
    assert!(
        burned < stored && burned < zero,
        "zero {zero}, stored {stored}, burn-in {burned}"
    );
    assert!(
        burned > 0.0,
        "burn-in from an older model's state cannot be exact"
    );
    let (_, texts, _) = svg(&chart);
    assert!(
        texts.iter().any(|t| t.starts_with("sample/burned (mean")),
        "{texts:?}"
    );
}
