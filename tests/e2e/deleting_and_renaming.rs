//! Models are deleted and renamed, tags deleted by pattern, all journalled;
//! what the journal needs for an audit stays; bad names change nothing.

use crate::util::*;

fn env_with_two_models() -> Env {
    let env = Env::new();
    env.import_reference("keras", "ref");
    env.import_reference("torch", "other");
    let x = fixture("x_test.safetensors");
    env.ok(&["predict", "--input", s(&x), "--model", "ref"]);
    env.ok(&[
        "predict",
        "--input",
        s(&x),
        "--model",
        "ref",
        "--stream",
        "eval",
    ]);
    env
}

#[test]
fn a_renamed_model_keeps_its_history_streams_and_audits() {
    let env = env_with_two_models();
    let renamed = env.json(&["model", "rename", "ref", "char-lstm"]);
    assert_eq!(renamed["from"], "ref");
    assert_eq!(renamed["to"], "char-lstm");
    let log = env.json(&["log", "--model", "char-lstm"]);
    let kinds = field_of_each(&log["events"], "kind");
    assert!(kinds.contains(&"predict".to_string()), "{kinds:?}");
    let newest = &env.json(&["log", "--all", "--limit", "1"])["events"][0];
    assert_eq!(newest["kind"], "model-rename");
    assert_eq!(newest["model"], "char-lstm");
    env.ok(&["show", "HEAD", "--model", "char-lstm", "--stream", "eval"]);
    env.ok(&["audit", "--model", "char-lstm"]);
    // Refused, changing nothing: the old name, a taken name, a bad name.
    env.fails(&["model", "rename", "ref", "x"], 1, "model 'ref' not found");
    env.fails(
        &["model", "rename", "char-lstm", "other"],
        1,
        "model 'other' already exists",
    );
    env.fails(
        &["model", "rename", "char-lstm", "a b"],
        1,
        "cannot be a model name",
    );
}

#[test]
fn a_deleted_model_takes_its_streams_and_leaves_its_events_auditable() {
    let env = env_with_two_models();
    let deleted = env.json(&["model", "delete", "ref"]);
    assert_eq!(deleted["model"], "ref");
    assert_eq!(deleted["streams"], serde_json::json!(["eval", "main"]));
    let models = env.json(&["model", "list"]);
    assert_eq!(models["models"].as_array().unwrap().len(), 1, "{models}");
    env.fails(&["model", "delete", "ref"], 1, "model 'ref' not found");
    // Its predictions still replay from the journal's weights id.
    let audit = env.json(&["audit"]);
    assert_eq!(audit["reproduced"], 2, "{audit}");
    env.ok(&["verify"]);
    let all = env.ok(&["log", "--all"]);
    assert!(all.contains("model ref deleted"), "{all}");
}

#[test]
fn tags_are_deleted_by_name_and_pattern_in_one_transaction() {
    let env = env_with_two_models();
    for tag in ["buf/0", "buf/1", "buf/2", "keep"] {
        env.ok(&["snapshot", "HEAD", "--model", "ref", "--tag", tag]);
    }
    // A name that is not a tag, beside a good pattern: nothing deleted.
    env.fails(
        &["tag", "delete", "buf/*", "kep"],
        1,
        "tag 'kep' not found (did you mean 'keep'?)",
    );
    env.fails(
        &["tag", "delete", "zz/*"],
        1,
        "pattern 'zz/*' matches no tag",
    );
    let gone = env.json(&["tag", "delete", "buf/*"]);
    assert_eq!(
        field_of_each(&gone["deleted"], "tag"),
        ["buf/0", "buf/1", "buf/2"]
    );
    // One plain name: the one-tag report, as before.
    let one = env.json(&["tag", "delete", "keep"]);
    assert_eq!(one["tag"], "keep");
    assert_eq!(env.json(&["tag", "list"])["tags"], serde_json::json!([]));
}
