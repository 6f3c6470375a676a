//! Running a suite: every job of it (or of one shard of it) through the attack engine, each
//! checkpointed as a job folder, then the run assembled ([`super::assemble`]).
//!
//! A run lives in `<out>/<UTC date>-<short id>/`. Each finished attack is checkpointed in
//! `jobs/<job id>/` (its `summary.csv`, `examples.csv`, `job.json` and `failures.json`),
//! staged in a temporary folder and renamed into place, so a job folder either exists whole
//! or not at all. That is what makes a resume safe after Ctrl-C or `kill -9`: it reruns
//! exactly the jobs without a folder (a trigger search also goes on from its last iteration,
//! from a checkpoint beside the job folders). Only when every job is done are the run's files
//! assembled from the checkpoints, so an interrupted and an uninterrupted run give the same
//! CSVs byte for byte.
//!
//! This is the library's side of `robust report`: the command line only parses its flags into
//! [`RunOptions`], calls [`run`], prints what it returns and picks the exit code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::assemble::{self, Assembly, FinishedRun};
use super::compare::{CompareWith, previous_rows};
use super::run::{
    RunError, RunState, SHARD_FILE, ShardRecord, io, latest_unfinished, lock_out, read_state,
    remove_stale_temporaries, sync_dir, unix_now, write_state,
};
use super::{ShardWork, Suite};
use crate::attack::engine::{self, Models};
use crate::attack::trigger::{ResumeMode, remove_checkpoint};
use crate::model::InferenceOptions;
use crate::report::history;
use crate::shard::Shard;

/// Which run a resume finishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeFrom {
    /// The latest unfinished run of the suite (and shard) in the output folder.
    Latest,
    /// This run folder.
    Run(PathBuf),
}

/// How to run a suite: where, which part of it, and what to compare the run with.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The folder holding one folder per run and `history.csv`.
    pub out: PathBuf,
    /// Finish an interrupted run instead of starting one.
    pub resume: Option<ResumeFrom>,
    /// Run only this shard of the suite (nothing is assembled until the shards are merged).
    pub shard: Option<Shard>,
    /// Compare the finished run with a previous one.
    pub compare: Option<CompareWith>,
    /// Significance level of the comparison's two-proportion tests.
    pub alpha: f64,
    /// How the models run.
    pub inference: InferenceOptions,
}

/// What a run reports as its jobs go, for a progress display. Every method has a default that
/// does nothing.
pub trait Observer {
    /// A job starts (`position` is e.g. `[2/5] 01-negation`).
    fn job_started(&mut self, _job_id: &str, _position: &str) {}
    /// Rows of the running job done so far, of `total`.
    fn rows(&mut self, _done: usize, _total: usize) {}
    /// The running job's attack finished (its folder is being written).
    fn job_finished(&mut self) {}
}

/// An [`Observer`] that shows nothing.
pub struct Quiet;

impl Observer for Quiet {}

/// How a run ended.
#[derive(Debug)]
pub enum RunOutcome {
    /// A shard run finished its part; the merge assembles the run.
    Shard {
        /// The shard run's folder.
        run_dir: PathBuf,
        /// What it recorded in `shard.json`.
        record: Box<ShardRecord>,
        /// Jobs in the whole suite.
        total_jobs: usize,
    },
    /// The whole run finished and was assembled.
    Finished(Box<FinishedRun>),
}

