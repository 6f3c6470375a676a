//! Assembling a finished run from its job folders: the run's `examples.csv`, `summary.csv`
//! (with the gates' rows), `report.html`, `comparison.csv` and `manifest.json`, and its rows
//! in `history.csv` (replaced, never duplicated).
//!
//! Why from the folders and not from memory: the same code then assembles a run that went
//! through in one go, one resumed after a kill, and one merged from shards, so all three give
//! the same bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use super::Suite;
use super::compare::{CompareWith, previous_rows};
use super::run::{RunError, RunState, concat_csv, io};
use crate::attack::engine::FailureExample;
use crate::model::InferenceOptions;
use crate::report::gate::GateOutcome;
use crate::report::history::{self, Comparison, HistoryRow, SummaryRow, Verdict};
use crate::report::html;

/// Everything [`assemble`] needs beside the job folders.
pub(crate) struct Assembly<'a> {
    pub suite: &'a Suite,
    pub state: &'a RunState,
    pub run_dir: &'a Path,
    pub model_sha: &'a BTreeMap<PathBuf, String>,
    pub session_start: Instant,
    pub out: &'a Path,
    pub compare: Option<&'a CompareWith>,
    pub alpha: f64,
    pub inference: &'a InferenceOptions,
}

/// (attack, model, corpus): what tells one job's rows from another's in a run's summary.
pub type JobKey = (String, String, String);

/// A finished, assembled run: what the command line prints and judges its exit code on.
#[derive(Debug)]
pub struct FinishedRun {
    /// The run's id (its folder's name).
    pub run_id: String,
    /// The run folder.
    pub run_dir: PathBuf,
    /// The suite's name.
    pub suite: String,
    /// The run's summary rows (gate rows included).
    pub rows: Vec<SummaryRow>,
    /// Each job's gates, judged, with the job they belong to.
    pub gates: Vec<(JobKey, GateOutcome)>,
    /// Each job's `job.json`, in suite order.
    pub jobs: Vec<serde_json::Value>,
    /// The previous run compared with and the comparison, where there was one.
    pub comparison: Option<(String, Vec<Comparison>)>,
    /// Whether a comparison was asked for (without one, the comparison is only drawn).
    pub compare_asked: bool,
    /// Significance level of the comparison.
    pub alpha: f64,
    /// The history file the rows were recorded in.
    pub history: PathBuf,
}

impl FinishedRun {
    /// Gates that failed.
    pub fn failed_gates(&self) -> usize {
        self.gates.iter().filter(|(_, g)| !g.passed).count()
    }

    /// The run at a glance: each attack's headline rate with its interval, and its gates.
    pub fn table(&self) -> String {
        let rows = &self.rows;
        let mut out = String::from("\n");
        let mut seen: Vec<JobKey> = Vec::new();
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
            let seconds = self
                .jobs
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
            for (_, g) in self.gates.iter().filter(|(k, _)| *k == key) {
                out.push_str(&format!("    gate {}\n", g.describe()));
            }
        }
        out
    }
}

fn job_key(r: &SummaryRow) -> JobKey {
    (r.attack.clone(), r.model.clone(), r.corpus.clone())
}

fn read(dir: &Path, name: &str) -> Result<String, RunError> {
    let path = dir.join(name);
    std::fs::read_to_string(&path).map_err(io("read", &path))
}

