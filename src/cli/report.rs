//! `robust report`: run an attack suite as a nightly job, keep its history, and gate on
//! regressions. The work is the library's ([`robust::suite::runner`], [`robust::suite::merge`],
//! [`robust::suite::compare`]); this file parses the flags, prints and picks the exit code.
//!
//! Exit codes: 0 success (no regression, or none tested); 1 error; 2 bad command line (clap);
//! 3 `--compare` found a metric significantly worse than in the previous run; 4 an absolute
//! gate (`max_flip_rate = 0.10` in the suite) failed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use robust::shard::Shard;
use robust::suite::Suite;
use robust::suite::compare::{self, CompareWith};
use robust::suite::merge::{self, Merged};
use robust::suite::runner::{self, Observer, ResumeFrom, RunOptions, RunOutcome};

use super::{GlobalArgs, progress::Progress};

/// The exit code for "a metric regressed", distinct from errors (1) and usage errors (2).
pub const EXIT_REGRESSION: u8 = 3;
/// The exit code for "an absolute gate failed" (it wins over a regression when both happen).
pub const EXIT_GATE: u8 = 4;

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: Option<ReportCommand>,
    /// Suite to run (e.g. attacks/nightly.toml): attacks × models × corpora.
    #[arg(long, value_name = "FILE")]
    pub suite: Option<PathBuf>,
    /// Folder holding one folder per run and `history.csv`.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Finish an interrupted run without redoing its finished attacks: the run folder, or
    /// [default] the latest unfinished run of the suite in --out.
    #[arg(long, value_name = "RUN_DIR", num_args = 0..=1, requires = "suite")]
    #[allow(clippy::option_option)]
    pub resume: Option<Option<PathBuf>>,
    /// Compare with a previous run (a run id in history.csv, or a run folder) and exit with
    /// code 3 if any metric got significantly worse [default: the latest earlier run of the
    /// same suite]. Without --suite, compares --run with it and runs nothing.
    #[arg(long, value_name = "PREV", num_args = 0..=1, default_missing_value = "")]
    pub compare: Option<String>,
    /// Without --suite: the run to check [default: the latest run in history.csv].
    #[arg(
        long,
        value_name = "RUN",
        requires = "compare",
        conflicts_with = "suite"
    )]
    pub run: Option<String>,
    /// Check the suite in full (recipes, models, corpora, gates) and print its jobs; run
    /// nothing and write nothing.
    #[arg(long, requires = "suite", conflicts_with_all = ["resume", "compare"])]
    pub check: bool,
    /// Significance level of the two-proportion test behind --compare (between 0 and 1).
    #[arg(long, default_value_t = 0.01, value_name = "ALPHA", value_parser = parse_alpha)]
    pub alpha: f64,
    /// Run only shard K of N: the suite's jobs at positions K-1, K-1+N, ... (from 0), in a
    /// shard run folder of its own; `robust report merge` joins the N shards into one run.
    /// Nothing is assembled and history.csv is not touched until the merge.
    #[arg(long, value_name = "K/N", requires = "suite", conflicts_with_all = ["compare", "check"])]
    pub shard: Option<Shard>,
}

#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// Join the shard runs of one suite (each from `robust report --suite S --shard K/N`) into
    /// one run: the same examples.csv, summary.csv, history rows and report as an unsharded
    /// run. Refuses shards of different suites, seeds, models, corpora or robust versions, a
    /// missing or repeated shard, and an unfinished one; nothing is written to --out then.
    /// Shards of one attack (`robust attack --shard K/N --out DIR`) merge the same way, into
    /// the attack's examples.csv and summary.csv in --out.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Shard run folders, in any order.
    #[arg(value_name = "SHARD_DIR", required = true)]
    pub shards: Vec<PathBuf>,
    /// Folder holding one folder per run and `history.csv`.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// As for `robust report --compare`: compare the merged run with a previous one.
    #[arg(long, value_name = "PREV", num_args = 0..=1, default_missing_value = "")]
    pub compare: Option<String>,
    /// Significance level of the two-proportion test behind --compare (between 0 and 1).
    #[arg(long, default_value_t = 0.01, value_name = "ALPHA", value_parser = parse_alpha)]
    pub alpha: f64,
    /// Shards of one attack: replace an earlier attack's results in --out (examples.csv,
    /// summary.csv, ...), which is refused otherwise. --out may never be one of the shards.
    #[arg(long)]
    pub force: bool,
}

/// A bad --alpha is a bad command line (exit 2), like any other flag clap rejects.
fn parse_alpha(text: &str) -> Result<f64, String> {
    let alpha: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if alpha > 0.0 && alpha < 1.0 {
        Ok(alpha)
    } else {
        Err("must be between 0 and 1".into())
    }
}

/// `--compare` as given: a bare flag compares with the latest earlier run.
fn compare_with(flag: &Option<String>) -> Option<CompareWith> {
    flag.as_ref().map(|p| {
        if p.is_empty() {
            CompareWith::Latest
        } else {
            CompareWith::Run(p.clone())
        }
    })
}

