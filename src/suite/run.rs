//! A suite run on disk: its state file, the lock that keeps two reports out of one `--out`,
//! and the clean-up and look-up that make `--resume` safe.
//!
//! Why on disk and not in memory: a nightly run is killed (CI time-outs, pre-empted machines)
//! far more often than it fails, so everything `--resume` needs is written before the work it
//! describes: `run.json` when a run starts, each job's folder renamed into place whole when it
//! ends, `shard.json` when a shard is done. A run folder is finished iff it has
//! `manifest.json` (or, for a shard, `shard.json`); anything named `.tmp-*` or `.robust-*` in it
//! was left by a killed process and is removed before work goes on.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::shard::Shard;

/// The state file of a run folder.
pub const RUN_FILE: &str = "run.json";
/// What a finished shard run writes.
pub const SHARD_FILE: &str = "shard.json";
/// What a finished run writes last.
pub const MANIFEST_FILE: &str = "manifest.json";
const LOCK_FILE: &str = ".robust.lock";

/// Why a run folder could not be set up, read or resumed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A file-system operation on the run folder failed.
    #[error("failed to {action} {}", path.display())]
    Io {
        /// What was being done, as a verb: `create`, `open`, `lock`, `remove`.
        action: &'static str,
        /// The file or folder it was done to.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The folder has no readable `run.json`.
    #[error("{} is not a run folder (no run.json)", dir.display())]
    NotARun {
        /// The folder.
        dir: PathBuf,
        /// Why `run.json` could not be read.
        #[source]
        source: std::io::Error,
    },
    /// `run.json` is not valid JSON of a [`RunState`] (or could not be serialised).
    #[error("{}: not a valid run.json", path.display())]
    BadState {
        /// The `run.json` file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// `--resume` without a folder found no unfinished run of the suite (and shard).
    #[error(
        "no unfinished run of suite {suite} in {}; run without --resume to start one",
        out.display()
    )]
    NoUnfinished {
        /// The suite's name.
        suite: String,
        /// The `--out` folder searched.
        out: PathBuf,
    },
    /// `run.json` (or another file of the run) could not be written.
    #[error(transparent)]
    Write(#[from] crate::report::ReportError),
    /// The suite could not be loaded.
    #[error(transparent)]
    Suite(#[from] crate::suite::SuiteError),
    /// `summary.csv`, `history.csv` or a previous run's summary could not be read or written.
    #[error(transparent)]
    History(#[from] crate::report::history::HistoryError),
    /// A model of the suite could not be read to hash it.
    #[error("failed to read the model in {}", dir.display())]
    Model {
        /// The model folder.
        dir: PathBuf,
        /// Why.
        #[source]
        source: crate::model::ModelError,
    },
    /// A model did not load or answer before the run began (the suite file and entry named).
    #[error("{}: {origin}", suite.display())]
    Preflight {
        /// The suite file.
        suite: PathBuf,
        /// The suite entry (`attack[2]`, say).
        origin: String,
        /// What went wrong.
        #[source]
        source: Box<crate::attack::engine::EngineError>,
    },
    /// A trigger search's checkpoint could not be removed after its job was written.
    #[error(transparent)]
    Checkpoint(#[from] crate::attack::trigger::CheckpointError),
    /// An attack failed while the run was going.
    #[error(transparent)]
    Attack(Box<crate::attack::engine::EngineError>),
    /// A file of a finished job or shard is not what robust writes (`job.json`,
    /// `failures.json`, `shard.json`), or a record could not be serialised.
    #[error("{}: {what}", path.display())]
    BadRecord {
        /// The file.
        path: PathBuf,
        /// What it should have been.
        what: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// `--out` names a file.
    #[error("--out {}: is a file, not a folder", out.display())]
    OutIsFile {
        /// The `--out` given.
        out: PathBuf,
    },
    /// The run folder to create exists already.
    #[error("{} already exists{why}", dir.display())]
    Exists {
        /// The folder.
        dir: PathBuf,
        /// Why it might, or nothing.
        why: &'static str,
    },
    /// `--resume` of a run that covered another part of the suite.
    #[error("{} ran {ran}, not {asked}; resume it with the same --shard", dir.display())]
    OtherShard {
        /// The run folder.
        dir: PathBuf,
        /// What the run covers (`shard 1/3`, `the whole suite`).
        ran: String,
        /// What this command asked for.
        asked: String,
    },
    /// `--resume` of a run whose inputs changed since it began.
    #[error(
        "{}: the suite, a recipe, a model or a corpus changed since this run began; start a new \
         run instead of resuming",
        dir.display()
    )]
    Changed {
        /// The run folder.
        dir: PathBuf,
    },
    /// Shard runs (or shards of an attack) that do not merge; nothing was written.
    #[error("{0}")]
    Merge(String),
    /// An output that would replace an input, or a results folder already in use.
    #[error(transparent)]
    Guard(#[from] crate::guard::GuardError),
    /// A shard of an attack could not be read.
    #[error(transparent)]
    AttackShard(#[from] crate::attack::engine::MergeError),
    /// Row parts of one job that do not merge.
    #[error("job {job}: its row parts do not merge")]
    JobParts {
        /// The job's id.
        job: String,
        /// Why.
        #[source]
        source: crate::attack::engine::MergeError,
    },
    /// `--compare` named no run folder and no run in the history.
    #[error("--compare {run}: no such run folder, and no run {run} in {}", history.display())]
    NoSuchPrevious {
        /// What was given.
        run: String,
        /// The history file searched.
        history: PathBuf,
    },
    /// `--run` named no run in the history, or the history is empty.
    #[error("{}", match run {
        Some(run) => format!("no run {run} in {}", history.display()),
        None => format!("{} holds no runs", history.display()),
    })]
    NoSuchRun {
        /// The run asked for (`None`: the latest).
        run: Option<String>,
        /// The history file.
        history: PathBuf,
    },
}

impl From<crate::attack::engine::EngineError> for RunError {
    fn from(e: crate::attack::engine::EngineError) -> Self {
        RunError::Attack(Box::new(e))
    }
}

pub(crate) fn io<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> RunError + 'a {
    move |source| RunError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// What `run.json` records when a run starts, so `--resume` can check it finishes the same work.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunState {
    /// The run folder's name: the UTC start date and a short hash, plus `-shard-K-of-N` for a
    /// shard run.
    pub run_id: String,
    /// The suite's name.
    pub suite: String,
    /// The suite file, as given.
    pub suite_path: PathBuf,
    /// sha256 of the suite file, lower-case hex.
    pub suite_sha256: String,
    /// [`Suite::fingerprint`](crate::suite::Suite::fingerprint) when the run began.
    pub fingerprint: String,
    /// UTC time the run began, e.g. `2025-01-31T23:59:59Z` (for a merged run, the earliest
    /// shard's).
    pub started_at: String,
    /// One entry per invocation that worked on this run (the first, then each --resume).
    pub sessions: Vec<String>,
    /// The part of the suite this run covers, for a shard run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// For a merged run, the shard runs it joins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
}

