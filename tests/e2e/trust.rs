//! Trust: no command loses data, fails half-way, or says "ok" when it
//! should not. One test per finding of the trust review (numbered as there),
//! each through the real binary on a real store.

use std::path::Path;

use statectl::tensors::Tensor;

use crate::util::*;

fn demo_env() -> Env {
    let env = Env::new();
    env.ok(&["-q", "demo"]);
    env
}

/// Every file in a folder with its sha256, for "left byte-identical".
fn folder_hashes(dir: &Path) -> Vec<(String, String)> {
    use sha2::{Digest, Sha256};
    let mut out = Vec::new();
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap();
        out.push((
            entry.display().to_string(),
            format!("{:x}", Sha256::digest(&bytes)),
        ));
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn x2(env: &Env) -> std::path::PathBuf {
    let path = env.path("x2.csv");
    std::fs::write(&path, "0,0.1,0.2\n0.3,0.2,0.1\n").unwrap();
    path
}

// 1. A failed `model import` never removes a file a concurrent import needs.
#[test]
fn concurrent_imports_of_the_same_weights_where_some_fail_lose_no_file() {
    let env = Env::new();
    env.ok(&["init"]);
    env.import_reference("keras", "taken");
    let file = fixture("weights.keras_layout.safetensors");
    let children: Vec<_> = (0..12)
        .map(|i| {
            // Even ones fail (the name exists), odd ones succeed.
            let name = if i % 2 == 0 {
                "taken".to_string()
            } else {
                format!("m{i}")
            };
            std::process::Command::new(assert_cmd::cargo::cargo_bin("statectl"))
                .args(["--store", s(&env.store()), "-q", "model", "import"])
                .arg(&file)
                .args(["--layout", "keras", "--head", "softmax", "--name", &name])
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<i32> = children
        .into_iter()
        .map(|mut c| c.wait().unwrap().code().unwrap())
        .collect();
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 6, "{codes:?}");
    env.ok(&["verify"]);
    let models = env.json(&["model", "list"])["models"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(models, 7);
}

// 2. gc refuses to collect on a store that does not verify.
#[test]
fn gc_refuses_a_damaged_store_and_deletes_nothing() {
    let env = demo_env();
    let case1 = env.json(&["show", "case1/end"]);
    let slot = case1["slots"][0].as_str().unwrap().to_string();
    env.flip_blob("slots", "bytes", &slot, 5, 0x01);
    env.fails(&["gc"], 1, "gc refuses to run: the store has");
    env.fails(&["gc", "--dry-run"], 1, "statectl verify");
}

// 3. A prediction whose -o file cannot be written records nothing; a
//    prediction whose stdout fails is recorded and says so.
#[test]
fn predict_with_an_unwritable_output_records_nothing() {
    let env = Env::new();
    env.import_reference("keras", "ref");
    let x = x2(&env);
    env.ok(&["reset", "--batch-size", "2"]);
    env.fails(
        &[
            "predict",
            "--input",
            s(&x),
            "-o",
            "/proc/self/out.safetensors",
        ],
        1,
        "cannot write '/proc/self/out.safetensors'",
    );
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("statectl"))
        .args([
            "--store",
            s(&env.store()),
            "--json",
            "predict",
            "--input",
            s(&x),
        ])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("its changes are recorded"), "{stderr}");
    let log = env.json(&["log", "--kind", "predict"]);
    assert_eq!(log["events"].as_array().unwrap().len(), 1);
}

// 4. Reading `zeros` stores nothing. (That the demo and every other write
//    is one transaction is shown by the crash harness: killed at any
//    moment, the store is wholly before or wholly after.)
#[test]
fn reading_zeros_writes_nothing_and_the_demo_commits_once() {
    let env = demo_env();
    let before = env.fingerprint();
    env.ok(&["diff", "case1/end", "zeros"]);
    env.ok(&["show", "zeros"]);
    env.ok(&["export", "zeros", "-o", s(&env.path("z.safetensors"))]);
    assert_eq!(env.fingerprint(), before);
}

// 5. Many first commands on a fresh store: exactly one migrates. The race
//    (which process switches the fresh file to WAL, which migrates) lost
//    about one round in fifteen before the switch was retried, so the test
//    runs several rounds.
#[test]
fn ninety_parallel_first_commands_on_a_fresh_store_all_succeed() {
    for _round in 0..8 {
        ninety_first_commands_on_one_fresh_store();
    }
}

fn ninety_first_commands_on_one_fresh_store() {
    let env = Env::new();
    let state = env.reference_state_file("case1");
    let children: Vec<_> = (0..90)
        .map(|i| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("statectl"))
                .args(["--store", s(&env.store()), "-q"])
                .args(if i % 2 == 0 {
                    vec!["init".to_string()]
                } else {
                    vec![
                        "import".into(),
                        s(&state).into(),
                        "--tag".into(),
                        "first".into(),
                    ]
                })
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut failures = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        if !out.status.success() {
            failures.push(String::from_utf8_lossy(&out.stderr).into_owned());
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        failures.first()
    );
    env.ok(&["verify"]);
}

// 6. Leftovers of killed commands are listed by verify and removed by gc.
#[test]
fn temp_files_and_orphaned_weights_are_listed_by_verify_and_removed_by_gc() {
    let env = demo_env();
    let weights = env.store().join("weights");
    let orphan_bytes = std::fs::read(fixture("weights.torch_layout.safetensors")).unwrap();
    let orphan_id = {
        use sha2::{Digest, Sha256};
        format!("{:x}", Sha256::digest(&orphan_bytes))
    };
    std::fs::write(
        weights.join(format!("{orphan_id}.safetensors")),
        &orphan_bytes,
    )
    .unwrap();
    std::fs::write(
        weights.join(format!(".{orphan_id}.4242.tmp")),
        b"half a file",
    )
    .unwrap();
    let report = env.json(&["verify"]);
    assert_eq!(report["ok"], true);
    let leftovers = report["report"]["leftovers"].as_array().unwrap();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    let gc = env.json(&["gc"]);
    assert_eq!(gc["weights_files"].as_array().unwrap().len(), 1);
    assert_eq!(gc["leftovers"].as_array().unwrap().len(), 1);
    let names: Vec<String> = std::fs::read_dir(&weights)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(
        env.json(&["verify"])["report"]["leftovers"],
        serde_json::json!([])
    );
    env.ok(&["audit", "--train", "demo"]);
}

// 7. Model ids are never reused: the demo twice still audits its training,
//    and HEAD~N stays within one model's history.
#[test]
fn the_demo_twice_then_audit_train_reproduces() {
    let env = demo_env();
    env.ok(&["-q", "demo", "--force"]);
    let report = env.json(&["audit", "--train", "demo"]);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["training"][0]["states_differing"], 0);
    assert_eq!(report["training"][0]["states_checked"], 3);
    // The second demo's stream moved 10 times; HEAD~10 would be the
    // first demo's history if the model id had been reused.
    env.ok(&["show", "HEAD~9", "--model", "demo"]);
    env.fails(
        &["show", "HEAD~10", "--model", "demo"],
        1,
        "goes past the start",
    );
}

