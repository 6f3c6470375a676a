//! The inference core: a BERT-family classifier on ONNX Runtime.
//!
//! A model is a folder (`model.onnx`, `tokenizer.json`, `config.json` with `id2label`, as an
//! optimum or transformers export writes it). Attacks query the same model many times with
//! inputs that differ in a word or two, and often with inputs seen before, so three things
//! matter more than anything else: batches padded only to their own longest row (rows are
//! sorted by length first), a cache keyed by the exact token ids so no input is paid for
//! twice, and query counts that attacks can report honestly.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use ort::session::Session;

use serde::Deserialize;

use crate::runtime::{self, RuntimeError};
use crate::session::{self, padded_feed, session_builder};
use crate::tokenize::{Encoded, TextEncoder, TokenIds, TokenizeError, WordMarker};

pub const MODEL_FILE: &str = "model.onnx";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const CONFIG_FILE: &str = "config.json";
pub const MANIFEST_FILE: &str = "robust.toml";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model folder {dir} has no {file}")]
    MissingFile { dir: PathBuf, file: &'static str },
    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    BadConfig { path: PathBuf, message: String },
    #[error("model {dir} is a {found}; this command needs a {needed}")]
    WrongKind {
        dir: PathBuf,
        found: &'static str,
        needed: &'static str,
    },
    #[error("model {path} does not fit a classifier: {message}")]
    Incompatible { path: PathBuf, message: String },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    #[error("onnx runtime failed on {path}")]
    Session {
        path: PathBuf,
        #[source]
        source: ort::Error,
    },
    #[error(
        "onnx runtime failed on {path} for one input ({} tokens: {})",
        ids.len(),
        text.as_deref().map_or_else(|| format!("ids {ids:?}"), |t| format!("{t:?}"))
    )]
    FailedInput {
        path: PathBuf,
        ids: Vec<u32>,
        /// The input, decoded by the model's tokenizer where it could be.
        text: Option<String>,
        #[source]
        source: ort::Error,
    },
    #[error("model returned logits of shape {shape:?}, expected [{rows}, {labels}]")]
    OutputShape {
        shape: Vec<i64>,
        rows: usize,
        labels: usize,
    },
}

/// How inference runs: rows per forward pass, threads inside each operator, cache size.
#[derive(Debug, Clone)]
pub struct InferenceOptions {
    pub batch_size: usize,
    pub threads: usize,
    /// Entries kept in the prediction cache; 0 disables it.
    pub cache_capacity: usize,
    /// Cut inputs to this many tokens (including special tokens); `None` uses the model's limit.
    pub max_len: Option<usize>,
    /// `--ort-lib`, when given.
    pub ort_lib: Option<PathBuf>,
    /// Compute the last layer only for `[CLS]` where the graph allows it (`--full-graph` turns
    /// this off); see [`narrowed_graph`].
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
    pub real_tokens: u64,
}

impl QueryStats {
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

    fn add(&mut self, other: &QueryStats) {
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
    pub label: usize,
    pub probs: Vec<f32>,
    pub logits: Arc<[f32]>,
}

impl Prediction {
    pub fn from_logits(logits: Arc<[f32]>) -> Self {
        let probs = softmax(&logits);
        let label = argmax(&probs);
        Self {
            label,
            probs,
            logits,
        }
    }

