//! Sentence encoders: the third kind of model robust runs, never attacked, only asked how close
//! two texts are in meaning.
//!
//! Why a model of its own: a word attack that swaps "film" for "picture" keeps the sentence,
//! one that swaps it for "cinema hall" may not, and TextFooler, BAE and TextAttack's search
//! benchmark all bound the change by the cosine between sentence embeddings. Those tools use
//! the Universal Sentence Encoder from TF-Hub, which is a download at run time (TextAttack
//! #651); here it is any BERT-style encoder folder (a sentence-transformers export: `model.onnx`
//! with a `last_hidden_state` output and its `tokenizer.json`), run by the same
//! [`Encoder`](crate::model::encoder::Encoder) as every other model and mean-pooled over the
//! attention mask, which is what `all-MiniLM-L6-v2`'s pooling config says.
//!
//! Embeddings are cached by text, because a search asks for the original sentence's once per
//! candidate otherwise.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::model::encoder::Encoder;
use crate::model::head::{Head, incompatible};
use crate::model::tokenize::{TextEncoder, TokenIds};
use crate::model::{
    Folder, InferenceOptions, MODEL_FILE, ModelError, ModelKind, QueryStats, TOKENIZER_FILE,
};

/// The mean-pooling head: `last_hidden_state` `[rows, sequence, hidden]` averaged over each
/// row's real (unpadded) positions, then scaled to unit length.
pub(crate) struct MeanPool {
    /// The hidden size, read from the graph at load.
    hidden: usize,
}

impl Head for MeanPool {
    type Row = TokenIds;
    type Output = Arc<[f32]>;
    const READS_CLS_ONLY: bool = false;
    const SIDE_BY_SIDE: bool = true;

    fn kind(&self) -> ModelKind {
        ModelKind::SentenceEncoder
    }

    fn output(&self) -> &'static str {
        "last_hidden_state"
    }

    fn fit_logits(&mut self, shape: &[i64], path: &Path) -> Result<(), ModelError> {
        match *shape {
            [_, _, hidden] if hidden > 0 => {
                self.hidden = hidden as usize;
                Ok(())
            }
            ref other => Err(incompatible(
                path,
                self.kind(),
                format!(
                    "output \"last_hidden_state\" has shape {other:?}, expected float32 \
                     [batch, sequence, hidden] with a fixed hidden size"
                ),
            )),
        }
    }

    fn read(
        &self,
        rows: &[&TokenIds],
        width: usize,
        dims: &[i64],
        data: &[f32],
        path: &Path,
    ) -> Result<Vec<Arc<[f32]>>, ModelError> {
        let (n, hidden) = (rows.len(), self.hidden);
        if dims != [n as i64, width as i64, hidden as i64] {
            return Err(incompatible(
                path,
                self.kind(),
                format!("last_hidden_state has shape {dims:?}, expected [{n}, {width}, {hidden}]"),
            ));
        }
        Ok(rows
            .iter()
            .enumerate()
            .map(|(r, row)| {
                // Rows are padded on the right: the first `len` positions are real.
                let len = row.ids.len().max(1);
                let mut sum = vec![0f64; hidden];
                for c in 0..len {
                    let at = (r * width + c) * hidden;
                    for (s, &v) in sum.iter_mut().zip(&data[at..at + hidden]) {
                        *s += f64::from(v);
                    }
                }
                let norm = sum.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
                sum.iter().map(|v| (v / norm) as f32).collect()
            })
            .collect())
    }
}

/// A sentence encoder loaded from a model folder, with its tokenizer and an embedding cache.
pub struct SentenceEncoder {
    dir: PathBuf,
    name: String,
    graph: Encoder<MeanPool>,
    encoder: TextEncoder,
    cache: HashMap<String, Arc<[f32]>>,
}

impl SentenceEncoder {
    /// Load the sentence encoder in `dir` (its `config.json` names a bare encoder such as
    /// `BertModel`, or its `robust.toml` says `kind = "sentence-encoder"`).
    pub fn load(dir: &Path, options: InferenceOptions) -> Result<Self, ModelError> {
        let folder = Folder::open(dir, ModelKind::SentenceEncoder)?;
        let max_len = options
            .max_len
            .map_or(folder.max_len, |m| m.min(folder.max_len));
        let encoder = TextEncoder::from_file(&dir.join(TOKENIZER_FILE), max_len)?;
        crate::model::check_tokenizer_fits(dir, &encoder)?;
        let options = InferenceOptions {
            cache_capacity: 0,
            ..options
        };
        let graph = Encoder::load(&dir.join(MODEL_FILE), None, MeanPool { hidden: 0 }, options)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            name: folder.name,
            graph,
            encoder,
            cache: HashMap::new(),
        })
    }

    /// The name reports give the encoder.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The model folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// sha256 of the folder's model and tokenizer files ([`crate::model::model_sha256`]).
    pub fn sha256(&self) -> Result<String, ModelError> {
        crate::model::model_sha256(&self.dir)
    }

    /// Rows run and asked for since loading.
    pub fn stats(&self) -> QueryStats {
        self.graph.stats()
    }

    /// Unit-length embeddings of `texts`, in order; texts seen before are answered from the
    /// cache.
    pub fn embed(&mut self, texts: &[&str]) -> Result<Vec<Arc<[f32]>>, ModelError> {
        let mut missing: Vec<&str> = texts
            .iter()
            .copied()
            .filter(|t| !self.cache.contains_key(*t))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            let encoded = self.encoder.encode_batch(&missing)?;
            let rows: Vec<TokenIds> = encoded.into_iter().map(|e| e.input).collect();
            let vectors = self.graph.run(&rows)?;
            for (text, v) in missing.iter().zip(vectors) {
                self.cache.insert((*text).to_string(), v);
            }
        }
        Ok(texts.iter().map(|t| self.cache[*t].clone()).collect())
    }

    /// Cosine similarity of `original` with each of `others`, in [-1, 1].
    pub fn similarity(&mut self, original: &str, others: &[&str]) -> Result<Vec<f32>, ModelError> {
        let mut texts = vec![original];
        texts.extend_from_slice(others);
        let vectors = self.embed(&texts)?;
        let base = &vectors[0];
        Ok(vectors[1..]
            .iter()
            .map(|v| {
                let dot: f64 = base
                    .iter()
                    .zip(v.iter())
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum();
                dot.clamp(-1.0, 1.0) as f32
            })
            .collect())
    }
}
