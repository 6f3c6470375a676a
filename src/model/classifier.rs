//! The sequence classifier on ONNX Runtime: batches padded to their own longest row, rows
//! sorted by length, short rows spread over worker sessions, and the cache in front of it all.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use ort::session::Session;

use super::*;

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

/// A sequence classifier loaded from a model folder, with its tokenizer, prediction cache and
/// query counters.
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
    /// Load the classifier in the folder `dir`: read and cross-check its files, build its
    /// ONNX Runtime session and check the graph's inputs and outputs. A dynamically quantized
    /// model is set to run one row at a time, whole graph, whatever `options` say.
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
    pub(crate) fn build_workers(&self, workers: usize) -> Result<Vec<Session>, ModelError> {
        let env = runtime::environment(self.options.ort_lib.as_deref())?;
        let path = self.info.model_path();
        let (_, threads) = worker_split(self.options.threads, Some(workers));
        let graph = self.narrowed_graph();
        build_sessions(env, &path, graph.as_deref(), workers, threads).map_err(|source| {
            ModelError::Session {
                path: path.clone(),
                source,
            }
        })
    }

    /// The [CLS]-only graph the worker sessions are built from, when the options ask for it.
    /// Read from the model file again rather than kept: it is as large as the model, and most
    /// runs never build workers.
    fn narrowed_graph(&self) -> Option<Vec<u8>> {
        self.options
            .narrow_tail
            .then(|| crate::onnx::OnnxModel::read(&self.info.model_path()).ok())
            .flatten()
            .and_then(|onnx| narrowed_graph(&onnx))
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
        &self.options
    }

    /// Model work since loading (or as added from a resumed search's checkpoint).
    pub fn stats(&self) -> QueryStats {
        self.stats
    }

    /// The prediction cache in front of the model.
    pub fn cache(&self) -> &PredictionCache {
        &self.cache
    }

    /// Empty the prediction cache, so that the next requests are paid for (the counters are
    /// kept).
    pub fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// The prediction cache, to replay a checkpoint's journal into and to journal.
    pub(crate) fn cache_mut(&mut self) -> &mut PredictionCache {
        &mut self.cache
    }

    /// Count work done by an earlier process as done here: a resumed search adds what its
    /// checkpoint says the interrupted one had spent, so its totals equal an unbroken run's.
    pub(crate) fn add_stats(&mut self, earlier: &QueryStats) {
        self.stats.add(earlier);
    }

    /// Rows per forward pass from now on (at least 1); ignored by a model that runs one row at
    /// a time.
    pub fn set_batch_size(&mut self, batch_size: usize) {
        if !self.one_row_at_a_time {
            self.options.batch_size = batch_size.max(1);
        }
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
                out[i] = Some(Arc::from(hit));
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

pub(crate) type BatchOutput = (Vec<Arc<[f32]>>, QueryStats);

/// Run every chunk as one batch, on as many workers as there are sessions, and return the
/// outputs in chunk order. Workers take the next chunk as they finish one; the first error
/// stops them all.
pub(crate) fn run_batches(
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
pub(crate) fn run_batch(
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
pub(crate) fn run_batch_or_name_the_row(
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
pub(crate) fn build_sessions(
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
pub(crate) fn check_signature(
    session: &Session,
    path: &Path,
    labels: usize,
) -> Result<bool, ModelError> {
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
