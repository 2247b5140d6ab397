//! Command-line definitions only (clap types); behaviour lives in
//! `commands`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::kernels::Kernel;
use crate::model::{Head, Outputs, WeightsLayout};
use crate::state::Cell;
use crate::train::RecordEvery;

/// `--head`: the head's activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HeadArg {
    /// Classification: outputs are softmax probabilities over classes
    Softmax,
    /// Regression (or Q-values): outputs are the head's values as they are
    Linear,
}

impl From<HeadArg> for Head {
    fn from(arg: HeadArg) -> Head {
        match arg {
            HeadArg::Softmax => Head::Softmax,
            HeadArg::Linear => Head::Linear,
        }
    }
}

/// `--layout`: how a weights file names its tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutArg {
    /// PyTorch / candle names: `*.weight_ih_l{k}`, `*.weight_hh_l{k}`, `*.bias_ih_l{k}`, `*.bias_hh_l{k}`, and a linear head
    Torch,
    /// Keras names: `<layer>/kernel`, `<layer>/recurrent_kernel`, `<layer>/bias`, and a Dense layer
    Keras,
}

/// `model export --format`: the kind of file written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormatArg {
    /// safetensors, under `--layout`'s names (statectl's config in its metadata)
    Safetensors,
    /// A Keras 3 `.keras` file: stateful layers at the model's batch size, `keras.models.load_model` opens it
    Keras,
}

impl From<LayoutArg> for WeightsLayout {
    fn from(arg: LayoutArg) -> WeightsLayout {
        match arg {
            LayoutArg::Torch => WeightsLayout::Torch,
            LayoutArg::Keras => WeightsLayout::Keras,
        }
    }
}

/// `--outputs`: where the head reads the recurrent output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputsArg {
    /// At the last step: outputs [batch, out]
    Last,
    /// At every step (Keras's return_sequences=True; R2D2's Q-values): outputs [batch, steps, out]
    Sequence,
}

impl From<OutputsArg> for Outputs {
    fn from(arg: OutputsArg) -> Outputs {
        match arg {
            OutputsArg::Last => Outputs::Last,
            OutputsArg::Sequence => Outputs::Sequence,
        }
    }
}

/// `--kernel`: what computes a prediction or a training run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KernelArg {
    /// statectl's fused, batch-invariant kernels (fused-1): the default
    Fused,
    /// candle's ops, as statectl computed before fused-1 (slower; for comparison)
    Candle,
}

impl KernelArg {
    /// The `--kernel` values, refusing one this build does not have before
    /// anything runs.
    fn parser() -> impl clap::builder::TypedValueParser<Value = KernelArg> {
        use clap::builder::TypedValueParser;
        clap::builder::EnumValueParser::<KernelArg>::new().try_map(|arg| {
            Kernel::from(arg)
                .ensure_built()
                .map(|_| arg)
                .map_err(|e| e.to_string())
        })
    }
}

impl From<KernelArg> for Kernel {
    fn from(arg: KernelArg) -> Kernel {
        match arg {
            KernelArg::Fused => Kernel::Fused,
            KernelArg::Candle => Kernel::Candle,
        }
    }
}

/// `burn-in --tag-by`: how per-slot results are named after the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TagByArg {
    /// The source's name, the REF as given (burned/seq3)
    Source,
    /// The row of the prefix (burned/0, burned/1, ...)
    Row,
}

impl From<TagByArg> for crate::ops::burn_in::TagBy {
    fn from(arg: TagByArg) -> Self {
        match arg {
            TagByArg::Source => Self::Source,
            TagByArg::Row => Self::Row,
        }
    }
}

/// `--cell`: the recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CellArg {
    /// Long short-term memory: state `h` and `c` per layer
    Lstm,
    /// Gated recurrent unit (PyTorch's, Keras's with reset_after=True): state `h` per layer
    Gru,
}

impl From<CellArg> for Cell {
    fn from(arg: CellArg) -> Cell {
        match arg {
            CellArg::Lstm => Cell::Lstm,
            CellArg::Gru => Cell::Gru,
        }
    }
}

/// `--record`: which training states are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordArg {
    /// Only the final state
    End,
    /// The state at the end of every epoch
    Epoch,
    /// The state after every batch
    Batch,
}

