//! A build without the `candle` feature (`cargo test --no-default-features
//! --test lean_build`): it reads, verifies and predicts with the fused
//! kernels, and refuses kernel `candle` by name, changing nothing. The
//! default build replays those events (tests/e2e).
#![cfg(not(feature = "candle"))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The fixture store `name` copied into a temp folder.
fn old_store(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    copy_tree(&fixture(name), &store);
    (dir, store)
}

fn statectl(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_statectl"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("STATECTL_STORE")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file of the store with its bytes.
fn snapshot(store: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut folders = vec![store.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push((path.clone(), std::fs::read(path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

const NOT_BUILT: &str = "without the `candle` feature";

#[test]
fn an_old_store_verifies_and_its_candle_events_are_refused_by_name() {
    let (_dir, store) = old_store("schema1_store");
    let verify = statectl(&store, &["verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    let before = snapshot(&store);
    let audit = statectl(&store, &["audit"]);
    let said = text(&audit);
    assert_ne!(audit.status.code(), Some(0), "{said}");
    assert!(said.contains(NOT_BUILT), "{said}");
    assert!(said.contains("cargo install --locked --path ."), "{said}");
    assert_eq!(before, snapshot(&store), "audit changed the store");
}

#[test]
fn training_with_kernel_candle_is_refused_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let refused = statectl(
        &store,
        &[
            "train", "--name", "m", "--epochs", "1", "--kernel", "candle",
        ],
    );
    let said = text(&refused);
    assert_ne!(refused.status.code(), Some(0), "{said}");
    assert!(said.contains(NOT_BUILT), "{said}");
    assert!(!store.exists(), "a refused run created {}", store.display());
}

#[test]
fn the_fused_kernels_predict_and_audit_without_candle() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let demo = statectl(&store, &["demo"]);
    assert!(demo.status.success(), "{}", text(&demo));
    let audit = statectl(&store, &["audit"]);
    let said = text(&audit);
    assert!(audit.status.success(), "{said}");
    assert!(said.contains("reproduced"), "{said}");
}
