//! Writing straight to the shared store (`statectl --store URL import`)
//! and checking it (`statectl --store URL verify`): the same ids as an
//! embedded store, tags created if absent and moved only when forced, 64
//! writer processes at once with some SIGKILLed mid-write, and verify
//! finding damage. Each test makes a database of its own on the server
//! `$STATECTL_TEST_POSTGRES` names; without one the tests say "skipped".

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rand::{Rng, SeedableRng};

use super::shared_store::{count, fresh_database, json_of, sql, tags, PrivateServer};
use super::util::{s, Env};
use statectl::tensors::Tensor;

/// `n` one-slot LSTM-512 states of 4 KiB each (h and c of 512 floats),
/// values set by `seed`, as a file of one state of batch `n`.
fn actor_file(env: &Env, name: &str, n: usize, seed: usize) -> std::path::PathBuf {
    let units = 512;
    let h = Tensor::new(
        vec![n, units],
        (0..n * units)
            .map(|v| ((seed * 7919 + v) % 1000) as f32 * 1e-3)
            .collect(),
    );
    let c = Tensor::new(vec![n, units], vec![seed as f32 * 0.01 + 0.5; n * units]);
    env.write_tensors(name, &[("l0.h", h), ("l0.c", c)])
}

/// The shared store's tags, name to hex state.
fn shared_tags(url: &str) -> BTreeMap<String, String> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .query("SELECT name, encode(state, 'hex') FROM tags", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Every row of every table, in order: to show a refused write changed
/// nothing.
fn shared_fingerprint(url: &str) -> String {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    [
        "slots",
        "states",
        "objects",
        "weights_files",
        "models",
        "tags",
        "streams",
        "origins",
        "events",
    ]
    .iter()
    .map(|table| {
        let rows = client
            .query(
                &format!("SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {table} t"),
                &[],
            )
            .unwrap();
        format!("{table}:{:?}", rows[0].get::<_, Option<String>>(0))
    })
    .collect::<Vec<_>>()
    .join("\n")
}

#[test]
fn an_import_straight_to_the_shared_store_has_the_ids_of_an_embedded_one() {
    let Some(url) = fresh_database("direct") else {
        return;
    };
    let env = Env::new();
    env.ok(&["init", &url]);
    let file = actor_file(&env, "a.safetensors", 5, 1);
    let import_per_slot = || {
        json_of(&env.run_in(
            Path::new(&url),
            &[
                "--json",
                "import",
                s(&file),
                "--per-slot",
                "--tag-prefix",
                "buf/a/",
            ],
        ))
    };
    let direct = import_per_slot();
    assert_eq!(direct["count"], 5, "{direct}");
    assert_eq!(direct["slots_new"], 5, "{direct}");
    assert_eq!(direct["tags_set"], 5, "{direct}");
    let local = env.json(&["import", s(&file), "--per-slot", "--tag-prefix", "buf/a/"]);
    assert_eq!(direct["states"], local["states"]);
    // Again: nothing new, harmless.
    let again = import_per_slot();
    assert_eq!(again["slots_new"], 0, "{again}");
    assert_eq!(again["tags_set"], 0, "{again}");
    // A whole state under a tag, then that tag asked for another state.
    env.ok(&["-q", "import", s(&file), "--tag", "whole"]);
    let whole = env.run_in(
        Path::new(&url),
        &["-q", "import", s(&file), "--tag", "whole"],
    );
    assert_eq!(whole.code, 0, "{}", whole.stderr);
    let before = shared_fingerprint(&url);
    let other = actor_file(&env, "b.safetensors", 5, 2);
    for args in [
        vec!["import", s(&other), "--tag", "whole"],
        vec!["import", s(&other), "--per-slot", "--tag-prefix", "buf/a/"],
        vec!["import", "missing.safetensors", "--tag", "x"],
        vec!["import", s(&other), "--tag", "bad name!"],
    ] {
        let run = env.run_in(Path::new(&url), &args);
        assert_eq!(run.code, 1, "{args:?}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
        assert_eq!(
            shared_fingerprint(&url),
            before,
            "{args:?} changed the shared store"
        );
    }
    let clash = env.run_in(Path::new(&url), &["import", s(&other), "--tag", "whole"]);
    assert!(
        clash.stderr.contains("names another state") && clash.stderr.contains("--force"),
        "{}",
        clash.stderr
    );
    // Forced, the tag moves, and the move is in the journal.
    let forced = env.run_in(
        Path::new(&url),
        &["--json", "import", s(&other), "--tag", "whole", "--force"],
    );
    let forced = json_of(&forced);
    assert_eq!(
        shared_tags(&url)["whole"],
        forced["state"].as_str().unwrap()
    );
    assert_eq!(
        count(&url, "SELECT count(*) FROM events WHERE kind = 'tag' AND tag = 'whole' AND state_before IS NOT NULL"),
        1
    );
    // Commands that need a local store still say so, naming pull.
    let listed = env.run_in(Path::new(&url), &["status"]);
    assert_eq!(listed.code, 1);
    assert!(listed.stderr.contains("statectl pull"), "{}", listed.stderr);

    // Verify is clean; a pulled copy has the same tags and ids, and its
    // journal the imports.
    let verified = json_of(&env.run_in(Path::new(&url), &["--json", "verify"]));
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["report"]["states"], 7, "{verified}");
    let copy = env.path("copy");
    json_of(&env.run_in(&copy, &["--json", "pull", &url]));
    let shared: Vec<(String, String)> = shared_tags(&url).into_iter().collect();
    assert_eq!(tags(&env, &copy), shared);
    assert_eq!(env.run_in(&copy, &["verify"]).code, 0);
    let log = env.run_in(&copy, &["log", "--all"]);
    assert!(log.stdout.contains("import"), "{}", log.stdout);
}

/// Starts `statectl --store URL import FILE --per-slot --tag-prefix P`.
pub fn spawn_import(url: &str, file: &Path, prefix: &str) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("statectl"))
        .args(["--store", url, "-q", "import"])
        .arg(file)
        .args(["--per-slot", "--tag-prefix", prefix])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// What one round of writers did.