impl From<RecordArg> for RecordEvery {
    fn from(arg: RecordArg) -> RecordEvery {
        match arg {
            RecordArg::End => RecordEvery::End,
            RecordArg::Epoch => RecordEvery::Epoch,
            RecordArg::Batch => RecordEvery::Batch,
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "statectl",
    version,
    about = "Hidden states of stateful recurrent networks as versioned, verifiable objects",
    long_about = None
)]
pub struct Cli {
    /// Store folder (created on first use) [default: $STATECTL_STORE, else ./.statectl]
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        help_heading = "Global options"
    )]
    pub store: Option<PathBuf>,
    /// Machine output (JSON) on stdout, errors too; human text goes to stderr
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
    /// Print no status lines on stderr, and one summary line where a result has many
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub quiet: bool,
    /// Worker threads for tensor maths [default: the core count]; results do not depend on it
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256), help_heading = "Global options")]
    pub threads: Option<u16>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an empty store (commands that only read refuse a folder without one)
    #[command(
        after_help = "Examples:\n  statectl init\n  statectl init models/.statectl\n  statectl init postgres://admin@db.internal/replay   # a shared store's tables"
    )]
    Init(InitArgs),
    /// The reference experiment end to end: train, then the five cases, each check shown
    #[command(
        after_help = "Examples:\n  statectl demo\n  statectl --store /tmp/demo-store demo\n  statectl demo --force            # run again, replacing model demo and its tags"
    )]
    Demo(DemoArgs),
    /// Train a stateful LSTM (default: the reference experiment's data and settings)
    #[command(
        after_help = "Examples:\n  statectl train\n  statectl train --data examples/data/series.csv --seq-len 20 --units 32,24 --epochs 50 --name sensor --drop-remainder"
    )]
    Train(TrainArgs),
    /// Models: import outside weights, list, show, export
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  statectl model import model.keras\n  statectl model import model.pt --head softmax --name policy\n  statectl model import weights.safetensors --head softmax --batch-size 6 --name mymodel\n  statectl model list\n  statectl model show mymodel\n  statectl model export mymodel --format keras -o mymodel.keras"
    )]
    Model(ModelCommand),
    /// Run a batch from a stream's state (or --from REF), record it, advance the stream
    #[command(
        after_help = "Examples:\n  statectl predict --input examples/data/x.safetensors\n  statectl predict --input batch.csv --from trained --no-advance --tag probe -o out.safetensors"
    )]
    Predict(PredictArgs),
    /// Name a state with a tag (default: the stream's HEAD)
    #[command(
        after_help = "Examples:\n  statectl snapshot --tag before-retrain\n  statectl snapshot HEAD~2 --tag old --force"
    )]
    Snapshot(SnapshotArgs),
    /// Set a stream to a stored state, one slot broadcast, or a re-batched selection
    #[command(
        after_help = "Examples:\n  statectl restore trained\n  statectl restore trained --slot 0 --batch-size 32\n  statectl restore trained --slots 0,3"
    )]
    Restore(RestoreArgs),
    /// Set a stream to zeros
    #[command(
        after_help = "Examples:\n  statectl reset\n  statectl reset --batch-size 8 --stream eval"
    )]
    Reset(ResetArgs),
    /// The store at a glance: models and their streams, counts, size, schema, last event
    #[command(after_help = "Examples:\n  statectl status\n  statectl --json status")]
    Status,
    /// History of a stream, newest first
    #[command(
        after_help = "Examples:\n  statectl log\n  statectl log --all --kind predict --since 2h --limit 20"
    )]
    Log(LogArgs),
    /// One state: layout, slots, tags, origin, statistics
    #[command(after_help = "Examples:\n  statectl show\n  statectl show trained --values")]
    Show(ShowArgs),
    /// Compare two states of the same layout and batch size
    #[command(
        after_help = "Examples:\n  statectl diff case1/end case2/end --per-slot\n  statectl diff stored-state true-state --input seq.safetensors --exit-code"
    )]
    Diff(DiffArgs),
    /// Write a state as a safetensors file (`l{k}.h`, `l{k}.c` as [batch, units])
    #[command(
        after_help = "Examples:\n  statectl export trained -o trained.safetensors\n  statectl export case1/end case2/end -o bundle.safetensors"
    )]
    Export(ExportArgs),
    /// Replay recorded predictions (and with --train, training) and check them bit for bit
    #[command(
        after_help = "Examples:\n  statectl audit\n  statectl audit --model demo --since 7d --tolerance 1e-6\n  statectl audit --train demo"
    )]
    Audit(AuditArgs),
    /// Re-hash every slot, state, object and weights file; check every ref and event
    #[command(
        after_help = "Examples:\n  statectl verify\n  statectl --json verify\n  statectl verify --repair"
    )]
    Verify(VerifyArgs),
    /// Run a prefix from stored state(s) and store the result, touching no stream (R2D2's burn-in)
    #[command(
        after_help = "Examples:\n  statectl burn-in stored --input prefix.safetensors --tag burned\n  statectl burn-in seq0 seq1 seq2 --per-slot --input prefixes.safetensors --tag-prefix burned/"
    )]
    BurnIn(BurnInArgs),
    /// Tags: list, delete
    #[command(subcommand)]
    #[command(after_help = "Examples:\n  statectl tag list\n  statectl tag delete old")]
    Tag(TagCommand),
    /// Remove what no tag, stream or kept event reaches
    #[command(
        after_help = "Examples:\n  statectl gc --dry-run\n  statectl gc --keep-events-since 30d"
    )]
    Gc(GcArgs),
    /// Concatenate states of one layout into one batch (writes a slot list, no tensor bytes)
    #[command(
        after_help = "Examples:\n  statectl stack 'buf/k5/*' --tag batch7\n  statectl stack seq3 seq0 seq9 --tag sampled\n  statectl stack --refs-from sampled.txt --tag batch8"
    )]
    Stack(StackArgs),
    /// One state per slot of a state, tagged PREFIX + slot, each with its lineage
    #[command(
        after_help = "Examples:\n  statectl split HEAD --tag-prefix buf/k5/\n  statectl split trained --tag-prefix trained/slot"
    )]
    Split(SplitArgs),
    /// Charts: losses, a state's values, staleness (SVG, or PNG by the file name)
    #[command(subcommand)]
    Plot(PlotCommand),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    #[command(
        after_help = "Examples:\n  source <(statectl completions bash)\n  statectl completions zsh > ~/.zfunc/_statectl"
    )]
    Completions(CompletionsArgs),
    /// Print a manual page (roff) on stdout: statectl's, or a command's
    #[command(
        after_help = "Examples:\n  statectl man > statectl.1 && man ./statectl.1\n  statectl man train > statectl-train.1\n  statectl man model import > statectl-model-import.1"
    )]
    Man(ManArgs),
    /// Send what a shared store (PostgreSQL) lacks: content, the journal, models, tags, streams
    #[command(
        after_help = "Examples:\n  statectl push postgres://actor@db.internal/replay\n  statectl push postgres://actor@db.internal/replay --tags 'buf/host7/*'\n\nA tag or stream the shared store has\nelsewhere, or a model of the same name with other weights, is refused unless --force."
    )]
    Push(PushArgs),
    /// Copy a shared store's refs and the content they need into this store
    #[command(
        after_help = "Examples:\n  statectl pull postgres://learner@db.internal/replay\n  statectl pull postgres://learner@db.internal/replay --tags 'buf/*'"
    )]
    Pull(PullArgs),
    /// Read a state from a safetensors file (`l{k}.h`, `l{k}.c` as [batch, units])
    #[command(
        after_help = "Examples:\n  statectl import state.safetensors --tag from-keras\n  statectl import replay.safetensors --per-slot --tag-prefix seq"
    )]
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The reference model's recurrent cell (the five cases hold for either)
    #[arg(long, value_enum, default_value = "lstm")]
    pub cell: CellArg,
    /// Replace an existing model `demo` and move the demo's tags (trained, case1/start, ...)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print (`train`, `model import`) [default: statectl's own page]
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Store folder, or a shared store's postgres:// URL [default: --store, else $STATECTL_STORE, else ./.statectl]
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The shared store: postgres://USER@HOST:PORT/DATABASE
    #[arg(value_name = "URL")]
    pub url: String,
    /// Only the tags matching this pattern (* and ?) and the states they name
    #[arg(long, value_name = "PATTERN")]
    pub tags: Option<String>,
    /// Move tags and streams the shared store has elsewhere; replace models of the same name
    #[arg(long)]
    pub force: bool,
    /// If another writer moves a stream while this push runs, read again and push again (up to 5 times) instead of failing; a stream that diverged is still refused
    #[arg(long)]
    pub retry: bool,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The shared store: postgres://USER@HOST:PORT/DATABASE
    #[arg(value_name = "URL")]
    pub url: String,
    /// Only the tags matching this pattern (* and ?) and the states they name
    #[arg(long, value_name = "PATTERN")]
    pub tags: Option<String>,
    /// Move tags and streams here to where the shared store has them
    #[arg(long)]
    pub force: bool,
}

