//! `robust report`: run an attack suite as a nightly job, keep its history, and gate on
//! regressions.
//!
//! A run lives in `<out>/<UTC date>-<short id>/`. Each finished attack is checkpointed in
//! `jobs/<job id>/` (its `summary.csv`, `examples.csv` and `job.json`), staged in a temporary
//! folder and renamed into place, so a job folder either exists whole or not at all. That is
//! what makes `--resume` safe after Ctrl-C or `kill -9`: it reruns exactly the jobs without a
//! folder. Only when every job is done are the run's `examples.csv`, `summary.csv`,
//! `report.html` and `manifest.json` assembled from the checkpoints (so an interrupted and an
//! uninterrupted run give the same CSVs byte for byte) and `history.csv` rewritten with this
//! run's rows replaced, never duplicated.
//!
//! Exit codes: 0 success (no regression, or none tested); 1 error; 2 bad command line (clap);
//! 3 `--compare` found a metric significantly worse than in the previous run; 4 an absolute
//! gate (`max_flip_rate = 0.10` in the suite) failed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Args;
use robust::attack::engine::{self, FailureExample, Models};
use robust::attack::search_state::{ResumeMode, remove_checkpoint};
use robust::report::history::{self, Comparison, HistoryRow, SummaryRow, Verdict};
use robust::report::{fixed, html};
use robust::shard::Shard;
use robust::suite::gate::GateOutcome;
use robust::suite::run::{
    RunState, SHARD_FILE, ShardRecord, concat_csv, latest_unfinished, lock_out, read_state,
    remove_stale_temporaries, sync_dir, unix_now, write_state,
};
use robust::suite::{Job, ShardWork, Suite};
use serde_json::json;

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

pub fn run(global: &GlobalArgs, args: ReportArgs) -> anyhow::Result<ExitCode> {
    if let Some(ReportCommand::Merge(merge)) = &args.command {
        return merge_shards(global, merge);
    }
    if args.out.is_file() {
        bail!("--out {}: is a file, not a folder", args.out.display());
    }
    match &args.suite {
        Some(path) => run_suite(global, &args, path),
        None if args.compare.is_some() => compare_only(&args),
        None => bail!("give --suite FILE to run a suite, or --compare to compare past runs"),
    }
}

