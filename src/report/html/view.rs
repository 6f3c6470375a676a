//! What the HTML report shows, decided apart from how it is drawn.
//!
//! The report's questions (which attacks, in which order; which rates get a bar; which run
//! the trend line starts at; which metrics the comparison marked; which words of a failure
//! example changed) are answered here, from the summary rows, history and comparison, into
//! plain structs with no markup in them. Kept apart from [`super::template`] so that the
//! selection can be tested on values rather than by searching rendered HTML, and so that a
//! change of look cannot silently change what the report claims. Text is kept raw: escaping
//! is the template's job, done once, where the text meets the markup.

use std::collections::BTreeMap;

use super::{HtmlReport, JobExtras};
use crate::attack::engine::FailureExample;
use crate::report::gate::GateOutcome;
use crate::report::history::{
    Comparison, HistoryRow, KindFacts, SummaryRow, Verdict, Worse, expectation_of, worse_direction,
};
use crate::score::metric::Metric;
use crate::score::stats::Rate;

/// The rate metrics shown as bars, in this order, with readable names.
const BAR_METRICS: [(&str, &str); 12] = [
    ("flip_rate", "flip rate (of perturbations)"),
    ("example_flip_rate", "example flip rate"),
    ("attack_success_rate", "attack success rate"),
    ("expected_direction_rate", "expected-direction rate"),
    ("ignored_rate", "ignored rate"),
    ("accuracy_before", "accuracy before"),
    ("accuracy_after", "accuracy after (every variant)"),
    ("perturbed_accuracy", "accuracy on perturbations"),
    (
        "true_preferred_affirmative",
        "true completion preferred, affirmative",
    ),
    (
        "true_preferred_negated",
        "true completion preferred, negated",
    ),
    ("top1_unchanged", "top-1 unchanged by negation"),
    ("answer_in_topk", "answer in affirmative top-k"),
];

/// Runs a trend chart shows at most: beyond that the points crowd and old runs say little
/// about tonight's change.
const TREND_RUNS: usize = 30;

/// Group bars a breakdown shows at most, so that an attack with many groups (one per name
/// swapped, say) does not push the rest of the page out of sight.
const GROUP_BARS: usize = 16;

/// The whole page.
pub(super) struct Page<'a> {
    /// The suite's name, for the title and heading.
    pub(super) suite: &'a str,
    /// This run's id, for the title.
    pub(super) run_id: &'a str,
    /// Label and value lines for the header.
    pub(super) facts: &'a [(String, String)],
    /// The comparison with the previous run, or its absence.
    pub(super) banner: Banner<'a>,
    /// The first screen: one row per job, in the jobs' order.
    pub(super) overview: Vec<OverviewRow<'a>>,
    /// One per attack × model × corpus, in the order their rows first appear.
    pub(super) jobs: Vec<Job<'a>>,
}

/// The line at the top that answers "did anything get worse since last time?".
pub(super) enum Banner<'a> {
    /// No earlier run to compare with.
    FirstRun,
    /// Compared with `previous_run`.
    Compared {
        /// The run compared with.
        previous_run: &'a str,
        /// The significance level the comparison used.
        alpha: f64,
        /// Metrics the comparison could test (a direction and a rate in both runs).
        tested: usize,
        /// Metrics significantly better.
        improved: usize,
        /// Metrics significantly worse, in comparison order.
        regressed: Vec<&'a Comparison>,
    },
}

/// A job's line in the overview: its headline rate, its gates and its change since the
/// previous run, so that a reader sees the whole run before any detail.
pub(super) struct OverviewRow<'a> {
    /// The job's section, which the row links to (`job-1`, `job-2`, ... in page order).
    pub(super) anchor: String,
    /// The attack's name from the suite.
    pub(super) attack: &'a str,
    /// The attack kind.
    pub(super) kind: &'a str,
    /// The model, as in `summary.csv`.
    pub(super) model: &'a str,
    /// The corpus, as in `summary.csv`.
    pub(super) corpus: &'a str,
    /// The headline metric's name.
    pub(super) metric: &'static str,
    /// The headline rate; `None` when the run has no such row.
    pub(super) rate: Option<Rate>,
    /// Whether a higher headline value is the bad direction.
    pub(super) bad_high: bool,
    /// Gates passed and gates judged.
    pub(super) gates: (usize, usize),
    /// The headline rate in the previous run and the comparison's verdict, when compared.
    pub(super) change: Option<(Option<Rate>, Verdict)>,
}

