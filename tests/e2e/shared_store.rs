//! The shared store on a real PostgreSQL server: init, push and pull
//! between local stores, what a pulled copy audits, refusals that change
//! nothing on either side, kills in the middle of a push, and a role that
//! may only read. Each test makes a database of its own on the server
//! `$STATECTL_TEST_POSTGRES` names (scripts/test starts one); without one
//! the tests say "skipped".

use std::sync::atomic::{AtomicUsize, Ordering};

use super::util::{fixture, s, Env, Run};

static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// A fresh database on the test server, as a URL; None (and "skipped"
/// printed) without a server.
pub fn fresh_database(test: &str) -> Option<String> {
    let Ok(admin) = std::env::var("STATECTL_TEST_POSTGRES") else {
        assert!(
            std::env::var("STATECTL_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "STATECTL_REQUIRE_POSTGRES=1 but STATECTL_TEST_POSTGRES is not set"
        );
        eprintln!("{test}: skipped: no PostgreSQL server (bash scripts/test starts one; or set STATECTL_TEST_POSTGRES to a superuser URL)");
        return None;
    };
    let name = format!(
        "statectl_{}_{}_{}",
        test,
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::SeqCst)
    );
    sql(&admin, &format!("CREATE DATABASE {name}"));
    let base = admin.rsplit_once('/').expect("URL has a database").0;
    Some(format!("{base}/{name}"))
}

/// Runs statements on the server (test setup only).
pub fn sql(url: &str, statements: &str) {
    let mut client =
        postgres::Client::connect(url, postgres::NoTls).expect("test server reachable");
    client.batch_execute(statements).expect("setup SQL runs");
}

/// One number from the server.
pub fn count(url: &str, query: &str) -> i64 {
    let mut client =
        postgres::Client::connect(url, postgres::NoTls).expect("test server reachable");
    client.query_one(query, &[]).expect("query runs").get(0)
}

/// A URL of the same database for another user (and password).
pub fn as_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host}")
}

