//! A classifier that takes word embeddings instead of token ids.
//!
//! Built in memory from an unmodified export (see [`crate::onnx`]): the same weights, minus the
//! token-id lookup. Gradient-free attacks use it to evaluate the loss at points *between*
//! tokens, which is what a finite-difference gradient estimate needs.

use std::path::PathBuf;

use ort::session::Session;

use crate::model::runtime::{self, RuntimeError};
use crate::model::session;
use crate::model::{InferenceOptions, ModelError, ModelInfo, QueryStats};
use crate::onnx::{EmbeddingSite, OnnxError, OnnxModel};

/// Why the embedding-input graph could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// There is no embedding-input graph for this model (it could not be built).
    #[error("the embedding-input graph is not available for this model")]
    Unavailable,
    /// The export could not be read or rewritten into an embedding-input graph.
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    /// ONNX Runtime could not be loaded.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// ONNX Runtime could not build a session of the rewritten graph.
    #[error("onnx runtime failed on the embedding-input graph of {model}")]
    Session {
        /// The model's name.
        model: String,
        /// The runtime's error.
        #[source]
        source: ort::Error,
    },
    /// The graph's inputs or outputs do not fit, or a batch failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A row's embeddings or type ids do not match its token count.
    #[error("row {row}: {got} embedding values for {tokens} tokens of width {hidden}")]
    RowShape {
        /// Index of the row in the request (0-based).
        row: usize,
        /// Embedding values given.
        got: usize,
        /// Tokens in the row.
        tokens: usize,
        /// The model's embedding width.
        hidden: usize,
    },
}

/// One input: token ids (the graph still reads their shape, and type ids for segments) and
/// their embeddings, `ids.len() * hidden` values, row-major.
#[derive(Debug, Clone)]
pub struct EmbeddedRow {
    /// Token ids, special tokens included.
    pub ids: Vec<u32>,
    /// Token type (segment) ids, one per token.
    pub type_ids: Vec<u32>,
    /// The tokens' embeddings, `ids.len() * hidden` values, row-major.
    pub embeddings: Vec<f32>,
}

/// A classifier's embedding-input twin: the same graph and weights, fed word embeddings in
/// place of the token-id lookup.
pub struct EmbeddingModel {
    name: String,
    /// The model file the graph was built from (named in errors).
    path: PathBuf,
    session: Session,
    site: EmbeddingSite,
    table: Vec<f32>,
    /// Root mean square of the table's entries: the scale of embedding space.
    table_rms: f32,
    labels: usize,
    uses_token_types: bool,
    batch_size: usize,
    /// Rows run through the model.
    pub queries: u64,
}

impl EmbeddingModel {
    /// Build the embedding-input graph from the classifier described by `info` (read from its
    /// `model.onnx`, narrowed to `[CLS]` in the last layer where `options` allow) and load it.
    pub fn load(info: &ModelInfo, options: &InferenceOptions) -> Result<Self, EmbedError> {
        let onnx = OnnxModel::read(&info.model_path())?;
        let site = onnx.embedding_site()?;
        let table = onnx.embedding_matrix(&site)?;
        let mut bytes = onnx.with_embedding_input(&site)?;
        drop(onnx);
        if options.narrow_tail {
            let embedded = OnnxModel::from_bytes(&info.model_path(), bytes);
            bytes = crate::model::classifier::narrowed_graph(&embedded)
                .unwrap_or_else(|| embedded.into_bytes());
        }
        let env = runtime::environment(options.ort_lib.as_deref())?;
        let session =
            build(env, &bytes, options.threads).map_err(|source| EmbedError::Session {
                model: info.name.clone(),
                source,
            })?;
        let uses_token_types =
            session::check_inputs(&session, &info.model_path(), &[site.output.as_str()])?;
        let table_rms = (table
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            / table.len().max(1) as f64)
            .sqrt() as f32;
        Ok(Self {
            name: info.name.clone(),
            path: info.model_path(),
            session,
            site,
            table,
            table_rms,
            labels: info.labels.len(),
            uses_token_types,
            batch_size: options.batch_size.max(1),
            queries: 0,
        })
    }

