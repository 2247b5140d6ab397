//! Commands given a shared store's URL as `--store` (or `$STATECTL_STORE`):
//! `import` writes straight to it; `export`, `log` and `diff` read from
//! it; `stack`, `split` and `burn-in` read from it and store their results
//! there; `predict`, `restore` and `reset` move its streams by
//! compare-and-set; `audit` replays what it recorded; `verify` checks it and `gc` collects it; `show` and `tag list`
//! show it, `snapshot` names a state there and `tag delete` deletes
//! its tags. The others run on a local
//! store folder and are refused, naming `statectl pull`.

use anyhow::Result;

use super::{
    audit, burn_in, diff, export, gc, import, log, model, predict, restore, show, snapshot, split,
    stack, tag, train_on_shared, verify, Output,
};
use crate::cli::{Command, RefsFromArgs, StreamArgs, TagCommand, VerifyArgs};
use crate::ops::backend::Backend;
use crate::ops::refs::{Resolved, Scope};
use crate::shared::{is_shared_url, shown_url, SharedStore};

/// The shared store's URL, when `store` is one rather than a folder.
pub fn url_of(store: &std::path::Path) -> Option<&str> {
    store.to_str().filter(|text| is_shared_url(text))
}

/// Runs the command on the shared store at `url`; returns its exit code.
pub fn run(url: &str, command: Command, out: Output) -> Result<i32> {
    match command {
        Command::Import(args) => import::run_on_shared(url, &out, args),
        Command::Export(args) => export::run_on_shared(url, &out, args),
        Command::Log(args) => log::run_on_shared(url, &out, args),
        Command::Snapshot(args) => snapshot::run_on_shared(url, &out, args),
        Command::Diff(args) => diff::run_on_shared(url, &out, args),
        Command::Stack(args) => stack::run_on_shared(url, &out, args),
        Command::Split(args) => split::run_on_shared(url, &out, args),
        Command::BurnIn(args) => burn_in::run_on_shared(url, &out, args),
        Command::Audit(args) => audit::run_on_shared(url, &out, args),
        Command::Model(cmd) => model::run_on_shared(url, &out, cmd),
        Command::Train(args) => train_on_shared::run_on_shared(url, &out, args),
        Command::Predict(args) => predict::run_on_shared(url, &out, args),
        Command::Restore(args) => restore::run_on_shared(url, &out, args),
        Command::Reset(args) => restore::reset_on_shared(url, &out, args),
        Command::Gc(args) => gc::run_on_shared(url, &out, args),
        Command::Tag(TagCommand::List) => tag::list_on_shared(url, &out),
        Command::Tag(TagCommand::Delete { names }) => tag::delete_on_shared(url, &out, &names),
        Command::Show(args) => show::run_on_shared(url, &out, args),
        Command::Verify(VerifyArgs { repair: false }) => {
            SharedStore::open(url).and_then(|mut shared| verify::run_on_shared(&mut shared, &out))
        }
        _ => Err(anyhow::anyhow!(
            "{} is a shared store; this command runs on a local store folder (import, export, show, log, diff, audit, predict, restore, reset, train, snapshot, tag list, tag delete, stack, split, burn-in, model list, model show, verify and gc run on a shared store). Copy what you need here with: statectl pull {0}   (push sends local work there)",
            shown_url(url)
        )),
    }
}

/// The refs given and those of `--refs-from`, tag patterns (`'buf/*'`)
/// expanded against the shared store's tags.
pub fn read_refs(
    shared: &mut SharedStore,
    refs: &[String],
    from: &RefsFromArgs,
) -> Result<Vec<String>> {
    let extra = super::context::refs_from(from)?;
    crate::ops::refs::expand_with(refs, &extra, || {
        Ok(shared.tags()?.into_iter().map(|t| t.name).collect())
    })
}

/// The states `refs` name on the shared store; `HEAD`, `HEAD~N` and
/// `zeros` are those of the stream and model `--model` names (the newest
/// model by default).
pub fn resolve(
    backend: &mut Backend,
    refs: &[String],
    stream: &StreamArgs,
) -> Result<Vec<Resolved>> {
    let model = backend.optional_model(stream.model.as_deref())?;
    let scope = Scope {
        model: model.as_ref(),
        stream: &stream.stream,
        zeros_batch: None,
    };
    backend.sources(refs, scope)
}
