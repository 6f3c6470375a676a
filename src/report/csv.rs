//! CSV: one row per metric, with its interval, so a spreadsheet or a nightly job can read it.

use super::{Exporter, ReportError, fixed};
use crate::eval::EvalReport;
use crate::score::stats::Rate;
use crate::score::{AttackReport, GroupScores, SearchScores};

/// Columns of `summary.csv`, in order.
pub const SUMMARY_HEADER: [&str; 18] = [
    "attack",
    "kind",
    "group",
    "metric",
    "denominator",
    "k",
    "n",
    "value",
    "ci_low",
    "ci_high",
    "p_value",
    "model",
    "model_sha256",
    "corpus",
    "corpus_sha256",
    "seed",
    "robust_version",
    "parameters",
];

/// One metric row before the provenance columns are added.
struct Metric {
    group: String,
    metric: String,
    denominator: &'static str,
    k: String,
    n: String,
    value: String,
    ci_low: String,
    ci_high: String,
    p_value: String,
}

impl Metric {
    fn rate(group: &str, metric: &str, denominator: &'static str, rate: &Rate) -> Self {
        Self {
            group: group.to_string(),
            metric: metric.to_string(),
            denominator,
            k: rate.k.to_string(),
            n: rate.n.to_string(),
            value: fixed(rate.value, 6),
            ci_low: fixed(rate.ci_low, 6),
            ci_high: fixed(rate.ci_high, 6),
            p_value: String::new(),
        }
    }

    fn value(group: &str, metric: &str, value: String) -> Self {
        Self {
            group: group.to_string(),
            metric: metric.to_string(),
            denominator: "",
            k: String::new(),
            n: String::new(),
            value,
            ci_low: String::new(),
            ci_high: String::new(),
            p_value: String::new(),
        }
    }
}

/// A per-example search's rows, in TextAttack's terms (only word and character attacks have
/// them, so no other attack's `summary.csv` changes).
fn search_metrics(s: &SearchScores, out: &mut Vec<Metric>) {
    for (name, count) in [
        ("attacks_succeeded", s.succeeded),
        ("attacks_failed", s.failed),
        ("attacks_out_of_budget", s.out_of_budget),
        ("attacks_skipped", s.skipped),
    ] {
        out.push(Metric::value("all", name, count.to_string()));
    }
    if let Some(r) = &s.accuracy_under_attack {
        out.push(Metric::rate("all", "accuracy_under_attack", "examples", r));
    }
    out.push(Metric::value(
        "all",
        "words_perturbed",
        fixed(s.words_perturbed, 6),
    ));
    out.push(Metric::value(
        "all",
        "queries_mean",
        fixed(s.queries_mean, 6),
    ));
    out.push(Metric::value(
        "all",
        "queries_median",
        fixed(s.queries_median, 6),
    ));
    if let Some(m) = s.similarity_mean {
        out.push(Metric::value("all", "similarity_mean", fixed(m, 6)));
    }
}

fn group_metrics(g: &GroupScores, out: &mut Vec<Metric>) {
    let name = g.group.as_str();
    out.push(Metric::value(
        name,
        "examples_attacked",
        g.examples.to_string(),
    ));
    out.push(Metric::value(
        name,
        "perturbations",
        g.perturbations.to_string(),
    ));
    out.push(Metric::rate(
        name,
        "flip_rate",
        "perturbations",
        &g.flip_rate,
    ));
    out.push(Metric::rate(
        name,
        "example_flip_rate",
        "attacked examples",
        &g.example_flip_rate,
    ));
    if let Some(r) = &g.attack_success_rate {
        out.push(Metric::rate(
            name,
            "attack_success_rate",
            "originally-correct attacked examples",
            r,
        ));
    }
    if let Some(r) = &g.accuracy_before {
        out.push(Metric::rate(
            name,
            "accuracy_before",
            "attacked examples",
            r,
        ));
    }
    if let Some(r) = &g.accuracy_after {
        let mut m = Metric::rate(
            name,
            "accuracy_after",
            "attacked examples (correct on every variant)",
            r,
        );
        m.p_value = g.mcnemar_p.map(|p| fixed(p, 6)).unwrap_or_default();
        out.push(m);
    }
    if let Some(r) = &g.perturbed_accuracy {
        out.push(Metric::rate(name, "perturbed_accuracy", "perturbations", r));
    }
    if let Some(r) = &g.expected_direction_rate {
        out.push(Metric::rate(
            name,
            "expected_direction_rate",
            "perturbations",
            r,
        ));
    }
    if let Some(r) = &g.ignored_rate {
        out.push(Metric::rate(name, "ignored_rate", "perturbations", r));
    }
    out.push(Metric::value(
        name,
        "mean_confidence_drop",
        fixed(g.mean_confidence_drop, 6),
    ));
    for (class, r) in &g.per_class_flip_rate {
        out.push(Metric::rate(
            name,
            &crate::score::metric::Metric::class_flip_rate(class),
            "perturbations of that class",
            r,
        ));
    }
}

