//! Comparing a run with a previous one: which run that is, its rows, and the verdict.
//!
//! The comparison itself (a two-proportion test per metric, direction-aware) is
//! [`history::compare`]; this module finds what to compare and says what came out, so that
//! `robust report --compare` after a run and on its own (`--run`) judge alike.

use std::path::{Path, PathBuf};

use super::run::RunError;
use crate::attack::kind::Registry;
use crate::report::fixed;
use crate::report::history::{self, Comparison, HistoryRow, SummaryRow, Verdict};

/// The previous run to compare with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareWith {
    /// The latest earlier run of the same suite in the history.
    Latest,
    /// A run id in the history, or a run folder.
    Run(String),
}

/// Rows of a previous run given as a run folder (its `summary.csv`) or a run id in history.
pub fn previous_rows(
    out: &Path,
    past: &[HistoryRow],
    prev: &str,
) -> Result<(String, Vec<SummaryRow>), RunError> {
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
        return Err(RunError::NoSuchPrevious {
            run: prev.to_string(),
            history: out.join("history.csv"),
        });
    }
    Ok((prev.to_string(), rows))
}

/// A comparison of two runs already in the history.
#[derive(Debug)]
pub struct RunComparison {
    /// The earlier run.
    pub previous: String,
    /// The run judged.
    pub current: String,
    /// One per metric both runs have.
    pub comparisons: Vec<Comparison>,
}

/// Compare `run` (default: the latest in `out`'s history) with `with` (default: the latest
/// earlier run of the same suite). `None` when there is no earlier run to compare with.
pub fn compare_runs(
    out: &Path,
    run: Option<&str>,
    with: &CompareWith,
    alpha: f64,
) -> Result<Option<RunComparison>, RunError> {
    let history_path = out.join("history.csv");
    let all = history::read_history(&history_path)?;
    let current = match run {
        Some(id) => id.to_string(),
        None => match all.last() {
            Some(r) => r.run_id.clone(),
            None => {
                return Err(RunError::NoSuchRun {
                    run: None,
                    history: history_path,
                });
            }
        },
    };
    let rows = history::rows_of(&all, &current);
    let Some(suite) = all.iter().find(|r| r.run_id == current).map(|r| &r.suite) else {
        return Err(RunError::NoSuchRun {
            run: Some(current),
            history: history_path,
        });
    };
    let past: Vec<HistoryRow> = all
        .iter()
        .filter(|r| r.run_id != current)
        .cloned()
        .collect();
    let (previous, prev_rows) = match with {
        CompareWith::Run(p) => previous_rows(out, &past, p)?,
        CompareWith::Latest => {
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
                    return Ok(None);
                }
            }
        }
    };
    let (comparisons, notes) =
        history::compare_same_setup(&prev_rows, &rows, alpha, &Registry::builtin());
    for note in notes {
        tracing::warn!("{note}");
    }
    Ok(Some(RunComparison {
        comparisons,
        previous,
        current,
    }))
}

/// The verdict in words: one line per regressed metric, then the count of worse and better
/// metrics. The second value says whether anything regressed.
pub fn verdict(previous: &str, current: &str, c: &[Comparison], alpha: f64) -> (String, bool) {
    let tested = c.iter().filter(|x| x.verdict != Verdict::NotTested).count();
    let regressed: Vec<&Comparison> = c
        .iter()
        .filter(|x| x.verdict == Verdict::Regressed)
        .collect();
    let improved = c.iter().filter(|x| x.verdict == Verdict::Improved).count();
    let pct = |r: &Option<crate::score::stats::Rate>| {
        r.map_or("-".into(), |r| {
            format!("{}% ({}/{})", fixed(100.0 * r.value, 1), r.k, r.n)
        })
    };
    let mut out = String::new();
    for x in &regressed {
        out.push_str(&format!(
            "REGRESSED {}: {} -> {} (p = {:.2e})\n",
            x.key,
            pct(&x.previous),
            pct(&x.current),
            x.p_value.unwrap_or(f64::NAN)
        ));
    }
    out.push_str(&format!(
        "{current} vs {previous}: {} of {tested} metrics significantly worse, {improved} better \
         (two-proportion z-test, alpha = {alpha})\n",
        regressed.len()
    ));
    (out, !regressed.is_empty())
}
