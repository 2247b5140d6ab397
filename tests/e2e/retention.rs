//! A replay buffer's bound: `gc --keep-newest N --prefix P` keeps the N
//! newest tags under P and drops the rest with the states only they named,
//! so an actor loop that adds states and runs gc stays bounded.

use statectl::tensors::Tensor;

use crate::util::*;

/// Imports `slots` distinct one-slot states tagged `buf/<round>-<k>`.
fn add_round(env: &Env, round: usize, slots: usize) {
    let h = Tensor::new(
        vec![slots, 4],
        (0..slots * 4).map(|i| (round * 1000 + i) as f32).collect(),
    );
    let file = env.write_tensors(&format!("round{round}.safetensors"), &[("l0.h", h)]);
    let prefix = format!("buf/r{round:03}-");
    env.ok(&["import", s(&file), "--per-slot", "--tag-prefix", &prefix]);
}

fn tags_under(env: &Env, prefix: &str) -> Vec<String> {
    let listed = env.json(&["tag", "list"]);
    let mut names: Vec<String> = listed["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap().to_string())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

fn state_count(env: &Env) -> u64 {
    env.json(&["status"])["states"].as_u64().unwrap()
}

#[test]
fn gc_keeps_the_newest_tags_under_a_prefix_and_frees_the_rest() {
    let env = Env::new();
    for round in 1..=5 {
        add_round(&env, round, 4);
    }
    // One old state is also kept under a name outside the buffer.
    env.ok(&["snapshot", "buf/r001-0", "--tag", "keep-me"]);
    let before = state_count(&env);

    let fingerprint = env.fingerprint();
    let dry = env.json(&["gc", "--keep-newest", "8", "--prefix", "buf/", "--dry-run"]);
    assert_eq!(dry["retention"]["tags_dropped"], 12);
    assert_eq!(dry["states"].as_array().unwrap().len(), 11, "{dry}");
    assert_eq!(
        env.fingerprint(),
        fingerprint,
        "a dry run changed the store"
    );

    let text = env.ok(&["gc", "--keep-newest", "8", "--prefix", "buf/"]);
    assert!(text.is_empty() || !text.contains("error"));
    let kept = tags_under(&env, "buf/");
    let expected: Vec<String> = (4..=5)
        .flat_map(|r| (0..4).map(move |k| format!("buf/r{r:03}-{k}")))
        .collect();
    assert_eq!(kept, expected);
    // The state a tag outside the prefix names stays; the rest went.
    assert_eq!(state_count(&env), before - 11);
    env.ok(&["show", "keep-me"]);
    env.fails(&["show", "buf/r002-1"], 1, "buf/r002-1");
    env.ok(&["verify"]);
    let log = env.json(&["log", "--all", "--kind", "retention"]);
    let events = log["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{log}");
    assert_eq!(events[0]["detail"]["tags_dropped"], 12);
}

#[test]
fn an_actor_loop_with_gc_stays_bounded() {
    let env = Env::new();
    let mut counts = Vec::new();
    for round in 1..=12 {
        add_round(&env, round, 3);
        env.ok(&["gc", "--keep-newest", "6", "--prefix", "buf/"]);
        counts.push(state_count(&env));
    }
    // After the first two rounds the buffer holds the newest six states.
    assert!(counts[2..].iter().all(|&n| n == 6), "{counts:?}");
    env.ok(&["verify"]);
}

#[test]
fn retention_without_its_other_half_or_with_a_bad_prefix_is_refused() {
    let env = Env::new();
    add_round(&env, 1, 2);
    env.fails(&["gc", "--keep-newest", "3"], 2, "--prefix");
    env.fails(&["gc", "--prefix", "buf/"], 2, "--keep-newest");
    env.fails(&["gc", "--keep-newest", "-1", "--prefix", "buf/"], 2, "-1");
    env.fails(
        &["gc", "--keep-newest", "1", "--prefix", "HEAD~"],
        1,
        "HEAD~",
    );
    // Keeping more than there are drops nothing.
    let report = env.json(&["gc", "--keep-newest", "10", "--prefix", "buf/"]);
    assert_eq!(report["retention"]["tags_dropped"], 0);
    assert_eq!(tags_under(&env, "buf/").len(), 2);
    // Wildcards in the prefix are literal: `buf_` does not match `bufX`.
    let report = env.json(&["gc", "--keep-newest", "0", "--prefix", "buf_"]);
    assert_eq!(report["retention"]["tags_dropped"], 0);
    assert_eq!(tags_under(&env, "buf/").len(), 2);
}