fn run_suite(global: &GlobalArgs, args: &ReportArgs, path: &Path) -> anyhow::Result<ExitCode> {
    let session_start = Instant::now();
    // Everything is checked before any model runs.
    let suite = Suite::load(path)?;
    if args.check {
        print!("{}", describe(&suite));
        return Ok(ExitCode::SUCCESS);
    }
    let model_sha = model_shas(&suite)?;
    let fingerprint = suite.fingerprint(&model_sha);
    // One report at a time writes into --out: a second waits here (a --resume of a run that
    // is still going would otherwise race it for the same job folders).
    let _lock = lock_out(&args.out)?;
    // A corrupt history.csv or a --compare run that does not exist fails now, not after
    // every attack has run.
    let past = history::read_history(&args.out.join("history.csv"))?;
    if let Some(prev) = args.compare.as_deref().filter(|p| !p.is_empty()) {
        previous_rows(&args.out, &past, prev)?;
    }
    let work: Vec<ShardWork> = match args.shard {
        Some(shard) => suite.shard_work(shard),
        None => suite
            .jobs
            .iter()
            .map(|job| ShardWork { job, rows: None })
            .collect(),
    };
    let mut models = Models::new(global.inference_options())
        .with_known_shas(model_sha.iter().map(|(d, s)| (d.clone(), s.clone())));
    // Every model loads and answers once before the first attack (and before a run folder
    // exists); a broken second model fails now, not after the first model's attacks ran.
    for job in work.iter().map(|w| w.job) {
        job.plan
            .preflight(&mut models)
            .with_context(|| format!("{}: {}", suite.path.display(), job.origin))?;
    }
    let now = history::utc(unix_now()).1;

    let (run_dir, mut state) = match &args.resume {
        Some(dir) => {
            let dir = match dir {
                Some(d) => d.clone(),
                None => latest_unfinished(&args.out, &suite.name, args.shard)?,
            };
            let state = read_state(&dir)?;
            if state.shard != args.shard {
                let part =
                    |s: Option<Shard>| s.map_or("the whole suite".into(), |s| format!("shard {s}"));
                bail!(
                    "{} ran {}, not {}; resume it with the same --shard",
                    dir.display(),
                    part(state.shard),
                    part(args.shard)
                );
            }
            if state.fingerprint != fingerprint {
                bail!(
                    "{}: the suite, a recipe, a model or a corpus changed since this run began; \
                     start a new run instead of resuming",
                    dir.display()
                );
            }
            tracing::info!("resuming {}", dir.display());
            (dir, state)
        }
        None => {
            let (date, _) = history::utc(unix_now());
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let short = &robust::hash::sha256_bytes(
                format!("{fingerprint}{nanos}{}", std::process::id()).as_bytes(),
            )[..8];
            let run_id = match args.shard {
                Some(s) => format!("{date}-{short}-shard-{}-of-{}", s.index, s.count),
                None => format!("{date}-{short}"),
            };
            let dir = args.out.join(&run_id);
            if dir.exists() {
                bail!("{} already exists", dir.display());
            }
            let state = RunState {
                run_id,
                suite: suite.name.clone(),
                suite_path: suite.path.clone(),
                suite_sha256: suite.sha256.clone(),
                fingerprint: fingerprint.clone(),
                started_at: now.clone(),
                sessions: Vec::new(),
                shard: args.shard,
                merged_from: Vec::new(),
            };
            tracing::info!("run {} of suite {}", dir.display(), suite.name);
            (dir, state)
        }
    };
    state.sessions.push(now);
    let jobs_dir = run_dir.join("jobs");
    std::fs::create_dir_all(&jobs_dir)
        .with_context(|| format!("failed to create {}", jobs_dir.display()))?;
    write_state(&run_dir, &state)?;
    remove_stale_temporaries(&run_dir)?;

    let total = suite.jobs.len();
    for piece in &work {
        let position = format!("[{}/{total}] {}", piece.job.index + 1, piece.folder());
        if jobs_dir.join(piece.folder()).is_dir() {
            tracing::info!("{position}: already done, skipped");
            continue;
        }
        run_job(piece, &mut models, &jobs_dir, &position)?;
    }
    drop(models);
    if let Some(shard) = args.shard {
        let record = ShardRecord {
            run_id: state.run_id.clone(),
            suite: suite.name.clone(),
            suite_sha256: suite.sha256.clone(),
            fingerprint: state.fingerprint.clone(),
            robust_version: robust::VERSION.to_string(),
            shard,
            jobs: work.iter().map(ShardWork::folder).collect(),
            finished_at: history::utc(unix_now()).1,
        };
        let text = serde_json::to_string_pretty(&record)? + "\n";
        robust::report::write_atomic(&run_dir.join(SHARD_FILE), text.as_bytes())?;
        println!(
            "shard {shard} of suite {}: {} of {total} jobs done in {}; join the shards with \
             robust report merge",
            suite.name,
            record.jobs.len(),
            run_dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    finalize(
        global,
        args,
        &suite,
        &state,
        &run_dir,
        &model_sha,
        session_start,
    )
}

fn run_job(
    piece: &ShardWork,
    models: &mut Models,
    jobs_dir: &Path,
    position: &str,
) -> anyhow::Result<()> {
    let job = piece.job;
    let plan = &job.plan;
    let attack = &plan.attack;
    tracing::info!(
        "{position}: {} ({}) on {} × {}",
        attack.name,
        attack.kind.as_str(),
        job.model_name,
        attack.corpus.display(),
    );
    let started_at = history::utc(unix_now()).1;
    let mut bar = Progress::new(&job.id);
    // A trigger search checkpoints beside the job folders, so a --resume after a kill goes on
    // from its last iteration rather than from the start of the job.
    let checkpoint = jobs_dir.join(format!(".search-{}", job.id));
    let options = engine::ExecuteOptions {
        checkpoint: Some(checkpoint.clone()).filter(|_| plan.shape == engine::Shape::TriggerSearch),
        resume: Some(ResumeMode::IfPresent),
        gradient_trace: None,
        // Beside the job folders: the same file system as the staging folder it moves into.
        stage_in: Some(jobs_dir.to_path_buf()),
        failure_limit: Some(job.examples),
        chunk_rows: None,
        block_bytes: None,
        shard: piece.rows,
    };
    let mut result = engine::execute_with(plan, models, &options, &mut |d, t| bar.update(d, t))?;
    bar.finish();
    let (corpus, corpus_sha256, headline) = match (&result.cloze, result.reports.first()) {
        (Some(c), _) => (
            c.provenance.corpus.clone(),
            c.provenance.corpus_sha256.clone(),
            c.scores
                .first()
                .and_then(|s| s.top1_unchanged)
                .map_or_else(String::new, |r| {
                    format!("top-1 unchanged by negation {}", r.display_percent())
                }),
        ),
        (None, Some(report)) => {
            let o = &report.scores.overall;
            let headline = match &o.expected_direction_rate {
                Some(r) => format!("expected-direction rate {}", r.display_percent()),
                None => format!("flip rate {}", o.flip_rate.display_percent()),
            };
            (
                report.corpus.clone(),
                report.corpus_sha256.clone(),
                headline,
            )
        }
        (None, None) => unreachable!("the engine returns a report or a cloze outcome"),
    };
    let job_json = json!({
        "id": job.id,
        "origin": job.origin,
        "attack": result.name,
        "kind": attack.kind.as_str(),
        "shape": plan.shape.as_str(),
        "model": job.model_name,
        "model_path": attack.model,
        "model_sha256": result.model_sha256,
        "corpus": corpus,
        "corpus_path": attack.corpus,
        "corpus_sha256": corpus_sha256,
        "seed": attack.seed,
        "parameters": result.reports.first().map_or(&attack.parameters, |r| &r.parameters),
        "trigger": result.trigger,
        "sentences": result.rows,
        "started_at": started_at,
        "wall_seconds": result.wall_seconds,
        "model_stats": result.model_stats,
    });
    let failures: Vec<_> = result.failures.iter().take(job.examples).collect();
    let mut files: Vec<(&str, String)> = result
        .files
        .iter()
        .map(|(n, t)| (n.as_str(), t.clone()))
        .collect();
    files.push(("job.json", format!("{job_json:#}\n")));
    files.push((
        "failures.json",
        serde_json::to_string_pretty(&failures)? + "\n",
    ));
    // Stage the whole job folder, then rename it into place: a job is done iff its folder
    // exists, and a kill at any moment leaves either nothing or every file.
    let staging = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .tempdir_in(jobs_dir)
        .with_context(|| format!("failed to create a folder in {}", jobs_dir.display()))?;
    robust::report::write_all_atomic_with(
        staging.path(),
        &files,
        std::mem::take(&mut result.staged),
    )?;
    let staged = staging.keep();
    let target = jobs_dir.join(piece.folder());
    std::fs::rename(&staged, &target)
        .with_context(|| format!("failed to move {} into place", target.display()))?;
    sync_dir(jobs_dir);
    remove_checkpoint(&checkpoint)?;
    tracing::info!(
        "{position}: done in {:.1} s; {headline}",
        result.wall_seconds
    );
    Ok(())
}

/// `robust report merge` of the shards of one attack (`robust attack --shard K/N`): check that
/// they are the N parts of one attack, then write the whole attack's examples.csv (the parts'
/// rows, in order, under one header) and summary.csv into --out.
fn merge_attack_shards(args: &MergeArgs) -> anyhow::Result<ExitCode> {
    if args.compare.is_some() {
        bail!("--compare: shards of one attack merge into an attack's CSVs, not a suite run");
    }
    let mut parts: Vec<(PathBuf, engine::AttackShard)> = Vec::new();
    for dir in &args.shards {
        if !dir.join(engine::AttackShard::FILE).is_file() {
            bail!(
                "{}: not a shard of an attack (no {}): shards of a suite and of an attack \
                 do not merge together",
                dir.display(),
                engine::AttackShard::FILE
            );
        }
        let record = engine::AttackShard::read(dir)?;
        if !dir.join("examples.csv").is_file() {
            bail!("{}: the shard has no examples.csv", dir.display());
        }
        parts.push((dir.clone(), record));
    }
    let (report, _) = engine::merge_attack_shards(parts.iter().map(|(_, r)| r.clone()).collect())
        .map_err(|e| {
        let given: Vec<String> = parts
            .iter()
            .map(|(d, r)| format!("{} ({})", d.display(), r.shard))
            .collect();
        anyhow::anyhow!("{e}; given: {}", given.join(", "))
    })?;
    parts.sort_by_key(|(_, r)| r.shard.index);
    // Every check passed: only now is anything written to --out.
    let summary = robust::report::Format::Csv.exporter().attack(&report)?;
    let examples = robust::report::StagedFile::create(&args.out, "examples.csv")?;
    let inputs: Vec<PathBuf> = parts.iter().map(|(d, _)| d.join("examples.csv")).collect();
    concat_csv_files(&inputs, examples.path())?;
    robust::report::write_all_atomic_with(&args.out, &[("summary.csv", summary)], vec![examples])
        .with_context(|| format!("failed to write results to {}", args.out.display()))?;
    tracing::info!(
        "merged {} shards of attack {} into {}",
        parts.len(),
        report.attack,
        args.out.display()
    );
    print!(
        "{}",
        robust::report::Format::Table.exporter().attack(&report)?
    );
    Ok(ExitCode::SUCCESS)
}

/// Write into `to` the job folder an unsharded run writes for `job`, from the folders of its
/// row parts (in row order): the parts' examples.csv under one header, the summary.csv and
/// failure examples of their merged scorer, and a job.json whose counts and times are the
/// parts' together.
fn join_row_parts(job: &Job, parts: &[PathBuf], to: &Path) -> anyhow::Result<()> {
    let read = |dir: &Path, name: &str| {
        std::fs::read_to_string(dir.join(name))
            .with_context(|| format!("failed to read {}", dir.join(name).display()))
    };
    let mut records = Vec::new();
    for dir in parts {
        records.push(engine::AttackShard::read(dir)?);
    }
    let (report, failures) = engine::merge_attack_shards(records)
        .with_context(|| format!("job {}: its row parts do not merge", job.id))?;
    let examples: Vec<PathBuf> = parts.iter().map(|d| d.join("examples.csv")).collect();
    concat_csv_files(&examples, &to.join("examples.csv"))?;
    let summary = robust::report::Format::Csv.exporter().attack(&report)?;
    let failures: Vec<&FailureExample> = failures.iter().take(job.examples).collect();
    let mut meta: serde_json::Value = serde_json::from_str(&read(&parts[0], "job.json")?)?;
    meta["sentences"] = json!(report.scores.examples);
    meta["parameters"] = json!(report.parameters);
    meta["wall_seconds"] = json!(report.wall_seconds);
    meta["model_stats"] = json!(report.model_stats);
    robust::report::write_all_atomic(
        to,
        &[
            ("summary.csv", summary),
            ("job.json", format!("{meta:#}\n")),
            (
                "failures.json",
                serde_json::to_string_pretty(&failures)? + "\n",
            ),
        ],
    )?;
    Ok(())
}

/// CSV files joined under the first one's header, streamed (a part of a large attack's
/// examples can be gigabytes).
fn concat_csv_files(inputs: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    use std::io::{BufRead, Write};
    let file = std::fs::File::create(out)
        .with_context(|| format!("failed to create {}", out.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    for (i, path) in inputs.iter().enumerate() {
        let mut input = std::io::BufReader::new(
            std::fs::File::open(path)
                .with_context(|| format!("failed to read {}", path.display()))?,
        );
        if i > 0 {
            // One header: each later part starts with the same header line.
            let mut header = Vec::new();
            input.read_until(b'\n', &mut header)?;
        }
        std::io::copy(&mut input, &mut writer)
            .with_context(|| format!("failed to copy {}", path.display()))?;
    }
    writer.flush()?;
    writer
        .get_ref()
        .sync_all()
        .with_context(|| format!("failed to write {}", out.display()))?;
    Ok(())
}

/// sha256 of every model of the suite (of `model.onnx` and its external data), by folder.
fn model_shas(suite: &Suite) -> anyhow::Result<BTreeMap<PathBuf, String>> {
    let mut model_sha = BTreeMap::new();
    for dir in &suite.models {
        let sha = robust::model::model_sha256(dir)
            .with_context(|| format!("failed to read the model in {}", dir.display()))?;
        model_sha.insert(dir.clone(), sha);
    }
    Ok(model_sha)
}

/// `robust report merge`: check that the shard runs are the N parts of one run of one suite,
/// then assemble that run in --out from their job checkpoints, exactly as an unsharded run is
/// assembled from its own.
fn merge_shards(global: &GlobalArgs, args: &MergeArgs) -> anyhow::Result<ExitCode> {
    let session_start = Instant::now();
    if args.out.is_file() {
        bail!("--out {}: is a file, not a folder", args.out.display());
    }
    if args.shards[0].join(engine::AttackShard::FILE).is_file() {
        return merge_attack_shards(args);
    }
    let mut parts: Vec<(PathBuf, RunState, ShardRecord)> = Vec::new();
    for dir in &args.shards {
        let state = read_state(dir)?;
        if state.shard.is_none() {
            bail!(
                "{}: not a shard run (it ran the whole suite, so there is nothing to merge)",
                dir.display()
            );
        }
        let record_path = dir.join(SHARD_FILE);
        let Ok(text) = std::fs::read_to_string(&record_path) else {
            bail!(
                "{}: shard {} of suite {} is unfinished (no {SHARD_FILE}); finish it with \
                 robust report --suite {} --shard {} --resume {}",
                dir.display(),
                state.shard.map(|s| s.to_string()).unwrap_or_default(),
                state.suite,
                state.suite_path.display(),
                state.shard.map(|s| s.to_string()).unwrap_or_default(),
                dir.display()
            );
        };
        let record: ShardRecord = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a valid shard record", record_path.display()))?;
        parts.push((dir.clone(), state, record));
    }
    let (first_dir, first, first_record) = &parts[0];
    for (dir, state, record) in &parts[1..] {
        let differs = |what: &str, a: &str, b: &str| -> anyhow::Result<()> {
            if a != b {
                bail!(
                    "{} and {} are shards of different runs: {what} {a:?} vs {b:?}",
                    first_dir.display(),
                    dir.display()
                );
            }
            Ok(())
        };
        differs("suite", &first.suite, &state.suite)?;
        differs(
            "suite file sha256",
            &first.suite_sha256,
            &state.suite_sha256,
        )?;
        differs(
            "fingerprint (recipes, seeds, models, corpora)",
            &first.fingerprint,
            &state.fingerprint,
        )?;
        differs(
            "robust version",
            &first_record.robust_version,
            &record.robust_version,
        )?;
    }
    if first_record.robust_version != robust::VERSION {
        bail!(
            "{}: the shards ran robust {}, this is {}; merge with the version that ran them",
            first_dir.display(),
            first_record.robust_version,
            robust::VERSION
        );
    }
    let shards: Vec<Shard> = parts.iter().map(|(_, _, r)| r.shard).collect();
    Shard::check_complete(&shards).map_err(|problem| {
        let given: Vec<String> = parts
            .iter()
            .map(|(d, _, r)| format!("{} ({})", d.display(), r.shard))
            .collect();
        anyhow::anyhow!("{problem}; given: {}", given.join(", "))
    })?;
    // The suite as it is here must be the suite the shards ran.
    let suite = Suite::load(&first.suite_path)?;
    let model_sha = model_shas(&suite)?;
    if suite.sha256 != first.suite_sha256 || suite.fingerprint(&model_sha) != first.fingerprint {
        bail!(
            "{}: the suite, a recipe, a model or a corpus here differs from what the shards \
             ran; merge where the shards' inputs are",
            suite.path.display()
        );
    }
    // Each job with the folders it was written to: the one shard that ran it whole, or every
    // shard's part of its rows, in row order (the shards are complete).
    let n = parts[0].2.shard.count;
    let mut by_index: Vec<&(PathBuf, RunState, ShardRecord)> = parts.iter().collect();
    by_index.sort_by_key(|(_, _, r)| r.shard.index);
    let mut pieces: Vec<(&Job, Vec<PathBuf>)> = Vec::new();
    for job in &suite.jobs {
        let owners: Vec<(&(PathBuf, RunState, ShardRecord), ShardWork)> =
            if suite.splits_rows(job, n) {
                by_index
                    .iter()
                    .map(|&part| {
                        let rows = Some(part.2.shard);
                        (part, ShardWork { job, rows })
                    })
                    .collect()
            } else {
                by_index
                    .iter()
                    .filter(|(_, _, r)| r.shard.owns(job.index))
                    .map(|&part| (part, ShardWork { job, rows: None }))
                    .collect()
            };
        let mut folders = Vec::new();
        for ((dir, _, record), piece) in owners {
            let folder = dir.join("jobs").join(piece.folder());
            if !record.jobs.contains(&piece.folder()) || !folder.is_dir() {
                bail!(
                    "{}: shard {} lacks job {}",
                    dir.display(),
                    record.shard,
                    piece.folder()
                );
            }
            folders.push(folder);
        }
        pieces.push((job, folders));
    }

    // Every check passed: only now is anything written to --out.
    let _lock = lock_out(&args.out)?;
    let mut shard_runs: Vec<String> = parts.iter().map(|(_, s, _)| s.run_id.clone()).collect();
    shard_runs.sort();
    let (date, _) = history::utc(unix_now());
    let short = &robust::hash::sha256_bytes(
        format!("{}{}", first.fingerprint, shard_runs.join(",")).as_bytes(),
    )[..8];
    let run_id = format!("{date}-{short}");
    let run_dir = args.out.join(&run_id);
    if run_dir.exists() {
        bail!(
            "{} already exists: these shards were merged there",
            run_dir.display()
        );
    }
    let mut sessions: Vec<String> = parts
        .iter()
        .flat_map(|(_, s, _)| s.sessions.iter().cloned())
        .collect();
    sessions.sort();
    let state = RunState {
        run_id,
        suite: first.suite.clone(),
        suite_path: first.suite_path.clone(),
        suite_sha256: first.suite_sha256.clone(),
        fingerprint: first.fingerprint.clone(),
        started_at: parts
            .iter()
            .map(|(_, s, _)| s.started_at.clone())
            .min()
            .unwrap_or_default(),
        sessions,
        shard: None,
        merged_from: shard_runs,
    };
    // The job folders are copied into a staging folder that is renamed into place whole.
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("failed to create {}", args.out.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".tmp-merge-")
        .tempdir_in(&args.out)
        .with_context(|| format!("failed to create a folder in {}", args.out.display()))?;
    for (job, folders) in &pieces {
        let to = staging.path().join("jobs").join(&job.id);
        std::fs::create_dir_all(&to)
            .with_context(|| format!("failed to create {}", to.display()))?;
        match folders.as_slice() {
            [from] => {
                for entry in std::fs::read_dir(from)
                    .with_context(|| format!("failed to read {}", from.display()))?
                {
                    let entry = entry?;
                    std::fs::copy(entry.path(), to.join(entry.file_name()))
                        .with_context(|| format!("failed to copy {}", entry.path().display()))?;
                }
            }
            parts => join_row_parts(job, parts, &to)?,
        }
    }
    write_state(staging.path(), &state)?;
    let staged = staging.keep();
    std::fs::rename(&staged, &run_dir)
        .with_context(|| format!("failed to move {} into place", run_dir.display()))?;
    sync_dir(&args.out);
    tracing::info!(
        "merged {} shards of suite {} into {}",
        parts.len(),
        suite.name,
        run_dir.display()
    );
    let report_args = ReportArgs {
        command: None,
        suite: Some(first.suite_path.clone()),
        out: args.out.clone(),
        resume: None,
        compare: args.compare.clone(),
        run: None,
        check: false,
        alpha: args.alpha,
        shard: None,
    };
    finalize(
        global,
        &report_args,
        &suite,
        &state,
        &run_dir,
        &model_sha,
        session_start,
    )
}

/// The suite's jobs, one line each with their gates, for `--check`.
fn describe(suite: &Suite) -> String {
    let mut out = format!(
        "suite {} ({}): {} jobs\n",
        suite.name,
        suite.path.display(),
        suite.jobs.len()
    );
    for job in &suite.jobs {
        let a = &job.plan.attack;
        out.push_str(&format!(
            "{:<44} {:<12} {:<18} model {} corpus {}",
            job.id,
            a.kind.as_str(),
            job.plan.shape.as_str(),
            a.model.display(),
            a.corpus.display()
        ));
        if let Some(search) = a.trigger.as_ref().and_then(|t| t.search_corpus.as_ref()) {
            out.push_str(&format!(" (search {})", search.display()));
        }
        out.push('\n');
        for g in &job.gates {
            out.push_str(&format!(
                "    gate {} {} ({})\n",
                g.key(),
                g.threshold,
                g.mode.as_str()
            ));
        }
    }
    out
}

fn finalize(
    global: &GlobalArgs,
    args: &ReportArgs,
    suite: &Suite,
    state: &RunState,
    run_dir: &Path,
    model_sha: &BTreeMap<PathBuf, String>,
    session_start: Instant,
) -> anyhow::Result<ExitCode> {
    let jobs_dir = run_dir.join("jobs");
    let (mut summaries, mut job_meta) = (Vec::new(), Vec::new());
    // Sentence-attack examples share one header; cloze items have their own file.
    let (mut examples, mut cloze_examples) = (Vec::new(), Vec::new());
    let mut extras: Vec<html::JobExtras> = Vec::new();
    let mut gate_outcomes: Vec<(JobKey, GateOutcome)> = Vec::new();
    for job in &suite.jobs {
        let dir = jobs_dir.join(&job.id);
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .with_context(|| format!("failed to read {}", dir.join(name).display()))
        };
        let summary = read("summary.csv")?;
        let job_rows = history::parse_summary(&dir.join("summary.csv"), &summary)?;
        let mut gate_rows = Vec::new();
        let mut judged = Vec::new();
        if let Some(first) = job_rows.first() {
            for gate in &job.gates {
                let outcome = gate.judge(&job_rows);
                gate_rows.push(outcome.summary_row(first));
                judged.push(outcome);
            }
        }
        summaries.push(summary + &history::rows_csv(&gate_rows)?);
        let failures: Vec<FailureExample> = match read("failures.json") {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{}: not valid failure examples", dir.display()))?,
            Err(_) => Vec::new(),
        };
        if let Some(first) = job_rows.first() {
            extras.push(html::JobExtras {
                attack: first.attack.clone(),
                model: first.model.clone(),
                corpus: first.corpus.clone(),
                gates: judged.clone(),
                failures,
                wanted: job.examples,
            });
        }
        if let Some(first) = job_rows.first() {
            for outcome in judged {
                gate_outcomes.push((job_key(first), outcome));
            }
        }
        // Only the first line is read here: the files are joined on disk, streamed, as a
        // large attack's examples are gigabytes.
        let path = dir.join("examples.csv");
        let mut first = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(
                std::fs::File::open(&path)
                    .with_context(|| format!("failed to read {}", path.display()))?,
            ),
            &mut first,
        )
        .with_context(|| format!("failed to read {}", path.display()))?;
        if first.starts_with("attack,") {
            examples.push(path);
        } else {
            cloze_examples.push(path);
        }
        job_meta.push(serde_json::from_str::<serde_json::Value>(&read(
            "job.json",
        )?)?);
    }
    let summary = concat_csv(&summaries);
    let rows = history::parse_summary(&run_dir.join("summary.csv"), &summary)?;

    let history_path = args.out.join("history.csv");
    let past: Vec<HistoryRow> = history::read_history(&history_path)?
        .into_iter()
        .filter(|r| r.run_id != state.run_id)
        .collect();
    let previous = match &args.compare {
        Some(prev) if !prev.is_empty() => Some(previous_rows(&args.out, &past, prev)?),
        _ => history::runs_of(&past, &suite.name)
            .pop()
            .map(|id| (id.clone(), history::rows_of(&past, &id))),
    };
    let comparisons = previous
        .as_ref()
        .map(|(id, prev)| (id.clone(), history::compare(prev, &rows, args.alpha)));

    let finished_at = history::utc(unix_now()).1;
    let mut trend = past.clone();
    trend.extend(rows.iter().map(|row| HistoryRow {
        run_id: state.run_id.clone(),
        suite: suite.name.clone(),
        finished_at: finished_at.clone(),
        row: row.clone(),
    }));
    let trend: Vec<HistoryRow> = trend
        .into_iter()
        .filter(|r| r.suite == suite.name)
        .collect();

    let machine = machine();
    let options = global.inference_options();
    let attack_seconds: f64 = job_meta
        .iter()
        .filter_map(|j| j["wall_seconds"].as_f64())
        .sum();
    let mut manifest = json!({
        "run_id": state.run_id,
        "suite": {
            "name": suite.name,
            "path": suite.path,
            "sha256": suite.sha256,
            "fingerprint": state.fingerprint,
        },
        "robust_version": robust::VERSION,
        "onnxruntime_library": robust::model::runtime::loaded_library(),
        "started_at": state.started_at,
        "finished_at": finished_at,
        "sessions": state.sessions,
        "this_session_wall_seconds": session_start.elapsed().as_secs_f64(),
        "attack_wall_seconds": attack_seconds,
        "machine": machine,
        "inference": {
            "batch_size": options.batch_size,
            "threads": options.threads,
            "workers": robust::model::worker_split(options.threads, options.workers).0,
            "cache_capacity": options.cache_capacity,
            "max_len": options.max_len,
        },
        "models": suite.models.iter().map(|m| json!({
            "path": m,
            "sha256": model_sha.get(m),
        })).collect::<Vec<_>>(),
        "corpora": suite.corpora.iter().map(|c| json!({
            "path": c,
            "sha256": robust::hash::sha256_file(c).ok(),
        })).collect::<Vec<_>>(),
        "seeds": suite.jobs.iter().map(|j| json!({"job": j.id, "seed": j.plan.attack.seed})).collect::<Vec<_>>(),
        "jobs": job_meta,
        "comparison": comparisons.as_ref().map(|(id, c)| json!({
            "previous_run": id,
            "alpha": args.alpha,
            "regressed": c.iter().filter(|x| x.verdict == Verdict::Regressed).count(),
            "improved": c.iter().filter(|x| x.verdict == Verdict::Improved).count(),
            "tested": c.iter().filter(|x| x.verdict != Verdict::NotTested).count(),
        })),
    });
    if !state.merged_from.is_empty() {
        manifest["merged_from"] = json!(state.merged_from);
    }

    let mut facts = vec![
        ("run".to_string(), state.run_id.clone()),
        (
            "finished".to_string(),
            format!("{finished_at} (started {})", state.started_at),
        ),
        (
            "attack time".to_string(),
            format!(
                "{:.1} s over {} attacks ({} session{})",
                attack_seconds,
                suite.jobs.len(),
                state.sessions.len(),
                if state.sessions.len() == 1 { "" } else { "s" }
            ),
        ),
    ];
    for m in &suite.models {
        facts.push((
            "model".into(),
            format!(
                "{} (sha256 {})",
                m.display(),
                model_sha.get(m).map_or("?", |s| &s[..12])
            ),
        ));
    }
    for c in &suite.corpora {
        let sha = robust::hash::sha256_file(c).unwrap_or_default();
        facts.push((
            "corpus".into(),
            format!("{} (sha256 {})", c.display(), &sha[..sha.len().min(12)]),
        ));
    }
    facts.push((
        "machine".into(),
        format!(
            "{} · {} CPUs · {}",
            machine["cpu"].as_str().unwrap_or("?"),
            machine["cpus"],
            machine["os"].as_str().unwrap_or("?")
        ),
    ));
    facts.push(("robust".into(), robust::VERSION.to_string()));
    let page = html::render(&html::HtmlReport {
        suite: &suite.name,
        run_id: &state.run_id,
        facts: &facts,
        rows: &rows,
        trend: &trend,
        comparison: comparisons
            .as_ref()
            .map(|(id, c)| (id.as_str(), c.as_slice(), args.alpha)),
        jobs: &extras,
    });

    let mut files = vec![("summary.csv", summary), ("report.html", page)];
    let mut staged = vec![robust::report::StagedFile::create(run_dir, "examples.csv")?];
    concat_csv_files(&examples, staged[0].path())?;
    if !cloze_examples.is_empty() {
        let cloze = robust::report::StagedFile::create(run_dir, "cloze-examples.csv")?;
        concat_csv_files(&cloze_examples, cloze.path())?;
        staged.push(cloze);
    }
    let mut written: Vec<String> = staged.iter().map(|f| f.name().to_string()).collect();
    if let Some((id, c)) = &comparisons {
        files.push(("comparison.csv", history::comparison_csv(id, c)?));
    }
    // Last, so that a run folder with a manifest is a finished one.
    files.push(("manifest.json", format!("{manifest:#}\n")));
    written.extend(files.iter().map(|(n, _)| n.to_string()));
    robust::report::write_all_atomic_with(run_dir, &files, staged)?;
    history::record_run(
        &history_path,
        &state.run_id,
        &suite.name,
        &finished_at,
        &rows,
    )?;
    tracing::info!(
        "wrote {} ({}) and appended {} rows to {}",
        run_dir.display(),
        written.join(", "),
        rows.len(),
        history_path.display()
    );
    print!("{}", summary_table(&job_meta, &rows, &gate_outcomes));
    println!("report: {}", run_dir.join("report.html").display());
    let regression = match (&args.compare, &comparisons) {
        (Some(_), Some((id, c))) => verdict(id, &state.run_id, c, args.alpha),
        (Some(_), None) => {
            tracing::warn!(
                "no earlier run of suite {} in {}: nothing to compare with",
                suite.name,
                history_path.display()
            );
            ExitCode::SUCCESS
        }
        (None, _) => ExitCode::SUCCESS,
    };
    let failed = gate_outcomes.iter().filter(|(_, g)| !g.passed).count();
    if failed > 0 {
        println!(
            "GATES: {failed} of {} thresholds failed (exit code {EXIT_GATE})",
            gate_outcomes.len()
        );
        return Ok(ExitCode::from(EXIT_GATE));
    }
    Ok(regression)
}

/// (attack, model, corpus): what tells one job's rows from another's in a run's summary.
type JobKey = (String, String, String);

fn job_key(r: &SummaryRow) -> JobKey {
    (r.attack.clone(), r.model.clone(), r.corpus.clone())
}

/// The run at a glance: each attack's headline rate with its interval, and its gates.
fn summary_table(
    jobs: &[serde_json::Value],
    rows: &[SummaryRow],
    gates: &[(JobKey, GateOutcome)],
) -> String {
    let mut out = String::from("\n");
    let mut seen: Vec<(String, String, String)> = Vec::new();
    for r in rows {
        let key = job_key(r);
        if seen.contains(&key) || r.group != "all" {
            continue;
        }
        seen.push(key.clone());
        let pick = |metric: &str| {
            rows.iter().find(|x| {
                (x.attack.as_str(), x.model.as_str(), x.corpus.as_str())
                    == (key.0.as_str(), key.1.as_str(), key.2.as_str())
                    && x.group == "all"
                    && x.metric == metric
            })
        };
        let last = if r.kind == "trigger" {
            "accuracy_after"
        } else {
            "flip_rate"
        };
        let headline = ["expected_direction_rate", "top1_unchanged", last]
            .iter()
            .find_map(|m| {
                let row = pick(m)?;
                Some(format!("{} {}", m, row.rate()?.display_percent()))
            })
            .unwrap_or_default();
        let seconds = jobs
            .iter()
            .find(|j| {
                j["attack"].as_str() == Some(key.0.as_str())
                    && j["model"].as_str() == Some(key.1.as_str())
                    && j["corpus"].as_str() == Some(key.2.as_str())
            })
            .and_then(|j| j["wall_seconds"].as_f64())
            .map_or_else(String::new, |s| format!(" ({s:.0} s)"));
        out.push_str(&format!(
            "{:<28} {} on {}{seconds}\n    {headline}\n",
            key.0, key.1, key.2
        ));
        for (_, g) in gates.iter().filter(|(k, _)| *k == key) {
            out.push_str(&format!("    gate {}\n", g.describe()));
        }
    }
    out
}

/// Rows of a previous run given as a run folder (its summary.csv) or a run id in history.
fn previous_rows(
    out: &Path,
    past: &[HistoryRow],
    prev: &str,
) -> anyhow::Result<(String, Vec<SummaryRow>)> {
    let as_dir = [PathBuf::from(prev), out.join(prev)]
        .into_iter()
        .find(|d| d.join("summary.csv").is_file());
    if let Some(dir) = as_dir {
        let rows = history::read_summary(&dir.join("summary.csv"))?;
        let id = dir
            .file_name()
            .map_or_else(|| prev.to_string(), |n| n.to_string_lossy().into_owned());
        return Ok((id, rows));
    }
    let rows = history::rows_of(past, prev);
    if rows.is_empty() {
        bail!(
            "--compare {prev}: no such run folder, and no run {prev} in {}",
            out.join("history.csv").display()
        );
    }
    Ok((prev.to_string(), rows))
}

fn compare_only(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let history_path = args.out.join("history.csv");
    let all = history::read_history(&history_path)?;
    let current = match &args.run {
        Some(id) => id.clone(),
        None => match all.last() {
            Some(r) => r.run_id.clone(),
            None => bail!("{} holds no runs", history_path.display()),
        },
    };
    let rows = history::rows_of(&all, &current);
    let Some(suite) = all.iter().find(|r| r.run_id == current).map(|r| &r.suite) else {
        bail!("no run {current} in {}", history_path.display());
    };
    let past: Vec<HistoryRow> = all
        .iter()
        .filter(|r| r.run_id != current)
        .cloned()
        .collect();
    let (prev_id, prev_rows) = match args.compare.as_deref() {
        Some(p) if !p.is_empty() => previous_rows(&args.out, &past, p)?,
        _ => {
            // The latest run of the same suite that finished before this one.
            let order = history::runs_of(&all, suite);
            let pos = order.iter().position(|id| *id == current).unwrap_or(0);
            match pos.checked_sub(1).map(|i| order[i].clone()) {
                Some(id) => {
                    let rows = history::rows_of(&all, &id);
                    (id, rows)
                }
                None => {
                    tracing::warn!(
                        "run {current} is the first of suite {suite}: nothing to compare with"
                    );
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    };
    let c = history::compare(&prev_rows, &rows, args.alpha);
    Ok(verdict(&prev_id, &current, &c, args.alpha))
}

/// Print the regressions (and improvements) and pick the exit code.
fn verdict(previous: &str, current: &str, c: &[Comparison], alpha: f64) -> ExitCode {
    let tested = c.iter().filter(|x| x.verdict != Verdict::NotTested).count();
    let regressed: Vec<&Comparison> = c
        .iter()
        .filter(|x| x.verdict == Verdict::Regressed)
        .collect();
    let improved = c.iter().filter(|x| x.verdict == Verdict::Improved).count();
    let pct = |r: &Option<robust::score::stats::Rate>| {
        r.map_or("-".into(), |r| {
            format!("{}% ({}/{})", fixed(100.0 * r.value, 1), r.k, r.n)
        })
    };
    for x in &regressed {
        println!(
            "REGRESSED {}: {} -> {} (p = {:.2e})",
            x.key,
            pct(&x.previous),
            pct(&x.current),
            x.p_value.unwrap_or(f64::NAN)
        );
    }
    println!(
        "{current} vs {previous}: {} of {tested} metrics significantly worse, {improved} better \
         (two-proportion z-test, alpha = {alpha})",
        regressed.len()
    );
    if regressed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_REGRESSION)
    }
}

/// What the run ran on, for the manifest: enough to tell two machines' timings apart.
fn machine() -> serde_json::Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string());
    let memory_kib = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok());
    json!({
        "hostname": read("/proc/sys/kernel/hostname").trim(),
        "os": format!("{} {}", std::env::consts::OS, read("/proc/sys/kernel/osrelease").trim()),
        "arch": std::env::consts::ARCH,
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu": cpu,
        "memory_kib": memory_kib,
    })
}