/// A tolerance: a finite number, zero or more.
fn tolerance(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(t) if t.is_finite() && t >= 0.0 => Ok(t),
        Ok(_) => Err(format!(
            "'{text}' is not a tolerance: give a finite number of zero or more, e.g. 1e-6"
        )),
        Err(_) => Err(format!(
            "'{text}' is not a number: give a tolerance such as 1e-6"
        )),
    }
}

/// More refs, from a file.
#[derive(Debug, Args, Clone)]
pub struct RefsFromArgs {
    /// Also the refs listed in FILE, one per line (`-` for stdin; `#` starts a comment)
    #[arg(long, value_name = "FILE")]
    pub refs_from: Option<String>,
}

#[derive(Debug, Args)]
pub struct StackArgs {
    /// States to stack, in order (tag patterns such as 'buf/k5/*' select many, in natural order)
    #[arg(value_name = "REF")]
    pub references: Vec<String>,
    #[command(flatten)]
    pub refs_from: RefsFromArgs,
    #[command(flatten)]
    pub tag: TagArgs,
    #[command(flatten)]
    pub stream: StreamArgs,
}

/// An optional tag on the state a command makes.
#[derive(Debug, Args, Clone)]
pub struct TagArgs {
    /// Tag the state this command makes
    #[arg(long, value_name = "NAME")]
    pub tag: Option<String>,
    /// Move the tag if it names another state
    #[arg(long, requires = "tag")]
    pub force: bool,
}

