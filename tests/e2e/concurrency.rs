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

    // Own streams far apart in spelling: a name one typo from an existing
    // stream is refused ("did you mean"), whichever writer starts first.
    let writers: Vec<_> = ["shared", "shared", "left", "right"]
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

/// A store opened twice, as two writers hold it.
enum Opened {
    Local(Box<statectl::store::Store>),
    Shared(Box<statectl::shared::SharedStore>),
}

impl Opened {
    fn open(place: &std::path::Path) -> Opened {
        match place
            .to_str()
            .filter(|p| statectl::shared::is_shared_url(p))
        {
            Some(url) => {
                Opened::Shared(Box::new(statectl::shared::SharedStore::open(url).unwrap()))
            }
            None => Opened::Local(Box::new(statectl::store::Store::open(place).unwrap())),
        }
    }

    fn backend(&mut self) -> statectl::ops::backend::Backend<'_> {
        use statectl::ops::backend::Backend;
        match self {
            Opened::Local(store) => Backend::Embedded(store),
            Opened::Shared(shared) => Backend::Shared(shared),
        }
    }
}

/// A prediction computed from a state another writer replaced before the
/// commit records nothing and names both states; with `retry` it
/// recomputes from the new state. Driven through the library, so the
/// other writer lands exactly between compute and commit; on a local
/// store, then on a shared store (the stream moved by compare-and-set on
/// the server).
#[test]
fn a_stream_moved_under_a_prediction_is_refused_or_retried_on_both_backends() {
    let env = Env::new();
    env.import_reference("torch", "ref");
    for place in crate::shared_learners::backends(&env, "moved") {
        moved_under_a_prediction(&env, &place);
    }
}

fn moved_under_a_prediction(env: &Env, place: &std::path::Path) {
    use statectl::ops::{self, predict::PredictRequest, streams::StreamMoved};

    let (mut mine, mut theirs) = (Opened::open(place), Opened::open(place));
    let model = mine.backend().model(Some("ref")).unwrap();
    let x = fixture_file("x_test.safetensors").tensors["x"].clone();
    let mut request = PredictRequest {
        model: &model,
        stream: "main",
        x: &x,
        from: None,
        advance: true,
        tag: None,
        retry: false,
        kernel: Default::default(),
        new_stream: false,
    };
    let json = |args: &[&str]| {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        crate::shared_store::json_of(&env.run_in(place, &all))
    };
    let journal_length = || json(&["log", "--all"])["events"].as_array().unwrap().len();
    let events_before = journal_length();
    let head_before = json(&["show", "HEAD", "--model", "ref"])["state"].clone();
    // The other writer moves the stream (to zeros of another batch size)
    // while this prediction is between compute and commit.
    let mut moved = false;
    let err = ops::predict::run_on(
        &mut mine.backend(),
        &request,
        &mut |_: &statectl::model::Prediction| {
            if !moved {
                ops::restore::reset_on(&mut theirs.backend(), &model, "main", Some(5)).unwrap();
                moved = true;
            }
            Ok(())
        },
    )
    .unwrap_err();
    let moved_err = err
        .downcast_ref::<StreamMoved>()
        .expect("a StreamMoved error");
    assert_eq!(moved_err.stream, "main");
    let message = err.to_string();
    assert!(
        message.contains("moved from") && message.contains("nothing was recorded"),
        "{message}"
    );
    // Nothing of the refused prediction landed: only the other writer's event.
    assert_eq!(journal_length(), events_before + 1, "{}", s(place));
    let head = json(&["show", "HEAD", "--model", "ref"]);
    assert_ne!(head["state"], head_before);
    assert_eq!(head["batch"], 5);
    // With retry it recomputes from the moved state and lands: here the
    // other writer's own prediction moves the stream first.
    ops::restore::reset_on(&mut mine.backend(), &model, "main", Some(6)).unwrap();
    request.retry = true;
    let other_request = PredictRequest {
        retry: false,
        tag: None,
        ..request
    };
    let mut rounds = 0;
    let report = ops::predict::run_on(
        &mut mine.backend(),
        &request,
        &mut |_: &statectl::model::Prediction| {
            rounds += 1;
            if rounds == 1 {
                ops::predict::run_on(
                    &mut theirs.backend(),
                    &other_request,
                    &mut |_: &statectl::model::Prediction| Ok(()),
                )
                .unwrap();
            }
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(rounds, 2, "the retry recomputed once");
    let audit = json(&["audit", "--event", &report.event.to_string()]);
    assert_eq!(audit["reproduced"], 1, "{audit}");
    // The stream's chain is unbroken: each move starts where the one
    // before it ended.
    let moves = json(&["log", "--model", "ref"])["events"].clone();
    let moves = moves.as_array().unwrap();
    for pair in moves.windows(2) {
        assert_eq!(
            pair[0]["state_before"],
            pair[1]["state_after"],
            "{}",
            s(place)
        );
    }
}
