//! The inference core: BERT-family models on ONNX Runtime.
//!
//! A model is a folder (`model.onnx`, `tokenizer.json`, `config.json` with `id2label`, as an
//! optimum or transformers export writes it). Attacks query the same model many times with
//! inputs that differ in a word or two, and often with inputs seen before, so three things
//! matter more than anything else: batches padded only to their own longest row (rows are
//! sorted by length first), a cache keyed by the exact token ids so no input is paid for
//! twice, and query counts that attacks can report honestly.
//!
//! The parts, one per stage, in the manner of a tokenizer pipeline: [`folder`] reads and
//! checks the folder and decides its [`ModelKind`] once; [`tokenize`] turns text into ids;
//! `encoder` owns the sessions, batching, padding, cache and query counts for any `head`
//! (label logits, masked-LM, embedding input). The models attacks hold ([`Classifier`],
//! [`fill_mask::MaskedLm`], [`embed::EmbeddingModel`], [`coref::CorefModel`]) put a tokenizer or
//! a span template in front of one encoder, and attacks see them through narrow traits such as
//! [`TextModel`].

pub mod cache;
pub mod classifier;
pub mod coref;
pub mod embed;
pub(crate) mod encoder;
pub mod fill_mask;
pub mod folder;
pub(crate) mod head;
pub mod runtime;
pub mod sentence;
pub mod session;
pub mod tokenize;

pub(crate) use cache::CacheEntry;
pub use cache::PredictionCache;
pub use classifier::Classifier;
pub use folder::*;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use self::runtime::RuntimeError;
use crate::model::tokenize::{Encoded, TextEncoder, TokenIds, TokenizeError, WordMarker};

/// The ONNX graph in a model folder.
pub const MODEL_FILE: &str = "model.onnx";
/// The Hugging Face tokenizer in a model folder.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// The transformers config in a model folder (`id2label`, `model_type`, position limit).
pub const CONFIG_FILE: &str = "config.json";
/// robust's own optional manifest in a model folder (`name`, `labels`, `max_length`, `kind`),
/// whose keys win over `config.json`'s.
pub const MANIFEST_FILE: &str = "robust.toml";

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The folder lacks a file every model needs (`model.onnx`, `tokenizer.json`) or, for a
    /// classifier without labels in `robust.toml`, `config.json`.
    #[error("model folder {dir} has no {file}")]
    MissingFile {
        /// The model folder.
        dir: PathBuf,
        /// The missing file's name.
        file: &'static str,
    },
    /// A file the folder must have is there but is not a regular file (a device, a FIFO, a
    /// folder; symlinks followed).
    #[error("{path} is not a regular file (symlinks followed)")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A file of the folder could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file of the folder is malformed or does not belong with the others (labels,
    /// tokenizer family, special tokens, vocabulary size).
    #[error("{path} is not valid: {message}")]
    BadConfig {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The folder holds another kind of model than the command needs.
    #[error("model {dir} is a {found}; this command needs a {needed}")]
    WrongKind {
        /// The model folder.
        dir: PathBuf,
        /// The kind found, in words ([`ModelKind::as_str`]).
        found: &'static str,
        /// The kind needed, in words.
        needed: &'static str,
    },
    /// The graph's inputs or outputs are not what this kind of model needs.
    #[error("model {path} does not fit a {kind}: {message}")]
    Incompatible {
        /// The graph file.
        path: PathBuf,
        /// The kind it was loaded as, in words ([`ModelKind::as_str`]).
        kind: &'static str,
        /// Which input or output does not fit, and how.
        message: String,
    },
    /// ONNX Runtime could not be loaded.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The tokenizer could not be loaded or failed on an input.
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    /// ONNX Runtime failed to build a session or to run a batch.
    #[error("onnx runtime failed on {path}")]
    Session {
        /// The graph file.
        path: PathBuf,
        /// The runtime's error.
        #[source]
        source: ort::Error,
    },
    /// ONNX Runtime refused a batch, and this row fails on its own too.
    #[error(
        "onnx runtime failed on {path} for one input ({} tokens: {})",
        ids.len(),
        text.as_deref().map_or_else(|| format!("ids {ids:?}"), |t| format!("{t:?}"))
    )]
    FailedInput {
        /// The graph file.
        path: PathBuf,
        /// The row's token ids, special tokens included.
        ids: Vec<u32>,
        /// The input, decoded by the model's tokenizer where it could be.
        text: Option<String>,
        /// The runtime's error.
        #[source]
        source: ort::Error,
    },
    /// The graph returned logits of another shape than `[rows, labels]`.
    #[error("model returned logits of shape {shape:?}, expected [{rows}, {labels}]")]
    OutputShape {
        /// The shape returned.
        shape: Vec<i64>,
        /// Rows in the batch.
        rows: usize,
        /// Labels the model declares.
        labels: usize,
    },
}