/// What a finished shard run records (`shard.json`): enough for a merge to check that the
/// shards belong together without trusting their folder names.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShardRecord {
    /// The shard run's [`RunState::run_id`].
    pub run_id: String,
    /// The suite's name.
    pub suite: String,
    /// sha256 of the suite file, lower-case hex.
    pub suite_sha256: String,
    /// The run's [`RunState::fingerprint`]; shards of one split share it.
    pub fingerprint: String,
    /// The version of robust that ran the shard ([`crate::VERSION`]).
    pub robust_version: String,
    /// Which part of the suite this run covered.
    pub shard: Shard,
    /// The folders under `jobs/` it wrote, in suite order
    /// ([`ShardWork::folder`](crate::suite::ShardWork::folder)).
    pub jobs: Vec<String>,
    /// UTC time the shard finished, e.g. `2025-01-31T23:59:59Z`.
    pub finished_at: String,
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An exclusive lock on `<out>/.robust.lock` for the life of the run (released when the file
/// is dropped). Where another report holds it, say so and wait for it.
pub fn lock_out(out: &Path) -> Result<std::fs::File, RunError> {
    std::fs::create_dir_all(out).map_err(io("create", out))?;
    let path = out.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io("open", &path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            tracing::warn!(
                "another robust report is writing into {}; waiting for it to finish",
                out.display()
            );
            file.lock().map_err(io("lock", &path))?;
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", &path)(e)),
    }
    Ok(file)
}

/// Make a rename durable; best effort, as not every file system supports syncing a folder.
pub fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// The [`RunState`] in `dir`'s `run.json`.
pub fn read_state(dir: &Path) -> Result<RunState, RunError> {
    let path = dir.join(RUN_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| RunError::NotARun {
        dir: dir.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| RunError::BadState { path, source })
}

/// Write `state` to `dir`'s `run.json`, atomically.
pub fn write_state(dir: &Path, state: &RunState) -> Result<(), RunError> {
    let path = dir.join(RUN_FILE);
    let text = serde_json::to_string_pretty(state).map_err(|source| RunError::BadState {
        path: path.clone(),
        source,
    })? + "\n";
    crate::report::write_atomic(&path, text.as_bytes())?;
    Ok(())
}

/// Temporary files and folders a killed process left behind (`.robust-*`, `jobs/.tmp-*`).
pub fn remove_stale_temporaries(run_dir: &Path) -> Result<(), RunError> {
    for dir in [run_dir.to_path_buf(), run_dir.join("jobs")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with(".tmp-") && path.is_dir() {
                std::fs::remove_dir_all(&path).map_err(io("remove", &path))?;
            } else if name.starts_with(".robust-") && path.is_file() {
                std::fs::remove_file(&path).map_err(io("remove", &path))?;
            }
        }
    }
    Ok(())
}

/// The most recently started run of `suite` (of `shard` of it) in `out` that is not finished.
pub fn latest_unfinished(
    out: &Path,
    suite: &str,
    shard: Option<Shard>,
) -> Result<PathBuf, RunError> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(out) {
        for entry in entries.flatten() {
            let dir = entry.path();
            if dir.join(MANIFEST_FILE).exists() || dir.join(SHARD_FILE).exists() {
                continue;
            }
            if let Ok(state) = read_state(&dir)
                && state.suite == suite
                && state.shard == shard
            {
                found.push((state.started_at.clone(), dir));
            }
        }
    }
    found.sort();
    found
        .pop()
        .map(|(_, dir)| dir)
        .ok_or(RunError::NoUnfinished {
            suite: suite.to_string(),
            out: out.to_path_buf(),
        })
}

