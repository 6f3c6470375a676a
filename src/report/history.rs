//! `history.csv` and run-to-run comparison: the memory a nightly job needs to say "worse than
//! last night".
//!
//! History is `summary.csv`'s rows with three columns in front (`run_id`, `suite`,
//! `finished_at`), appended once per finished run. Appending rewrites the whole file through
//! [`super::write_atomic`] after dropping any rows of the same run id, so a resumed or repeated
//! finalisation never duplicates rows and a kill never leaves half a file.
//!
//! A metric has regressed when it moved in its bad direction and a pooled two-proportion
//! z-test on the two runs' k/n gives p < alpha. The two runs usually score the same sentences,
//! so the samples are not independent; the test then overstates the variance of the
//! difference and is conservative, which is the safe side for a gate that fails a build.
//! Same seed, same model and same corpus give the same k/n, hence p = 1: a rerun never
//! "regresses".

use std::path::Path;

use serde::Serialize;

use super::ReportError;
use crate::score::Expectation;
use crate::score::metric::Metric;
use crate::score::stats::{Rate, two_proportion_p};

/// One row of `summary.csv` (see [`super::csv::SUMMARY_HEADER`]), as text, so that rows read
/// back are written out byte for byte as they came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SummaryRow {
    /// The attack's name.
    pub attack: String,
    /// The attack's kind (`shuffle`, `negation`, `cloze`, ...).
    pub kind: String,
    /// `all`, or a perturbation group (a swap direction, `insert`, a shuffle mode).
    pub group: String,
    /// The metric's name ([`Metric::name`]), a plain value's name (`examples`,
    /// `queries_per_example`, ...), or `gate:<key>` for a gate's verdict.
    pub metric: String,
    /// What the rate is over, in words (`perturbations`, `attacked examples`); empty for
    /// plain values; a gate row's threshold and mode.
    pub denominator: String,
    /// The numerator of a rate; empty for plain values.
    pub k: String,
    /// The denominator of a rate; empty for plain values.
    pub n: String,
    /// The value as written: a rate as a fraction in [0, 1], a count or a mean, or
    /// `pass`/`fail` for a gate row.
    pub value: String,
    /// Lower bound of the 95% Wilson interval, as a fraction; empty for plain values.
    pub ci_low: String,
    /// Upper bound of the 95% Wilson interval, as a fraction; empty for plain values.
    pub ci_high: String,
    /// McNemar's exact p-value on `accuracy_after` rows; empty elsewhere.
    pub p_value: String,
    /// The model as reports name it.
    pub model: String,
    /// sha256 of the model, lower-case hex.
    pub model_sha256: String,
    /// The corpus as reports name it.
    pub corpus: String,
    /// sha256 of the corpus file, lower-case hex.
    pub corpus_sha256: String,
    /// The run's seed.
    pub seed: String,
    /// The version of robust that wrote the row.
    pub robust_version: String,
    /// The attack's parameters, `key=value` pairs joined by `;`.
    pub parameters: String,
}

impl SummaryRow {
    /// The cells in [`super::csv::SUMMARY_HEADER`] order.
    pub fn cells(&self) -> [&str; 18] {
        [
            &self.attack,
            &self.kind,
            &self.group,
            &self.metric,
            &self.denominator,
            &self.k,
            &self.n,
            &self.value,
            &self.ci_low,
            &self.ci_high,
            &self.p_value,
            &self.model,
            &self.model_sha256,
            &self.corpus,
            &self.corpus_sha256,
            &self.seed,
            &self.robust_version,
            &self.parameters,
        ]
    }

    fn from_cells(c: &[&str]) -> Self {
        let s = |i: usize| c[i].to_string();
        Self {
            attack: s(0),
            kind: s(1),
            group: s(2),
            metric: s(3),
            denominator: s(4),
            k: s(5),
            n: s(6),
            value: s(7),
            ci_low: s(8),
            ci_high: s(9),
            p_value: s(10),
            model: s(11),
            model_sha256: s(12),
            corpus: s(13),
            corpus_sha256: s(14),
            seed: s(15),
            robust_version: s(16),
            parameters: s(17),
        }
    }

    /// k/n as a rate, for rows that have them.
    pub fn rate(&self) -> Option<Rate> {
        Some(Rate::new(self.k.parse().ok()?, self.n.parse().ok()?))
    }

