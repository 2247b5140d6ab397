//! One module per subcommand, each with a `run`: arguments in, domain and
//! store calls, the result rendered for people or, with `--json`, as JSON
//! on stdout. The dispatcher opens the store once and hands it down.

mod audit;
mod burn_in;
mod context;
mod demo;
mod diff;
mod export;
mod files;
mod gc;
mod help;
mod import;
mod init;
mod interrupt;
mod log;
mod model;
mod plot;
mod predict;
mod progress;
mod render;
mod restore;
mod shared;
mod show;
mod snapshot;
mod split;
mod stack;
mod status;
mod sync;
mod tag;
mod train;
mod train_on_shared;
mod verify;

use std::path::PathBuf;

use anyhow::Result;

pub use context::{Context, Output};

use crate::cli::{Cli, Command, VerifyArgs};

/// Exit code for an audit, verify or `diff --exit-code` that found a difference.
pub const EXIT_DIFFERENT: i32 = 3;

/// The store folder: `--store`, else `$STATECTL_STORE`, else `./.statectl`.
pub fn store_path(cli: &Cli) -> PathBuf {
    crate::store::resolve_path(cli.store.clone())
}

/// Whether a command only reads. Those, and gc, refuse a folder that holds
/// no store instead of creating one.
fn reads_only(command: &Command) -> bool {
    use crate::cli::{ModelCommand, TagCommand};
    matches!(
        command,
        Command::Log(_)
            | Command::Push(_)
            | Command::Show(_)
            | Command::Diff(_)
            | Command::Export(_)
            | Command::Audit(_)
            | Command::Verify(VerifyArgs { repair: false })
            | Command::Plot(_)
            | Command::Status
            | Command::Tag(TagCommand::List)
            | Command::Model(ModelCommand::List | ModelCommand::Show(_) | ModelCommand::Export(_))
    )
}

/// Runs the command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    if let Err(value) = crate::kernels::cpu_path_cap() {
        anyhow::bail!(
            "STATECTL_CPU_PATH is '{value}'; it caps the kernels' vector path and takes one of {} \
             (unset it to use the CPU's widest)",
            crate::kernels::CPU_PATH_VALUES
        );
    }
    let writes = !reads_only(&cli.command);
    let create = writes && !matches!(cli.command, Command::Gc(_) | Command::Verify(_));
    let out = Output {
        json: cli.json,
        quiet: cli.quiet,
        writes,
    };
    match &cli.command {
        Command::Init(args) => {
            return init::run(args.path.clone().unwrap_or_else(|| store_path(&cli)), out)
                .map(|code| out.exit_code(code))
        }
        Command::Completions(args) => return help::completions(args.shell),
        Command::Man(args) => return help::man(&args.command),
        _ => {}
    }
    let store = store_path(&cli);
    if let Some(url) = shared::url_of(&store) {
        return shared::run(url, cli.command, out).map(|code| out.exit_code(code));
    }
    let ctx = match Context::open(&store_path(&cli), out, create) {
        Ok(ctx) => ctx,
        // A database too damaged to open is what verify is for: report it
        // as a problem (exit 3), not as an error.
        Err(e) if matches!(cli.command, Command::Verify(_)) => {
            return verify::unopenable(out, e).map(|code| out.exit_code(code))
        }
        Err(e) => return Err(e),
    };
    let code = dispatch(&ctx, cli.command)?;
    Ok(out.exit_code(code))
}

/// Runs a command on an open store; returns the exit code. `init`,
/// `completions` and `man` need no store and are refused here.
pub fn dispatch(ctx: &Context, command: Command) -> Result<i32> {
    match command {
        Command::Init(_) | Command::Completions(_) | Command::Man(_) => {
            anyhow::bail!("init, completions and man do not run on an open store")
        }
        Command::Demo(args) => demo::run(ctx, args),
        Command::Train(args) => train::run(ctx, args),
        Command::Model(cmd) => model::run(ctx, cmd),
        Command::Predict(args) => predict::run(ctx, args),
        Command::Snapshot(args) => snapshot::run(ctx, args),
        Command::Restore(args) => restore::run(ctx, args),
        Command::Reset(args) => restore::reset(ctx, args),
        Command::Log(args) => log::run(ctx, args),
        Command::Show(args) => show::run(ctx, args),
        Command::Diff(args) => diff::run(ctx, args),
        Command::Export(args) => export::run(ctx, args),
        Command::Import(args) => import::run(ctx, args),
        Command::Push(args) => sync::run_push(ctx, args),
        Command::Pull(args) => sync::run_pull(ctx, args),
        Command::Audit(args) => audit::run(ctx, args),
        Command::Verify(args) => verify::run(ctx, args),
        Command::BurnIn(args) => burn_in::run(ctx, args),
        Command::Tag(cmd) => tag::run(ctx, cmd),
        Command::Gc(args) => gc::run(ctx, args),
        Command::Stack(args) => stack::run(ctx, args),
        Command::Split(args) => split::run(ctx, args),
        Command::Plot(cmd) => plot::run(ctx, cmd),
        Command::Status => status::run(ctx),
    }
}