/// Concatenate one CSV per job, keeping only the first header.
pub fn concat_csv(parts: &[String]) -> String {
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            out.push_str(part);
        } else if let Some((_, rest)) = part.split_once('\n') {
            out.push_str(rest);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(suite: &str, started_at: &str, shard: Option<Shard>) -> RunState {
        RunState {
            run_id: format!("{suite}-{started_at}"),
            suite: suite.into(),
            suite_path: PathBuf::from("attacks/nightly.toml"),
            suite_sha256: "ab".into(),
            fingerprint: "cd".into(),
            started_at: started_at.into(),
            sessions: vec![started_at.into()],
            shard,
            merged_from: Vec::new(),
        }
    }

    #[test]
    fn state_round_trips_and_a_folder_without_one_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = state("nightly", "2026-11-30T06:00:00Z", "2/3".parse().ok());
        write_state(dir.path(), &s).expect("writes");
        assert_eq!(read_state(dir.path()).expect("reads"), s);
        let other = tempfile::tempdir().expect("tempdir");
        let e = read_state(other.path()).expect_err("no run.json");
        assert!(e.to_string().contains("is not a run folder"), "{e}");
        std::fs::write(other.path().join(RUN_FILE), "{").expect("writes");
        let e = read_state(other.path()).expect_err("bad json");
        assert!(e.to_string().contains("not a valid run.json"), "{e}");
    }

    #[test]
    fn resume_finds_the_latest_unfinished_run_of_the_same_suite_and_shard() {
        let out = tempfile::tempdir().expect("tempdir");
        let run = |name: &str, s: RunState, finished: Option<&str>| {
            let dir = out.path().join(name);
            std::fs::create_dir_all(&dir).expect("mkdir");
            write_state(&dir, &s).expect("writes");
            if let Some(f) = finished {
                std::fs::write(dir.join(f), "{}").expect("writes");
            }
            dir
        };
        run("a", state("nightly", "2026-11-29T01:00:00Z", None), None);
        let b = run("b", state("nightly", "2026-11-30T01:00:00Z", None), None);
        run(
            "c",
            state("nightly", "2026-11-30T02:00:00Z", None),
            Some(MANIFEST_FILE),
        );
        run("d", state("other", "2026-11-30T03:00:00Z", None), None);
        let shard: Option<Shard> = "1/2".parse().ok();
        let e = run("e", state("nightly", "2026-11-28T01:00:00Z", shard), None);
        run(
            "f",
            state("nightly", "2026-11-30T04:00:00Z", shard),
            Some(SHARD_FILE),
        );
        std::fs::create_dir_all(out.path().join("not-a-run")).expect("mkdir");
        assert_eq!(
            latest_unfinished(out.path(), "nightly", None).expect("found"),
            b
        );
        assert_eq!(
            latest_unfinished(out.path(), "nightly", shard).expect("found"),
            e
        );
        let none = latest_unfinished(out.path(), "weekly", None).expect_err("none");
        assert!(matches!(none, RunError::NoUnfinished { .. }));
    }

    #[test]
    fn only_temporaries_are_removed() {
        let run = tempfile::tempdir().expect("tempdir");
        let jobs = run.path().join("jobs");
        for d in [".tmp-1", "00-shuffle", ".search-01-trigger"] {
            std::fs::create_dir_all(jobs.join(d)).expect("mkdir");
        }
        std::fs::write(run.path().join(".robust-summary.csv"), "x").expect("writes");
        std::fs::write(run.path().join("summary.csv"), "x").expect("writes");
        remove_stale_temporaries(run.path()).expect("removes");
        assert!(!jobs.join(".tmp-1").exists());
        assert!(!run.path().join(".robust-summary.csv").exists());
        assert!(jobs.join("00-shuffle").exists());
        assert!(
            jobs.join(".search-01-trigger").exists(),
            "a trigger search's checkpoint is kept for --resume"
        );
        assert!(run.path().join("summary.csv").exists());
    }

    #[test]
    fn a_second_lock_on_the_same_out_waits() {
        let out = tempfile::tempdir().expect("tempdir");
        let held = lock_out(out.path()).expect("locks");
        let other = std::fs::OpenOptions::new()
            .write(true)
            .open(out.path().join(LOCK_FILE))
            .expect("opens");
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(held);
        other.try_lock().expect("free once the first is dropped");
    }

    #[test]
    fn csv_parts_keep_one_header() {
        let parts = vec![
            "a,b\n1,2\n".to_string(),
            "a,b\n3,4\n".to_string(),
            "a,b\n".to_string(),
        ];
        assert_eq!(concat_csv(&parts), "a,b\n1,2\n3,4\n");
    }
}