struct Round {
    /// Writers that exited 0.
    acknowledged: Vec<usize>,
    /// Writers SIGKILLed while still running.
    killed: usize,
}

/// Starts 64 writers at once, each with its own states tagged
/// `r{round}w{w}/i`; every other one is SIGKILLed a random moment after its
/// start, within about how long a write takes here.
fn writers_round(
    url: &str,
    files: &[std::path::PathBuf],
    round: usize,
    rng: &mut impl Rng,
) -> Round {
    let started = std::time::Instant::now();
    let mut children: Vec<(usize, Child, Duration)> = files
        .iter()
        .enumerate()
        .map(|(w, file)| {
            let child = spawn_import(url, file, &format!("r{round}w{w}/"));
            let kill_at = started.elapsed() + Duration::from_micros(rng.random_range(0..400_000));
            (w, child, kill_at)
        })
        .collect();
    children.sort_by_key(|(_, _, kill_at)| *kill_at);
    let mut killed = 0;
    for (_, child, kill_at) in children.iter_mut().filter(|(w, _, _)| w % 2 == 1) {
        std::thread::sleep(kill_at.saturating_sub(started.elapsed()));
        killed += usize::from(child.try_wait().unwrap().is_none());
        let _ = child.kill();
    }
    let mut acknowledged = Vec::new();
    for (w, child, _) in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => acknowledged.push(w),
            Some(code) => panic!("writer {w} exited {code}: {stderr}"),
            None => assert_eq!(w % 2, 1, "writer {w} died unkilled: {stderr}"),
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    Round {
        acknowledged,
        killed,
    }
}

