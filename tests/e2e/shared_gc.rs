//! gc on the shared store: a replay buffer's bound, removal only a grace
//! period after a run found a row unreached, writers that rewrite
//! collected content at the same moment losing nothing, and a shared store
//! of the first schema brought up to date by `init`. Each test makes a
//! database of its own on the server `$STATECTL_TEST_POSTGRES` names;
//! without one the tests say "skipped".

use std::path::Path;
use std::process::{Command, Stdio};

use super::shared_store::{count, fresh_database, json_of, sql};
use super::shared_writes::spawn_import;
use super::util::{s, Env};
use statectl::tensors::Tensor;

/// `n` one-slot LSTM-64 states, values set by `seed`.
fn states_file(env: &Env, name: &str, n: usize, seed: usize) -> std::path::PathBuf {
    let h = Tensor::new(
        vec![n, 64],
        (0..n * 64)
            .map(|v| (seed * 1000 + v) as f32 * 1e-3)
            .collect(),
    );
    let c = Tensor::new(vec![n, 64], vec![seed as f32; n * 64]);
    env.write_tensors(name, &[("l0.h", h), ("l0.c", c)])
}

/// `statectl --store URL import FILE --per-slot --tag-prefix PREFIX`, run
/// to the end; fails the test if it fails.
fn import_to(url: &str, file: &Path, prefix: &str) {
    let out = spawn_import(url, file, prefix).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn gc(env: &Env, url: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json", "gc"];
    all.extend(args);
    json_of(&env.run_in(Path::new(url), &all))
}

#[test]
fn a_replay_buffer_on_the_shared_store_is_bounded_after_the_grace_period() {
    let Some(url) = fresh_database("gc") else {
        return;
    };
    let env = Env::new();
    env.ok(&["init", &url]);
    for round in 0..3 {
        let file = states_file(&env, &format!("r{round}.safetensors"), 10, round);
        let prefix = format!("buf/{round}/");
        import_to(&url, &file, &prefix);
    }
    assert_eq!(count(&url, "SELECT count(*) FROM states"), 30);
    // Nothing unreached yet: nothing to do.
    let first = gc(&env, &url, &[]);
    assert_eq!(
        (first["states"].as_u64(), first["unreached_states"].as_u64()),
        (Some(0), Some(0)),
        "{first}"
    );
    // The bound drops 20 tags; their states are marked, not removed, until
    // a run the grace period later.
    let bounded = gc(
        &env,
        &url,
        &["--keep-newest", "10", "--prefix", "buf/", "--grace", "2s"],
    );
    assert_eq!(bounded["retention"]["tags_dropped"], 20, "{bounded}");
    assert_eq!(bounded["states"], 0, "{bounded}");
    assert_eq!(bounded["unreached_states"], 20, "{bounded}");
    assert_eq!(count(&url, "SELECT count(*) FROM states"), 30);
    let dry = gc(&env, &url, &["--dry-run", "--grace", "0s"]);
    assert_eq!(
        (dry["states"].as_u64(), dry["slots"].as_u64()),
        (Some(20), Some(20)),
        "{dry}"
    );
    assert_eq!(count(&url, "SELECT count(*) FROM states"), 30);
    let early = gc(&env, &url, &["--grace", "1h"]);
    assert_eq!(early["states"], 0, "{early}");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let late = gc(&env, &url, &["--grace", "2s"]);
    assert_eq!(
        (late["states"].as_u64(), late["slots"].as_u64()),
        (Some(20), Some(20)),
        "{late}"
    );
    assert_eq!(late["bytes"], 20 * 512, "{late}");
    assert_eq!(late["unreached_states"], 0, "{late}");
    assert_eq!(count(&url, "SELECT count(*) FROM states"), 10);
    assert_eq!(count(&url, "SELECT count(*) FROM gc_marks"), 0);
    let verified = json_of(&env.run_in(Path::new(&url), &["--json", "verify"]));
    assert_eq!(verified["ok"], true, "{verified}");
    // The newest 10 read as before.
    let out = env.path("kept.safetensors");
    env.run_in(Path::new(&url), &["export", "buf/2/*", "-o", s(&out)]);
    assert!(out.exists());
    // Refused: flags that only a local store takes, a bad duration.
    for (args, says) in [
        (
            vec!["gc", "--keep-events-since", "1h"],
            "--keep-events-since applies to a local store",
        ),
        (vec!["gc", "--grace", "soon"], "bad --grace 'soon'"),
    ] {
        let run = env.run_in(Path::new(&url), &args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{}", run.stderr);
    }
    env.ok(&["init"]);
    env.fails(
        &["gc", "--grace", "1h"],
        1,
        "--grace applies to gc on a shared store",
    );
}

#[test]
fn writers_naming_collected_content_while_gc_runs_lose_nothing() {
    let Some(url) = fresh_database("gc_race") else {
        return;
    };
    let env = Env::new();
    env.ok(&["init", &url]);
    // Content nothing names any more: marked by a first run.
    let file = states_file(&env, "same.safetensors", 50, 1);
    import_to(&url, &file, "old/");
    gc(
        &env,
        &url,
        &["--keep-newest", "0", "--prefix", "old/", "--grace", "1h"],
    );
    assert_eq!(count(&url, "SELECT count(*) FROM gc_marks"), 100);
    // 24 writers name that same content again while gc, with no grace,
    // drops every tag they set and removes what nothing reaches, over and
    // over: a write in flight names content gc is removing.
    let bin = assert_cmd::cargo::cargo_bin("statectl");
    let gc_loop = std::thread::spawn({
        let (bin, url) = (bin.clone(), url.clone());
        move || {
            let mut runs = 0;
            let started = std::time::Instant::now();
            while started.elapsed() < std::time::Duration::from_secs(4) {
                let out = Command::new(&bin)
                    .args(["--store", &url, "-q", "gc", "--grace", "0s"])
                    .args(["--keep-newest", "0", "--prefix", "new/"])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                runs += 1;
            }
            runs
        }
    });
    let mut acknowledged = Vec::new();
    for round in 0..3 {
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let prefix = format!("new/{round}/{w}/");
                let child = spawn_import(&url, &file, &prefix);
                (prefix, child)
            })
            .collect();
        for (prefix, child) in writers {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            acknowledged.push(prefix);
        }
    }
    let runs = gc_loop.join().unwrap();
    println!("{runs} gc runs beside {} writers", acknowledged.len());
    // No tag names a state that is gone, no state a slot that is gone; a
    // last write after the runs stays whole.
    import_to(&url, &file, "last/");
    let query = "SELECT count(*) FROM tags t JOIN states s ON s.id = t.state \
                 JOIN slots l ON l.id = s.slot_ids WHERE t.name LIKE 'last/%'";
    assert_eq!(count(&url, query), 50);
    let verified = json_of(&env.run_in(Path::new(&url), &["--json", "verify"]));
    assert_eq!(verified["ok"], true, "{verified}");
}

