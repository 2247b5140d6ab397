//! `statectl export REF... -o FILE`: states as safetensors. One ref gives
//! `l{k}.h`, `l{k}.c` as `[batch, units]`; several give named states
//! (`<ref>.l{k}.h`); `--slots` exports a selection of one state. The layout
//! and id of each state go in the metadata.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde_json::json;

use super::context::Context;
use crate::cli::ExportArgs;
use crate::state::states_to_file;

/// A file written to a temp name beside its target, not yet in place.
pub struct StagedFile {
    tmp: PathBuf,
    path: PathBuf,
}

impl StagedFile {
    /// Writes and syncs the bytes under a temp name.
    pub fn write(path: &Path, bytes: &[u8]) -> Result<StagedFile> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut file = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut file, bytes)?;
            file.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(anyhow::Error::new(e).context(format!(
                "cannot write '{}'; pick a writable -o path with room to spare",
                path.display()
            )));
        }
        Ok(StagedFile {
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// Moves the file into place.
    pub fn commit(self) -> Result<()> {
        std::fs::rename(&self.tmp, &self.path).with_context(|| {
            let _ = std::fs::remove_file(&self.tmp);
            format!("cannot write '{}'", self.path.display())
        })
    }

    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Writes `bytes` to `path` through a temp file and a rename, so a reader
/// never sees half a file.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    StagedFile::write(path, bytes)?.commit()
}

pub fn run(ctx: &Context, args: ExportArgs) -> Result<i32> {
    let model = ctx.optional_model(args.stream.model.as_deref())?;
    let mut states = Vec::new();
    for reference in &args.references {
        // Loading re-hashes every slot: damaged content is never exported.
        let mut value = ctx
            .resolve(reference, model.as_ref(), &args.stream.stream, None)?
            .value;
        if let Some(slots) = &args.slots {
            if args.references.len() > 1 {
                bail!("--slots selects from one state; export one ref at a time with it");
            }
            value = value.select(slots)?;
        }
        states.push((reference.clone(), value));
    }
    let single = states.len() == 1;
    let named: Vec<(Option<String>, &crate::state::StateValue)> = states
        .iter()
        .map(|(r, v)| (if single { None } else { Some(r.clone()) }, v))
        .collect();
    write_file(&args.output, &states_to_file(&named).encode())?;
    let rows: Vec<serde_json::Value> = states
        .iter()
        .map(|(r, v)| json!({"ref": r, "state": v.id().hex(), "layout": v.layout.to_string(), "batch": v.batch()}))
        .collect();
    let mut json = json!({"states": rows, "file": args.output.display().to_string()});
    if single {
        json["state"] = rows[0]["state"].clone();
        json["layout"] = rows[0]["layout"].clone();
        json["batch"] = rows[0]["batch"].clone();
    }
    ctx.out.emit(json, || {
        let list: Vec<String> = states
            .iter()
            .map(|(r, v)| {
                format!(
                    "{r} ({}, {}, batch {})",
                    v.id().short(),
                    v.layout,
                    v.batch()
                )
            })
            .collect();
        format!("wrote {} to {}", list.join(", "), args.output.display())
    });
    Ok(0)
}
