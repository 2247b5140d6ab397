//! A learner's stack, split, burn-in and diff on both backends: the same
//! commands, given a local store's folder or a shared store's URL as
//! `--store`, run the same operation (`ops::backend`) and must give the
//! same states, ids, tags and reports, refuse the same bad input and
//! change nothing when they do. The shared half needs the server
//! `$STATECTL_TEST_POSTGRES` names; without one it says "skipped".

use std::path::{Path, PathBuf};

use super::shared_store::{count, fresh_database, json_of, tags};
use super::util::{fixture, s, Env};

/// Where the same commands run: the local store, then (with a server) a
/// shared store the local one was pushed to first, so both start alike.
pub fn backends(env: &Env, test: &str) -> Vec<PathBuf> {
    let mut stores = vec![env.store()];
    if let Some(url) = fresh_database(test) {
        env.ok(&["init", &url]);
        env.ok(&["-q", "push", &url]);
        stores.push(PathBuf::from(url));
    }
    stores
}

/// Everything a learner's session leaves that can be compared: the
/// reports (ids, tags, sources) and the store's tags.
fn learner_session(env: &Env, store: &Path) -> Vec<serde_json::Value> {
    let x = fixture("x_test.safetensors");
    let run = |args: &[&str]| {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        json_of(&env.run_in(store, &all))
    };
    let refuses = |args: &[&str], fragment: &str| {
        let before = tags(env, store);
        let failed = env.run_in(store, args);
        assert_eq!(
            failed.code, 1,
            "{args:?}: {}{}",
            failed.stdout, failed.stderr
        );
        assert!(
            failed.stderr.contains(fragment) && failed.stderr.lines().count() == 1,
            "{args:?} on {}: {}",
            s(store),
            failed.stderr
        );
        assert!(!failed.stderr.contains("panicked"), "{}", failed.stderr);
        assert_eq!(tags(env, store), before, "{args:?} changed the tags");
    };
    let mut reports = vec![
        run(&["stack", "case1/end", "case2/end", "--tag", "pair"]),
        run(&["split", "pair", "--tag-prefix", "part/"]),
        run(&[
            "burn-in",
            "--model",
            "demo",
            "case1/end",
            "--input",
            s(&x),
            "--tag",
            "burned",
        ]),
    ];
    let mut per_slot = vec![
        "burn-in",
        "--per-slot",
        "--input",
        s(&x),
        "--tag-prefix",
        "b/",
    ];
    let parts: Vec<String> = (0..6).map(|i| format!("part/{i}")).collect();
    per_slot.extend(parts.iter().map(String::as_str));
    reports.push(run(&per_slot));
    // Tag patterns expand against the store's own tags, in natural order.
    reports.push(run(&["stack", "b/*", "--tag", "rebuilt"]));
    // Episodes start at zeros: computed for the model, stored with the result.
    reports.push(run(&[
        "burn-in",
        "--model",
        "demo",
        "zeros",
        "--input",
        s(&x),
        "--tag",
        "from-zeros",
    ]));
    // Comparing states, and how differently the model answers from each.
    reports.push(run(&["diff", "case1/end", "case2/end", "--input", s(&x)]));
    reports.push(run(&["diff", "zeros", "from-zeros", "--per-slot"]));

    // Bad input: refused, naming what was wrong; nothing changes.
    refuses(
        &["stack", "case2/end", "case1/end", "--tag", "pair"],
        "--force",
    );
    refuses(&["stack", "case1/end", "nosuch"], "nosuch");
    refuses(&["stack", "case1/end", "--tag", "HEAD"], "cannot be a tag");
    refuses(
        &["split", "pair", "--tag-prefix", "ab"],
        "would make tags like",
    );
    let mut short = vec!["burn-in", "--per-slot", "--input", s(&x)];
    short.extend(parts[..5].iter().map(String::as_str));
    refuses(&short, "5 REF(s) for 6 sequence(s)");
    refuses(
        &[
            "burn-in",
            "--model",
            "nomodel",
            "case1/end",
            "--input",
            s(&x),
        ],
        "nomodel",
    );
    // A snapshot names a state; moving a tag needs --force.
    reports.push(run(&["snapshot", "case3/end", "--tag", "keep"]));
    refuses(&["snapshot", "case1/start", "--tag", "keep"], "--force");
    reports.push(run(&[
        "snapshot",
        "case1/start",
        "--tag",
        "keep",
        "--force",
    ]));
    // Tags go by name or pattern, journalled; an unknown one deletes nothing.
    reports.push(run(&["tag", "delete", "part/1*", "rebuilt"]));
    refuses(&["tag", "delete", "part/0", "nosuch"], "nosuch");
    refuses(&["tag", "delete", "nomatch/*"], "matches no tag");
    // --force moves the tag, on either backend.
    reports.push(run(&[
        "stack",
        "case2/end",
        "case1/end",
        "--tag",
        "pair",
        "--force",
    ]));
    reports.push(serde_json::to_value(tags(env, store)).unwrap());
    let verified = env.run_in(store, &["verify"]);
    assert_eq!(verified.code, 0, "{}{}", verified.stdout, verified.stderr);
    reports
}