/// A fresh env whose store is a copy of the fixture store `name`.
pub(crate) fn env_with_fixture_store(name: &str) -> Env {
    let env = Env::new();
    let source = fixture(name);
    std::fs::create_dir_all(env.store().join("weights")).unwrap();
    for entry in walk(&source) {
        let to = env.store().join(entry.strip_prefix(&source).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&entry, to).unwrap();
    }
    env
}

#[test]
fn a_schema_6_store_of_packed_states_upgrades_and_reads_bit_for_bit_without_hints() {
    // Schema 7 lets a one-slot state remember where its packed slot is;
    // states written before have no such hint and must read as before.
    let env = env_with_fixture_store("schema6_packed_store");
    let source = fixture_file("schema6_packed_store.safetensors");
    let units = 128;
    for row in 0..6 {
        let out = env.path("out.safetensors");
        env.ok(&["export", &format!("buf/{row}"), "-o", s(&out)]);
        let exported =
            statectl::tensors::TensorFile::decode(&std::fs::read(&out).unwrap()).unwrap();
        for name in ["l0.h", "l0.c"] {
            let want = &source.tensors[name].data[row * units..(row + 1) * units];
            let got = &exported.tensors[name].data;
            assert!(
                want.iter()
                    .zip(got)
                    .all(|(a, b)| a.to_bits() == b.to_bits())
                    && got.len() == units,
                "buf/{row} {name}"
            );
        }
    }
    let db = env.db();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, statectl::store::SCHEMA_VERSION);
    let hinted: i64 = db
        .query_row("SELECT count(slot_pack) FROM states", [], |r| r.get(0))
        .unwrap();
    assert_eq!(hinted, 0, "old rows are not rewritten");
    drop(db);
    assert_eq!(env.json(&["verify"])["ok"], true);
    // New bulk writes into the upgraded store remember their places.
    let fresh = env.write_tensors(
        "fresh.safetensors",
        &[
            ("l0.h", Tensor::new(vec![2, units], vec![0.5; 2 * units])),
            (
                "l0.c",
                Tensor::new(vec![2, units], (0..2 * units).map(|i| i as f32).collect()),
            ),
        ],
    );
    env.ok(&["import", s(&fresh), "--per-slot", "--tag-prefix", "fresh/"]);
    let hinted: i64 = env
        .db()
        .query_row("SELECT count(slot_pack) FROM states", [], |r| r.get(0))
        .unwrap();
    assert_eq!(hinted, 2);
    assert_eq!(env.json(&["verify"])["ok"], true);
}

