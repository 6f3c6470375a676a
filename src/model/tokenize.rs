//! Text to token ids with a model's own `tokenizer.json`.
//!
//! Padding is switched off here on purpose: exported tokenizers often carry fixed padding to
//! 128 or 512, which would make every batch pay for the longest possible input. The inference
//! core pads each batch to its own longest row instead. Truncation is set explicitly to the
//! model's limit so that an over-long input is cut (and counted) rather than crashing the model.

use std::path::{Path, PathBuf};

use tokenizers::{EncodeInput, Tokenizer, TruncationParams};

/// Why a tokenizer could not be loaded, or failed on an input.
#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    /// `tokenizer.json` could not be read or parsed.
    #[error("failed to read tokenizer {path}: {message}")]
    Load {
        /// The tokenizer file.
        path: PathBuf,
        /// The tokenizers crate's error.
        message: String,
    },
    /// The tokenizer refused the truncation settings.
    #[error("failed to configure truncation to {max_len} tokens: {message}")]
    Truncation {
        /// The length asked for, in tokens.
        max_len: usize,
        /// The tokenizers crate's error.
        message: String,
    },
    /// Encoding (or decoding) an input failed.
    #[error("failed to tokenize input: {message}")]
    Encode {
        /// The tokenizers crate's error.
        message: String,
    },
    /// The length limit leaves no room for text after the special tokens.
    #[error(
        "a maximum length of {max_len} tokens leaves no room for text: this tokenizer adds \
         {special} special tokens, so the least is {} (check --max-len and robust.toml's \
         max_length)", special + 1
    )]
    TooShort {
        /// The limit, in tokens, special tokens included.
        max_len: usize,
        /// Special tokens the tokenizer adds to every input.
        special: usize,
    },
}

/// One model input as the graph sees it. Also the prediction-cache key: two texts that
/// tokenize to the same ids are the same input to the model.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenIds {
    /// Token ids, special tokens included.
    pub ids: Box<[u32]>,
    /// Token type (segment) ids, one per token: 0 for the first segment, 1 for a pair's
    /// second.
    pub type_ids: Box<[u32]>,
}

impl TokenIds {
    /// A single-segment input (all token type ids zero).
    pub fn single(ids: Vec<u32>) -> Self {
        let type_ids = vec![0; ids.len()].into_boxed_slice();
        Self {
            ids: ids.into_boxed_slice(),
            type_ids,
        }
    }

    /// Tokens, special tokens included.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no tokens at all.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The result of encoding one text.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The ids the model is fed.
    pub input: TokenIds,
    /// True when the text was longer than the model's limit and was cut.
    pub truncated: bool,
}

/// Texts encoded per tokenizer call ([`TextEncoder::encode_batch`] and friends).
const ENCODE_CHUNK: usize = 4096;

/// A model's tokenizer, set to add special tokens, not to pad, and to cut inputs at the
/// model's length limit.
pub struct TextEncoder {
    tokenizer: Tokenizer,
    max_len: usize,
}

