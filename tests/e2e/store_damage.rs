//! A damaged or shared store folder is refused, never "repaired" by
//! creating things: a folder with store data but no database, a missing or
//! truncated pack, links where the store's own folders or files belong, a
//! FIFO in a pack's place. Each case: the exit code, one clear line, the
//! store unchanged, and nothing outside the store touched (a sentinel).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::packs::bulk_file;
use super::util::*;

/// Runs the binary with a deadline: a command that would hang (a FIFO read)
/// fails the test instead of stalling the suite.
fn run_bounded(store: &Path, args: &[&str]) -> Run {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("statectl"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("STATECTL_STORE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("statectl {args:?} hung for 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A store with a model (a weights file) and 30 packed one-slot states.
fn packed_store(env: &Env) -> PathBuf {
    env.ok(&["demo"]);
    let file = bulk_file(env, "a.safetensors", 30, 0.0);
    env.ok(&["import", s(&file), "--per-slot", "--tag-prefix", "a/"]);
    file
}

fn everything_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in walkdir(dir) {
        files.push((entry.clone(), std::fs::read(&entry).unwrap_or_default()));
    }
    files.sort();
    files
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                out.extend(walkdir(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn a_folder_with_store_data_but_no_database_is_refused_and_nothing_is_created() {
    for empty_instead_of_missing in [false, true] {
        let env = Env::new();
        let file = packed_store(&env);
        for name in ["statectl.db", "statectl.db-wal", "statectl.db-shm"] {
            let _ = std::fs::remove_file(env.store().join(name));
        }
        if empty_instead_of_missing {
            std::fs::write(env.store().join("statectl.db"), b"").unwrap();
        }
        let before = everything_under(&env.store());
        for args in [
            vec!["import", s(&file), "--per-slot", "--tag-prefix", "b/"],
            vec!["demo"],
            vec!["verify"],
            vec!["gc"],
            vec!["tag", "list"],
        ] {
            let run = env.run(&args);
            assert_eq!(run.code, 1, "{args:?}: {}{}", run.stdout, run.stderr);
            assert!(
                run.stderr.contains("the store is damaged, not new")
                    && run.stderr.contains("restore statectl.db from a backup"),
                "{args:?}: {}",
                run.stderr
            );
            assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
            assert_eq!(
                everything_under(&env.store()),
                before,
                "{args:?} changed the folder"
            );
        }
    }
}

#[test]
fn new_bytes_never_go_where_a_missing_or_truncated_pack_had_its_slots() {
    for truncate in [false, true] {
        let env = Env::new();
        packed_store(&env);
        let pack = env.store().join("packs/1.pack");
        let backup = std::fs::read(&pack).unwrap();
        if truncate {
            std::fs::write(&pack, &backup[..backup.len() / 2]).unwrap();
        } else {
            std::fs::remove_file(&pack).unwrap();
        }
        // verify names the damage.
        let run = env.run(&["verify"]);
        assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("bytes unreadable from pack 1"),
            "{}",
            run.stdout
        );
        // New states go to a new pack.
        let b = bulk_file(&env, "b.safetensors", 10, 5.0);
        env.ok(&["import", s(&b), "--per-slot", "--tag-prefix", "b/"]);
        assert!(env.store().join("packs/2.pack").exists());
        // Putting the backup back makes the store whole, both imports intact.
        std::fs::write(&pack, &backup).unwrap();
        assert_eq!(env.json(&["verify"])["ok"], true, "truncate={truncate}");
        let out = env.path("out.safetensors");
        env.ok(&["export", "a/29", "b/9", "-o", s(&out)]);
    }
}

#[test]
fn a_linked_packs_or_weights_folder_is_refused_and_the_other_store_is_untouched() {
    let env = Env::new();
    packed_store(&env);
    let victim = everything_under(&env.store());
    for folder in ["packs", "weights"] {
        let other = Env::new();
        other.ok(&["init"]);
        let link = other.store().join(folder);
        std::fs::remove_dir_all(&link).ok();
        std::os::unix::fs::symlink(env.store().join(folder), &link).unwrap();
        for args in [
            vec!["gc"],
            vec!["verify"],
            vec!["demo"],
            vec!["tag", "list"],
        ] {
            let run = other.run(&args);
            assert_eq!(
                run.code, 1,
                "{folder} {args:?}: {}{}",
                run.stdout, run.stderr
            );
            assert!(
                run.stderr.contains("is a symbolic link")
                    && run.stderr.contains("replace the link with a copy"),
                "{}",
                run.stderr
            );
        }
        assert_eq!(everything_under(&env.store()), victim, "{folder}");
    }
}

#[test]
fn a_pack_file_that_is_a_link_or_a_fifo_is_never_followed_or_waited_on() {
    for kind in ["link", "fifo"] {
        let env = Env::new();
        packed_store(&env);
        let outside = env.path("outside.bin");
        std::fs::write(&outside, b"sentinel").unwrap();
        let pack = env.store().join("packs/1.pack");
        let real = std::fs::read(&pack).unwrap();
        std::fs::remove_file(&pack).unwrap();
        match kind {
            "link" => std::os::unix::fs::symlink(&outside, &pack).unwrap(),
            _ => {
                let made = std::process::Command::new("mkfifo")
                    .arg(&pack)
                    .status()
                    .unwrap();
                assert!(made.success());
            }
        }
        // Reading a state of that pack fails at once, naming the file.
        let run = run_bounded(&env.store(), &["show", "a/3"]);
        assert_eq!(run.code, 1, "{kind}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains("1.pack"), "{kind}: {}", run.stderr);
        // verify reports it; gc refuses to collect around it.
        let run = run_bounded(&env.store(), &["verify"]);
        assert_eq!(run.code, 3, "{kind}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("is not a regular file"),
            "{kind}: {}",
            run.stdout
        );
        let run = run_bounded(&env.store(), &["gc"]);
        assert_eq!(run.code, 1, "{kind}: {}", run.stderr);
        // An import goes to a new pack and never writes through the link.
        let b = bulk_file(&env, "b.safetensors", 10, 5.0);
        let run = run_bounded(
            &env.store(),
            &["import", s(&b), "--per-slot", "--tag-prefix", "b/"],
        );
        assert_eq!(run.code, 0, "{kind}: {}", run.stderr);
        assert_eq!(std::fs::read(&outside).unwrap(), b"sentinel");
        // The real file back: whole again.
        std::fs::remove_file(&pack).unwrap();
        std::fs::write(&pack, &real).unwrap();
        assert_eq!(env.json(&["verify"])["ok"], true, "{kind}");
    }
}

#[test]
fn a_pack_row_with_an_impossible_length_is_reported_not_allocated() {
    let env = Env::new();
    packed_store(&env);
    let state = env.json(&["show", "a/3"]);
    let slot = state["slots"][0].as_str().unwrap().to_string();
    {
        let db = env.db();
        let changed = db
            .execute(
                "UPDATE slots SET pack_length = ?1 WHERE id = ?2",
                rusqlite::params![1i64 << 60, id_bytes(&slot)],
            )
            .unwrap();
        assert_eq!(changed, 1);
        // The state's own hint to its slot's place goes too, so the read
        // must go through the slot's row.
        db.execute(
            "UPDATE states SET slot_pack = NULL, slot_offset = NULL WHERE id = ?1",
            [id_bytes(state["state"].as_str().unwrap())],
        )
        .unwrap();
    }
    let before = env.fingerprint();

    let shown = run_bounded(&env.store(), &["--json", "show", "a/3"]);
    assert_eq!(shown.code, 1, "{}", shown.stderr);
    let error: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(error["error"]["kind"], "corrupt", "{}", shown.stdout);
    assert!(
        shown.stdout.contains("holds") && shown.stdout.contains("statectl verify"),
        "{}",
        shown.stdout
    );

    let verified = run_bounded(&env.store(), &["--json", "verify"]);
    assert_eq!(verified.code, 3, "{}", verified.stderr);
    let report: serde_json::Value = serde_json::from_str(&verified.stdout).unwrap();
    let problems = report["report"]["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["id"].as_str().unwrap_or("").contains(&slot[..12])),
        "{problems:?}"
    );
    // The other states read as before, and nothing changed.
    env.ok(&["show", "a/4"]);
    assert_eq!(env.fingerprint(), before);
}