#[test]
fn a_schema_1_store_upgrades_in_place_and_still_audits_bit_for_bit() {
    let env = env_with_fixture_store("schema1_store");
    let report = env.json(&["audit"]);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["reproduced"], 12);
    let version: i64 = env
        .db()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, statectl::store::SCHEMA_VERSION);
    // Schema 5: the slots moved to a rowid table, every one of them.
    let slots_sql: String = env
        .db()
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'slots'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!slots_sql.contains("WITHOUT ROWID"), "{slots_sql}");
    let distinct_slot_ids: i64 = env
        .db()
        .query_row("SELECT count(DISTINCT id) FROM slots", [], |r| r.get(0))
        .unwrap();
    assert!(distinct_slot_ids > 0);
    let train = env.json(&["audit", "--train", "demo"]);
    assert_eq!(train["ok"], true, "{train}");
    env.ok(&["verify"]);
    // New models get ids above every id the old journal names.
    env.import_reference("keras", "after-upgrade");
    let ids: Vec<i64> = env
        .db()
        .prepare("SELECT id FROM models ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(ids, vec![1, 2]);
    env.ok(&["predict", "--input", s(&x2(&env)), "--model", "demo"]);
    assert_eq!(env.json(&["audit"])["reproduced"], 13);
}

#[test]
fn a_store_trained_by_an_earlier_fused_1_build_still_audits_bit_for_bit() {
    // fused-1's arithmetic may be reorganised (threads, layouts) but never
    // its chains: trainings recorded by an earlier build must replay to the
    // same weights, bit for bit. The models cover a stacked LSTM, a GRU
    // with per-step outputs, and an LSTM wide enough for parameters and
    // backward rows to be split across threads.
    let env = env_with_fixture_store("fused1_store");
    for model in ["lstm2", "gru-seq", "lstm96"] {
        let report = env.json(&["audit", "--train", model]);
        assert_eq!(report["ok"], true, "{model}: {report}");
        let training = &report["training"][0];
        assert_eq!(training["status"], "reproduced", "{model}: {report}");
        assert_eq!(training["weights_replayed"], training["weights_recorded"]);
        let recorded: String = env
            .db()
            .query_row(
                "SELECT json_extract(training, '$.train.kernel') FROM models WHERE name = ?1",
                [model],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(recorded, "fused-1");
    }
    let report = env.json(&["audit"]);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["reproduced"], 1);
}

