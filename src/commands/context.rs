//! What every command shares: the open store, output settings, and short
//! ways to the read-only lookups of the operations layer.

use std::path::Path;

use anyhow::Result;

use crate::model::Weights;
use crate::ops::{self, refs::Scope, Model, Resolved};
use crate::store::Store;

/// How stdout first failed, if it did, for [`Output::exit_code`].
static STDOUT_FAILURE: std::sync::Mutex<Option<std::io::Error>> = std::sync::Mutex::new(None);

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
    /// The command records something: by the time it prints, its changes
    /// are committed, so a stdout that fails must not read as "nothing
    /// happened".
    pub writes: bool,
}

impl Output {
    /// A status line for people, on stderr.
    pub fn status(&self, line: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", line.as_ref());
        }
    }

    /// Prints the JSON value on stdout when `--json` is set, else the
    /// human text (also on stdout: it is the command's data).
    /// Writes a long result straight to stdout as it is produced (a
    /// million rows never become one string), with `emit`'s handling of a
    /// stdout that fails.
    pub fn emit_streamed(
        &self,
        write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) {
        use std::io::Write;
        let stdout = std::io::stdout().lock();
        let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout);
        let written = write(&mut out).and_then(|_| out.flush());
        if let Err(e) = written {
            self.stdout_failed(e);
        }
    }

    fn stdout_failed(&self, e: std::io::Error) {
        let mut first = STDOUT_FAILURE.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(e);
    }

    /// The exit code once the command has run: its own, unless stdout
    /// failed. A reader that went away (`statectl log | head`) is not an
    /// error (the command's work is done and committed); a command that
    /// recorded something says so and exits 0; a read-only command whose
    /// output was lost fails.
    pub fn exit_code(&self, code: i32) -> i32 {
        let failure = STDOUT_FAILURE
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match failure {
            None => code,
            Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
            Some(e) if self.writes => {
                eprintln!("warning: the command completed and its changes are recorded, but its output could not be written to stdout ({e}); `statectl log` shows what it recorded");
                0
            }
            Some(e) => {
                eprintln!("error: cannot write to stdout: {e}; check where the output goes (a full disk, a closed file)");
                1
            }
        }
    }

    /// An operation's report as the command's result: its JSON is the
    /// report's serde form; exit code 0.
    pub fn emit_report(
        &self,
        report: &impl serde::Serialize,
        human: impl FnOnce() -> String,
    ) -> Result<i32> {
        self.emit(serde_json::to_value(report)?, human);
        Ok(0)
    }

    pub fn emit(&self, json: serde_json::Value, human: impl FnOnce() -> String) {
        let text = if self.json {
            serde_json::to_string_pretty(&json).unwrap_or_default()
        } else {
            human().trim_end().to_string()
        };
        if text.is_empty() {
            return;
        }
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = writeln!(stdout, "{text}").and_then(|_| stdout.flush()) {
            drop(stdout);
            self.stdout_failed(e);
        }
    }
}

pub struct Context {
    pub store: Store,
    pub out: Output,
}

impl Context {
    /// Opens the store; `create` for commands that write (a read-only
    /// command refuses a folder holding no store, and creates nothing).
    pub fn open(path: &Path, out: Output, create: bool) -> Result<Context> {
        let store = if create {
            let existed = path.join("statectl.db").is_file();
            let store = Store::open(path)?;
            if !existed {
                out.status(format!("created a new store at {}", path.display()));
            }
            store
        } else {
            Store::open_existing(path)?
        };
        Ok(Context { store, out })
    }

    /// The command's result, printed: JSON with `--json`, else the human
    /// text.
    pub fn emit(&self, json: serde_json::Value, human: impl FnOnce() -> String) {
        self.out.emit(json, human)
    }

    /// An operation's report as the command's result: its JSON is the
    /// report's serde form; exit code 0.
    pub fn emit_report(
        &self,
        report: &impl serde::Serialize,
        human: impl FnOnce() -> String,
    ) -> Result<i32> {
        self.out.emit_report(report, human)
    }

    pub fn model(&self, name: Option<&str>) -> Result<Model> {
        ops::models::find(&self.store, name)
    }

    pub fn optional_model(&self, name: Option<&str>) -> Result<Option<Model>> {
        ops::models::find_optional(&self.store, name)
    }

    pub fn weights(&self, model: &Model) -> Result<Weights> {
        ops::models::weights(&self.store, model)
    }

    /// Resolves and loads a ref (reads only; `zeros` is computed).
    pub fn resolve(
        &self,
        text: &str,
        model: Option<&Model>,
        stream: &str,
        zeros_batch: Option<usize>,
    ) -> Result<Resolved> {
        ops::refs::resolve(
            &self.store,
            text,
            Scope {
                model,
                stream,
                zeros_batch,
            },
        )
    }
}

/// A journal time (ms since the epoch) as UTC, to the second.
pub fn format_time(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(at)
        .to_string()
        .replacen('T', " ", 1)
        .trim_end_matches('Z')
        .to_string()
}

/// The refs a command was given, with tag patterns expanded and
/// `--refs-from FILE` (`-` for stdin) appended.
pub fn read_refs(
    ctx: &Context,
    refs: &[String],
    from: &crate::cli::RefsFromArgs,
) -> Result<Vec<String>> {
    ops::refs::expand(&ctx.store, refs, &refs_from(from)?)
}

/// The lines of `--refs-from FILE` (`-`: stdin), if given.
pub fn refs_from(from: &crate::cli::RefsFromArgs) -> Result<Vec<String>> {
    match &from.refs_from {
        None => Ok(Vec::new()),
        Some(path) => {
            let bytes = crate::input::read_source(path)?;
            ops::refs::refs_from_lines(&bytes, &format!("--refs-from '{path}'"))
        }
    }
}
