//! What every command shares: the open store, output settings, and the
//! lookups from names to models, streams and states (refs).

use std::path::Path;

use anyhow::{anyhow, bail, Context as _, Result};

use crate::id::{StateId, MIN_PREFIX};
use crate::model::{ModelConfig, Weights};
use crate::state::StateValue;
use crate::store::{ModelRecord, NewEvent, Store, StoreError};
use crate::tensors::TensorFile;

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
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
            // A reader that went away (`statectl log | head`) is not an
            // error: the command's work is done and committed.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("error: cannot write to stdout: {e}");
            std::process::exit(1);
        }
    }
}

pub struct Context {
    pub store: Store,
    pub out: Output,
}

/// A model row with its parsed config.
pub struct Model {
    pub record: ModelRecord,
    pub config: ModelConfig,
}

impl Model {
    pub fn event_model(&self) -> Option<(i64, String, crate::id::WeightsId)> {
        Some((
            self.record.id,
            self.record.name.clone(),
            self.record.weights,
        ))
    }
}

/// Names a ref may not take, since they mean something else.
pub fn check_tag_name(name: &str) -> Result<()> {
    let reserved = name == "HEAD" || name.starts_with("HEAD~") || name == "zeros";
    let hex_like = name.len() >= MIN_PREFIX && name.chars().all(|c| c.is_ascii_hexdigit());
    if name.is_empty()
        || reserved
        || hex_like
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        bail!("'{name}' cannot be a tag: tags must be non-empty, without spaces, and neither HEAD, HEAD~N, zeros nor all hex digits (those name states already)");
    }
    Ok(())
}

impl Context {
    pub fn open(path: &Path, out: Output) -> Result<Context> {
        let store = Store::open(path)?;
        Ok(Context { store, out })
    }

    pub fn model(&self, name: Option<&str>) -> Result<Model> {
        let record = match name {
            Some(n) => self.store.model_by_name(n)?,
            None => self.store.newest_model()?,
        };
        let config: ModelConfig = serde_json::from_str(&record.config)
            .with_context(|| format!("model '{}' has an unreadable config", record.name))?;
        Ok(Model { record, config })
    }

    /// The named model; with no name the newest one, or none when the store
    /// has no model (for commands that work without one).
    pub fn optional_model(&self, name: Option<&str>) -> Result<Option<Model>> {
        match name {
            Some(_) => self.model(name).map(Some),
            None if self.store.list_models()?.is_empty() => Ok(None),
            None => self.model(None).map(Some),
        }
    }

    /// The model's weights, the file re-hashed.
    pub fn weights(&self, model: &Model) -> Result<Weights> {
        let bytes = self.store.load_weights(&model.record.weights)?;
        let file = TensorFile::decode(&bytes)?;
        Ok(Weights::from_file(&file)?)
    }

    /// The stream's current state, if the stream exists.
    pub fn head(&self, model: &Model, stream: &str) -> Result<Option<StateId>> {
        Ok(self.store.stream(model.record.id, stream)?.map(|s| s.state))
    }

    /// Sets the stream to `state`, journaling the move (call inside a write).
    pub fn move_stream(
        &self,
        model: &Model,
        stream: &str,
        state: StateId,
        mut event: NewEvent,
    ) -> Result<i64> {
        let before = self.head(model, stream)?;
        self.store.set_stream(model.record.id, stream, &state)?;
        event.model = model.event_model();
        event.stream = Some(stream.to_string());
        event.moved_stream = true;
        event.state_before = event.state_before.or(before);
        event.state_after = Some(state);
        Ok(self.store.append_event(&event)?)
    }

    /// Creates the stream at zeros of `batch` if it does not exist yet
    /// (call inside a write); returns its current state.
    pub fn ensure_stream(&self, model: &Model, stream: &str, batch: usize) -> Result<StateId> {
        match self.head(model, stream)? {
            Some(state) => Ok(state),
            None => self.reset_to_zeros(model, stream, batch),
        }
    }

    /// Sets the stream to zeros of `batch` slots and journals it as a
    /// reset (call inside a write).
    pub fn reset_to_zeros(&self, model: &Model, stream: &str, batch: usize) -> Result<StateId> {
        let zeros = self
            .store
            .put_state(&StateValue::zeros(&model.config.layout(), batch))?;
        self.move_stream(
            model,
            stream,
            zeros,
            NewEvent {
                kind: "reset",
                detail: serde_json::json!({ "batch": batch }),
                ..Default::default()
            },
        )?;
        Ok(zeros)
    }

