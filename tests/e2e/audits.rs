//! Audits and verify: replays reproduce, tampering is caught and named,
//! results do not depend on the thread count.

use crate::util::*;

fn audit_json(env: &Env, args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["--json", "audit"];
    all.extend_from_slice(args);
    let run = env.run(&all);
    (
        run.code,
        serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}{}", run.stdout, run.stderr)),
    )
}

fn statuses(report: &serde_json::Value) -> Vec<(i64, String)> {
    report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_i64().unwrap(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn verify_problems(env: &Env) -> (i32, Vec<serde_json::Value>) {
    let run = env.run(&["--json", "verify"]);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    (
        run.code,
        json["report"]["problems"].as_array().unwrap().clone(),
    )
}

fn demo_env() -> Env {
    let env = Env::new();
    env.ok(&["-q", "demo"]);
    env
}

#[test]
fn after_the_demo_every_prediction_and_the_training_reproduce() {
    let env = demo_env();
    let (code, report) = audit_json(&env, &["--train"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["reproduced"], 5);
    assert_eq!(report["training"][0]["status"], "reproduced");
    assert_eq!(
        report["training"][0]["weights_replayed"],
        report["training"][0]["weights_recorded"]
    );
    assert_eq!(report["training"][0]["states_checked"], 3);
    let (code, problems) = verify_problems(&env);
    assert_eq!((code, problems.len()), (0, 0));
    // Filters pick events.
    let (_, by_tag) = audit_json(&env, &["--tag", "case4/end"]);
    assert_eq!(statuses(&by_tag).len(), 1);
    let first = statuses(&by_tag)[0].0.to_string();
    let (_, by_event) = audit_json(&env, &["--event", &first]);
    assert_eq!(statuses(&by_event), statuses(&by_tag));
    let (_, recent) = audit_json(&env, &["--since", "1h", "--model", "demo"]);
    assert_eq!(recent["reproduced"], 5);
    env.fails(&["audit", "--since", "yesterday"], 1, "bad --since");
}

#[test]
fn a_flipped_slot_byte_is_named_by_verify_audit_and_restore() {
    let env = demo_env();
    let case4 = env.json(&["show", "case4/end"]);
    let slot = case4["slots"][0].as_str().unwrap().to_string();
    env.flip_blob("slots", "bytes", &slot, 5, 0x10);

    let (code, problems) = verify_problems(&env);
    assert_eq!(code, 3);
    assert!(
        problems
            .iter()
            .any(|p| p["kind"] == "slot" && p["id"] == slot.as_str()),
        "{problems:?}"
    );

    let (code, report) = audit_json(&env, &[]);
    assert_eq!(code, 3);
    assert_eq!(
        report["mismatched"], 0,
        "corruption must not read as a numeric mismatch"
    );
    let failed: Vec<&serde_json::Value> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "failed")
        .collect();
    assert!(!failed.is_empty());
    assert!(failed
        .iter()
        .all(|e| e["reason"].as_str().unwrap().contains("statectl verify")));

    env.fails(&["restore", "case4/end"], 1, &slot);
    env.fails(
        &["export", "case4/end", "-o", s(&env.path("x.safetensors"))],
        1,
        "run `statectl verify`",
    );
    let x = fixture("x_test.safetensors");
    env.fails(
        &["predict", "--input", s(&x), "--from", "case4/end"],
        1,
        &slot,
    );
}

#[test]
fn a_flipped_object_byte_fails_its_event_only() {
    let env = demo_env();
    let log = env.json(&["log", "--model", "demo"]);
    let predict = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "predict")
        .unwrap()
        .clone();
    let output = predict["output"].as_str().unwrap().to_string();
    env.flip_blob("objects", "bytes", &output, -1, 1);
    let (code, problems) = verify_problems(&env);
    assert_eq!(code, 3);
    assert!(
        problems
            .iter()
            .any(|p| p["kind"] == "object" && p["id"] == output.as_str()),
        "{problems:?}"
    );
    let (code, report) = audit_json(&env, &[]);
    assert_eq!(code, 3);
    let failed: Vec<(i64, String)> = statuses(&report)
        .into_iter()
        .filter(|(_, s)| s == "failed")
        .collect();
    assert_eq!(
        failed,
        vec![(predict["event"].as_i64().unwrap(), "failed".to_string())]
    );
    assert_eq!(report["reproduced"], 4);
}

#[test]
fn a_flipped_weights_byte_fails_every_event_of_the_model() {
    let env = demo_env();
    let weights = env.json(&["model", "show", "demo"])["weights"]
        .as_str()
        .unwrap()
        .to_string();
    let path = env
        .store()
        .join("weights")
        .join(format!("{weights}.safetensors"));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let (code, problems) = verify_problems(&env);
    assert_eq!(code, 3);
    assert!(
        problems
            .iter()
            .any(|p| p["kind"] == "weights file" && p["id"] == weights.as_str()),
        "{problems:?}"
    );
    let (code, report) = audit_json(&env, &[]);
    assert_eq!(code, 3);
    assert_eq!(report["failed"], 5);
    let x = fixture("x_test.safetensors");
    env.fails(&["predict", "--input", s(&x)], 1, "weights file");
}

#[test]
fn an_edited_slot_list_and_a_dangling_ref_are_named() {
    let env = demo_env();
    let case1 = env.json(&["show", "case1/end"])["state"]
        .as_str()
        .unwrap()
        .to_string();
    let db = env.db();
    let mut list: Vec<u8> = db
        .query_row(
            "SELECT slot_ids FROM states WHERE id = ?1",
            [id_bytes(&case1)],
            |r| r.get(0),
        )
        .unwrap();
    let (first, second) = (list[..32].to_vec(), list[32..64].to_vec());
    list[..32].copy_from_slice(&second);
    list[32..64].copy_from_slice(&first);
    db.execute(
        "UPDATE states SET slot_ids = ?1 WHERE id = ?2",
        rusqlite::params![list, id_bytes(&case1)],
    )
    .unwrap();
    db.execute(
        "INSERT INTO tags (name, state, updated_at) VALUES ('dangling', ?1, 0)",
        [vec![7u8; 32]],
    )
    .unwrap();

    let (code, problems) = verify_problems(&env);
    assert_eq!(code, 3);
    assert!(
        problems
            .iter()
            .any(|p| p["kind"] == "state" && p["id"] == case1.as_str()),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p["kind"] == "tag" && p["id"] == "dangling"),
        "{problems:?}"
    );
    let human = env.run(&["verify"]);
    assert!(
        human.stdout.contains("problem(s) found"),
        "{}",
        human.stdout
    );
    env.fails(&["restore", "case1/end"], 1, &case1);
    env.fails(&["restore", "dangling"], 1, "not found");
}

