//! The encoder: one ONNX graph (a BERT encoder and a [`Head`]) with its sessions, batching,
//! dynamic padding, prediction cache and query counts.
//!
//! Why one type for every head: the classifier, the fill-mask model and the embedding-input
//! twin each used to load their session, run their batches and check their graph's signature
//! in their own way, and each counted its work differently (per request, per batch, or in a
//! public field an attack changed). Attack budgets and reports compare those counts, so they
//! must mean the same thing everywhere: here a row asked for is a request, a row the graph
//! runs is a model query, and nothing else changes them. (This is the transformer's encoder,
//! not the tokenizer: that is [`crate::model::tokenize::TextEncoder`].)
//!
//! Rows are run sorted by length (stably, so runs are deterministic) in batches padded to their
//! own longest row. Heads whose outputs are worth keeping (label logits) also go through the
//! [`PredictionCache`], which answers repeated inputs without a forward pass.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use ort::session::Session;

use crate::model::head::Head;
use crate::model::session::{self, TokenRow, padded_feed, session_builder};
use crate::model::tokenize::TokenIds;
use crate::model::{
    InferenceOptions, MIN_ROWS_TO_BUILD_WORKERS, ModelError, PredictionCache, Progress, QueryStats,
    SHORT_ROW_TOKENS, runtime, worker_split,
};
use crate::onnx::OnnxModel;

/// A graph and its head, ready to run (see the module docs).
pub(crate) struct Encoder<H: Head> {
    /// The model file (the source of a rewritten graph), named in errors.
    path: PathBuf,
    head: H,
    /// Runs long rows, and short ones when there is one worker.
    session: Session,
    /// Sessions that run batches of short rows side by side ([`worker_split`]), all built
    /// alike; empty until the first large request of short rows.
    workers: Vec<Session>,
    uses_token_types: bool,
    /// Dynamically quantized: every forward pass is one row ([`Encoder::load`]).
    one_row_at_a_time: bool,
    options: InferenceOptions,
    cache: PredictionCache,
    stats: QueryStats,
}

impl<H: Head> Encoder<H> {
    /// Build the session of the model file `path` (or of `rewritten`, a graph made from it in
    /// memory) and check that the graph fits `head`. A dynamically quantized graph is set to
    /// run one row at a time, whole graph, whatever `options` say.
    pub(crate) fn load(
        path: &Path,
        rewritten: Option<Vec<u8>>,
        mut head: H,
        mut options: InferenceOptions,
    ) -> Result<Self, ModelError> {
        let in_memory = rewritten.is_some();
        // Read once, for the quantization check and for the narrowed graph; a file that cannot
        // be read or parsed here is left to ONNX Runtime to report on.
        let onnx = match rewritten {
            Some(bytes) => Some(OnnxModel::from_bytes(path, bytes)),
            None => OnnxModel::read(path).ok(),
        };
        // Dynamic int8 quantization (onnxruntime's `quantize_dynamic`) scales activations by
        // the range of the whole tensor, so a row's logits depend on the rows and the padding
        // it shares a batch with (seen: 1.7e-3 on the int8 fixture, enough to flip a close
        // call). Such a model runs one row at a time, whole graph: its answers then depend on
        // the row alone, as the cache, and reproducibility across --batch-size, assume.
        let one_row_at_a_time = onnx
            .as_ref()
            .and_then(|m| m.uses_op("DynamicQuantizeLinear").ok())
            .unwrap_or(false);
        if one_row_at_a_time {
            tracing::info!(
                "{}: dynamically quantized; running one row at a time so that answers do not \
                 depend on batching",
                path.parent().unwrap_or(Path::new(".")).display()
            );
            options.batch_size = 1;
            options.narrow_tail = false;
            options.workers = Some(1);
        }
        let narrowed = onnx
            .as_ref()
            .filter(|_| options.narrow_tail && H::READS_CLS_ONLY)
            .and_then(narrowed_graph);
        let graph = match (narrowed, onnx) {
            (Some(bytes), _) => Some(bytes),
            (None, Some(onnx)) if in_memory => Some(onnx.into_bytes()),
            _ => None,
        };
        let env = runtime::environment(options.ort_lib.as_deref())?;
        let session = build_sessions(env, path, graph.as_deref(), 1, options.threads)
            .map_err(session_error(path))?
            .remove(0);
        let uses_token_types = check_signature(&session, path, &mut head)?;
        Ok(Self {
            path: path.to_path_buf(),
            cache: PredictionCache::new(options.cache_capacity),
            head,
            session,
            workers: Vec::new(),
            uses_token_types,
            one_row_at_a_time,
            options,
            stats: QueryStats::default(),
        })
    }

