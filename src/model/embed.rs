//! A classifier that takes word embeddings instead of token ids.
//!
//! Built in memory from an unmodified export (see [`crate::onnx`]): the same weights, minus the
//! token-id lookup. Gradient-free attacks use it to evaluate the loss at points *between*
//! tokens, which is what a finite-difference gradient estimate needs.

use std::path::Path;

use crate::model::ModelKind;
use crate::model::encoder::Encoder;
use crate::model::head::{Head, fit_label_logits, label_rows};
use crate::model::runtime::RuntimeError;
use crate::model::session;
use crate::model::session::Feed;
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
    /// The rewritten graph: its session, batches and query counts.
    graph: Encoder<Embedded>,
    site: EmbeddingSite,
    table: Vec<f32>,
    /// Root mean square of the table's entries: the scale of embedding space.
    table_rms: f32,
}

impl EmbeddingModel {
    /// Build the embedding-input graph from the classifier described by `info` (read from its
    /// `model.onnx`, narrowed to `[CLS]` in the last layer where `options` allow) and load it.
    pub fn load(info: &ModelInfo, options: &InferenceOptions) -> Result<Self, EmbedError> {
        let onnx = OnnxModel::read(&info.model_path())?;
        let site = onnx.embedding_site()?;
        let table = onnx.embedding_matrix(&site)?;
        let bytes = onnx.with_embedding_input(&site)?;
        drop(onnx);
        let head = Embedded {
            input: site.output.clone(),
            hidden: site.hidden,
            labels: info.labels.len(),
        };
        // No cache: the search asks for points between tokens, never the same one twice.
        let options = InferenceOptions {
            cache_capacity: 0,
            ..options.clone()
        };
        let graph =
            Encoder::load(&info.model_path(), Some(bytes), head, options).map_err(|e| match e {
                ModelError::Session { source, .. } => EmbedError::Session {
                    model: info.name.clone(),
                    source,
                },
                other => EmbedError::Model(other),
            })?;
        let table_rms = (table
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            / table.len().max(1) as f64)
            .sqrt() as f32;
        Ok(Self {
            graph,
            site,
            table,
            table_rms,
        })
    }

    /// Rows run through the graph: the queries this model adds to an attack's count.
    pub fn queries(&self) -> u64 {
        self.graph.stats().model_queries
    }

    /// Count rows an earlier process ran as run here: a resumed search adds what its
    /// checkpoint says the interrupted one had spent, so its totals equal an unbroken run's.
    pub fn add_queries(&mut self, rows: u64) {
        self.graph.add_stats(&QueryStats {
            requests: rows,
            model_queries: rows,
            ..QueryStats::default()
        });
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
        Ok(self.graph.run(rows)?)
    }
}

/// The head of a classifier's embedding-input twin: label logits, from word embeddings fed in
/// place of the token-id lookup.
pub(crate) struct Embedded {
    /// The graph input that takes the embeddings (the removed lookup's output).
    pub(crate) input: String,
    /// The embedding width.
    pub(crate) hidden: usize,
    /// Labels the classifier declares.
    pub(crate) labels: usize,
}

impl Head for Embedded {
    type Row = EmbeddedRow;
    type Output = Vec<f32>;
    const READS_CLS_ONLY: bool = true;
    const SIDE_BY_SIDE: bool = false;

    fn kind(&self) -> ModelKind {
        ModelKind::Classifier
    }

    fn extra_inputs(&self) -> Vec<&str> {
        vec![self.input.as_str()]
    }

    fn fit_logits(&mut self, shape: &[i64], path: &Path) -> Result<(), ModelError> {
        fit_label_logits(shape, self.labels, self.kind(), path)
    }

    fn extend_feed(
        &self,
        rows: &[&EmbeddedRow],
        width: usize,
        feed: &mut Feed,
        path: &Path,
    ) -> Result<(), ModelError> {
        let (n, h) = (rows.len(), self.hidden);
        let mut emb = vec![0f32; n * width * h];
        for (r, row) in rows.iter().enumerate() {
            emb[r * width * h..r * width * h + row.embeddings.len()]
                .copy_from_slice(&row.embeddings);
        }
        feed.push((
            self.input.clone().into(),
            session::tensor([n, width, h], emb, path)?,
        ));
        Ok(())
    }

    fn read(
        &self,
        rows: &[&EmbeddedRow],
        _width: usize,
        dims: &[i64],
        data: &[f32],
        _path: &Path,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        Ok(label_rows(dims, data, rows.len(), self.labels)?
            .map(<[f32]>::to_vec)
            .collect())
    }
}

impl session::TokenRow for EmbeddedRow {
    fn ids(&self) -> &[u32] {
        &self.ids
    }
    fn type_ids(&self) -> &[u32] {
        &self.type_ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedding model's queries are the rows its graph ran, plus what a resumed search
    /// adds back; nothing else changes them.
    #[test]
    fn queries_count_rows_run_and_rows_added_back() {
        let dir = tempfile::tempdir().unwrap();
        crate::model::encoder::tests::bag_model(dir.path());
        let info = ModelInfo::read(dir.path()).unwrap();
        let options = InferenceOptions {
            threads: 1,
            batch_size: 2,
            ..InferenceOptions::default()
        };
        let mut model = EmbeddingModel::load(&info, &options).unwrap();
        assert_eq!(model.queries(), 0);
        let rows: Vec<EmbeddedRow> = [&[1u32, 4, 2][..], &[1, 4, 2], &[1, 5, 6, 2]]
            .iter()
            .map(|ids| EmbeddedRow {
                ids: ids.to_vec(),
                type_ids: vec![0; ids.len()],
                embeddings: model.embed(ids),
            })
            .collect();
        let logits = model.logits(&rows).unwrap();
        assert_eq!(logits.len(), 3);
        assert_eq!(logits[0], logits[1]);
        assert_eq!(model.queries(), 3, "no cache: repeats are run");
        model.add_queries(5);
        assert_eq!(model.queries(), 8);
        let bad = EmbeddedRow {
            ids: vec![1, 2],
            type_ids: vec![0, 0],
            embeddings: vec![0.0; 3],
        };
        assert!(matches!(
            model.logits(&[bad]),
            Err(EmbedError::RowShape { row: 0, .. })
        ));
        assert_eq!(model.queries(), 8);
    }
}