    /// What identifies "the same metric" across runs.
    pub fn key(&self) -> MetricKey {
        MetricKey {
            attack: self.attack.clone(),
            model: self.model.clone(),
            corpus: self.corpus.clone(),
            group: self.group.clone(),
            metric: self.metric.clone(),
        }
    }
}

/// A metric's identity across runs: the same attack, model, corpus, group and metric name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct MetricKey {
    /// The attack's name.
    pub attack: String,
    /// The model's name.
    pub model: String,
    /// The corpus's name.
    pub corpus: String,
    /// The row's group.
    pub group: String,
    /// The metric's name.
    pub metric: String,
}

impl std::fmt::Display for MetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} on {}) {}/{}",
            self.attack, self.model, self.corpus, self.group, self.metric
        )
    }
}

/// A summary row of one run in `history.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The run's id.
    pub run_id: String,
    /// The suite's name.
    pub suite: String,
    /// When the run finished, as written (UTC, e.g. `2025-01-31T23:59:59Z`).
    pub finished_at: String,
    /// The summary row itself.
    pub row: SummaryRow,
}

/// Columns `history.csv` has in front of `summary.csv`'s.
const HISTORY_PREFIX: [&str; 3] = ["run_id", "suite", "finished_at"];

/// Why a summary or history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The file could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The header is not the expected one, or a row is not valid CSV.
    #[error("{path}:{line}: {problem}")]
    Row {
        /// The file.
        path: std::path::PathBuf,
        /// Line in the file (1-based, header is line 1; 0 when the CSV reader cannot say).
        line: u64,
        /// What is wrong.
        problem: String,
    },
    /// Writing the history (or taking its lock) failed.
    #[error(transparent)]
    Write(#[from] ReportError),
}

/// Read CSV whose header must be `prefix` followed by `summary.csv`'s columns; each row comes
/// back as its prefix cells and its summary row.
fn parse_rows(
    path: &Path,
    text: &str,
    prefix: &[&str],
) -> Result<Vec<(Vec<String>, SummaryRow)>, HistoryError> {
    let problem = |line: u64, problem: String| HistoryError::Row {
        path: path.to_path_buf(),
        line,
        problem,
    };
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| problem(1, e.to_string()))?
        .clone();
    let expected: Vec<&str> = prefix
        .iter()
        .copied()
        .chain(super::csv::SUMMARY_HEADER)
        .collect();
    if header.iter().collect::<Vec<_>>() != expected {
        return Err(problem(
            1,
            format!("unexpected header; expected {}", expected.join(",")),
        ));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| problem(e.position().map_or(0, |p| p.line()), e.to_string()))?;
        let cells: Vec<&str> = record.iter().collect();
        let (head, rest) = cells.split_at(prefix.len());
        rows.push((
            head.iter().map(|c| c.to_string()).collect(),
            SummaryRow::from_cells(rest),
        ));
    }
    Ok(rows)
}

fn summary_rows(path: &Path, text: &str) -> Result<Vec<SummaryRow>, HistoryError> {
    Ok(parse_rows(path, text, &[])?
        .into_iter()
        .map(|(_, r)| r)
        .collect())
}

fn history_rows(path: &Path, text: &str) -> Result<Vec<HistoryRow>, HistoryError> {
    Ok(parse_rows(path, text, &HISTORY_PREFIX)?
        .into_iter()
        .map(|(mut head, row)| HistoryRow {
            finished_at: head.pop().unwrap_or_default(),
            suite: head.pop().unwrap_or_default(),
            run_id: head.pop().unwrap_or_default(),
            row,
        })
        .collect())
}

