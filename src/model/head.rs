//! What differs between the graphs robust runs: the head on top of the BERT encoder.
//!
//! Every graph takes padded token ids and returns float32 `logits`; a sequence classifier's
//! are `[rows, labels]`, a masked-LM's `[rows, sequence, vocab]`, and the embedding-input twin
//! of a classifier takes the word embeddings as one more input. A [`Head`] says only that
//! much: the inputs it adds, the logits shape it accepts at load, how many rows fit a batch,
//! and what it keeps of a batch's logits. Loading, batching, padding, the signature check and
//! query counting are then written once, in [`crate::model::encoder::Encoder`], in the manner
//! of a tokenizer pipeline whose stages each implement one trait.
//!
//! The label-logits and masked-LM heads are here; the embedding-input head lives with the
//! rows it takes, in [`crate::model::embed`].
//!
//! A coreference model has no head of its own: its graph is a classifier's, and only how rows
//! become inputs (the span template) and which probability is read differ, which
//! [`crate::model::coref::CorefModel`] does on top of a [`Classifier`](crate::model::Classifier).

use std::path::Path;
use std::sync::Arc;

use crate::model::session::{Feed, TokenRow};
use crate::model::tokenize::TokenIds;
use crate::model::{ModelError, ModelKind};

/// The part of a graph that differs by model kind (see the module docs).
pub(crate) trait Head: Sync {
    /// One input row as this head takes it.
    type Row: TokenRow + Sync;
    /// What is kept of one row's logits.
    type Output: Send;

    /// Whether the last layer may be computed for `[CLS]` alone: true for heads that read
    /// only that position ([`crate::model::encoder::narrowed_graph`]).
    const READS_CLS_ONLY: bool;
    /// Whether batches of short rows may run on worker sessions side by side
    /// ([`crate::model::worker_split`]). Workers are rebuilt from the model file, so a head
    /// whose graph exists only in memory cannot have them.
    const SIDE_BY_SIDE: bool;

    /// The kind of model this head makes, as errors name it.
    fn kind(&self) -> ModelKind;

    /// The graph output the head reads: `logits`, or a sentence encoder's `last_hidden_state`.
    fn output(&self) -> &'static str {
        "logits"
    }

    /// Graph inputs besides `input_ids`, `attention_mask` and `token_type_ids`.
    fn extra_inputs(&self) -> Vec<&str> {
        Vec::new()
    }

    /// Check the declared shape of `logits` at load, and learn from it what the head needs
    /// (the vocabulary size of a masked-LM).
    fn fit_logits(&mut self, shape: &[i64], path: &Path) -> Result<(), ModelError>;

    /// Rows of padded width `width` that fit one batch, on top of the batch size.
    fn rows_per_batch(&self, _width: usize) -> usize {
        usize::MAX
    }

    /// Add this head's own inputs to a batch's feed.
    fn extend_feed(
        &self,
        _rows: &[&Self::Row],
        _width: usize,
        _feed: &mut Feed,
        _path: &Path,
    ) -> Result<(), ModelError> {
        Ok(())
    }

    /// What is kept of a batch's logits (of shape `dims`), one output per row.
    fn read(
        &self,
        rows: &[&Self::Row],
        width: usize,
        dims: &[i64],
        data: &[f32],
        path: &Path,
    ) -> Result<Vec<Self::Output>, ModelError>;
}

/// The error for a graph that does not fit `kind`.
pub(crate) fn incompatible(path: &Path, kind: ModelKind, message: String) -> ModelError {
    ModelError::Incompatible {
        path: path.to_path_buf(),
        kind: kind.as_str(),
        message,
    }
}