/// One attack on one model and corpus.
pub(super) struct Job<'a> {
    /// The attack's name from the suite.
    pub(super) attack: &'a str,
    /// The model, as in `summary.csv`.
    pub(super) model: &'a str,
    /// The corpus, as in `summary.csv`.
    pub(super) corpus: &'a str,
    /// The attack kind (`shuffle`, `negation`, ...), which decides the headline rate.
    pub(super) kind: &'a str,
    /// The `examples` and `attacked` counts as written in `summary.csv`, if present.
    pub(super) sentences: Option<&'a str>,
    /// See `sentences`.
    pub(super) attacked: Option<&'a str>,
    /// Rows left out, as (count, reason) from the `skipped[reason]` metrics.
    pub(super) skipped: Vec<(&'a str, &'a str)>,
    /// The attack's seed, so that a reader can rerun it.
    pub(super) seed: &'a str,
    /// The `;`-separated parameters, one item each.
    pub(super) parameters: Vec<&'a str>,
    /// The suite's gates on this attack, judged; empty without gates.
    pub(super) gates: &'a [GateOutcome],
    /// The overall rates, in [`BAR_METRICS`] order.
    pub(super) rates: Vec<Bar>,
    /// The rate the trend and group breakdown follow.
    pub(super) headline: &'static str,
    /// The headline rate over the suite's runs, oldest first.
    pub(super) trend: Vec<TrendPoint<'a>>,
    /// The headline rate per perturbation group (at most [`GROUP_BARS`]).
    pub(super) groups: Vec<Bar>,
    /// The flip rate per gold class.
    pub(super) classes: Vec<Bar>,
    /// Failure examples, when the suite asked for any.
    pub(super) failures: Option<Failures<'a>>,
    /// A trigger's words, explained; empty for other kinds.
    pub(super) trigger_words: &'a [super::TriggerWord],
    /// The lexicons the explanation consulted.
    pub(super) trigger_lexicons: &'a [String],
    /// Every summary row, for the table of all metrics.
    pub(super) metrics: Vec<MetricRow<'a>>,
}

/// One bar: a rate with its interval, and what the comparison said of it.
pub(super) struct Bar {
    /// What the bar measures, in words.
    pub(super) label: String,
    /// The value, its counts and its 95% interval.
    pub(super) rate: Rate,
    /// The comparison's verdict on this metric, if it was compared.
    pub(super) verdict: Option<Verdict>,
    /// Whether a higher value is the bad direction (colours the bar).
    pub(super) bad_high: bool,
}

/// One run's value of the headline rate.
pub(super) struct TrendPoint<'a> {
    /// When the run finished, as recorded in `history.csv`.
    pub(super) finished_at: &'a str,
    /// The run's headline rate.
    pub(super) rate: Rate,
}

/// The failure examples of one attack.
pub(super) struct Failures<'a> {
    /// How many the suite asked for (the heading says so even when fewer failed).
    pub(super) wanted: usize,
    /// At most `wanted` examples, clearest first.
    pub(super) rows: Vec<FailureRow<'a>>,
}

/// One failure example, with the words that differ between the texts flagged.
pub(super) struct FailureRow<'a> {
    /// The example as the attack recorded it: line, labels, confidences, reason.
    pub(super) example: &'a FailureExample,
    /// The original text, word by word.
    pub(super) original: Vec<Word<'a>>,
    /// The perturbed text, word by word.
    pub(super) perturbed: Vec<Word<'a>>,
}

/// A word of a failure example's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Word<'a> {
    /// The word, unescaped.
    pub(super) text: &'a str,
    /// Not part of the texts' longest common subsequence: inserted, removed, renamed or moved.
    pub(super) changed: bool,
}

/// One line of the all-metrics table.
pub(super) struct MetricRow<'a> {
    /// The row as read from `summary.csv`, shown cell for cell.
    pub(super) row: &'a SummaryRow,
    /// The comparison's verdict on it, if it was compared.
    pub(super) verdict: Option<Verdict>,
}

type JobKey<'a> = (&'a str, &'a str, &'a str);