/// Rows of a `summary.csv`.
pub fn read_summary(path: &Path) -> Result<Vec<SummaryRow>, HistoryError> {
    let text = std::fs::read_to_string(path).map_err(|source| HistoryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    summary_rows(path, &text)
}

/// Parse `summary.csv` text already in memory; `origin` names it in errors.
pub fn parse_summary(origin: &Path, text: &str) -> Result<Vec<SummaryRow>, HistoryError> {
    summary_rows(origin, text)
}

/// Every row of `history.csv`, in file order; a missing file is an empty history.
pub fn read_history(path: &Path) -> Result<Vec<HistoryRow>, HistoryError> {
    match std::fs::read_to_string(path) {
        Ok(text) => history_rows(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(HistoryError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Replace the rows of `run_id` in `history` with `rows` (at the end), and write the file
/// atomically. Idempotent: finalising the same run twice leaves one copy of its rows.
pub fn record_run(
    path: &Path,
    run_id: &str,
    suite: &str,
    finished_at: &str,
    rows: &[SummaryRow],
) -> Result<Vec<HistoryRow>, HistoryError> {
    // Read, change and replace under an exclusive lock: two runs finishing at once would
    // otherwise each write the file they read, and one run's rows would be lost.
    let _lock = lock_beside(path)?;
    let mut history: Vec<HistoryRow> = read_history(path)?
        .into_iter()
        .filter(|r| r.run_id != run_id)
        .collect();
    history.extend(rows.iter().map(|row| HistoryRow {
        run_id: run_id.to_string(),
        suite: suite.to_string(),
        finished_at: finished_at.to_string(),
        row: row.clone(),
    }));
    super::write_atomic(path, history_csv(&history)?.as_bytes())?;
    Ok(history)
}

/// `history.csv` with a header, from its rows.
pub(crate) fn history_csv(rows: &[HistoryRow]) -> Result<String, ReportError> {
    let ser = |e: csv::Error| ReportError::Serialise(Box::new(e));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HISTORY_PREFIX.iter().chain(&super::csv::SUMMARY_HEADER))
        .map_err(ser)?;
    for r in rows {
        w.write_record(
            [r.run_id.as_str(), &r.suite, &r.finished_at]
                .into_iter()
                .chain(r.row.cells()),
        )
        .map_err(ser)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ReportError::Serialise(Box::new(e.into_error())))?;
    String::from_utf8(bytes).map_err(|e| ReportError::Serialise(Box::new(e)))
}

/// An exclusive advisory lock on `<path>.lock`, held until the returned file is dropped.
fn lock_beside(path: &Path) -> Result<std::fs::File, HistoryError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = std::path::PathBuf::from(name);
    let err = |source| {
        HistoryError::from(ReportError::Write {
            path: lock_path.clone(),
            source,
        })
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(err)?;
    file.lock().map_err(err)?;
    Ok(file)
}

/// Summary rows as `summary.csv` lines, without a header (to append to a summary).
pub fn rows_csv(rows: &[SummaryRow]) -> Result<String, ReportError> {
    let ser = |e: csv::Error| ReportError::Serialise(Box::new(e));
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.write_record(r.cells()).map_err(ser)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ReportError::Serialise(Box::new(e.into_error())))?;
    String::from_utf8(bytes).map_err(|e| ReportError::Serialise(Box::new(e)))
}

/// Run ids of `suite` in history, oldest first (the order runs finished).
pub fn runs_of(history: &[HistoryRow], suite: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for r in history.iter().filter(|r| r.suite == suite) {
        if ids.last() != Some(&r.run_id) && !ids.contains(&r.run_id) {
            ids.push(r.run_id.clone());
        }
    }
    ids
}

/// The summary rows of one run in history.
pub fn rows_of(history: &[HistoryRow], run_id: &str) -> Vec<SummaryRow> {
    history
        .iter()
        .filter(|r| r.run_id == run_id)
        .map(|r| r.row.clone())
        .collect()
}

pub use crate::score::metric::Worse;

pub use crate::score::metric::KindFacts;

/// What results of `kind` (a summary row's `kind` column) expected of the model, as `kinds`
/// (the attack registry) says; invariance for a kind it does not know.
pub fn expectation_of(kinds: &dyn KindFacts, kind: &str) -> Expectation {
    kinds.expectation(kind).unwrap_or(Expectation::Invariant)
}

/// The bad direction of a `summary.csv` row's metric for an attack with `expectation`, or
/// None for values that are not rates and for rates whose direction depends on what the
/// attack wanted (a negation is meant to flip the label). Typed in [`Metric`].
pub fn worse_direction(expectation: Expectation, metric: &str) -> Option<Worse> {
    Metric::parse(metric)?.worse(expectation)
}

/// What a comparison of one metric across two runs concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Moved in its bad direction with p < alpha.
    Regressed,
    /// Moved in its good direction with p < alpha.
    Improved,
    /// No significant change.
    Same,
    /// A metric with no bad direction, or missing from one of the runs.
    NotTested,
}

/// One rate metric compared across two runs.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Which metric.
    pub key: MetricKey,
    /// The attack's kind, which decides the metric's bad direction.
    pub kind: String,
    /// The rate in the previous run; `None` when that run did not have the metric.
    pub previous: Option<Rate>,
    /// The rate in the current run.
    pub current: Option<Rate>,
    /// The metric's bad direction; `None` when it has none.
    pub worse: Option<Worse>,
    /// The pooled two-proportion z-test's two-sided p-value; `None` when not tested.
    pub p_value: Option<f64>,
    /// Regressed, improved, same or not tested.
    pub verdict: Verdict,
}

/// Compare every rate metric of `current` with the same metric in `previous`; each row's kind
/// has the expectation `expectation_of` gives it.
pub fn compare(
    previous: &[SummaryRow],
    current: &[SummaryRow],
    alpha: f64,
    kinds: &dyn KindFacts,
) -> Vec<Comparison> {
    let before: std::collections::HashMap<MetricKey, Rate> = previous
        .iter()
        .filter_map(|r| Some((r.key(), r.rate()?)))
        .collect();
    current
        .iter()
        .filter_map(|row| {
            let now = row.rate()?;
            let key = row.key();
            let prev = before.get(&key).copied();
            let worse = worse_direction(expectation_of(kinds, &row.kind), &row.metric);
            let (p_value, verdict) = match (prev, worse) {
                (Some(p), Some(w)) if p.n > 0 && now.n > 0 => {
                    let pv = two_proportion_p(p.k, p.n, now.k, now.n);
                    let up = now.value > p.value;
                    let verdict = if pv >= alpha || now.value == p.value {
                        Verdict::Same
                    } else if up == (w == Worse::Higher) {
                        Verdict::Regressed
                    } else {
                        Verdict::Improved
                    };
                    (Some(pv), verdict)
                }
                _ => (None, Verdict::NotTested),
            };
            Some(Comparison {
                key,
                kind: row.kind.clone(),
                previous: prev,
                current: Some(now),
                worse,
                p_value,
                verdict,
            })
        })
        .collect()
}

/// [`compare`], leaving untested (#30 item 13) the metrics of every attack whose setup
/// differs between the runs (its parameters or seed: `mode=local` then `mode=full` is another
/// measurement, not a regression). The second value has one warning per such attack, naming
/// what differs.
pub fn compare_same_setup(
    previous: &[SummaryRow],
    current: &[SummaryRow],
    alpha: f64,
    kinds: &dyn KindFacts,
) -> (Vec<Comparison>, Vec<String>) {
    type Setup = (String, String, String);
    let setups = |rows: &[SummaryRow]| {
        let mut out: std::collections::BTreeMap<Setup, (String, String)> = Default::default();
        for r in rows {
            out.entry((r.attack.clone(), r.model.clone(), r.corpus.clone()))
                .or_insert_with(|| (r.parameters.clone(), r.seed.clone()));
        }
        out
    };
    let before = setups(previous);
    let now = setups(current);
    let mut notes = Vec::new();
    let mut changed = std::collections::BTreeSet::new();
    for (setup, (params, seed)) in &now {
        let Some((old_params, old_seed)) = before.get(setup) else {
            continue;
        };
        let mut diffs = parameter_changes(old_params, params);
        if old_seed != seed {
            diffs.push(format!("seed {old_seed} -> {seed}"));
        }
        if diffs.is_empty() {
            continue;
        }
        notes.push(format!(
            "attack {} on {} / {}: not compared, its parameters differ from the previous run's \
             ({}); the two runs measure different things",
            setup.0,
            setup.1,
            setup.2,
            diffs.join(", ")
        ));
        changed.insert(setup.clone());
    }
    let mut comparisons = compare(previous, current, alpha, kinds);
    for c in &mut comparisons {
        let setup = (
            c.key.attack.clone(),
            c.key.model.clone(),
            c.key.corpus.clone(),
        );
        if changed.contains(&setup) {
            c.p_value = None;
            c.verdict = Verdict::NotTested;
        }
    }
    (comparisons, notes)
}

/// What differs between two `parameters` cells (`key=value` pairs joined by `;`), in words:
/// `mode local -> full`, `window 3 -> (none)`.
fn parameter_changes(before: &str, after: &str) -> Vec<String> {
    let pairs = |s: &str| -> std::collections::BTreeMap<String, String> {
        s.split(';')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (p.to_string(), String::new()),
            })
            .collect()
    };
    let (a, b) = (pairs(before), pairs(after));
    // What a run found, or what its model is, rather than what it was told: a search's
    // trigger and its search examples, the random triggers drawn from the model's
    // vocabulary, the model's input limit and how many inputs it cut. These change with the
    // model, and a new model is what a comparison is for (a weaker export that cuts inputs
    // must show as REGRESSED, not as not compared).
    const OUTCOMES: [&str; 5] = [
        "trigger",
        "random_triggers",
        "search_examples",
        "max_len",
        "truncated",
    ];
    let keys: std::collections::BTreeSet<&String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| !OUTCOMES.contains(&k.as_str()))
        .collect();
    let none = "(none)".to_string();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            format!(
                "{k} {} -> {}",
                a.get(k).unwrap_or(&none),
                b.get(k).unwrap_or(&none)
            )
        })
        .collect()
}

