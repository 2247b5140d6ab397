//! The JSON contract holds for the same inputs: the README tour, run with
//! `--json` on every `statectl` call, prints exactly the JSON recorded in
//! `tests/fixtures/golden_tour.json` (ids and all; only wall-clock times,
//! durations and the platform are masked). A change to any command's JSON
//! fails here; a deliberate one regenerates the file with
//! `STATECTL_BLESS=1 cargo test -j2 --test e2e json_golden` and says why in
//! its commit.

use std::path::PathBuf;

use crate::readme::{prepared_tour, TourBlocks};

/// Keys whose values depend on the clock, the machine or the folder the
/// tour runs in, not the inputs.
const MASKED: &[&str] = &[
    "at",
    "updated_at",
    "created_at",
    "started_at",
    "checkpoint_at",
    "store",
    "seconds",
    "platform",
    "recorded_platform",
];

fn mask(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if MASKED.contains(&key.as_str()) && !v.is_null() {
                    *v = serde_json::Value::String("<masked>".into());
                } else {
                    mask(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
    }
}

/// A `statectl` on PATH that runs the real one with `--json` and keeps each
/// call's arguments and stdout, one numbered file per call.
const RECORDER: &str = r#"#!/usr/bin/env bash
set -o pipefail
n=$(ls "$GOLDEN_DIR" | wc -l)
printf '%s\n' "$*" > "$GOLDEN_DIR/$(printf %04d "$n").argv"
"$REAL_STATECTL" --json "$@" | tee "$GOLDEN_DIR/$(printf %04d "$n").out"
"#;

#[test]
fn readme_tour_json_is_unchanged() {
    let tour: TourBlocks = prepared_tour();
    let calls = tour.env.path("calls");
    std::fs::create_dir_all(&calls).unwrap();
    let bin_dir = tour.env.path("recorder");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let recorder = bin_dir.join("statectl");
    std::fs::write(&recorder, RECORDER).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&recorder, std::fs::Permissions::from_mode(0o755)).unwrap();

    // The shared store's blocks name a per-test database; their JSON is
    // checked by tests/e2e/shared_store.rs.
    for block in tour
        .blocks
        .iter()
        .filter(|b| !b.contains(crate::readme::SHARED_STORE))
    {
        // The example scripts read the CLI's human output; they run
        // unrecorded in the README test.
        let block: String = block
            .lines()
            .filter(|l| !l.contains("bash examples/"))
            .map(|l| format!("{l}\n"))
            .collect();
        tour.run_block(
            &block,
            &bin_dir,
            &[
                ("GOLDEN_DIR", calls.as_os_str()),
                ("REAL_STATECTL", tour.bin.as_os_str()),
            ],
        );
    }

    let mut names: Vec<PathBuf> = std::fs::read_dir(&calls)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "argv"))
        .collect();
    names.sort();
    let recorded: Vec<serde_json::Value> = names
        .iter()
        .map(|argv| {
            let args = std::fs::read_to_string(argv).unwrap();
            let text = std::fs::read_to_string(argv.with_extension("out")).unwrap();
            let mut json: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
                panic!("`statectl --json {args}` printed no JSON ({e}):\n{text}")
            });
            mask(&mut json);
            serde_json::json!({"args": args.trim_end(), "json": json})
        })
        .collect();
    assert!(
        recorded.len() >= 40,
        "the tour ran only {} commands",
        recorded.len()
    );

    let golden_path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden_tour.json");
    let text = serde_json::to_string_pretty(&recorded).unwrap() + "\n";
    if std::env::var_os("STATECTL_BLESS").is_some() {
        std::fs::write(&golden_path, &text).unwrap();
        return;
    }
    let golden: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(&golden_path).expect("tests/fixtures/golden_tour.json"),
    )
    .unwrap();
    assert_eq!(
        golden.len(),
        recorded.len(),
        "the tour ran a different number of commands"
    );
    for (want, got) in golden.iter().zip(&recorded) {
        assert_eq!(
            want,
            got,
            "`statectl --json {}` printed other JSON than recorded",
            want["args"].as_str().unwrap_or("?")
        );
    }
}
