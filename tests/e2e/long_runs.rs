//! Training that survives: checkpoints, SIGKILL at random moments and
//! `train --resume` until the run finishes, with the same weights id, final
//! state id and per-batch losses as the same run left alone; Ctrl-C; and
//! what a bad resume gets. 30 kills by default (CI); set
//! `STATECTL_RESUME_KILLS` for a longer run. Prints the number of kills and
//! of mismatches.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::trust::env_with_fixture_store;
use crate::util::*;

/// A series of 3,000 rows: 93 batches of 8 windows an epoch.
fn write_series(env: &Env) -> String {
    let mut csv = String::from("v\n");
    for i in 0..3000 {
        let t = i as f64;
        csv.push_str(&format!(
            "{:.5}\n",
            (t * 0.05).sin() + 0.1 * (t * 0.31).cos()
        ));
    }
    let path = env.path("series.csv");
    std::fs::write(&path, csv).unwrap();
    s(&path).to_string()
}

/// A training plan of `epochs` on the series, checkpointing every 3 batches.
fn plan(data: &str, epochs: u32, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "train",
        "--data",
        data,
        "--seq-len",
        "16",
        "--stride",
        "4",
        "--batch-size",
        "8",
        "--units",
        "24",
        "--drop-remainder",
        "--checkpoint-every",
        "3",
        "--epochs",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(epochs.to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn spawn(env: &Env, args: &[String]) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("statectl"))
        .args(["--store", s(&env.store()), "-q"])
        .args(args)
        .env_remove("STATECTL_STORE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// What must come out the same: weights id, final state id, per-batch and
/// per-epoch losses, and the recorded training states.
fn outcome(env: &Env, model: &str) -> serde_json::Value {
    let shown = env.json(&["model", "show", model]);
    let training = &shown["training"];
    let db = env.db();
    let mut stmt = db
        .prepare("SELECT hex(state_after) FROM events WHERE kind = 'train' AND model_name = ?1 ORDER BY id")
        .unwrap();
    let states: Vec<String> = stmt
        .query_map([model], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    serde_json::json!({
        "weights": shown["weights"],
        "main": env.json(&["show", "HEAD", "--model", model])["state"],
        "losses": training["losses"],
        "batch_losses": training["batch_losses"],
        "val_losses": training["val_losses"],
        "stopped_early": training["stopped_early"],
        "states": states,
    })
}

fn has_run(env: &Env, name: &str) -> bool {
    env.json(&["model", "list"])["runs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == name)
}

fn has_model(env: &Env, name: &str) -> bool {
    env.json(&["model", "list"])["models"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["model"] == name)
}

/// Trains `args` under `name`, killing it at random moments within
/// `window` (counting resumes from a checkpoint) and resuming (alternately on 1 and 2 threads) until it
/// finishes. Returns the kills made; every kill is followed by a clean
/// verify.
fn train_through_kills(
    env: &Env,
    name: &str,
    args: &[String],
    window: Duration,
    rng: &mut rand_chacha::ChaCha8Rng,
    from_checkpoints: &mut usize,
    problems: &mut Vec<String>,
) -> usize {
    let mut kills = 0;
    for attempt in 0.. {
        if has_model(env, name) {
            return kills;
        }
        assert!(attempt < 200, "run {name} never finished");
        let threads = if attempt % 2 == 0 { "1" } else { "2" };
        let mut command: Vec<String> = vec!["--threads".into(), threads.into()];
        if has_run(env, name) {
            let checkpoints: i64 = env
                .db()
                .query_row(
                    "SELECT count(*) FROM checkpoints WHERE run = ?1",
                    [name],
                    |r| r.get(0),
                )
                .unwrap();
            *from_checkpoints += usize::from(checkpoints > 0);
            command.extend(["train".into(), "--resume".into(), name.into()]);
        } else {
            command.extend(args.iter().cloned());
            command.extend(["--name".into(), name.into()]);
        }
        let mut child = spawn(env, &command);
        // Within the first half of a whole run's time: several kills land
        // in each run, before and after its checkpoints.
        let span = window.as_micros() as u64;
        let wait = rng.random_range(span / 10..span / 2);
        std::thread::sleep(Duration::from_micros(wait));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        let status = child.wait().unwrap();
        let verify = env.run(&["--json", "verify"]);
        if verify.code != 0 {
            problems.push(format!(
                "{name}: after attempt {attempt} ({status:?}) verify exited {}: {}",
                verify.code, verify.stdout
            ));
            return kills;
        }
    }
    kills
}

#[test]
fn runs_killed_at_random_moments_resume_to_the_same_bits() {
    let wanted: usize = std::env::var("STATECTL_RESUME_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(30);
    let env = Env::new();
    let data = write_series(&env);
    let variants: [&[&str]; 5] = [
        &["--record", "batch"],
        &["--cell", "gru", "--no-shuffle"],
        &["--record", "epoch", "--units", "24,16"],
        &["--no-stateful"],
        &[
            "--validation-split",
            "0.2",
            "--patience",
            "1",
            "--lr",
            "0.02",
            "--keep-best",
        ],
    ];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let (mut kills, mut runs, mut mismatches) = (0, 0, Vec::new());
    let mut from_checkpoints = 0;
    let mut problems = Vec::new();
    while kills < wanted {
        let extra = variants[runs % variants.len()];
        let args = plan(&data, 6, extra);
        let reference = format!("alone-{runs}");
        let started = Instant::now();
        let mut alone = args.clone();
        alone.extend(["--name".into(), reference.clone()]);
        let alone: Vec<&str> = alone.iter().map(String::as_str).collect();
        env.ok(&[&["-q"], alone.as_slice()].concat());
        let window = started.elapsed();
        let name = format!("killed-{runs}");
        kills += train_through_kills(
            &env,
            &name,
            &args,
            window,
            &mut rng,
            &mut from_checkpoints,
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:#?}");
        if outcome(&env, &name) != outcome(&env, &reference) {
            mismatches.push(format!("{name} {extra:?}"));
        }
        // The best epoch, kept through the kills in every checkpoint.
        if extra.contains(&"--keep-best")
            && (outcome(&env, &format!("{name}.best"))
                != outcome(&env, &format!("{reference}.best"))
                || env.json(&["show", &format!("{name}/best")])["state"]
                    != env.json(&["show", &format!("{reference}/best")])["state"])
        {
            mismatches.push(format!("{name}.best {extra:?}"));
        }
        runs += 1;
    }
    env.ok(&["audit", "--train"]);
    println!(
        "resume harness: {kills} kills over {runs} runs, {from_checkpoints} resumes from a checkpoint, {} mismatches, {} problems",
        mismatches.len(),
        problems.len()
    );
    assert!(
        from_checkpoints > kills / 3,
        "too few resumes from a checkpoint"
    );
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    assert_eq!(env.json(&["model", "list"])["runs"], serde_json::json!([]));
}

/// Sends SIGINT to a child once its run has a checkpoint.
fn interrupt_after_first_checkpoint(env: &Env, child: &Child, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let checkpoints: i64 = env
            .db()
            .query_row("SELECT count(*) FROM checkpoints", [], |r| r.get(0))
            .unwrap_or(0);
        if checkpoints > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no checkpoint within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..times {
        // SAFETY: kill(2) with a child's pid and a signal number has no
        // memory effects in this process.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGINT);
        }
    }
}

#[test]
fn ctrl_c_writes_a_checkpoint_and_says_how_to_resume() {
    let env = Env::new();
    let data = write_series(&env);
    let args = plan(&data, 30, &["--record", "batch"]);
    let mut alone = args.clone();
    alone.extend(["--name".into(), "alone".into()]);
    let alone: Vec<&str> = alone.iter().map(String::as_str).collect();
    env.ok(&[&["-q"], alone.as_slice()].concat());

    let mut interrupted = args.clone();
    interrupted.extend(["--name".into(), "stopped".into()]);
    let child = spawn(&env, &interrupted);
    interrupt_after_first_checkpoint(&env, &child, 1);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("continue it with `statectl train --resume stopped`"),
        "{stderr}"
    );
    assert!(has_run(&env, "stopped") && !has_model(&env, "stopped"));
    let listed = env.ok(&["model", "list"]);
    assert!(
        listed.contains("training run 'stopped' (lstm:24): checkpoint at epoch"),
        "{listed}"
    );
    env.ok(&["verify"]);
    env.ok(&["-q", "train", "--resume", "stopped"]);
    assert_eq!(outcome(&env, "stopped"), outcome(&env, "alone"));

    // Two Ctrl-C: stopped at once, the latest checkpoint kept.
    interrupted.pop();
    interrupted.push("twice".into());
    let child = spawn(&env, &interrupted);
    interrupt_after_first_checkpoint(&env, &child, 2);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    env.ok(&["verify"]);
    env.ok(&["-q", "train", "--resume", "twice"]);
    assert_eq!(outcome(&env, "twice"), outcome(&env, "alone"));
}

#[test]
fn a_bad_resume_is_refused_and_changes_nothing() {
    let env = Env::new();
    let data = write_series(&env);
    env.ok(&["-q", "demo"]);
    env.fails(
        &["train", "--resume", "demo"],
        1,
        "model 'demo' has finished training; there is no run to continue",
    );
    env.fails(
        &["train", "--resume", "nope"],
        1,
        "no training run 'nope': this store has no unfinished runs",
    );
    env.fails(
        &["train", "--checkpoint-every", "0"],
        2,
        "a checkpoint every 0 batches would never train",
    );
    env.fails(
        &["train", "--resume", "x", "--seed", "3"],
        2,
        "'--resume <RUN>' cannot be used with '--seed <SEED>'",
    );

    // A run another process is training: refused by name.
    let mut long = plan(&data, 200, &[]);
    long.extend(["--name".into(), "busy".into()]);
    let mut child = spawn(&env, &long);
    interrupt_after_first_checkpoint(&env, &child, 0);
    let typo = env.run(&["train", "--resume", "bussy"]);
    assert!(
        typo.stderr
            .contains("no training run 'bussy' (did you mean 'busy'?); unfinished runs: 'busy'"),
        "{}",
        typo.stderr
    );
    let second = env.run(&["train", "--resume", "busy"]);
    assert_eq!(second.code, 1, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("training run 'busy' is being trained by another process"),
        "{}",
        second.stderr
    );
    let deleting = env.run(&["model", "delete", "busy"]);
    assert_eq!(deleting.code, 1, "{}", deleting.stderr);
    child.kill().unwrap();
    child.wait().unwrap();
    env.fails(
        &["train", "--name", "busy"],
        1,
        "a training run named 'busy' has not finished; continue it with `statectl train --resume busy`",
    );

    // A damaged checkpoint: named by resume and by verify.
    let file: Vec<u8> = env
        .db()
        .query_row(
            "SELECT file FROM checkpoints WHERE run = 'busy' ORDER BY batches_done DESC",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let file = hex::encode(&file);
    let path = env
        .store()
        .join("weights")
        .join(format!("{file}.safetensors"));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    env.fails(
        &["train", "--resume", "busy"],
        1,
        "the checkpoint of training run 'busy' at epoch",
    );
    let verify = env.run(&["verify"]);
    assert_ne!(verify.code, 0, "{}", verify.stdout);
    assert!(verify.stdout.contains(&file), "{}", verify.stdout);

    // Deleting the run takes its checkpoints; gc then frees their objects.
    env.ok(&["model", "delete", "busy"]);
    assert!(!has_run(&env, "busy"));
    let left: i64 = env
        .db()
        .query_row("SELECT count(*) FROM checkpoints", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
    env.ok(&["verify"]);
}

#[test]
fn checkpoints_are_kept_by_gc_pruned_to_the_newest_and_trained_on_old_stores() {
    // An old store (schema 1) upgrades, trains with checkpoints and
    // resumes.
    let env = env_with_fixture_store("schema1_store");
    let data = write_series(&env);
    let mut args = plan(&data, 40, &["--keep-checkpoints", "3"]);
    args.extend(["--name".into(), "late".into()]);
    let child = spawn(&env, &args);
    interrupt_after_first_checkpoint(&env, &child, 1);
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(130));
    let count = |sql: &str| -> i64 { env.db().query_row(sql, [], |r| r.get(0)).unwrap() };
    let checkpoints = count("SELECT count(*) FROM checkpoints");
    assert!(
        (1..=3).contains(&checkpoints),
        "{checkpoints} checkpoints kept"
    );
    // The pruned checkpoints' files went with them: verify finds no file
    // that nothing names, and every kept one is there.
    let report = env.json(&["verify"]);
    assert_eq!(
        report["report"]["leftovers"],
        serde_json::json!([]),
        "{report}"
    );
    let db = env.db();
    let mut stmt = db.prepare("SELECT hex(file) FROM checkpoints").unwrap();
    for file in stmt.query_map([], |r| r.get::<_, String>(0)).unwrap() {
        let name = format!("{}.safetensors", file.unwrap().to_lowercase());
        assert!(env.store().join("weights").join(name).is_file());
    }
    env.ok(&["gc", "--keep-events-since", "0s"]);
    assert_eq!(count("SELECT count(*) FROM checkpoints"), checkpoints);
    env.ok(&["verify"]);

    // The latest checkpoint damaged: resume names the one before it, and
    // continues from there when asked, to the same bits.
    let db = env.db();
    let mut stmt = db
        .prepare(
            "SELECT batches_done, lower(hex(file)) FROM checkpoints ORDER BY batches_done DESC",
        )
        .unwrap();
    let rows: Vec<(i64, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // The first checkpoint and the one Ctrl-C wrote, at least.
    assert!(rows.len() >= 2, "{rows:?}");
    {
        let path = env
            .store()
            .join("weights")
            .join(format!("{}.safetensors", rows[0].1));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[100] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        env.fails(
            &["train", "--resume", "late"],
            1,
            &format!(
                "to continue from the one before it, pass --from-checkpoint {}",
                rows[1].0
            ),
        );
        env.fails(
            &["train", "--resume", "late", "--from-checkpoint", "7"],
            1,
            "training run 'late' has no checkpoint after 7 batches; its checkpoints:",
        );
        let older = rows[1].0.to_string();
        env.ok(&[
            "-q",
            "train",
            "--resume",
            "late",
            "--from-checkpoint",
            &older,
        ]);
    }
    env.ok(&["verify"]);
    env.ok(&["audit", "--train", "late"]);
}

#[test]
fn fine_tuning_from_a_stored_model_records_its_lineage_audits_and_resumes() {
    let env = Env::new();
    let data = write_series(&env);
    let base = plan(&data, 2, &["--name", "base"]);
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    env.ok(&[&["-q"], base.as_slice()].concat());

    // The stored model's architecture, new data settings, a lower rate.
    let tuning = |name: &str, epochs: u32| -> Vec<String> {
        let mut args: Vec<String> = [
            "train",
            "--data",
            data.as_str(),
            "--seq-len",
            "16",
            "--stride",
            "4",
            "--batch-size",
            "4",
            "--drop-remainder",
            "--lr",
            "5e-4",
            "--from",
            "base",
            "--checkpoint-every",
            "5",
            "--name",
            name,
            "--epochs",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(epochs.to_string());
        args
    };
    let alone = tuning("tuned", 20);
    let alone: Vec<&str> = alone.iter().map(String::as_str).collect();
    env.ok(&[&["-q"], alone.as_slice()].concat());
    let shown = env.json(&["model", "show", "tuned"]);
    assert_eq!(shown["training"]["init"]["model"], "base", "{shown}");
    assert_eq!(shown["config"]["units"], serde_json::json!([24]));
    let text = env.ok(&["model", "show", "tuned"]);
    assert!(text.contains("of model 'base' (fine-tuned)"), "{text}");
    let audit = env.ok(&["audit", "--train", "tuned"]);
    assert!(audit.contains("training of 'tuned': reproduced"), "{audit}");

    // Stopped part way and resumed: the same bits as the run left alone.
    let child = spawn(&env, &tuning("stopped", 20));
    interrupt_after_first_checkpoint(&env, &child, 1);
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(130));
    env.ok(&["-q", "train", "--resume", "stopped"]);
    assert_eq!(
        outcome(&env, "stopped")["weights"],
        outcome(&env, "tuned")["weights"]
    );

    env.fails(
        &["train", "--from", "base", "--name", "x"],
        1,
        "--from base: model 'base' takes 1 input(s) and gives 1 output(s), but the data has 1 feature(s) and 27 output(s)",
    );
    env.fails(
        &[
            "train",
            "--from",
            "bsae",
            "--data",
            &data,
            "--seq-len",
            "16",
        ],
        1,
        "model 'bsae' not found",
    );
    env.fails(
        &["train", "--from", "base", "--units", "8"],
        2,
        "'--from <MODEL>' cannot be used with '--units <UNITS>'",
    );
}

#[test]
fn validation_and_early_stopping_are_recorded_plotted_audited_and_refused_when_they_cannot_work() {
    let env = Env::new();
    let data = write_series(&env);
    let args = plan(
        &data,
        40,
        &[
            "--validation-split",
            "0.25",
            "--patience",
            "1",
            "--lr",
            "0.05",
            "--name",
            "early",
        ],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = env.json(&args);
    let stopped = out["stopped_early"].as_u64().expect("the run stops early");
    assert!(stopped < 40, "{out}");
    let val = out["val_losses"].as_array().unwrap();
    assert_eq!(val.len() as u64, stopped);
    assert_eq!(out["losses"].as_array().unwrap().len() as u64, stopped);
    // Patience 1: the last epoch did not beat the best before it.
    let last = val.last().unwrap().as_f64().unwrap();
    let best_before = val[..val.len() - 1]
        .iter()
        .map(|v| v.as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert!(last >= best_before, "{out}");
    let shown = env.ok(&["model", "show", "early"]);
    assert!(
        shown.contains(&format!(
            "stopped  early, after epoch {stopped} of 40 (patience 1)"
        )),
        "{shown}"
    );
    assert!(shown.contains("val loss "), "{shown}");
    let audit = env.ok(&["audit", "--train", "early"]);
    assert!(audit.contains("training of 'early': reproduced"), "{audit}");
    let chart = env.path("loss.svg");
    env.ok(&["plot", "loss", "early", "-o", s(&chart)]);
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(
        svg.contains("early (validation)"),
        "no validation series in the chart"
    );

    // Bad settings: refused before anything is written.
    env.fails(
        &[
            "train",
            "--data",
            &data,
            "--seq-len",
            "16",
            "--validation-split",
            "1.5",
        ],
        1,
        "a validation split of 1.5 leaves",
    );
    env.fails(
        &[
            "train",
            "--data",
            &data,
            "--seq-len",
            "16",
            "--validation-split",
            "0.0001",
        ],
        1,
        "for training and 0 for validation",
    );
    env.fails(
        &["train", "--patience", "2"],
        2,
        "--validation-split <SHARE>",
    );
}

#[test]
fn keep_best_registers_the_best_epoch_which_audits_and_a_taken_name_is_refused() {
    let env = Env::new();
    let data = write_series(&env);
    let mut args = plan(
        &data,
        8,
        &["--validation-split", "0.3", "--lr", "0.05", "--keep-best"],
    );
    args.extend(["--name".into(), "wave".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let report = env.json(&args);
    let best = &report["best"];
    let val: Vec<f64> = report["val_losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    // The first epoch with the lowest validation loss, counted from 1.
    let lowest = val.iter().copied().fold(f64::INFINITY, f64::min);
    let epoch = val.iter().position(|v| *v == lowest).unwrap() + 1;
    assert_eq!(best["epoch"], epoch, "{report}");
    assert_eq!(best["model"], "wave.best");
    assert_eq!(best["tag"], "wave/best");
    assert_eq!(best["val_loss"].as_f64().unwrap(), lowest);
    // The best model is the run stopped after that epoch: its record says
    // so, `audit --train` reruns exactly that, and its stream and the tag
    // are the state that epoch left.
    let shown = env.json(&["model", "show", "wave.best"]);
    assert_eq!(shown["weights"], best["weights"]);
    assert_eq!(shown["training"]["train"]["epochs"], epoch);
    assert_eq!(
        shown["training"]["val_losses"].as_array().unwrap().len(),
        epoch
    );
    assert_eq!(env.json(&["show", "wave/best"])["state"], best["state"]);
    assert_eq!(
        env.json(&["show", "HEAD", "--model", "wave.best"])["state"],
        best["state"]
    );
    let audit = env.json(&["audit", "--train", "wave.best"]);
    assert_eq!(audit["training"][0]["status"], "reproduced", "{audit}");
    // A run trained for exactly that many epochs has those weights.
    let mut shorter = plan(
        &data,
        epoch as u32,
        &["--validation-split", "0.3", "--lr", "0.05"],
    );
    shorter.extend(["--name".into(), "shorter".into()]);
    let shorter: Vec<&str> = shorter.iter().map(String::as_str).collect();
    assert_eq!(env.json(&shorter)["weights"], best["weights"]);

    // Refused, changing nothing: the names it would take are taken, no
    // validation to choose by, and settings beside --resume.
    let named = |name: &str, extra: &[&str]| -> Vec<String> {
        let mut args = plan(&data, 2, extra);
        args.extend(["--name".into(), name.into()]);
        args
    };
    let refused = |args: Vec<String>, code: i32, fragment: &str| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        env.fails(&args, code, fragment);
    };
    let keeping = ["--validation-split", "0.3", "--keep-best"];
    refused(named("wave", &keeping), 1, "model 'wave' already exists");
    env.ok(&["model", "rename", "shorter", "fresh.best"]);
    refused(
        named("fresh", &keeping),
        1,
        "model 'fresh.best' already exists, and --keep-best would register",
    );
    env.ok(&["snapshot", "--model", "wave", "--tag", "other/best"]);
    refused(
        named("other", &keeping),
        1,
        "tag 'other/best' already exists, and --keep-best would set it",
    );
    refused(named("plain", &["--keep-best"]), 2, "--validation-split");
    env.fails(
        &["train", "--resume", "wave", "--keep-best"],
        2,
        "cannot be used with",
    );
}

#[test]
fn a_resume_may_change_the_epochs_and_the_rate_and_the_run_still_audits() {
    let env = Env::new();
    let data = write_series(&env);
    env.ok(&["init"]);
    // Stopped after its first checkpoint, resumed with more epochs and a
    // new rate from there.
    let mut args = plan(&data, 3, &["--record", "batch"]);
    args.extend(["--name".into(), "changed".into()]);
    let child = spawn(&env, &args);
    interrupt_after_first_checkpoint(&env, &child, 1);
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(130));
    let stopped_at: i64 = env
        .db()
        .query_row("SELECT max(batches_done) FROM checkpoints", [], |r| {
            r.get(0)
        })
        .unwrap();
    let out = env.run(&[
        "train", "--resume", "changed", "--epochs", "5", "--lr", "0.0005",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let said = format!(
        "changed training run 'changed': epochs 3 -> 5; learning rate 0.001 -> 0.0005 from batch {}",
        stopped_at + 1
    );
    assert!(out.stderr.contains(&said), "{}", out.stderr);
    // The record keeps the plan and the change; the run reproduces as that.
    let train = &env.json(&["model", "show", "changed"])["training"]["train"];
    assert_eq!(train["epochs"], 5);
    assert_eq!(train["lr"].as_f64().unwrap() as f32, 1e-3);
    assert_eq!(
        train["lr_changes"],
        serde_json::json!([{"at_batch": stopped_at, "lr": 0.0005}])
    );
    let audit = env.json(&["audit", "--train", "changed"]);
    assert_eq!(audit["training"][0]["status"], "reproduced", "{audit}");
    // More epochs alone change no batch: the same bits as 5 epochs planned.
    let mut five = plan(&data, 5, &["--record", "batch"]);
    five.extend(["--name".into(), "five".into()]);
    let five: Vec<&str> = five.iter().map(String::as_str).collect();
    env.ok(&five);
    let mut longer = plan(&data, 3, &["--record", "batch"]);
    longer.extend(["--name".into(), "longer".into()]);
    let child = spawn(&env, &longer);
    interrupt_after_first_checkpoint(&env, &child, 1);
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(130));
    env.ok(&["-q", "train", "--resume", "longer", "--epochs", "5"]);
    assert_eq!(outcome(&env, "longer"), outcome(&env, "five"));
    assert_ne!(
        outcome(&env, "changed")["weights"],
        outcome(&env, "five")["weights"]
    );

    // Refused, changing nothing: fewer epochs than trained, a bad rate,
    // settings that would change trained batches. Stopped after its first
    // epoch's checkpoint, so more than an epoch is trained.
    let mut again = plan(&data, 6, &["--name", "again"]);
    let every = again
        .iter()
        .position(|a| a == "--checkpoint-every")
        .unwrap();
    again[every + 1] = "epoch".into();
    let child = spawn(&env, &again);
    interrupt_after_first_checkpoint(&env, &child, 1);
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(130));
    // Where the interrupt lands depends on the machine's load: the run may
    // be two epochs or more along, and the refusal names what it needs.
    let refused = env.fails(
        &["train", "--resume", "again", "--epochs", "1"],
        1,
        "more than 1 epoch(s) hold; give --epochs ",
    );
    let needed: u32 = refused
        .split("give --epochs ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no epoch count in: {refused}"));
    assert!(needed >= 2, "{refused}");
    env.fails(
        &["train", "--resume", "again", "--lr", "0"],
        1,
        "--lr 0 must be a positive number",
    );
    env.fails(
        &["train", "--resume", "again", "--batch-size", "4"],
        2,
        "cannot be used with",
    );
}

#[test]
fn validation_data_from_a_file_is_the_split_of_the_same_samples() {
    use statectl::tensors::Tensor;
    let env = Env::new();
    let (n, steps) = (400, 8);
    let x: Vec<f32> = (0..n * steps).map(|i| (i as f32 * 0.1).sin()).collect();
    let y: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).cos()).collect();
    let slice = |from: usize, to: usize| {
        vec![
            (
                "x",
                Tensor::new(
                    vec![to - from, steps, 1],
                    x[from * steps..to * steps].to_vec(),
                ),
            ),
            ("y", Tensor::new(vec![to - from, 1], y[from..to].to_vec())),
        ]
    };
    let all = env.write_tensors("all.safetensors", &slice(0, n));
    let train = env.write_tensors("train.safetensors", &slice(0, 320));
    let held_out = env.write_tensors("val.safetensors", &slice(320, n));
    let common = [
        "train",
        "--units",
        "12",
        "--batch-size",
        "8",
        "--epochs",
        "4",
        "--lr",
        "0.01",
    ];
    let split = env.json(
        &[
            &common[..],
            &[
                "--data",
                s(&all),
                "--validation-split",
                "0.2",
                "--patience",
                "2",
                "--name",
                "split",
            ],
        ]
        .concat(),
    );
    let file = env.json(
        &[
            &common[..],
            &[
                "--data",
                s(&train),
                "--validation-data",
                s(&held_out),
                "--patience",
                "2",
                "--keep-best",
                "--name",
                "file",
            ],
        ]
        .concat(),
    );
    assert_eq!(file["weights"], split["weights"]);
    assert_eq!(file["val_losses"], split["val_losses"]);
    assert_eq!(file["final_state"], split["final_state"]);
    let record = &env.json(&["model", "show", "file"])["training"];
    assert_eq!(record["train"]["validation_samples"], 80);
    assert_eq!(record["samples"], n);
    let audit = env.json(&["audit", "--train", "file"]);
    assert_eq!(audit["training"][0]["status"], "reproduced", "{audit}");

    // Refused, changing nothing: another shape, with a split, or empty.
    let wide = env.write_tensors(
        "wide.safetensors",
        &[
            (
                "x",
                Tensor::new(vec![4, steps, 2], vec![0.5; 4 * steps * 2]),
            ),
            ("y", Tensor::new(vec![4, 1], vec![0.5; 4])),
        ],
    );
    env.fails(
        &[
            &common[..],
            &[
                "--data",
                s(&train),
                "--validation-data",
                s(&wide),
                "--name",
                "w",
            ],
        ]
        .concat(),
        1,
        "does not fit the training data: its samples are [8, 2]",
    );
    env.fails(
        &[
            &common[..],
            &[
                "--data",
                s(&train),
                "--validation-data",
                s(&held_out),
                "--validation-split",
                "0.2",
            ],
        ]
        .concat(),
        2,
        "cannot be used with",
    );
    env.fails(
        &[&common[..], &["--data", s(&train), "--patience", "2"]].concat(),
        2,
        "--validation",
    );
}