/// `comparison.csv`: every compared metric with both runs' values, the p-value and verdict.
pub fn comparison_csv(previous_run: &str, rows: &[Comparison]) -> Result<String, ReportError> {
    let ser = |e: csv::Error| ReportError::Serialise(Box::new(e));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "previous_run",
        "attack",
        "model",
        "corpus",
        "group",
        "metric",
        "worse_when",
        "previous_k",
        "previous_n",
        "previous_value",
        "current_k",
        "current_n",
        "current_value",
        "p_value",
        "verdict",
    ])
    .map_err(ser)?;
    let rate = |r: &Option<Rate>| match r {
        Some(r) => (r.k.to_string(), r.n.to_string(), super::fixed(r.value, 6)),
        None => Default::default(),
    };
    for c in rows {
        let (pk, pn, pv) = rate(&c.previous);
        let (ck, cn, cv) = rate(&c.current);
        w.write_record([
            previous_run,
            &c.key.attack,
            &c.key.model,
            &c.key.corpus,
            &c.key.group,
            &c.key.metric,
            match c.worse {
                Some(Worse::Higher) => "higher",
                Some(Worse::Lower) => "lower",
                None => "",
            },
            &pk,
            &pn,
            &pv,
            &ck,
            &cn,
            &cv,
            &c.p_value.map(|p| format!("{p:.6}")).unwrap_or_default(),
            match c.verdict {
                Verdict::Regressed => "regressed",
                Verdict::Improved => "improved",
                Verdict::Same => "same",
                Verdict::NotTested => "not-tested",
            },
        ])
        .map_err(ser)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ReportError::Serialise(Box::new(e.into_error())))?;
    String::from_utf8(bytes).map_err(|e| ReportError::Serialise(Box::new(e)))
}