/// Waits until a session of the server waits for a lock while running a
/// statement that starts with `statement`.
fn wait_for_lock_wait(url: &str, statement: &str) {
    let query = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '{statement}%'"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while count(url, &query) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no session waits on {statement}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_write_in_flight_keeps_the_content_gc_would_remove() {
    let Some(url) = fresh_database("gc_inflight") else {
        return;
    };
    let env = Env::new();
    env.ok(&["init", &url]);
    let file = states_file(&env, "same.safetensors", 20, 2);
    import_to(&url, &file, "old/");
    gc(
        &env,
        &url,
        &["--keep-newest", "0", "--prefix", "old/", "--grace", "1h"],
    );
    // A writer names that content again and is held, by a lock this test
    // takes, just before its journal entry: its slots, states and tags are
    // in its open transaction.
    let mut holder = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut hold = holder.transaction().unwrap();
    hold.batch_execute("LOCK TABLE events IN EXCLUSIVE MODE")
        .unwrap();
    let writer = spawn_import(&url, &file, "new/");
    wait_for_lock_wait(&url, "INSERT INTO events");
    // gc, with no grace, runs meanwhile: it must not remove what the
    // writer is about to name (it waits for the writer, or skips it).
    let collector = Command::new(assert_cmd::cargo::cargo_bin("statectl"))
        .args(["--store", &url, "--json", "gc", "--grace", "0s"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    hold.commit().unwrap();
    let written = writer.wait_with_output().unwrap();
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    let collected = collector.wait_with_output().unwrap();
    assert!(collected.status.success());
    let report: serde_json::Value = serde_json::from_slice(&collected.stdout).unwrap();
    assert_eq!(report["states"], 0, "{report}");
    let query = "SELECT count(*) FROM tags t JOIN states s ON s.id = t.state \
                 JOIN slots l ON l.id = s.slot_ids WHERE t.name LIKE 'new/%'";
    let verified = json_of(&env.run_in(Path::new(&url), &["--json", "verify"]));
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(count(&url, query), 20, "{verified}");
}

#[test]
fn a_shared_store_of_the_first_schema_is_brought_up_to_date_by_init() {
    let Some(url) = fresh_database("schema1") else {
        return;
    };
    let env = Env::new();
    env.ok(&["-q", "demo"]);
    // The first schema, as an earlier statectl created it, with a push in it.
    sql(
        &url,
        include_str!("../../shared_migrations/0001_shared_store.sql"),
    );
    sql(
        &url,
        "INSERT INTO tags (name, state, updated_at) VALUES ('x', sha256('x'::bytea), 1)",
    );
    let run = env.run(&["push", &url]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("has schema 1; bring it up to date: statectl init"),
        "{}",
        run.stderr
    );
    let init = env.json(&["init", &url]);
    assert_eq!(
        (init["created"].as_bool(), init["upgraded_from"].as_i64()),
        (Some(false), Some(1)),
        "{init}"
    );
    assert_eq!(
        count(&url, "SELECT max(version)::bigint FROM statectl_schema"),
        2
    );
    assert_eq!(count(&url, "SELECT count(*) FROM tags WHERE name = 'x'"), 1);
    env.ok(&["-q", "push", &url]);
    let again = env.json(&["init", &url]);
    assert_eq!(again["created"], false, "{again}");
    assert!(again["upgraded_from"].is_null(), "{again}");
}