/// How inference runs: rows per forward pass, threads inside each operator, cache size.
#[derive(Debug, Clone)]
pub struct InferenceOptions {
    /// Rows per forward pass, at most (a dynamically quantized model runs one at a time).
    pub batch_size: usize,
    /// Threads for inference in all: one session spreads them over each operator, worker
    /// sessions share them out ([`worker_split`]). Defaults to the available parallelism.
    pub threads: usize,
    /// Entries kept in the prediction cache; 0 disables it.
    pub cache_capacity: usize,
    /// Cut inputs to this many tokens (including special tokens); `None` uses the model's limit.
    pub max_len: Option<usize>,
    /// `--ort-lib`, when given.
    pub ort_lib: Option<PathBuf>,
    /// Compute the last layer only for `[CLS]` where the graph allows it (`--full-graph` turns
    /// this off); see `classifier::narrowed_graph`.
    pub narrow_tail: bool,
    /// Sessions that run batches side by side, sharing `threads` between them; `None` picks
    /// with [`worker_split`].
    pub workers: Option<usize>,
}

impl Default for InferenceOptions {
    fn default() -> Self {
        Self {
            batch_size: 32,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cache_capacity: 200_000,
            max_len: None,
            ort_lib: None,
            narrow_tail: true,
            workers: None,
        }
    }
}

/// Most sessions [`worker_split`] picks on its own: each holds its own copy of the weights.
pub const MAX_AUTO_WORKERS: usize = 4;

/// Rows of at most this many tokens run on the worker sessions; longer ones on the one session
/// that spreads every thread over each operator.
pub const SHORT_ROW_TOKENS: usize = 64;

/// Short rows one request must have for the worker sessions to be built: below this, building
/// them (a few hundred milliseconds) costs more than they save.
pub const MIN_ROWS_TO_BUILD_WORKERS: usize = 2_000;

/// How `threads` are spent on batches of short rows: `(workers, threads inside each worker's
/// operators)`.
///
/// A classifier's batches are independent, so on a few cores it can be faster to run several
/// whole batches side by side, each on its own threads, than one batch at a time with every
/// thread joining each operator: a BERT layer is dozens of small operators, and each one that
/// is split across threads pays to hand out and gather its pieces. That holds for short rows
/// only. On 2 idle cores (`benches/compare`, medians of 3), two one-thread sessions ran the
/// SST-2 dev shuffle attack (9,567 rows, 25 tokens on average) in 25.2 s of work against
/// 27.6 s for one two-thread session. On GAP rows (up to 256 tokens) they were slower
/// (500-row name-swap attack: 105.6 s against 101.7 s) and held 1.5 GB against 0.86 GB,
/// because each session keeps its own weights (packed for its kernels) and memory arena. So
/// only rows of at most [`SHORT_ROW_TOKENS`] go to the workers, and the worker sessions are
/// built the first time a request has [`MIN_ROWS_TO_BUILD_WORKERS`] such rows and is mostly
/// made of them (`robust eval` over SST-2 dev's 872 rows does not build them: they would add
/// 0.36 s and 210 MiB). Without `--workers` the count is the largest divisor of `threads` up
/// to [`MAX_AUTO_WORKERS`]; every worker gets the same thread count, so a batch's logits do
/// not depend on which worker ran it.
pub fn worker_split(threads: usize, workers: Option<usize>) -> (usize, usize) {
    let threads = threads.max(1);
    let workers = match workers {
        Some(w) => w.clamp(1, threads),
        None => (1..=threads.min(MAX_AUTO_WORKERS))
            .rev()
            .find(|w| threads.is_multiple_of(*w))
            .unwrap_or(1),
    };
    (workers, (threads / workers).max(1))
}

/// Counters that attacks report: how many rows were asked for, how many the cache answered,
/// and how many the model actually ran.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueryStats {
    /// Rows asked for, cached or not.
    pub requests: u64,
    /// Rows answered from the cache (or repeated within one request).
    pub cache_hits: u64,
    /// Rows the model ran: the query count an attack pays.
    pub model_queries: u64,
    /// Forward passes.
    pub batches: u64,
    /// Inputs cut to the model's maximum length.
    pub truncated: u64,
    /// Token positions computed, padding included, and of those the real ones.
    pub padded_tokens: u64,
    /// Of `padded_tokens`, the real (non-padding) positions.
    pub real_tokens: u64,
}

impl QueryStats {
    /// The work done since `earlier`, a snapshot of the same counters taken before.
    pub fn since(&self, earlier: &QueryStats) -> QueryStats {
        QueryStats {
            requests: self.requests - earlier.requests,
            cache_hits: self.cache_hits - earlier.cache_hits,
            model_queries: self.model_queries - earlier.model_queries,
            batches: self.batches - earlier.batches,
            truncated: self.truncated - earlier.truncated,
            padded_tokens: self.padded_tokens - earlier.padded_tokens,
            real_tokens: self.real_tokens - earlier.real_tokens,
        }
    }

