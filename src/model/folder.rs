//! A model folder and what it declares: `model.onnx` (and its external data), `tokenizer.json`,
//! `config.json`, `tokenizer_config.json` and robust's own `robust.toml`. Every file is read and
//! checked here, so a folder whose parts do not belong together is refused at load, naming
//! the file and the mismatch, rather than giving wrong numbers later.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::*;

/// Names exporters give the external-data file beside `model.onnx`: torch's exporter, and
/// optimum / `onnx.save_model(..., location=...)` as commonly called.
pub const EXTERNAL_DATA_FILES: [&str; 2] = ["model.onnx.data", "model.onnx_data"];

/// sha256 of the folder's `model.onnx` followed by its external data file, if any, then by
/// those of `tokenizer.json`, `config.json`, `tokenizer_config.json`, `robust.toml` and
/// `input.toml` it has, as one stream: a model whose weights change in `model.onnx.data`, or
/// whose tokenizer is cut or whose `id2label` is swapped, is another model (#30 item 5: these
/// used to give the same hash, so shards run with different tokenizers merged).
pub fn model_sha256(dir: &Path) -> Result<String, ModelError> {
    let model = dir.join(MODEL_FILE);
    let mut files = vec![model.clone()];
    files.extend(
        EXTERNAL_DATA_FILES
            .iter()
            .chain(&[
                TOKENIZER_FILE,
                CONFIG_FILE,
                TOKENIZER_CONFIG_FILE,
                MANIFEST_FILE,
                crate::model::coref::INPUT_FILE,
            ])
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
pub(crate) fn require_files(dir: &Path) -> Result<(), ModelError> {
    for file in [MODEL_FILE, TOKENIZER_FILE] {
        let path = dir.join(file);
        // #30: there but not a file (a symlink to /dev/zero, a folder) is said as such.
        if path.exists() && !path.is_file() {
            return Err(ModelError::NotAFile { path });
        }
        if !path.is_file() {
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
    pub(crate) config: Option<HfConfig>,
    pub(crate) manifest: Option<Manifest>,
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
pub(crate) struct HfConfig {
    pub(crate) id2label: Option<HashMap<String, String>>,
    pub(crate) architectures: Option<Vec<String>>,
    pub(crate) max_position_embeddings: Option<usize>,
    pub(crate) model_type: Option<String>,
    pub(crate) pad_token_id: Option<usize>,
    pub(crate) bos_token_id: Option<usize>,
    pub(crate) eos_token_id: Option<usize>,
    pub(crate) vocab_size: Option<usize>,
}

/// The tokenizer family each model type is trained with, as its marker shows it: `##`
/// continuations (WordPiece), `▁` word starts (SentencePiece), `Ġ` word starts (byte-level
/// BPE). Types not listed are not checked.
pub(crate) fn expected_marker(model_type: &str) -> Option<WordMarker> {
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

pub(crate) fn marker_family(marker: &WordMarker) -> &'static str {
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
pub(crate) const PADDING_OFFSET_POSITIONS: [&str; 8] = [
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
    pub(crate) fn position_limit(&self) -> usize {
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

    pub(crate) fn labels(&self, path: &Path) -> Result<Vec<String>, ModelError> {
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
pub(crate) struct Manifest {
    pub(crate) name: Option<String>,
    pub(crate) labels: Option<Vec<String>>,
    pub(crate) max_length: Option<usize>,
    pub(crate) kind: Option<ModelKind>,
}

/// What a model folder holds: a sequence classifier (logits `[batch, labels]`), a classifier
/// that resolves pronouns over span rows (a classifier whose folder has an `input.toml`), or a
/// masked language model (logits `[batch, sequence, vocab]`). It is decided once, from the
/// folder's files and without loading the model ([`ModelKind::of_dir`]), so that planning,
/// `robust eval` and loading agree; commands that need one kind refuse another before loading
/// anything, with a message that says which is which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// A sequence classifier: one row of label logits per input.
    Classifier,
    /// A masked language model: vocabulary logits at every position.
    FillMask,
    /// A classifier of (text, candidate) inputs that a span template (`input.toml`) builds from
    /// rows with a pronoun and candidate spans. The template decides it, so `robust.toml`
    /// cannot declare it.
    #[serde(skip)]
    CorefSpans,
    /// A sentence encoder (sentence-transformers style): `last_hidden_state`, mean-pooled over
    /// the attention mask into one vector a sentence; word attacks use it to keep an
    /// adversarial text close in meaning to its original.
    SentenceEncoder,
}

impl ModelKind {
    /// The kind in words, as error messages name it.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Classifier => "classifier",
            ModelKind::FillMask => "fill-mask (masked-LM) model",
            ModelKind::CorefSpans => "coreference (span-candidate) classifier",
            ModelKind::SentenceEncoder => "sentence encoder",
        }
    }

    /// The kind of the model folder `dir`, read from its files without loading the model, so
    /// that a plan can pick the attack's shape before anything runs. A classifier with an
    /// `input.toml` is a coreference model, and its template must parse.
    pub fn of_dir(dir: &Path) -> Result<Self, ModelError> {
        require_files(dir)?;
        let config = read_config(dir)?;
        let manifest = read_manifest(dir)?;
        let declared = Self::from_files(manifest.as_ref(), config.as_ref());
        if declared == ModelKind::Classifier
            && crate::model::coref::SpanTemplate::read(dir)?.is_some()
        {
            return Ok(ModelKind::CorefSpans);
        }
        Ok(declared)
    }

    /// The kind of graph this kind of model runs: a coreference model's is a classifier's.
    pub fn graph(self) -> Self {
        match self {
            ModelKind::CorefSpans => ModelKind::Classifier,
            kind => kind,
        }
    }

    /// The kind the folder's files declare: `kind` in `robust.toml` if set, else from
    /// `config.json`'s `architectures` (`…ForMaskedLM` is fill-mask), else a classifier. (A
    /// span template is looked for by [`ModelKind::of_dir`] only.)
    pub(crate) fn from_files(manifest: Option<&Manifest>, config: Option<&HfConfig>) -> Self {
        if let Some(kind) = manifest.and_then(|m| m.kind) {
            return kind;
        }
        let masked = config
            .and_then(|c| c.architectures.as_ref())
            .is_some_and(|a| a.iter().any(|n| n.ends_with("ForMaskedLM")));
        // A bare encoder's architecture is the model class alone (`BertModel`), without a
        // task head (`BertForSequenceClassification`).
        let bare = config
            .and_then(|c| c.architectures.as_ref())
            .is_some_and(|a| {
                !a.is_empty() && a.iter().all(|n| n.ends_with("Model") && !n.contains("For"))
            });
        if masked {
            ModelKind::FillMask
        } else if bare {
            ModelKind::SentenceEncoder
        } else {
            ModelKind::Classifier
        }
    }

    /// An error unless `found`, the kind the files of the folder `dir` declare, runs this
    /// kind's graph.
    pub(crate) fn require(self, dir: &Path, found: ModelKind) -> Result<(), ModelError> {
        if found.graph() == self.graph() {
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
pub(crate) fn read_optional<T>(
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

pub(crate) fn read_config(dir: &Path) -> Result<Option<HfConfig>, ModelError> {
    read_optional(dir.join(CONFIG_FILE), |t| {
        serde_json::from_str(t).map_err(|e| e.to_string())
    })
}

/// The part of `tokenizer_config.json` that limits input length.
#[derive(Deserialize)]
pub(crate) struct TokenizerConfig {
    pub(crate) model_max_length: Option<f64>,
}

impl TokenizerConfig {
    /// transformers writes `int(1e30)` when a tokenizer has no limit of its own.
    pub(crate) fn max_length(&self) -> Option<usize> {
        self.model_max_length
            .filter(|n| (1.0..1e9).contains(n))
            .map(|n| n as usize)
    }
}

/// The tokenizer's transformers config in a model folder (optional): its `model_max_length`
/// limits input length, and the special tokens it names must be in the vocabulary.
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";

pub(crate) fn read_tokenizer_config(dir: &Path) -> Result<Option<TokenizerConfig>, ModelError> {
    read_optional(dir.join(TOKENIZER_CONFIG_FILE), |t| {
        serde_json::from_str(t).map_err(|e| e.to_string())
    })
}

pub(crate) fn read_manifest(dir: &Path) -> Result<Option<Manifest>, ModelError> {
    read_optional(dir.join(MANIFEST_FILE), |t| {
        toml::from_str(t).map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder with placeholder `model.onnx` and `tokenizer.json` (the kind is read without
    /// them) and the given files.
    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in [MODEL_FILE, TOKENIZER_FILE] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    const TEMPLATE: &str = "kind = \"span-candidate\"\npositive_label = \"coref\"\n[markers]\npronoun = [\"<\", \">\"]\ncandidate = [\"[\", \"]\"]\n";

    #[test]
    fn the_kind_is_decided_from_the_folder() {
        let kind = |files: &[(&str, &str)]| ModelKind::of_dir(folder(files).path()).unwrap();
        assert_eq!(kind(&[]), ModelKind::Classifier);
        let mlm = r#"{"architectures": ["BertForMaskedLM"]}"#;
        assert_eq!(kind(&[(CONFIG_FILE, mlm)]), ModelKind::FillMask);
        assert_eq!(kind(&[("input.toml", TEMPLATE)]), ModelKind::CorefSpans);
        // The manifest wins over config.json, and a template does not make a masked-LM a
        // coreference model.
        let declared = "kind = \"fill-mask\"\n";
        assert_eq!(
            kind(&[(MANIFEST_FILE, declared), ("input.toml", TEMPLATE)]),
            ModelKind::FillMask
        );
        assert_eq!(
            kind(&[
                (MANIFEST_FILE, "kind = \"classifier\"\n"),
                (CONFIG_FILE, mlm)
            ]),
            ModelKind::Classifier
        );
    }

    #[test]
    fn committed_models_have_the_kinds_their_attacks_assume() {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let kind = |name: &str| ModelKind::of_dir(&models.join(name)).unwrap();
        assert_eq!(kind("sst2-minilm"), ModelKind::Classifier);
        assert_eq!(kind("gap-minilm"), ModelKind::CorefSpans);
        assert_eq!(kind("minilm-mlm"), ModelKind::FillMask);
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models");
        assert_eq!(
            ModelKind::of_dir(&fixtures.join("bert")).unwrap(),
            ModelKind::Classifier
        );
    }

    #[test]
    fn a_bad_template_or_a_declared_coreference_kind_is_an_error() {
        let dir = folder(&[("input.toml", "kind = \"qa\"\n")]);
        let err = ModelKind::of_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("input.toml is not valid"), "{err}");
        // Only the template makes a coreference model; the manifest cannot say so.
        let dir = folder(&[(MANIFEST_FILE, "kind = \"coref-spans\"\n")]);
        let err = ModelKind::of_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("robust.toml is not valid"), "{err}");
    }

    #[test]
    fn a_coreference_folder_opens_as_a_classifier_but_not_as_a_masked_lm() {
        let dir = folder(&[("input.toml", TEMPLATE)]);
        let kind = ModelKind::of_dir(dir.path()).unwrap();
        assert!(Folder::open(dir.path(), kind).is_ok());
        assert!(Folder::open(dir.path(), ModelKind::Classifier).is_ok());
        let err = Folder::open(dir.path(), ModelKind::FillMask)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("is a classifier; this command needs a fill-mask"),
            "{err}"
        );
        assert_eq!(ModelKind::CorefSpans.graph(), ModelKind::Classifier);
    }
}