fn job_key(r: &SummaryRow) -> JobKey<'_> {
    (&r.attack, &r.model, &r.corpus)
}

/// The comparison's verdicts, by job, group and metric. A later comparison of the same
/// metric wins, as it would in a table keyed by metric.
struct Verdicts<'a>(BTreeMap<(JobKey<'a>, &'a str, &'a str), Verdict>);

impl<'a> Verdicts<'a> {
    fn new(comparisons: &'a [Comparison]) -> Self {
        let mut map = BTreeMap::new();
        for c in comparisons {
            let k = &c.key;
            map.insert(
                (
                    (k.attack.as_str(), k.model.as_str(), k.corpus.as_str()),
                    k.group.as_str(),
                    k.metric.as_str(),
                ),
                c.verdict,
            );
        }
        Self(map)
    }

    fn of(&self, job: JobKey<'_>, group: &str, metric: &str) -> Option<Verdict> {
        self.0.get(&(job, group, metric)).copied()
    }
}

impl<'a> Page<'a> {
    /// Decide what the report shows.
    pub(super) fn new(report: &HtmlReport<'a>) -> Self {
        let verdicts = Verdicts::new(report.comparison.map_or(&[], |(_, c, _)| c));
        let mut order: Vec<JobKey<'a>> = Vec::new();
        for r in report.rows {
            let k = job_key(r);
            if !order.contains(&k) {
                order.push(k);
            }
        }
        let jobs: Vec<Job<'a>> = order
            .into_iter()
            .map(|key| {
                let rows: Vec<&'a SummaryRow> =
                    report.rows.iter().filter(|r| job_key(r) == key).collect();
                let extras = report
                    .jobs
                    .iter()
                    .find(|j| (j.attack.as_str(), j.model.as_str(), j.corpus.as_str()) == key);
                Job::new(key, &rows, report.trend, &verdicts, extras, report.kinds)
            })
            .collect();
        let comparisons = report.comparison.map_or(&[][..], |(_, c, _)| c);
        let overview = jobs
            .iter()
            .enumerate()
            .map(|(i, job)| OverviewRow::new(i, job, report.rows, comparisons, report.kinds))
            .collect();
        Page {
            suite: report.suite,
            run_id: report.run_id,
            facts: report.facts,
            banner: Banner::new(report.comparison),
            overview,
            jobs,
        }
    }
}

impl<'a> OverviewRow<'a> {
    fn new(
        index: usize,
        job: &Job<'a>,
        rows: &'a [SummaryRow],
        comparisons: &'a [Comparison],
        kinds: &dyn KindFacts,
    ) -> Self {
        let key = (job.attack, job.model, job.corpus);
        let headline_row = rows
            .iter()
            .find(|r| job_key(r) == key && r.group == "all" && r.metric == job.headline);
        let change = comparisons
            .iter()
            .find(|c| {
                let k = &c.key;
                (k.attack.as_str(), k.model.as_str(), k.corpus.as_str()) == key
                    && k.group == "all"
                    && k.metric == job.headline
            })
            .map(|c| (c.previous, c.verdict));
        OverviewRow {
            anchor: job_anchor(index),
            attack: job.attack,
            kind: job.kind,
            model: job.model,
            corpus: job.corpus,
            metric: job.headline,
            rate: headline_row.and_then(|r| r.rate()),
            bad_high: worse_direction(expectation_of(kinds, job.kind), job.headline)
                == Some(Worse::Higher),
            gates: (
                job.gates.iter().filter(|g| g.passed).count(),
                job.gates.len(),
            ),
            change,
        }
    }
}

/// The id of the `index`-th job's section (0-based), which the overview links to.
pub(super) fn job_anchor(index: usize) -> String {
    format!("job-{}", index + 1)
}

impl<'a> Banner<'a> {
    fn new(comparison: Option<(&'a str, &'a [Comparison], f64)>) -> Self {
        let Some((previous_run, c, alpha)) = comparison else {
            return Banner::FirstRun;
        };
        Banner::Compared {
            previous_run,
            alpha,
            tested: c.iter().filter(|x| x.verdict != Verdict::NotTested).count(),
            improved: c.iter().filter(|x| x.verdict == Verdict::Improved).count(),
            regressed: c
                .iter()
                .filter(|x| x.verdict == Verdict::Regressed)
                .collect(),
        }
    }
}