impl TagArgs {
    /// The tag to set, if any.
    pub fn request(&self) -> Option<crate::ops::tags::TagRequest> {
        self.tag.clone().map(|name| crate::ops::tags::TagRequest {
            name,
            force: self.force,
        })
    }
}

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// State to split into one state per slot
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Tag slot k's state PREFIX + k (e.g. buf/k5/ gives buf/k5/0, buf/k5/1, ...)
    #[arg(long, value_name = "PREFIX")]
    pub tag_prefix: String,
    /// Move tags that already exist
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub stream: StreamArgs,
}

/// Which model and stream a command works on.
#[derive(Debug, Args, Clone)]
pub struct StreamArgs {
    /// Model name [default: the newest model]
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Stream name: each model has one current state per stream
    #[arg(long, value_name = "NAME", default_value = "main")]
    pub stream: String,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Bring in outside weights (PyTorch or Keras names)
    Import(ModelImportArgs),
    /// List the models in the store
    List,
    /// One model: config, weights id, streams
    Show(ModelShowArgs),
    /// Write a model's weights (torch layout, config in the metadata)
    Export(ModelExportArgs),
    /// Remove a model and its streams (its events stay in the journal, and audit still replays them until gc drops them)
    Delete {
        /// Model name
        name: String,
    },
    /// Give a model a new name (its history, streams and audits follow it)
    Rename {
        /// The model's name now
        from: String,
        /// Its new name
        to: String,
    },
}

#[derive(Debug, Args)]
pub struct ModelImportArgs {
    /// Model file: safetensors, Keras `.keras` or `.weights.h5`, or a PyTorch `torch.save` state_dict (`.pt`, `.pth`, `.bin`); recognised by its content
    pub file: PathBuf,
    /// Tensor naming scheme of the file [default: detected from the names]
    #[arg(long, value_enum)]
    pub layout: Option<LayoutArg>,
    /// Head activation [default: as a `.keras` file or statectl's own export says; `linear` (the nn.Linear's output) for a PyTorch file]; required for other weights: they cannot tell a classifier from a regressor or Q-network
    #[arg(long, value_enum)]
    pub head: Option<HeadArg>,
    /// Model name [default: the file name without extension]
    #[arg(long)]
    pub name: Option<String>,
    /// Batch size of the `main` stream's starting zero state [default: a stateful `.keras` model's fixed batch, else 1]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: Option<u32>,
    /// Where the head reads: the last step, or every step [default: as the file says, else last]
    #[arg(long, value_enum)]
    pub outputs: Option<OutputsArg>,
    /// Keras LSTM layer names in order, when shapes leave the order ambiguous
    #[arg(long, value_delimiter = ',')]
    pub layers: Option<Vec<String>>,
    /// Replace a model of that name (its events stay in the journal)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ModelShowArgs {
    /// Model name [default: the newest model]
    pub model: Option<String>,
}

