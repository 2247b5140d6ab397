//! The documentation stays a description of the product as it is: a short
//! README, no per-run history in the docs, code comments or bench scripts,
//! and a performance page made from the recorded benchmark results.

use std::path::{Path, PathBuf};

use crate::util::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Phrases that narrate how a figure or a design came about (runs, builds
/// and sessions gone by) rather than what statectl does now.
const HISTORY: &[&str] = &[
    "the build before",
    "earlier build",
    "earlier run",
    "slow minute",
    "latest run",
    "last run",
    "ran here",
    "measured here",
    "where they took",
    "alternating runs",
    "this session",
    "we tried",
    "used to take",
    "was slower",
    "before the fix",
    "fell from",
    "than before",
    "the old way",
];

/// The files whose text is read as the product's description: the README,
/// the guide, the benchmarks, and the comments of the sources.
fn described_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    for folder in [
        "docs",
        "benches",
        "src",
        "python/src",
        "python/statectl",
        "python/bench",
        "examples",
    ] {
        collect(&root().join(folder), &mut files);
    }
    files
}

fn collect(folder: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, files);
        } else if ["md", "rs", "py", "sh"]
            .iter()
            .any(|ext| path.extension().is_some_and(|e| e == *ext))
        {
            files.push(path);
        }
    }
}

#[test]
fn no_history_in_the_docs_the_comments_or_the_bench_scripts() {
    let mut found = Vec::new();
    for file in described_files() {
        let text = std::fs::read_to_string(&file).unwrap().to_lowercase();
        for (n, line) in text.lines().enumerate() {
            for phrase in HISTORY {
                if line.contains(phrase) {
                    found.push(format!("{}:{}: '{phrase}'", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "history belongs in commit messages; say what is true now:\n{}",
        found.join("\n")
    );
    // The check itself can fail: a history phrase is found where it is.
    assert!(HISTORY.iter().any(|p| "it was slower".contains(p)));
}

#[test]
fn the_readme_is_a_front_door_under_250_lines() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines < 250,
        "README.md has {lines} lines; move detail into docs/"
    );
    for page in ["docs/tour.md", "docs/performance.md"] {
        assert!(
            readme.contains(&format!("]({page})")),
            "README.md does not link {page}"
        );
    }
}

/// `docs/performance.md` and the README's summary are what
/// `benches/performance_page.py` makes of `benches/results.jsonl`, which
/// holds rows of more than one CPU kind.
#[test]
fn the_performance_page_is_made_from_the_results_file() {
    let check = std::process::Command::new("python3")
        .arg(root().join("benches/performance_page.py"))
        .arg("--check")
        .output();
    let out = match check {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipped: python3 not found ({e}), so the page cannot be remade");
            return;
        }
    };
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let results = std::fs::read_to_string(root().join("benches/results.jsonl")).unwrap();
    let mut kinds: Vec<String> = results
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|row| {
            for field in ["date", "commit", "workload", "figure", "unit", "rerun"] {
                assert!(!row[field].is_null(), "a row lacks {field}: {row}");
            }
            assert!(
                row["cpu"]["flags"].is_array() && row["cpu"]["cores"].is_u64(),
                "{row}"
            );
            if !row["reference"].is_null() {
                assert!(
                    row["reference_figure"].is_f64() && row["ratio"].is_f64(),
                    "{row}"
                );
            }
            row["cpu"]["kind"].as_str().unwrap().to_string()
        })
        .collect();
    kinds.sort();
    kinds.dedup();
    assert!(kinds.len() >= 2, "rows of one CPU kind only: {kinds:?}");
}

/// `STATECTL_CPU_PATH` caps the kernels' vector path (the benchmarks
/// measure narrower CPUs with it): the same bits on every path, and an
/// unknown value refused before any work.
#[test]
fn every_cpu_path_gives_the_same_bits_and_an_unknown_one_is_refused() {
    let env = Env::new();
    let outputs: Vec<String> = ["", "portable", "avx2", "avx512"]
        .iter()
        .map(|path| {
            succeeded(
                assert_cmd::Command::cargo_bin("statectl")
                    .unwrap()
                    .args(["--store", s(&env.path(&format!("store-{path}"))), "demo"])
                    .env("STATECTL_CPU_PATH", path)
                    .env_remove("STATECTL_STORE")
                    .output()
                    .unwrap(),
            )
        })
        .collect();
    assert!(outputs[0].contains("class-0 probability"), "{}", outputs[0]);
    for (path, out) in ["portable", "avx2", "avx512"].iter().zip(&outputs[1..]) {
        assert_eq!(
            out, &outputs[0],
            "STATECTL_CPU_PATH={path} changed the demo's numbers"
        );
    }
    let bad = assert_cmd::Command::cargo_bin("statectl")
        .unwrap()
        .args(["--store", s(&env.store()), "demo"])
        .env("STATECTL_CPU_PATH", "sse9")
        .env_remove("STATECTL_STORE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("STATECTL_CPU_PATH is 'sse9'") && stderr.contains("portable, avx2, avx512"),
        "{stderr}"
    );
    assert!(!env.store().exists(), "a refused command created a store");
}