/// Assemble the run in `a.run_dir` from its job folders and record it in the history.
pub(crate) fn assemble(a: &Assembly) -> Result<FinishedRun, RunError> {
    let (suite, state, run_dir) = (a.suite, a.state, a.run_dir);
    let jobs_dir = run_dir.join("jobs");
    let (mut summaries, mut job_meta) = (Vec::new(), Vec::new());
    // Sentence-attack examples share one header; cloze items have their own file.
    let (mut examples, mut cloze_examples) = (Vec::new(), Vec::new());
    let mut extras: Vec<html::JobExtras> = Vec::new();
    let mut gate_outcomes: Vec<(JobKey, GateOutcome)> = Vec::new();
    for job in &suite.jobs {
        let dir = jobs_dir.join(&job.id);
        let summary = read(&dir, "summary.csv")?;
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
        let failures: Vec<FailureExample> = match read(&dir, "failures.json") {
            Ok(text) => serde_json::from_str(&text).map_err(|source| RunError::BadRecord {
                path: dir.join("failures.json"),
                what: "not valid failure examples",
                source,
            })?,
            Err(_) => Vec::new(),
        };
        let (trigger_words, trigger_lexicons) = trigger_explanation(&dir)?;
        if let Some(first) = job_rows.first() {
            extras.push(html::JobExtras {
                attack: first.attack.clone(),
                model: first.model.clone(),
                corpus: first.corpus.clone(),
                gates: judged.clone(),
                failures,
                wanted: job.examples,
                trigger_words,
                trigger_lexicons,
            });
            for outcome in judged {
                gate_outcomes.push((job_key(first), outcome));
            }
        }
        // Only the first line is read here: the files are joined on disk, streamed, as a
        // large attack's examples are gigabytes.
        let path = dir.join("examples.csv");
        let mut first = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(std::fs::File::open(&path).map_err(io("read", &path))?),
            &mut first,
        )
        .map_err(io("read", &path))?;
        if first.starts_with("attack,") {
            examples.push(path);
        } else {
            cloze_examples.push(path);
        }
        let meta = read(&dir, "job.json")?;
        job_meta.push(
            serde_json::from_str::<serde_json::Value>(&meta).map_err(|source| {
                RunError::BadRecord {
                    path: dir.join("job.json"),
                    what: "not a valid job record",
                    source,
                }
            })?,
        );
    }
    let summary = concat_csv(&summaries);
    let rows = history::parse_summary(&run_dir.join("summary.csv"), &summary)?;

    let history_path = a.out.join("history.csv");
    let past: Vec<HistoryRow> = history::read_history(&history_path)?
        .into_iter()
        .filter(|r| r.run_id != state.run_id)
        .collect();
    let previous = match a.compare {
        Some(CompareWith::Run(prev)) => Some(previous_rows(a.out, &past, prev)?),
        _ => history::runs_of(&past, &suite.name)
            .pop()
            .map(|id| (id.clone(), history::rows_of(&past, &id))),
    };
    // #30 item 13: attacks whose parameters changed are not compared (and, asked to
    // compare, said so).
    let comparisons = previous.as_ref().map(|(id, prev)| {
        let (c, notes) = history::compare_same_setup(prev, &rows, a.alpha, &suite.registry);
        if a.compare.is_some() {
            for note in notes {
                tracing::warn!("{note}");
            }
        }
        (id.clone(), c)
    });

    let finished_at = history::utc(super::run::unix_now()).1;
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
    let options = a.inference;
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
        "robust_version": crate::VERSION,
        "onnxruntime_library": crate::model::runtime::loaded_library(),
        "started_at": state.started_at,
        "finished_at": finished_at,
        "sessions": state.sessions,
        "this_session_wall_seconds": a.session_start.elapsed().as_secs_f64(),
        "attack_wall_seconds": attack_seconds,
        "machine": machine,
        "inference": {
            "batch_size": options.batch_size,
            "threads": options.threads,
            "workers": crate::model::worker_split(options.threads, options.workers).0,
            "cache_capacity": options.cache_capacity,
            "max_len": options.max_len,
        },
        "models": suite.models.iter().map(|m| json!({
            "path": m,
            "sha256": a.model_sha.get(m),
        })).collect::<Vec<_>>(),
        "corpora": suite.corpora.iter().map(|c| json!({
            "path": c,
            "sha256": crate::hash::sha256_file(c).ok(),
        })).collect::<Vec<_>>(),
        "seeds": suite.jobs.iter().map(|j| json!({"job": j.id, "seed": j.plan.attack.seed})).collect::<Vec<_>>(),
        "jobs": job_meta,
        "comparison": comparisons.as_ref().map(|(id, c)| json!({
            "previous_run": id,
            "alpha": a.alpha,
            "regressed": c.iter().filter(|x| x.verdict == Verdict::Regressed).count(),
            "improved": c.iter().filter(|x| x.verdict == Verdict::Improved).count(),
            "tested": c.iter().filter(|x| x.verdict != Verdict::NotTested).count(),
        })),
    });
    if !state.merged_from.is_empty() {
        manifest["merged_from"] = json!(state.merged_from);
    }

    let facts = facts(a, &finished_at, attack_seconds, &machine);
    let page = html::render(&html::HtmlReport {
        suite: &suite.name,
        run_id: &state.run_id,
        facts: &facts,
        rows: &rows,
        trend: &trend,
        comparison: comparisons
            .as_ref()
            .map(|(id, c)| (id.as_str(), c.as_slice(), a.alpha)),
        jobs: &extras,
        kinds: &suite.registry,
    });

    let mut files = vec![("summary.csv", summary), ("report.html", page)];
    let mut staged = vec![crate::report::StagedFile::create(run_dir, "examples.csv")?];
    concat_csv_files(&examples, staged[0].path())?;
    if !cloze_examples.is_empty() {
        let cloze = crate::report::StagedFile::create(run_dir, "cloze-examples.csv")?;
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
    crate::report::write_all_atomic_with(run_dir, &files, staged)?;
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
    Ok(FinishedRun {
        run_id: state.run_id.clone(),
        run_dir: run_dir.to_path_buf(),
        suite: suite.name.clone(),
        rows,
        gates: gate_outcomes,
        jobs: job_meta,
        comparison: comparisons,
        compare_asked: a.compare.is_some(),
        alpha: a.alpha,
        history: history_path,
    })
}