    pub fn confidence(&self) -> f32 {
        self.probs[self.label]
    }
}

pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f64> = logits.iter().map(|&l| f64::from(l - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.iter().map(|&e| (e / sum) as f32).collect()
}

/// Index of the largest value; the first one on ties, so results are deterministic.
pub fn argmax(values: &[f32]) -> usize {
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
    pub dir: PathBuf,
    pub name: String,
    pub labels: Vec<String>,
    pub max_len: usize,
}

impl ModelInfo {
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

/// Names exporters give the external-data file beside `model.onnx`: torch's exporter, and
/// optimum / `onnx.save_model(..., location=...)` as commonly called.
pub const EXTERNAL_DATA_FILES: [&str; 2] = ["model.onnx.data", "model.onnx_data"];

/// sha256 of the folder's `model.onnx` followed by its external data file, if any: a model
/// whose weights change in `model.onnx.data` is another model.
pub fn model_sha256(dir: &Path) -> Result<String, ModelError> {
    let model = dir.join(MODEL_FILE);
    let mut files = vec![model.clone()];
    files.extend(
        EXTERNAL_DATA_FILES
            .iter()
            .map(|f| dir.join(f))
            .filter(|p| p.is_file()),
    );
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    crate::hash::sha256_files(&refs).map_err(|source| ModelError::Read {
        path: model,
        source,
    })
}

/// The name reports give the model in `dir` (`robust.toml`'s `name`, else the folder name),
/// whatever its kind.
pub fn folder_name(dir: &Path) -> Result<String, ModelError> {
    Ok(Folder::open(dir, ModelKind::of_dir(dir)?)?.name)
}

/// Every model folder has a `model.onnx` and a `tokenizer.json`.
fn require_files(dir: &Path) -> Result<(), ModelError> {
    for file in [MODEL_FILE, TOKENIZER_FILE] {
        if !dir.join(file).is_file() {
            return Err(ModelError::MissingFile {
                dir: dir.to_path_buf(),
                file,
            });
        }
    }
    Ok(())
}

/// What every model folder has, whatever its kind: the files, the kind check, and the name and
/// length limit from `robust.toml` / `config.json`.
pub(crate) struct Folder {
    pub name: String,
    pub max_len: usize,
    config: Option<HfConfig>,
    manifest: Option<Manifest>,
}

impl Folder {
    pub(crate) fn open(dir: &Path, kind: ModelKind) -> Result<Self, ModelError> {
        require_files(dir)?;
        let config = read_config(dir)?;
        let manifest = read_manifest(dir)?;
        kind.require(
            dir,
            ModelKind::from_files(manifest.as_ref(), config.as_ref()),
        )?;
        let position_limit = config.as_ref().map_or(512, HfConfig::position_limit);
        let tokenizer_limit = read_tokenizer_config(dir)?.and_then(|t| t.max_length());
        let max_len = manifest
            .as_ref()
            .and_then(|m| m.max_length)
            .into_iter()
            .chain(tokenizer_limit)
            .fold(position_limit, usize::min);
        let name = manifest
            .as_ref()
            .and_then(|m| m.name.clone())
            .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "model".to_string());
        Ok(Self {
            name,
            max_len,
            config,
            manifest,
        })
    }
}

#[derive(Deserialize)]
struct HfConfig {
    id2label: Option<HashMap<String, String>>,
    architectures: Option<Vec<String>>,
    max_position_embeddings: Option<usize>,
    model_type: Option<String>,
    pad_token_id: Option<usize>,
    bos_token_id: Option<usize>,
    eos_token_id: Option<usize>,
    vocab_size: Option<usize>,
}

/// The tokenizer family each model type is trained with, as its marker shows it: `##`
/// continuations (WordPiece), `▁` word starts (SentencePiece), `Ġ` word starts (byte-level
/// BPE). Types not listed are not checked.
fn expected_marker(model_type: &str) -> Option<WordMarker> {
    let wordpiece = [
        "bert",
        "distilbert",
        "electra",
        "mobilebert",
        "squeezebert",
        "convbert",
    ];
    let sentencepiece = ["xlm-roberta", "albert", "deberta-v2", "camembert", "xlnet"];
    let byte_level = ["roberta", "deberta", "longformer", "data2vec-text"];
    if wordpiece.contains(&model_type) {
        Some(WordMarker::Continuation("##".into()))
    } else if sentencepiece.contains(&model_type) {
        Some(WordMarker::Start('\u{2581}'))
    } else if byte_level.contains(&model_type) {
        Some(WordMarker::Start('\u{0120}'))
    } else {
        None
    }
}

fn marker_family(marker: &WordMarker) -> &'static str {
    match marker {
        WordMarker::Continuation(_) => "WordPiece",
        WordMarker::Start('\u{0120}') => "byte-level BPE",
        WordMarker::Start(_) => "SentencePiece",
        WordMarker::None => "unknown",
    }
}

/// Refuse, at load time, a `tokenizer.json` that cannot belong to the model beside it: one of
/// another family than `config.json`'s `model_type`, one without the special tokens that
/// `config.json` (`pad_token_id`, ...) or `tokenizer_config.json` (`cls_token`, ...) name, or
/// one with ids past the embedding table (`vocab_size`). Each would otherwise give wrong
/// predictions or crash on the first batch, far from the cause.
pub(crate) fn check_tokenizer_fits(dir: &Path, encoder: &TextEncoder) -> Result<(), ModelError> {
    let tokenizer_path = dir.join(TOKENIZER_FILE);
    let bad = |message: String| ModelError::BadConfig {
        path: tokenizer_path.clone(),
        message,
    };
    let vocab = encoder.vocab_size();
    if let Some(config) = read_config(dir)? {
        if let Some(model_type) = config.model_type.as_deref()
            && let Some(expected) = expected_marker(model_type)
        {
            let found = encoder.word_marker();
            let same = match (&expected, &found) {
                (WordMarker::Continuation(_), WordMarker::Continuation(_)) => true,
                (a, b) => a == b,
            };
            if !same {
                return Err(bad(format!(
                    "a {} tokenizer, but config.json says the model is {model_type}, whose \
                     tokenizer is {}; the folder mixes files of two models",
                    marker_family(&found),
                    marker_family(&expected)
                )));
            }
        }
        for (key, id) in [
            ("pad_token_id", config.pad_token_id),
            ("bos_token_id", config.bos_token_id),
            ("eos_token_id", config.eos_token_id),
        ] {
            if let Some(id) = id
                && encoder.id_to_token(id as u32).is_none()
            {
                return Err(bad(format!(
                    "config.json names {key} {id}, which the tokenizer's vocabulary \
                     ({vocab} entries) does not have"
                )));
            }
        }
        if let Some(rows) = config.vocab_size
            && vocab > rows
        {
            return Err(bad(format!(
                "the tokenizer has {vocab} entries but config.json's vocab_size is {rows}: ids \
                 past the embedding table would crash the model"
            )));
        }
    }
    if let Some(named) = read_optional(dir.join(TOKENIZER_CONFIG_FILE), |t| {
        serde_json::from_str::<serde_json::Value>(t).map_err(|e| e.to_string())
    })? {
        for key in [
            "cls_token",
            "sep_token",
            "pad_token",
            "unk_token",
            "mask_token",
            "bos_token",
            "eos_token",
        ] {
            // A token is written as a string or as an AddedToken object with `content`.
            let token = match &named[key] {
                serde_json::Value::String(t) => Some(t.as_str()),
                serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()),
                _ => None,
            };
            if let Some(token) = token
                && encoder.token_to_id(token).is_none()
            {
                return Err(bad(format!(
                    "tokenizer_config.json names {key} {token:?}, which the vocabulary does not have"
                )));
            }
        }
    }
    Ok(())
}

