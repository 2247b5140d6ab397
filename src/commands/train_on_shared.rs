//! `statectl --store URL train`: the run trains in a scratch local store,
//! exactly as `train` does, then one push publishes the model, its
//! training journal and its `main` stream on the shared store, so
//! `audit --train` reruns it there. A run that fails or is stopped
//! publishes nothing. Runs kept to resume (`--resume`) and fine-tuning
//! (`--from`) read a local store's runs and models: they train in one.

use anyhow::{bail, Context as _, Result};

use super::context::{Context, Output};
use super::interrupt;
use super::train::{plan, report, train_new};
use crate::cli::TrainArgs;
use crate::ops::push::{push, PushRequest};
use crate::ops::training_run::RunEnd;
use crate::shared::{shown_url, SharedStore};
use crate::store::Store;

pub fn run_on_shared(url: &str, out: &Output, mut args: TrainArgs) -> Result<i32> {
    let shown = shown_url(url);
    if args.resume.is_some() || args.from.is_some() {
        bail!("{shown} is a shared store, and --resume and --from read a local store's training runs and models; train in a local store (statectl --store DIR pull {shown} brings the model), then push");
    }
    let name = free_name(url, args.name.as_deref())?;
    args.name = Some(name.clone());
    let scratch = tempfile::tempdir().context("cannot make a scratch folder for the run")?;
    let ctx = Context {
        store: Store::open(&scratch.path().join("store"))?,
        out: *out,
    };
    let plan = plan(&ctx, &args)?;
    let ended = train_new(&ctx, &args, &name, &plan)?;
    if let RunEnd::Stopped(position) = &ended {
        eprintln!("training run '{name}' stopped at {position}; nothing was published to {shown}, and a run on a shared store is not kept to resume: train again, or train in a local store (which can resume) and push");
        return Ok(interrupt::STOPPED);
    }
    let pushed = push(
        &ctx.store,
        &PushRequest {
            url: url.to_string(),
            tags: None,
            force: false,
            retry: true,
        },
    )?;
    out.status(format!(
        "published model '{name}' to {}: {} state(s), {} event(s)",
        pushed.url, pushed.states_sent, pushed.events_sent
    ));
    Ok(report(&ctx, &name, ended))
}

/// The name the model takes: the one given, unless the shared store has
/// it, or the first free `model-N` there.
fn free_name(url: &str, given: Option<&str>) -> Result<String> {
    let mut shared = SharedStore::open(url)?;
    let taken: Vec<String> = shared.models()?.into_iter().map(|m| m.name).collect();
    match given {
        Some(name) if taken.iter().any(|t| t == name) => bail!(
            "model '{name}' already exists on {}; choose another --name",
            shared.shown()
        ),
        Some(name) => {
            crate::ops::models::check_model_name(name)?;
            Ok(name.to_string())
        }
        None => Ok((1..)
            .map(|i| format!("model-{i}"))
            .find(|n| !taken.contains(n))
            .unwrap_or_default()),
    }
}
