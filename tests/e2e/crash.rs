//! The crash harness: SIGKILL at random moments during the commands that
//! write (predict, bulk import, training that records every batch, model
//! import, restore, gc, gc compacting packs, the demo). After every kill the store verifies and
//! is wholly before or wholly after the command, or holds an unfinished
//! training run that `train --resume` finishes; at the end gc leaves no
//! temp or unreferenced file. 60 kills by default (CI); set
//! `STATECTL_CRASH_KILLS` for a longer run. Prints the number of kills and
//! of problems.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use statectl::tensors::Tensor;

use crate::util::*;

/// One kind of write, and how many journal events it adds when it runs to
/// the end (`None`: varies, e.g. gc).
struct Op {
    name: &'static str,
    args: Vec<String>,
    events: Option<i64>,
}

fn event_count(env: &Env) -> i64 {
    env.db()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap()
}

fn ops(env: &Env, i: usize) -> Vec<Op> {
    let x = env.path("x6.csv");
    let bulk = env.path("bulk.safetensors");
    let weights = fixture("weights.torch_layout.safetensors");
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        Op {
            name: "predict",
            args: strings(&["predict", "--input", s(&x), "--tag", &format!("k{i}")]),
            events: Some(2),
        },
        Op {
            name: "bulk import",
            args: strings(&[
                "import",
                s(&bulk),
                "--per-slot",
                "--tag-prefix",
                &format!("b{i}/"),
            ]),
            // One journal entry for the whole import (schema 4).
            events: Some(1),
        },
        Op {
            name: "bulk import of packed slots",
            args: strings(&[
                "import",
                s(&env.path("bulk_large.safetensors")),
                "--per-slot",
                "--tag-prefix",
                &format!("p{i}/"),
            ]),
            events: Some(1),
        },
        Op {
            name: "train --record batch",
            args: strings(&[
                "train",
                "--record",
                "batch",
                "--epochs",
                "3",
                "--name",
                &format!("t{i}"),
            ]),
            // reset + 4 batches x 3 epochs + the final move + a checkpoint
            // at the end of epochs 1 and 2.
            events: Some(1 + 12 + 1 + 2),
        },
        Op {
            name: "model import",
            args: strings(&[
                "model",
                "import",
                s(&weights),
                "--layout",
                "torch",
                "--head",
                "softmax",
                "--batch-size",
                "6",
                "--name",
                &format!("m{i}"),
            ]),
            // The stream's start at zeros, and the import with its origin.
            events: Some(2),
        },
        Op {
            name: "restore",
            args: strings(&["restore", "case1/end", "--slot", "0", "--model", "demo"]),
            events: Some(1),
        },
        Op {
            name: "gc",
            args: strings(&["gc", "--keep-events-since", "1d"]),
            events: None,
        },
        Op {
            name: "bulk import of untagged packed slots",
            args: strings(&[
                "import",
                s(&env.path("bulk_large.safetensors")),
                "--per-slot",
            ]),
            events: Some(1),
        },
        Op {
            // Drops the journal, so the untagged packed slots die and gc
            // compacts their packs: kills land in the copy, the commit,
            // and between the commit and the old packs' deletion.
            name: "gc that compacts packs",
            args: strings(&["gc", "--keep-events-since", "0s"]),
            events: None,
        },
        Op {
            name: "demo",
            args: strings(&["demo", "--force"]),
            events: None,
        },
    ]
}

