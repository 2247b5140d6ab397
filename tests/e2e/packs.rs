//! Slot packs: large slots of bulk imports live in `packs/<n>.pack`; they
//! read back bit for bit, survive gc (which compacts mostly-dead packs),
//! and damage to a pack is found by verify.

use statectl::tensors::{Tensor, TensorFile};

use crate::util::*;

const UNITS: usize = 256; // one slot: 2 x 256 floats = 2 KiB, packed

/// A file of `n` one-slot LSTM-256 states whose values depend on `seed`.
pub(crate) fn bulk_file(env: &Env, name: &str, n: usize, seed: f32) -> std::path::PathBuf {
    let values = |k: f32| -> Vec<f32> {
        (0..n * UNITS)
            .map(|i| (i as f32 * 0.37 + k + seed).sin() * 0.9)
            .collect()
    };
    env.write_tensors(
        name,
        &[
            ("l0.h", Tensor::new(vec![n, UNITS], values(0.0))),
            ("l0.c", Tensor::new(vec![n, UNITS], values(1.0))),
        ],
    )
}

fn exported_row(env: &Env, reference: &str) -> (Vec<f32>, Vec<f32>) {
    let out = env.path("out.safetensors");
    env.ok(&["export", reference, "-o", s(&out)]);
    let file = TensorFile::decode(&std::fs::read(&out).unwrap()).unwrap();
    (
        file.tensors["l0.h"].data.clone(),
        file.tensors["l0.c"].data.clone(),
    )
}

fn source_row(path: &std::path::Path, row: usize) -> (Vec<f32>, Vec<f32>) {
    let file = TensorFile::decode(&std::fs::read(path).unwrap()).unwrap();
    let slice = |t: &Tensor| t.data[row * UNITS..(row + 1) * UNITS].to_vec();
    (slice(&file.tensors["l0.h"]), slice(&file.tensors["l0.c"]))
}

pub(crate) fn pack_sizes(env: &Env) -> Vec<(String, u64)> {
    let mut packs: Vec<(String, u64)> = std::fs::read_dir(env.store().join("packs"))
        .map(|d| {
            d.map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect()
        })
        .unwrap_or_default();
    packs.sort();
    packs
}

#[test]
fn packed_slots_read_back_bit_for_bit_and_gc_compacts_their_pack() {
    let env = Env::new();
    let a = bulk_file(&env, "a.safetensors", 300, 0.0);
    let b = bulk_file(&env, "b.safetensors", 200, 5.0);
    env.ok(&["import", s(&a), "--per-slot", "--tag-prefix", "a/"]);
    env.ok(&["import", s(&b), "--per-slot", "--tag-prefix", "b/"]);
    // The bytes went to one pack, once each; the rows hold none.
    let slot_bytes = 2 * UNITS as u64 * 4;
    assert_eq!(pack_sizes(&env), vec![("1.pack".into(), 500 * slot_bytes)]);
    let inline: i64 = env
        .db()
        .query_row("SELECT sum(length(bytes)) FROM slots", [], |r| r.get(0))
        .unwrap();
    assert_eq!(inline, 0);
    for (tag, file, row) in [("a/0", &a, 0), ("a/299", &a, 299), ("b/7", &b, 7)] {
        assert_eq!(exported_row(&env, tag), source_row(file, row), "{tag}");
    }
    // Importing the same slots again stores nothing new.
    env.ok(&["import", s(&a), "--per-slot", "--tag-prefix", "again/"]);
    assert_eq!(pack_sizes(&env), vec![("1.pack".into(), 500 * slot_bytes)]);
    assert_eq!(env.json(&["verify"])["ok"], true);

    // Drop the journal and every tag but b/*: a's slots die, and the pack,
    // now mostly dead, is rewritten with b's slots alone.
    for prefix in ["a", "again"] {
        for i in 0..300 {
            env.ok(&["-q", "tag", "delete", &format!("{prefix}/{i}")]);
        }
    }
    assert_eq!(states_with_hints_off_their_slot(&env), (500, 0));
    let report = env.json(&["gc", "--keep-events-since", "0s"]);
    assert_eq!(report["slots"], 300, "{report}");
    assert_eq!(pack_sizes(&env), vec![("2.pack".into(), 200 * slot_bytes)]);
    // The states left remember their slots' new places.
    assert_eq!(states_with_hints_off_their_slot(&env), (200, 0));
    for row in [0, 7, 199] {
        assert_eq!(
            exported_row(&env, &format!("b/{row}")),
            source_row(&b, row),
            "b/{row}"
        );
    }
    let verify = env.json(&["verify"]);
    assert_eq!(verify["ok"], true, "{verify}");
    assert_eq!(verify["report"]["leftovers"], serde_json::json!([]));
    // A later import appends to the new pack.
    env.ok(&["import", s(&a), "--per-slot", "--tag-prefix", "a2/"]);
    assert_eq!(pack_sizes(&env), vec![("2.pack".into(), 500 * slot_bytes)]);
    assert_eq!(exported_row(&env, "a2/42"), source_row(&a, 42));
}