/// A `[rows, labels]` logits shape, as declared by the graph.
pub(crate) fn fit_label_logits(
    shape: &[i64],
    labels: usize,
    kind: ModelKind,
    path: &Path,
) -> Result<(), ModelError> {
    let bad = |message: String| incompatible(path, kind, message);
    if shape.len() == 3 {
        return Err(bad(format!(
            "logits are [batch, sequence, vocab]: this is a {}, not a {}",
            ModelKind::FillMask.as_str(),
            kind.as_str()
        )));
    }
    if shape.len() != 2 {
        return Err(bad(format!(
            "logits have rank {}, expected [batch, labels]",
            shape.len()
        )));
    }
    if shape[1] > 0 && shape[1] as usize != labels {
        return Err(bad(format!(
            "logits have {} columns but the folder names {labels} labels",
            shape[1]
        )));
    }
    Ok(())
}

/// A batch's `[rows, labels]` logits, row by row.
pub(crate) fn label_rows<'a>(
    dims: &[i64],
    data: &'a [f32],
    rows: usize,
    labels: usize,
) -> Result<std::slice::Chunks<'a, f32>, ModelError> {
    if dims != [rows as i64, labels as i64] {
        return Err(ModelError::OutputShape {
            shape: dims.to_vec(),
            rows,
            labels,
        });
    }
    Ok(data.chunks(labels))
}

/// A sequence classifier's head: one row of label logits per input, kept whole (and cached).
pub(crate) struct Logits {
    /// Labels the folder declares.
    pub(crate) labels: usize,
}

impl Head for Logits {
    type Row = TokenIds;
    type Output = Arc<[f32]>;
    const READS_CLS_ONLY: bool = true;
    const SIDE_BY_SIDE: bool = true;

    fn kind(&self) -> ModelKind {
        ModelKind::Classifier
    }

    fn fit_logits(&mut self, shape: &[i64], path: &Path) -> Result<(), ModelError> {
        fit_label_logits(shape, self.labels, self.kind(), path)
    }

    fn read(
        &self,
        rows: &[&TokenIds],
        _width: usize,
        dims: &[i64],
        data: &[f32],
        _path: &Path,
    ) -> Result<Vec<Arc<[f32]>>, ModelError> {
        Ok(label_rows(dims, data, rows.len(), self.labels)?
            .map(Arc::from)
            .collect())
    }
}

/// Logit floats per fill-mask batch at most (256 MB): a batch of 32 rows of 20 tokens is
/// already 78 MB of logits over BERT's 30,522-piece vocabulary.
const MAX_BATCH_FLOATS: usize = 64 << 20;

/// A masked-LM's head: vocabulary logits at every position, of which only the rows at mask
/// positions are kept, as log-probabilities; the rest of the (large) output goes batch by
/// batch.
pub(crate) struct MaskedLm {
    /// The mask token's id.
    pub(crate) mask_id: u32,
    /// The output's vocabulary size, read from the graph at load.
    pub(crate) vocab: usize,
}

impl Head for MaskedLm {
    type Row = TokenIds;
    type Output = Vec<Vec<f32>>;
    const READS_CLS_ONLY: bool = false;
    const SIDE_BY_SIDE: bool = false;

    fn kind(&self) -> ModelKind {
        ModelKind::FillMask
    }

    fn fit_logits(&mut self, shape: &[i64], path: &Path) -> Result<(), ModelError> {
        match *shape {
            [_, _, vocab] if vocab > 0 => {
                self.vocab = vocab as usize;
                Ok(())
            }
            [_, _] => Err(ModelError::WrongKind {
                dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
                found: ModelKind::Classifier.as_str(),
                needed: ModelKind::FillMask.as_str(),
            }),
            ref other => Err(incompatible(
                path,
                self.kind(),
                format!(
                    "output \"logits\" has shape {other:?}, expected float32 [batch, sequence, vocab]"
                ),
            )),
        }
    }

    fn rows_per_batch(&self, width: usize) -> usize {
        MAX_BATCH_FLOATS / (width * self.vocab)
    }

