//! The README's command blocks are tested documentation: every ```sh block
//! (but the fresh-machine one, which is what CI itself runs) is run as
//! written, in order, in one store, from a copy of the repository's
//! `examples/` folder, with the built `statectl` first on `PATH`.

use std::path::{Path, PathBuf};

use crate::util::*;

/// The ```sh blocks of the README, in order.
fn sh_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn every_readme_command_block_runs_as_written() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks: Vec<String> = sh_blocks(&readme)
        .into_iter()
        // The setup blocks run elsewhere: the test command is this suite
        // (then it builds the Python package and runs its pytest), and
        // `pip install ./python` is what its `maturin develop` does.
        .filter(|b| {
            !b.contains("cargo run") && !b.contains("cargo test") && !b.contains("pip install")
        })
        .collect();
    assert!(blocks.len() >= 6, "the README lost its command blocks");

    let env = Env::new();
    let work = env.path("work");
    copy_dir(&root.join("examples"), &work.join("examples"));
    // `statectl` on PATH, and where the CI snippet expects the build.
    let bin = assert_cmd::cargo::cargo_bin("statectl");
    let bin_dir = env.path("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(&bin, bin_dir.join("statectl")).unwrap();
    std::fs::create_dir_all(work.join("target/debug")).unwrap();
    std::os::unix::fs::symlink(&bin, work.join("target/debug/statectl")).unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    for (i, block) in blocks.iter().enumerate() {
        let out = std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", block])
            .current_dir(&work)
            .env("PATH", &path)
            .env("STATECTL_STORE", env.store())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README block {} failed (exit {:?}):\n{block}\nstdout:\n{}\nstderr:\n{}",
            i + 1,
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    env.ok(&["verify"]);
    // The tour really ran: its models and tags are there.
    let models: Vec<String> = env.json(&["model", "list"])["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        models,
        [
            "sensor",
            "from-keras",
            "mymodel",
            "gru-alphabet",
            "q-core",
            "demo",
            "audited"
        ]
    );
    for tag in [
        "trained",
        "probe",
        "seq7",
        "run7/case2/end",
        "burned",
        "burned/seq3",
        "again",
    ] {
        env.ok(&["show", tag]);
    }
}
