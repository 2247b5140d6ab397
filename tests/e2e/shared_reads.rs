//! A learner reading straight from the shared store, without a pull:
//! `statectl --store URL export` gives the file a local export of the same
//! refs gives, byte for byte, and refuses what a shared store cannot name;
//! `tag list` lists its tags as a local store lists its own.
//! Each test makes a database of its own on the server
//! `$STATECTL_TEST_POSTGRES` names; without one the tests say "skipped".

use std::path::Path;

use super::shared_store::{fresh_database, json_of, sql, tags};
use super::util::{s, Env};

#[test]
fn an_export_from_the_shared_store_is_the_file_a_local_export_writes() {
    let Some(url) = fresh_database("export") else {
        return;
    };
    let env = Env::new();
    env.ok(&["-q", "demo"]);
    env.ok(&["init", &url]);
    env.ok(&["-q", "push", &url]);
    let trained = env.json(&["show", "trained"])["state"]
        .as_str()
        .unwrap()
        .to_string();
    let cases: [&[&str]; 6] = [
        &["trained"],
        &["case*"],
        &["case2/end", &trained, "case1/end"],
        &["trained", "--slots", "3,0"],
        &["HEAD~1", "HEAD", "--model", "demo"],
        &["HEAD~2", "zeros"],
    ];
    for (k, refs) in cases.iter().enumerate() {
        let (local, shared) = (
            env.path(&format!("local{k}")),
            env.path(&format!("shared{k}")),
        );
        let args = |file: &Path| -> Vec<String> {
            let mut args: Vec<String> = ["--json", "export"].map(String::from).to_vec();
            args.extend(refs.iter().map(|r| r.to_string()));
            args.extend(["-o".into(), s(file).into()]);
            args
        };
        let local_args = args(&local);
        let local_json = env.json(
            &local_args[1..]
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        let shared_args = args(&shared);
        let shared_args: Vec<&str> = shared_args.iter().map(String::as_str).collect();
        let mut shared_json = json_of(&env.run_in(Path::new(&url), &shared_args));
        assert_eq!(
            std::fs::read(&local).unwrap(),
            std::fs::read(&shared).unwrap(),
            "{refs:?}"
        );
        shared_json["file"] = local_json["file"].clone();
        assert_eq!(shared_json, local_json, "{refs:?}");
    }

    // Its tags list as a local store's do: the same names, naming the
    // same states.
    assert_eq!(tags(&env, Path::new(&url)), tags(&env, &env.store()));
    // `show` says what a local store's says, but for the event that made
    // the state (a shared store's journal comes from many stores).
    for reference in ["trained", "case1/end", &trained[..]] {
        let mut local = env.json(&["show", reference, "--values"]);
        let shared =
            json_of(&env.run_in(Path::new(&url), &["--json", "show", reference, "--values"]));
        local["origin"] = serde_json::Value::Null;
        assert_eq!(shared, local, "{reference}");
    }
    let shown = env.run_in(Path::new(&url), &["show", "trained"]);
    assert!(
        shown.stdout.contains(&format!("state   {trained}")),
        "{}",
        shown.stdout
    );
    let table = env.run_in(Path::new(&url), &["tag", "list"]);
    assert!(table.stdout.starts_with("TAG"), "{}", table.stdout);
    assert!(table.stdout.contains("case1/end"), "{}", table.stdout);

    // Refused, writing no file: a stream position it does not have, an
    // unknown model, what only a local store resolves (an id prefix), a tag
    // that is not there, a state whose slot is damaged.
    let out = env.path("refused.safetensors");
    for (args, says) in [
        (vec!["export", "HEAD~99"], "goes past the start"),
        (vec!["export", "HEAD", "--model", "nope"], "no model 'nope'"),
        (vec!["export", &trained[..12]], "full 64-digit id"),
        (vec!["export", "nope*"], "matches no tag"),
        (
            vec!["export", "case1/end", "case2/end", "--slots", "0"],
            "--slots selects from one state",
        ),
    ] {
        let mut args = args.clone();
        args.extend(["-o", s(&out)]);
        let run = env.run_in(Path::new(&url), &args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
        assert!(!out.exists(), "{args:?} wrote a file");
    }
    sql(
        &url,
        "UPDATE slots SET bytes = set_byte(bytes, 0, get_byte(bytes, 0) # 1)",
    );
    let run = env.run_in(Path::new(&url), &["export", "trained", "-o", s(&out)]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("does not hash to its id"),
        "{}",
        run.stderr
    );
    assert!(!out.exists());
}

#[test]
fn log_on_the_shared_store_says_which_store_wrote_each_event() {
    let Some(url) = fresh_database("log") else {
        return;
    };
    let env = Env::new();
    env.ok(&["-q", "demo"]);
    env.ok(&["init", &url]);
    env.ok(&["-q", "push", &url]);
    let shared = Path::new(&url);
    json_of(&env.run_in(
        shared,
        &["--json", "stack", "case1/end", "case2/end", "--tag", "pair"],
    ));
    let local = env.json(&["log", "--all"])["events"].clone();
    let local = local.as_array().unwrap();
    assert!(
        local.iter().all(|e| e.get("origin").is_none()),
        "a store's own events have no origin"
    );
    let journal = json_of(&env.run_in(shared, &["--json", "log"]))["events"].clone();
    let journal = journal.as_array().unwrap();
    assert_eq!(
        journal.len() as i64,
        super::shared_store::count(&url, "SELECT count(*) FROM events")
    );
    // Newest first: the stack written there (under the writer's origin),
    // then the pushing store's events, numbered as that store numbered them.
    assert_eq!(journal[0]["kind"], "tag");
    assert_eq!(journal[1]["kind"], "stack");
    assert_eq!(journal[1]["origin"]["event"], 1);
    let pushed = &journal[2..];
    assert_eq!(pushed.len(), local.len());
    for (there, here) in pushed.iter().zip(local) {
        assert_eq!(there["origin"]["event"], here["event"], "{there}");
        assert_eq!(there["origin"]["store"], pushed[0]["origin"]["store"]);
        for field in [
            "kind",
            "state_before",
            "state_after",
            "model",
            "stream",
            "tag",
            "detail",
        ] {
            assert_eq!(there[field], here[field], "{field} of {here}");
        }
    }
    assert_ne!(journal[1]["origin"]["store"], pushed[0]["origin"]["store"]);
    // Filters apply on the server; --model takes one model's stream.
    let stacks = json_of(&env.run_in(shared, &["--json", "log", "--kind", "stack"]));
    assert_eq!(stacks["events"].as_array().unwrap().len(), 1);
    let main = json_of(&env.run_in(
        shared,
        &["--json", "log", "--model", "demo", "--limit", "2"],
    ));
    assert_eq!(main["events"].as_array().unwrap().len(), 2);
    assert_eq!(main["head"], env.json(&["show", "HEAD"])["state"]);
    let table = env.run_in(shared, &["log", "--limit", "3"]);
    assert!(
        table
            .stdout
            .contains("stacked case1/end (6) + case2/end (6)"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains(" event 1)"), "{}", table.stdout);
    let unknown = env.run_in(shared, &["log", "--model", "nope"]);
    assert_eq!(unknown.code, 1, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("no stream 'main' of model 'nope'"),
        "{}",
        unknown.stderr
    );
    // A pulled copy's log says the same of the events it pulled.
    let copy = env.path("copy");
    assert_eq!(env.run_in(&copy, &["-q", "pull", &url]).code, 0);
    let pulled = json_of(&env.run_in(&copy, &["--json", "log", "--all"]))["events"].clone();
    let origins = |events: &serde_json::Value| -> Vec<serde_json::Value> {
        events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["origin"].clone())
            .collect()
    };
    assert_eq!(
        origins(&pulled),
        origins(&serde_json::Value::from(journal.clone()))
    );
}
