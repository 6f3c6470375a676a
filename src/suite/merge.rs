//! Joining shards: the N shard runs of a suite into one run, or the N shards of one attack into
//! its CSVs, equal byte for byte to what one unsharded process writes.
//!
//! Every check comes before anything is written: shards of different suites, seeds, models,
//! corpora or robust versions, a missing, repeated or unfinished shard are refused with the
//! folders named, and `--out` is left as it was.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use super::assemble::{self, Assembly, FinishedRun, concat_csv_files};
use super::compare::CompareWith;
use super::run::{
    RunError, RunState, SHARD_FILE, ShardRecord, io, lock_out, read_state, sync_dir, unix_now,
    write_state,
};
use super::runner::{failures_json, model_shas};
use super::{Job, ShardWork, Suite};
use crate::attack::engine::{self, AttackShard, FailureExample};
use crate::attack::kind::Registry;
use crate::model::InferenceOptions;
use crate::report::history;
use crate::score::AttackReport;
use crate::shard::Shard;

/// What a merge joined.
#[derive(Debug)]
pub enum Merged {
    /// Shard runs of a suite, assembled into one run.
    Suite(Box<FinishedRun>),
    /// Shards of one attack, written as its `examples.csv` and `summary.csv`.
    Attack(Box<AttackReport>),
}

/// Join `shards` (folders, in any order) into `out`: shard runs of a suite into a run folder
/// and the history, as [`super::runner::run`] assembles an unsharded run; shards of one attack
/// (`robust attack --shard K/N`) into the attack's `examples.csv` and `summary.csv`.
pub fn merge(
    shards: &[PathBuf],
    out: &Path,
    compare: Option<&CompareWith>,
    alpha: f64,
    inference: &InferenceOptions,
) -> Result<Merged, RunError> {
    merge_forced(shards, out, compare, alpha, inference, false)
}

/// [`merge`]; with `force`, an attack's shards may merge into a folder that holds an earlier
/// attack's results ([`crate::guard::ATTACK_RESULTS`]), which the merge's files replace (the
/// others of them are removed once the merge is written).
pub fn merge_forced(
    shards: &[PathBuf],
    out: &Path,
    compare: Option<&CompareWith>,
    alpha: f64,
    inference: &InferenceOptions,
    force: bool,
) -> Result<Merged, RunError> {
    let registry = Registry::builtin();
    let options = MergeOptions {
        compare,
        alpha,
        inference,
        force,
        registry: &registry,
    };
    merge_with(shards, out, &options)
}

/// How [`merge_with`] joins shards: the comparison and inference options of [`merge`], whether
/// earlier results may be replaced ([`merge_forced`]), and the kinds the suite's entries name
/// (a caller's own attacks, as the shards ran them with [`Suite::load_with`]).
pub struct MergeOptions<'a> {
    /// Compare the merged run with a previous one.
    pub compare: Option<&'a CompareWith>,
    /// Significance level of the comparison.
    pub alpha: f64,
    /// How models run (the merge hashes them, and loads none).
    pub inference: &'a InferenceOptions,
    /// Whether an attack's shards may replace earlier results in `out`.
    pub force: bool,
    /// The kinds the suite is loaded with.
    pub registry: &'a Registry,
}

/// [`merge_forced`] with every option, the registry included.
pub fn merge_with(
    shards: &[PathBuf],
    out: &Path,
    options: &MergeOptions,
) -> Result<Merged, RunError> {
    let MergeOptions {
        compare,
        alpha,
        inference,
        force,
        registry,
    } = *options;
    let session_start = Instant::now();
    if out.is_file() {
        return Err(RunError::OutIsFile {
            out: out.to_path_buf(),
        });
    }
    let Some(first) = shards.first() else {
        return Err(RunError::Merge("no shards given".into()));
    };
    // #30 item 2: the merge never writes over or into one of its shards.
    let mut inputs = crate::guard::Inputs::new();
    for dir in shards {
        inputs.folder("the shard", dir);
    }
    inputs.check("--out", out)?;
    if first.join(AttackShard::FILE).is_file() {
        if compare.is_some() {
            return Err(RunError::Merge(
                "--compare: shards of one attack merge into an attack's CSVs, not a suite run"
                    .into(),
            ));
        }
        return merge_attack(shards, out, force).map(|r| Merged::Attack(Box::new(r)));
    }
    merge_suite(
        shards,
        out,
        compare,
        alpha,
        inference,
        registry,
        session_start,
    )
    .map(|r| Merged::Suite(Box::new(r)))
}