    /// Add another count's work to this one (the parts of an attack run on several machines).
    pub fn add(&mut self, other: &QueryStats) {
        self.requests += other.requests;
        self.cache_hits += other.cache_hits;
        self.model_queries += other.model_queries;
        self.batches += other.batches;
        self.truncated += other.truncated;
        self.padded_tokens += other.padded_tokens;
        self.real_tokens += other.real_tokens;
    }
}

/// One row's prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Index of the most probable label (the first on ties).
    pub label: usize,
    /// Softmax of the logits, by label index.
    pub probs: Vec<f32>,
    /// The model's raw logits, by label index (shared with the prediction cache).
    pub logits: Arc<[f32]>,
}

impl Prediction {
    /// The prediction the logits make: softmax probabilities and their argmax.
    pub fn from_logits(logits: Arc<[f32]>) -> Self {
        let probs = softmax(&logits);
        let label = argmax(&probs);
        Self {
            label,
            probs,
            logits,
        }
    }

    /// Probability of the predicted label, in [0, 1].
    pub fn confidence(&self) -> f32 {
        self.probs[self.label]
    }
}

/// Probabilities from logits, computed in f64 after subtracting the largest logit.
pub(crate) fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f64> = logits.iter().map(|&l| f64::from(l - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.iter().map(|&e| (e / sum) as f32).collect()
}

/// Index of the largest value; the first one on ties, so results are deterministic.
pub(crate) fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// What a model folder says about itself.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// The model folder.
    pub dir: PathBuf,
    /// The name reports give the model (`robust.toml`'s `name`, else the folder's name).
    pub name: String,
    /// Label names by index (`robust.toml`'s `labels`, else `config.json`'s `id2label`).
    pub labels: Vec<String>,
    /// Most tokens per input, special tokens included: the least of the position embeddings'
    /// limit and `tokenizer_config.json`'s and `robust.toml`'s limits, and in a loaded
    /// [`Classifier`]'s info also [`InferenceOptions::max_len`].
    pub max_len: usize,
}

impl ModelInfo {
    /// The folder's `model.onnx`.
    pub fn model_path(&self) -> PathBuf {
        self.dir.join(MODEL_FILE)
    }

    /// sha256 of `model.onnx` (and its external data), for reports that must say exactly
    /// which model they measured.
    pub fn sha256(&self) -> Result<String, ModelError> {
        model_sha256(&self.dir)
    }

    /// Read the folder's `config.json` (and `robust.toml`, whose keys win where both speak).
    pub fn read(dir: &Path) -> Result<Self, ModelError> {
        let Folder {
            name,
            max_len,
            config,
            manifest,
        } = Folder::open(dir, ModelKind::Classifier)?;
        let labels = match manifest.as_ref().and_then(|m| m.labels.clone()) {
            Some(labels) => labels,
            None => config
                .as_ref()
                .map(|c| c.labels(&dir.join(CONFIG_FILE)))
                .transpose()?
                .ok_or_else(|| ModelError::MissingFile {
                    dir: dir.to_path_buf(),
                    file: CONFIG_FILE,
                })?,
        };
        if labels.len() < 2 {
            return Err(ModelError::BadConfig {
                path: dir.join(CONFIG_FILE),
                message: format!(
                    "a classifier needs at least 2 labels, found {}",
                    labels.len()
                ),
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            name,
            labels,
            max_len,
        })
    }

    /// Index of a label given as a name (case-insensitive) or as an index.
    pub fn label_index(&self, label: &str) -> Option<usize> {
        let label = label.trim();
        if let Some(i) = self
            .labels
            .iter()
            .position(|l| l.eq_ignore_ascii_case(label))
        {
            return Some(i);
        }
        label
            .parse::<usize>()
            .ok()
            .filter(|&i| i < self.labels.len())
    }
}

/// One model input: a text, or a sentence pair (premise and hypothesis, question and
/// passage) that the tokenizer joins with its own separators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input<'a> {
    /// The text, or the first segment of a pair.
    pub text: &'a str,
    /// The second segment, for a sentence pair.
    pub pair: Option<&'a str>,
}

impl<'a> Input<'a> {
    /// A text (`pair` `None`) or a sentence pair.
    pub fn new(text: &'a str, pair: Option<&'a str>) -> Self {
        Self { text, pair }
    }
}

/// Called with (rows done, rows to do) after each forward pass.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