// 8. Read-only commands on a missing store create nothing; an audit that
//    matches nothing is not "ok".
#[test]
fn reading_a_folder_without_a_store_is_refused_and_creates_nothing() {
    let env = Env::new();
    for args in [
        vec!["audit"],
        vec!["verify"],
        vec!["log"],
        vec!["tag", "list"],
        vec!["gc"],
    ] {
        let run = env.run(&args);
        assert_eq!(run.code, 1, "{args:?}");
        assert!(
            run.stderr.contains("no statectl store at"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("statectl init"), "{}", run.stderr);
        assert!(!env.store().exists(), "{args:?} created the store");
    }
    env.ok(&["init"]);
    env.fails(&["audit"], 1, "pass --allow-empty");
    env.ok(&["audit", "--allow-empty"]);
    let env = demo_env();
    env.fails(
        &["audit", "--stream", "nope"],
        1,
        "no recorded prediction matches",
    );
}

// 9. HEAD~N beyond what SQLite can count is an error, not HEAD.
#[test]
fn an_enormous_head_offset_is_refused() {
    let env = demo_env();
    env.fails(
        &["restore", "HEAD~9223372036854775808"],
        1,
        "N is too large",
    );
    env.fails(
        &["restore", "HEAD~9223372036854775807"],
        1,
        "goes past the start",
    );
}

// 10. Tolerances are finite and not negative.
#[test]
fn nan_negative_and_infinite_tolerances_are_refused() {
    let env = demo_env();
    for t in ["NaN", "-1", "inf", "abc"] {
        let flag = format!("--tolerance={t}");
        env.fails(
            &["diff", "case1/end", "case2/end", &flag, "--exit-code"],
            2,
            "tolerance",
        );
        env.fails(&["audit", &flag], 2, "tolerance");
    }
    let run = env.run(&[
        "diff",
        "case1/end",
        "case2/end",
        "--tolerance",
        "0",
        "--exit-code",
    ]);
    assert_eq!(run.code, 3);
}

// 11. A newer store is left byte-identical; unreadable pages are problems.
#[test]
fn a_newer_store_is_left_byte_identical() {
    let env = demo_env();
    env.db().pragma_update(None, "user_version", 99).unwrap();
    std::fs::remove_dir_all(env.store().join("weights")).unwrap();
    let before = folder_hashes(&env.store());
    for args in [
        vec!["log"],
        vec!["verify"],
        vec!["predict", "--input", "-"],
        vec!["init"],
    ] {
        let run = env.run(&args);
        assert_eq!(run.code, 1, "{args:?}");
        assert!(
            run.stderr.contains("newer than this statectl understands"),
            "{}",
            run.stderr
        );
        assert_eq!(
            folder_hashes(&env.store()),
            before,
            "{args:?} touched the store"
        );
    }
}

#[test]
fn verify_lists_pages_sqlite_cannot_read_as_problems() {
    let env = demo_env();
    let db = env.store().join("statectl.db");
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 8 * 4096);
    bytes[6 * 4096..7 * 4096].fill(0xAB);
    std::fs::write(&db, bytes).unwrap();
    let run = env.run(&["--json", "verify"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let problems = report["report"]["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p["kind"] == "database"),
        "{problems:?}"
    );
}

// 12. Size arguments are bounded: a clear error, no abort, no orphan file.
#[test]
fn absurd_sizes_are_refused_with_a_clear_error() {
    let env = demo_env();
    env.fails(
        &["reset", "--batch-size", "4294967295"],
        1,
        "out of range: use 1 to",
    );
    env.fails(
        &[
            "restore",
            "case1/end",
            "--slot",
            "0",
            "--batch-size",
            "4294967295",
        ],
        1,
        "out of range: use 1 to",
    );
    let weights = fixture("weights.keras_layout.safetensors");
    env.fails(
        &[
            "model",
            "import",
            s(&weights),
            "--layout",
            "keras",
            "--head",
            "softmax",
            "--name",
            "big",
            "--batch-size",
            "4294967295",
        ],
        1,
        "out of range: use 1 to",
    );
    env.fails(&["train", "--units", "100000"], 1, "units is out of range");
    env.fails(&["--threads", "65535", "log"], 2, "--threads");
    let bad = env.write_tensors(
        "classes.safetensors",
        &[
            ("x", Tensor::new(vec![6, 3, 1], vec![0.0; 18])),
            ("y", Tensor::new(vec![6], vec![3e9; 6])),
        ],
    );
    env.fails(
        &["train", "--data", s(&bad)],
        1,
        "beyond the largest supported class index",
    );
    let empty_y = env.write_tensors(
        "empty_y.safetensors",
        &[
            ("x", Tensor::new(vec![6, 3, 1], vec![0.0; 18])),
            ("y", Tensor::new(vec![6, 0], vec![])),
        ],
    );
    env.fails(&["train", "--data", s(&empty_y)], 1, "give 1 to");
    let layer = env.write_tensors(
        "layer.safetensors",
        &[
            (
                "l18446744073709551615.h",
                Tensor::new(vec![1, 16], vec![0.0; 16]),
            ),
            (
                "l18446744073709551615.c",
                Tensor::new(vec![1, 16], vec![0.0; 16]),
            ),
        ],
    );
    env.fails(&["import", s(&layer)], 1, "beyond the 64 layers");
}

/// Runs statectl with `args`; returns the exit code, stderr and the peak
/// resident memory of that one process in KiB, measured by GNU time (Debian's
/// `time` package). GNU time forks statectl itself: a child forked straight
/// from this test process would inherit its high-water mark across exec,
/// and parallel tests can hold hundreds of MB here. Without GNU time there
/// is no peak (`None`), and the checks on it say "skipped".
pub(crate) fn peak_kib(env: &Env, args: &[&str]) -> (i32, String, Option<u64>) {
    let time = std::path::Path::new("/usr/bin/time");
    let report = env.path("peak.kib");
    let mut command = if time.exists() {
        let mut c = std::process::Command::new(time);
        c.args(["-f", "%M", "-o", s(&report)])
            .arg(assert_cmd::cargo::cargo_bin("statectl"));
        c
    } else {
        eprintln!("GNU time (/usr/bin/time) is missing: peak memory not measured");
        std::process::Command::new(assert_cmd::cargo::cargo_bin("statectl"))
    };
    let out = command
        .args(["--store", s(&env.store())])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let peak = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()));
    let _ = std::fs::remove_file(&report);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        peak,
    )
}

