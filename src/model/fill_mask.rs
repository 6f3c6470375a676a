//! Masked-LM (fill-mask) models: the second kind of model robust runs.
//!
//! A fill-mask export (transformers/optimum `--task fill-mask`) takes the same inputs as a
//! classifier and returns logits `[batch, sequence, vocab]`. Probes need only the rows at the
//! `[MASK]` positions, so those are cut out and turned into log-probabilities here, and the rest
//! of the (large) output is dropped batch by batch: a batch of 32 rows of 20 tokens is already
//! 78 MB of logits over BERT's 30,522-piece vocabulary, so batches are also capped by size.

use std::path::{Path, PathBuf};

use ort::session::Session;

use crate::model::runtime;
use crate::model::session::{self, padded_feed, session_builder};
use crate::model::tokenize::{TextEncoder, TokenIds};
use crate::model::{
    Folder, InferenceOptions, MODEL_FILE, ModelError, ModelKind, QueryStats, TOKENIZER_FILE,
};

/// Logit floats per batch at most (256 MB).
const MAX_BATCH_FLOATS: usize = 64 << 20;

/// A fill-mask model loaded from a model folder, with its tokenizer and query counters.
pub struct MaskedLm {
    dir: PathBuf,
    name: String,
    session: Session,
    encoder: TextEncoder,
    uses_token_types: bool,
    mask_id: u32,
    vocab: usize,
    batch_size: usize,
    stats: QueryStats,
}

impl MaskedLm {
    /// Load the fill-mask model in the folder `dir` and check its graph and tokenizer (which
    /// must have a `[MASK]` or `<mask>` token). Of `options`, the batch size, threads, length
    /// limit and library path apply; there is no prediction cache.
    pub fn load(dir: &Path, options: InferenceOptions) -> Result<Self, ModelError> {
        let folder = Folder::open(dir, ModelKind::FillMask)?;
        let env = runtime::environment(options.ort_lib.as_deref())?;
        let path = dir.join(MODEL_FILE);
        let session = session_builder(env, options.threads)
            .and_then(|mut b| b.commit_from_file(&path))
            .map_err(|source| ModelError::Session {
                path: path.clone(),
                source,
            })?;
        let (uses_token_types, vocab) = check_signature(&session, dir)?;
        let max_len = options
            .max_len
            .map_or(folder.max_len, |m| m.min(folder.max_len));
        let encoder = TextEncoder::from_file(&dir.join(TOKENIZER_FILE), max_len)?;
        crate::model::check_tokenizer_fits(dir, &encoder)?;
        let bad = |message: String| ModelError::BadConfig {
            path: dir.join(TOKENIZER_FILE),
            message,
        };
        let mask_id = encoder
            .token_to_id("[MASK]")
            .or_else(|| encoder.token_to_id("<mask>"))
            .ok_or_else(|| bad("the tokenizer has no [MASK] (or <mask>) token".into()))?;
        if encoder.vocab_size() > vocab {
            return Err(bad(format!(
                "the tokenizer has {} tokens but the model's output has {vocab}",
                encoder.vocab_size()
            )));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            name: folder.name,
            session,
            encoder,
            uses_token_types,
            mask_id,
            vocab,
            batch_size: options.batch_size.max(1),
            stats: QueryStats::default(),
        })
    }

    /// The name reports give the model (`robust.toml`'s `name`, else the folder's name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The model folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The model's tokenizer, truncating to the model's length limit.
    pub fn encoder(&self) -> &TextEncoder {
        &self.encoder
    }

    /// The id of the mask token (`[MASK]`, or `<mask>` for RoBERTa-style vocabularies).
    pub fn mask_id(&self) -> u32 {
        self.mask_id
    }

    /// Model work since loading.
    pub fn stats(&self) -> QueryStats {
        self.stats
    }

    /// sha256 of `model.onnx` and its external data, lower-case hex.
    pub fn sha256(&self) -> Result<String, ModelError> {
        crate::model::model_sha256(&self.dir)
    }

    /// Log-probabilities over the vocabulary at every mask position of each input, in order of
    /// position.
    pub fn mask_log_probs(
        &mut self,
        inputs: &[TokenIds],
    ) -> Result<Vec<Vec<Vec<f32>>>, ModelError> {
        let mut order: Vec<usize> = (0..inputs.len()).collect();
        order.sort_by_key(|&i| inputs[i].len());
        let mut out: Vec<Vec<Vec<f32>>> = vec![Vec::new(); inputs.len()];
        let mut start = 0;
        while start < order.len() {
            let width = inputs[order[(start + self.batch_size).min(order.len()) - 1]]
                .len()
                .max(1);
            let fit = (MAX_BATCH_FLOATS / (width * self.vocab)).max(1);
            let end = (start + self.batch_size.min(fit)).min(order.len());
            let rows: Vec<&TokenIds> = order[start..end].iter().map(|&i| &inputs[i]).collect();
            for (row, &i) in self.run_batch(&rows)?.into_iter().zip(&order[start..end]) {
                out[i] = row;
            }
            start = end;
        }
        Ok(out)
    }

    fn run_batch(&mut self, rows: &[&TokenIds]) -> Result<Vec<Vec<Vec<f32>>>, ModelError> {
        let n = rows.len();
        let path = self.dir.join(MODEL_FILE);
        self.stats.requests += n as u64;
        let (feed, width) = padded_feed(rows, self.uses_token_types, &mut self.stats, &path)?;
        let (vocab, mask_id) = (self.vocab, self.mask_id);
        session::run_logits(&mut self.session, feed, &path, |dims, data| {
            if dims != [n as i64, width as i64, vocab as i64] {
                return Err(ModelError::Incompatible {
                    path: path.clone(),
                    message: format!(
                        "logits have shape {dims:?}, expected [{n}, {width}, {vocab}]"
                    ),
                });
            }
            // Only the rows at mask positions are kept; the rest of the batch's logits go.
            Ok(rows
                .iter()
                .enumerate()
                .map(|(r, row)| {
                    row.ids
                        .iter()
                        .enumerate()
                        .filter(|&(_, &id)| id == mask_id)
                        .map(|(c, _)| {
                            let at = (r * width + c) * vocab;
                            log_softmax(&data[at..at + vocab])
                        })
                        .collect()
                })
                .collect())
        })
    }
}

impl crate::model::LoadedModel for MaskedLm {
    fn dir(&self) -> &Path {
        &self.dir
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn work(&self) -> QueryStats {
        self.stats
    }
}

/// Natural-log probabilities from logits, computed stably (the largest logit subtracted first).
pub(crate) fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let log_sum = sum.ln() as f32 + max;
    logits.iter().map(|&l| l - log_sum).collect()
}

/// A fill-mask graph takes the classifier's inputs and gives float logits of rank 3. Returns
/// whether it takes token_type_ids, and the vocabulary size.
fn check_signature(session: &Session, dir: &Path) -> Result<(bool, usize), ModelError> {
    let path = dir.join(MODEL_FILE);
    let uses_token_types = session::check_inputs(session, &path, &[])?;
    match session::logits_shape(session, &path)?[..] {
        [_, _, vocab] if vocab > 0 => Ok((uses_token_types, vocab as usize)),
        [_, _] => Err(ModelError::WrongKind {
            dir: dir.to_path_buf(),
            found: ModelKind::Classifier.as_str(),
            needed: ModelKind::FillMask.as_str(),
        }),
        ref other => Err(ModelError::Incompatible {
            path,
            message: format!(
                "output \"logits\" has shape {other:?}, expected float32 [batch, sequence, vocab]"
            ),
        }),
    }
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
}