/// States whose remembered place in a pack (schema 7) is not where the
/// slot's row says its bytes are.
fn states_with_hints_off_their_slot(env: &Env) -> (i64, i64) {
    env.db()
        .query_row(
            "SELECT count(s.slot_pack), count(s.slot_pack) - count(l.id) FROM states s \
             LEFT JOIN slots l ON l.id = s.slot_ids AND l.pack = s.slot_pack AND l.pack_offset = s.slot_offset",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

#[test]
fn one_slot_states_remember_their_slots_place_and_a_wrong_place_is_never_trusted() {
    let env = Env::new();
    let a = bulk_file(&env, "a.safetensors", 40, 2.0);
    env.ok(&["import", s(&a), "--per-slot", "--tag-prefix", "a/"]);
    // Rows repeated in one import and rows already stored break the runs
    // of new slots; every state still remembers its own slot's place.
    let twice = env.write_tensors(
        "twice.safetensors",
        &[
            (
                "l0.h",
                Tensor::new(
                    vec![3, UNITS],
                    [source_row(&a, 5).0, vec![0.25; UNITS], vec![0.25; UNITS]].concat(),
                ),
            ),
            (
                "l0.c",
                Tensor::new(
                    vec![3, UNITS],
                    [source_row(&a, 5).1, vec![0.5; UNITS], vec![0.5; UNITS]].concat(),
                ),
            ),
        ],
    );
    env.ok(&["import", s(&twice), "--per-slot", "--tag-prefix", "t/"]);
    let (hinted, off) = states_with_hints_off_their_slot(&env);
    assert_eq!((hinted, off), (41, 0), "40 + the one new slot of t/");
    assert_eq!(exported_row(&env, "t/2").0, vec![0.25; UNITS]);

    // Wrong places: another state's slot, a pack that does not exist, an
    // offset past the pack's end. Each read falls back to the slot's row
    // (the bytes must hash to the slot), so every state reads right.
    let db = env.db();
    let place = |tag: &str| -> (i64, i64) {
        db.query_row(
            "SELECT s.slot_pack, s.slot_offset FROM states s JOIN tags t ON t.state = s.id WHERE t.name = ?1",
            [tag],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    let set = |tag: &str, (pack, offset): (i64, i64)| {
        db.execute(
            "UPDATE states SET slot_pack = ?2, slot_offset = ?3 WHERE id = (SELECT state FROM tags WHERE name = ?1)",
            rusqlite::params![tag, pack, offset],
        )
        .unwrap();
    };
    set("a/0", place("a/1"));
    set("a/2", (99, 0));
    set("a/3", (1, 1 << 40));
    drop(db);
    assert_eq!(states_with_hints_off_their_slot(&env).1, 3);
    for row in [0, 1, 2, 3, 39] {
        assert_eq!(
            exported_row(&env, &format!("a/{row}")),
            source_row(&a, row),
            "a/{row}"
        );
    }
    assert_eq!(env.json(&["verify"])["ok"], true);
}

#[test]
fn damage_to_a_pack_is_found_by_verify_and_refused_on_read() {
    let env = Env::new();
    let a = bulk_file(&env, "a.safetensors", 20, 1.0);
    env.ok(&["import", s(&a), "--per-slot", "--tag-prefix", "a/"]);
    let pack = env.store().join("packs/1.pack");
    let mut bytes = std::fs::read(&pack).unwrap();
    let slot_bytes = 2 * UNITS * 4;
    // One bit of one slot (which slot depends on the key order).
    bytes[3 * slot_bytes + 100] ^= 0x01;
    std::fs::write(&pack, &bytes).unwrap();
    let verify = env.run(&["--json", "verify"]);
    assert_eq!(verify.code, 3, "{}", verify.stdout);
    let report: serde_json::Value = serde_json::from_str(&verify.stdout).unwrap();
    let problems = report["report"]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{report}");
    assert_eq!(problems[0]["kind"], "slot");
    let damaged = problems[0]["id"].as_str().unwrap().to_string();
    // Reading the one state that holds it is refused, naming the slot;
    // the others read; gc refuses to run.
    let refused: Vec<String> = (0..20)
        .map(|i| format!("a/{i}"))
        .filter(|t| env.run(&["show", t]).code != 0)
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    env.fails(&["show", &refused[0]], 1, &damaged[..12]);
    env.fails(&["gc"], 1, "gc refuses to run");

    // A pack cut short: the slots past the cut are unreadable.
    std::fs::write(&pack, &bytes[..5 * slot_bytes]).unwrap();
    let verify = env.run(&["--json", "verify"]);
    assert_eq!(verify.code, 3);
    assert!(
        verify.stdout.contains("unreadable from pack 1"),
        "{}",
        verify.stdout
    );
}

#[test]
fn a_pack_nothing_references_is_a_leftover_that_gc_removes() {
    let env = Env::new();
    let a = bulk_file(&env, "a.safetensors", 10, 2.0);
    env.ok(&["import", s(&a), "--per-slot", "--tag-prefix", "a/"]);
    // What a killed compaction leaves: a newer pack that no row names.
    std::fs::write(env.store().join("packs/7.pack"), vec![0u8; 4096]).unwrap();
    let verify = env.json(&["verify"]);
    assert_eq!(verify["ok"], true);
    let leftovers = verify["report"]["leftovers"].as_array().unwrap();
    assert_eq!(leftovers.len(), 1, "{verify}");
    assert!(leftovers[0].as_str().unwrap().ends_with("7.pack"));
    env.ok(&["gc"]);
    assert_eq!(pack_sizes(&env).len(), 1);
    assert_eq!(
        env.json(&["verify"])["report"]["leftovers"],
        serde_json::json!([])
    );
    assert_eq!(exported_row(&env, "a/3"), source_row(&a, 3));
}

/// A file of `n` one-slot states in which row i holds the values of row
/// `i % distinct` (so later rows repeat earlier ones), and row `nan_at`,
/// if any, holds a NaN.
fn repeating_file(
    env: &Env,
    name: &str,
    rows: std::ops::Range<usize>,
    distinct: usize,
    nan_at: Option<usize>,
) -> std::path::PathBuf {
    let n = rows.len();
    let values = |k: f32| -> Vec<f32> {
        let mut v = Vec::with_capacity(n * UNITS);
        for row in rows.clone() {
            let source = row % distinct;
            v.extend((0..UNITS).map(|u| ((source * UNITS + u) as f32 * 0.37 + k).sin()));
        }
        v
    };
    let mut h = values(0.0);
    if let Some(row) = nan_at {
        h[row * UNITS + 3] = f32::NAN;
    }
    env.write_tensors(
        name,
        &[
            ("l0.h", Tensor::new(vec![n, UNITS], h)),
            ("l0.c", Tensor::new(vec![n, UNITS], values(1.0))),
        ],
    )
}

#[test]
fn a_many_band_import_writes_each_new_slot_once_and_a_bad_later_band_changes_nothing() {
    // Three bands of 4,096 slots, read and hashed ahead of the writes;
    // rows from 5,000 on repeat earlier ones, and rows 100-110 are in the
    // store already, so the pack gets each distinct slot once, in runs.
    let env = Env::new();
    let (n, distinct) = (2 * 4096 + 50, 5000);
    let stored = repeating_file(&env, "stored.safetensors", 100..111, distinct, None);
    env.ok(&["import", s(&stored), "--per-slot", "--tag-prefix", "old/"]);
    let file = repeating_file(&env, "many.safetensors", 0..n, distinct, None);
    let report = env.json(&["import", s(&file), "--per-slot", "--tag-prefix", "m/"]);
    let slot_bytes = 2 * UNITS as u64 * 4;
    assert_eq!(
        pack_sizes(&env),
        vec![("1.pack".into(), distinct as u64 * slot_bytes)]
    );
    for row in [0, 105, 4095, 4096, 4999, 5000, 6105, n - 1] {
        assert_eq!(
            exported_row(&env, &format!("m/{row}")),
            source_row(&file, row),
            "m/{row}"
        );
    }
    // Repeated rows are the same state; a row stored before keeps its id.
    let states = report["states"].as_array().unwrap();
    assert_eq!(states[6105]["state"], states[1105]["state"]);
    assert_eq!(
        env.json(&["show", "m/105"])["state"],
        env.json(&["show", "old/5"])["state"]
    );
    assert_eq!(env.json(&["verify"])["ok"], true);

    // A NaN in the last band: the import stops after two bands were
    // written to the pack, and rolls back the rows and the pack both.
    let bad = repeating_file(&env, "bad.safetensors", 0..n, n, Some(n - 3));
    let packs = pack_sizes(&env);
    env.fails(
        &["import", s(&bad), "--per-slot", "--tag-prefix", "bad/"],
        1,
        &format!("slot {} holds NaN", n - 3),
    );
    assert_eq!(pack_sizes(&env), packs);
    assert_eq!(env.json(&["verify"])["ok"], true);
}

#[test]
fn a_failed_first_bulk_write_leaves_no_pack_behind() {
    // The first large-slot import of a store creates `packs/1.pack`; when
    // it fails, the file and the folder go again with the transaction.
    let env = Env::new();
    env.ok(&["init"]);
    let bad = repeating_file(&env, "bad.safetensors", 0..50, 50, Some(49));
    env.fails(
        &["import", s(&bad), "--per-slot", "--tag-prefix", "bad/"],
        1,
        "slot 49 holds NaN",
    );
    assert!(
        !env.store().join("packs").exists(),
        "a failed import left {:?}",
        pack_sizes(&env)
    );
    // The next import creates them as usual.
    let good = repeating_file(&env, "good.safetensors", 0..50, 50, None);
    env.ok(&["import", s(&good), "--per-slot", "--tag-prefix", "good/"]);
    assert_eq!(
        pack_sizes(&env),
        vec![("1.pack".into(), 50 * 2 * UNITS as u64 * 4)]
    );
    assert_eq!(env.json(&["verify"])["ok"], true);
}

#[test]
fn a_gc_killed_between_its_commit_and_deleting_the_old_packs_leaves_a_sound_store() {
    // The moment after gc's compaction committed and before it deleted the
    // packs it emptied: the new pack holds the live slots, the old packs
    // are still on disk and nothing names them. Made exactly by putting
    // the old packs back after a gc.
    let env = Env::new();
    let live = bulk_file(&env, "live.safetensors", 30, 0.0);
    env.ok(&["import", s(&live), "--per-slot", "--tag-prefix", "keep/"]);
    let dead = bulk_file(&env, "dead.safetensors", 100, 3.0);
    env.ok(&["import", s(&dead), "--per-slot"]);
    let old: Vec<(std::path::PathBuf, Vec<u8>)> = pack_sizes(&env)
        .into_iter()
        .map(|(name, _)| {
            let path = env.store().join("packs").join(name);
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    env.ok(&["gc", "--keep-events-since", "0s"]);
    let after: Vec<String> = pack_sizes(&env).into_iter().map(|(n, _)| n).collect();
    assert!(
        old.iter()
            .all(|(p, _)| !after.contains(&p.file_name().unwrap().to_string_lossy().into_owned())),
        "gc did not compact: {after:?}"
    );
    for (path, bytes) in &old {
        std::fs::write(path, bytes).unwrap();
    }
    let verify = env.json(&["verify"]);
    assert_eq!(verify["ok"], true, "{verify}");
    assert_eq!(
        verify["report"]["leftovers"].as_array().unwrap().len(),
        old.len(),
        "{verify}"
    );
    for i in [0, 17, 29] {
        assert_eq!(
            exported_row(&env, &format!("keep/{i}")),
            source_row(&live, i)
        );
    }
    // New bytes go after the live pack's committed end, never into an old one.
    let more = bulk_file(&env, "more.safetensors", 5, 9.0);
    env.ok(&["import", s(&more), "--per-slot", "--tag-prefix", "more/"]);
    env.ok(&["gc"]);
    let verify = env.json(&["verify"]);
    assert_eq!(verify["ok"], true, "{verify}");
    assert_eq!(verify["report"]["leftovers"], serde_json::json!([]));
    assert_eq!(exported_row(&env, "more/4"), source_row(&more, 4));
    assert_eq!(exported_row(&env, "keep/3"), source_row(&live, 3));
}

#[test]
fn dead_bytes_a_killed_write_left_in_a_pack_are_reported_and_reclaimed() {
    let env = Env::new();
    let a = bulk_file(&env, "a.safetensors", 20, 0.0);
    env.ok(&["import", s(&a), "--per-slot", "--tag-prefix", "a/"]);
    let pack = env.store().join("packs/1.pack");
    let committed = std::fs::metadata(&pack).unwrap().len();
    let killed_tail = |bytes: usize| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&pack)
            .unwrap();
        f.write_all(&vec![7u8; bytes]).unwrap();
    };
    // What a bulk write killed before its commit leaves: bytes past the end.
    killed_tail(100 << 10);
    let verify = env.json(&["verify"]);
    assert_eq!(verify["ok"], true, "{verify}");
    assert_eq!(verify["report"]["pack_dead_bytes"], 100 << 10);
    assert!(env
        .ok(&["verify"])
        .contains("byte(s) in packs belong to no slot"));
    // The next bulk write drops the tail before it appends.
    let b = bulk_file(&env, "b.safetensors", 5, 4.0);
    env.ok(&["import", s(&b), "--per-slot", "--tag-prefix", "b/"]);
    assert_eq!(
        std::fs::metadata(&pack).unwrap().len(),
        committed + 5 * 2 * 256 * 4
    );
    assert_eq!(env.json(&["verify"])["report"]["pack_dead_bytes"], 0);
    // gc drops a tail too.
    killed_tail(50 << 10);
    let gc = env.json(&["gc"]);
    assert!(gc["bytes"].as_u64().unwrap() >= 50 << 10, "{gc}");
    assert_eq!(env.json(&["verify"])["report"]["pack_dead_bytes"], 0);
    assert_eq!(exported_row(&env, "a/7"), source_row(&a, 7));
    assert_eq!(exported_row(&env, "b/4"), source_row(&b, 4));
}
