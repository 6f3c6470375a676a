//! Output of `robust eval` on a coreference model: GAP's measures as a table, CSV or JSON.

use super::{ReportError, fixed};
use crate::score::gap::{CorefEval, GapScores};

/// A plain-text table: one line per group (overall, then by gender) with accuracy, precision
/// and recall as percentages with 95% intervals and F1 in percent, then the bias ratio and the
/// number of truncated inputs when there are any.
pub fn table(r: &CorefEval) -> String {
    let mut out = format!(
        "model {} ({}) on {} ({} rows with gold labels)\n\n{:<10} {:>6}  {:<28} {:<28} {:<28} {:>6}\n",
        r.model,
        &r.model_sha256[..12.min(r.model_sha256.len())],
        r.corpus,
        r.overall.rows,
        "group",
        "rows",
        "accuracy (A/B/neither)",
        "precision",
        "recall",
        "F1"
    );
    for s in std::iter::once(&r.overall).chain(&r.by_gender) {
        out.push_str(&format!(
            "{:<10} {:>6}  {:<28} {:<28} {:<28} {:>6}\n",
            s.group,
            s.rows,
            s.accuracy.display_percent(),
            s.precision.display_percent(),
            s.recall.display_percent(),
            fixed(100.0 * s.f1, 1)
        ));
    }
    if let Some(b) = r.bias {
        out.push_str(&format!(
            "\nbias (F1 feminine / F1 masculine): {}\n",
            fixed(b, 3)
        ));
    }
    if r.truncated_inputs > 0 {
        out.push_str(&format!(
            "{} inputs were truncated to the model's limit\n",
            r.truncated_inputs
        ));
    }
    out
}

/// CSV: one row per group x metric (`accuracy`, `precision`, `recall` with k, n and the 95%
/// interval; `f1` with its value only), each carrying the model and corpus and their digests.
pub fn csv(r: &CorefEval) -> Result<String, ReportError> {
    let ser = |e: csv::Error| ReportError::Serialise(Box::new(e));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "group",
        "metric",
        "k",
        "n",
        "value",
        "ci_low",
        "ci_high",
        "model",
        "model_sha256",
        "corpus",
        "corpus_sha256",
    ])
    .map_err(ser)?;
    let mut row =
        |s: &GapScores, metric: &str, k: String, n: String, v: f64, lo: String, hi: String| {
            w.write_record([
                s.group.as_str(),
                metric,
                &k,
                &n,
                &fixed(v, 6),
                &lo,
                &hi,
                &r.model,
                &r.model_sha256,
                &r.corpus,
                &r.corpus_sha256,
            ])
        };
    for s in std::iter::once(&r.overall).chain(&r.by_gender) {
        for (metric, rate) in [
            ("accuracy", &s.accuracy),
            ("precision", &s.precision),
            ("recall", &s.recall),
        ] {
            row(
                s,
                metric,
                rate.k.to_string(),
                rate.n.to_string(),
                rate.value,
                fixed(rate.ci_low, 6),
                fixed(rate.ci_high, 6),
            )
            .map_err(ser)?;
        }
        row(
            s,
            "f1",
            String::new(),
            String::new(),
            s.f1,
            String::new(),
            String::new(),
        )
        .map_err(ser)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ReportError::Serialise(Box::new(e.into_error())))?;
    String::from_utf8(bytes).map_err(|e| ReportError::Serialise(Box::new(e)))
}

/// The whole evaluation as one pretty-printed JSON object, ending in a newline.
pub fn json(r: &CorefEval) -> Result<String, ReportError> {
    serde_json::to_string_pretty(r)
        .map(|s| s + "\n")
        .map_err(|e| ReportError::Serialise(Box::new(e)))
}