#[test]
fn predictions_do_not_depend_on_the_thread_count_and_audit_across_them() {
    let x = fixture("x_test.safetensors");
    let mut results = Vec::new();
    for threads in ["1", "2"] {
        let env = Env::new();
        env.import_reference("keras", "ref");
        let start = env.reference_state_file("case1");
        env.ok(&["import", s(&start), "--tag", "trained"]);
        env.ok(&["restore", "trained"]);
        let out = env.json(&["--threads", threads, "predict", "--input", s(&x)]);
        results.push((out["output"].clone(), out["state_after"].clone()));
        let other = if threads == "1" { "2" } else { "1" };
        let audit = env.run(&["--threads", other, "audit"]);
        assert_eq!(audit.code, 0, "{}{}", audit.stdout, audit.stderr);
        assert!(audit.stdout.contains("1 reproduced"), "{}", audit.stdout);
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn a_numeric_mismatch_reports_ulps_and_tolerance_accepts_it() {
    let env = Env::new();
    env.import_reference("torch", "ref");
    let x = fixture("x_test.safetensors");
    let out = env.json(&["predict", "--input", s(&x)]);
    // Record a different output: one probability moved by one ULP.
    let db = env.db();
    let old = out["output"].as_str().unwrap();
    let bytes: Vec<u8> = db
        .query_row(
            "SELECT bytes FROM objects WHERE id = ?1",
            [id_bytes(old)],
            |r| r.get(0),
        )
        .unwrap();
    let mut file = statectl::tensors::TensorFile::decode(&bytes).unwrap();
    let outputs = file.tensors.get_mut("outputs").unwrap();
    outputs.data[27 + 5] = f32::from_bits(outputs.data[27 + 5].to_bits() + 1);
    let new_bytes = file.encode();
    let new_id = statectl::id::Digest::of(&[&new_bytes]);
    db.execute(
        "INSERT INTO objects (id, bytes) VALUES (?1, ?2)",
        rusqlite::params![new_id.0.to_vec(), new_bytes],
    )
    .unwrap();
    db.execute(
        "UPDATE events SET output = ?1 WHERE output = ?2",
        rusqlite::params![new_id.0.to_vec(), id_bytes(old)],
    )
    .unwrap();

    let (code, report) = audit_json(&env, &[]);
    assert_eq!(code, 3);
    let diff = &report["events"][0]["differences"][0];
    assert_eq!(
        (
            diff["tensor"].as_str(),
            diff["slot"].as_u64(),
            diff["max_ulps"].as_u64()
        ),
        (Some("outputs"), Some(1), Some(1))
    );
    assert!(report["events"][0]["recorded_platform"]["threads"].is_number());
    let (code, tolerant) = audit_json(&env, &["--tolerance", "1e-6"]);
    assert_eq!(code, 0);
    assert_eq!(tolerant["within_tolerance"], 1);
}

#[test]
fn the_scripted_audit_example_passes() {
    let env = Env::new();
    let stdout = env.run_example("audit.sh");
    assert!(stdout.contains("4 reproduced bit for bit"), "{stdout}");
    assert!(
        stdout.contains("training of 'audited': reproduced"),
        "{stdout}"
    );
    // The script really checks: the store it audited is intact and complete.
    assert_eq!(env.json(&["audit"])["reproduced"], 4);
}