/// Model types whose position ids start after the padding index (fairseq's convention, kept
/// by transformers): position `i` is embedding row `pad_token_id + 1 + i`, so only
/// `max_position_embeddings - pad_token_id - 1` tokens fit.
const PADDING_OFFSET_POSITIONS: [&str; 8] = [
    "roberta",
    "xlm-roberta",
    "xlm-roberta-xl",
    "camembert",
    "longformer",
    "data2vec-text",
    "ibert",
    "mpnet",
];

impl HfConfig {
    /// Tokens the position embeddings can take: `max_position_embeddings`, less the padding
    /// offset for RoBERTa-style models (512 where the config does not say).
    fn position_limit(&self) -> usize {
        let positions = self.max_position_embeddings.unwrap_or(512);
        let offset_by_padding = self
            .model_type
            .as_deref()
            .is_some_and(|t| PADDING_OFFSET_POSITIONS.contains(&t));
        if offset_by_padding {
            positions.saturating_sub(self.pad_token_id.unwrap_or(1) + 1)
        } else {
            positions
        }
    }

    fn labels(&self, path: &Path) -> Result<Vec<String>, ModelError> {
        let bad = |message: String| ModelError::BadConfig {
            path: path.to_path_buf(),
            message,
        };
        let map = self
            .id2label
            .as_ref()
            .ok_or_else(|| bad("no id2label: the folder must name its labels".into()))?;
        let mut labels = vec![None; map.len()];
        for (id, name) in map {
            let i: usize = id
                .parse()
                .map_err(|_| bad(format!("id2label key {id:?} is not an index")))?;
            let slot = labels.get_mut(i).ok_or_else(|| {
                bad(format!(
                    "id2label index {i} is out of range 0..{}",
                    map.len()
                ))
            })?;
            *slot = Some(name.clone());
        }
        let labels: Vec<String> = labels.into_iter().map(|l| l.unwrap_or_default()).collect();
        for (i, l) in labels.iter().enumerate() {
            if labels[..i].iter().any(|m| m.eq_ignore_ascii_case(l)) {
                // Labels are matched by name (case-insensitive): two equal names would make
                // every corpus label of that name mean the first.
                return Err(bad(format!(
                    "id2label names {l:?} twice; every label needs its own name"
                )));
            }
        }
        Ok(labels)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    name: Option<String>,
    labels: Option<Vec<String>>,
    max_length: Option<usize>,
    kind: Option<ModelKind>,
}

/// What a model folder holds: a sequence classifier (logits `[batch, labels]`) or a masked
/// language model (logits `[batch, sequence, vocab]`). Commands that need one refuse the other
/// before loading anything, with a message that says which is which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    Classifier,
    FillMask,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Classifier => "classifier",
            ModelKind::FillMask => "fill-mask (masked-LM) model",
        }
    }

    /// The kind of the model folder `dir`, read from its files without loading the model, so
    /// that a plan can pick the attack's shape before anything runs.
    pub fn of_dir(dir: &Path) -> Result<Self, ModelError> {
        require_files(dir)?;
        let config = read_config(dir)?;
        let manifest = read_manifest(dir)?;
        Ok(Self::from_files(manifest.as_ref(), config.as_ref()))
    }

    /// The folder's kind: `kind` in `robust.toml` if set, else from `config.json`'s
    /// `architectures` (`…ForMaskedLM` is fill-mask), else a classifier.
    fn from_files(manifest: Option<&Manifest>, config: Option<&HfConfig>) -> Self {
        if let Some(kind) = manifest.and_then(|m| m.kind) {
            return kind;
        }
        let masked = config
            .and_then(|c| c.architectures.as_ref())
            .is_some_and(|a| a.iter().any(|n| n.ends_with("ForMaskedLM")));
        if masked {
            ModelKind::FillMask
        } else {
            ModelKind::Classifier
        }
    }

    /// An error unless `found`, the kind of the folder `dir`, is this kind.
    fn require(self, dir: &Path, found: ModelKind) -> Result<(), ModelError> {
        if found == self {
            Ok(())
        } else {
            Err(ModelError::WrongKind {
                dir: dir.to_path_buf(),
                found: found.as_str(),
                needed: self.as_str(),
            })
        }
    }
}

