//! `robust attack`: run one attack from a recipe and/or flags through the library's engine,
//! print the scores, and write `examples.csv` and `summary.csv` (plus a trigger's loss curve).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use robust::attack::engine::{self, Models};
use robust::attack::provenance::{self, Provenance};
use robust::attack::spec::AttackSpec;
use robust::attack::trigger::{ResumeMode, remove_checkpoint};
use robust::report::Format;

use super::{GlobalArgs, emit, progress::Progress};

#[derive(Debug, Args)]
pub struct AttackArgs {
    /// Recipe file (attacks/*.toml); flags given here override its fields.
    #[arg(long, value_name = "FILE")]
    pub recipe: Option<PathBuf>,
    #[command(flatten)]
    pub spec: AttackSpec,
    /// Folder for examples.csv and summary.csv (each written atomically); trigger attacks add
    /// loss_curve.csv and trigger.json, and provenance.json records the run for `robust
    /// replay`. A folder that already holds an earlier run's results is refused (see --force),
    /// and so is any path that is, or is inside, an input (the corpus, the model folder, the
    /// recipe, a word list).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace an earlier run's results in --out (examples.csv, summary.csv, trigger.json,
    /// loss_curve.csv, attack-shard.json). They stay as they are until this run's results are
    /// written (a run that fails or is stopped leaves them whole); then those this run does
    /// not write are removed, so the folder holds one run's files.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Format of the summary printed to standard output.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Go on with the search (a trigger search, or a word or character attack) that an earlier
    /// run with the same recipe, flags and --out left unfinished (killed or stopped): it ends
    /// byte-identical to a search never stopped.
    /// A trigger search keeps its checkpoint in DIR/.trigger-search until its results are
    /// written; a word or character attack keeps one in DIR/.word-search, chunk by chunk of
    /// examples.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// Write the trigger search's set-up, gradient estimates and iterations to FILE as JSON
    /// lines (for benches/compare's side-by-side against exact gradients).
    #[arg(long, value_name = "FILE")]
    pub gradient_trace: Option<PathBuf>,
    /// Rows attacked per chunk: a corpus is read, perturbed, run and written chunk by chunk, so
    /// memory stays flat however long it is. No result depends on it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_rows: Option<u64>,
    /// Attack only part K of N of the rows (contiguous ranges, in order; perturbation attacks
    /// only): --out gets the part's examples.csv and attack-shard.json, and `robust report
    /// merge DIR... --out OUT` joins the N parts into the examples.csv and summary.csv of the
    /// whole attack, byte-identical to an unsharded run.
    #[arg(long, value_name = "K/N", requires = "out", conflicts_with = "resume")]
    pub shard: Option<robust::shard::Shard>,
}

/// Where `robust attack --out DIR` keeps a trigger search's checkpoint.
pub const CHECKPOINT_DIR: &str = ".trigger-search";
/// Where a word or character attack keeps its checkpoint in `--out` (#31).
pub const ROW_CHECKPOINT_DIR: &str = ".word-search";

use robust::guard::ATTACK_RESULTS as RESULT_FILES;

/// The files and folders `spec` (and its `recipe`) make an attack read, for
/// [`robust::guard::Inputs::check`].
fn inputs(
    spec: &AttackSpec,
    recipe: Option<&std::path::Path>,
    plan: &engine::Plan,
) -> robust::guard::Inputs {
    let mut inputs = robust::guard::Inputs::new();
    if let Some(path) = recipe {
        inputs.file("the recipe", path);
    }
    inputs.folder("the model folder", &plan.attack.model);
    for corpus in plan.corpora() {
        inputs.file("the corpus", corpus);
    }
    let lists = [
        ("the name lexicon", spec.names.as_ref()),
        ("the name-frequency table", spec.name_frequency.as_ref()),
    ];
    for (what, path) in lists {
        if let Some(path) = path {
            inputs.file(what, path);
        }
    }
    if let Some(trigger) = &plan.attack.trigger {
        for list in &trigger.exclude {
            inputs.file("the word list", &list.path);
        }
    }
    inputs
}