/// What an attack needs of a model that labels texts: its labels, predictions for a batch of
/// texts, and the count of model work done so far.
///
/// The attack runner and [`crate::prop::Check`] take any `TextModel`, so they are tested
/// against small fakes as well as against the ONNX [`Classifier`] that implements it for real.
pub trait TextModel {
    /// Label names, by index.
    fn labels(&self) -> &[String];
    /// One prediction per text, in order; `progress` is told (texts done, texts in all).
    fn predict_with_progress(
        &mut self,
        texts: &[&str],
        progress: Progress,
    ) -> Result<Vec<Prediction>, ModelError>;
    /// One prediction per input, texts and sentence pairs alike.
    fn predict_inputs(
        &mut self,
        inputs: &[Input],
        progress: Progress,
    ) -> Result<Vec<Prediction>, ModelError>;
    /// Model work so far (rows run, cache hits, truncations).
    fn stats(&self) -> QueryStats;

    /// One prediction per text, in order, with no progress reports.
    fn predict(&mut self, texts: &[&str]) -> Result<Vec<Prediction>, ModelError> {
        self.predict_with_progress(texts, &mut |_, _| {})
    }
}

#[cfg(test)]
mod tests {
    /// Issue 16: two labels of the same name made every corpus label of that name mean the
    /// first, silently.
    #[test]
    fn duplicate_label_names_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        for f in [MODEL_FILE, TOKENIZER_FILE] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            r#"{"id2label": {"0": "negative", "1": "Negative"}}"#,
        )
        .unwrap();
        let err = ModelInfo::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("names \"Negative\" twice"), "{err}");
    }

    use super::*;

    #[test]
    fn worker_split_shares_threads_evenly() {
        // Automatic: the largest divisor of the threads up to MAX_AUTO_WORKERS.
        assert_eq!(worker_split(1, None), (1, 1));
        assert_eq!(worker_split(2, None), (2, 1));
        assert_eq!(worker_split(6, None), (3, 2));
        assert_eq!(worker_split(8, None), (4, 2));
        assert_eq!(worker_split(16, None), (4, 4));
        assert_eq!(worker_split(5, None), (1, 5));
        // Asked for: never more workers than threads, never zero of either.
        assert_eq!(worker_split(2, Some(1)), (1, 2));
        assert_eq!(worker_split(2, Some(8)), (2, 1));
        assert_eq!(worker_split(7, Some(2)), (2, 3));
        assert_eq!(worker_split(0, Some(0)), (1, 1));
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let p = softmax(&[1.0, 3.0, -2.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(argmax(&p), 1);
        assert!(p[0] > p[2]);
    }

    #[test]
    fn softmax_survives_huge_logits() {
        let p = softmax(&[1000.0, 0.0]);
        assert!((p[0] - 1.0).abs() < 1e-6 && p[1] >= 0.0);
    }

    #[test]
    fn argmax_takes_first_on_ties() {
        assert_eq!(argmax(&[0.5, 0.5]), 0);
    }

    #[test]
    fn id2label_is_ordered_by_index() {
        let c: HfConfig =
            serde_json::from_str(r#"{"id2label": {"1": "pos", "0": "neg"}}"#).unwrap();
        assert_eq!(c.labels(Path::new("c.json")).unwrap(), vec!["neg", "pos"]);
        let c: HfConfig =
            serde_json::from_str(r#"{"id2label": {"5": "pos", "0": "neg"}}"#).unwrap();
        assert!(c.labels(Path::new("c.json")).is_err());
    }

    /// Issue 15: one long row crashed RoBERTa (`Gather ... idx=128 must be within [-128,127]`)
    /// because positions start after the padding index.
    #[test]
    fn roberta_style_positions_leave_room_for_the_padding_offset() {
        let limit = |json: &str| {
            serde_json::from_str::<HfConfig>(json)
                .unwrap()
                .position_limit()
        };
        assert_eq!(
            limit(r#"{"model_type": "bert", "max_position_embeddings": 128}"#),
            128
        );
        assert_eq!(
            limit(
                r#"{"model_type": "roberta", "max_position_embeddings": 128, "pad_token_id": 1}"#
            ),
            126
        );
        assert_eq!(
            limit(r#"{"model_type": "xlm-roberta", "max_position_embeddings": 514}"#),
            512
        );
        assert_eq!(limit(r#"{}"#), 512);
    }

    #[test]
    fn tokenizer_config_limits_length_unless_it_is_the_no_limit_sentinel() {
        let max = |json: &str| {
            serde_json::from_str::<TokenizerConfig>(json)
                .unwrap()
                .max_length()
        };
        assert_eq!(max(r#"{"model_max_length": 64}"#), Some(64));
        assert_eq!(
            max(r#"{"model_max_length": 1000000000000000019884624838656}"#),
            None
        );
        assert_eq!(max(r#"{}"#), None);
    }
}