    /// Resolves a ref: a tag, an id prefix, `HEAD`, `HEAD~N` or `zeros`.
    /// `zeros` is stored (inside the caller's write, or on its own).
    pub fn resolve(
        &self,
        text: &str,
        model: Option<&Model>,
        stream: &str,
        zeros_batch: Option<usize>,
    ) -> Result<StateId> {
        if text == "HEAD" || text.starts_with("HEAD~") {
            let model =
                model.ok_or_else(|| anyhow!("'{text}' needs a model; pass --model NAME"))?;
            let back: usize = match text.strip_prefix("HEAD~") {
                None => 0,
                Some(n) => n.parse().map_err(|_| {
                    anyhow!("bad ref '{text}': write HEAD~N with N a whole number, e.g. HEAD~1")
                })?,
            };
            if back == 0 {
                return self.head(model, stream)?.ok_or_else(|| {
                    anyhow!(
                        "stream '{stream}' of model '{}' has no state yet; run `statectl predict` or `statectl reset` on it first",
                        model.record.name
                    )
                });
            }
            return match self.store.stream_move(model.record.id, stream, back)? {
                Some(state) => Ok(state),
                None => {
                    let moves = self.store.stream_move_count(model.record.id, stream)?;
                    bail!(
                        "'{text}' goes past the start of stream '{stream}' of model '{}': it has {moves} state(s), so HEAD~{} is the oldest",
                        model.record.name,
                        moves.saturating_sub(1)
                    )
                }
            };
        }
        if text == "zeros" {
            let model = model.ok_or_else(|| {
                anyhow!("'zeros' needs a model for its layout; pass --model NAME")
            })?;
            let batch = match zeros_batch {
                Some(b) => b,
                None => match self.head(model, stream)? {
                    Some(head) => self.store.state_record(&head)?.slots.len(),
                    None => model.config.batch_size,
                },
            };
            return Ok(self
                .store
                .put_state(&StateValue::zeros(&model.config.layout(), batch))?);
        }
        if let Some(tag) = self.store.tag(text)? {
            return Ok(tag.state);
        }
        let found = self
            .store
            .states_with_prefix(&text.to_ascii_lowercase(), 11)?;
        match found.as_slice() {
            [one] => Ok(*one),
            [] => bail!(
                "unknown ref '{text}': not a tag, a state id prefix (4+ hex digits), HEAD, HEAD~N or zeros; `statectl log` lists states"
            ),
            many => Err(StoreError::Ambiguous {
                kind: "state id",
                prefix: text.to_string(),
                candidates: many.iter().map(|s| s.short()).collect(),
            }
            .into()),
        }
    }

    /// Refuses to move an existing tag to another state unless forced.
    pub fn check_tag_free(&self, name: &str, state: Option<&StateId>, force: bool) -> Result<()> {
        check_tag_name(name)?;
        if let Some(existing) = self.store.tag(name)? {
            if !force && Some(&existing.state) != state {
                bail!(
                    "tag '{name}' already names state {}; pass --force to move it",
                    existing.state.short()
                );
            }
        }
        Ok(())
    }

    /// Sets a tag and journals it (call inside a write).
    pub fn set_tag(&self, name: &str, state: &StateId, model: Option<&Model>) -> Result<()> {
        let before = self.store.tag(name)?.map(|t| t.state);
        if before.as_ref() == Some(state) {
            return Ok(());
        }
        self.store.set_tag(name, state)?;
        self.store.append_event(&NewEvent {
            kind: "tag",
            model: model.and_then(|m| m.event_model()),
            state_before: before,
            state_after: Some(*state),
            tag: Some(name.to_string()),
            ..Default::default()
        })?;
        Ok(())
    }

    /// Checks that a state fits the model's layout.
    pub fn check_layout(&self, state: &StateValue, id: &StateId, model: &Model) -> Result<()> {
        let want = model.config.layout();
        if state.layout != want {
            bail!(
                "state {} has layout {} but model '{}' needs {}; pick a state made for this model",
                id.short(),
                state.layout,
                model.record.name,
                want
            );
        }
        Ok(())
    }
}

/// The machine a prediction ran on, recorded with it so a replay elsewhere
/// reads as such.
pub fn platform() -> serde_json::Value {
    let mut features: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! detect {
            ($($f:tt),*) => { $( if std::arch::is_x86_feature_detected!($f) { features.push($f); } )* };
        }
        detect!("sse4.1", "sse4.2", "avx", "avx2", "fma", "f16c", "avx512f");
    }
    serde_json::json!({
        "statectl": env!("CARGO_PKG_VERSION"),
        "arch": std::env::consts::ARCH,
        "os": std::env::consts::OS,
        "cpu_features": features,
        "threads": std::env::var("RAYON_NUM_THREADS").ok().and_then(|t| t.parse::<u64>().ok()),
    })
}

/// Parses `30s`, `15m`, `2h`, `7d` into milliseconds.
pub fn parse_duration(flag: &str, text: &str) -> Result<i64> {
    let bad = || anyhow!("bad {flag} '{text}': write a number and a unit, e.g. 30s, 15m, 2h or 7d");
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: i64 = number.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    n.checked_mul(unit_ms).ok_or_else(bad)
}

/// Refuses an output path whose folder does not exist, before any work is
/// done, so a command never commits and then fails to write its file.
pub fn check_output_path(path: &Path) -> Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        bail!(
            "cannot write '{}': folder '{}' does not exist; create it or pick another -o path",
            path.display(),
            parent.display()
        );
    }
    if path.is_dir() {
        bail!(
            "cannot write '{}': it is a folder; give a file name with -o",
            path.display()
        );
    }
    Ok(())
}
