//! Heavy concurrent use: 4 writers (two on one stream, two on their own
//! streams) making long predictions, 4 readers, and a gc loop, all at once
//! on one store. Nothing surfaces "database is locked", no event is lost,
//! every successful command is in the journal, and the store verifies.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::util::*;

fn statectl(env: &Env, args: &[&str]) -> std::process::Output {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("statectl"))
        .args(["--store", s(&env.store())])
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap()
}

#[test]
fn four_writers_four_readers_and_gc_lose_nothing_and_never_report_locked() {
    let env = Arc::new(Env::new());
    env.import_reference("torch", "ref");
    // Long predictions: 6 rows of 3000 steps each.
    let row = (0..3000)
        .map(|i| format!("{:.3}", (i % 27) as f32 / 27.0))
        .collect::<Vec<_>>()
        .join(",");
    std::fs::write(env.path("long.csv"), format!("{row}\n").repeat(6)).unwrap();
    let rounds = 12;
    let stop = Arc::new(AtomicBool::new(false));

    let writers: Vec<_> = ["shared", "shared", "own-a", "own-b"]
        .into_iter()
        .map(|stream| {
            let env = Arc::clone(&env);
            std::thread::spawn(move || {
                let mut events = Vec::new();
                let mut failures = Vec::new();
                for _ in 0..rounds {
                    let input = env.path("long.csv");
                    let out = statectl(
                        &env,
                        &[
                            "--json",
                            "predict",
                            "--input",
                            s(&input),
                            "--stream",
                            stream,
                            "--retry",
                        ],
                    );
                    if out.status.success() {
                        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                        events.push(json["event"].as_i64().unwrap());
                    } else {
                        failures.push(String::from_utf8_lossy(&out.stderr).into_owned());
                    }
                }
                (events, failures)
            })
        })
        .collect();
    let readers: Vec<_> = [
        vec!["log", "--all"],
        vec!["verify"],
        vec!["audit", "--allow-empty"],
        vec!["show", "HEAD", "--model", "ref"],
    ]
    .into_iter()
    .chain(std::iter::once(vec!["gc"]))
    .map(|args| {
        let env = Arc::clone(&env);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut runs = 0;
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let out = statectl(&env, &args);
                runs += 1;
                if !out.status.success() {
                    failures.push(format!(
                        "{args:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
            (runs, failures)
        })
    })
    .collect();

    let mut recorded = BTreeSet::new();
    let mut failures = Vec::new();
    for w in writers {
        let (events, f) = w.join().unwrap();
        recorded.extend(events);
        failures.extend(f);
    }
    stop.store(true, Ordering::Relaxed);
    let mut reads = 0;
    for r in readers {
        let (runs, f) = r.join().unwrap();
        reads += runs;
        failures.extend(f);
    }
    assert!(
        failures.is_empty(),
        "{} failed: {failures:#?}",
        failures.len()
    );
    assert!(
        !failures.iter().any(|f| f.contains("locked")),
        "a command surfaced a lock"
    );
    assert_eq!(
        recorded.len(),
        4 * rounds,
        "every prediction has its own event"
    );
    let journal: BTreeSet<i64> = env.json(&["log", "--all", "--kind", "predict"])["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_i64().unwrap())
        .collect();
    assert_eq!(
        journal, recorded,
        "the journal holds exactly the successful predictions"
    );
    env.ok(&["verify"]);
    let audit = env.json(&["audit"]);
    assert_eq!(audit["reproduced"], 4 * rounds as i64, "{audit}");
    // The shared stream advanced through every one of its predictions.
    let shared = env.json(&[
        "log", "--model", "ref", "--stream", "shared", "--kind", "predict",
    ]);
    let chain: Vec<(String, String)> = shared["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| {
            (
                e["state_before"].as_str().unwrap().to_string(),
                e["state_after"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(chain.len(), 2 * rounds);
    for pair in chain.windows(2) {
        assert_eq!(
            pair[0].1, pair[1].0,
            "a prediction on the shared stream started from a stale state"
        );
    }
    println!(
        "concurrency: {} predictions by 4 writers, {reads} reads and gc runs alongside, 0 lost, 0 locked",
        recorded.len()
    );
}
