//! Shell completion that knows the store: refs complete to tag names (and
//! `HEAD`), `--model` to model names, `--stream` to stream names. Hooked
//! onto the clap definitions by argument (a `REF`, `--model`, `--stream`),
//! so a new command's arguments complete without being listed here.

use std::ffi::OsStr;
use std::path::PathBuf;

use clap::Command;
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};

use crate::store::completion::{names_starting_with, Names};

/// Most names offered at once.
const LIMIT: usize = 200;

/// The store the command line being completed names (`--store DIR`), else
/// the one any command would use (`$STATECTL_STORE`, the nearest
/// `.statectl`). The completer runs as `statectl -- statectl ARGS...`, so
/// the line being completed is in this process's arguments.
fn store_being_completed() -> PathBuf {
    let args: Vec<String> = std::env::args().collect();
    let given = args.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix("--store=").map(PathBuf::from).or_else(|| {
            (a == "--store")
                .then(|| args.get(i + 1).map(PathBuf::from))
                .flatten()
        })
    });
    crate::store::resolve_path(given)
}

fn candidates(kind: Names, current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    names_starting_with(&store_being_completed(), kind, &prefix, LIMIT)
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

fn refs(current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    let mut out: Vec<CompletionCandidate> = ["HEAD", "HEAD~1", "zeros"]
        .into_iter()
        .filter(|r| r.starts_with(prefix.as_ref()))
        .map(CompletionCandidate::new)
        .collect();
    out.extend(candidates(Names::Tags, current));
    out
}

/// Adds the store-aware completers to every argument that names a ref, a
/// model or a stream, in every subcommand.
pub fn with_store_completers(command: Command) -> Command {
    let command = command.mut_args(|arg| {
        let names: Vec<String> = arg
            .get_value_names()
            .map(|v| v.iter().map(|n| n.to_string()).collect())
            .unwrap_or_default();
        let id = arg.get_id().as_str().to_string();
        if names.iter().any(|n| n == "REF") || matches!(id.as_str(), "a" | "b") {
            arg.add(ArgValueCompleter::new(refs))
        } else if id == "model" || id == "models" || names.iter().any(|n| n == "MODEL") {
            arg.add(ArgValueCompleter::new(|c: &OsStr| {
                candidates(Names::Models, c)
            }))
        } else if id == "stream" {
            arg.add(ArgValueCompleter::new(|c: &OsStr| {
                candidates(Names::Streams, c)
            }))
        } else {
            arg
        }
    });
    let names: Vec<String> = command
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    names.into_iter().fold(command, |command, name| {
        command.mut_subcommand(name, with_store_completers)
    })
}