/// Check that the shard runs are the N parts of one run of one suite, then assemble that run in
/// `out` from their job checkpoints, exactly as an unsharded run is assembled from its own.
fn merge_suite(
    shards: &[PathBuf],
    out: &Path,
    compare: Option<&CompareWith>,
    alpha: f64,
    inference: &InferenceOptions,
    registry: &Registry,
    session_start: Instant,
) -> Result<FinishedRun, RunError> {
    let mut parts: Vec<(PathBuf, RunState, ShardRecord)> = Vec::new();
    for dir in shards {
        let state = read_state(dir)?;
        let Some(shard) = state.shard else {
            return Err(RunError::Merge(format!(
                "{}: not a shard run (it ran the whole suite, so there is nothing to merge)",
                dir.display()
            )));
        };
        let record_path = dir.join(SHARD_FILE);
        let Ok(text) = std::fs::read_to_string(&record_path) else {
            return Err(RunError::Merge(format!(
                "{}: shard {shard} of suite {} is unfinished (no {SHARD_FILE}); finish it with \
                 robust report --suite {} --shard {shard} --resume {}",
                dir.display(),
                state.suite,
                state.suite_path.display(),
                dir.display()
            )));
        };
        let record: ShardRecord =
            serde_json::from_str(&text).map_err(|source| RunError::BadRecord {
                path: record_path.clone(),
                what: "not a valid shard record",
                source,
            })?;
        parts.push((dir.clone(), state, record));
    }
    let (first_dir, first, first_record) = &parts[0];
    for (dir, state, record) in &parts[1..] {
        let differs = |what: &str, a: &str, b: &str| {
            if a == b {
                return Ok(());
            }
            Err(RunError::Merge(format!(
                "{} and {} are shards of different runs: {what} {a:?} vs {b:?}",
                first_dir.display(),
                dir.display()
            )))
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
    if first_record.robust_version != crate::VERSION {
        return Err(RunError::Merge(format!(
            "{}: the shards ran robust {}, this is {}; merge with the version that ran them",
            first_dir.display(),
            first_record.robust_version,
            crate::VERSION
        )));
    }
    let given = || {
        parts
            .iter()
            .map(|(d, _, r)| format!("{} ({})", d.display(), r.shard))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let list: Vec<Shard> = parts.iter().map(|(_, _, r)| r.shard).collect();
    Shard::check_complete(&list)
        .map_err(|problem| RunError::Merge(format!("{problem}; given: {}", given())))?;
    // The suite as it is here must be the suite the shards ran.
    let suite = Suite::load_with(registry, &first.suite_path)?;
    let model_sha = model_shas(&suite)?;
    if suite.sha256 != first.suite_sha256 || suite.fingerprint(&model_sha) != first.fingerprint {
        return Err(RunError::Merge(format!(
            "{}: the suite, a recipe, a model or a corpus here differs from what the shards \
             ran; merge where the shards' inputs are",
            suite.path.display()
        )));
    }
    let pieces = job_folders(&suite, &parts)?;

    // Every check passed: only now is anything written to `out`.
    let _lock = lock_out(out)?;
    let mut shard_runs: Vec<String> = parts.iter().map(|(_, s, _)| s.run_id.clone()).collect();
    shard_runs.sort();
    let (date, _) = history::utc(unix_now());
    let short = &crate::hash::sha256_bytes(
        format!("{}{}", first.fingerprint, shard_runs.join(",")).as_bytes(),
    )[..8];
    let run_id = format!("{date}-{short}");
    let run_dir = out.join(&run_id);
    if run_dir.exists() {
        return Err(RunError::Exists {
            dir: run_dir,
            why: ": these shards were merged there",
        });
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
    std::fs::create_dir_all(out).map_err(io("create", out))?;
    let staging = tempfile::Builder::new()
        .prefix(".tmp-merge-")
        .tempdir_in(out)
        .map_err(io("create a folder in", out))?;
    for (job, folders) in &pieces {
        let to = staging.path().join("jobs").join(&job.id);
        std::fs::create_dir_all(&to).map_err(io("create", &to))?;
        match folders.as_slice() {
            [from] => {
                for entry in std::fs::read_dir(from).map_err(io("read", from))? {
                    let entry = entry.map_err(io("read", from))?;
                    std::fs::copy(entry.path(), to.join(entry.file_name()))
                        .map_err(io("copy", &entry.path()))?;
                }
            }
            parts => join_row_parts(job, parts, &to)?,
        }
    }
    write_state(staging.path(), &state)?;
    let staged = staging.keep();
    std::fs::rename(&staged, &run_dir).map_err(io("move into place", &run_dir))?;
    sync_dir(out);
    tracing::info!(
        "merged {} shards of suite {} into {}",
        parts.len(),
        suite.name,
        run_dir.display()
    );
    assemble::assemble(&Assembly {
        suite: &suite,
        state: &state,
        run_dir: &run_dir,
        model_sha: &model_sha,
        session_start,
        out,
        compare,
        alpha,
        inference,
    })
}

/// Each job with the folders it was written to: the one shard that ran it whole, or every
/// shard's part of its rows, in row order (the shards are complete).
fn job_folders<'s>(
    suite: &'s Suite,
    parts: &[(PathBuf, RunState, ShardRecord)],
) -> Result<Vec<(&'s Job, Vec<PathBuf>)>, RunError> {
    let n = parts[0].2.shard.count;
    let mut by_index: Vec<&(PathBuf, RunState, ShardRecord)> = parts.iter().collect();
    by_index.sort_by_key(|(_, _, r)| r.shard.index);
    let mut pieces = Vec::new();
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
                return Err(RunError::Merge(format!(
                    "{}: shard {} lacks job {}",
                    dir.display(),
                    record.shard,
                    piece.folder()
                )));
            }
            folders.push(folder);
        }
        pieces.push((job, folders));
    }
    Ok(pieces)
}

