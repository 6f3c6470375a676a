//! `examples.csv`: one row per perturbed example (and one per skipped example, with its
//! reason), so every number in `summary.csv` can be traced to the sentences behind it.

use super::{ReportError, fixed};
use crate::score::AttackReport;

pub fn examples_csv(r: &AttackReport) -> Result<String, ReportError> {
    let ser = |e: csv::Error| ReportError::Serialise(Box::new(e));
    let mut w = csv::Writer::from_writer(Vec::new());
    // Sentence pairs get two more columns after the texts: which segment the attack perturbed
    // and the other segment, so that every row can be fed back to the model as it ran.
    let pairs = r.outcomes.iter().any(|o| o.context.is_some());
    let mut header = vec![
        "attack",
        "line",
        "sample",
        "group",
        "gold",
        "original_text",
        "perturbed_text",
    ];
    if pairs {
        header.extend(["segment", "other_segment"]);
    }
    header.extend([
        "detail",
        "original_label",
        "original_confidence",
        "perturbed_label",
        "perturbed_confidence",
        "changed",
        "queries",
        "skip_reason",
    ]);
    w.write_record(&header).map_err(ser)?;
    let label = |i: usize| r.labels.get(i).cloned().unwrap_or_else(|| i.to_string());
    for o in &r.outcomes {
        let gold = o.gold.map(label).unwrap_or_default();
        let orig_label = label(o.original.label);
        let orig_conf = fixed(f64::from(o.original.confidence()), 6);
        let pair_fields: Vec<String> = match (&o.context, pairs) {
            (_, false) => Vec::new(),
            (Some(c), true) => vec![c.segment.as_str().to_string(), c.other.clone()],
            (None, true) => vec![String::new(), String::new()],
        };
        // (sample, group, perturbed text, detail, perturbed label, confidence, changed, skip)
        let rows: Vec<[String; 8]> = match &o.result {
            Err(reason) => vec![[
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                reason.as_str().to_string(),
            ]],
            Ok(variants) => variants
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let p = &v.prediction;
                    let changed = if p.label != o.original.label {
                        "1"
                    } else {
                        "0"
                    };
                    [
                        i.to_string(),
                        v.perturbation.group.clone(),
                        v.perturbation.text.clone(),
                        v.perturbation.detail.clone(),
                        label(p.label),
                        fixed(f64::from(p.confidence()), 6),
                        changed.to_string(),
                        String::new(),
                    ]
                })
                .collect(),
        };
        for [
            sample,
            group,
            perturbed,
            detail,
            p_label,
            p_conf,
            changed,
            skip,
        ] in rows
        {
            let mut record = vec![
                r.attack.clone(),
                o.line.to_string(),
                sample,
                group,
                gold.clone(),
                o.text.clone(),
                perturbed,
            ];
            record.extend(pair_fields.iter().cloned());
            record.extend([
                detail,
                orig_label.clone(),
                orig_conf.clone(),
                p_label,
                p_conf,
                changed,
                o.queries.to_string(),
                skip,
            ]);
            w.write_record(&record).map_err(ser)?;
        }
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ReportError::Serialise(Box::new(e.into_error())))?;
    String::from_utf8(bytes).map_err(|e| ReportError::Serialise(Box::new(e)))
}