/// The label and value lines at the top of `report.html`.
fn facts(
    a: &Assembly,
    finished_at: &str,
    attack_seconds: f64,
    machine: &serde_json::Value,
) -> Vec<(String, String)> {
    let (suite, state) = (a.suite, a.state);
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
                a.model_sha.get(m).map_or("?", |s| &s[..12])
            ),
        ));
    }
    for c in &suite.corpora {
        let sha = crate::hash::sha256_file(c).unwrap_or_default();
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
    facts.push(("robust".into(), crate::VERSION.to_string()));
    facts
}

/// CSV files joined under the first one's header, streamed (a part of a large attack's
/// examples can be gigabytes).
pub(crate) fn concat_csv_files(inputs: &[PathBuf], out: &Path) -> Result<(), RunError> {
    use std::io::{BufRead, Write};
    let file = std::fs::File::create(out).map_err(io("create", out))?;
    let mut writer = std::io::BufWriter::new(file);
    for (i, path) in inputs.iter().enumerate() {
        let mut input =
            std::io::BufReader::new(std::fs::File::open(path).map_err(io("read", path))?);
        if i > 0 {
            // One header: each later part starts with the same header line.
            let mut header = Vec::new();
            input
                .read_until(b'\n', &mut header)
                .map_err(io("read", path))?;
        }
        std::io::copy(&mut input, &mut writer).map_err(io("copy", path))?;
    }
    writer.flush().map_err(io("write", out))?;
    writer.get_ref().sync_all().map_err(io("write", out))?;
    Ok(())
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

/// A trigger job's words as its `trigger.json` explains them, and the lexicons consulted;
/// empty for other jobs (and for a `trigger.json` written before explanations existed).
fn trigger_explanation(dir: &Path) -> Result<(Vec<html::TriggerWord>, Vec<String>), RunError> {
    let Ok(text) = read(dir, "trigger.json") else {
        return Ok((Vec::new(), Vec::new()));
    };
    #[derive(serde::Deserialize)]
    struct Consulted {
        name: String,
    }
    #[derive(serde::Deserialize)]
    struct Explanation {
        lexicons: Vec<Consulted>,
        words: Vec<html::TriggerWord>,
    }
    #[derive(serde::Deserialize)]
    struct Trigger {
        explanation: Option<Explanation>,
    }
    let trigger: Trigger = serde_json::from_str(&text).map_err(|source| RunError::BadRecord {
        path: dir.join("trigger.json"),
        what: "not a valid trigger record",
        source,
    })?;
    Ok(trigger.explanation.map_or_else(Default::default, |e| {
        (e.words, e.lexicons.into_iter().map(|l| l.name).collect())
    }))
}
