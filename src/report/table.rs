//! Human-readable tables for the terminal.

use std::fmt::Write;

use super::{Exporter, ReportError};
use crate::eval::EvalReport;
use crate::score::{AttackReport, Expectation, GroupScores};

/// Renders reports as aligned plain-text tables for a terminal, rates as percentages with
/// their 95% intervals.
pub struct TableExporter;

impl Exporter for TableExporter {
    fn eval(&self, r: &EvalReport) -> Result<String, ReportError> {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "model     {} (sha256 {})",
            r.model,
            &r.model_sha256[..12.min(r.model_sha256.len())]
        );
        let _ = writeln!(
            s,
            "corpus    {} (sha256 {})",
            r.corpus,
            &r.corpus_sha256[..12.min(r.corpus_sha256.len())]
        );
        let _ = writeln!(
            s,
            "n         {} ({} blank lines skipped)",
            r.n, r.blank_lines_skipped
        );
        let _ = writeln!(
            s,
            "accuracy  {}  (95% Wilson interval)",
            r.accuracy.display_percent()
        );
        let _ = writeln!(s);
        let width = r.labels.iter().map(|l| l.len()).max().unwrap_or(5).max(10);
        let _ = writeln!(
            s,
            "{:<width$}  {:>7}  {:<30}  {:<30}  {:>5}",
            "class", "support", "recall", "precision", "f1"
        );
        for c in &r.per_class {
            let _ = writeln!(
                s,
                "{:<width$}  {:>7}  {:<30}  {:<30}  {:>5.3}",
                c.label,
                c.support,
                c.recall.display_percent(),
                c.precision.display_percent(),
                c.f1
            );
        }
        let _ = writeln!(s);
        let _ = write!(s, "{:<width$}", "gold \\ predicted");
        for l in &r.labels {
            let _ = write!(s, "  {l:>10}");
        }
        let _ = writeln!(s);
        for (g, row) in r.confusion.iter().enumerate() {
            let _ = write!(s, "{:<width$}", r.labels[g]);
            for v in row {
                let _ = write!(s, "  {v:>10}");
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "time      {:.2} s, {:.1} sentences/s (batch {}, {} threads)",
            r.wall_seconds, r.sentences_per_second, r.batch_size, r.threads
        );
        let q = &r.queries;
        let _ = writeln!(
            s,
            "queries   {} model rows in {} batches, {} cache hits, {} truncated, padding overhead {:.1}%",
            q.model_queries,
            q.batches,
            q.cache_hits,
            q.truncated,
            if q.padded_tokens == 0 {
                0.0
            } else {
                100.0 * (q.padded_tokens - q.real_tokens) as f64 / q.padded_tokens as f64
            }
        );
        Ok(s)
    }

    fn attack(&self, report: &AttackReport) -> Result<String, ReportError> {
        Ok(Self::attack_table(report))
    }
}

fn rate_line(
    s: &mut String,
    name: &str,
    rate: Option<&crate::score::stats::Rate>,
    denominator: &str,
) {
    if let Some(r) = rate {
        let _ = writeln!(
            s,
            "  {name:<24} {:<34} of {denominator}",
            r.display_percent()
        );
    }
}

fn group_lines(s: &mut String, g: &GroupScores, expectation: Expectation) {
    let _ = writeln!(
        s,
        "[{}] {} examples, {} perturbations",
        g.group, g.examples, g.perturbations
    );
    rate_line(s, "flip rate", Some(&g.flip_rate), "perturbations");
    rate_line(
        s,
        "example flip rate",
        Some(&g.example_flip_rate),
        "attacked examples",
    );
    rate_line(
        s,
        "attack success rate",
        g.attack_success_rate.as_ref(),
        "originally-correct examples",
    );
    rate_line(
        s,
        "accuracy before",
        g.accuracy_before.as_ref(),
        "attacked examples",
    );
    rate_line(
        s,
        "accuracy after",
        g.accuracy_after.as_ref(),
        "attacked examples, every variant right",
    );
    if let Some(p) = g.mcnemar_p {
        let _ = writeln!(s, "  {:<24} p = {p:.4}", "McNemar (before/after)");
    }
    if expectation == Expectation::FlipFromGold {
        rate_line(
            s,
            "expected direction",
            g.expected_direction_rate.as_ref(),
            "perturbations (away from gold)",
        );
        rate_line(
            s,
            "negation ignored",
            g.ignored_rate.as_ref(),
            "perturbations (label unchanged)",
        );
    }
    let _ = writeln!(
        s,
        "  {:<24} {:.4}",
        "mean confidence drop", g.mean_confidence_drop
    );
    for (class, r) in &g.per_class_flip_rate {
        rate_line(
            s,
            &format!("flip rate [{class}]"),
            Some(r),
            "perturbations of that class",
        );
    }
}

impl TableExporter {
    fn attack_table(r: &AttackReport) -> String {
        let mut s = String::new();
        let sc = &r.scores;
        let _ = writeln!(
            s,
            "attack    {} ({}), seed {}",
            r.provenance.attack, r.provenance.kind, r.provenance.seed
        );
        let _ = writeln!(s, "params    {}", r.parameters_cell());
        let _ = writeln!(
            s,
            "model     {} (sha256 {})",
            r.provenance.model,
            short(&r.provenance.model_sha256)
        );
        let _ = writeln!(
            s,
            "corpus    {} (sha256 {})",
            r.provenance.corpus,
            short(&r.provenance.corpus_sha256)
        );
        let skipped: Vec<String> = sc.skipped.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let _ = writeln!(
            s,
            "examples  {} read, {} attacked, skipped: {}",
            sc.examples,
            sc.attacked,
            if skipped.is_empty() {
                "none".to_string()
            } else {
                skipped.join(", ")
            }
        );
        let _ = writeln!(
            s,
            "queries   {} ({:.2} per attacked example); model ran {} rows, cache answered {}",
            sc.queries,
            sc.queries_per_example,
            r.model_stats.model_queries,
            r.model_stats.cache_hits
        );
        let _ = writeln!(s, "time      {:.2} s", r.wall_seconds);
        if let Some(search) = &sc.search {
            let _ = writeln!(
                s,
                "search    {} succeeded, {} failed, {} out of budget, {} skipped; {:.1}% of words \
                 changed (mean over successes); {:.1} queries per searched example (median {})",
                search.succeeded,
                search.failed,
                search.out_of_budget,
                search.skipped,
                100.0 * search.words_perturbed,
                search.queries_mean,
                search.queries_median,
            );
            let _ = writeln!(s);
            rate_line(
                &mut s,
                "accuracy under attack",
                search.accuracy_under_attack.as_ref(),
                "every example read",
            );
            let _ = writeln!(s);
        } else {
            let _ = writeln!(s);
        }
        group_lines(&mut s, &sc.overall, sc.expectation);
        for g in &sc.groups {
            let _ = writeln!(s);
            group_lines(&mut s, g, sc.expectation);
        }
        s
    }
}

fn short(sha: &str) -> &str {
    &sha[..12.min(sha.len())]
}
