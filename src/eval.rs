//! Accuracy of a classifier on a labelled corpus: the number every attack is measured against.

use std::time::Instant;

use serde::Serialize;

use crate::data::corpus::{Corpus, CorpusError};
use crate::model::{Classifier, ModelError, Progress, QueryStats};
use crate::score::stats::Rate;

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The corpus could not be read, or a label is not one the model knows.
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    /// The model failed to load, hash or run.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Precision, recall and F1 of one of the model's labels.
#[derive(Debug, Clone, Serialize)]
pub struct ClassMetrics {
    /// The label's name, as the model gives it.
    pub label: String,
    /// Gold examples of this class.
    pub support: u64,
    /// Correct among gold examples of this class (per-class accuracy).
    pub recall: Rate,
    /// Correct among examples predicted as this class.
    pub precision: Rate,
    /// Harmonic mean of `recall` and `precision`, in [0, 1]; 0 when both are 0 or undefined.
    pub f1: f64,
}

/// A classifier's accuracy on a labelled corpus (`robust eval`).
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// The model's name in reports ([`crate::model::ModelInfo::name`]).
    pub model: String,
    /// sha256 of `model.onnx` (and its external data), lower-case hex.
    pub model_sha256: String,
    /// The corpus file's name.
    pub corpus: String,
    /// sha256 of the corpus file's bytes, lower-case hex.
    pub corpus_sha256: String,
    /// The model's labels, in index order; the order of `per_class` and `confusion`.
    pub labels: Vec<String>,
    /// Rows evaluated (blank lines not counted).
    pub n: u64,
    /// Blank lines in the corpus, skipped rather than evaluated.
    pub blank_lines_skipped: u64,
    /// Rows predicted as their gold label, out of `n`.
    pub accuracy: Rate,
    /// One entry per label, in the order of `labels`.
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[gold][predicted]`.
    pub confusion: Vec<Vec<u64>>,
    /// Rows per forward pass, at most.
    pub batch_size: usize,
    /// Threads for inference in all ([`crate::model::InferenceOptions::threads`]).
    pub threads: usize,
    /// Seconds spent predicting (for a file read in blocks, reading the blocks too); loading
    /// the model and checking the corpus are not counted.
    pub wall_seconds: f64,
    /// `n` divided by `wall_seconds`.
    pub sentences_per_second: f64,
    /// The model's work during the evaluation.
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
    count(&mut confusion, gold, predicted);
    metrics(labels, confusion)
}

/// Add (gold, predicted) pairs to `confusion[gold][predicted]`.
fn count(confusion: &mut [Vec<u64>], gold: &[usize], predicted: &[usize]) {
    for (&g, &p) in gold.iter().zip(predicted) {
        confusion[g][p] += 1;
    }
}

/// Accuracy and per-class metrics from a confusion matrix.
fn metrics(
    labels: &[String],
    confusion: Vec<Vec<u64>>,
) -> (Rate, Vec<ClassMetrics>, Vec<Vec<u64>>) {
    let k = labels.len();
    let correct: u64 = (0..k).map(|i| confusion[i][i]).sum();
    let total: u64 = confusion.iter().flatten().sum();
    let accuracy = Rate::new(correct, total);
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

/// Predict every row of `corpus` (read whole) and score the predictions against its labels.
/// `progress` is called with (rows done, rows in all).
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
    let k = model.labels().len();
    let mut confusion = vec![vec![0u64; k]; k];
    count(&mut confusion, &gold, &predicted);
    let source = Source {
        name: corpus.name(),
        sha256: corpus.sha256.clone(),
        blank_lines: corpus.blank_lines,
    };
    finish(model, source, confusion, wall_seconds, &before)
}

/// The corpus an evaluation read.
struct Source {
    name: String,
    sha256: String,
    blank_lines: usize,
}

/// The report from the confusion matrix, the time taken and the model's work since `before`.
fn finish(
    model: &Classifier,
    source: Source,
    confusion: Vec<Vec<u64>>,
    wall_seconds: f64,
    before: &QueryStats,
) -> Result<EvalReport, EvalError> {
    let (accuracy, per_class, confusion) = metrics(model.labels(), confusion);
    let n = accuracy.n;
    Ok(EvalReport {
        model: model.info().name.clone(),
        model_sha256: model.info().sha256()?,
        corpus: source.name,
        corpus_sha256: source.sha256,
        labels: model.labels().to_vec(),
        n,
        blank_lines_skipped: source.blank_lines as u64,
        accuracy,
        per_class,
        confusion,
        batch_size: model.options().batch_size,
        threads: model.options().threads,
        wall_seconds,
        sentences_per_second: n as f64 / wall_seconds.max(1e-9),
        queries: model.stats().since(before),
    })
}

/// [`evaluate`] over a corpus file read in blocks ([`crate::data::corpus_stream`]), so that memory
/// stays flat however many rows it has. A first pass checks every row (parse errors, labels
/// the model does not know, index labels that do not fit the model) before any inference, as
/// reading the file whole does; the second runs the model block by block. The counts are the
/// same as [`evaluate`]'s on the whole file; for a file larger than one block, the padding and
/// batch counters in `queries` follow the blocks (rows are sorted by length within a block).
pub fn evaluate_file(
    model: &mut Classifier,
    path: &std::path::Path,
    columns: &crate::data::corpus::Columns,
    limit: Option<usize>,
    block_bytes: usize,
    progress: Progress,
) -> Result<EvalReport, EvalError> {
    use crate::data::corpus_stream::CorpusBlocks;
    // Pass 1: every row and label checked, rows counted, the file hashed.
    let scan =
        crate::data::corpus_stream::scan(path, columns, model.info(), limit, true, block_bytes)?;
    let total = limit.map_or(scan.rows, |l| l.min(scan.rows));

    // Pass 2: the model, block by block.
    let before = model.stats();
    let start = Instant::now();
    let k = model.labels().len();
    let mut confusion = vec![vec![0u64; k]; k];
    let mut blocks = CorpusBlocks::open(path, columns, block_bytes)?;
    let mut done = 0;
    while done < total
        && let Some(mut block) = blocks.next_block()?
    {
        block.rows.truncate(total - done);
        let gold = block.row_label_indices(model.info())?;
        let offset = done;
        let mut report = |d: usize, _: usize| progress(offset + d, total);
        let predictions = if block.pair_column.is_some() {
            model.predict_inputs(&block.inputs(), &mut report)?
        } else {
            model.predict_with_progress(&block.texts(), &mut report)?
        };
        let predicted: Vec<usize> = predictions.iter().map(|p| p.label).collect();
        count(&mut confusion, &gold, &predicted);
        done += block.rows.len();
    }
    let wall_seconds = start.elapsed().as_secs_f64();
    let source = Source {
        name: scan.name,
        sha256: scan.sha256,
        blank_lines: scan.blank_lines,
    };
    finish(model, source, confusion, wall_seconds, &before)
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