/// Renders reports as CSV: for an attack, `summary.csv` (one row per group x metric, with the
/// columns of [`SUMMARY_HEADER`]); for an evaluation, one row per metric and class plus the
/// confusion-matrix counts.
pub struct CsvExporter;

impl Exporter for CsvExporter {
    fn eval(&self, r: &EvalReport) -> Result<String, ReportError> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let ser = |e: csv::Error| ReportError::Serialise(Box::new(e));
        w.write_record([
            "model",
            "model_sha256",
            "corpus",
            "corpus_sha256",
            "metric",
            "class",
            "k",
            "n",
            "value",
            "ci_low",
            "ci_high",
        ])
        .map_err(ser)?;
        let mut rate = |metric: &str, class: &str, rate: &crate::score::stats::Rate| {
            w.write_record([
                r.model.as_str(),
                &r.model_sha256,
                &r.corpus,
                &r.corpus_sha256,
                metric,
                class,
                &rate.k.to_string(),
                &rate.n.to_string(),
                &fixed(rate.value, 6),
                &fixed(rate.ci_low, 6),
                &fixed(rate.ci_high, 6),
            ])
        };
        rate("accuracy", "", &r.accuracy).map_err(ser)?;
        for c in &r.per_class {
            rate("recall", &c.label, &c.recall).map_err(ser)?;
            rate("precision", &c.label, &c.precision).map_err(ser)?;
        }
        for (g, row) in r.confusion.iter().enumerate() {
            for (p, &count) in row.iter().enumerate() {
                let class = format!("{}->{}", r.labels[g], r.labels[p]);
                w.write_record([
                    r.model.as_str(),
                    &r.model_sha256,
                    &r.corpus,
                    &r.corpus_sha256,
                    "confusion",
                    &class,
                    &count.to_string(),
                    &r.n.to_string(),
                    "",
                    "",
                    "",
                ])
                .map_err(ser)?;
            }
        }
        let bytes = w
            .into_inner()
            .map_err(|e| ReportError::Serialise(Box::new(e.into_error())))?;
        String::from_utf8(bytes).map_err(|e| ReportError::Serialise(Box::new(e)))
    }

    fn attack(&self, r: &AttackReport) -> Result<String, ReportError> {
        let s = &r.scores;
        let mut metrics = vec![
            Metric::value("all", "examples", s.examples.to_string()),
            Metric::value("all", "attacked", s.attacked.to_string()),
        ];
        for (reason, count) in &s.skipped {
            metrics.push(Metric::value(
                "all",
                &format!("skipped[{reason}]"),
                count.to_string(),
            ));
        }
        metrics.push(Metric::value("all", "queries", s.queries.to_string()));
        metrics.push(Metric::value(
            "all",
            "queries_per_example",
            fixed(s.queries_per_example, 6),
        ));
        if let Some(search) = &s.search {
            search_metrics(search, &mut metrics);
        }
        group_metrics(&s.overall, &mut metrics);
        for g in &s.groups {
            group_metrics(g, &mut metrics);
        }
        let ser = |e: csv::Error| ReportError::Serialise(Box::new(e));
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(SUMMARY_HEADER).map_err(ser)?;
        let seed = r.provenance.seed.to_string();
        let parameters = r.parameters_cell();
        for m in &metrics {
            w.write_record([
                r.provenance.attack.as_str(),
                &r.provenance.kind,
                &m.group,
                &m.metric,
                m.denominator,
                &m.k,
                &m.n,
                &m.value,
                &m.ci_low,
                &m.ci_high,
                &m.p_value,
                &r.provenance.model,
                &r.provenance.model_sha256,
                &r.provenance.corpus,
                &r.provenance.corpus_sha256,
                &seed,
                &r.provenance.robust_version,
                &parameters,
            ])
            .map_err(ser)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| ReportError::Serialise(Box::new(e.into_error())))?;
        String::from_utf8(bytes).map_err(|e| ReportError::Serialise(Box::new(e)))
    }
}