    /// The head, as fitted to the graph at load.
    pub(crate) fn head(&self) -> &H {
        &self.head
    }

    /// The options in force (after any a dynamically quantized model overrides).
    pub(crate) fn options(&self) -> &InferenceOptions {
        &self.options
    }

    /// Model work since loading (or as added from a resumed search's checkpoint).
    pub(crate) fn stats(&self) -> QueryStats {
        self.stats
    }

    /// Count work done by an earlier process as done here: a resumed search adds what its
    /// checkpoint says the interrupted one had spent, so its totals equal an unbroken run's.
    pub(crate) fn add_stats(&mut self, earlier: &QueryStats) {
        self.stats.add(earlier);
    }

    /// Count inputs the tokenizer cut to the model's length limit.
    pub(crate) fn count_truncated(&mut self, inputs: usize) {
        self.stats.truncated += inputs as u64;
    }

    /// The prediction cache in front of the graph.
    pub(crate) fn cache(&self) -> &PredictionCache {
        &self.cache
    }

    /// The prediction cache, to clear, to replay a checkpoint's journal into and to journal.
    pub(crate) fn cache_mut(&mut self) -> &mut PredictionCache {
        &mut self.cache
    }

    /// Rows per forward pass from now on (at least 1); ignored by a model that runs one row at
    /// a time.
    pub(crate) fn set_batch_size(&mut self, batch_size: usize) {
        if !self.one_row_at_a_time {
            self.options.batch_size = batch_size.max(1);
        }
    }

    /// One output per row, in order, every row run (no cache): rows are sorted by length and
    /// batched, padded per batch.
    pub(crate) fn run(&mut self, rows: &[H::Row]) -> Result<Vec<H::Output>, ModelError> {
        self.stats.requests += rows.len() as u64;
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|&i| rows[i].ids().len());
        let sorted: Vec<&H::Row> = order.iter().map(|&i| &rows[i]).collect();
        let mut out: Vec<Option<H::Output>> = (0..rows.len()).map(|_| None).collect();
        for (i, output) in order
            .into_iter()
            .zip(self.run_sorted(&sorted, &mut |_, _| {})?)
        {
            out[i] = Some(output);
        }
        Ok(out
            .into_iter()
            .map(|o| o.expect("every row is answered by a batch"))
            .collect())
    }

    /// Outputs for `rows`, already sorted by length, in their order. The short rows go to the
    /// workers (split so that every worker gets a share) and the rest to the all-threads
    /// session; the workers are built for a large request of mostly short rows and used for
    /// any later request that is mostly short rows, since building them costs more than they
    /// save on a small one.
    fn run_sorted(
        &mut self,
        rows: &[&H::Row],
        progress: Progress,
    ) -> Result<Vec<H::Output>, ModelError> {
        let (workers, _) = worker_split(self.options.threads, self.options.workers);
        let mut short = rows.partition_point(|r| r.ids().len() <= SHORT_ROW_TOKENS);
        let worth_building = short >= MIN_ROWS_TO_BUILD_WORKERS;
        if !H::SIDE_BY_SIDE
            || workers == 1
            || 2 * short < rows.len()
            || (self.workers.is_empty() && !worth_building)
        {
            short = 0;
        }
        if short > 0 && self.workers.is_empty() {
            self.workers = self.build_workers(workers)?;
        }
        let batch = self.options.batch_size.max(1);
        let size = batch.min(short.div_ceil(self.workers.len().max(1))).max(1);
        let short_chunks = self.chunks(rows, 0..short, size);
        let long_chunks = self.chunks(rows, short..rows.len(), batch);
        let total = rows.len();
        let pool = if self.workers.is_empty() {
            std::slice::from_mut(&mut self.session)
        } else {
            &mut self.workers[..]
        };
        let mut batches = run_batches(
            pool,
            &self.head,
            &short_chunks,
            self.uses_token_types,
            &self.path,
            &mut |done| progress(done, total),
        )?;
        batches.extend(run_batches(
            std::slice::from_mut(&mut self.session),
            &self.head,
            &long_chunks,
            self.uses_token_types,
            &self.path,
            &mut |done| progress(short + done, total),
        )?);
        let mut out = Vec::with_capacity(rows.len());
        for (outputs, stats) in batches {
            self.stats.add(&stats);
            out.extend(outputs);
        }
        Ok(out)
    }

    /// `range` of sorted `rows` cut into batches of `size` rows, or fewer where the head's
    /// outputs of the batch's width would not fit.
    fn chunks<'r, 'a>(
        &self,
        rows: &'r [&'a H::Row],
        range: Range<usize>,
        size: usize,
    ) -> Vec<&'r [&'a H::Row]> {
        let mut out = Vec::new();
        let mut start = range.start;
        while start < range.end {
            let widest = rows[(start + size).min(range.end) - 1].ids().len().max(1);
            let fit = self.head.rows_per_batch(widest).max(1);
            let end = (start + size.min(fit)).min(range.end);
            out.push(&rows[start..end]);
            start = end;
        }
        out
    }

    /// The worker sessions, built (side by side) from the model file the first time they are
    /// needed, with the [CLS]-only graph where the options ask for it: read from the file
    /// again rather than kept, as it is as large as the model and most runs never build
    /// workers.
    fn build_workers(&self, workers: usize) -> Result<Vec<Session>, ModelError> {
        let env = runtime::environment(self.options.ort_lib.as_deref())?;
        let (_, threads) = worker_split(self.options.threads, Some(workers));
        let graph = (self.options.narrow_tail && H::READS_CLS_ONLY)
            .then(|| OnnxModel::read(&self.path).ok())
            .flatten()
            .and_then(|onnx| narrowed_graph(&onnx));
        build_sessions(env, &self.path, graph.as_deref(), workers, threads)
            .map_err(session_error(&self.path))
    }
}