/// Checks a measured peak, or says the check was skipped and why.
pub(crate) fn peak_below(peak: Option<u64>, limit_kib: u64, what: &str) {
    match peak {
        Some(peak) => {
            assert!(
                peak < limit_kib,
                "{what}: peak {peak} KiB, over {limit_kib}"
            );
            println!("{what}: peak {peak} KiB");
        }
        None => println!("skipped: peak memory of {what} (GNU time at /usr/bin/time is missing)"),
    }
}

// 13. Inputs are bounded: non-regular files are refused, stdin and files
//     have a size limit, and hostile files stay under 512 MB.
#[test]
fn hostile_inputs_are_refused_within_bounded_memory() {
    let env = demo_env();
    env.fails(
        &["predict", "--input", "/dev/zero"],
        1,
        "not a regular file",
    );
    let fifo = env.path("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    env.fails(&["predict", "--input", s(&fifo)], 1, "not a regular file");
    env.fails(&["import", s(&fifo)], 1, "not a regular file");
    env.fails(
        &["model", "import", s(&env.path("")), "--layout", "torch"],
        1,
        "not a regular file",
    );

    let before = env.fingerprint();
    let out = assert_cmd::Command::cargo_bin("statectl")
        .unwrap()
        .args(["--store", s(&env.store()), "predict", "--input", "-"])
        .env("STATECTL_MAX_INPUT_BYTES", "1000")
        .write_stdin(vec![b'0'; 5000])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("larger than the input limit"));
    assert_eq!(env.fingerprint(), before);

    // A 94 MB header, and a million one-unit states.
    let mut header = Vec::new();
    let json = format!(
        "{{\"__metadata__\":{{\"k\":\"{}\"}}}}",
        "a".repeat(94_000_000)
    );
    header.extend_from_slice(&(json.len() as u64).to_le_bytes());
    header.extend_from_slice(json.as_bytes());
    let big_header = env.path("big_header.safetensors");
    std::fs::write(&big_header, header).unwrap();
    let (code, stderr, peak) = peak_kib(&env, &["import", s(&big_header)]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("over the 16777216-byte limit"), "{stderr}");
    peak_below(peak, 512 * 1024, "a refused 94 MB header");
    std::fs::remove_file(&big_header).unwrap();

    let million = env.write_tensors(
        "million.safetensors",
        &[
            (
                "l0.h",
                Tensor::new(vec![1_000_000, 1], vec![0.5; 1_000_000]),
            ),
            (
                "l0.c",
                Tensor::new(vec![1_000_000, 1], vec![0.25; 1_000_000]),
            ),
        ],
    );
    let (code, stderr, peak) = peak_kib(&env, &["-q", "import", s(&million), "--per-slot"]);
    assert_eq!(code, 0, "{stderr}");
    peak_below(peak, 512 * 1024, "a million one-unit states imported");
}