/// Read an optional file of the model folder with `parse`; absent is `None`, unreadable or
/// unparsable is an error naming the file.
fn read_optional<T>(
    path: PathBuf,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, ModelError> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Read {
        path: path.clone(),
        source,
    })?;
    parse(&text)
        .map(Some)
        .map_err(|message| ModelError::BadConfig { path, message })
}

fn read_config(dir: &Path) -> Result<Option<HfConfig>, ModelError> {
    read_optional(dir.join(CONFIG_FILE), |t| {
        serde_json::from_str(t).map_err(|e| e.to_string())
    })
}

/// The part of `tokenizer_config.json` that limits input length.
#[derive(Deserialize)]
struct TokenizerConfig {
    model_max_length: Option<f64>,
}

impl TokenizerConfig {
    /// transformers writes `int(1e30)` when a tokenizer has no limit of its own.
    fn max_length(&self) -> Option<usize> {
        self.model_max_length
            .filter(|n| (1.0..1e9).contains(n))
            .map(|n| n as usize)
    }
}

pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";

fn read_tokenizer_config(dir: &Path) -> Result<Option<TokenizerConfig>, ModelError> {
    read_optional(dir.join(TOKENIZER_CONFIG_FILE), |t| {
        serde_json::from_str(t).map_err(|e| e.to_string())
    })
}

fn read_manifest(dir: &Path) -> Result<Option<Manifest>, ModelError> {
    read_optional(dir.join(MANIFEST_FILE), |t| {
        toml::from_str(t).map_err(|e| e.to_string())
    })
}

/// What every loaded model answers, whatever its head: the folder it came from, its name and
/// the model work it has done. The classifier, the coreference model, the fill-mask model and
/// the embedding-input graph implement it, over one session module ([`crate::session`]) that
/// builds, checks and feeds all of them; the engine names any of them in reports through it.
pub trait LoadedModel {
    /// The model folder.
    fn dir(&self) -> &Path;
    /// The name reports give the model (the folder's name unless its manifest says otherwise).
    fn name(&self) -> &str;
    /// Model work so far: rows run, cache hits, padding.
    fn work(&self) -> QueryStats;
    /// sha256 of `model.onnx` and its external data: what reports name the model by.
    fn sha256(&self) -> Result<String, ModelError> {
        model_sha256(self.dir())
    }
}

impl LoadedModel for Classifier {
    fn dir(&self) -> &Path {
        &self.info.dir
    }
    fn name(&self) -> &str {
        &self.info.name
    }
    fn work(&self) -> QueryStats {
        self.stats
    }
}

/// One cache entry: an exact model input and its logits.
pub type CacheEntry = (TokenIds, Arc<[f32]>);

/// A bounded map from exact model input to logits. Oldest entries go first when it is full;
/// attacks revisit recent inputs far more often than old ones.
///
/// What the cache holds is a function of the order of insertions alone (lookups do not
/// reorder it), so replaying a [journal](PredictionCache::start_journal) of insertions
/// rebuilds it exactly: a resumed trigger search relies on that to pay for, and count, the
/// same queries as one that was never stopped.
#[derive(Debug)]
pub struct PredictionCache {
    // The key is shared by the map and the eviction order: one allocation per entry, not two
    // (a cache of 200,000 entries is a large share of a long run's memory).
    map: HashMap<Arc<TokenIds>, Arc<[f32]>>,
    order: VecDeque<Arc<TokenIds>>,
    capacity: usize,
    journal: Option<Vec<CacheEntry>>,
}

