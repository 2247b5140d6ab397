//! Runs the real binary in a temp store and reads the store back.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use statectl::tensors::{Tensor, TensorFile};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn fixture_file(name: &str) -> TensorFile {
    TensorFile::decode(&std::fs::read(fixture(name)).unwrap()).unwrap()
}

pub struct Env {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn run_in(&self, store: &Path, args: &[&str]) -> Run {
        let out = Command::cargo_bin("statectl")
            .unwrap()
            .arg("--store")
            .arg(store)
            .args(args)
            .env_remove("STATECTL_STORE")
            .output()
            .unwrap();
        Run::from(out)
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_in(&self.store(), args)
    }

    /// Runs a command that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(
            run.code, 0,
            "statectl {args:?} failed:\n{}{}",
            run.stdout, run.stderr
        );
        run.stdout
    }

    /// Runs a command with `--json` that must succeed; returns its JSON.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}\n{out}"))
    }

    /// Runs a command that must fail with `code` and a one-line stderr
    /// containing `fragment`, leaving the store exactly as it was; returns
    /// the stderr.
    pub fn fails(&self, args: &[&str], code: i32, fragment: &str) -> String {
        let before = self.fingerprint();
        let run = self.run(args);
        assert_eq!(
            run.code, code,
            "statectl {args:?}: expected exit {code}\n{}{}",
            run.stdout, run.stderr
        );
        assert!(
            run.stderr.contains(fragment),
            "statectl {args:?}: stderr lacks '{fragment}':\n{}",
            run.stderr
        );
        if code == 1 {
            assert_eq!(
                run.stderr.trim_end().lines().count(),
                1,
                "not one line:\n{}",
                run.stderr
            );
            assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
        }
        assert_eq!(
            self.fingerprint(),
            before,
            "statectl {args:?} changed the store"
        );
        run.stderr
    }

    /// Everything in the store: every row of every table, the schema
    /// version and the weights files.
    pub fn fingerprint(&self) -> String {
        let mut out = self.db_fingerprint();
        let mut files: Vec<String> = std::fs::read_dir(self.store().join("weights"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        out.push_str(&files.join("\n"));
        // Packs too: their names and bytes.
        let mut packs: Vec<String> = std::fs::read_dir(self.store().join("packs"))
            .map(|d| {
                d.map(|e| {
                    let e = e.unwrap();
                    let bytes = std::fs::read(e.path()).unwrap_or_default();
                    format!(
                        "{} {}",
                        e.file_name().to_string_lossy(),
                        statectl::id::Digest::of(&[&bytes]).hex()
                    )
                })
                .collect()
            })
            .unwrap_or_default();
        packs.sort();
        out.push_str(&packs.join("\n"));
        out
    }

    /// Every row of every table and the schema version.
    pub fn db_fingerprint(&self) -> String {
        let db = self.store().join("statectl.db");
        if !db.exists() {
            return "no store".into();
        }
        let conn =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        let mut out = String::new();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        out.push_str(&format!("version {version}\n"));
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        for table in tables {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY 1"))
                .unwrap();
            let cols = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    let mut cells = Vec::new();
                    for i in 0..cols {
                        cells.push(format!("{:?}", r.get_ref(i)?));
                    }
                    Ok(cells.join("|"))
                })
                .unwrap();
            out.push_str(&format!("table {table}\n"));
            for row in rows {
                out.push_str(&row.unwrap());
                out.push('\n');
            }
        }
        out
    }

    /// Imports the reference model (`keras` or `torch` layout) as `name`.
    pub fn import_reference(&self, layout: &str, name: &str) {
        let file = fixture(&format!("weights.{layout}_layout.safetensors"));
        self.ok(&[
            "model",
            "import",
            file.to_str().unwrap(),
            "--layout",
            layout,
            "--head",
            "softmax",
            "--name",
            name,
            "--batch-size",
            "6",
        ]);
    }

    /// Writes the fixture state `caseN` (or `after_caseN`) as a state file
    /// statectl imports (`l0.h`, `l0.c`); returns its path.
    pub fn reference_state_file(&self, prefix: &str) -> PathBuf {
        let states = fixture_file("states.safetensors");
        let mut file = TensorFile::default();
        file.insert("l0.h", states.tensors[&format!("{prefix}.h")].clone());
        file.insert("l0.c", states.tensors[&format!("{prefix}.c")].clone());
        let path = self.path(&format!("{prefix}.safetensors"));
        std::fs::write(&path, file.encode()).unwrap();
        path
    }

    pub fn write_tensors(&self, name: &str, tensors: &[(&str, Tensor)]) -> PathBuf {
        let mut file = TensorFile::default();
        for (n, t) in tensors {
            file.insert(n, t.clone());
        }
        let path = self.path(name);
        std::fs::write(&path, file.encode()).unwrap();
        path
    }
}