    fn read(
        &self,
        rows: &[&TokenIds],
        width: usize,
        dims: &[i64],
        data: &[f32],
        path: &Path,
    ) -> Result<Vec<Vec<Vec<f32>>>, ModelError> {
        let (n, vocab) = (rows.len(), self.vocab);
        if dims != [n as i64, width as i64, vocab as i64] {
            return Err(incompatible(
                path,
                self.kind(),
                format!("logits have shape {dims:?}, expected [{n}, {width}, {vocab}]"),
            ));
        }
        Ok(rows
            .iter()
            .enumerate()
            .map(|(r, row)| {
                row.ids
                    .iter()
                    .enumerate()
                    .filter(|&(_, &id)| id == self.mask_id)
                    .map(|(c, _)| {
                        let at = (r * width + c) * vocab;
                        log_softmax(&data[at..at + vocab])
                    })
                    .collect()
            })
            .collect())
    }
}

/// Natural-log probabilities from logits, computed stably (the largest logit subtracted first).
pub(crate) fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let log_sum = sum.ln() as f32 + max;
    logits.iter().map(|&l| l - log_sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_normalises() {
        let lp = log_softmax(&[1.0, 2.0, 3.0]);
        let total: f32 = lp.iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert!(lp[2] > lp[1] && lp[1] > lp[0]);
    }

    #[test]
    fn label_heads_accept_only_rows_of_labels() {
        let path = Path::new("m/model.onnx");
        let mut head = Logits { labels: 2 };
        assert!(head.fit_logits(&[-1, 2], path).is_ok());
        assert!(head.fit_logits(&[-1, -1], path).is_ok());
        let err = head.fit_logits(&[-1, 3], path).unwrap_err().to_string();
        assert!(
            err.contains("does not fit a classifier") && err.contains("3 columns"),
            "{err}"
        );
        let err = head
            .fit_logits(&[-1, -1, 30], path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("this is a fill-mask (masked-LM) model"),
            "{err}"
        );
        let rows = [TokenIds::single(vec![1]), TokenIds::single(vec![2, 3])];
        let refs: Vec<&TokenIds> = rows.iter().collect();
        let out = head
            .read(&refs, 2, &[2, 2], &[0.0, 1.0, 2.0, 3.0], path)
            .unwrap();
        assert_eq!(&*out[1], &[2.0, 3.0]);
        assert!(matches!(
            head.read(&refs, 2, &[2, 3], &[0.0; 6], path),
            Err(ModelError::OutputShape {
                rows: 2,
                labels: 2,
                ..
            })
        ));
    }

    /// The `Incompatible` error names the kind of model the graph was loaded as: it used to say
    /// "classifier" for fill-mask graphs too.
    #[test]
    fn masked_lm_head_names_its_own_kind() {
        let path = Path::new("m/model.onnx");
        let mut head = MaskedLm {
            mask_id: 4,
            vocab: 0,
        };
        head.fit_logits(&[-1, -1, 6], path).unwrap();
        assert_eq!(head.vocab, 6);
        let err = head.fit_logits(&[-1], path).unwrap_err().to_string();
        assert!(
            err.contains("does not fit a fill-mask (masked-LM) model"),
            "{err}"
        );
        let err = head.fit_logits(&[-1, 2], path).unwrap_err().to_string();
        assert!(
            err.contains("is a classifier; this command needs a fill-mask"),
            "{err}"
        );
        // One row of three tokens, the mask at position 1: only that position's row is kept.
        let row = TokenIds::single(vec![1, 4, 2]);
        let data: Vec<f32> = (0..18).map(|i| i as f32).collect();
        let out = head.read(&[&row], 3, &[1, 3, 6], &data, path).unwrap();
        assert_eq!(out[0].len(), 1);
        assert_eq!(out[0][0], log_softmax(&data[6..12]));
        let err = head
            .read(&[&row], 3, &[1, 3, 5], &data, path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("fill-mask"), "{err}");
        assert_eq!(head.rows_per_batch(1024), MAX_BATCH_FLOATS / (1024 * 6));
    }
}
