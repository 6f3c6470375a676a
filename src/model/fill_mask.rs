//! Masked-LM (fill-mask) models: the second kind of model robust runs.
//!
//! A fill-mask export (transformers/optimum `--task fill-mask`) takes the same inputs as a
//! classifier and returns logits `[batch, sequence, vocab]`. Probes need only the rows at the
//! `[MASK]` positions; the [`head::MaskedLm`] head cuts those out as log-probabilities and
//! caps batches by the size of their logits. There is no prediction cache: probes ask each
//! input once.

use std::path::{Path, PathBuf};

use crate::model::encoder::Encoder;
use crate::model::head;
use crate::model::tokenize::{TextEncoder, TokenIds};
use crate::model::{
    Folder, InferenceOptions, MODEL_FILE, ModelError, ModelKind, QueryStats, TOKENIZER_FILE,
};

/// A fill-mask model loaded from a model folder, with its tokenizer and query counters.
pub struct MaskedLm {
    dir: PathBuf,
    name: String,
    graph: Encoder<head::MaskedLm>,
    encoder: TextEncoder,
}

impl MaskedLm {
    /// Load the fill-mask model in the folder `dir` and check its graph and tokenizer (which
    /// must have a `[MASK]` or `<mask>` token). Of `options`, the batch size, threads, length
    /// limit and library path apply; there is no prediction cache.
    pub fn load(dir: &Path, options: InferenceOptions) -> Result<Self, ModelError> {
        let folder = Folder::open(dir, ModelKind::FillMask)?;
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
        // The vocabulary size is read from the graph's output when it loads.
        let head = head::MaskedLm { mask_id, vocab: 0 };
        let options = InferenceOptions {
            cache_capacity: 0,
            ..options
        };
        let graph = Encoder::load(&dir.join(MODEL_FILE), None, head, options)?;
        let vocab = graph.head().vocab;
        if encoder.vocab_size() > vocab {
            return Err(bad(format!(
                "the tokenizer has {} tokens but the model's output has {vocab}",
                encoder.vocab_size()
            )));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            name: folder.name,
            graph,
            encoder,
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
        self.graph.head().mask_id
    }

    /// Model work since loading.
    pub fn stats(&self) -> QueryStats {
        self.graph.stats()
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
        self.graph.run(inputs)
    }
}