    /// Rows in the embedding table (the vocabulary size).
    pub fn vocab(&self) -> usize {
        self.site.vocab
    }

    /// The embedding width.
    pub fn hidden(&self) -> usize {
        self.site.hidden
    }

    /// The embedding table, `[vocab, hidden]` row-major.
    pub fn table(&self) -> &[f32] {
        &self.table
    }

    /// Root mean square of the table's entries, computed once at load.
    pub fn table_rms(&self) -> f32 {
        self.table_rms
    }

    /// The embedding of one token (`hidden` values; an id past the table reads its last row).
    pub fn embedding(&self, id: u32) -> &[f32] {
        let h = self.site.hidden;
        let i = (id as usize).min(self.site.vocab - 1);
        &self.table[i * h..(i + 1) * h]
    }

    /// Embeddings of a token sequence, as the removed lookup would have produced them.
    pub fn embed(&self, ids: &[u32]) -> Vec<f32> {
        ids.iter()
            .flat_map(|&id| self.embedding(id).iter().copied())
            .collect()
    }

    /// Logits for each row; rows are sorted by length and batched, padded per batch.
    pub fn logits(&mut self, rows: &[EmbeddedRow]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let h = self.site.hidden;
        for (i, r) in rows.iter().enumerate() {
            if r.embeddings.len() != r.ids.len() * h || r.type_ids.len() != r.ids.len() {
                return Err(EmbedError::RowShape {
                    row: i,
                    got: r.embeddings.len(),
                    tokens: r.ids.len(),
                    hidden: h,
                });
            }
        }
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|&i| rows[i].ids.len());
        let mut out = vec![Vec::new(); rows.len()];
        for chunk in order.chunks(self.batch_size) {
            let batch: Vec<&EmbeddedRow> = chunk.iter().map(|&i| &rows[i]).collect();
            for (&i, logits) in chunk.iter().zip(self.run_batch(&batch)?) {
                out[i] = logits;
            }
        }
        Ok(out)
    }

    fn run_batch(&mut self, rows: &[&EmbeddedRow]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let h = self.site.hidden;
        let n = rows.len();
        let mut stats = QueryStats::default();
        let (mut feed, width) =
            session::padded_feed(rows, self.uses_token_types, &mut stats, &self.path)?;
        self.queries += stats.model_queries;
        let mut emb = vec![0f32; n * width * h];
        for (r, row) in rows.iter().enumerate() {
            emb[r * width * h..r * width * h + row.embeddings.len()]
                .copy_from_slice(&row.embeddings);
        }
        feed.push((
            self.site.output.clone().into(),
            session::tensor([n, width, h], emb, &self.path)?,
        ));
        let labels = self.labels;
        Ok(session::run_logits(
            &mut self.session,
            feed,
            &self.path,
            |dims, data| {
                if dims != [n as i64, labels as i64] {
                    return Err(ModelError::OutputShape {
                        shape: dims.to_vec(),
                        rows: n,
                        labels,
                    });
                }
                Ok(data.chunks(labels).map(<[f32]>::to_vec).collect())
            },
        )?)
    }
}

impl session::TokenRow for &EmbeddedRow {
    fn ids(&self) -> &[u32] {
        &self.ids
    }
    fn type_ids(&self) -> &[u32] {
        &self.type_ids
    }
}

impl crate::model::LoadedModel for EmbeddingModel {
    fn dir(&self) -> &std::path::Path {
        self.path.parent().unwrap_or(std::path::Path::new("."))
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn work(&self) -> QueryStats {
        QueryStats {
            requests: self.queries,
            model_queries: self.queries,
            ..QueryStats::default()
        }
    }
}

fn build(
    env: &ort::environment::Environment,
    bytes: &[u8],
    threads: usize,
) -> ort::Result<Session> {
    session::session_builder(env, threads)?.commit_from_memory(bytes)
}