/// UTC calendar date and time of a Unix timestamp: ("2025-01-31", "2025-01-31T23:59:59Z").
/// Hinnant's days-to-civil algorithm; no time-zone database needed because it is always UTC.
pub fn utc(unix_seconds: u64) -> (String, String) {
    let days = (unix_seconds / 86_400) as i64;
    let secs = unix_seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let date = format!("{year:04}-{month:02}-{day:02}");
    let time = format!(
        "{date}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    (date, time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the attacks expect, as far as these tests need: a negation flips, the rest stay.
    fn row(attack: &str, kind: &str, metric: &str, k: u64, n: u64) -> SummaryRow {
        SummaryRow {
            attack: attack.into(),
            kind: kind.into(),
            group: "all".into(),
            metric: metric.into(),
            denominator: "perturbations".into(),
            k: k.to_string(),
            n: n.to_string(),
            value: format!("{:.6}", k as f64 / n as f64),
            ci_low: String::new(),
            ci_high: String::new(),
            p_value: String::new(),
            model: "m".into(),
            model_sha256: "ab".into(),
            corpus: "c.tsv".into(),
            corpus_sha256: "cd".into(),
            seed: "1".into(),
            robust_version: "0".into(),
            parameters: "a=1;b=2".into(),
        }
    }

    /// #30 item 13: `--compare` compared runs whose parameters changed (shuffle `local` then
    /// `full`) and reported REGRESSED. Now such an attack is not compared, and the warning
    /// names what changed.
    #[test]
    fn issue30_item13_changed_parameters_are_not_compared() {
        let prev = vec![row("s", "shuffle", "flip_rate", 50, 1000)];
        let mut changed = row("s", "shuffle", "flip_rate", 300, 1000);
        changed.parameters = "a=1;b=3".into();
        let (c, notes) = compare_same_setup(&prev, &[changed], 0.01, &crate::testing::TestKinds);
        assert_eq!(c[0].verdict, Verdict::NotTested);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("b 2 -> 3"), "{}", notes[0]);
        assert!(notes[0].contains("not compared"), "{}", notes[0]);
        let same = row("s", "shuffle", "flip_rate", 300, 1000);
        let (c, notes) = compare_same_setup(&prev, &[same], 0.01, &crate::testing::TestKinds);
        assert_eq!(c[0].verdict, Verdict::Regressed);
        assert!(notes.is_empty());
        // A searched trigger that differs (another model found another) is an outcome.
        let mut found = row("s", "shuffle", "flip_rate", 300, 1000);
        found.parameters = "a=1;b=2;max_len=8;trigger=the the;truncated=3".into();
        let (c, notes) = compare_same_setup(&prev, &[found], 0.01, &crate::testing::TestKinds);
        assert_eq!(c[0].verdict, Verdict::Regressed);
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn utc_dates_match_known_values() {
        assert_eq!(utc(0).1, "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400).0, "2000-02-29");
        assert_eq!(utc(1_735_689_599).1, "2024-12-31T23:59:59Z");
        assert_eq!(utc(1_709_210_096).1, "2024-02-29T12:34:56Z");
    }

    #[test]
    fn regressions_go_the_bad_way_only() {
        let prev = vec![
            row("s", "shuffle", "flip_rate", 50, 1000),
            row("s", "shuffle", "accuracy_before", 900, 1000),
            row("n", "negation", "expected_direction_rate", 500, 1000),
            row("n", "negation", "flip_rate", 500, 1000),
        ];
        let cur = vec![
            row("s", "shuffle", "flip_rate", 100, 1000),
            row("s", "shuffle", "accuracy_before", 950, 1000),
            row("n", "negation", "expected_direction_rate", 510, 1000),
            row("n", "negation", "flip_rate", 900, 1000),
            row("new", "shuffle", "flip_rate", 1, 10),
        ];
        let verdicts: Vec<Verdict> = compare(&prev, &cur, 0.01, &crate::testing::TestKinds)
            .iter()
            .map(|c| c.verdict)
            .collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Regressed,
                Verdict::Improved,
                Verdict::Same,
                Verdict::NotTested,
                Verdict::NotTested
            ]
        );
        // The same numbers never regress.
        assert!(
            compare(&prev, &prev, 0.5, &crate::testing::TestKinds)
                .iter()
                .all(|c| c.verdict != Verdict::Regressed)
        );
    }

    #[test]
    fn recording_a_run_twice_keeps_one_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.csv");
        let rows = vec![row("s", "shuffle", "flip_rate", 5, 10)];
        record_run(&path, "r1", "nightly", "2025-01-01T00:00:00Z", &rows).unwrap();
        record_run(&path, "r2", "nightly", "2025-01-02T00:00:00Z", &rows).unwrap();
        let once = std::fs::read(&path).unwrap();
        record_run(&path, "r2", "nightly", "2025-01-02T00:00:00Z", &rows).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), once);
        let history = read_history(&path).unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(runs_of(&history, "nightly"), ["r1", "r2"]);
        assert_eq!(rows_of(&history, "r1"), rows);
        assert!(runs_of(&history, "other").is_empty());
    }

    proptest! {
        /// Rows survive a history round trip unchanged, whatever text their cells hold.
        #[test]
        fn history_round_trips(cells in prop::collection::vec("[a-z,\"\n ;=]{0,8}", 3), k in 0u64..50, extra in 0u64..50) {
            let mut r = row(&cells[0], "shuffle", "flip_rate", k, k + extra);
            r.parameters = cells[1].clone();
            r.group = cells[2].clone();
            let h = vec![HistoryRow { run_id: "x".into(), suite: "s".into(), finished_at: "t".into(), row: r }];
            let text = history_csv(&h).unwrap();
            let back = history_rows(Path::new("h.csv"), &text).unwrap();
            prop_assert_eq!(back, h);
        }

        /// A metric compared with itself is never significant, at any alpha.
        #[test]
        fn identical_runs_never_regress(k in 0u64..500, extra in 0u64..500, alpha in 0.0001f64..0.5) {
            let rows = vec![row("s", "shuffle", "flip_rate", k, k + extra.max(1))];
            prop_assert!(compare(&rows, &rows, alpha, &crate::testing::TestKinds).iter().all(|c| c.verdict != Verdict::Regressed));
        }
    }
}
