//! Output of cloze probes: a table for people, `summary.csv` (the same columns as every
//! attack's, so nightly history can hold both) and `examples.csv` with each item's scores and
//! top-k words.

use std::collections::BTreeMap;

use super::{ReportError, SUMMARY_HEADER, fixed};
use crate::attack::cloze::{ClozeScores, ItemResult};
use crate::score::stats::Rate;

/// Provenance every summary row carries.
pub struct ClozeProvenance {
    /// The attack's name (the `attack` column).
    pub attack: String,
    /// The model as reports name it.
    pub model: String,
    /// sha256 of the model, lower-case hex.
    pub model_sha256: String,
    /// The probe file as reports name it.
    pub corpus: String,
    /// sha256 of the probe file, lower-case hex.
    pub corpus_sha256: String,
    /// The run's seed (cloze probes draw nothing at random; recorded for a uniform summary).
    pub seed: u64,
    /// The attack's parameters, written `key=value` joined by `;` in the `parameters` column.
    pub parameters: BTreeMap<String, String>,
}

fn ser(e: csv::Error) -> ReportError {
    ReportError::Serialise(Box::new(e))
}

fn finish(w: csv::Writer<Vec<u8>>) -> Result<String, ReportError> {
    let bytes = w
        .into_inner()
        .map_err(|e| ReportError::Serialise(Box::new(e.into_error())))?;
    String::from_utf8(bytes).map_err(|e| ReportError::Serialise(Box::new(e)))
}

fn rate_text(r: &Option<Rate>) -> String {
    r.as_ref()
        .map_or_else(|| "n/a".to_string(), Rate::display_percent)
}

/// A plain-text report: each group's measures, then each item's top-3 words with and without
/// negation.
pub fn table(p: &ClozeProvenance, scores: &[ClozeScores], results: &[ItemResult]) -> String {
    let mut out = format!("{} on {}: {} items\n\n", p.model, p.corpus, results.len());
    for s in scores {
        out.push_str(&format!("[{}] {} items\n", s.group, s.items));
        out.push_str(&format!(
            "  true completion preferred, affirmative: {}\n",
            rate_text(&s.true_preferred_affirmative)
        ));
        out.push_str(&format!(
            "  true completion preferred, negated:     {}\n",
            rate_text(&s.true_preferred_negated)
        ));
        out.push_str(&format!(
            "  top-1 unchanged by negation:            {}\n",
            rate_text(&s.top1_unchanged)
        ));
        if let Some(o) = s.mean_topk_overlap {
            out.push_str(&format!(
                "  mean top-k overlap (negated vs not):    {}%\n",
                fixed(100.0 * o, 1)
            ));
        }
        out.push_str(&format!(
            "  answer in affirmative top-k:            {}\n\n",
            s.answer_in_topk.display_percent()
        ));
    }
    out.push_str("item  affirmative top-3                 | negated top-3\n");
    for r in results {
        let words = |v: &[(String, f32)]| {
            v.iter()
                .take(3)
                .map(|(w, _)| w.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "{:<5} {:<33} | {}\n",
            r.item.id,
            words(&r.top_aff),
            words(&r.top_neg)
        ));
    }
    out
}

/// `summary.csv` rows (columns of [`SUMMARY_HEADER`], kind `cloze`): one per group x measure,
/// with the denominator `items`.
pub fn summary_csv(p: &ClozeProvenance, scores: &[ClozeScores]) -> Result<String, ReportError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(SUMMARY_HEADER).map_err(ser)?;
    let params = p
        .parameters
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";");
    let seed = p.seed.to_string();
    for s in scores {
        let mut row = |metric: &str,
                       denominator: &str,
                       k: String,
                       n: String,
                       v: f64,
                       lo: String,
                       hi: String| {
            w.write_record([
                p.attack.as_str(),
                "cloze",
                s.group.as_str(),
                metric,
                denominator,
                &k,
                &n,
                &fixed(v, 6),
                &lo,
                &hi,
                "",
                &p.model,
                &p.model_sha256,
                &p.corpus,
                &p.corpus_sha256,
                &seed,
                crate::VERSION,
                &params,
            ])
        };
        let rates = [
            ("true_preferred_affirmative", &s.true_preferred_affirmative),
            ("true_preferred_negated", &s.true_preferred_negated),
            ("top1_unchanged", &s.top1_unchanged),
            ("answer_in_topk", &Some(s.answer_in_topk)),
        ];
        for (metric, rate) in rates {
            if let Some(r) = rate {
                row(
                    metric,
                    "items",
                    r.k.to_string(),
                    r.n.to_string(),
                    r.value,
                    fixed(r.ci_low, 6),
                    fixed(r.ci_high, 6),
                )
                .map_err(ser)?;
            }
        }
        if let Some(o) = s.mean_topk_overlap {
            row(
                "mean_topk_overlap",
                "items",
                String::new(),
                s.items.to_string(),
                o,
                String::new(),
                String::new(),
            )
            .map_err(ser)?;
        }
    }
    finish(w)
}

/// `examples.csv`: one row per item and condition (affirmative, and negated where there is a
/// negated template) with the log-probabilities of the true and other completions and the
/// top-k words.
pub fn examples_csv(results: &[ItemResult]) -> Result<String, ReportError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "item",
        "line",
        "group",
        "condition",
        "template",
        "true_completion",
        "other_completion",
        "logp_true",
        "logp_other",
        "prefers_true",
        "top_k",
    ])
    .map_err(ser)?;
    let opt = |v: Option<f32>| v.map_or_else(String::new, |v| fixed(f64::from(v), 4));
    for r in results {
        let it = &r.item;
        let top = |v: &[(String, f32)]| {
            v.iter()
                .map(|(w, lp)| format!("{w}:{}", fixed(f64::from(*lp), 3)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let line = it.line.to_string();
        let group = it.group.clone().unwrap_or_default();
        let neg_answer = it.negated_answer.clone().unwrap_or_default();
        let pref = |b: Option<bool>| b.map_or_else(String::new, |b| b.to_string());
        w.write_record([
            it.id.as_str(),
            &line,
            &group,
            "affirmative",
            &it.template,
            &it.answers[0],
            &neg_answer,
            &fixed(f64::from(r.aff_true), 4),
            &opt(r.aff_false),
            &pref(r.prefers_true_aff()),
            &top(&r.top_aff),
        ])
        .map_err(ser)?;
        if let Some(neg) = &it.negated {
            w.write_record([
                it.id.as_str(),
                &line,
                &group,
                "negated",
                neg,
                &neg_answer,
                &it.answers[0],
                &opt(r.neg_true),
                &opt(r.neg_false),
                &pref(r.prefers_true_neg()),
                &top(&r.top_neg),
            ])
            .map_err(ser)?;
        }
    }
    finish(w)
}