/// Write into `to` the job folder an unsharded run writes for `job`, from the folders of its
/// row parts (in row order): the parts' examples.csv under one header, the summary.csv and
/// failure examples of their merged scorer, and a job.json whose counts and times are the
/// parts' together.
fn join_row_parts(job: &Job, parts: &[PathBuf], to: &Path) -> Result<(), RunError> {
    let mut records = Vec::new();
    for dir in parts {
        let record = AttackShard::read(dir).map_err(|source| RunError::JobParts {
            job: job.id.clone(),
            source,
        })?;
        check_example_rows(dir, &record)?;
        records.push(record);
    }
    let (report, failures) =
        engine::merge_attack_shards(records).map_err(|source| RunError::JobParts {
            job: job.id.clone(),
            source,
        })?;
    let examples: Vec<PathBuf> = parts.iter().map(|d| d.join("examples.csv")).collect();
    concat_csv_files(&examples, &to.join("examples.csv"))?;
    let summary = crate::report::Format::Csv.exporter().attack(&report)?;
    let failures: Vec<&FailureExample> = failures.iter().take(job.examples).collect();
    let meta_path = parts[0].join("job.json");
    let text = std::fs::read_to_string(&meta_path).map_err(io("read", &meta_path))?;
    let mut meta: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| RunError::BadRecord {
            path: meta_path.clone(),
            what: "not a valid job record",
            source,
        })?;
    meta["sentences"] = json!(report.scores.examples);
    meta["parameters"] = json!(report.provenance.parameters);
    meta["wall_seconds"] = json!(report.wall_seconds);
    meta["model_stats"] = json!(report.model_stats);
    crate::report::write_all_atomic(
        to,
        &[
            ("summary.csv", summary),
            ("job.json", format!("{meta:#}\n")),
            ("failures.json", failures_json(&failures, to)?),
        ],
    )?;
    Ok(())
}

