//! Snapshots, tags, diff, CSV and JSON inputs, log.

use crate::util::*;

#[test]
fn diff_reports_bit_equality_and_names_the_changed_slot() {
    let env = Env::new();
    env.import_reference("keras", "ref");
    let trained = env.reference_state_file("case1");
    env.ok(&["import", s(&trained), "--tag", "a"]);
    let same = env.run(&["diff", "a", "a", "--exit-code"]);
    assert_eq!(same.code, 0, "{}", same.stderr);
    assert!(same.stdout.contains("bit-equal"));

    // b: slot 4 of a replaced by slot 0.
    env.ok(&["restore", "a", "--slots", "0,1,2,3,0,5"]);
    env.ok(&["snapshot", "--tag", "b"]);
    let diff = env.run(&["--json", "diff", "a", "b", "--per-slot", "--exit-code"]);
    assert_eq!(diff.code, 3, "{}", diff.stderr);
    let json: serde_json::Value = serde_json::from_str(&diff.stdout).unwrap();
    let changed: Vec<u64> = json["slots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["bit_equal"].as_bool().unwrap())
        .map(|s| s["slot"].as_u64().unwrap())
        .collect();
    assert_eq!(changed, vec![4]);
    assert_eq!(json["layers"][0]["bit_equal_slots"], 5);
    // A tolerance above the difference makes them equal for scripts.
    let tolerant = env.run(&["diff", "a", "b", "--exit-code", "--tolerance", "10"]);
    assert_eq!(tolerant.code, 0);
}

#[test]
fn csv_and_json_inputs_give_the_same_numbers_as_safetensors() {
    let env = Env::new();
    env.import_reference("keras", "ref");
    let x = fixture("x_test.safetensors");
    let st = env.json(&["predict", "--input", s(&x), "--no-advance"]);
    let row = format!("{},{},{}\n", 0.0f32, 1.0f32 / 27.0, 2.0f32 / 27.0);
    let csv = env.path("x.csv");
    std::fs::write(&csv, format!("t0,t1,t2\n{}", row.repeat(6))).unwrap();
    let from_csv = env.json(&["predict", "--input", s(&csv), "--no-advance"]);
    assert_eq!(from_csv["outputs"], st["outputs"]);
    assert_eq!(from_csv["input"], st["input"]);
    let json_rows: Vec<serde_json::Value> = (0..6)
        .map(|_| serde_json::json!([[0.0f32], [1.0f32 / 27.0], [2.0f32 / 27.0]]))
        .collect();
    let json_path = env.path("x.json");
    std::fs::write(&json_path, serde_json::to_string(&json_rows).unwrap()).unwrap();
    let from_json = env.json(&["predict", "--input", s(&json_path), "--no-advance"]);
    assert_eq!(from_json["outputs"], st["outputs"]);
}

#[test]
fn snapshot_moves_a_tag_only_with_force_and_log_shows_the_history() {
    let env = Env::new();
    env.import_reference("keras", "ref");
    let x = fixture("x_test.safetensors");
    env.ok(&["snapshot", "--tag", "start"]);
    let p = env.json(&["predict", "--input", s(&x)]);
    env.fails(&["snapshot", "--tag", "start"], 1, "already names state");
    env.ok(&["snapshot", "--tag", "start", "--force"]);
    assert_eq!(env.json(&["show", "start"])["state"], p["state_after"]);
    let log = env.json(&["log"]);
    assert_eq!(field_of_each(&log["events"], "kind"), ["predict", "reset"]);
    let human = env.ok(&["log"]);
    assert!(human.contains("start"), "{human}");
}
