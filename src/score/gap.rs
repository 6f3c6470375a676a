//! GAP's measures of pronoun resolution (Webster et al. 2018): accuracy, per-candidate
//! precision, recall and F1, overall and by the pronoun's gender, and the bias ratio.
//!
//! They live with the other scores, not with the model: they compare a model's resolutions
//! with the gold labels of span rows, so they need both, and keeping them in the model made the
//! model depend on the data that depends on it.

use serde::Serialize;

use crate::data::spans::SpanRow;
use crate::model::coref::RowResolution;
use crate::score::stats::Rate;

/// Grammatical gender of a third-person pronoun, as GAP splits its results.
pub fn pronoun_gender(pronoun: &str) -> Option<&'static str> {
    match pronoun.to_lowercase().as_str() {
        "he" | "him" | "his" | "himself" => Some("masculine"),
        "she" | "her" | "hers" | "herself" => Some("feminine"),
        _ => None,
    }
}

/// GAP's measures over one set of rows.
#[derive(Debug, Clone, Serialize)]
pub struct GapScores {
    /// `all`, `masculine` or `feminine` (by the pronoun).
    pub group: String,
    /// Rows with gold labels.
    pub rows: u64,
    /// Rows resolved to the gold answer (A, B or neither) / rows.
    pub accuracy: Rate,
    /// Per-candidate decisions, as GAP's scorer counts them.
    pub precision: Rate,
    /// Gold referents their row resolved to / gold referents.
    pub recall: Rate,
    /// Per-candidate F1, a fraction in [0, 1] (0 when nothing is right).
    pub f1: f64,
}

/// `robust eval` on a coreference model: GAP's measures overall and by pronoun gender.
#[derive(Debug, Clone, Serialize)]
pub struct CorefEval {
    /// The model as reports name it.
    pub model: String,
    /// sha256 of the model, lower-case hex.
    pub model_sha256: String,
    /// The corpus as reports name it.
    pub corpus: String,
    /// sha256 of the corpus file, lower-case hex.
    pub corpus_sha256: String,
    /// Scores over every row with gold labels.
    pub overall: GapScores,
    /// masculine, feminine.
    pub by_gender: Vec<GapScores>,
    /// F1 feminine / F1 masculine (GAP's bias ratio; 1 is parity).
    pub bias: Option<f64>,
    /// Model inputs (one per row and candidate) cut to the model's length limit.
    pub truncated_inputs: u64,
    /// Wall-clock time of the evaluation, in seconds.
    pub wall_seconds: f64,
}

/// Score resolutions against gold; rows without gold labels are left out.
pub fn gap_scores(group: &str, rows: &[&SpanRow], resolutions: &[&RowResolution]) -> GapScores {
    let (mut tp, mut fp, mut fn_, mut correct, mut n) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for (row, res) in rows.iter().zip(resolutions) {
        let Some(gold) = row.gold() else { continue };
        n += 1;
        correct += u64::from(gold == res.resolved);
        for (i, c) in row.candidates.iter().enumerate() {
            let predicted = res.resolved == Some(i);
            let truth = c.gold == Some(true);
            tp += u64::from(predicted && truth);
            fp += u64::from(predicted && !truth);
            fn_ += u64::from(!predicted && truth);
        }
    }
    let precision = Rate::new(tp, tp + fp);
    let recall = Rate::new(tp, tp + fn_);
    let f1 = if tp == 0 {
        0.0
    } else {
        2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
    };
    GapScores {
        group: group.to_string(),
        rows: n,
        accuracy: Rate::new(correct, n),
        precision,
        recall,
        f1,
    }
}

/// Overall and per-gender scores, and the bias ratio.
pub fn evaluate(
    rows: &[&SpanRow],
    resolutions: &[RowResolution],
) -> (GapScores, Vec<GapScores>, Option<f64>) {
    let all: Vec<&RowResolution> = resolutions.iter().collect();
    let overall = gap_scores("all", rows, &all);
    let mut by_gender = Vec::new();
    for gender in ["masculine", "feminine"] {
        let (r, s): (Vec<&SpanRow>, Vec<&RowResolution>) = rows
            .iter()
            .zip(resolutions)
            .filter(|(row, _)| pronoun_gender(row.pronoun_text()) == Some(gender))
            .map(|(row, res)| (*row, res))
            .unzip();
        if !r.is_empty() {
            by_gender.push(gap_scores(gender, &r, &s));
        }
    }
    let f1 = |g: &str| by_gender.iter().find(|s| s.group == g).map(|s| s.f1);
    let bias = match (f1("feminine"), f1("masculine")) {
        (Some(f), Some(m)) if m > 0.0 => Some(f / m),
        _ => None,
    };
    (overall, by_gender, bias)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::spans::{Candidate, Span};

    fn row() -> SpanRow {
        let text = "Ann met Bo Li. She left.".to_string();
        SpanRow {
            line: 2,
            id: "t".into(),
            pronoun: Span::new(15, 18),
            candidates: vec![
                Candidate {
                    label: "A".into(),
                    name: "Ann".into(),
                    span: Span::new(0, 3),
                    gold: Some(true),
                },
                Candidate {
                    label: "B".into(),
                    name: "Bo Li".into(),
                    span: Span::new(8, 13),
                    gold: Some(false),
                },
            ],
            text,
        }
    }

    #[test]
    fn gap_f1_counts_per_candidate_decisions() {
        let r = row();
        let right = RowResolution::from_probs(vec![0.9, 0.1]);
        let wrong = RowResolution::from_probs(vec![0.1, 0.9]);
        let neither = RowResolution::from_probs(vec![0.1, 0.1]);
        let rows = [&r, &r, &r];
        let s = gap_scores("all", &rows, &[&right, &wrong, &neither]);
        // tp 1, fp 1 (wrong picks B), fn 2 (wrong and neither miss A).
        assert_eq!((s.precision.k, s.precision.n), (1, 2));
        assert_eq!((s.recall.k, s.recall.n), (1, 3));
        assert!((s.f1 - 0.4).abs() < 1e-12);
        assert_eq!((s.accuracy.k, s.accuracy.n), (1, 3));
    }

    #[test]
    fn pronoun_genders() {
        assert_eq!(pronoun_gender("Her"), Some("feminine"));
        assert_eq!(pronoun_gender("his"), Some("masculine"));
        assert_eq!(pronoun_gender("they"), None);
    }
}