pub fn run(global: &GlobalArgs, args: AttackArgs) -> anyhow::Result<()> {
    let flags = AttackSpec {
        seed: global.seed,
        ..args.spec
    };
    let (spec, origin) = match &args.recipe {
        Some(path) => (
            AttackSpec::from_file(path)?.overridden_by(flags),
            path.display().to_string(),
        ),
        None => (flags, "flags".to_string()),
    };
    if let Some(out) = &args.out
        && out.is_file()
    {
        anyhow::bail!("--out {}: is a file, not a folder", out.display());
    }
    let plan = engine::plan(&spec, &origin)?;
    // #30 items 1 and 3: no output may replace an input, and --out holds one run's results.
    let inputs = inputs(&spec, args.recipe.as_deref(), &plan);
    if let Some(dir) = &args.out {
        let mut names = RESULT_FILES.to_vec();
        names.push(CHECKPOINT_DIR);
        names.push(ROW_CHECKPOINT_DIR);
        inputs.check_in("--out", dir, &names)?;
        // A --resume needs the search's own checkpoint in --out, which only a run that
        // passed this check (or had --force) leaves: its folder is its own.
        if !args.resume {
            robust::guard::occupied(dir, &RESULT_FILES, args.force)?;
        }
    }
    if let Some(trace) = &args.gradient_trace {
        inputs.check("--gradient-trace", trace)?;
    }
    let searches = plan.searches_trigger();
    if args.resume && !searches && !plan.searches_rows() {
        anyhow::bail!(
            "--resume: {} does not search; only trigger searches and word and character attacks \
             keep a checkpoint (other attacks run again in one pass)",
            plan.attack.name
        );
    }
    if args.shard.is_some() && !plan.shape.splits_rows() {
        anyhow::bail!(
            "--shard: {} is a {} attack; only perturbation attacks (shuffle, negation, entity \
             swap on a sentence classifier) split by rows. Split suites of other attacks with \
             robust report --suite S --shard K/N",
            plan.attack.name,
            plan.shape.as_str()
        );
    }
    if args.gradient_trace.is_some() && !searches {
        anyhow::bail!(
            "--gradient-trace: {} does not search a trigger",
            plan.attack.name
        );
    }
    let record = args
        .out
        .as_ref()
        .map(|_| {
            Provenance::new(
                &spec,
                &plan,
                args.recipe.as_deref(),
                global.max_len,
                global.full_graph,
                args.shard.map(|s| s.to_string()),
            )
        })
        .transpose()?;
    let run = Run {
        out: args.out.as_deref(),
        resume: args.resume,
        searches,
        gradient_trace: args.gradient_trace.clone(),
        chunk_rows: args.chunk_rows.map(|n| n as usize),
        shard: args.shard,
        force: args.force,
    };
    let summary = execute(global, &plan, &run, args.format, record)?;
    emit(None, &summary)
}

/// How `robust attack` (and `robust replay`) runs a plan.
pub(super) struct Run<'a> {
    pub out: Option<&'a Path>,
    pub resume: bool,
    pub searches: bool,
    pub gradient_trace: Option<PathBuf>,
    pub chunk_rows: Option<usize>,
    pub shard: Option<robust::shard::Shard>,
    /// Clear an earlier run's results that this run does not write (`--force`).
    pub force: bool,
}

/// Execute `plan`, write its files (and `record`, with the outputs' hashes) into `run.out`, and
/// return the summary rendered in `format`.
pub(super) fn execute(
    global: &GlobalArgs,
    plan: &engine::Plan,
    run: &Run,
    format: Format,
    record: Option<Provenance>,
) -> anyhow::Result<String> {
    let options = engine::ExecuteOptions {
        checkpoint: run.out.and_then(|dir| {
            if run.searches {
                Some(dir.join(CHECKPOINT_DIR))
            } else if plan.searches_rows() {
                Some(dir.join(ROW_CHECKPOINT_DIR))
            } else {
                None
            }
        }),
        resume: Some(if run.resume {
            ResumeMode::Required
        } else {
            ResumeMode::Fresh
        }),
        gradient_trace: run.gradient_trace.clone(),
        // examples.csv is written into --out as the attack runs (a temporary file until the
        // end); the failure examples are for the suite's HTML report only.
        stage_in: run.out.map(Path::to_path_buf),
        failure_limit: Some(0),
        chunk_rows: run.chunk_rows,
        block_bytes: None,
        shard: run.shard,
    };
    let mut models = Models::new(global.inference_options());
    let mut bar = Progress::new(&plan.attack.name);
    let mut result =
        engine::execute_with(plan, &mut models, &options, &mut |d, t| bar.update(d, t))?;
    bar.finish();
    let summary = result.render(format)?;
    if let Some(dir) = run.out {
        let mut files: Vec<(&str, String)> = result
            .files
            .iter()
            .map(|(n, t)| (n.as_str(), t.clone()))
            .collect();
        let mut names: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
        names.extend(result.staged.iter().map(|f| f.name().to_string()));
        let staged: Vec<String> = result.staged.iter().map(|f| f.name().to_string()).collect();
        robust::report::write_all_atomic_with(dir, &files, std::mem::take(&mut result.staged))
            .with_context(|| format!("failed to write results to {}", dir.display()))?;
        if let Some(record) = record {
            // The files streamed into place are hashed as written; the record goes in last, so
            // a folder with a provenance.json holds every file it names.
            let mut written: Vec<(String, Vec<u8>)> = Vec::new();
            for name in &staged {
                let path = dir.join(name);
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("failed to read back {}", path.display()))?;
                written.push((name.clone(), bytes));
            }
            written.extend(
                files
                    .drain(..)
                    .map(|(n, t)| (n.to_string(), t.into_bytes())),
            );
            let record =
                record.with_outputs(written.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
            robust::report::write_atomic(&dir.join(provenance::FILE), record.to_json().as_bytes())
                .with_context(|| format!("failed to write {}", provenance::FILE))?;
            names.push(provenance::FILE.to_string());
        }
        if run.force {
            // The earlier run's files this run did not replace go, so one folder, one run.
            let stale: Vec<&str> = RESULT_FILES
                .iter()
                .copied()
                .filter(|n| !names.iter().any(|w| w == n))
                .collect();
            robust::guard::clear(dir, &stale)?;
        }
        if let Some(checkpoint) = &options.checkpoint {
            // The results are written: the checkpoint that led to them is spent.
            remove_checkpoint(checkpoint)?;
        }
        tracing::info!("wrote {} to {}", names.join(", "), dir.display());
    }
    Ok(summary)
}