#[test]
fn sigkill_at_random_moments_never_breaks_the_store() {
    let kills: usize = std::env::var("STATECTL_CRASH_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(60);
    let env = Env::new();
    env.ok(&["-q", "demo"]);
    std::fs::write(env.path("x6.csv"), "0,0.1,0.2\n".repeat(6)).unwrap();
    let n = 3000;
    env.write_tensors(
        "bulk.safetensors",
        &[
            (
                "l0.h",
                Tensor::new(vec![n, 64], (0..n * 64).map(|v| v as f32 * 1e-4).collect()),
            ),
            ("l0.c", Tensor::new(vec![n, 64], vec![0.5; n * 64])),
        ],
    );
    // Slots of 2 KiB: their bytes go to a pack beside the database. The
    // values change with every run so each import appends new bytes.
    let large = |i: usize| {
        let m = 400;
        env.write_tensors(
            "bulk_large.safetensors",
            &[
                (
                    "l0.h",
                    Tensor::new(
                        vec![m, 256],
                        (0..m * 256).map(|v| (v + i) as f32 * 1e-3).collect(),
                    ),
                ),
                ("l0.c", Tensor::new(vec![m, 256], vec![i as f32; m * 256])),
            ],
        );
    };
    large(usize::MAX / 2);
    // How long each op takes when left alone: kills land within that.
    let mut durations = Vec::new();
    for op in ops(&env, 100_000) {
        let started = Instant::now();
        let before = event_count(&env);
        let args: Vec<&str> = op.args.iter().map(|s| s.as_str()).collect();
        env.ok(&[&["-q"], args.as_slice()].concat());
        if let Some(expected) = op.events {
            assert_eq!(event_count(&env) - before, expected, "{}", op.name);
        }
        durations.push(started.elapsed());
    }

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut problems = Vec::new();
    let (mut before_count, mut after_count, mut resumed_count) = (0, 0, 0);
    for i in 0..kills {
        let all = ops(&env, i);
        let k = i % all.len();
        large(i);
        let op = &all[k];
        let events_before = event_count(&env);
        let fingerprint_before = env.db_fingerprint();
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("statectl"))
            .args(["--store", s(&env.store()), "-q"])
            .args(&op.args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let budget = durations[k].as_micros() as u64;
        std::thread::sleep(Duration::from_micros(rng.random_range(0..budget.max(1))));
        let _ = child.kill();
        let status = child.wait().unwrap();

        let verify = env.run(&["--json", "verify"]);
        if verify.code != 0 {
            problems.push(format!(
                "kill {i} during {}: verify exited {}: {}",
                op.name, verify.code, verify.stdout
            ));
            break;
        }
        // A killed training run is left unfinished: it resumes to the end.
        if env.json(&["model", "list"])["runs"] != serde_json::json!([]) {
            let name = op.args.last().unwrap();
            env.ok(&["-q", "train", "--resume", name]);
            resumed_count += 1;
            continue;
        }
        let delta = event_count(&env) - events_before;
        let untouched = env.db_fingerprint() == fingerprint_before;
        match op.events {
            _ if untouched => before_count += 1,
            Some(expected) if delta == expected => after_count += 1,
            Some(expected) => problems.push(format!(
                "kill {i} during {} (exit {status:?}): {delta} of {expected} events landed",
                op.name
            )),
            None => after_count += 1,
        }
    }
    // Leftovers of the kills: listed by verify, removed by the next gc.
    let dead_after_kills = env.json(&["verify"])["report"]["pack_dead_bytes"].clone();
    env.ok(&["-q", "gc"]);
    // Something recorded for the audit below, whatever the last gc dropped.
    env.ok(&["-q", "predict", "--input", s(&env.path("x6.csv"))]);
    let report = env.json(&["verify"]);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        report["report"]["leftovers"],
        serde_json::json!([]),
        "{report}"
    );
    let stray: Vec<String> = std::fs::read_dir(env.store().join("weights"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".safetensors") || n.starts_with('.'))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    env.ok(&["audit"]);
    println!(
        "crash harness: {kills} kills ({before_count} left the store as it was, {after_count} wholly updated, {resumed_count} left a training run that resumed to its end), {} problems; dead pack bytes {dead_after_kills} after the kills, {} after gc",
        problems.len(),
        report["report"]["pack_dead_bytes"]
    );
    assert!(problems.is_empty(), "{problems:#?}");
}