/// Run `suite` (or one shard of it) as `options` say. Every model loads and answers once
/// before the first attack and before a run folder exists, so a broken model fails before any
/// work; a corrupt `history.csv` or a `--compare` run that does not exist fails then too.
pub fn run(
    suite: &Suite,
    options: &RunOptions,
    observer: &mut dyn Observer,
) -> Result<RunOutcome, RunError> {
    let session_start = Instant::now();
    if options.out.is_file() {
        return Err(RunError::OutIsFile {
            out: options.out.clone(),
        });
    }
    let model_sha = model_shas(suite)?;
    let fingerprint = suite.fingerprint(&model_sha);
    // One report at a time writes into the output folder: a second waits here (a resume of a
    // run that is still going would otherwise race it for the same job folders).
    let _lock = lock_out(&options.out)?;
    let past = history::read_history(&options.out.join("history.csv"))?;
    if let Some(CompareWith::Run(prev)) = &options.compare {
        previous_rows(&options.out, &past, prev)?;
    }
    let work: Vec<ShardWork> = match options.shard {
        Some(shard) => suite.shard_work(shard),
        None => suite
            .jobs
            .iter()
            .map(|job| ShardWork { job, rows: None })
            .collect(),
    };
    let mut models = Models::new(options.inference.clone())
        .with_known_shas(model_sha.iter().map(|(d, s)| (d.clone(), s.clone())));
    for job in work.iter().map(|w| w.job) {
        job.plan
            .preflight(&mut models)
            .map_err(|source| RunError::Preflight {
                suite: suite.path.clone(),
                origin: job.origin.clone(),
                source: Box::new(source),
            })?;
    }
    let (run_dir, mut state) = match &options.resume {
        Some(from) => resumed_run(suite, options, from, &fingerprint)?,
        None => new_run(suite, options, &fingerprint)?,
    };
    state.sessions.push(history::utc(unix_now()).1);
    let jobs_dir = run_dir.join("jobs");
    std::fs::create_dir_all(&jobs_dir).map_err(io("create", &jobs_dir))?;
    write_state(&run_dir, &state)?;
    remove_stale_temporaries(&run_dir)?;

    let total = suite.jobs.len();
    for piece in &work {
        let position = format!("[{}/{total}] {}", piece.job.index + 1, piece.folder());
        if jobs_dir.join(piece.folder()).is_dir() {
            tracing::info!("{position}: already done, skipped");
            continue;
        }
        run_job(piece, &mut models, &jobs_dir, &position, observer)?;
    }
    drop(models);
    if let Some(shard) = options.shard {
        let record = ShardRecord {
            run_id: state.run_id.clone(),
            suite: suite.name.clone(),
            suite_sha256: suite.sha256.clone(),
            fingerprint: state.fingerprint.clone(),
            robust_version: crate::VERSION.to_string(),
            shard,
            jobs: work.iter().map(ShardWork::folder).collect(),
            finished_at: history::utc(unix_now()).1,
        };
        let path = run_dir.join(SHARD_FILE);
        let text = serde_json::to_string_pretty(&record).map_err(|source| RunError::BadRecord {
            path: path.clone(),
            what: "a shard record",
            source,
        })? + "\n";
        crate::report::write_atomic(&path, text.as_bytes())?;
        return Ok(RunOutcome::Shard {
            run_dir,
            record: Box::new(record),
            total_jobs: total,
        });
    }
    let finished = assemble::assemble(&Assembly {
        suite,
        state: &state,
        run_dir: &run_dir,
        model_sha: &model_sha,
        session_start,
        out: &options.out,
        compare: options.compare.as_ref(),
        alpha: options.alpha,
        inference: &options.inference,
    })?;
    Ok(RunOutcome::Finished(Box::new(finished)))
}

/// The run folder and state of a run to finish, checked to be this suite's (and shard's) with
/// the same inputs.
fn resumed_run(
    suite: &Suite,
    options: &RunOptions,
    from: &ResumeFrom,
    fingerprint: &str,
) -> Result<(PathBuf, RunState), RunError> {
    let dir = match from {
        ResumeFrom::Run(d) => d.clone(),
        ResumeFrom::Latest => latest_unfinished(&options.out, &suite.name, options.shard)?,
    };
    let state = read_state(&dir)?;
    if state.shard != options.shard {
        let part = |s: Option<Shard>| s.map_or("the whole suite".into(), |s| format!("shard {s}"));
        return Err(RunError::OtherShard {
            dir,
            ran: part(state.shard),
            asked: part(options.shard),
        });
    }
    if state.fingerprint != fingerprint {
        return Err(RunError::Changed { dir });
    }
    tracing::info!("resuming {}", dir.display());
    Ok((dir, state))
}