/// Check that the folders are the N parts of one attack, then write the whole attack's
/// examples.csv (the parts' rows, in order, under one header) and summary.csv into `out`.
fn merge_attack(shards: &[PathBuf], out: &Path, force: bool) -> Result<AttackReport, RunError> {
    crate::guard::occupied(out, &crate::guard::ATTACK_RESULTS, force)?;
    let mut parts: Vec<(PathBuf, AttackShard)> = Vec::new();
    for dir in shards {
        if !dir.join(AttackShard::FILE).is_file() {
            return Err(RunError::Merge(format!(
                "{}: not a shard of an attack (no {}): shards of a suite and of an attack \
                 do not merge together",
                dir.display(),
                AttackShard::FILE
            )));
        }
        let record = AttackShard::read(dir)?;
        if !dir.join("examples.csv").is_file() {
            return Err(RunError::Merge(format!(
                "{}: the shard has no examples.csv",
                dir.display()
            )));
        }
        check_example_rows(dir, &record)?;
        parts.push((dir.clone(), record));
    }
    let (report, _) = engine::merge_attack_shards(parts.iter().map(|(_, r)| r.clone()).collect())
        .map_err(|e| {
        let given: Vec<String> = parts
            .iter()
            .map(|(d, r)| format!("{} ({})", d.display(), r.shard))
            .collect();
        RunError::Merge(format!("{e}; given: {}", given.join(", ")))
    })?;
    parts.sort_by_key(|(_, r)| r.shard.index);
    // Every check passed: only now is anything written to `out`.
    let summary = crate::report::Format::Csv.exporter().attack(&report)?;
    let examples = crate::report::StagedFile::create(out, "examples.csv")?;
    let inputs: Vec<PathBuf> = parts.iter().map(|(d, _)| d.join("examples.csv")).collect();
    concat_csv_files(&inputs, examples.path())?;
    crate::report::write_all_atomic_with(out, &[("summary.csv", summary)], vec![examples])?;
    if force {
        let stale: Vec<&str> = crate::guard::ATTACK_RESULTS
            .iter()
            .copied()
            .filter(|n| !matches!(*n, "examples.csv" | "summary.csv"))
            .collect();
        crate::guard::clear(out, &stale)?;
    }
    tracing::info!(
        "merged {} shards of attack {} into {}",
        parts.len(),
        report.provenance.attack,
        out.display()
    );
    Ok(report)
}

/// #30 item 2: a shard's examples.csv must hold the examples of exactly the rows its record
/// says it attacked (each example's rows share its `line` and follow one another), so that a
/// shard overwritten by a merge, or one whose files come from two runs, is refused rather than
/// merged into an examples.csv whose rows the summary does not count.
fn check_example_rows(dir: &Path, record: &AttackShard) -> Result<(), RunError> {
    let path = dir.join("examples.csv");
    let file = std::fs::File::open(&path).map_err(io("read", &path))?;
    let mut reader = csv::Reader::from_reader(std::io::BufReader::new(file));
    let mut examples = 0usize;
    let mut last: Option<Vec<u8>> = None;
    let mut record_buf = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record_buf) {
            Ok(true) => {
                let line = record_buf.get(1).unwrap_or_default();
                if last.as_deref() != Some(line) {
                    examples += 1;
                    last = Some(line.to_vec());
                }
            }
            Ok(false) => break,
            Err(e) => {
                return Err(RunError::Merge(format!(
                    "{}: malformed CSV: {e}",
                    path.display()
                )));
            }
        }
    }
    let expected = record.rows.1.saturating_sub(record.rows.0);
    if examples != expected {
        return Err(RunError::Merge(format!(
            "{}: holds {examples} examples, but {} says shard {} attacked {expected} rows \
             ({}..{}); the folder's files are not of one shard run (was it overwritten?)",
            path.display(),
            dir.join(AttackShard::FILE).display(),
            record.shard,
            record.rows.0,
            record.rows.1
        )));
    }
    Ok(())
}