#[derive(Debug, Args)]
pub struct ModelExportArgs {
    /// Model name
    pub model: String,
    /// Output file
    #[arg(short, long)]
    pub output: PathBuf,
    /// Tensor names to write: PyTorch's (the stored file, as it is) or Keras's (`lstm/kernel`, ..., `dense/kernel`)
    #[arg(long, value_enum, default_value = "torch")]
    pub layout: LayoutArg,
    /// Kind of file: safetensors, or a Keras 3 `.keras` model
    #[arg(long, value_enum, default_value = "safetensors")]
    pub format: ExportFormatArg,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Input batch: .safetensors (`x` [batch, steps, features]), .json, or .csv (one row per batch entry, its columns the time steps of a one-feature input; for a training series, where a row is a time step, use --series); `-` for stdin
    #[arg(
        long,
        short,
        required_unless_present = "series",
        conflicts_with = "series"
    )]
    pub input: Option<String>,
    /// A CSV time series as `train --data` reads it (a row per time step, a column per feature): one sequence, batch 1; the output is the step after its last row
    #[arg(long, value_name = "FILE")]
    pub series: Option<String>,
    /// With --series: then predict N more steps, each fed back as the next step's input (a linear head with as many outputs as inputs); each step is a recorded prediction
    #[arg(long, value_name = "N", requires = "series", conflicts_with_all = ["output", "input"], value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub forecast: Option<u32>,
    #[command(flatten)]
    pub stream: StreamArgs,
    /// Start from this state instead of the stream's HEAD
    #[arg(long, value_name = "REF")]
    pub from: Option<String>,
    /// Record the prediction but leave the stream where it was
    #[arg(long)]
    pub no_advance: bool,
    #[command(flatten)]
    pub tag: TagArgs,
    /// Also write outputs and logits to this safetensors file
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// If another command moves the stream while this one computes, recompute from the new state instead of failing
    #[arg(long)]
    pub retry: bool,
    /// Start the stream from zeros even if its name is one typo away from an existing stream (any other new name starts a stream without it)
    #[arg(long)]
    pub new_stream: bool,
    /// Kernel that computes the prediction (recorded with the event; `audit` replays with it)
    #[arg(long, default_value = "fused", value_parser = KernelArg::parser())]
    pub kernel: KernelArg,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// State to name
    #[arg(value_name = "REF", default_value = "HEAD")]
    pub reference: String,
    /// Tag name
    #[arg(long)]
    pub tag: String,
    /// Move the tag if it already names another state
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub stream: StreamArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// State to restore: a tag, an id prefix, HEAD, HEAD~N or zeros
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Broadcast this slot to every slot of the batch
    #[arg(long, conflicts_with = "slots")]
    pub slot: Option<usize>,
    /// Pick these slots, in this order, as the new batch (e.g. 0,0,3)
    #[arg(long, value_delimiter = ',')]
    pub slots: Option<Vec<usize>>,
    /// Batch size of the broadcast (with --slot, or for a one-slot state)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: Option<u32>,
    #[command(flatten)]
    pub stream: StreamArgs,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Batch size of the zero state [default: the stream's current batch size]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: Option<u32>,
    #[command(flatten)]
    pub stream: StreamArgs,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    /// The whole journal: every model and stream
    #[arg(long, conflicts_with = "model")]
    pub all: bool,
    /// Only events of this kind (train, predict, restore, slice, reset, import, tag, burn-in, ...)
    #[arg(long)]
    pub kind: Option<String>,
    /// Only events this recent: 30s, 15m, 2h, 7d
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Show at most this many events, newest first; 0 shows all [default: 50 in the table, all with --json]
    #[arg(long)]
    pub limit: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// State to show
    #[arg(value_name = "REF", default_value = "HEAD")]
    pub reference: String,
    /// Print the state's numbers, per slot and tensor
    #[arg(long)]
    pub values: bool,
    #[command(flatten)]
    pub stream: StreamArgs,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// First state
    pub a: String,
    /// Second state
    pub b: String,
    /// A row per slot
    #[arg(long)]
    pub per_slot: bool,
    /// Treat differences up to T as equal (default: only bit-equal is equal)
    #[arg(long, value_name = "T", value_parser = tolerance)]
    pub tolerance: Option<f64>,
    /// Exit 3 when the states differ
    #[arg(long)]
    pub exit_code: bool,
    /// Also run both states on this input and report the output divergence, max|y_a - y_b| / max|y_a| (A is the reference)
    #[arg(long, value_name = "FILE")]
    pub input: Option<String>,
    #[command(flatten)]
    pub stream: StreamArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// State(s) to export (tag patterns such as 'buf/*' select many); several are written as named states (`<ref>.l{k}.h`)
    #[arg(value_name = "REF")]
    pub references: Vec<String>,
    #[command(flatten)]
    pub refs_from: RefsFromArgs,
    /// Export only these slots of the (one) state, in this order
    #[arg(long, value_delimiter = ',')]
    pub slots: Option<Vec<usize>>,
    /// Output safetensors file
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub stream: StreamArgs,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// safetensors file: `l{k}.h`, `l{k}.c` as [batch, units], or `<name>.l{k}.h`, `<name>.l{k}.c` for named states
    pub file: PathBuf,
    /// Tag the imported state
    #[arg(long, conflicts_with_all = ["tag_prefix", "per_slot"])]
    pub tag: Option<String>,
    /// Store each of the n slots as its own one-slot state (e.g. one per replayed sequence)
    #[arg(long)]
    pub per_slot: bool,
    /// Tag each state: the prefix plus the slot number (--per-slot) or the state's name (named states)
    #[arg(long, value_name = "PREFIX")]
    pub tag_prefix: Option<String>,
    /// Move tags that already exist
    #[arg(long)]
    pub force: bool,
    /// Accept NaN or infinite values
    #[arg(long)]
    pub allow_nonfinite: bool,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training data: .safetensors (`x` [n, steps, features], `y`) or a CSV time series [default: the alphabet data]
    #[arg(long, value_name = "FILE")]
    pub data: Option<std::path::PathBuf>,
    /// Recurrent cell
    #[arg(long, value_enum, default_value = "lstm")]
    pub cell: CellArg,
    /// Layer widths, input side first (e.g. 32,24 stacks two layers)
    #[arg(long, value_delimiter = ',', default_value = "16", value_parser = clap::value_parser!(u32).range(1..))]
    pub units: Vec<u32>,
    /// Where the head reads: the last step, or every step (then `y` holds a target per step: [n, steps] class indices or [n, steps, outputs]; a CSV's targets are each step's next row)
    #[arg(long, value_enum, default_value = "last")]
    pub outputs: OutputsArg,
    /// Leave out the last samples that do not fill a batch (stateful training needs full batches)
    #[arg(long)]
    pub drop_remainder: bool,
    /// Kernel that computes the training (recorded with the model; `audit --train` reruns with it)
    #[arg(long, default_value = "fused", value_parser = KernelArg::parser())]
    pub kernel: KernelArg,
    /// Window length when cutting a CSV time series (a CSV row is one time step; each window's target is the row after it)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub seq_len: Option<u32>,
    /// Rows from one window's start to the next's; --stride equal to --seq-len cuts consecutive windows that do not overlap
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub stride: u32,
    /// CSV column (from 0) whose next value is the target
    #[arg(long, default_value_t = 0)]
    pub target: usize,
    /// Treat CSV targets as class indices of this many classes
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub classes: Option<u32>,
    /// Head activation [default: from the data]
    #[arg(long, value_enum)]
    pub head: Option<HeadArg>,
    /// Samples per batch; also the batch size of the trained model's `main` stream
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Passes over the training data [default: 2]; with --resume, the run's new total
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: Option<u32>,
    /// Adam learning rate [default: 0.001]; with --resume, the rate from the checkpoint on
    #[arg(long)]
    pub lr: Option<f32>,
    /// Seed of the initial weights and the shuffle
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Carry the state from batch to batch (the default)
    #[arg(long, overrides_with = "no_stateful")]
    pub stateful: bool,
    /// Start every batch from zeros
    #[arg(long)]
    pub no_stateful: bool,
    /// Shuffle samples each epoch (the default)
    #[arg(long, overrides_with = "no_shuffle")]
    pub shuffle: bool,
    /// Keep the data order
    #[arg(long)]
    pub no_shuffle: bool,
    /// Start from these weights instead of a seeded draw
    #[arg(long, value_name = "WEIGHTS")]
    pub init: Option<std::path::PathBuf>,
    /// Start from a stored model's weights (fine-tuning): its cell, layers, head and outputs; the data must fit its inputs and outputs
    #[arg(long, value_name = "MODEL", conflicts_with_all = ["init", "cell", "units", "head", "outputs"])]
    pub from: Option<String>,
    /// Naming scheme of --init weights
    #[arg(long, value_enum, default_value = "torch")]
    pub init_layout: LayoutArg,
    /// Model name [default: model-N]
    #[arg(long)]
    pub name: Option<String>,
    /// Which training states to record
    #[arg(long, value_enum, default_value = "epoch")]
    pub record: RecordArg,
    /// Hold out this share of the samples, from the end, and report their loss after every epoch (Keras's validation_split)
    #[arg(long, value_name = "SHARE", group = "validation")]
    pub validation_split: Option<f32>,
    /// Validate on these samples instead (a file like --data's, read the same way), after every epoch (Keras's validation_data)
    #[arg(long, value_name = "FILE", group = "validation")]
    pub validation_data: Option<PathBuf>,
    /// Stop once the validation loss has not improved for N epochs (needs --validation-split or --validation-data)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), requires = "validation")]
    pub patience: Option<u32>,
    /// Also keep the epoch with the lowest validation loss: its weights as model NAME.best, the state it left as tag NAME/best (needs --validation-split or --validation-data)
    #[arg(long, requires = "validation")]
    pub keep_best: bool,
    /// Continue an unfinished training run from its latest checkpoint, with the data and settings it started with
    #[arg(long, value_name = "RUN", conflicts_with_all = [
        "data", "cell", "units", "outputs", "drop_remainder", "kernel", "seq_len", "stride",
        "target", "classes", "head", "batch_size", "seed", "stateful",
        "no_stateful", "shuffle", "no_shuffle", "init", "init_layout", "name", "record", "from",
        "validation_split", "validation_data", "patience", "keep_best",
    ])]
    pub resume: Option<String>,
    /// With --resume: continue from the checkpoint after N batches (as `model list` and errors name them) instead of the latest
    #[arg(long, value_name = "N", requires = "resume")]
    pub from_checkpoint: Option<usize>,
    /// Write a checkpoint after every N batches, or at each epoch's end (`epoch`) [default: epoch]; a stopped run continues from the latest with --resume
    #[arg(long, value_name = "N|epoch", value_parser = crate::ops::runs::CheckpointEvery::parse)]
    pub checkpoint_every: Option<crate::ops::runs::CheckpointEvery>,
    /// Checkpoints kept while the run goes on, newest first (older ones are removed as new ones are written) [default: 2]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_checkpoints: Option<u32>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only events of this model
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Only events of this stream
    #[arg(long, value_name = "NAME")]
    pub stream: Option<String>,
    /// Only these events (numbers, comma-separated or repeated)
    #[arg(long = "event", value_name = "ID", value_delimiter = ',')]
    pub events: Vec<i64>,
    /// Only events this recent: 30s, 15m, 2h, 7d
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Only the events that produced this tag's state
    #[arg(long, value_name = "NAME")]
    pub tag: Option<String>,
    /// Accept differences up to T (absolute), and say so
    #[arg(long, value_name = "T", value_parser = tolerance)]
    pub tolerance: Option<f64>,
    /// Exit 0 when no event matches the filters (otherwise that is an error: a mistyped filter audits nothing)
    #[arg(long)]
    pub allow_empty: bool,
    /// Rerun training of MODEL (default: every trained model) and check the weights and training states
    #[arg(long, value_name = "MODEL", num_args = 0..=1, default_missing_value = "")]
    pub train: Option<String>,
}