impl<H: Head<Row = TokenIds, Output = Arc<[f32]>>> Encoder<H> {
    /// Logits for each input, from the cache where possible; the rest run once each (an input
    /// repeated within the request counts as a cache hit), sorted by length.
    pub(crate) fn cached(
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
        todo.sort_by_key(|(input, _)| input.len());
        let rows: Vec<&TokenIds> = todo.iter().map(|(input, _)| *input).collect();
        let logits = self.run_sorted(&rows, progress)?;
        // Answers go into the cache in sorted request order, whichever worker finished first,
        // so the cache (and what it evicts) is the same on every run.
        for ((input, positions), row) in todo.into_iter().zip(logits) {
            for p in positions {
                out[p] = Some(row.clone());
            }
            self.cache.insert(input.clone(), row);
        }
        Ok(out
            .into_iter()
            .map(|o| o.expect("every row is answered by the cache or a batch"))
            .collect())
    }
}

fn session_error(path: &Path) -> impl Fn(ort::Error) -> ModelError + '_ {
    move |source| ModelError::Session {
        path: path.to_path_buf(),
        source,
    }
}

/// Check that the graph takes the token-id inputs ([`session::check_inputs`]) and the head's
/// own, and that its `logits` fit the head. Returns whether `token_type_ids` is an input.
fn check_signature<H: Head>(
    session: &Session,
    path: &Path,
    head: &mut H,
) -> Result<bool, ModelError> {
    let kind = head.kind().as_str();
    let uses_token_types = session::check_inputs(session, path, kind, &head.extra_inputs())?;
    let shape = session::logits_shape(session, path, kind, head.output())?;
    head.fit_logits(&shape, path)?;
    Ok(uses_token_types)
}

/// A batch's outputs, in row order, and what the pass cost.
type BatchOutput<H> = (Vec<<H as Head>::Output>, QueryStats);