impl PredictionCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            journal: None,
        }
    }

    /// Record every insertion from now on (see [`PredictionCache::take_journal`]).
    pub fn start_journal(&mut self) {
        self.journal = Some(Vec::new());
    }

    /// The insertions recorded since the journal started or was last taken, in order; the
    /// journal keeps recording.
    pub fn take_journal(&mut self) -> Vec<CacheEntry> {
        self.journal
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    pub fn stop_journal(&mut self) {
        self.journal = None;
    }

    pub fn get(&self, key: &TokenIds) -> Option<&Arc<[f32]>> {
        self.map.get(key)
    }

    pub fn insert(&mut self, key: TokenIds, logits: Arc<[f32]>) {
        if self.capacity == 0 || self.map.contains_key(&key) {
            return;
        }
        while self.map.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        if let Some(journal) = self.journal.as_mut() {
            journal.push((key.clone(), logits.clone()));
        }
        let key = Arc::new(key);
        self.order.push_back(key.clone());
        self.map.insert(key, logits);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }
}

/// One model input: a text, or a sentence pair (premise and hypothesis, question and
/// passage) that the tokenizer joins with its own separators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input<'a> {
    pub text: &'a str,
    pub pair: Option<&'a str>,
}

impl<'a> Input<'a> {
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

    fn predict(&mut self, texts: &[&str]) -> Result<Vec<Prediction>, ModelError> {
        self.predict_with_progress(texts, &mut |_, _| {})
    }
}

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

pub struct Classifier {
    info: ModelInfo,
    /// Runs long rows, and short ones when there is one worker.
    session: Session,
    /// Sessions that run batches of short rows side by side ([`worker_split`]), all built
    /// alike; empty until the first batch of short rows when there are several workers.
    workers: Vec<Session>,
    encoder: TextEncoder,
    uses_token_types: bool,
    /// Dynamically quantized: every forward pass is one row ([`Classifier::load`]).
    one_row_at_a_time: bool,
    options: InferenceOptions,
    cache: PredictionCache,
    stats: QueryStats,
}

impl Classifier {
    pub fn load(dir: &Path, mut options: InferenceOptions) -> Result<Self, ModelError> {
        let mut info = ModelInfo::read(dir)?;
        // Dynamic int8 quantization (onnxruntime's `quantize_dynamic`) scales activations by
        // the range of the whole tensor, so a row's logits depend on the rows and the padding
        // it shares a batch with (seen: 1.7e-3 on the int8 fixture, enough to flip a close
        // call). Such a model runs one row at a time, whole graph: its answers then depend on
        // the row alone, as the cache, and reproducibility across --batch-size, assume.
        let path = info.model_path();
        // Read once, for this check and for the narrowed graph below; a file that cannot be
        // read or parsed here is left to ONNX Runtime to report on.
        let onnx = crate::onnx::OnnxModel::read(&path).ok();
        let one_row_at_a_time = onnx
            .as_ref()
            .and_then(|m| m.uses_op("DynamicQuantizeLinear").ok())
            .unwrap_or(false);
        if one_row_at_a_time {
            tracing::info!(
                "{}: dynamically quantized; running one row at a time so that answers do not \
                 depend on batching",
                dir.display()
            );
            options.batch_size = 1;
            options.narrow_tail = false;
            options.workers = Some(1);
        }
        if let Some(max_len) = options.max_len {
            info.max_len = max_len.min(info.max_len);
        }
        let env = runtime::environment(options.ort_lib.as_deref())?;
        let graph = onnx
            .filter(|_| options.narrow_tail)
            .and_then(|onnx| narrowed_graph(&onnx));
        let session = build_sessions(env, &path, graph.as_deref(), 1, options.threads)
            .map_err(|source| ModelError::Session {
                path: path.clone(),
                source,
            })?
            .remove(0);
        let uses_token_types = check_signature(&session, &path, info.labels.len())?;
        let encoder = TextEncoder::from_file(&dir.join(TOKENIZER_FILE), info.max_len)?;
        check_tokenizer_fits(dir, &encoder)?;
        let cache = PredictionCache::new(options.cache_capacity);
        Ok(Self {
            info,
            session,
            workers: Vec::new(),
            encoder,
            uses_token_types,
            one_row_at_a_time,
            options,
            cache,
            stats: QueryStats::default(),
        })
    }