/// A local store's tags, (name, state) sorted.
pub fn tags(env: &Env, store: &std::path::Path) -> Vec<(String, String)> {
    let run = env.run_in(store, &["--json", "tag", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let mut out: Vec<(String, String)> = json["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tag"].as_str().unwrap().into(),
                t["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    out.sort();
    out
}

pub fn json_of(run: &Run) -> serde_json::Value {
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn a_pulled_copy_has_the_same_tags_and_ids_and_audits_bit_for_bit() {
    let Some(url) = fresh_database("copy") else {
        return;
    };
    let env = Env::new();
    env.ok(&["demo"]);
    env.ok(&["init", &url]);
    let first = env.json(&["push", &url]);
    assert!(first["slots_sent"].as_u64().unwrap() > 0, "{first}");
    assert!(first["events_sent"].as_u64().unwrap() > 0, "{first}");
    // Nothing new: no slot bytes move, no event is sent twice.
    let second = env.json(&["push", &url]);
    assert_eq!(second["slots_sent"], 0, "{second}");
    assert_eq!(second["slot_bytes_sent"], 0, "{second}");
    assert_eq!(second["events_sent"], 0, "{second}");
    assert_eq!(
        second["slots_already_there"], first["slots_sent"],
        "{second}"
    );

    let copy = env.path("copy");
    let pulled = json_of(&env.run_in(&copy, &["--json", "pull", &url]));
    assert_eq!(pulled["slots_received"], first["slots_sent"], "{pulled}");
    assert_eq!(tags(&env, &env.store()), tags(&env, &copy));
    let audit = json_of(&env.run_in(&copy, &["--json", "audit", "--train", "demo"]));
    assert_eq!(audit["ok"], true, "{audit}");
    assert_eq!(audit["reproduced"], 5, "{audit}");
    assert_eq!(audit["training"][0]["status"], "reproduced", "{audit}");
    assert_eq!(env.run_in(&copy, &["verify"]).code, 0);
    // The stream and its history came along: HEAD~1 names the same state.
    let state = |store| {
        json_of(&env.run_in(store, &["--json", "show", "HEAD~1", "--model", "demo"]))["state"]
            .clone()
    };
    assert_eq!(state(&env.store()), state(&copy));
    // A second pull has nothing to do.
    let again = json_of(&env.run_in(&copy, &["--json", "pull", &url]));
    assert_eq!(again["slots_received"], 0, "{again}");
    assert_eq!(again["events_received"], 0, "{again}");
    // Pulling back into the store that pushed adds no event twice.
    let back = env.json(&["pull", &url]);
    assert_eq!(back["events_received"], 0, "{back}");
}

#[test]
fn an_old_store_pushes_and_its_pulled_copy_audits() {
    let Some(url) = fresh_database("old") else {
        return;
    };
    let env = Env::new();
    copy_dir(&fixture("schema1_store"), &env.store());
    env.ok(&["init", &url]);
    env.ok(&["push", &url]);
    let copy = env.path("copy");
    json_of(&env.run_in(&copy, &["--json", "pull", &url]));
    assert_eq!(tags(&env, &env.store()), tags(&env, &copy));
    let audit = json_of(&env.run_in(&copy, &["--json", "audit"]));
    assert_eq!(audit["ok"], true, "{audit}");
    assert!(audit["reproduced"].as_u64().unwrap() > 0, "{audit}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn bad_urls_and_databases_get_one_clear_line_and_nothing_changes() {
    let Some(url) = fresh_database("bad") else {
        return;
    };
    let env = Env::new();
    env.ok(&["demo"]);
    // No statectl store in the database: offer init, create nothing.
    env.fails(&["push", &url], 1, "statectl init");
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        0
    );
    // No server there; the password never shows.
    let closed = free_port();
    let nowhere = format!("postgres://ann:s3cret-pw@127.0.0.1:{closed}/replay");
    for args in [
        vec!["push", nowhere.as_str()],
        vec!["init", nowhere.as_str()],
    ] {
        let run = env.run(&args);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.stderr.contains("cannot reach"), "{}", run.stderr);
        assert!(
            !run.stderr.contains("s3cret"),
            "password shown: {}",
            run.stderr
        );
        assert!(run.stderr.contains("ann:***@"), "{}", run.stderr);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
    }
    let nowhere_pull = env.run_in(&env.path("fresh"), &["pull", &nowhere]);
    assert_eq!(nowhere_pull.code, 1);
    assert!(
        !nowhere_pull.stderr.contains("s3cret"),
        "{}",
        nowhere_pull.stderr
    );
    // Not a URL this build reads.
    env.fails(&["push", "postgres://[::1"], 1, "not a PostgreSQL URL");
    // A database that does not exist.
    let base = url.rsplit_once('/').unwrap().0;
    env.fails(&["push", &format!("{base}/no_such_db")], 1, "createdb");
    // A newer schema is refused by every command, init included.
    env.ok(&["init", &url]);
    sql(&url, "UPDATE statectl_schema SET version = 99");
    env.fails(&["push", &url], 1, "newer than this statectl reads");
    env.fails(&["init", &url], 1, "newer than this statectl reads");
    assert_eq!(count(&url, "SELECT count(*) FROM slots"), 0);
    // A shared store's URL where a command needs a local store: refused,
    // no folder named after the URL appears.
    let run = env.run_in(std::path::Path::new(&url), &["status"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("statectl pull"), "{}", run.stderr);
    assert!(!std::path::Path::new("postgres:").exists());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn tags_and_streams_move_only_forward_unless_forced() {
    let Some(url) = fresh_database("refs") else {
        return;
    };
    let env = Env::new();
    env.ok(&["demo"]);
    env.ok(&["init", &url]);
    env.ok(&["push", &url]);
    let other = env.path("other");
    json_of(&env.run_in(&other, &["--json", "pull", &url]));
    // The first store moves on: a fast-forward for the shared store.
    let x = fixture("x_test.safetensors");
    env.ok(&["predict", "-i", s(&x), "--model", "demo"]);
    let ahead = env.json(&["push", &url]);
    assert_eq!(ahead["streams_moved"], 1, "{ahead}");
    // The second store moved its own way (an input the first never
    // saw): refused, naming both states.
    let own = env.path("own.csv");
    std::fs::write(
        &own,
        "0.1,0.2\n0.3,0.4\n0.5,0.6\n0.7,0.8\n0.9,1.0\n1.1,1.2\n",
    )
    .unwrap();
    let run = env.run_in(&other, &["predict", "-i", s(&own), "--model", "demo"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let slots_before = count(&url, "SELECT count(*) FROM slots");
    let events_before = count(&url, "SELECT count(*) FROM events");
    let refused = env.run_in(&other, &["push", &url]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("stream demo/main"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert_eq!(
        count(&url, "SELECT count(*) FROM slots"),
        slots_before,
        "a refused push sent content"
    );
    assert_eq!(count(&url, "SELECT count(*) FROM events"), events_before);
    // Pulling into it is refused the same way, and changes nothing here.
    let before = fingerprint_of(&other);
    let refused = env.run_in(&other, &["pull", &url]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("neither follows"),
        "{}",
        refused.stderr
    );
    assert_eq!(fingerprint_of(&other), before);
    // A tag set elsewhere here: refused until forced.
    env.ok(&["predict", "-i", s(&x), "--model", "demo", "--tag", "mine"]);
    env.ok(&["push", &url]);
    let run = env.run_in(
        &other,
        &["predict", "-i", s(&own), "--model", "demo", "--tag", "mine"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let forced = json_of(&env.run_in(&other, &["--json", "push", &url, "--force"]));
    assert_eq!(forced["streams_moved"], 1, "{forced}");
    assert!(forced["tags_changed"].as_u64().unwrap() >= 1, "{forced}");
    // Both stores' events are on the shared store, each with its origin.
    assert_eq!(count(&url, "SELECT count(DISTINCT origin) FROM events"), 2);
}

fn fingerprint_of(store: &std::path::Path) -> String {
    let env = Env {
        dir: tempfile::tempdir().unwrap(),
    };
    let link = env.store();
    copy_dir(store, &link);
    env.db_fingerprint()
}

#[test]
fn a_role_that_may_only_read_pulls_and_is_refused_every_write() {
    let Some(url) = fresh_database("roles") else {
        return;
    };
    let env = Env::new();
    env.ok(&["demo"]);
    env.ok(&["init", &url]);
    env.ok(&["push", &url]);
    let role = format!("reader_{}", std::process::id());
    sql(
        &url,
        &format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD 'r3ad-only'; \
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};"
        ),
    );
    let reader = as_user(&url, &role, "r3ad-only");
    let copy = env.path("copy");
    let pulled = json_of(&env.run_in(&copy, &["--json", "pull", &reader]));
    assert!(pulled["slots_received"].as_u64().unwrap() > 0);
    // Every kind of write: new content, new events, a moved tag.
    let x = fixture("x_test.safetensors");
    env.ok(&[
        "predict",
        "-i",
        s(&x),
        "--model",
        "demo",
        "--tag",
        "new-from-reader",
    ]);
    let events = count(&url, "SELECT count(*) FROM events");
    // Refused in one line without the password; no event, no tag.
    let refused = |run: Run, tag: &str| {
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.stderr.contains("may not"), "{}", run.stderr);
        assert!(!run.stderr.contains("r3ad-only"), "{}", run.stderr);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
        assert_eq!(count(&url, "SELECT count(*) FROM events"), events);
        let query = format!("SELECT count(*) FROM tags WHERE name = '{tag}'");
        assert_eq!(count(&url, &query), 0);
    };
    refused(env.run(&["push", &reader]), "new-from-reader");
    // Written straight to it: refused the same way; its verify reads.
    let state_file = env.path("state.safetensors");
    env.ok(&["-q", "export", "new-from-reader", "-o", s(&state_file)]);
    let run = env.run_in(
        std::path::Path::new(&reader),
        &["import", s(&state_file), "--tag", "direct-from-reader"],
    );
    refused(run, "direct-from-reader");
    let verified = env.run_in(std::path::Path::new(&reader), &["verify"]);
    assert_eq!(verified.code, 0, "{}{}", verified.stdout, verified.stderr);
    // Every command that writes on the shared store is refused the same
    // way, the stream where it was; every one that reads works.
    let on_reader = |args: &[&str]| env.run_in(std::path::Path::new(&reader), args);
    let stream = "SELECT count(*) FROM streams s, tags t \
                  WHERE s.model = 'demo' AND t.name = 'case5/end' AND s.state = t.state";
    let head = count(&url, stream);
    assert_eq!(head, 1, "the demo's stream ends at case5/end");
    for args in [
        vec![
            "predict",
            "-i",
            s(&x),
            "--model",
            "demo",
            "--tag",
            "p-from-reader",
        ],
        vec!["predict", "-i", s(&x), "--model", "demo", "--no-advance"],
        vec!["restore", "case1/end", "--model", "demo"],
        vec!["reset", "--model", "demo"],
        vec!["snapshot", "case1/end", "--tag", "s-from-reader"],
        vec!["stack", "case1/end", "case2/end", "--tag", "st-from-reader"],
        vec!["split", "case1/end", "--tag-prefix", "sp-from-reader/"],
        vec![
            "burn-in",
            "case1/end",
            "--model",
            "demo",
            "-i",
            s(&x),
            "--tag",
            "b-from-reader",
        ],
        vec!["tag", "delete", "case1/end"],
    ] {
        let tag = args
            .iter()
            .skip_while(|a| !a.starts_with("--tag"))
            .nth(1)
            .map_or("case1/end-gone", |t| t);
        refused(on_reader(&args), tag);
        assert_eq!(
            count(&url, "SELECT count(*) FROM tags WHERE name = 'case1/end'"),
            1
        );
        assert_eq!(count(&url, stream), head, "{args:?} moved the stream");
    }
    for args in [
        vec!["audit", "--train", "demo"],
        vec!["log", "--limit", "3"],
        vec!["show", "HEAD", "--model", "demo"],
        vec!["diff", "case1/end", "case2/end"],
    ] {
        let run = on_reader(&args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    }
    let run = env.run(&["init", &reader]);
    assert_eq!(
        run.code, 0,
        "init on an existing store changes nothing: {}",
        run.stderr
    );
    sql(&url, &format!("DROP OWNED BY {role}; DROP ROLE {role};"));
}

/// Whether the shared store is consistent: every tag's and stream's state
/// is there with all its slots, and a push's journal and refs landed
/// together (all of them or none). Returns the problems found.
fn shared_store_problems(url: &str, events_when_whole: i64, tags_when_whole: i64) -> Vec<String> {
    let checks = [
        ("tags naming a missing state", "SELECT count(*) FROM tags t WHERE NOT EXISTS (SELECT 1 FROM states s WHERE s.id = t.state)"),
        ("streams naming a missing state", "SELECT count(*) FROM streams t WHERE NOT EXISTS (SELECT 1 FROM states s WHERE s.id = t.state)"),
        (
            "states naming a missing slot",
            "SELECT count(*) FROM states s, generate_series(0, s.batch - 1) i \
             WHERE NOT EXISTS (SELECT 1 FROM slots l WHERE l.id = substring(s.slot_ids FROM i * 32 + 1 FOR 32))",
        ),
        (
            "slots whose bytes do not hash to their id",
            "SELECT count(*) FROM slots WHERE id <> sha256('statectl.slot.v1'::bytea || '\\x00'::bytea || convert_to(layout, 'UTF8') || '\\x00'::bytea || bytes)",
        ),
    ];
    let mut problems: Vec<String> = checks
        .iter()
        .filter_map(|(what, query)| {
            let n = count(url, query);
            (n != 0).then(|| format!("{n} {what}"))
        })
        .collect();
    let (events, tags) = (
        count(url, "SELECT count(*) FROM events"),
        count(url, "SELECT count(*) FROM tags"),
    );
    if !((events == 0 && tags == 0) || (events == events_when_whole && tags == tags_when_whole)) {
        problems.push(format!(
            "{events} events and {tags} tags: a push landed in part"
        ));
    }
    problems
}

fn empty_shared_store(url: &str) {
    sql(
        url,
        "TRUNCATE slots, states, objects, weights_files, models, tags, streams, events, origins",
    );
}

/// SIGKILL at a random moment of a running command; true when it was
/// killed (not already finished).
fn kill_at_random(
    env: &Env,
    store: &std::path::Path,
    args: &[&str],
    budget: std::time::Duration,
    rng: &mut impl rand::Rng,
) -> bool {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("statectl"))
        .arg("--store")
        .arg(store)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _ = env;
    std::thread::sleep(std::time::Duration::from_micros(
        rng.random_range(0..budget.as_micros().max(1) as u64),
    ));
    let finished = child.try_wait().unwrap().is_some();
    let _ = child.kill();
    child.wait().unwrap();
    !finished
}

/// 3,000 one-slot states of 2 KiB, tagged `buf/0` ... `buf/2999`: a push
/// of some 6 MB. `c` sets the `c` half, so two stores can differ.
fn import_tagged_states(env: &Env, c: f32) {
    let n = 3000;
    let h = statectl::tensors::Tensor::new(
        vec![n, 256],
        (0..n * 256).map(|v| v as f32 * 1e-3).collect(),
    );
    let c = statectl::tensors::Tensor::new(vec![n, 256], vec![c; n * 256]);
    let file = env.write_tensors("bulk.safetensors", &[("l0.h", h), ("l0.c", c)]);
    env.ok(&[
        "-q",
        "import",
        s(&file),
        "--per-slot",
        "--tag-prefix",
        "buf/",
    ]);
}

#[test]
fn pushes_and_pulls_killed_at_random_moments_leave_both_sides_consistent() {
    use rand::SeedableRng;
    let Some(url) = fresh_database("kills") else {
        return;
    };
    let kills: usize = std::env::var("STATECTL_SHARED_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(30);
    let env = Env::new();
    env.ok(&["-q", "demo"]);
    import_tagged_states(&env, 0.25);
    env.ok(&["init", &url]);
    let started = std::time::Instant::now();
    env.ok(&["-q", "push", &url]);
    let push_time = started.elapsed();
    let (whole_events, whole_tags) = (
        count(&url, "SELECT count(*) FROM events"),
        count(&url, "SELECT count(*) FROM tags"),
    );
    let expected_tags = tags(&env, &env.store());

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut problems = Vec::new();
    let (mut killed, mut attempts) = (0, 0);
    // Pushes: each kill lands somewhere in a push; the next push (killed
    // or not) carries on from what the shared store already holds.
    empty_shared_store(&url);
    while killed < kills && attempts < kills * 4 {
        attempts += 1;
        if kill_at_random(&env, &env.store(), &["push", &url], push_time, &mut rng) {
            killed += 1;
        } else {
            empty_shared_store(&url);
        }
        for p in shared_store_problems(&url, whole_events, whole_tags) {
            problems.push(format!("after push kill {killed}: {p}"));
        }
    }
    let push_kills = killed;
    env.ok(&["-q", "push", &url]);
    assert_eq!(count(&url, "SELECT count(*) FROM events"), whole_events);

    // Pulls into a fresh store: after each kill it verifies, and is empty
    // of refs or holds all of them.
    let copy = env.path("copy");
    let started = std::time::Instant::now();
    json_of(&env.run_in(&copy, &["--json", "pull", &url]));
    let pull_time = started.elapsed();
    let mut pull_kills = 0;
    attempts = 0;
    while pull_kills < kills / 2 && attempts < kills * 2 {
        attempts += 1;
        let _ = std::fs::remove_dir_all(&copy);
        env.run_in(&copy, &["-q", "init", s(&copy)]);
        if kill_at_random(&env, &copy, &["pull", &url], pull_time, &mut rng) {
            pull_kills += 1;
        }
        let verify = env.run_in(&copy, &["--json", "verify"]);
        if verify.code != 0 {
            problems.push(format!(
                "after pull kill {pull_kills}: verify exited {}: {}",
                verify.code, verify.stdout
            ));
        }
        let here = tags(&env, &copy);
        if !here.is_empty() && here != expected_tags {
            problems.push(format!(
                "after pull kill {pull_kills}: {} of {} tags",
                here.len(),
                expected_tags.len()
            ));
        }
        json_of(&env.run_in(&copy, &["--json", "pull", &url]));
        if tags(&env, &copy) != expected_tags {
            problems.push(format!(
                "the pull after kill {pull_kills} did not complete the copy"
            ));
        }
    }
    println!(
        "shared store kill harness: {push_kills} pushes and {pull_kills} pulls killed ({attempts} pull attempts), {} problems",
        problems.len()
    );
    assert!(
        push_kills >= kills / 2,
        "only {push_kills} of {kills} pushes were killed before they finished"
    );
    assert!(problems.is_empty(), "{problems:#?}");
    let audit = json_of(&env.run_in(&copy, &["--json", "audit", "--train", "demo"]));
    assert_eq!(audit["ok"], true, "{audit}");
}

/// A PostgreSQL server of this test's own (scripts/postgres), which it may
/// stop hard; stopped and removed when dropped.
pub struct PrivateServer {
    dir: String,
    bin: String,
    pub url: String,
}

impl PrivateServer {
    pub fn start() -> Option<PrivateServer> {
        let script = format!("{}/scripts/postgres", env!("CARGO_MANIFEST_DIR"));
        let out = std::process::Command::new("bash")
            .args([
                "-c",
                &format!("source {script} && postgres_start >/dev/null 2>&1 && echo \"$STATECTL_PG_DIR $STATECTL_PG_BIN $STATECTL_TEST_POSTGRES\""),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(dir), Some(bin), Some(url)) => Some(PrivateServer {
                dir: dir.into(),
                bin: bin.into(),
                url: url.into(),
            }),
            _ => None,
        }
    }

    /// Runs a function of scripts/postgres on this server
    /// (`postgres_crash`, `postgres_restart`).
    pub fn run(&self, function: &str) {
        let script = format!("{}/scripts/postgres", env!("CARGO_MANIFEST_DIR"));
        let status = std::process::Command::new("bash")
            .args(["-c", &format!("source {script} && {function}")])
            .env("STATECTL_PG_DIR", &self.dir)
            .env("STATECTL_PG_BIN", &self.bin)
            .status()
            .unwrap();
        assert!(status.success(), "{function} failed");
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.run("postgres_stop");
    }
}

#[test]
fn a_server_stopped_hard_mid_push_loses_no_acknowledged_write_and_the_push_completes() {
    use rand::{Rng, SeedableRng};
    // Only where the suite has a server: this test starts its own beside it.
    if fresh_database("crash").is_none() {
        return;
    }
    let server = PrivateServer::start().expect("scripts/postgres starts a second server");
    let url = server.url.clone();
    let env = Env::new();
    import_tagged_states(&env, 0.5);
    env.ok(&["init", &url]);
    let started = std::time::Instant::now();
    env.ok(&["-q", "push", &url]);
    let push_time = started.elapsed();
    let (whole_events, whole_tags) = (
        count(&url, "SELECT count(*) FROM events"),
        count(&url, "SELECT count(*) FROM tags"),
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let (mut interrupted, mut acknowledged) = (0, 0);
    let mut an_error = String::new();
    for round in 0..4 {
        empty_shared_store(&url);
        let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("statectl"))
            .args(["--store", s(&env.store()), "push", &url])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(
            rng.random_range(0..push_time.as_micros().max(1) as u64),
        ));
        server.run("postgres_crash");
        let out = child.wait_with_output().unwrap();
        server.run("postgres_restart");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            // Acknowledged before the crash: all of it survived.
            acknowledged += 1;
            assert_eq!(
                count(&url, "SELECT count(*) FROM tags"),
                whole_tags,
                "round {round}"
            );
        } else {
            interrupted += 1;
            assert_eq!(out.status.code(), Some(1), "round {round}: {stderr}");
            assert_eq!(
                stderr.trim_end().lines().count(),
                1,
                "round {round}: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
            an_error = stderr.trim_end().to_string();
        }
        let problems = shared_store_problems(&url, whole_events, whole_tags);
        assert!(problems.is_empty(), "round {round}: {problems:?}");
        env.ok(&["-q", "push", &url]);
        assert_eq!(count(&url, "SELECT count(*) FROM tags"), whole_tags);
    }
    let copy = env.path("copy");
    json_of(&env.run_in(&copy, &["--json", "pull", &url]));
    assert_eq!(tags(&env, &copy), tags(&env, &env.store()));
    assert_eq!(env.run_in(&copy, &["verify"]).code, 0);
    println!("server stopped hard during 4 pushes: {interrupted} interrupted (one-line error, completed by the next push), {acknowledged} acknowledged before the stop (all present after it); the error: {an_error}");
}

#[test]
fn two_stores_pushing_one_stream_at_once_one_wins_and_the_other_is_refused() {
    let Some(url) = fresh_database("race") else {
        return;
    };
    let env = Env::new();
    env.ok(&["-q", "demo"]);
    env.ok(&["init", &url]);
    env.ok(&["-q", "push", &url]);
    let (a, b) = (env.path("a"), env.path("b"));
    for (store, input) in [(&a, "0.1,0.2\n"), (&b, "0.9,0.8\n")] {
        json_of(&env.run_in(store, &["--json", "pull", &url]));
        let x = env.path(&format!("x{}.csv", input.len() + store.as_os_str().len()));
        std::fs::write(&x, input.repeat(6)).unwrap();
        let run = env.run_in(store, &["predict", "-i", s(&x), "--model", "demo"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let bin = assert_cmd::cargo::cargo_bin("statectl");
    let spawn = |store: &std::path::Path| {
        std::process::Command::new(&bin)
            .arg("--store")
            .arg(store)
            .args(["push", &url])
            .output()
            .unwrap()
    };
    let (ra, rb) = std::thread::scope(|scope| {
        let ha = scope.spawn(|| spawn(&a));
        let hb = scope.spawn(|| spawn(&b));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    let wins: Vec<bool> = [&ra, &rb].iter().map(|r| r.status.success()).collect();
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{ra:?}\n{rb:?}");
    let (winner, loser) = if wins[0] { (&a, &rb) } else { (&b, &ra) };
    let message = String::from_utf8_lossy(&loser.stderr);
    assert!(message.contains("stream demo/main"), "{message}");
    assert_eq!(message.trim_end().lines().count(), 1, "{message}");
    // The shared stream is the winner's HEAD, and its chain is unbroken: a
    // pulled copy walks back to the state the race started from.
    let head = |store: &std::path::Path, back: &str| {
        json_of(&env.run_in(store, &["--json", "show", back, "--model", "demo"]))["state"].clone()
    };
    let copy = env.path("copy");
    json_of(&env.run_in(&copy, &["--json", "pull", &url]));
    assert_eq!(head(&copy, "HEAD"), head(winner, "HEAD"));
    assert_eq!(head(&copy, "HEAD~1"), head(&env.store(), "HEAD"));
}

/// Runs `push` from `store` while another session holds the shared
/// stream's row and, once the push waits on it, moves the stream to
/// `moved_to` (as a concurrent push that reached the shared store first
/// would). Returns the push's output.
fn push_while_the_stream_moves(
    url: &str,
    store: &std::path::Path,
    moved_to: &[u8],
    extra: &[&str],
) -> std::process::Output {
    let mut other = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let mut watcher = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let mut tx = other.transaction().unwrap();
    tx.execute(
        "SELECT state FROM streams WHERE model = 'demo' AND name = 'main' FOR UPDATE",
        &[],
    )
    .unwrap();
    let bin = assert_cmd::cargo::cargo_bin("statectl");
    std::thread::scope(|scope| {
        let push = scope.spawn(|| {
            std::process::Command::new(&bin)
                .arg("--store")
                .arg(store)
                .args(["push", url])
                .args(extra)
                .output()
                .unwrap()
        });
        // Until the push's publish waits on the row this session holds.
        let started = std::time::Instant::now();
        while watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
                &[],
            )
            .unwrap()
            .get::<_, i64>(0)
            == 0
        {
            assert!(started.elapsed().as_secs() < 60, "the push never waited on the stream");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        tx.execute(
            "UPDATE streams SET state = $1 WHERE model = 'demo' AND name = 'main'",
            &[&moved_to],
        )
        .unwrap();
        tx.commit().unwrap();
        push.join().unwrap()
    })
}

#[test]
fn a_push_that_loses_a_stream_race_fails_whole_or_with_retry_reads_again() {
    let Some(url) = fresh_database("retry") else {
        return;
    };
    let env = Env::new();
    env.ok(&["-q", "demo"]);
    env.ok(&["init", &url]);
    env.ok(&["-q", "push", &url]);
    let start = json_of(&env.run(&["--json", "show", "HEAD", "--model", "demo"]))["state"]
        .as_str()
        .unwrap()
        .to_string();
    // A store that pulled, then moved the stream twice: its second state
    // is where "another writer" moves the shared stream mid-push.
    let b = env.path("b");
    json_of(&env.run_in(&b, &["--json", "pull", &url]));
    let x = env.path("x.csv");
    std::fs::write(&x, "0.1,0.2\n".repeat(6)).unwrap();
    let first = json_of(&env.run_in(&b, &["--json", "predict", "-i", s(&x), "--model", "demo"]));
    let second = json_of(&env.run_in(&b, &["--json", "predict", "-i", s(&x), "--model", "demo"]));
    let middle = hex::decode(first["state_after"].as_str().unwrap()).unwrap();
    let events_before = count(&url, "SELECT count(*) FROM events");

    // Without --retry: one line, and nothing of the publication landed.
    let lost = push_while_the_stream_moves(&url, &b, &middle, &[]);
    let message = String::from_utf8_lossy(&lost.stderr);
    assert_eq!(lost.status.code(), Some(1), "{message}");
    assert!(
        message.contains("moved while this push ran") && message.contains("--retry"),
        "{message}"
    );
    assert_eq!(message.trim_end().lines().count(), 1, "{message}");
    assert_eq!(count(&url, "SELECT count(*) FROM events"), events_before);

    // With --retry: the same race, then a second read finds the stream at
    // a state this store passed through, and the push completes.
    let start_bytes = hex::decode(&start).unwrap();
    sql(
        &url,
        &format!(
            "UPDATE streams SET state = '\\x{}' WHERE model = 'demo' AND name = 'main'",
            hex::encode(&start_bytes)
        ),
    );
    let won = push_while_the_stream_moves(&url, &b, &middle, &["--retry", "--json"]);
    assert!(
        won.status.success(),
        "{}",
        String::from_utf8_lossy(&won.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&won.stdout).unwrap();
    assert_eq!(report["retries"], 1, "{report}");
    let copy = env.path("copy");
    json_of(&env.run_in(&copy, &["--json", "pull", &url]));
    let head = json_of(&env.run_in(&copy, &["--json", "show", "HEAD", "--model", "demo"]));
    assert_eq!(head["state"], second["state_after"]);
    assert_eq!(env.run_in(&copy, &["verify"]).code, 0);
}