/// The string `key` of each object in the JSON array `items`.
pub fn field_of_each(items: &serde_json::Value, key: &str) -> Vec<String> {
    items
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {items}"))
        .iter()
        .map(|item| item[key].as_str().unwrap_or_default().to_string())
        .collect()
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A JSON matrix as f32 rows (exact: f32 -> f64 -> text -> f64 -> f32).
pub fn matrix(v: &serde_json::Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

pub fn bits(rows: &[Vec<f32>]) -> Vec<Vec<u32>> {
    rows.iter()
        .map(|r| r.iter().map(|v| v.to_bits()).collect())
        .collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

impl Env {
    /// A raw connection to the store's database, foreign keys off, for
    /// tampering with it the way a disk or a person could.
    pub fn db(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.store().join("statectl.db")).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        conn
    }
}

/// Full-hex id text as the bytes SQLite stores.
pub fn id_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

impl Env {
    /// Runs a script from `examples/` against the built binary and this
    /// store; returns stdout, failing the test if the script fails.
    pub fn run_example(&self, script: &str) -> String {
        let out = std::process::Command::new("bash")
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("examples")
                    .join(script),
            )
            .env("STATECTL", assert_cmd::cargo::cargo_bin("statectl"))
            .env("STATECTL_STORE", self.store())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{script}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Flips bits `mask` of byte `index` (from the end when negative) of the
    /// `bytes`-like `column` of the row `id` of `table`, behind statectl's back.
    pub fn flip_blob(&self, table: &str, column: &str, id: &str, index: isize, mask: u8) {
        let db = self.db();
        let mut bytes: Vec<u8> = db
            .query_row(
                &format!("SELECT {column} FROM {table} WHERE id = ?1"),
                [id_bytes(id)],
                |r| r.get(0),
            )
            .unwrap();
        let at = if index < 0 {
            (bytes.len() as isize + index) as usize
        } else {
            index as usize
        };
        bytes[at] ^= mask;
        db.execute(
            &format!("UPDATE {table} SET {column} = ?1 WHERE id = ?2"),
            rusqlite::params![bytes, id_bytes(id)],
        )
        .unwrap();
    }
}

/// One step of Keras's Adam (epsilon-hat form) in float64, for the
/// independent training references: `step` counts from 1.
pub fn keras_adam_step(
    params: &mut [&mut Vec<f64>],
    grads: &[&mut Vec<f64>],
    m: &mut [Vec<f64>],
    v: &mut [Vec<f64>],
    step: i32,
    lr: f64,
) {
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-7f64);
    let alpha = lr * (1.0 - b2.powi(step)).sqrt() / (1.0 - b1.powi(step));
    for (i, (w, gw)) in params.iter_mut().zip(grads).enumerate() {
        for j in 0..w.len() {
            m[i][j] += (gw[j] - m[i][j]) * (1.0 - b1);
            v[i][j] += (gw[j] * gw[j] - v[i][j]) * (1.0 - b2);
            w[j] -= m[i][j] * alpha / (v[i][j].sqrt() + eps);
        }
    }
}

impl Env {
    /// Trains the small reference problem from the same initial weights in
    /// both layouts (`inits`: the torch file, then the Keras file) with
    /// `args`, checks every exported tensor against the float64 reference
    /// `expected` within 1e-5 and that both layouts trained to the same
    /// bits; returns the trained (torch-layout) tensors.
    pub fn train_from_both_layouts(
        &self,
        inits: [&Path; 2],
        args: &[&str],
        expected: &[(&str, &[f64])],
    ) -> std::collections::BTreeMap<String, Tensor> {
        let mut results = Vec::new();
        for (init, layout) in inits.into_iter().zip(["torch", "keras"]) {
            let name = format!("from-{layout}");
            let mut all = vec!["-q", "train"];
            all.extend_from_slice(args);
            all.extend_from_slice(&["--init", s(init), "--init-layout", layout, "--name", &name]);
            self.ok(&all);
            let out = self.path(&format!("{name}.out.safetensors"));
            self.ok(&["model", "export", &name, "-o", s(&out)]);
            let file = TensorFile::decode(&std::fs::read(&out).unwrap()).unwrap();
            for (n, want) in expected {
                let diff = file.tensors[*n]
                    .data
                    .iter()
                    .zip(want.iter())
                    .map(|(a, b)| (*a as f64 - b).abs())
                    .fold(0.0, f64::max);
                assert!(diff < 1e-5, "{layout} {n}: off by {diff}");
            }
            results.push(file.tensors);
        }
        assert_eq!(
            results[0], results[1],
            "keras and torch initial weights trained differently"
        );
        results.remove(0)
    }
}

/// The stdout of a process that must have succeeded (else its stderr).
pub fn succeeded(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
