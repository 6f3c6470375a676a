//! `examples.csv`: one row per perturbed example (and one per skipped example, with its
//! reason), so every number in `summary.csv` can be traced to the sentences behind it.

use super::{ReportError, fixed};
use crate::score::AttackReport;

pub fn examples_csv(r: &AttackReport) -> Result<String, ReportError> {
    let ser = |e: csv::Error| ReportError::Serialise(Box::new(e));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "attack",
        "line",
        "sample",
        "group",
        "gold",
        "original_text",
        "perturbed_text",
        "detail",
        "original_label",
        "original_confidence",
        "perturbed_label",
        "perturbed_confidence",
        "changed",
        "queries",
        "skip_reason",
    ])
    .map_err(ser)?;
    let label = |i: usize| r.labels.get(i).cloned().unwrap_or_else(|| i.to_string());
    for o in &r.outcomes {
        let gold = o.gold.map(label).unwrap_or_default();
        let orig_label = label(o.original.label);
        let orig_conf = fixed(f64::from(o.original.confidence()), 6);
        match &o.result {
            Err(reason) => w
                .write_record([
                    r.attack.as_str(),
                    &o.line.to_string(),
                    "",
                    "",
                    &gold,
                    &o.text,
                    "",
                    "",
                    &orig_label,
                    &orig_conf,
                    "",
                    "",
                    "",
                    &o.queries.to_string(),
                    reason.as_str(),
                ])
                .map_err(ser)?,
            Ok(variants) => {
                for (i, v) in variants.iter().enumerate() {
                    let p = &v.prediction;
                    w.write_record([
                        r.attack.as_str(),
                        &o.line.to_string(),
                        &i.to_string(),
                        &v.perturbation.group,
                        &gold,
                        &o.text,
                        &v.perturbation.text,
                        &v.perturbation.detail,
                        &orig_label,
                        &orig_conf,
                        &label(p.label),
                        &fixed(f64::from(p.confidence()), 6),
                        if p.label != o.original.label {
                            "1"
                        } else {
                            "0"
                        },
                        &o.queries.to_string(),
                        "",
                    ])
                    .map_err(ser)?;
                }
            }
        }
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ReportError::Serialise(Box::new(e.into_error())))?;
    String::from_utf8(bytes).map_err(|e| ReportError::Serialise(Box::new(e)))
}
