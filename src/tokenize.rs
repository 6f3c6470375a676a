//! Text to token ids with a model's own `tokenizer.json`.
//!
//! Padding is switched off here on purpose: exported tokenizers often carry fixed padding to
//! 128 or 512, which would make every batch pay for the longest possible input. The inference
//! core pads each batch to its own longest row instead. Truncation is set explicitly to the
//! model's limit so that an over-long input is cut (and counted) rather than crashing the model.

use std::path::{Path, PathBuf};

use tokenizers::{EncodeInput, Tokenizer, TruncationParams};

#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    #[error("failed to read tokenizer {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error("failed to configure truncation to {max_len} tokens: {message}")]
    Truncation { max_len: usize, message: String },
    #[error("failed to tokenize input: {message}")]
    Encode { message: String },
    #[error(
        "a maximum length of {max_len} tokens leaves no room for text: this tokenizer adds \
         {special} special tokens, so the least is {} (check --max-len and robust.toml's \
         max_length)", special + 1
    )]
    TooShort { max_len: usize, special: usize },
}

/// One model input as the graph sees it. Also the prediction-cache key: two texts that
/// tokenize to the same ids are the same input to the model.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenIds {
    pub ids: Box<[u32]>,
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

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The result of encoding one text.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub input: TokenIds,
    /// True when the text was longer than the model's limit and was cut.
    pub truncated: bool,
}

pub struct TextEncoder {
    tokenizer: Tokenizer,
    max_len: usize,
}

impl TextEncoder {
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

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Encode texts in parallel (the tokenizers crate uses rayon), with special tokens.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Encoded>, TokenizeError> {
        let inputs: Vec<EncodeInput> = texts.iter().map(|t| EncodeInput::from(*t)).collect();
        self.encode_inputs(inputs)
    }

    /// Encode sentence pairs (`[CLS] a [SEP] b [SEP]` for BERT), with token type ids.
    pub fn encode_pairs(&self, pairs: &[(&str, &str)]) -> Result<Vec<Encoded>, TokenizeError> {
        let inputs: Vec<EncodeInput> = pairs
            .iter()
            .map(|&(a, b)| EncodeInput::from((a, b)))
            .collect();
        self.encode_inputs(inputs)
    }

    fn encode_inputs(&self, inputs: Vec<EncodeInput>) -> Result<Vec<Encoded>, TokenizeError> {
        let encodings =
            self.tokenizer
                .encode_batch(inputs, true)
                .map_err(|e| TokenizeError::Encode {
                    message: e.to_string(),
                })?;
        Ok(encodings
            .into_iter()
            .map(|e| Encoded {
                truncated: !e.get_overflowing().is_empty(),
                input: TokenIds {
                    ids: e.get_ids().into(),
                    type_ids: e.get_type_ids().into(),
                },
            })
            .collect())
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }

    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }
}