/// A fresh run folder's path and state: the UTC date and a short hash of the inputs, the
/// time and the process, so two runs started in the same second do not collide.
fn new_run(
    suite: &Suite,
    options: &RunOptions,
    fingerprint: &str,
) -> Result<(PathBuf, RunState), RunError> {
    let (date, now) = history::utc(unix_now());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let short = &crate::hash::sha256_bytes(
        format!("{fingerprint}{nanos}{}", std::process::id()).as_bytes(),
    )[..8];
    let run_id = match options.shard {
        Some(s) => format!("{date}-{short}-shard-{}-of-{}", s.index, s.count),
        None => format!("{date}-{short}"),
    };
    let dir = options.out.join(&run_id);
    if dir.exists() {
        return Err(RunError::Exists { dir, why: "" });
    }
    let state = RunState {
        run_id,
        suite: suite.name.clone(),
        suite_path: suite.path.clone(),
        suite_sha256: suite.sha256.clone(),
        fingerprint: fingerprint.to_string(),
        started_at: now,
        sessions: Vec::new(),
        shard: options.shard,
        merged_from: Vec::new(),
    };
    tracing::info!("run {} of suite {}", dir.display(), suite.name);
    Ok((dir, state))
}

/// Run one job (or one shard's rows of it) and write its folder under `jobs_dir`, whole or not
/// at all.
fn run_job(
    piece: &ShardWork,
    models: &mut Models,
    jobs_dir: &Path,
    position: &str,
    observer: &mut dyn Observer,
) -> Result<(), RunError> {
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
    observer.job_started(&job.id, position);
    // A trigger search checkpoints beside the job folders, so a resume after a kill goes on
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
    let mut result = engine::execute_with(plan, models, &options, &mut |d, t| {
        observer.rows(d, t);
    })?;
    observer.job_finished();
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
            let headline = match (&o.expected_direction_rate, &o.attack_success_rate) {
                (Some(r), _) => format!("expected-direction rate {}", r.display_percent()),
                // A per-example search leads with the field's number.
                (None, Some(r)) if report.scores.search.is_some() => {
                    format!("attack success rate {}", r.display_percent())
                }
                _ => format!("flip rate {}", o.flip_rate.display_percent()),
            };
            (
                report.provenance.corpus.clone(),
                report.provenance.corpus_sha256.clone(),
                headline,
            )
        }
        // The engine returns a report or a cloze outcome; an empty result has no provenance.
        (None, None) => (String::new(), String::new(), String::new()),
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
        "parameters": result.reports.first().map_or(&attack.parameters, |r| &r.provenance.parameters),
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
    files.push(("failures.json", failures_json(&failures, jobs_dir)?));
    // Stage the whole job folder, then rename it into place: a job is done iff its folder
    // exists, and a kill at any moment leaves either nothing or every file.
    let staging = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .tempdir_in(jobs_dir)
        .map_err(io("create a folder in", jobs_dir))?;
    crate::report::write_all_atomic_with(
        staging.path(),
        &files,
        std::mem::take(&mut result.staged),
    )?;
    let staged = staging.keep();
    let target = jobs_dir.join(piece.folder());
    std::fs::rename(&staged, &target).map_err(io("move into place", &target))?;
    sync_dir(jobs_dir);
    remove_checkpoint(&checkpoint)?;
    tracing::info!(
        "{position}: done in {:.1} s; {headline}",
        result.wall_seconds
    );
    Ok(())
}

/// `failures.json` of a job: its clearest failures, clearest first.
pub(crate) fn failures_json<T: serde::Serialize>(
    failures: &[T],
    dir: &Path,
) -> Result<String, RunError> {
    serde_json::to_string_pretty(failures)
        .map(|text| text + "\n")
        .map_err(|source| RunError::BadRecord {
            path: dir.join("failures.json"),
            what: "failure examples",
            source,
        })
}

