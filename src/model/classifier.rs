//! The sequence classifier: a tokenizer in front of an [`Encoder`] with the [`Logits`] head,
//! which batches, pads, caches and counts. What is here is what needs the tokenizer: texts and
//! pairs in, predictions out, and failed inputs named by their text.

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::model::encoder::Encoder;
use crate::model::head::Logits;

impl TextModel for Classifier {
    fn labels(&self) -> &[String] {
        Classifier::labels(self)
    }

    fn predict_with_progress(
        &mut self,
        texts: &[&str],
        progress: Progress,
    ) -> Result<Vec<Prediction>, ModelError> {
        Classifier::predict_with_progress(self, texts, progress)
    }

    fn predict_inputs(
        &mut self,
        inputs: &[Input],
        progress: Progress,
    ) -> Result<Vec<Prediction>, ModelError> {
        Classifier::predict_inputs(self, inputs, progress)
    }

    fn stats(&self) -> QueryStats {
        Classifier::stats(self)
    }
}

/// A sequence classifier loaded from a model folder, with its tokenizer, prediction cache and
/// query counters.
pub struct Classifier {
    info: ModelInfo,
    /// The graph with its logits head: sessions, batches, cache and counts.
    graph: Encoder<Logits>,
    encoder: TextEncoder,
}

impl Classifier {
    /// Load the classifier in the folder `dir`: read and cross-check its files, build its
    /// ONNX Runtime session and check the graph's inputs and outputs. A dynamically quantized
    /// model is set to run one row at a time, whole graph, whatever `options` say.
    pub fn load(dir: &Path, options: InferenceOptions) -> Result<Self, ModelError> {
        let mut info = ModelInfo::read(dir)?;
        if let Some(max_len) = options.max_len {
            info.max_len = max_len.min(info.max_len);
        }
        let head = Logits {
            labels: info.labels.len(),
        };
        let graph = Encoder::load(&info.model_path(), None, head, options)?;
        let encoder = TextEncoder::from_file(&dir.join(TOKENIZER_FILE), info.max_len)?;
        check_tokenizer_fits(dir, &encoder)?;
        Ok(Self {
            info,
            graph,
            encoder,
        })
    }

    /// What the folder says about the model (its `max_len` already cut to the options').
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Label names, by index.
    pub fn labels(&self) -> &[String] {
        &self.info.labels
    }

    /// The model's tokenizer, truncating to [`ModelInfo::max_len`].
    pub fn encoder(&self) -> &TextEncoder {
        &self.encoder
    }

    /// The options in force (after any a dynamically quantized model overrides).
    pub fn options(&self) -> &InferenceOptions {
        self.graph.options()
    }

    /// Model work since loading (or as added from a resumed search's checkpoint).
    pub fn stats(&self) -> QueryStats {
        self.graph.stats()
    }

    /// The prediction cache in front of the model.
    pub fn cache(&self) -> &PredictionCache {
        self.graph.cache()
    }

    /// Empty the prediction cache, so that the next requests are paid for (the counters are
    /// kept).
    pub fn clear_cache(&mut self) {
        self.graph.cache_mut().clear();
    }

    /// The prediction cache, to replay a checkpoint's journal into and to journal.
    pub(crate) fn cache_mut(&mut self) -> &mut PredictionCache {
        self.graph.cache_mut()
    }

    /// Count work done by an earlier process as done here: a resumed search adds what its
    /// checkpoint says the interrupted one had spent, so its totals equal an unbroken run's.
    pub(crate) fn add_stats(&mut self, earlier: &QueryStats) {
        self.graph.add_stats(earlier);
    }

    /// Rows per forward pass from now on (at least 1); ignored by a model that runs one row at
    /// a time.
    pub fn set_batch_size(&mut self, batch_size: usize) {
        self.graph.set_batch_size(batch_size);
    }

    /// Tokenize texts as the model will see them (truncated to its limit, special tokens
    /// added), without running it.
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Encoded>, ModelError> {
        Ok(self.encoder.encode_batch(texts)?)
    }

    /// Texts and sentence pairs encoded as [`Classifier::predict_inputs`] encodes them (cut to
    /// the model's limit, which each says), without running the model.
    pub fn encode_inputs(
        &self,
        inputs: &[crate::model::Input],
    ) -> Result<Vec<Encoded>, ModelError> {
        Ok(self.encoder.encode_inputs(inputs)?)
    }

    /// One prediction per text, in order.
    pub fn predict(&mut self, texts: &[&str]) -> Result<Vec<Prediction>, ModelError> {
        self.predict_with_progress(texts, &mut |_, _| {})
    }

    /// [`Classifier::predict`], telling `progress` (rows done, rows to run) after each
    /// forward pass.
    pub fn predict_with_progress(
        &mut self,
        texts: &[&str],
        progress: Progress,
    ) -> Result<Vec<Prediction>, ModelError> {
        let encoded = self.encode(texts)?;
        self.predict_encoded(encoded, progress)
    }

    /// Predictions for texts and sentence pairs, each encoded as the tokenizer encodes it.
    pub fn predict_inputs(
        &mut self,
        inputs: &[Input],
        progress: Progress,
    ) -> Result<Vec<Prediction>, ModelError> {
        let encoded = self.encoder.encode_inputs(inputs)?;
        self.predict_encoded(encoded, progress)
    }

    /// Predictions for sentence pairs (`[CLS] a [SEP] b [SEP]`), e.g. a marked text and a
    /// candidate name.
    pub fn predict_pairs(
        &mut self,
        pairs: &[(&str, &str)],
        progress: Progress,
    ) -> Result<Vec<Prediction>, ModelError> {
        let encoded = self.encoder.encode_pairs(pairs)?;
        self.predict_encoded(encoded, progress)
    }

    pub(crate) fn predict_encoded(
        &mut self,
        encoded: Vec<Encoded>,
        progress: Progress,
    ) -> Result<Vec<Prediction>, ModelError> {
        self.graph
            .count_truncated(encoded.iter().filter(|e| e.truncated).count());
        let inputs: Vec<TokenIds> = encoded.into_iter().map(|e| e.input).collect();
        self.predict_ids(&inputs, progress)
    }

    /// Predictions for inputs already in token space (attacks that edit ids use this).
    pub fn predict_ids(
        &mut self,
        inputs: &[TokenIds],
        progress: Progress,
    ) -> Result<Vec<Prediction>, ModelError> {
        Ok(self
            .logits(inputs, progress)?
            .into_iter()
            .map(Prediction::from_logits)
            .collect())
    }

    /// Logits for each input, from the cache where possible; the rest run sorted by length in
    /// batches padded to their own longest row.
    pub fn logits(
        &mut self,
        inputs: &[TokenIds],
        progress: Progress,
    ) -> Result<Vec<Arc<[f32]>>, ModelError> {
        let encoder = &self.encoder;
        self.graph.cached(inputs, progress).map_err(|e| match e {
            // The encoder names the row by its ids; the tokenizer can say what it was.
            ModelError::FailedInput {
                path,
                ids,
                text: None,
                source,
            } => ModelError::FailedInput {
                text: encoder.tokenizer().decode(&ids, false).ok(),
                path,
                ids,
                source,
            },
            other => other,
        })
    }
}
