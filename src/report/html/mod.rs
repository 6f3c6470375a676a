//! `report.html`: the run's summary as charts, for people who will not read `summary.csv`.
//!
//! One self-contained file (inline CSS and SVG, no scripts, no fonts, no network), so it can be
//! attached to a CI job, mailed, or opened from disk years later and still render. Per attack:
//! bars for every rate with its 95% interval as a whisker, a breakdown by perturbation group,
//! and the headline rate's trend over the suite's past runs. Metrics that `--compare` found
//! significantly worse or better are marked in red or green.
//!
//! Three parts, so that what the report says, how it looks and how it is styled can each
//! change without the others: `view` decides what is shown (which attacks, rates, runs and
//! words) from the run's data, `template` turns that into markup, and `style.css` is the
//! stylesheet the template inlines. This module is the entry point the rest of the crate uses.

mod template;
mod view;

use crate::attack::engine::FailureExample;
use crate::report::gate::GateOutcome;
use crate::report::history::{Comparison, HistoryRow, KindFacts, SummaryRow};

/// Everything one `report.html` is rendered from: borrowed, because the caller has just
/// written the same rows to `summary.csv` and `history.csv`.
pub struct HtmlReport<'a> {
    /// The suite's name, in the title and heading.
    pub suite: &'a str,
    /// This run's id.
    pub run_id: &'a str,
    /// Label and value lines for the header (models, corpora, machine, times).
    pub facts: &'a [(String, String)],
    /// This run's summary rows.
    pub rows: &'a [SummaryRow],
    /// Summary rows of this suite's runs, this one included, oldest first.
    pub trend: &'a [HistoryRow],
    /// The previous run's id, the comparison with it, and alpha.
    pub comparison: Option<(&'a str, &'a [Comparison], f64)>,
    /// Per attack: its gates and failure examples.
    pub jobs: &'a [JobExtras],
    /// What each attack kind in `rows` expects of the model, which decides the bad direction
    /// of its rates.
    pub kinds: &'a dyn KindFacts,
}

/// What the report shows of one attack beyond its summary rows.
pub struct JobExtras {
    /// The attack's name, as in its summary rows' `attack` column.
    pub attack: String,
    /// The model, as in the summary rows' `model` column.
    pub model: String,
    /// The corpus, as in the summary rows' `corpus` column.
    pub corpus: String,
    /// The suite's gates on this attack, judged.
    pub gates: Vec<GateOutcome>,
    /// The attack's clearest failures, clearest first.
    pub failures: Vec<FailureExample>,
    /// Examples the suite asked for (fewer are shown when fewer failed).
    pub wanted: usize,
    /// A trigger attack's words, explained (from its `trigger.json`); empty for other kinds.
    pub trigger_words: Vec<TriggerWord>,
    /// The opinion lexicons the explanation consulted, by name.
    pub trigger_lexicons: Vec<String>,
}

/// One word of a trigger, as `trigger.json` explains it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct TriggerWord {
    /// The word, as the vocabulary has it.
    pub word: String,
    /// The lexicons that list it in some form.
    pub lexicons: Vec<String>,
    /// Its semantic orientation, when the polarity filter ran.
    pub polarity: Option<f64>,
    /// The model's answer on the word alone.
    pub prediction: Option<WordAnswer>,
}

/// The model's answer on a word alone.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct WordAnswer {
    /// The label.
    pub label: String,
    /// Its probability.
    pub probability: f64,
}

/// Escape text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The complete page for `report`.
pub fn render(report: &HtmlReport) -> String {
    template::page(&view::Page::new(report))
}