/// sha256 of every model of the suite (of `model.onnx` and its external data), by folder.
pub(crate) fn model_shas(suite: &Suite) -> Result<BTreeMap<PathBuf, String>, RunError> {
    let mut model_sha = BTreeMap::new();
    for dir in &suite.models {
        let sha = crate::model::model_sha256(dir).map_err(|source| RunError::Model {
            dir: dir.clone(),
            source,
        })?;
        model_sha.insert(dir.clone(), sha);
    }
    Ok(model_sha)
}

/// The suite's jobs, one line each with their gates (what `robust report --check` prints).
pub fn describe(suite: &Suite) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::assemble::FinishedRun;
    use crate::suite::merge::{self, Merged};

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// A suite of three jobs on the 2-layer test model (`tests/fixtures/models/bert`) and a
    /// corpus written here, so it runs in a second and needs no setup. `extra` goes into the
    /// first (shuffle) entry: a gate, say.
    fn small_suite(dir: &Path, extra: &str) -> Suite {
        let mut corpus = String::from("sentence\tlabel\n");
        for i in 0..12 {
            corpus.push_str(&format!(
                "John said the film {i} is good and Mary is happy\tpositive\n\
                 Mary thinks plot {i} was not dull but it is bad\tnegative\n"
            ));
        }
        std::fs::write(dir.join("c.tsv"), corpus).expect("writes the corpus");
        let text = format!(
            "name = \"lib\"\nseed = 7\nmodels = [\"{model}\"]\ncorpora = [\"{corpus}\"]\n\
             [[attack]]\nname = \"shuffle\"\nkind = \"shuffle\"\nsamples = 2\n{extra}\n\
             [[attack]]\nname = \"negation\"\nkind = \"negation\"\n\
             [[attack]]\nname = \"names\"\nkind = \"entity-swap\"\nnames = \"{names}\"\n",
            model = repo().join("tests/fixtures/models/bert").display(),
            corpus = dir.join("c.tsv").display(),
            names = repo().join("corpora/names.tsv").display(),
        );
        let path = dir.join("lib.toml");
        std::fs::write(&path, text).expect("writes the suite");
        Suite::load(&path).expect("a valid suite")
    }

    fn options(out: &Path, shard: Option<&str>) -> RunOptions {
        RunOptions {
            out: out.to_path_buf(),
            resume: None,
            shard: shard.map(|s| s.parse().expect("a shard")),
            compare: None,
            alpha: 0.01,
            inference: InferenceOptions {
                threads: 1,
                ..InferenceOptions::default()
            },
        }
    }

    /// Counts what the runner reports, to check every job is announced and closed.
    #[derive(Default)]
    struct Count {
        started: Vec<String>,
        finished: usize,
        rows: usize,
    }

    impl Observer for Count {
        fn job_started(&mut self, job_id: &str, _position: &str) {
            self.started.push(job_id.to_string());
        }
        fn rows(&mut self, _done: usize, _total: usize) {
            self.rows += 1;
        }
        fn job_finished(&mut self) {
            self.finished += 1;
        }
    }

    fn finished(outcome: RunOutcome) -> Box<FinishedRun> {
        match outcome {
            RunOutcome::Finished(run) => run,
            RunOutcome::Shard { .. } => panic!("a whole run ends finished"),
        }
    }

    fn csvs(dir: &Path) -> Vec<(String, Vec<u8>)> {
        ["examples.csv", "summary.csv"]
            .iter()
            .map(|f| {
                let bytes = std::fs::read(dir.join(f))
                    .unwrap_or_else(|e| panic!("{}: {e}", dir.join(f).display()));
                (f.to_string(), bytes)
            })
            .collect()
    }

    /// Issue 13 (the suite runner in the library, tested on a small model): one run, the same
    /// suite split in two shards and merged, and a run resumed after losing its last job give
    /// the same CSVs byte for byte.
    #[test]
    fn a_run_a_merged_sharded_run_and_a_resumed_run_write_the_same_csvs() {
        let work = tempfile::tempdir().expect("tempdir");
        let suite = small_suite(work.path(), "");

        let mut count = Count::default();
        let whole = finished(
            run(&suite, &options(&work.path().join("a"), None), &mut count).expect("runs"),
        );
        assert_eq!(count.started.len(), 3, "{:?}", count.started);
        assert_eq!(count.finished, 3);
        assert!(count.rows > 0, "progress was reported");
        for attack in ["shuffle", "negation", "names"] {
            assert!(
                whole.rows.iter().any(|r| r.attack == attack),
                "{attack} has summary rows"
            );
        }
        let expected = csvs(&whole.run_dir);

        // Two shards, each in its own folder, merged into a third.
        let mut shard_dirs = Vec::new();
        for k in ["2/2", "1/2"] {
            match run(
                &suite,
                &options(&work.path().join("s"), Some(k)),
                &mut Quiet,
            )
            .expect("a shard runs")
            {
                RunOutcome::Shard { run_dir, .. } => shard_dirs.push(run_dir),
                RunOutcome::Finished(_) => panic!("a shard run is not assembled"),
            }
        }
        let merged = match merge::merge(
            &shard_dirs,
            &work.path().join("m"),
            None,
            0.01,
            &options(work.path(), None).inference,
        )
        .expect("merges")
        {
            Merged::Suite(run) => run,
            Merged::Attack(_) => panic!("shards of a suite merge into a run"),
        };
        assert_eq!(csvs(&merged.run_dir), expected, "merged shards");
        // One shard alone is not the run.
        let e = merge::merge(
            &shard_dirs[..1],
            &work.path().join("m2"),
            None,
            0.01,
            &options(work.path(), None).inference,
        )
        .expect_err("a shard is missing");
        assert!(e.to_string().contains("given:"), "{e}");
        assert!(!work.path().join("m2").exists(), "nothing written");

        // A run that lost its last job (as a kill would leave it) finishes on resume.
        let out = work.path().join("r");
        let first = finished(run(&suite, &options(&out, None), &mut Quiet).expect("runs"));
        let last = first.run_dir.join("jobs").join(&suite.jobs[2].id);
        std::fs::remove_dir_all(&last).expect("removes a job");
        std::fs::remove_file(first.run_dir.join(super::super::run::MANIFEST_FILE))
            .expect("removes the manifest");
        let mut count = Count::default();
        let resumed = RunOptions {
            resume: Some(ResumeFrom::Latest),
            ..options(&out, None)
        };
        let again = finished(run(&suite, &resumed, &mut count).expect("resumes"));
        assert_eq!(again.run_dir, first.run_dir, "the same run folder");
        assert_eq!(
            count.started,
            vec![suite.jobs[2].id.clone()],
            "only the lost job"
        );
        assert_eq!(csvs(&again.run_dir), expected, "resumed run");
    }

    /// Issue 13 point 4: a gate the model misses is reported failed, one it meets passed, and
    /// the gate's row is in summary.csv.
    #[test]
    fn gates_pass_and_fail_on_the_run_s_rates() {
        let work = tempfile::tempdir().expect("tempdir");
        let judged = |gate: &str, out: &str| {
            let dir = work.path().join(out);
            std::fs::create_dir_all(&dir).expect("mkdir");
            let suite = small_suite(&dir, gate);
            let run =
                finished(run(&suite, &options(&dir.join("out"), None), &mut Quiet).expect("runs"));
            let summary = std::fs::read_to_string(run.run_dir.join("summary.csv")).expect("reads");
            assert!(
                summary.contains("gate"),
                "gate rows in summary.csv:\n{summary}"
            );
            (run.gates.len(), run.failed_gates())
        };
        assert_eq!(judged("max_flip_rate = 1.0", "meets"), (1, 0));
        assert_eq!(
            judged("min_flip_rate = 1.0\ngate = \"point\"", "misses"),
            (1, 1)
        );
    }
}