    /// The worker sessions, built (side by side) from the model file the first time they are
    /// needed.
    fn build_workers(&self, workers: usize) -> Result<Vec<Session>, ModelError> {
        let env = runtime::environment(self.options.ort_lib.as_deref())?;
        let path = self.info.model_path();
        let (_, threads) = worker_split(self.options.threads, Some(workers));
        let graph = self
            .options
            .narrow_tail
            .then(|| crate::onnx::OnnxModel::read(&path).ok())
            .flatten()
            .and_then(|onnx| narrowed_graph(&onnx));
        // (Read again rather than kept: the narrowed graph is as large as the model, and most
        // runs never build workers.)
        build_sessions(env, &path, graph.as_deref(), workers, threads).map_err(|source| {
            ModelError::Session {
                path: path.clone(),
                source,
            }
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn labels(&self) -> &[String] {
        &self.info.labels
    }

    pub fn encoder(&self) -> &TextEncoder {
        &self.encoder
    }

    pub fn options(&self) -> &InferenceOptions {
        &self.options
    }

    pub fn stats(&self) -> QueryStats {
        self.stats
    }

    pub fn cache(&self) -> &PredictionCache {
        &self.cache
    }

    pub fn clear_cache(&mut self) {
        self.cache.clear();
    }

    pub fn cache_mut(&mut self) -> &mut PredictionCache {
        &mut self.cache
    }

    /// Count work done by an earlier process as done here: a resumed search adds what its
    /// checkpoint says the interrupted one had spent, so its totals equal an unbroken run's.
    pub fn add_stats(&mut self, earlier: &QueryStats) {
        self.stats.add(earlier);
    }

    pub fn set_batch_size(&mut self, batch_size: usize) {
        if !self.one_row_at_a_time {
            self.options.batch_size = batch_size.max(1);
        }
    }

    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Encoded>, ModelError> {
        Ok(self.encoder.encode_batch(texts)?)
    }

    pub fn predict(&mut self, texts: &[&str]) -> Result<Vec<Prediction>, ModelError> {
        self.predict_with_progress(texts, &mut |_, _| {})
    }

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

    fn predict_encoded(
        &mut self,
        encoded: Vec<Encoded>,
        progress: Progress,
    ) -> Result<Vec<Prediction>, ModelError> {
        self.stats.truncated += encoded.iter().filter(|e| e.truncated).count() as u64;
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
        self.stats.requests += inputs.len() as u64;
        let mut out: Vec<Option<Arc<[f32]>>> = vec![None; inputs.len()];
        // Rows the model must run, each once, with every position that asked for it.
        let mut pending: HashMap<&TokenIds, usize> = HashMap::new();
        let mut todo: Vec<(&TokenIds, Vec<usize>)> = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            if let Some(hit) = self.cache.get(input) {
                out[i] = Some(hit.clone());
                self.stats.cache_hits += 1;
            } else if let Some(&slot) = pending.get(input) {
                todo[slot].1.push(i);
                self.stats.cache_hits += 1;
            } else {
                pending.insert(input, todo.len());
                todo.push((input, vec![i]));
            }
        }
        // Stable sort: equal lengths keep request order, so runs are deterministic.
        todo.sort_by_key(|(input, _)| input.len());
        // Sorted by length, so the short rows come first: they go to the workers, split so
        // that every worker gets a share; the rest run on the all-threads session.
        // The workers are built for a large request of mostly short rows; they are used for
        // any later request that is mostly short rows. Otherwise every row runs on the
        // all-threads session: building the workers costs more than they save.
        let (workers, _) = worker_split(self.options.threads, self.options.workers);
        let mut short = todo.partition_point(|(input, _)| input.len() <= SHORT_ROW_TOKENS);
        let worth_building = short >= MIN_ROWS_TO_BUILD_WORKERS;
        if workers == 1 || 2 * short < todo.len() || (self.workers.is_empty() && !worth_building) {
            short = 0;
        }
        if short > 0 && self.workers.is_empty() {
            self.workers = self.build_workers(workers)?;
        }
        let batch = self.options.batch_size.max(1);
        let size = batch.min(short.div_ceil(self.workers.len().max(1))).max(1);
        let chunks: Vec<&[(&TokenIds, Vec<usize>)]> = todo[..short]
            .chunks(size)
            .chain(todo[short..].chunks(batch))
            .collect();
        let labels = self.info.labels.len();
        let path = self.info.model_path();
        let short_chunks = short.div_ceil(size);
        let total = todo.len();
        let mut batches = Vec::with_capacity(chunks.len());
        let pool = if self.workers.is_empty() {
            std::slice::from_mut(&mut self.session)
        } else {
            &mut self.workers[..]
        };
        let encoder = &self.encoder;
        let with_text = |e: ModelError| match e {
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
        };
        batches.extend(
            run_batches(
                pool,
                &chunks[..short_chunks],
                self.uses_token_types,
                labels,
                &path,
                &mut |done, _| progress(done, total),
            )
            .map_err(with_text)?,
        );
        batches.extend(
            run_batches(
                std::slice::from_mut(&mut self.session),
                &chunks[short_chunks..],
                self.uses_token_types,
                labels,
                &path,
                &mut |done, _| progress(short + done, total),
            )
            .map_err(with_text)?,
        );
        // Answers go into the cache in request order, whichever worker finished first, so the
        // cache (and what it evicts) is the same on every run.
        for (chunk, (logits, stats)) in chunks.iter().zip(batches) {
            self.stats.add(&stats);
            for ((input, positions), row) in chunk.iter().zip(logits) {
                for &p in positions {
                    out[p] = Some(row.clone());
                }
                self.cache.insert((*input).clone(), row);
            }
        }
        Ok(out
            .into_iter()
            .map(|o| o.expect("every row is answered by the cache or a batch"))
            .collect())
    }
}

type BatchOutput = (Vec<Arc<[f32]>>, QueryStats);

/// Run every chunk as one batch, on as many workers as there are sessions, and return the
/// outputs in chunk order. Workers take the next chunk as they finish one; the first error
/// stops them all.
fn run_batches(
    sessions: &mut [Session],
    chunks: &[&[(&TokenIds, Vec<usize>)]],
    uses_token_types: bool,
    labels: usize,
    path: &Path,
    progress: Progress,
) -> Result<Vec<BatchOutput>, ModelError> {
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let rows = |i: usize| -> Vec<&TokenIds> { chunks[i].iter().map(|(input, _)| *input).collect() };
    let mut out: Vec<Option<BatchOutput>> = (0..chunks.len()).map(|_| None).collect();
    let mut done = 0;
    if chunks.is_empty() {
        return Ok(Vec::new());
    }
    if sessions.len() == 1 || chunks.len() == 1 {
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = Some(run_batch_or_name_the_row(
                &mut sessions[0],
                &rows(i),
                uses_token_types,
                labels,
                path,
            )?);
            done += chunks[i].len();
            progress(done, total);
        }
    } else {
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|scope| -> Result<(), ModelError> {
            for session in sessions.iter_mut() {
                let (tx, next, failed, rows) = (tx.clone(), &next, &failed, &rows);
                scope.spawn(move || {
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= chunks.len() {
                            break;
                        }
                        let result = run_batch_or_name_the_row(
                            session,
                            &rows(i),
                            uses_token_types,
                            labels,
                            path,
                        );
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        if tx.send((i, result)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            for (i, result) in rx {
                match result {
                    Ok(batch) => out[i] = Some(batch),
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
                done += chunks[i].len();
                progress(done, total);
            }
            Ok(())
        })?;
    }
    Ok(out
        .into_iter()
        .map(|o| o.expect("every chunk ran"))
        .collect())
}

/// One forward pass over `rows`: their logits, and what the pass cost.
fn run_batch(
    session: &mut Session,
    rows: &[&TokenIds],
    uses_token_types: bool,
    labels: usize,
    path: &Path,
) -> Result<BatchOutput, ModelError> {
    let n = rows.len();
    let mut stats = QueryStats::default();
    let (feed, _) = padded_feed(rows, uses_token_types, &mut stats, path)?;
    let logits = session::run_logits(session, feed, path, |dims, data| {
        if dims != [n as i64, labels as i64] {
            return Err(ModelError::OutputShape {
                shape: dims.to_vec(),
                rows: n,
                labels,
            });
        }
        Ok(data.chunks(labels).map(Arc::from).collect())
    })?;
    Ok((logits, stats))
}

/// [`run_batch`], and where the runtime refuses the batch, the first row that fails on its
/// own: the error then names the input rather than a batch of them (its text is filled in by
/// [`Classifier::logits`], which has the tokenizer).
fn run_batch_or_name_the_row(
    session: &mut Session,
    rows: &[&TokenIds],
    uses_token_types: bool,
    labels: usize,
    path: &Path,
) -> Result<BatchOutput, ModelError> {
    let batch_error = match run_batch(session, rows, uses_token_types, labels, path) {
        Err(ModelError::Session { source, .. }) => source,
        other => return other,
    };
    let alone = |row: &TokenIds, session: &mut Session| -> Option<ort::Error> {
        let mut stats = QueryStats::default();
        let (feed, _) = padded_feed(&[row], uses_token_types, &mut stats, path).ok()?;
        session.run(feed).err()
    };
    let failed = |row: &TokenIds, source| ModelError::FailedInput {
        path: path.to_path_buf(),
        ids: row.ids.to_vec(),
        text: None,
        source,
    };
    if let [row] = rows {
        return Err(failed(row, batch_error));
    }
    match rows
        .iter()
        .find_map(|row| alone(row, session).map(|e| (*row, e)))
    {
        Some((row, source)) => Err(failed(row, source)),
        // Every row runs alone: report the batch as it failed.
        None => Err(ModelError::Session {
            path: path.to_path_buf(),
            source: batch_error,
        }),
    }
}

/// `workers` identical sessions, each with `threads` threads inside its operators, of `graph`
/// (the narrowed graph, [`narrowed_graph`]) where given, else of the file at `path`.
fn build_sessions(
    env: &ort::environment::Environment,
    path: &Path,
    graph: Option<&[u8]>,
    workers: usize,
    threads: usize,
) -> ort::Result<Vec<Session>> {
    let build = || match graph {
        Some(bytes) => session_builder(env, threads)?.commit_from_memory(bytes),
        None => session_builder(env, threads)?.commit_from_file(path),
    };
    // Each session optimises the graph and packs the weights on its own, a few hundred
    // milliseconds for the default model: side by side, they cost one.
    std::thread::scope(|scope| {
        let others: Vec<_> = (1..workers.max(1)).map(|_| scope.spawn(build)).collect();
        let mut sessions = vec![build()?];
        for handle in others {
            let session = handle
                .join()
                .map_err(|_| ort::Error::new("building a session panicked"))??;
            sessions.push(session);
        }
        Ok(sessions)
    })
}

/// The graph with its last layer computed only for `[CLS]`, the one position a classifier
/// reads: an eighth fewer FLOPs per token on a 6-layer BERT, the same logits
/// ([`crate::onnx::OnnxModel::with_cls_only_tail`]). `None` when the graph does not have that
/// shape (or cannot be parsed here; ONNX Runtime then reports on the file itself).
pub(crate) fn narrowed_graph(onnx: &crate::onnx::OnnxModel) -> Option<Vec<u8>> {
    match onnx.with_cls_only_tail() {
        Ok(Some((bytes, nodes))) => {
            tracing::debug!(nodes, "last layer narrowed to [CLS]");
            Some(bytes)
        }
        Ok(None) => {
            tracing::debug!("graph has no [CLS]-only tail to narrow; running it unchanged");
            None
        }
        Err(e) => {
            tracing::debug!(error = %e, "graph not narrowed");
            None
        }
    }
}

/// Check that the graph takes the token-id inputs ([`session::check_inputs`]) and gives float
/// `logits` of rank 2 with one column per label. Returns whether `token_type_ids` is an input.
fn check_signature(session: &Session, path: &Path, labels: usize) -> Result<bool, ModelError> {
    let uses_token_types = session::check_inputs(session, path, &[])?;
    let bad = |message: String| ModelError::Incompatible {
        path: path.to_path_buf(),
        message,
    };
    let shape = session::logits_shape(session, path)?;
    if shape.len() == 3 {
        return Err(bad(
            "logits are [batch, sequence, vocab]: this is a fill-mask (masked-LM) head, not a classifier".into(),
        ));
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
    Ok(uses_token_types)
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
    fn replaying_a_journal_rebuilds_the_cache() {
        // Insertions (with repeats and evictions) recorded in a journal, taken in two parts
        // as a checkpointing search takes them, and replayed into a fresh cache that saw the
        // same insertions before the journal started: the same entries, evicted alike.
        let key = |i: u32| TokenIds::single(vec![101, i, 102]);
        let mut original = PredictionCache::new(4);
        let mut replayed = PredictionCache::new(4);
        for i in 0..3 {
            original.insert(key(i), Arc::from(vec![i as f32]));
            replayed.insert(key(i), Arc::from(vec![i as f32]));
        }
        original.start_journal();
        let mut journal = Vec::new();
        for i in [2, 3, 4, 1, 5, 6, 3] {
            original.insert(key(i), Arc::from(vec![i as f32]));
            if i == 1 {
                journal.extend(original.take_journal());
            }
        }
        journal.extend(original.take_journal());
        assert_eq!(journal.len(), 4, "repeats of cached keys are not inserted");
        for (k, v) in journal {
            replayed.insert(k, v);
        }
        for i in 0..8 {
            assert_eq!(original.get(&key(i)), replayed.get(&key(i)), "key {i}");
        }
        assert_eq!(original.order, replayed.order);
    }

    #[test]
    fn cache_evicts_oldest_first() {
        let mut cache = PredictionCache::new(2);
        let key = |i| TokenIds::single(vec![101, i, 102]);
        for i in 0..3 {
            cache.insert(key(i), Arc::from(vec![i as f32]));
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&key(0)).is_none());
        assert!(cache.get(&key(2)).is_some());
    }

    #[test]
    fn zero_capacity_cache_stores_nothing() {
        let mut cache = PredictionCache::new(0);
        cache.insert(TokenIds::single(vec![1]), Arc::from(vec![0.0]));
        assert!(cache.is_empty());
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