#[test]
fn sixty_four_writers_at_once_some_killed_lose_no_acknowledged_state() {
    let Some(url) = fresh_database("writers") else {
        return;
    };
    let env = Env::new();
    env.ok(&["init", &url]);
    let (writers, per_writer, rounds) = (64, 20, 2);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(64);
    let mut landed = 0;
    let mut killed = 0;
    for round in 0..rounds {
        let files: Vec<_> = (0..writers)
            .map(|w| {
                actor_file(
                    &env,
                    &format!("r{round}w{w}.safetensors"),
                    per_writer,
                    round * writers + w,
                )
            })
            .collect();
        // The ids each writer's states have, from an embedded store.
        let expected: Vec<serde_json::Value> = files
            .iter()
            .map(|f| env.json(&["import", s(f), "--per-slot"])["states"].clone())
            .collect();
        let done = writers_round(&url, &files, round, &mut rng);
        killed += done.killed;
        eprintln!(
            "round {round}: {} of {writers} writers acknowledged, {} killed mid-run",
            done.acknowledged.len(),
            done.killed
        );
        // Every acknowledged write is there whole; a killed one wholly or
        // not at all, under the ids an embedded store gives.
        let tags = shared_tags(&url);
        for (w, expected) in expected.iter().enumerate() {
            let found: Vec<&String> = (0..per_writer)
                .filter_map(|i| tags.get(&format!("r{round}w{w}/{i}")))
                .collect();
            assert!(
                found.is_empty() || found.len() == per_writer,
                "writer {w}: {} of {per_writer} tags",
                found.len()
            );
            if done.acknowledged.contains(&w) {
                assert_eq!(found.len(), per_writer, "acknowledged writer {w} lost tags");
            }
            for (i, state) in found.iter().enumerate() {
                assert_eq!(**state, expected[i]["state"], "r{round}w{w}/{i}");
            }
            landed += usize::from(!found.is_empty());
        }
        // One journal entry, under an origin of its own, per write that
        // landed.
        assert_eq!(count(&url, "SELECT count(*) FROM events") as usize, landed);
        assert_eq!(
            count(&url, "SELECT count(DISTINCT origin) FROM events") as usize,
            landed
        );
        let verified = json_of(&env.run_in(Path::new(&url), &["--json", "verify"]));
        assert_eq!(verified["ok"], true, "{verified}");
        // The writers that did not finish, run again, complete.
        for w in (0..writers).filter(|w| !done.acknowledged.contains(w)) {
            let out = spawn_import(&url, &files[w], &format!("r{round}w{w}/"))
                .wait_with_output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        landed = count(&url, "SELECT count(*) FROM events") as usize;
    }
    eprintln!("{killed} writers killed mid-run in {rounds} rounds");
    assert_eq!(shared_tags(&url).len(), rounds * writers * per_writer);
}

#[test]
fn a_server_stopped_hard_mid_write_loses_no_acknowledged_state() {
    // Only where the suite has a server: this test starts its own beside it.
    if fresh_database("writes_crash").is_none() {
        return;
    }
    let server = PrivateServer::start().expect("scripts/postgres starts a second server");
    let url = server.url.clone();
    let env = Env::new();
    env.ok(&["init", &url]);
    let (writers, per_writer) = (16, 50);
    let files: Vec<_> = (0..writers)
        .map(|w| actor_file(&env, &format!("w{w}.safetensors"), per_writer, w))
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (mut failed, mut acknowledged) = (0, 0);
    let mut an_error = String::new();
    for round in 0..3 {
        let children: Vec<Child> = (0..writers)
            .map(|w| spawn_import(&url, &files[w], &format!("r{round}w{w}/")))
            .collect();
        std::thread::sleep(Duration::from_micros(rng.random_range(0..300_000)));
        server.run("postgres_crash");
        let outs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        server.run("postgres_restart");
        let tags = shared_tags(&url);
        for (w, out) in outs.iter().enumerate() {
            let found = (0..per_writer)
                .filter(|i| tags.contains_key(&format!("r{round}w{w}/{i}")))
                .count();
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                acknowledged += 1;
                assert_eq!(
                    found, per_writer,
                    "round {round}: acknowledged writer {w} lost tags"
                );
                continue;
            }
            failed += 1;
            assert_eq!(out.status.code(), Some(1), "round {round}: {stderr}");
            assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
            assert!(
                found == 0 || found == per_writer,
                "writer {w}: {found} of {per_writer} tags"
            );
            an_error = stderr.trim_end().to_string();
            // Run again once the server is back, it completes.
            let again = spawn_import(&url, &files[w], &format!("r{round}w{w}/"))
                .wait_with_output()
                .unwrap();
            assert!(
                again.status.success(),
                "{}",
                String::from_utf8_lossy(&again.stderr)
            );
        }
        let verified = json_of(&env.run_in(Path::new(&url), &["--json", "verify"]));
        assert_eq!(verified["ok"], true, "round {round}: {verified}");
        assert_eq!(shared_tags(&url).len(), (round + 1) * writers * per_writer);
    }
    println!("server stopped hard during 3 rounds of {writers} writers: {failed} failed (one-line error, completed when run again), {acknowledged} acknowledged (all present after the restart); an error: {an_error}");
}

#[test]
fn verify_on_the_shared_store_names_damaged_and_missing_content() {
    let Some(url) = fresh_database("damage") else {
        return;
    };
    let env = Env::new();
    env.ok(&["demo"]);
    env.ok(&["init", &url]);
    env.ok(&["push", &url]);
    let clean = json_of(&env.run_in(Path::new(&url), &["--json", "verify"]));
    assert_eq!(clean["ok"], true, "{clean}");
    assert!(
        clean["report"]["weights_files"].as_u64().unwrap() > 0,
        "{clean}"
    );
    // One byte of one slot flipped; a tag's state removed; a model's
    // weights file removed.
    sql(
        &url,
        "UPDATE slots SET bytes = set_byte(bytes, 0, get_byte(bytes, 0) # 1) \
           WHERE id = (SELECT id FROM slots ORDER BY id LIMIT 1); \
         INSERT INTO tags (name, state, updated_at) VALUES ('dangling', sha256('x'::bytea), 0); \
         DELETE FROM weights_files WHERE id = (SELECT weights FROM models WHERE name = 'demo');",
    );
    let run = env.run_in(Path::new(&url), &["verify"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    for expected in [
        "its bytes do not hash to its id",
        "tag dangling: names a state that is not there",
        "model demo: has no weights file",
        "3 problem(s) found",
    ] {
        assert!(run.stdout.contains(expected), "{expected}:\n{}", run.stdout);
    }
    // A state whose slot is gone.
    sql(&url, "DELETE FROM tags WHERE name = 'dangling'; DELETE FROM slots WHERE id = (SELECT id FROM slots ORDER BY id DESC LIMIT 1)");
    let run = env.run_in(Path::new(&url), &["--json", "verify"]);
    assert_eq!(run.code, 3);
    assert!(run.stdout.contains("which is not there"), "{}", run.stdout);
}