impl<'a> Job<'a> {
    /// `rows` are the job's summary rows, never empty: a job exists because it has rows.
    fn new(
        key: JobKey<'a>,
        rows: &[&'a SummaryRow],
        trend: &'a [HistoryRow],
        verdicts: &Verdicts<'_>,
        extras: Option<&'a JobExtras>,
        kinds: &dyn KindFacts,
    ) -> Self {
        let first = rows[0];
        let kind = first.kind.as_str();
        let expectation = expectation_of(kinds, kind);
        let value = |group: &str, metric: &str| {
            rows.iter()
                .find(|r| r.group == group && r.metric == metric)
                .map(|r| r.value.as_str())
        };
        let verdict_of = |group: &str, metric: &str| verdicts.of(key, group, metric);
        let bar = |label: String, row: &SummaryRow| {
            Some(Bar {
                label,
                rate: row.rate()?,
                verdict: verdict_of(&row.group, &row.metric),
                bad_high: worse_direction(expectation, &row.metric) == Some(Worse::Higher),
            })
        };
        let headline = kinds.headline(kind).name();
        let all = || rows.iter().copied().filter(|r| r.group == "all");

        let skipped = all()
            .filter(|r| r.metric.starts_with("skipped["))
            .map(|r| {
                let reason = r
                    .metric
                    .trim_start_matches("skipped[")
                    .trim_end_matches(']');
                (r.value.as_str(), reason)
            })
            .collect();
        let rates = BAR_METRICS
            .iter()
            .filter_map(|(metric, label)| {
                bar(label.to_string(), all().find(|r| r.metric == *metric)?)
            })
            .collect();
        let mut groups: Vec<Bar> = rows
            .iter()
            .filter(|r| r.group != "all" && r.metric == headline)
            .filter_map(|r| bar(r.group.clone(), r))
            .collect();
        groups.truncate(GROUP_BARS);
        let classes = all()
            .filter_map(|r| bar(format!("gold {}", Metric::class_of(&r.metric)?), r))
            .collect();

        Job {
            attack: key.0,
            model: key.1,
            corpus: key.2,
            kind,
            sentences: value("all", "examples"),
            attacked: value("all", "attacked"),
            skipped,
            seed: &first.seed,
            parameters: first.parameters.split(';').collect(),
            gates: extras.map_or(&[], |x| &x.gates),
            rates,
            headline,
            trend: trend_points(key, headline, trend),
            groups,
            classes,
            failures: extras.filter(|x| x.wanted > 0).map(Failures::new),
            trigger_words: extras.map_or(&[], |x| &x.trigger_words),
            trigger_lexicons: extras.map_or(&[], |x| &x.trigger_lexicons),
            metrics: rows
                .iter()
                .map(|r| MetricRow {
                    row: r,
                    verdict: verdict_of(&r.group, &r.metric),
                })
                .collect(),
        }
    }
}

/// The headline rate of `job` in each run of `trend`, oldest first, one point per run (the
/// first row of a run counts), the last [`TREND_RUNS`] runs.
fn trend_points<'a>(job: JobKey<'_>, metric: &str, trend: &'a [HistoryRow]) -> Vec<TrendPoint<'a>> {
    let mut seen: Vec<&str> = Vec::new();
    let mut points = Vec::new();
    for h in trend {
        if job_key(&h.row) == job
            && h.row.group == "all"
            && h.row.metric == metric
            && !seen.contains(&h.run_id.as_str())
            && let Some(rate) = h.row.rate()
        {
            seen.push(&h.run_id);
            points.push(TrendPoint {
                finished_at: &h.finished_at,
                rate,
            });
        }
    }
    let skip = points.len().saturating_sub(TREND_RUNS);
    points.split_off(skip)
}

impl<'a> Failures<'a> {
    fn new(x: &'a JobExtras) -> Self {
        Failures {
            wanted: x.wanted,
            rows: x
                .failures
                .iter()
                .take(x.wanted)
                .map(|f| {
                    let (original, perturbed) = changed_words(&f.original_text, &f.perturbed_text);
                    FailureRow {
                        example: f,
                        original,
                        perturbed,
                    }
                })
                .collect(),
        }
    }
}

/// Both texts split into words, each flagged when it is not in their longest common
/// subsequence, so that the one inserted "not" of a negation stands out from an otherwise
/// equal sentence, and a shuffle's moved words stand out from the ones left in place.
pub(super) fn changed_words<'a>(
    original: &'a str,
    perturbed: &'a str,
) -> (Vec<Word<'a>>, Vec<Word<'a>>) {
    let a: Vec<&str> = original.split_whitespace().collect();
    let b: Vec<&str> = perturbed.split_whitespace().collect();
    // Quadratic LCS: sentences are short, and the report shows a handful. The cap bounds
    // the table for a pathological record; words past it count as changed.
    let (n, m) = (a.len().min(400), b.len().min(400));
    let mut table = vec![vec![0u16; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i][j] = if a[i] == b[j] {
                table[i + 1][j + 1] + 1
            } else {
                table[i + 1][j].max(table[i][j + 1])
            };
        }
    }
    let (mut keep_a, mut keep_b) = (vec![false; a.len()], vec![false; b.len()]);
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if a[i] == b[j] {
            keep_a[i] = true;
            keep_b[j] = true;
            i += 1;
            j += 1;
        } else if table[i + 1][j] >= table[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    let words = |words: Vec<&'a str>, keep: Vec<bool>| {
        words
            .into_iter()
            .zip(keep)
            .map(|(text, kept)| Word {
                text,
                changed: !kept,
            })
            .collect()
    };
    (words(a, keep_a), words(b, keep_b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::history::MetricKey;

    fn row(attack: &str, kind: &str, group: &str, metric: &str, k: u64, n: u64) -> SummaryRow {
        let r = Rate::new(k, n);
        SummaryRow {
            attack: attack.into(),
            kind: kind.into(),
            group: group.into(),
            metric: metric.into(),
            denominator: String::new(),
            k: k.to_string(),
            n: n.to_string(),
            value: format!("{:.6}", r.value),
            ci_low: format!("{:.6}", r.ci_low),
            ci_high: format!("{:.6}", r.ci_high),
            p_value: String::new(),
            model: "m".into(),
            model_sha256: String::new(),
            corpus: "c".into(),
            corpus_sha256: String::new(),
            seed: "1".into(),
            robust_version: "0".into(),
            parameters: "samples=3;mode=full".into(),
        }
    }

    fn count(attack: &str, metric: &str, value: &str) -> SummaryRow {
        let mut r = row(attack, "shuffle", "all", metric, 0, 0);
        (r.k, r.n, r.value) = (String::new(), String::new(), value.into());
        r
    }

    fn report<'a>(
        rows: &'a [SummaryRow],
        trend: &'a [HistoryRow],
        comparison: Option<(&'a str, &'a [Comparison], f64)>,
        jobs: &'a [JobExtras],
    ) -> HtmlReport<'a> {
        HtmlReport {
            suite: "s",
            run_id: "r",
            facts: &[],
            rows,
            trend,
            comparison,
            jobs,
            kinds: &crate::testing::TestKinds,
        }
    }

    fn comparison(r: &SummaryRow, verdict: Verdict) -> Comparison {
        Comparison {
            key: r.key(),
            kind: r.kind.clone(),
            previous: None,
            current: r.rate(),
            worse: None,
            p_value: None,
            verdict,
        }
    }

    fn extras(attack: &str, wanted: usize, failures: usize) -> JobExtras {
        JobExtras {
            attack: attack.into(),
            model: "m".into(),
            corpus: "c".into(),
            gates: Vec::new(),
            failures: (0..failures)
                .map(|line| FailureExample {
                    line,
                    group: "g".into(),
                    gold: None,
                    original_text: "a b c".into(),
                    perturbed_text: "c b a".into(),
                    detail: String::new(),
                    original_label: "x".into(),
                    original_confidence: 0.9,
                    perturbed_label: "y".into(),
                    perturbed_confidence: 0.6,
                    why: String::new(),
                })
                .collect(),
            wanted,
            trigger_words: Vec::new(),
            trigger_lexicons: Vec::new(),
        }
    }

    #[test]
    fn jobs_follow_their_first_row_and_find_their_own_extras() {
        let rows = vec![
            row("b", "shuffle", "all", "flip_rate", 1, 10),
            row("a", "shuffle", "all", "flip_rate", 2, 10),
            row("b", "shuffle", "g", "flip_rate", 3, 10),
        ];
        let jobs = vec![extras("a", 2, 5), extras("zzz", 1, 1)];
        let page = Page::new(&report(&rows, &[], None, &jobs));
        let names: Vec<&str> = page.jobs.iter().map(|j| j.attack).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(page.jobs[0].metrics.len(), 2, "b's rows, both groups");
        assert!(page.jobs[0].failures.is_none(), "no extras for b");
        let examples = page.jobs[1].failures.as_ref().unwrap();
        assert_eq!((examples.wanted, examples.rows.len()), (2, 2));
    }

    #[test]
    fn the_overview_has_each_jobs_headline_gates_and_change() {
        let rows = vec![
            row("neg", "negation", "all", "flip_rate", 5, 10),
            row("neg", "negation", "all", "expected_direction_rate", 7, 10),
            row("shuf", "shuffle", "g", "flip_rate", 9, 10),
            row("shuf", "shuffle", "all", "flip_rate", 3, 10),
        ];
        let mut worse = comparison(&rows[3], Verdict::Regressed);
        worse.previous = Some(Rate::new(1, 10));
        let compared = [worse];
        let mut gated = extras("shuf", 0, 0);
        let outcome = |passed| GateOutcome {
            gate: crate::report::gate::Gate {
                metric: "flip_rate".into(),
                bound: crate::report::gate::Bound::Max,
                threshold: 0.5,
                mode: crate::report::gate::GateMode::Interval,
            },
            rate: Some(Rate::new(3, 10)),
            passed,
        };
        gated.gates = vec![outcome(true), outcome(false)];
        let jobs = [gated];
        let page = Page::new(&report(&rows, &[], Some(("r0", &compared, 0.05)), &jobs));
        let lines: Vec<(&str, &str, Option<u64>)> = page
            .overview
            .iter()
            .map(|o| (o.attack, o.metric, o.rate.map(|r| r.k)))
            .collect();
        assert_eq!(
            lines,
            [
                ("neg", "expected_direction_rate", Some(7)),
                ("shuf", "flip_rate", Some(3))
            ],
            "one row per job in page order, the kind's headline from the `all` group"
        );
        let (neg, shuf) = (&page.overview[0], &page.overview[1]);
        assert_eq!(
            (neg.anchor.as_str(), shuf.anchor.as_str()),
            ("job-1", "job-2")
        );
        assert_eq!((neg.gates, shuf.gates), ((0, 0), (1, 2)));
        assert!(neg.change.is_none(), "no comparison of neg's headline");
        let (previous, verdict) = shuf.change.unwrap();
        assert_eq!(
            (previous.map(|r| r.k), verdict),
            (Some(1), Verdict::Regressed)
        );
        assert!(shuf.bad_high);
    }

    #[test]
    fn bars_keep_the_fixed_order_and_only_rates() {
        let rows = vec![
            row("a", "shuffle", "all", "accuracy_before", 9, 10),
            count("a", "examples", "12"),
            row("a", "shuffle", "all", "flip_rate", 1, 10),
            count("a", "accuracy_after", "not a rate"),
            row("a", "shuffle", "all", "flip_rate[neg]", 1, 4),
            row("a", "shuffle", "other", "accuracy_after", 1, 4),
        ];
        let page = Page::new(&report(&rows, &[], None, &[]));
        let job = &page.jobs[0];
        let labels: Vec<&str> = job.rates.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["flip rate (of perturbations)", "accuracy before"]);
        assert!(job.rates[0].bad_high && !job.rates[1].bad_high);
        assert_eq!(job.rates[0].rate, Rate::new(1, 10));
        let classes: Vec<&str> = job.classes.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(classes, ["gold neg"]);
        assert_eq!(job.sentences, Some("12"));
        assert_eq!(job.attacked, None);
        assert_eq!(job.parameters, ["samples=3", "mode=full"]);
    }

    #[test]
    fn the_headline_follows_the_kind_and_groups_are_capped() {
        let mut rows = vec![row("n", "negation", "all", "flip_rate", 1, 10)];
        for g in 0..20 {
            rows.push(row(
                "n",
                "negation",
                &format!("g{g}"),
                "expected_direction_rate",
                g,
                20,
            ));
            rows.push(row("n", "negation", &format!("g{g}"), "flip_rate", g, 20));
        }
        let page = Page::new(&report(&rows, &[], None, &[]));
        let job = &page.jobs[0];
        assert_eq!(job.headline, "expected_direction_rate");
        assert_eq!(job.groups.len(), GROUP_BARS);
        assert_eq!(job.groups[3].label, "g3");
        assert_eq!(job.groups[3].rate, Rate::new(3, 20));
    }

    #[test]
    fn skipped_rows_keep_their_counts_and_reasons() {
        let rows = vec![
            count("a", "skipped[no-names]", "4"),
            count("a", "skipped[odd", "1"),
            count("a", "examples", "9"),
        ];
        let page = Page::new(&report(&rows, &[], None, &[]));
        assert_eq!(page.jobs[0].skipped, [("4", "no-names"), ("1", "odd")]);
    }

    #[test]
    fn the_trend_has_one_point_per_run_for_the_last_runs() {
        let rows = vec![row("a", "shuffle", "all", "flip_rate", 1, 10)];
        let mut trend = Vec::new();
        for i in 0..40u64 {
            let h = |group: &str, attack: &str| HistoryRow {
                run_id: format!("r{i}"),
                suite: "s".into(),
                finished_at: format!("t{i}"),
                row: row(attack, "shuffle", group, "flip_rate", i, 50),
            };
            trend.push(h("all", "a"));
            trend.push(h("all", "a"));
            trend.push(h("g", "a"));
            trend.push(h("all", "b"));
        }
        let page = Page::new(&report(&rows, &trend, None, &[]));
        let points = &page.jobs[0].trend;
        assert_eq!(points.len(), TREND_RUNS);
        assert_eq!(points[0].finished_at, "t10");
        assert_eq!(points[TREND_RUNS - 1].rate, Rate::new(39, 50));
    }

    #[test]
    fn verdicts_reach_the_banner_bars_and_table() {
        let rows = vec![
            row("a", "shuffle", "all", "flip_rate", 5, 10),
            row("a", "shuffle", "all", "accuracy_before", 9, 10),
            row("a", "shuffle", "all", "perturbed_accuracy", 9, 10),
        ];
        let mut other = row("a", "shuffle", "all", "flip_rate", 5, 10);
        other.model = "elsewhere".into();
        let comparisons = vec![
            comparison(&rows[0], Verdict::Regressed),
            comparison(&rows[1], Verdict::Improved),
            comparison(&rows[2], Verdict::NotTested),
            comparison(&other, Verdict::Improved),
        ];
        let page = Page::new(&report(&rows, &[], Some(("p", &comparisons, 0.05)), &[]));
        let Banner::Compared {
            previous_run,
            tested,
            improved,
            regressed,
            ..
        } = &page.banner
        else {
            panic!("compared");
        };
        assert_eq!((*previous_run, *tested, *improved), ("p", 3, 2));
        let regressed: Vec<&MetricKey> = regressed.iter().map(|c| &c.key).collect();
        assert_eq!(regressed, [&rows[0].key()]);
        let verdicts: Vec<Option<Verdict>> = page.jobs[0].rates.iter().map(|b| b.verdict).collect();
        assert_eq!(
            verdicts,
            [
                Some(Verdict::Regressed),
                Some(Verdict::Improved),
                Some(Verdict::NotTested)
            ]
        );
        assert_eq!(page.jobs[0].metrics[0].verdict, Some(Verdict::Regressed));
        assert!(matches!(
            Page::new(&report(&rows, &[], None, &[])).banner,
            Banner::FirstRun
        ));
    }

    #[test]
    fn changed_words_are_those_outside_the_common_subsequence() {
        fn changed<'a>(words: &[Word<'a>]) -> Vec<&'a str> {
            words.iter().filter(|w| w.changed).map(|w| w.text).collect()
        }
        let (a, b) = changed_words("the film is good", "the  film is not good");
        assert!(changed(&a).is_empty());
        assert_eq!(changed(&b), ["not"]);
        assert_eq!(b.len(), 5, "split on any whitespace");
        let (a, b) = changed_words("Alice met Bob", "Carol met Bob");
        assert_eq!((changed(&a), changed(&b)), (vec!["Alice"], vec!["Carol"]));
        let (a, b) = changed_words("", "x");
        assert!(a.is_empty() && changed(&b) == ["x"]);
    }
}