#[test]
fn stack_split_burn_in_and_diff_give_the_same_states_and_tags_on_both_backends() {
    let env = Env::new();
    env.ok(&["-q", "demo"]);
    let stores = backends(&env, "learners");
    let sessions: Vec<Vec<serde_json::Value>> = stores
        .iter()
        .map(|store| learner_session(&env, store))
        .collect();
    // The local session is checked against what the operations mean.
    let local = &sessions[0];
    assert_eq!(local[0]["batch"], 12);
    assert_eq!(local[1]["states"].as_array().unwrap().len(), 12);
    assert_eq!(local[3]["states"][2]["tag"], "b/part/2");
    assert_eq!(local[4]["batch"], 6);
    assert_eq!(local[6]["different"], true);
    assert!(local[6]["outputs"].is_object(), "{}", local[6]);
    assert_eq!(local[7]["slots"].as_array().unwrap().len(), 6);
    let whole = env.json(&["show", "burned", "--values"])["slots"].clone();
    let part = env.json(&["show", "b/part/0", "--values"])["slots"][0].clone();
    assert_eq!(
        whole[0], part,
        "per-slot burn-in of slot 0 differs from the batch's"
    );
    // The demo's predictions and its training replay bit for bit on
    // either store, from what that store holds.
    for store in &stores {
        let audit = json_of(&env.run_in(store, &["--json", "audit", "--train"]));
        assert_eq!(audit["ok"], true, "{}: {audit}", s(store));
        assert_eq!(audit["reproduced"], 5, "{}: {audit}", s(store));
        assert_eq!(audit["training"][0]["status"], "reproduced", "{audit}");
        assert!(audit["training"][0]["states_checked"].as_u64() > Some(0));
    }
    let Some(shared) = sessions.get(1) else {
        return;
    };
    for (k, (here, there)) in local.iter().zip(shared).enumerate() {
        assert_eq!(here, there, "step {k} differs between the backends");
    }

    // The shared store journals what a local store journals, under the
    // writer's origin, naming the model for burn-in.
    let url = s(&stores[1]).to_string();
    let db = env.db();
    for kind in ["stack", "split", "burn-in", "untag", "tag"] {
        let local: i64 = db
            .query_row("SELECT count(*) FROM events WHERE kind = ?1", [kind], |r| {
                r.get(0)
            })
            .unwrap();
        let there = count(
            &url,
            &format!("SELECT count(*) FROM events WHERE kind = '{kind}'"),
        );
        assert_eq!(there, local, "{kind} entries");
    }
    assert_eq!(
        count(&url, "SELECT count(*) FROM events WHERE kind = 'burn-in' AND (model_name <> 'demo' OR input IS NULL)"),
        0,
        "a burn-in entry lacks its model or prefix"
    );
    // A pulled copy holds the results and their journal, and verifies.
    let copy = env.path("copy");
    assert_eq!(env.run_in(&copy, &["-q", "pull", &url]).code, 0);
    assert_eq!(tags(&env, &copy), tags(&env, &env.store()));
    let pulled = rusqlite::Connection::open(copy.join("statectl.db")).unwrap();
    let burn_ins: i64 = pulled
        .query_row(
            "SELECT count(*) FROM events WHERE kind = 'burn-in' AND model_name = 'demo' AND input IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(burn_ins, 8, "the pulled copy's burn-in entries");
    assert_eq!(env.run_in(&copy, &["verify"]).code, 0);
}

#[test]
fn training_on_either_store_gives_the_same_model_and_audits_there() {
    let env = Env::new();
    env.ok(&["-q", "demo"]);
    let stores = backends(&env, "training");
    let trained: Vec<serde_json::Value> = stores
        .iter()
        .map(|store| {
            let args = ["--json", "train", "--epochs", "1", "--name", "fresh"];
            let report = json_of(&env.run_in(store, &args));
            let audit = json_of(&env.run_in(store, &["--json", "audit", "--train", "fresh"]));
            assert_eq!(
                audit["training"][0]["status"],
                "reproduced",
                "{}: {audit}",
                s(store)
            );
            let head = json_of(&env.run_in(store, &["--json", "show", "HEAD", "--model", "fresh"]));
            assert_eq!(head["state"], report["final_state"], "{}", s(store));
            report
        })
        .collect();
    let [local, shared] = &trained[..] else {
        return;
    };
    assert_eq!(
        shared, local,
        "the same training gives other bits on the shared store"
    );
    // Refused in one line, publishing nothing: a name the shared store has,
    // and what needs a local store's runs or models.
    let url = &stores[1];
    let models = env.run_in(url, &["--json", "model", "list"]).stdout;
    for (args, says) in [
        (
            vec!["train", "--epochs", "1", "--name", "fresh"],
            "already exists",
        ),
        (vec!["train", "--resume", "fresh"], "local store"),
        (
            vec!["train", "--from", "demo", "--name", "tuned"],
            "local store",
        ),
    ] {
        let run = env.run_in(url, &args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
        assert_eq!(env.run_in(url, &["--json", "model", "list"]).stdout, models);
    }
}