#[derive(Debug, Args)]
pub struct BurnInArgs {
    /// Start state(s) (tag patterns such as 'buf/*' select many); with --per-slot one one-slot state per sequence of the prefix
    #[arg(value_name = "REF")]
    pub references: Vec<String>,
    #[command(flatten)]
    pub refs_from: RefsFromArgs,
    /// The prefix to run: [batch, steps, features] (.safetensors, .csv, .json, or - for stdin)
    #[arg(long, short)]
    pub input: String,
    /// Each REF is a one-slot state for one sequence (row) of the prefix
    #[arg(long)]
    pub per_slot: bool,
    /// Tag the resulting state
    #[arg(long, conflicts_with = "tag_prefix")]
    pub tag: Option<String>,
    /// Tag each resulting state (--per-slot): the prefix plus its source's name (the REF as given, e.g. burned/seq3), or its row with --tag-by row
    #[arg(long, value_name = "PREFIX")]
    pub tag_prefix: Option<String>,
    /// What --tag-prefix adds to the prefix: the source's name, or the row of the prefix (for sampled sources that repeat, such as the zero state)
    #[arg(long, value_enum, default_value = "source", requires = "tag_prefix")]
    pub tag_by: TagByArg,
    /// Move tags that already exist
    #[arg(long)]
    pub force: bool,
    /// Model to run [default: the newest model]
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PlotCommand {
    /// Training losses per epoch, and per batch where recorded (`train --record batch`); several models overlaid
    #[command(
        after_help = "Examples:\n  statectl plot loss demo -o loss.svg\n  statectl plot loss sensor gru-alphabet -o losses.png\n  statectl plot loss demo --log-scale -o loss-log.svg"
    )]
    Loss {
        /// Models to draw
        #[arg(value_name = "MODEL", required = true)]
        models: Vec<String>,
        /// Output file: .svg, or .png
        #[arg(short, long, default_value = "loss.svg")]
        output: PathBuf,
        /// A logarithmic loss axis: losses that fall by decades stay readable
        #[arg(long)]
        log_scale: bool,
    },
    /// Heatmap of a state's values: per layer and tensor (h, c), slots x units
    #[command(after_help = "Examples:\n  statectl plot state trained -o trained.svg")]
    State {
        /// State to draw
        #[arg(value_name = "REF", default_value = "HEAD")]
        reference: String,
        /// Output file: .svg, or .png
        #[arg(short, long, default_value = "state.svg")]
        output: PathBuf,
        #[command(flatten)]
        stream: StreamArgs,
    },
    /// Per-slot staleness of each B against A on an input: bars side by side (R2D2's zero / stored / burn-in)
    #[command(
        after_help = "Examples:\n  statectl plot staleness true zeros stored burned --input seq.safetensors -o staleness.svg"
    )]
    Staleness {
        /// The reference state (R2D2's true state)
        #[arg(value_name = "A")]
        a: String,
        /// States compared with A, one bar series each
        #[arg(value_name = "B", required = true)]
        b: Vec<String>,
        /// Input both run on: [batch, steps, features]
        #[arg(long, short)]
        input: String,
        /// Output file: .svg, or .png
        #[arg(short, long, default_value = "staleness.svg")]
        output: PathBuf,
        #[command(flatten)]
        stream: StreamArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TagCommand {
    /// Every tag and the state it names
    List,
    /// Remove tags (the states stay until gc finds them unreachable)
    #[command(
        after_help = "Examples:\n  statectl tag delete kept\n  statectl tag delete 'buf/*' old-1 old-2"
    )]
    Delete {
        /// Tag names, or patterns (`*` any run, `?` one character; quote them)
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// First put back what the journal can rebuild (streams whose rows are
    /// gone), reporting each, then verify
    #[arg(long)]
    pub repair: bool,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// List what would be removed and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Drop journal events older than this (30s, 15m, 2h, 7d) first; by default every event is kept
    #[arg(long, value_name = "DURATION")]
    pub keep_events_since: Option<String>,
    /// A replay buffer's bound: of the tags under --prefix, keep the N most recently set and drop the rest (with the states only they named) first
    #[arg(long, value_name = "N", requires = "prefix")]
    pub keep_newest: Option<usize>,
    /// The tags --keep-newest applies to (`buf/` names `buf/0001`, `buf/a/b`, ...)
    #[arg(long, value_name = "PREFIX", requires = "keep_newest")]
    pub prefix: Option<String>,
    /// On a shared store: remove what nothing reaches only once a run has found it so at least this long before (a push in flight keeps what it sent for this long) [default: 1h]
    #[arg(long, value_name = "DURATION")]
    pub grace: Option<String>,
}

/// The first line of a clap usage error, without its `error: ` label: the
/// message an error object or exception carries.
pub fn usage_error_line(error: &clap::Error) -> String {
    error
        .to_string()
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_string()
}