pub fn run(global: &GlobalArgs, args: ReportArgs) -> anyhow::Result<ExitCode> {
    if let Some(ReportCommand::Merge(m)) = &args.command {
        let compare = compare_with(&m.compare);
        return match merge::merge_forced(
            &m.shards,
            &m.out,
            compare.as_ref(),
            m.alpha,
            &global.inference_options(),
            m.force,
        )? {
            Merged::Suite(run) => finished(&run),
            Merged::Attack(report) => {
                let text = robust::report::Format::Table.exporter().attack(&report)?;
                exit_with(EXIT_OK, print(&text))
            }
        };
    }
    if args.out.is_file() {
        bail!("--out {}: is a file, not a folder", args.out.display());
    }
    match &args.suite {
        Some(path) => run_suite(global, &args, path),
        None if args.compare.is_some() => {
            let with = compare_with(&args.compare).unwrap_or(CompareWith::Latest);
            let found = compare::compare_runs(&args.out, args.run.as_deref(), &with, args.alpha)?;
            match found {
                Some(c) => {
                    let (text, code) = verdict(&c.previous, &c.current, &c.comparisons, args.alpha);
                    exit_with(code, print(&text))
                }
                None => Ok(ExitCode::SUCCESS),
            }
        }
        None => bail!("give --suite FILE to run a suite, or --compare to compare past runs"),
    }
}

fn run_suite(
    global: &GlobalArgs,
    args: &ReportArgs,
    path: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    // Everything is checked before any model runs.
    let suite = Suite::load(path)?;
    // #30 item 1: history.csv and the run folders never replace or go inside an input.
    let mut inputs = robust::guard::Inputs::new();
    inputs.file("the suite", &suite.path);
    for model in &suite.models {
        inputs.folder("the model folder", model);
    }
    for corpus in &suite.corpora {
        inputs.file("the corpus", corpus);
    }
    inputs.check_in("--out", &args.out, &["history.csv"])?;
    let found = robust::guard::present(&args.out, &robust::guard::ATTACK_RESULTS);
    if !found.is_empty() {
        bail!(
            "--out {}: holds an attack's results ({}), not a suite's runs; give a folder of \
             its own (it gets one folder per run and history.csv)",
            args.out.display(),
            found.join(", ")
        );
    }
    if args.check {
        return exit_with(EXIT_OK, print(&runner::describe(&suite)));
    }
    let options = RunOptions {
        out: args.out.clone(),
        resume: args.resume.as_ref().map(|dir| match dir {
            Some(d) => ResumeFrom::Run(d.clone()),
            None => ResumeFrom::Latest,
        }),
        shard: args.shard,
        compare: compare_with(&args.compare),
        alpha: args.alpha,
        inference: global.inference_options(),
    };
    match runner::run(&suite, &options, &mut Bars(None))? {
        RunOutcome::Shard {
            run_dir,
            record,
            total_jobs,
        } => {
            let text = format!(
                "shard {} of suite {}: {} of {total_jobs} jobs done in {}; join the shards \
                 with robust report merge\n",
                record.shard,
                suite.name,
                record.jobs.len(),
                run_dir.display()
            );
            exit_with(EXIT_OK, print(&text))
        }
        RunOutcome::Finished(run) => finished(&run),
    }
}

/// A progress bar per job, shown only when the job runs long and stderr is a terminal.
struct Bars(Option<Progress>);

impl Observer for Bars {
    fn job_started(&mut self, job_id: &str, _position: &str) {
        self.0 = Some(Progress::new(job_id));
    }
    fn rows(&mut self, done: usize, total: usize) {
        if let Some(bar) = &mut self.0 {
            bar.update(done, total);
        }
    }
    fn job_finished(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish();
        }
    }
}

/// A finished run's table, comparison and gates, printed; the exit code says how it went.
fn finished(run: &robust::suite::assemble::FinishedRun) -> anyhow::Result<ExitCode> {
    let mut text = run.table();
    text.push_str(&format!(
        "report: {}\n",
        run.run_dir.join("report.html").display()
    ));
    let mut code = EXIT_OK;
    match (run.compare_asked, &run.comparison) {
        (true, Some((id, c))) => {
            let (verdict_text, verdict_code) = verdict(id, &run.run_id, c, run.alpha);
            text.push_str(&verdict_text);
            code = verdict_code;
        }
        (true, None) => {
            tracing::warn!(
                "no earlier run of suite {} in {}: nothing to compare with",
                run.suite,
                run.history.display()
            );
        }
        (false, _) => {}
    }
    let failed = run.failed_gates();
    if failed > 0 {
        text.push_str(&format!(
            "GATES: {failed} of {} thresholds failed (exit code {EXIT_GATE})\n",
            run.gates.len()
        ));
        code = EXIT_GATE;
    }
    exit_with(code, print(&text))
}

/// The regressions (and improvements) as text, and the exit code they call for.
fn verdict(
    previous: &str,
    current: &str,
    c: &[robust::report::history::Comparison],
    alpha: f64,
) -> (String, u8) {
    let (text, regressed) = compare::verdict(previous, current, c, alpha);
    (text, if regressed { EXIT_REGRESSION } else { EXIT_OK })
}

/// Exit code 0: the run went through, nothing regressed and every gate held.
const EXIT_OK: u8 = 0;

/// Write `text` to standard output. A closed or full stdout (`| true`, `> /dev/full`) is an
/// error returned, not a panic (#30 item 9).
fn print(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

/// The exit code for a verdict `code` whose text was printed with `printed`. A verdict a CI
/// job acts on (3, 4) wins over a failed print, which is then reported on stderr: the job
/// still sees that the gate failed or the metric regressed. With nothing to report (0), a
/// failed print is an error (exit 1), as in `robust eval`.
fn exit_with(code: u8, printed: std::io::Result<()>) -> anyhow::Result<ExitCode> {
    match printed {
        Ok(()) => Ok(ExitCode::from(code)),
        Err(e) if code != EXIT_OK => {
            tracing::error!("failed to write to standard output: {e}");
            Ok(ExitCode::from(code))
        }
        Err(e) => Err(anyhow::Error::new(e).context("failed to write to standard output")),
    }
}
