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

/// The README's tour, ready to run: its command blocks (without the set-up
/// ones, which CI itself runs: the test command is this suite, then the
/// Python package's build and pytest), a copy of `examples/` to run them
/// in, and the built binary.
pub struct TourBlocks {
    pub env: Env,
    pub blocks: Vec<String>,
    pub bin: PathBuf,
    work: PathBuf,
    path: String,
}

pub fn prepared_tour() -> TourBlocks {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks: Vec<String> = sh_blocks(&readme)
        .into_iter()
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
    let path = std::env::var("PATH").unwrap_or_default();
    TourBlocks {
        env,
        blocks,
        bin,
        work,
        path: format!("{}:{path}", bin_dir.display()),
    }
}

impl TourBlocks {
    /// Runs one block with bash (`-euo pipefail`) in the work folder, the
    /// given folder first on PATH; fails the test if the block fails.
    pub fn run_block(&self, block: &str, first_on_path: &Path, vars: &[(&str, &std::ffi::OsStr)]) {
        let out = std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", block])
            .current_dir(&self.work)
            .env("PATH", format!("{}:{}", first_on_path.display(), self.path))
            .env("STATECTL_STORE", self.env.store())
            .envs(vars.iter().copied())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README block failed (exit {:?}):\n{block}\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_readme_command_block_runs_as_written() {
    let tour = prepared_tour();
    let bin_dir = tour.env.path("bin");
    for block in &tour.blocks {
        tour.run_block(block, &bin_dir, &[]);
    }
    let env = &tour.env;
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
