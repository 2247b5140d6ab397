//! The README's and the guide's command blocks are tested documentation:
//! every ```sh block (but the fresh-machine one, which is what CI itself
//! runs) is run as written, in order (the README's, then the guide's pages
//! in `GUIDE` order), in one store, from a copy of the repository's
//! `examples/` folder, with the built `statectl` first on `PATH`.

use std::path::{Path, PathBuf};

use crate::util::*;

/// The guide's pages, in the order their blocks run after the README's.
pub const GUIDE: &[&str] = &[
    "docs/tour.md",
    "docs/model-files.md",
    "docs/python.md",
    "docs/r2d2.md",
    "docs/audits.md",
    "docs/training.md",
    "docs/shared-store.md",
    "docs/store.md",
    "docs/reliability.md",
    "docs/json.md",
    "docs/determinism.md",
    "docs/performance.md",
    "docs/code.md",
    "docs/README.md",
];

/// The README, then each page of the guide: (path, text).
pub fn documentation() -> Vec<(String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::iter::once("README.md")
        .chain(GUIDE.iter().copied())
        .map(|page| {
            let text =
                std::fs::read_to_string(root.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
            (page.to_string(), text)
        })
        .collect()
}

/// The ```sh blocks of the README and the guide, in order.
fn sh_blocks() -> Vec<String> {
    documentation()
        .iter()
        .flat_map(|(_, text)| fenced_blocks(text, "```sh"))
        .collect()
}

/// The blocks fenced with a bare ``` in the README and the guide, in
/// order: each shows what a command prints.
pub fn output_blocks() -> Vec<String> {
    documentation()
        .iter()
        .flat_map(|(_, text)| fenced_blocks(text, "```"))
        .collect()
}

/// The blocks whose opening fence is `opening`, in order.
fn fenced_blocks(readme: &str, opening: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    // The open fence and the text so far.
    let mut current: Option<(String, String)> = None;
    for line in readme.lines() {
        let trimmed = line.trim_start();
        match &mut current {
            None if trimmed.starts_with("```") => {
                current = Some((trimmed.to_string(), String::new()));
            }
            None => {}
            Some((fence, text)) if trimmed == "```" => {
                if fence == opening {
                    blocks.push(std::mem::take(text));
                }
                current = None;
            }
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
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

/// What the shared store's blocks call it; set to a fresh database's URL.
pub const SHARED_STORE: &str = "$SHARED_STORE";

/// The README's and the guide's tour, ready to run: their command blocks (without the set-up
/// ones, which CI itself runs: the test command is this suite, then the
/// Python package's build and pytest), a copy of `examples/` to run them
/// in, and the built binary.
pub struct TourBlocks {
    pub env: Env,
    /// A fresh shared store for the blocks that name `$SHARED_STORE`
    /// (None without a PostgreSQL server: those blocks are skipped).
    pub shared_store: Option<String>,
    pub blocks: Vec<String>,
    pub bin: PathBuf,
    work: PathBuf,
    path: String,
}

pub fn prepared_tour() -> TourBlocks {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let blocks: Vec<String> = sh_blocks()
        .into_iter()
        .filter(|b| {
            !b.contains("cargo install")
                && !b.contains("scripts/test")
                && !b.contains("pip install")
                && !b.contains("scripts/postgres")
        })
        .collect();
    assert!(blocks.len() >= 6, "the README lost its command blocks");

    let env = Env::new();
    let work = env.path("work");
    copy_dir(&root.join("examples"), &work.join("examples"));
    // `statectl` on PATH, as the README's first command leaves it, and
    // nowhere else: a block that names a build folder fails here as it
    // would after that command.
    let bin = assert_cmd::cargo::cargo_bin("statectl");
    let bin_dir = env.path("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(&bin, bin_dir.join("statectl")).unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    let shared_store = blocks
        .iter()
        .any(|b| b.contains(SHARED_STORE))
        .then(|| crate::shared_store::fresh_database("tour"))
        .flatten();
    TourBlocks {
        env,
        shared_store,
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
        let shared = match (&self.shared_store, block.contains(SHARED_STORE)) {
            (None, true) => {
                eprintln!("README block skipped (no PostgreSQL server):\n{block}");
                return;
            }
            (Some(url), true) => vec![("SHARED_STORE", url.as_str())],
            (_, false) => Vec::new(),
        };
        let out = std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", block])
            .current_dir(&self.work)
            .env("PATH", format!("{}:{}", first_on_path.display(), self.path))
            .env("STATECTL_STORE", self.env.store())
            .envs(vars.iter().copied())
            .envs(shared)
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
            "forecaster",
            "demo",
            "classifier",
            "policy",
            "from-h5",
            "audited",
            "long",
            "long-tuned",
            "picked",
            "picked.best"
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
        "first-look",
        "picked/best",
    ] {
        env.ok(&["show", tag]);
    }
}

/// Every page in `docs/` is in `GUIDE`, so none of its blocks goes
/// untested.
#[test]
fn every_page_of_the_guide_runs_in_the_tour() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut pages: Vec<String> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    pages.sort();
    let mut listed: Vec<String> = GUIDE.iter().map(|p| p.to_string()).collect();
    listed.sort();
    assert_eq!(
        pages, listed,
        "a page in docs/ must be listed in GUIDE (tests/e2e/readme.rs)"
    );
}

/// The README's and the guide's printed-output blocks, in order: what the demo prints,
/// what the R2D2 example prints (checked where it runs, in replay.rs), and
/// the audit benchmark's printout, whose figures are timings (masked: the
/// README says they vary by machine) and whose lines must be the ones the
/// benchmark prints.
#[test]
fn every_printed_output_block_is_what_its_command_prints() {
    let blocks = output_blocks();
    assert_eq!(
        blocks.len(),
        3,
        "a new output block in the README needs a check here: {blocks:#?}"
    );
    let env = Env::new();
    let demo = env.run(&["demo"]);
    assert_eq!(demo.code, 0, "{}", demo.stderr);
    assert_eq!(
        blocks[0].trim_end(),
        demo.stdout.trim_end(),
        "the README's demo printout is not what `statectl demo` prints"
    );
    assert!(blocks[1].contains("\nburn-in "), "{}", blocks[1]);
    let bench =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/audit.rs"))
            .unwrap();
    let printed: Vec<String> = bench
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix('"')
                .or_else(|| l.split("println!(\"").nth(1))
        })
        .map(masked)
        .collect();
    for line in blocks[2].lines() {
        let line = masked(line);
        assert!(
            printed.iter().any(|p| p.starts_with(&line)),
            "the README's audit benchmark line '{line}' is not one benches/audit.rs prints"
        );
    }
}

/// A line with every number and `{...}` placeholder as `#`, and no
/// whitespace (widths differ between a format string and its output).
fn masked(line: &str) -> String {
    let mut out = String::new();
    let mut in_braces = false;
    for c in line.chars() {
        match c {
            '{' => in_braces = true,
            '}' if in_braces => {
                in_braces = false;
                out.push('#');
            }
            _ if in_braces || c.is_whitespace() => {}
            '0'..='9' | '.' if out.ends_with('#') => {}
            '0'..='9' => out.push('#'),
            _ => out.push(c),
        }
    }
    out
}