// 15. Messages: disk-full and locked hints, a file where the weights
//     folder should be, invalid tags, NaN shown as NaN, causes said once.
#[test]
fn messages_say_what_is_wrong_once_and_how_to_fix_it() {
    let env = Env::new();
    std::fs::create_dir_all(env.store()).unwrap();
    std::fs::write(env.store().join("weights"), b"not a folder").unwrap();
    let run = env.run(&["init"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("something that is not a folder is in the way"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("File exists").count(),
        1,
        "{}",
        run.stderr
    );

    let env = demo_env();
    env.fails(&["snapshot", "--tag", "case1\u{200b}"], 1, "U+200B");
    env.fails(&["snapshot", "--tag", "\u{202e}1esac"], 1, "U+202E");
    env.fails(&["snapshot", "--tag", "d100"], 1, "it is all hex digits");
    // A hex prefix would tag slot 100 'd100', which reads as an id prefix:
    // refused up front, whatever the number of slots.
    let few = env.write_tensors(
        "few.safetensors",
        &[
            ("l0.h", Tensor::new(vec![3, 16], vec![0.5; 48])),
            ("l0.c", Tensor::new(vec![3, 16], vec![0.5; 48])),
        ],
    );
    for prefix in ["d", "a", "", "0f"] {
        env.fails(
            &["import", s(&few), "--per-slot", "--tag-prefix", prefix],
            1,
            "would make tags like",
        );
    }
    env.ok(&["import", s(&few), "--per-slot", "--tag-prefix", "a-"]);
    let nan = env.write_tensors(
        "nan.safetensors",
        &[
            ("l0.h", Tensor::new(vec![1, 16], vec![f32::NAN; 16])),
            ("l0.c", Tensor::new(vec![1, 16], vec![f32::INFINITY; 16])),
        ],
    );
    env.ok(&["import", s(&nan), "--allow-nonfinite", "--tag", "weird"]);
    let shown = env.ok(&["show", "weird"]);
    assert!(shown.contains("min NaN"), "{shown}");
    assert!(shown.contains("max inf"), "{shown}");

    let csv = env.path("latin1.csv");
    std::fs::write(&csv, b"0.1,\xff\xfe,0.3\n").unwrap();
    env.fails(&["predict", "--input", s(&csv)], 1, "not valid CSV");
}

#[test]
fn with_json_errors_are_json_objects_on_stdout() {
    let env = Env::new();
    let run = env.run(&["--json", "log"]);
    assert_eq!(run.code, 1);
    let error: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(error["error"]["kind"], "no_store");
    assert_eq!(error["error"]["exit_code"], 1);
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("statectl init"));
    let run = env.run(&["--json", "diff", "a"]);
    assert_eq!(run.code, 2);
    let error: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(error["error"]["kind"], "usage");
    env.ok(&["init"]);
    let run = env.run(&["--json", "show", "nosuchtag"]);
    let error: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(error["error"]["kind"], "not_found");
}

#[test]
fn a_newer_version_waiting_in_the_wal_is_refused_and_the_wal_kept() {
    let env = demo_env();
    {
        // Commit the newer version into the WAL and leave it there, as a
        // newer statectl killed before its checkpoint would.
        let conn = env.db();
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let wal = env.store().join("statectl.db-wal");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "the test needs a pending WAL"
    );
    let before = folder_hashes(&env.store());
    let run = env.run(&["log"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("newer than this statectl understands"),
        "{}",
        run.stderr
    );
    assert_eq!(
        folder_hashes(&env.store()),
        before,
        "the WAL was checkpointed or changed"
    );
}