/// Both texts, escaped, with the words that are not in their longest common subsequence
/// wrapped in `<mark>`: inserted, removed, renamed or moved words stand out.
pub fn mark_changes(original: &str, perturbed: &str) -> (String, String) {
    let (a, b) = view::changed_words(original, perturbed);
    (template::marked(&a), template::marked(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::stats::Rate;

    fn row(attack: &str, group: &str, metric: &str, k: u64, n: u64) -> SummaryRow {
        let r = Rate::new(k, n);
        SummaryRow {
            attack: attack.into(),
            kind: "shuffle".into(),
            group: group.into(),
            metric: metric.into(),
            denominator: String::new(),
            k: k.to_string(),
            n: n.to_string(),
            value: format!("{:.6}", r.value),
            ci_low: format!("{:.6}", r.ci_low),
            ci_high: format!("{:.6}", r.ci_high),
            p_value: String::new(),
            model: "m<1>".into(),
            model_sha256: String::new(),
            corpus: "c&d.tsv".into(),
            corpus_sha256: String::new(),
            seed: "1".into(),
            robust_version: "0".into(),
            parameters: "samples=3".into(),
        }
    }

    #[test]
    fn renders_a_self_contained_page_with_escaped_text() {
        let rows = vec![
            row("shuffle<script>", "all", "flip_rate", 10, 100),
            row("shuffle<script>", "all", "accuracy_before", 0, 0),
            row("shuffle<script>", "x", "flip_rate", 3, 30),
        ];
        let trend: Vec<HistoryRow> = (0..3)
            .map(|i| HistoryRow {
                run_id: format!("r{i}"),
                suite: "s".into(),
                finished_at: format!("2025-01-0{}T00:00:00Z", i + 1),
                row: row("shuffle<script>", "all", "flip_rate", 10 + i, 100),
            })
            .collect();
        let facts = vec![("run".to_string(), "r2".to_string())];
        let page = render(&HtmlReport {
            suite: "s",
            run_id: "r2",
            facts: &facts,
            rows: &rows,
            trend: &trend,
            comparison: None,
            jobs: &[],
            kinds: &crate::testing::TestKinds,
        });
        assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
        assert!(!page.contains("<script"), "text is escaped");
        assert!(page.contains("shuffle&lt;script&gt;") && page.contains("c&amp;d.tsv"));
        for external in ["http://", "https://", "src=", "@import", "url("] {
            let hits = page.matches(external).count();
            let allowed = if external == "http://" {
                page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
            } else {
                0
            };
            assert_eq!(hits, allowed, "no external resource: {external}");
        }
        assert!(
            page.contains("10.0% [5.5, 17.4] 10/100"),
            "bar label with interval"
        );
        assert!(page.contains("over the last 3 runs"));
        assert!(page.contains("n/a (0/0)"));
    }

    /// Issue 29: the report says, per trigger word, which lexicons list it, its polarity and
    /// the model's answer on the word alone.
    #[test]
    fn trigger_words_are_explained_and_escaped() {
        let words = vec![
            TriggerWord {
                word: "drains".into(),
                lexicons: vec!["huliu".into(), "mpqa".into()],
                polarity: Some(-0.0651),
                prediction: Some(WordAnswer {
                    label: "negative".into(),
                    probability: 0.93,
                }),
            },
            TriggerWord {
                word: "<b>".into(),
                lexicons: Vec::new(),
                polarity: None,
                prediction: None,
            },
        ];
        let lexicons = vec!["vader".to_string(), "huliu".into(), "mpqa".into()];
        let html = template::trigger_words_table(&words, &lexicons);
        assert!(
            html.contains("in 3 opinion lexicons: vader, huliu, mpqa"),
            "{html}"
        );
        assert!(
            html.contains("<td>huliu, mpqa</td><td>-0.065</td><td>negative (93.0%)</td>"),
            "{html}"
        );
        assert!(
            html.contains("<b>&lt;b&gt;</b></td><td>none</td><td>not scored</td>"),
            "{html}"
        );
    }

    #[test]
    fn failure_examples_are_escaped_and_marked() {
        let (a, b) = mark_changes("the <b>film</b> is good", "the <b>film</b> is not good");
        assert_eq!(a, "the &lt;b&gt;film&lt;/b&gt; is good");
        assert_eq!(b, "the &lt;b&gt;film&lt;/b&gt; is <mark>not</mark> good");
        let rows = vec![row("neg", "all", "flip_rate", 1, 2)];
        let x = JobExtras {
            attack: "neg".into(),
            model: "m<1>".into(),
            corpus: "c&d.tsv".into(),
            gates: Vec::new(),
            failures: vec![FailureExample {
                line: 7,
                group: "insert".into(),
                gold: Some("positive".into()),
                original_text: "Tom & <i>Jerry</i> rock".into(),
                perturbed_text: "Tom & <i>Jerry</i> do not rock".into(),
                detail: "insert not".into(),
                original_label: "positive".into(),
                original_confidence: 0.9,
                perturbed_label: "positive".into(),
                perturbed_confidence: 0.8,
                why: "still the gold label after the perturbation".into(),
            }],
            wanted: 5,
            trigger_words: Vec::new(),
            trigger_lexicons: Vec::new(),
        };
        let html = render(&HtmlReport {
            suite: "s",
            run_id: "r",
            facts: &[],
            rows: &rows,
            trend: &[],
            comparison: None,
            jobs: std::slice::from_ref(&x),
            kinds: &crate::testing::TestKinds,
        });
        assert!(html.contains("Failure examples (the 5 clearest)"), "{html}");
        assert!(!html.contains("<i>"), "{html}");
        assert!(html.contains("<mark>do</mark> <mark>not</mark>"), "{html}");
        assert!(
            html.contains("Tom &amp; &lt;i&gt;Jerry&lt;/i&gt;"),
            "{html}"
        );
    }
}
