//! Argument parsing, split by subcommand (one file each), in the style of cargo-nextest.

mod attack;
mod coref;
mod eval;
mod predict;
mod progress;
mod replay;
mod report;
mod resources;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use robust::model::{Classifier, InferenceOptions};

#[derive(Debug, Parser)]
#[command(name = "robust", version, about = "Adversarial-robustness test harness for BERT-family NLP models", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Seed for every random choice: attacks draw from ChaCha8 streams seeded with it
    /// [default: the recipe's seed, else 0].
    #[arg(long, global = true)]
    pub seed: Option<u64>,
    /// Threads ONNX Runtime uses [default: all cores; more are capped to them, with a warning];
    /// see --workers for how they are shared.
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub threads: Option<u64>,
    /// Classifier sessions that run batches of short rows (up to 64 tokens) side by side,
    /// splitting --threads between them; built only for requests of 2,000 or more such rows,
    /// and each holds its own copy of the weights. 1 turns them off [default: the largest
    /// divisor of --threads up to 4].
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub workers: Option<u64>,
    /// Rows per forward pass. Rows are sorted by length and each batch is padded to its longest.
    #[arg(long, global = true, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
    /// Cut inputs to this many tokens (special tokens included) [default: the model's limit].
    #[arg(long, global = true)]
    pub max_len: Option<usize>,
    /// Entries in the prediction cache (keyed by exact token ids); 0 turns it off.
    #[arg(long, global = true, default_value_t = 200_000)]
    pub cache_size: usize,
    /// Path to libonnxruntime.so. Otherwise ORT_DYLIB_PATH, then .ort/ (scripts/setup) in the
    /// working directory or above the executable, then a pip-installed onnxruntime package.
    #[arg(long, global = true, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Run the model's graph exactly as exported. By default the last layer is computed only
    /// for [CLS], the one position a classifier reads (same logits, an eighth fewer FLOPs on
    /// a 6-layer BERT); this turns that off.
    #[arg(long, global = true)]
    pub full_graph: bool,
    /// Less output: warnings and errors only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More output (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl GlobalArgs {
    pub fn inference_options(&self) -> InferenceOptions {
        let defaults = InferenceOptions::default();
        // #30 item 10: more threads or workers than cores only cost memory (each worker holds
        // its own weights) and time; they are capped, with a warning. No result depends on
        // either, so the outputs are the same bytes.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = self.threads.map(|t| capped("--threads", t, cores));
        let workers = self.workers.map(|w| capped("--workers", w, cores));
        InferenceOptions {
            batch_size: self.batch_size as usize,
            threads: threads.unwrap_or(defaults.threads).max(1),
            cache_capacity: self.cache_size,
            max_len: self.max_len,
            ort_lib: self.ort_lib.clone(),
            narrow_tail: !self.full_graph,
            workers,
        }
    }

    pub fn load_classifier(&self, dir: &std::path::Path) -> anyhow::Result<Classifier> {
        Classifier::load(dir, self.inference_options())
            .with_context(|| format!("failed to load model {}", dir.display()))
    }
}

/// `value` of `flag`, at most `cores`; capping it warns once per process.
fn capped(flag: &str, value: u64, cores: usize) -> usize {
    let value = usize::try_from(value).unwrap_or(usize::MAX);
    if value <= cores {
        return value;
    }
    static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut warned = WARNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !warned.iter().any(|f| f == flag) {
        warned.push(flag.to_string());
        tracing::warn!(
            "{flag} {value}: this machine has {cores} cores available; using {cores} (more only \
             cost memory and time)"
        );
    }
    cores
}

/// Columns of a corpus file, shared by every command that reads one.
#[derive(Debug, Args)]
pub struct CorpusArgs {
    /// Corpus: TSV or CSV with a header row (GLUE's `sentence`/`text` + `label` by default).
    #[arg(long, value_name = "FILE")]
    pub corpus: PathBuf,
    /// Column holding the text [default: `sentence`, else `text`].
    #[arg(long, value_name = "NAME")]
    pub text_col: Option<String>,
    /// Column holding the gold label, as a label name or index [default: `label`].
    #[arg(long, value_name = "NAME")]
    pub label_col: Option<String>,
    /// Column holding the second segment of sentence pairs (fed as the tokenizer's pair).
    #[arg(long, value_name = "NAME")]
    pub pair_col: Option<String>,
}

impl CorpusArgs {
    pub fn columns(&self, require_label: bool) -> robust::data::corpus::Columns {
        robust::data::corpus::Columns {
            text: self.text_col.clone(),
            label: self.label_col.clone(),
            pair: self.pair_col.clone(),
            require_label,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Label sentences, one a line, and write CSV (text, label, one probability per class).
    Predict(predict::PredictArgs),
    /// Accuracy on a labelled corpus, with a 95% interval, confusion matrix and throughput.
    Eval(eval::EvalArgs),
    /// Run one attack (shuffle, negation, entity-swap, trigger; on a fill-mask model the cloze
    /// probe, on a coreference model GAP name swaps) and score how many predictions change.
    Attack(Box<attack::AttackArgs>),
    /// Run an attack suite (nightly job): per-run folder with CSVs, manifest and an HTML
    /// report, history.csv, --resume, and --compare that exits 3 on a regression; --shard K/N
    /// runs one part of it, and `robust report merge` joins the parts.
    #[command(args_conflicts_with_subcommands = true)]
    Report(report::ReportArgs),
    /// Run the attack recorded in DIR/provenance.json (written by `robust attack --out DIR`)
    /// again, after checking every input's sha256, and check that each file it wrote comes out
    /// byte for byte the same; a difference is named by file and line (exit 1).
    Replay(replay::ReplayArgs),
    /// List the resources robust reads without being told (name lexicon, name frequencies,
    /// sentiment-word list, ONNX Runtime library): where each was found, in lookup order, and
    /// its sha256.
    Resources(resources::ResourcesArgs),
}

/// Run the command; the exit code is 0 unless a command has a verdict to report (`report
/// --compare` exits 3 on a regression). Errors exit 1 (in main).
pub fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let ok = |()| std::process::ExitCode::SUCCESS;
    match cli.command {
        Command::Predict(args) => predict::run(&cli.global, args).map(ok),
        Command::Eval(args) => eval::run(&cli.global, args).map(ok),
        Command::Attack(args) => attack::run(&cli.global, *args).map(ok),
        Command::Report(args) => report::run(&cli.global, args),
        Command::Resources(args) => resources::run(&cli.global, args).map(ok),
        Command::Replay(args) => replay::run(&cli.global, args).map(ok),
    }
}

/// The command line, parsed, with `--kind`'s values taken from the built-in attack registry
/// (the library's `AttackSpec` knows no kinds; the registry is the one list of them).
pub fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let command = Cli::command().mut_subcommand("attack", |attack| {
        attack.mut_arg("kind", |kind| {
            kind.value_parser(robust::attack::builtin::kind_values())
        })
    });
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

pub fn init_logging(global: &GlobalArgs) {
    let level = match (global.quiet, global.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // ORT logs every session at info; keep it at warn unless asked for trace.
    let ort_level = if global.verbose >= 2 { "trace" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROBUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},ort={ort_level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .try_init();
}

/// Write to `--out` atomically, or to stdout.
pub fn emit(out: Option<&std::path::Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            robust::report::write_atomic(path, text.as_bytes())?;
            tracing::info!("wrote {}", path.display());
        }
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
        }
    }
    Ok(())
}
