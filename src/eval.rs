//! Accuracy of a classifier on a labelled corpus: the number every attack is measured against.

use std::time::Instant;

use serde::Serialize;

use crate::corpus::{Corpus, CorpusError};
use crate::model::{Classifier, ModelError, Progress, QueryStats};
use crate::stats::Rate;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    #[error(transparent)]
    Model(#[from] ModelError),
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassMetrics {
    pub label: String,
    /// Gold examples of this class.
    pub support: u64,
    /// Correct among gold examples of this class (per-class accuracy).
    pub recall: Rate,
    /// Correct among examples predicted as this class.
    pub precision: Rate,
    pub f1: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub model: String,
    pub model_sha256: String,
    pub corpus: String,
    pub corpus_sha256: String,
    pub labels: Vec<String>,
    pub n: u64,
    pub blank_lines_skipped: u64,
    pub accuracy: Rate,
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[gold][predicted]`.
    pub confusion: Vec<Vec<u64>>,
    pub batch_size: usize,
    pub threads: usize,
    pub wall_seconds: f64,
    pub sentences_per_second: f64,
    pub queries: QueryStats,
}

/// Count-based part of the report, separate from timing so it can be tested on its own.
pub fn tabulate(
    labels: &[String],
    gold: &[usize],
    predicted: &[usize],
) -> (Rate, Vec<ClassMetrics>, Vec<Vec<u64>>) {
    let k = labels.len();
    let mut confusion = vec![vec![0u64; k]; k];
    for (&g, &p) in gold.iter().zip(predicted) {
        confusion[g][p] += 1;
    }
    let correct: u64 = (0..k).map(|i| confusion[i][i]).sum();
    let accuracy = Rate::new(correct, gold.len() as u64);
    let per_class = (0..k)
        .map(|c| {
            let support: u64 = confusion[c].iter().sum();
            let predicted_c: u64 = confusion.iter().map(|row| row[c]).sum();
            let recall = Rate::new(confusion[c][c], support);
            let precision = Rate::new(confusion[c][c], predicted_c);
            let f1 = if recall.value + precision.value > 0.0 {
                2.0 * recall.value * precision.value / (recall.value + precision.value)
            } else {
                0.0
            };
            ClassMetrics {
                label: labels[c].clone(),
                support,
                recall,
                precision,
                f1: if f1.is_nan() { 0.0 } else { f1 },
            }
        })
        .collect();
    (accuracy, per_class, confusion)
}

pub fn evaluate(
    model: &mut Classifier,
    corpus: &Corpus,
    progress: Progress,
) -> Result<EvalReport, EvalError> {
    let gold = corpus.label_indices(model.info())?;
    let before = model.stats();
    let start = Instant::now();
    let predictions = if corpus.pair_column.is_some() {
        model.predict_inputs(&corpus.inputs(), progress)?
    } else {
        model.predict_with_progress(&corpus.texts(), progress)?
    };
    let wall_seconds = start.elapsed().as_secs_f64();
    let predicted: Vec<usize> = predictions.iter().map(|p| p.label).collect();
    let (accuracy, per_class, confusion) = tabulate(model.labels(), &gold, &predicted);
    let n = gold.len() as u64;
    Ok(EvalReport {
        model: model.info().name.clone(),
        model_sha256: model.info().sha256()?,
        corpus: corpus.name(),
        corpus_sha256: corpus.sha256.clone(),
        labels: model.labels().to_vec(),
        n,
        blank_lines_skipped: corpus.blank_lines as u64,
        accuracy,
        per_class,
        confusion,
        batch_size: model.options().batch_size,
        threads: model.options().threads,
        wall_seconds,
        sentences_per_second: n as f64 / wall_seconds.max(1e-9),
        queries: model.stats().since(&before),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The tabulation agrees with a brute-force recount on random labelings.
        #[test]
        #[allow(clippy::needless_range_loop)]
        fn tabulation_matches_brute_force(pairs in prop::collection::vec((0usize..3, 0usize..3), 1..200)) {
            let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
            let gold: Vec<usize> = pairs.iter().map(|p| p.0).collect();
            let pred: Vec<usize> = pairs.iter().map(|p| p.1).collect();
            let (acc, per_class, confusion) = tabulate(&labels, &gold, &pred);
            prop_assert_eq!(acc.k, pairs.iter().filter(|p| p.0 == p.1).count() as u64);
            prop_assert_eq!(acc.n, pairs.len() as u64);
            for c in 0..3 {
                let support = gold.iter().filter(|&&g| g == c).count() as u64;
                let hits = pairs.iter().filter(|p| p.0 == c && p.1 == c).count() as u64;
                let predicted = pred.iter().filter(|&&p| p == c).count() as u64;
                prop_assert_eq!(per_class[c].support, support);
                prop_assert_eq!(per_class[c].recall.k, hits);
                prop_assert_eq!(per_class[c].precision.n, predicted);
            }
            prop_assert_eq!(confusion.iter().flatten().sum::<u64>(), pairs.len() as u64);
        }
    }
}