impl TextEncoder {
    /// Load `tokenizer.json` and set it to cut inputs at `max_len` tokens, special tokens
    /// included; a limit that leaves no room for text is refused.
    pub fn from_file(path: &Path, max_len: usize) -> Result<Self, TokenizeError> {
        let mut tokenizer = Tokenizer::from_file(path).map_err(|e| TokenizeError::Load {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| TokenizeError::Truncation {
                max_len,
                message: e.to_string(),
            })?;
        // A limit at or below the special tokens' count would cut every input to nothing but
        // [CLS] [SEP] and the model would answer the same for all of them.
        let special = tokenizer
            .encode("", true)
            .map_err(|e| TokenizeError::Encode {
                message: e.to_string(),
            })?
            .len();
        if max_len <= special {
            return Err(TokenizeError::TooShort { max_len, special });
        }
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..TruncationParams::default()
            }))
            .map_err(|e| TokenizeError::Truncation {
                max_len,
                message: e.to_string(),
            })?;
        Ok(Self { tokenizer, max_len })
    }

    /// The length limit, in tokens, special tokens included.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The underlying Hugging Face tokenizer (padding off, truncation at the limit).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Encode texts in parallel (the tokenizers crate uses rayon), with special tokens.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Encoded>, TokenizeError> {
        let inputs: Vec<EncodeInput> = texts.iter().map(|t| EncodeInput::from(*t)).collect();
        self.encode_all(inputs)
    }

    /// Encode sentence pairs (`[CLS] a [SEP] b [SEP]` for BERT), with token type ids.
    pub fn encode_pairs(&self, pairs: &[(&str, &str)]) -> Result<Vec<Encoded>, TokenizeError> {
        let inputs: Vec<EncodeInput> = pairs
            .iter()
            .map(|&(a, b)| EncodeInput::from((a, b)))
            .collect();
        self.encode_all(inputs)
    }

    /// Encode texts and sentence pairs, each as its kind.
    pub fn encode_inputs(
        &self,
        inputs: &[crate::model::Input],
    ) -> Result<Vec<Encoded>, TokenizeError> {
        self.encode_all(
            inputs
                .iter()
                .map(|i| match i.pair {
                    Some(pair) => EncodeInput::from((i.text, pair)),
                    None => EncodeInput::from(i.text),
                })
                .collect(),
        )
    }

    /// Encode in chunks of [`ENCODE_CHUNK`] texts, each turned into bare ids at once: a
    /// tokenizer `Encoding` carries tokens, offsets and masks besides the ids (several KB a
    /// row), so encoding a whole large corpus in one call held all of them at once.
    fn encode_all(&self, inputs: Vec<EncodeInput>) -> Result<Vec<Encoded>, TokenizeError> {
        let mut out = Vec::with_capacity(inputs.len());
        let mut inputs = inputs.into_iter().peekable();
        while inputs.peek().is_some() {
            let chunk: Vec<EncodeInput> = inputs.by_ref().take(ENCODE_CHUNK).collect();
            let encodings =
                self.tokenizer
                    .encode_batch(chunk, true)
                    .map_err(|e| TokenizeError::Encode {
                        message: e.to_string(),
                    })?;
            out.extend(encodings.into_iter().map(|e| Encoded {
                truncated: !e.get_overflowing().is_empty(),
                input: TokenIds {
                    ids: e.get_ids().into(),
                    type_ids: e.get_type_ids().into(),
                },
            }));
        }
        Ok(out)
    }

    /// The id of a vocabulary entry (added tokens included), written as the vocabulary writes
    /// it (`##ing`, `▁the`).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    /// The vocabulary entry of an id, as the vocabulary writes it.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }

    /// Entries in the vocabulary, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// Ids the tokenizer itself marks special (`[CLS]`, `<s>`, `<pad>`, `[MASK]`, ...).
    pub fn special_ids(&self) -> std::collections::HashSet<u32> {
        self.tokenizer
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| id)
            .collect()
    }

    /// How this tokenizer's vocabulary marks word boundaries.
    pub fn word_marker(&self) -> WordMarker {
        WordMarker::of(&self.tokenizer)
    }

    /// Ids as text, by the tokenizer's own decoder, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizeError> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| TokenizeError::Encode {
                message: format!("failed to decode {ids:?}: {e}"),
            })
    }
}

/// How a vocabulary tells a word's first piece from the pieces that continue it. Trigger
/// searches propose whole words and compare vocabulary entries with words (exclusion lists,
/// label names), so they need the bare word under the marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WordMarker {
    /// WordPiece: continuing pieces carry a prefix (`##`); a word starts with anything else.
    Continuation(String),
    /// SentencePiece (`▁`) and byte-level BPE (`Ġ`): a word's first piece carries the marker.
    Start(char),
    /// No marker known: every entry counts as a word.
    None,
}

impl WordMarker {
    /// Read from the tokenizer's own configuration: its model's continuing-subword prefix, or
    /// a Metaspace / ByteLevel pre-tokenizer or decoder.
    pub fn of(tokenizer: &Tokenizer) -> Self {
        let Ok(json) = tokenizer.to_string(false) else {
            return WordMarker::None;
        };
        let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&json) else {
            return WordMarker::None;
        };
        let model = value["model"].take();
        if model["type"] == "WordPiece" {
            let prefix = model["continuing_subword_prefix"].as_str().unwrap_or("##");
            return WordMarker::Continuation(prefix.to_string());
        }
        // The vocabulary is out of the way (taken above): what is left is small.
        let rest = value.to_string();
        if rest.contains(r#""type":"Metaspace""#) {
            let replacement = find_replacement(&value).unwrap_or('\u{2581}');
            WordMarker::Start(replacement)
        } else if rest.contains(r#""type":"ByteLevel""#) {
            WordMarker::Start('\u{0120}')
        } else if let Some(prefix) = model["continuing_subword_prefix"].as_str() {
            WordMarker::Continuation(prefix.to_string())
        } else {
            WordMarker::None
        }
    }

    /// The word under a vocabulary entry, and whether the entry starts a word.
    pub fn bare<'t>(&self, token: &'t str) -> (&'t str, bool) {
        match self {
            WordMarker::Continuation(prefix) => match token.strip_prefix(prefix.as_str()) {
                Some(rest) => (rest, false),
                None => (token, true),
            },
            WordMarker::Start(marker) => match token.strip_prefix(*marker) {
                Some(rest) => (rest, true),
                None => (token, false),
            },
            WordMarker::None => (token, true),
        }
    }
}

/// The `replacement` of a Metaspace pre-tokenizer or decoder anywhere in the configuration.
fn find_replacement(value: &serde_json::Value) -> Option<char> {
    match value {
        serde_json::Value::Object(map) => {
            if map.get("type").and_then(|t| t.as_str()) == Some("Metaspace")
                && let Some(c) = map
                    .get("replacement")
                    .and_then(|r| r.as_str())
                    .and_then(|r| r.chars().next())
            {
                return Some(c);
            }
            map.values().find_map(find_replacement)
        }
        serde_json::Value::Array(items) => items.iter().find_map(find_replacement),
        _ => None,
    }
}