/// Run every chunk as one batch, on as many workers as there are sessions, and return the
/// outputs in chunk order. Workers take the next chunk as they finish one; the first error
/// stops them all. `progress` is told the rows done.
fn run_batches<H: Head>(
    sessions: &mut [Session],
    head: &H,
    chunks: &[&[&H::Row]],
    uses_token_types: bool,
    path: &Path,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<BatchOutput<H>>, ModelError> {
    let mut out: Vec<Option<BatchOutput<H>>> = (0..chunks.len()).map(|_| None).collect();
    let mut done = 0;
    if chunks.is_empty() {
        return Ok(Vec::new());
    }
    if sessions.len() == 1 || chunks.len() == 1 {
        for (slot, rows) in out.iter_mut().zip(chunks) {
            *slot = Some(run_batch_or_name_the_row(
                &mut sessions[0],
                head,
                rows,
                uses_token_types,
                path,
            )?);
            done += rows.len();
            progress(done);
        }
    } else {
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|scope| -> Result<(), ModelError> {
            for session in sessions.iter_mut() {
                let (tx, next, failed) = (tx.clone(), &next, &failed);
                scope.spawn(move || {
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= chunks.len() {
                            break;
                        }
                        let result = run_batch_or_name_the_row(
                            session,
                            head,
                            chunks[i],
                            uses_token_types,
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
                progress(done);
            }
            Ok(())
        })?;
    }
    Ok(out
        .into_iter()
        .map(|o| o.expect("every chunk ran"))
        .collect())
}

/// One forward pass over `rows`: the head's outputs, and what the pass cost.
fn run_batch<H: Head>(
    session: &mut Session,
    head: &H,
    rows: &[&H::Row],
    uses_token_types: bool,
    path: &Path,
) -> Result<BatchOutput<H>, ModelError> {
    let mut stats = QueryStats::default();
    let (mut feed, width) = padded_feed(rows, uses_token_types, &mut stats, path)?;
    head.extend_feed(rows, width, &mut feed, path)?;
    let outputs = session::run_logits(
        session,
        feed,
        path,
        head.kind().as_str(),
        head.output(),
        |dims, data| head.read(rows, width, dims, data, path),
    )?;
    Ok((outputs, stats))
}

/// [`run_batch`], and where the runtime refuses the batch, the first row that fails on its
/// own: the error then names the input rather than a batch of them (the model that has the
/// tokenizer fills in its text).
fn run_batch_or_name_the_row<H: Head>(
    session: &mut Session,
    head: &H,
    rows: &[&H::Row],
    uses_token_types: bool,
    path: &Path,
) -> Result<BatchOutput<H>, ModelError> {
    let batch_error = match run_batch(session, head, rows, uses_token_types, path) {
        Err(ModelError::Session { source, .. }) => source,
        other => return other,
    };
    let failed = |row: &H::Row, source| ModelError::FailedInput {
        path: path.to_path_buf(),
        ids: row.ids().to_vec(),
        text: None,
        source,
    };
    if let [row] = rows {
        return Err(failed(row, batch_error));
    }
    let alone = |row: &H::Row, session: &mut Session| match run_batch(
        session,
        head,
        &[row],
        uses_token_types,
        path,
    ) {
        Err(ModelError::Session { source, .. }) => Some(source),
        _ => None,
    };
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
/// where given, else of the file at `path`.
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
/// ([`OnnxModel::with_cls_only_tail`]). `None` when the graph does not have that shape (or
/// cannot be parsed here; ONNX Runtime then reports on the file itself).
pub(crate) fn narrowed_graph(onnx: &OnnxModel) -> Option<Vec<u8>> {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::head::{Logits, MaskedLm};

    /// A folder with a bag-of-embeddings classifier over 12 tokens and 2 labels
    /// ([`crate::onnx::build::bag_classifier`]), placeholder tokenizer, and labels; returns
    /// the graph file.
    pub(crate) fn bag_model(dir: &Path) -> PathBuf {
        let (vocab, hidden, labels) = (12usize, 4usize, 2usize);
        let table: Vec<f32> = (0..vocab * hidden)
            .map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5)
            .collect();
        let weights: Vec<f32> = (0..hidden * labels)
            .map(|i| ((i * 5) % 11) as f32 / 11.0 - 0.5)
            .collect();
        let bytes = crate::onnx::build::bag_classifier(&table, vocab, hidden, &weights, labels);
        let path = dir.join(crate::model::MODEL_FILE);
        std::fs::write(&path, bytes).unwrap();
        std::fs::write(dir.join(crate::model::TOKENIZER_FILE), b"{}").unwrap();
        std::fs::write(
            dir.join(crate::model::CONFIG_FILE),
            r#"{"id2label": {"0": "neg", "1": "pos"}, "max_position_embeddings": 64}"#,
        )
        .unwrap();
        path
    }

    fn options(batch_size: usize) -> InferenceOptions {
        InferenceOptions {
            batch_size,
            threads: 1,
            cache_capacity: 100,
            ..InferenceOptions::default()
        }
    }

    fn logits_encoder(dir: &Path, batch_size: usize) -> Encoder<Logits> {
        Encoder::load(
            &bag_model(dir),
            None,
            Logits { labels: 2 },
            options(batch_size),
        )
        .unwrap()
    }

    fn row(ids: &[u32]) -> TokenIds {
        TokenIds::single(ids.to_vec())
    }

    /// One way of counting: a row asked for is a request, a row answered without running is a
    /// cache hit (repeats within a request too), a row run is a model query; padding is
    /// counted per batch.
    #[test]
    fn the_cached_path_counts_requests_hits_and_queries() {
        let dir = tempfile::tempdir().unwrap();
        let mut encoder = logits_encoder(dir.path(), 2);
        let (a, b, c) = (row(&[1, 4, 2]), row(&[1, 5, 6, 2]), row(&[1, 7, 2]));
        let first = encoder
            .cached(
                &[a.clone(), b.clone(), a.clone(), c.clone()],
                &mut |_, _| {},
            )
            .unwrap();
        assert_eq!(first[0], first[2]);
        let s = encoder.stats();
        assert_eq!((s.requests, s.cache_hits, s.model_queries), (4, 1, 3));
        // Sorted by length: a and c (3 tokens) in one batch, b alone.
        assert_eq!((s.batches, s.real_tokens, s.padded_tokens), (2, 10, 10));
        let again = encoder
            .cached(&[c.clone(), b.clone()], &mut |_, _| {})
            .unwrap();
        assert_eq!(
            (again[0].clone(), again[1].clone()),
            (first[3].clone(), first[1].clone())
        );
        let s = encoder.stats();
        assert_eq!((s.requests, s.cache_hits, s.model_queries), (6, 3, 3));
        assert_eq!(encoder.cache().len(), 3);
        encoder.add_stats(&QueryStats {
            model_queries: 10,
            ..QueryStats::default()
        });
        assert_eq!(encoder.stats().model_queries, 13);
    }

    /// The uncached path runs every row, repeats too, and answers in request order whatever
    /// order the batches ran in.
    #[test]
    fn the_uncached_path_runs_every_row_in_request_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut batched = logits_encoder(dir.path(), 8);
        // One length, so the batch has no padding and each row's logits are its own.
        let rows = [
            row(&[1, 4, 2]),
            row(&[1, 7, 2]),
            row(&[1, 7, 2]),
            row(&[1, 5, 2]),
        ];
        let out = batched.run(&rows).unwrap();
        let s = batched.stats();
        assert_eq!(
            (s.requests, s.cache_hits, s.model_queries, s.batches),
            (4, 0, 4, 1)
        );
        assert!(batched.cache().is_empty());
        let mut alone = logits_encoder(dir.path(), 1);
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(out[i], alone.run(std::slice::from_ref(r)).unwrap()[0]);
        }
        assert_ne!(out[0], out[1]);
        assert_eq!(alone.stats().batches, 4);
    }

    #[test]
    fn batches_are_cut_at_the_batch_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut encoder = logits_encoder(dir.path(), 2);
        let rows: Vec<TokenIds> = (0..5).map(|i| row(&[1, 4 + i, 2])).collect();
        encoder.run(&rows).unwrap();
        assert_eq!(encoder.stats().batches, 3);
        encoder.set_batch_size(0);
        encoder.run(&rows).unwrap();
        assert_eq!(encoder.stats().batches, 8, "a batch size of 0 means 1");
    }

    /// The signature is checked once, at load, against the head it is loaded with, and the
    /// error names that head's kind.
    #[test]
    fn the_signature_is_checked_against_the_head() {
        let dir = tempfile::tempdir().unwrap();
        let path = bag_model(dir.path());
        let err = Encoder::load(&path, None, Logits { labels: 3 }, options(1))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("does not fit a classifier"), "{err}");
        let head = MaskedLm {
            mask_id: 3,
            vocab: 0,
        };
        let err = Encoder::load(&path, None, head, options(1))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("is a classifier; this command needs a fill-mask"),
            "{err}"
        );
    }

    /// A graph rewritten in memory loads like the file it came from.
    #[test]
    fn a_graph_in_memory_runs_like_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = bag_model(dir.path());
        let bytes = std::fs::read(&path).unwrap();
        let mut from_file = logits_encoder(dir.path(), 4);
        let mut in_memory =
            Encoder::load(&path, Some(bytes), Logits { labels: 2 }, options(4)).unwrap();
        let rows = [row(&[1, 4, 2]), row(&[1, 5, 6, 2])];
        assert_eq!(from_file.run(&rows).unwrap(), in_memory.run(&rows).unwrap());
    }
}
