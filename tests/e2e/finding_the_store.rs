//! Without `--store` or `$STATECTL_STORE`, statectl finds `.statectl` in the
//! current folder or a parent, as git finds `.git`, stopping after `$HOME`;
//! a store it creates is announced.

use std::path::Path;

use assert_cmd::Command;

use crate::util::*;

/// Runs statectl in `cwd` with no `--store`, no `$STATECTL_STORE`, and
/// `home` as `$HOME`.
fn run_in(cwd: &Path, home: &Path, args: &[&str]) -> Run {
    let out = Command::cargo_bin("statectl")
        .unwrap()
        .args(args)
        .current_dir(cwd)
        .env_remove("STATECTL_STORE")
        .env("HOME", home)
        .output()
        .unwrap();
    Run::from(out)
}

/// Imports the reference weights as model `name`, from `cwd`.
fn import(cwd: &Path, home: &Path, name: &str) -> Run {
    let weights = fixture("weights.keras_layout.safetensors");
    let args = [
        "model",
        "import",
        s(&weights),
        "--head",
        "softmax",
        "--name",
        name,
    ];
    let run = run_in(cwd, home, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run
}

#[test]
fn a_store_in_a_parent_folder_is_found_and_used() {
    let env = Env::new();
    let home = env.path("home");
    let project = home.join("project");
    let deep = project.join("src/notebooks");
    std::fs::create_dir_all(&deep).unwrap();
    // Created where the user stands, and said so.
    let made = import(&project, &home, "m");
    assert!(
        made.stderr.contains("created a new store at .statectl"),
        "{}",
        made.stderr
    );
    // From a subfolder: the project's store, for reads and for writes.
    let listed = run_in(&deep, &home, &["--json", "model", "list"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.stdout.contains("\"m\""), "{}", listed.stdout);
    let second = import(&deep, &home, "n");
    assert!(!second.stderr.contains("created"), "{}", second.stderr);
    assert!(!deep.join(".statectl").exists(), "a second store was made");
    let both = run_in(&project, &home, &["--json", "model", "list"]);
    assert!(both.stdout.contains("\"n\""), "{}", both.stdout);
}

#[test]
fn the_search_stops_at_home() {
    let env = Env::new();
    let above = env.path("above");
    let home = above.join("home");
    let inside = home.join("work");
    std::fs::create_dir_all(&inside).unwrap();
    let made = run_in(&above, &home, &["init", ".statectl"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    // A store above $HOME is not the user's: not found from inside it.
    let listed = run_in(&inside, &home, &["model", "list"]);
    assert_eq!(listed.code, 1, "{}", listed.stdout);
    assert!(
        listed.stderr.contains("no statectl store at .statectl"),
        "{}",
        listed.stderr
    );
    assert!(!inside.join(".statectl").exists());
}
