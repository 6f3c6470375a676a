//! Universal adversarial triggers (Wallace et al. 2019) on a model without autodiff.
//!
//! A trigger is a short token sequence that, put before (or after) any input, pushes the model
//! toward a target class. The paper's search ranks replacement tokens by HotFlip's first-order
//! estimate `(e_w - e_i) . g`, where `g` is the gradient of the loss with respect to the
//! trigger's word embeddings. ONNX Runtime has no backward pass, so `g` is estimated here from
//! forward passes alone: central finite differences along random Gaussian directions
//! (antithetic pairs; or, with [`Estimator::OneSided`], one row per direction against a
//! leave-one-out baseline) in embedding space, drawn afresh for every example of the batch
//! ([`Estimator`]), evaluated on the embedding-input graph built from the unmodified export
//! ([`crate::model::embed`]). Candidates are then checked with exact forward passes
//! in a beam search, as in the paper.
//!
//! Search and evaluation use different data (by default SST-2 train and dev): the original
//! code searched and reported on the same examples, which overstates how universal a trigger
//! is.

use std::time::Instant;

use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::search_state::{Checkpoint, CheckpointError, SearchState};
use crate::model::embed::{EmbedError, EmbeddedRow, EmbeddingModel};
use crate::model::tokenize::TokenIds;
use crate::model::{Classifier, ModelError};

/// Why a trigger attack could not run.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The classifier failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The search checkpoint could not be read or written, or belongs to another search.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The gradient trace could not be written.
    #[error("failed to write the gradient trace {}", path.display())]
    Trace {
        /// The trace file.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The embedding-input graph failed.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// A word of `init` is not a single vocabulary entry.
    #[error("trigger init {token:?} is not one token of the model's vocabulary")]
    InitToken {
        /// The word.
        token: String,
    },
    /// `init` has another number of tokens than the trigger's length.
    #[error("trigger init has {got} tokens, --length is {length}")]
    InitLength {
        /// Tokens in `init`.
        got: usize,
        /// The trigger's length, in tokens.
        length: usize,
    },
    /// The query budget cannot pay for one iteration of the search (#30 item 12): it would
    /// return the starting trigger after 0 iterations.
    #[error(
        "--budget-queries {budget}: one iteration of this search needs {minimum} model rows \
         ({validation} for the starting trigger's validation loss, {gradient} for one gradient \
         estimate, {batch} for the batch's loss, {validation} for the new trigger's validation \
         loss); give at least {minimum}, or fewer --directions or a smaller --search-batch"
    )]
    BudgetTooSmall {
        /// The budget given.
        budget: u64,
        /// The least budget that runs one iteration.
        minimum: u64,
        /// Rows of one validation loss.
        validation: u64,
        /// Rows of one gradient estimate.
        gradient: u64,
        /// Rows of one batch loss.
        batch: u64,
    },
    /// Too few search examples are left (or there is no search corpus); says why.
    #[error("no search examples: {0}")]
    NoExamples(String),
    /// Every vocabulary entry is excluded (special, subword, number or stop word).
    #[error("no candidate tokens are left after the exclusions")]
    EmptyVocabulary,
    /// A target or source label is not one of the model's.
    #[error("unknown {role} label {label:?}: the model's labels are {known:?}")]
    Label {
        /// `target` or `source`.
        role: &'static str,
        /// The label as given.
        label: String,
        /// The model's labels.
        known: Vec<String>,
    },
    /// The tokenizer does not wrap an input in exactly two special tokens (the ids it adds to
    /// an empty text).
    #[error(
        "the tokenizer does not wrap a sequence in exactly two special tokens ({0:?}); trigger placement needs [CLS] ... [SEP]"
    )]
    Specials(Vec<u32>),
    /// The search corpus has no label column.
    #[error("{path} has no label column; trigger search needs gold labels")]
    NoLabels {
        /// The search corpus.
        path: std::path::PathBuf,
    },
    /// The search corpus's labels do not match the model's.
    #[error(transparent)]
    Corpus(#[from] crate::data::corpus::CorpusError),
}

/// Where a trigger goes in the attacked segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Position {
    /// Before the text.
    Prefix,
    /// After the text.
    Suffix,
}

/// How replacement tokens are proposed to the beam search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Proposals {
    /// HotFlip ranking with the finite-difference gradient estimate.
    Hotflip,
    /// Uniformly random tokens: the baseline the ranking must beat at the same budget.
    Random,
}

/// How the finite-difference gradient estimate spends its model rows.
///
/// Both run `2 x directions x batch` rows. `Shared` perturbs every example of the batch along
/// the same directions and differences the batch's mean loss, so each direction pair measures
/// one projection of the mean gradient: its cosine with the exact gradient is about
/// `sqrt(directions / dims)` (0.12 for 16 pairs on a 3 x 384 trigger). `PerExample` draws
/// fresh directions for every example and differences each example's own loss, so the same rows
/// measure `batch` times as many projections, each of one example's gradient; their average is
/// still an unbiased estimate of the mean gradient, and wins whenever the examples' gradients
/// agree at all (measured on MiniLM: cosine 0.30-0.43 at the same cost, see the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Estimator {
    /// Fresh directions for every example, each example's loss differenced (the default
    /// before issue 14's one-sided estimator).
    PerExample,
    /// One set of directions for the whole batch, the mean loss differenced (before issue 14's
    /// estimator work).
    Shared,
    /// Fresh directions for every example as with `PerExample`, but one row per direction
    /// instead of two: each perturbed loss less the mean of the example's other perturbed
    /// losses (a leave-one-out baseline, so the estimate stays unbiased). The same rows buy
    /// twice the directions; the baseline takes out the loss itself and the curvature's mean
    /// term, which antithetic pairs take out by their second row. The default.
    OneSided,
}

/// What the gradient estimate is shrunk toward before HotFlip ranks with it.
///
/// A finite-difference estimate is the gradient plus noise that is nearly isotropic, and the
/// estimate measures its own noise: the directions split in two halves (even and odd), and the
/// halves' difference has the noise's variance. James–Stein shrinkage toward a subspace fixed
/// before the noise was drawn then lowers the expected squared error whatever the gradient is
/// (for more than two dimensions outside the subspace), and by how much depends on how far
/// the estimate lies from the subspace compared with its noise: near, it is pulled in; far, it
/// is left alone. Two subspaces carry information on MiniLM (measured with exact gradients,
/// benches/compare): the trigger's positions' gradients share a component (cosine 0.17-0.96
/// between positions), and consecutive iterations' gradients share one too (0.3-0.8, summed
/// over positions), though the trigger and batch change. The shrunk estimate is no longer
/// unbiased, but what HotFlip needs is the ranking of `e_w . g`, and the error that ranks
/// wrong is the squared error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Shrinkage {
    /// The estimate as measured.
    None,
    /// Toward the mean over the trigger's positions.
    Positions,
    /// Toward the mean over positions, and that mean toward the direction of the previous
    /// iteration's (shrunk) estimate. The default.
    History,
}

/// How much of each part of an estimate [`shrink`] kept (1 = all, 0 = none).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Shrunk {
    /// The estimate's noise variance per coordinate, measured from its two halves.
    pub noise: f64,
    /// Kept of the part that differs between positions.
    pub positions: f64,
    /// Kept of the positions' mean apart from its projection on the previous estimate's
    /// direction (`None` without a previous estimate).
    pub history: Option<f64>,
}

/// How a trigger search runs (the recipe's trigger keys, checked).
#[derive(Debug, Clone, Serialize)]
pub struct TriggerConfig {
    /// Tokens in the trigger.
    pub length: usize,
    /// Initial trigger tokens (default: "the" repeated).
    pub init: Option<Vec<String>>,
    /// Before or after the text.
    pub position: Position,
    /// Push toward this label (targeted); `None` pushes away from each example's gold label.
    pub target: Option<usize>,
    /// Random direction pairs per gradient estimate (per example with
    /// [`Estimator::PerExample`]).
    pub directions: usize,
    /// How the gradient estimate draws its directions.
    pub estimator: Estimator,
    /// What the gradient estimate is shrunk toward.
    pub shrinkage: Shrinkage,
    /// Finite-difference step, as a multiple of the embedding table's per-coordinate RMS.
    pub sigma: f32,
    /// Candidate tokens per position.
    pub candidates: usize,
    /// Beam width: triggers kept between positions.
    pub beam: usize,
    /// Search examples per iteration.
    pub batch: usize,
    /// Iterations at most.
    pub max_iterations: usize,
    /// Stop after this many iterations without a new best loss.
    pub patience: usize,
    /// Stop once the search has run this many model rows.
    pub max_queries: Option<u64>,
    /// Stop once the search has run this long, in seconds (results then depend on the
    /// machine).
    pub max_seconds: Option<f64>,
    /// HotFlip ranking or random proposals.
    pub proposals: Proposals,
    /// Allow tokens that continue a word (`##ing`), not only a word's first piece.
    pub allow_subwords: bool,
    /// Allow tokens with digits.
    pub allow_numbers: bool,
    /// Tokens never proposed (besides special tokens): by default the label names.
    pub stop_words: Vec<String>,
}

impl Default for TriggerConfig {
    fn default() -> Self {
        Self {
            length: 3,
            init: None,
            position: Position::Prefix,
            target: None,
            // One-sided, 32 pairs' worth of rows (64 directions an example), shrunk toward
            // the positions' mean and the previous estimate: the setting that met issue 14's
            // exact-gradient goal on 4 seeds of 5 (README, "Against exact gradients").
            directions: 32,
            estimator: Estimator::OneSided,
            shrinkage: Shrinkage::History,
            sigma: 0.5,
            candidates: 20,
            beam: 2,
            batch: 32,
            max_iterations: 30,
            patience: 5,
            // A query budget keeps runs reproducible; a time budget that binds does not.
            max_queries: Some(300_000),
            max_seconds: None,
            proposals: Proposals::Hotflip,
            allow_subwords: false,
            allow_numbers: false,
            stop_words: Vec::new(),
        }
    }
}

/// A search example: its tokens without special tokens, and its gold label.
#[derive(Debug, Clone)]
pub(crate) struct SearchExample {
    pub ids: Vec<u32>,
    pub gold: usize,
}

/// One line of the loss curve.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub(crate) struct CurvePoint {
    /// Iteration (1-based).
    pub iteration: usize,
    /// The iteration's trigger, decoded.
    pub trigger: String,
    /// Loss of the best trigger on this iteration's batch.
    pub batch_loss: f64,
    /// Loss on the fixed validation batch (comparable across iterations).
    pub validation_loss: f64,
    /// Model rows run since the search began.
    pub queries: u64,
    /// Search time so far, in seconds.
    pub seconds: f64,
}

/// The trigger a search ended with (its best on the validation batch), or a given one.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TriggerResult {
    pub ids: Vec<u32>,
    pub tokens: Vec<String>,
    pub text: String,
    pub validation_loss: f64,
    pub curve: Vec<CurvePoint>,
    pub queries: u64,
    pub seconds: f64,
}

/// Renders trigger ids as (tokens, text).
pub(crate) type TokenText<'a> = dyn Fn(&[u32]) -> (Vec<String>, String) + 'a;

/// Special ids around a sequence: `[CLS] ... [SEP]` for BERT.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Specials {
    pub cls: u32,
    pub sep: u32,
}

/// The searcher: a classifier for exact losses, its embedding-input twin for gradients.
pub(crate) struct TriggerSearch<'m> {
    pub classifier: &'m mut Classifier,
    /// `None` where the embedding-input graph could not be built: the search then runs on
    /// random proposals alone.
    pub embedded: Option<&'m mut EmbeddingModel>,
    pub specials: Specials,
    pub config: TriggerConfig,
    pub hooks: SearchHooks,
}

/// What a search keeps outside its result: a checkpoint after every iteration (so a killed
/// search resumes), and a trace of its gradient estimates (for comparison with exact
/// gradients, `benches/compare`).
#[derive(Debug, Default)]
pub(crate) struct SearchHooks {
    pub checkpoint: Option<Checkpoint>,
    pub trace: Option<GradientTrace>,
}

/// JSON lines describing a search: one `setup` line (examples, validation batch, pool order,
/// allowed tokens, configuration), then per iteration its `gradient` estimates and an
/// `iteration` line. A resumed search appends to the trace of the search it resumes.
#[derive(Debug)]
pub(crate) struct GradientTrace {
    pub path: std::path::PathBuf,
    /// Added to the setup line: what the caller knows (model folder, source label).
    pub context: serde_json::Map<String, serde_json::Value>,
    pending: Vec<String>,
    written: bool,
}

impl GradientTrace {
    pub fn new(
        path: std::path::PathBuf,
        context: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        Self {
            path,
            context,
            pending: Vec::new(),
            written: false,
        }
    }

    fn push(&mut self, line: serde_json::Value) {
        self.pending.push(line.to_string());
    }

    /// Cut the trace back to what the iterations a checkpoint covers had written.
    fn truncate(&mut self, bytes: u64) -> Result<(), TriggerError> {
        let err = |source| TriggerError::Trace {
            path: self.path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(err)?;
        file.set_len(bytes).map_err(err)?;
        self.written = true;
        Ok(())
    }

    /// Write what was traced since the last flush; returns the file's length. A search that
    /// did not resume starts the file afresh on its first flush; a resumed one appends to what
    /// it resumes.
    fn flush(&mut self, resumed: bool) -> Result<u64, TriggerError> {
        use std::io::Write;
        let err = |source| TriggerError::Trace {
            path: self.path.clone(),
            source,
        };
        let fresh = !resumed && !self.written;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(fresh)
            .append(!fresh)
            .open(&self.path)
            .map_err(err)?;
        self.written = true;
        let mut text = self.pending.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        file.write_all(text.as_bytes()).map_err(err)?;
        self.pending.clear();
        file.metadata().map(|m| m.len()).map_err(err)
    }
}

/// Digest of everything a search starts from, so a checkpoint resumes only its own search.
fn search_key(
    context: &str,
    config: &TriggerConfig,
    init: &[u32],
    examples: &[SearchExample],
    allowed: &[u32],
) -> String {
    let mut text = format!(
        "{context}\n{}\n{init:?}\n{allowed:?}\n",
        serde_json::to_string(config).unwrap_or_default()
    );
    for e in examples {
        text.push_str(&format!("{}:{:?}\n", e.gold, e.ids));
    }
    crate::hash::sha256_bytes(text.as_bytes())
}

/// Place a trigger in an example: `[CLS] trigger text [SEP]` or `[CLS] text trigger [SEP]`.
/// Returns the ids and the positions the trigger occupies.
pub(crate) fn with_trigger(
    specials: Specials,
    position: Position,
    trigger: &[u32],
    text: &[u32],
) -> (Vec<u32>, usize) {
    let mut ids = Vec::with_capacity(text.len() + trigger.len() + 2);
    ids.push(specials.cls);
    let start = match position {
        Position::Prefix => {
            ids.extend_from_slice(trigger);
            ids.extend_from_slice(text);
            1
        }
        Position::Suffix => {
            ids.extend_from_slice(text);
            ids.extend_from_slice(trigger);
            1 + text.len()
        }
    };
    ids.push(specials.sep);
    (ids, start)
}

/// Mean loss of a batch: targeted `-log p(target)`, untargeted `log p(gold)`; lower is better
/// for the attacker either way.
fn loss_of(logits: &[f32], gold: usize, target: Option<usize>) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = f64::from(max)
        + logits
            .iter()
            .map(|&l| f64::from(l - max).exp())
            .sum::<f64>()
            .ln();
    match target {
        Some(t) => lse - f64::from(logits[t]),
        None => f64::from(logits[gold]) - lse,
    }
}

/// Standard normal draws by Box-Muller, from the caller's seeded stream.
fn gaussian(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        out.push((r * theta.cos()) as f32);
        out.push((r * theta.sin()) as f32);
    }
    out.truncate(n);
    out
}

/// What a vocabulary entry is, as the tokenizer that owns it says: which ids are special, and
/// how a word's first piece is marked (`##` continuations for WordPiece, `▁` / `Ġ` word starts
/// for SentencePiece and byte-level BPE).
pub(crate) struct VocabularyKind<'a> {
    pub special_ids: &'a std::collections::HashSet<u32>,
    pub marker: &'a crate::model::tokenize::WordMarker,
}

/// Token ids a trigger may use: no special tokens, and by default only whole words (a word's
/// first piece), no numbers and no stop words. Words are compared with the stop words and
/// label names after the word marker is stripped and case folded.
pub(crate) fn allowed_tokens(
    vocab: &[(u32, String)],
    kind: &VocabularyKind,
    config: &TriggerConfig,
    label_words: &[String],
) -> Vec<u32> {
    let stop: std::collections::HashSet<String> = config
        .stop_words
        .iter()
        .chain(label_words)
        .map(|w| kind.marker.bare(w).0.to_lowercase())
        .collect();
    let mut ids: Vec<u32> = vocab
        .iter()
        .filter(|(id, tok)| {
            // Bracketed entries are specials too where the tokenizer does not list them
            // (BERT's `[unused0]` ... `[unused993]`).
            let special =
                kind.special_ids.contains(id) || (tok.starts_with('[') && tok.ends_with(']'));
            let (word, starts_word) = kind.marker.bare(tok);
            let number = word.chars().any(|c| c.is_ascii_digit());
            !word.trim().is_empty()
                && !special
                && (config.allow_subwords || starts_word)
                && (config.allow_numbers || !number)
                && !stop.contains(&word.to_lowercase())
        })
        .map(|(id, _)| *id)
        .collect();
    ids.sort_unstable();
    ids
}

impl TriggerSearch<'_> {
    /// Exact mean loss of each trigger on a batch, in one batched, cached request.
    pub fn losses(
        &mut self,
        triggers: &[Vec<u32>],
        batch: &[SearchExample],
    ) -> Result<Vec<f64>, ModelError> {
        let mut inputs = Vec::with_capacity(triggers.len() * batch.len());
        for t in triggers {
            for ex in batch {
                inputs.push(TokenIds::single(
                    with_trigger(self.specials, self.config.position, t, &ex.ids).0,
                ));
            }
        }
        let logits = self.classifier.logits(&inputs, &mut |_, _| {})?;
        Ok(logits
            .chunks(batch.len().max(1))
            .map(|rows| {
                rows.iter()
                    .zip(batch)
                    .map(|(l, ex)| loss_of(l, ex.gold, self.config.target))
                    .sum::<f64>()
                    / batch.len().max(1) as f64
            })
            .collect())
    }

    /// Finite-difference estimate of d(mean loss)/d(trigger embeddings), `length x hidden`,
    /// shrunk as the configuration says (toward `previous`, the last iteration's estimate, with
    /// [`Shrinkage::History`]); with what the shrinkage kept, unless it is [`Shrinkage::None`].
    pub fn gradient(
        &mut self,
        trigger: &[u32],
        batch: &[SearchExample],
        previous: Option<&[f32]>,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Vec<f32>, Option<Shrunk>), EmbedError> {
        let Some(embedded) = self.embedded.as_deref_mut() else {
            return Err(EmbedError::Unavailable);
        };
        let h = embedded.hidden();
        let len = trigger.len();
        let rms = embedded.table_rms();
        let sigma = self.config.sigma * rms;
        let base: Vec<(Vec<u32>, usize, Vec<f32>)> = batch
            .iter()
            .map(|ex| {
                let (ids, start) =
                    with_trigger(self.specials, self.config.position, trigger, &ex.ids);
                let emb = embedded.embed(&ids);
                (ids, start, emb)
            })
            .collect();
        let (grad, split) = if self.config.estimator == Estimator::OneSided {
            one_sided_gradient(
                embedded,
                &base,
                batch,
                len,
                2 * self.config.directions,
                sigma,
                self.config.target,
                rng,
            )?
        } else {
            two_sided_gradient(embedded, &self.config, &base, batch, len, sigma, rng)?
        };
        let previous = match self.config.shrinkage {
            Shrinkage::None => return Ok((grad, None)),
            Shrinkage::Positions => None,
            Shrinkage::History => previous,
        };
        let noise = split.iter().map(|x| x * x).sum::<f64>() / split.len().max(1) as f64;
        let (shrunk, kept) = shrink(&grad, len, h, noise, previous);
        Ok((shrunk, Some(kept)))
    }

    /// HotFlip: for each position, the `k` allowed tokens with the smallest `(e_w - e_cur) . g`.
    pub fn hotflip_candidates(
        &self,
        trigger: &[u32],
        grad: &[f32],
        allowed: &[u32],
    ) -> Vec<Vec<u32>> {
        let Some(embedded) = self.embedded.as_deref() else {
            return vec![Vec::new(); trigger.len()];
        };
        let h = embedded.hidden();
        (0..trigger.len())
            .map(|p| {
                let g = &grad[p * h..(p + 1) * h];
                let mut scored: Vec<(f32, u32)> = allowed
                    .iter()
                    .filter(|&&w| w != trigger[p])
                    .map(|&w| {
                        (
                            embedded
                                .embedding(w)
                                .iter()
                                .zip(g)
                                .map(|(a, b)| a * b)
                                .sum::<f32>(),
                            w,
                        )
                    })
                    .collect();
                let k = self.config.candidates.min(scored.len());
                if k == 0 {
                    return Vec::new();
                }
                scored
                    .select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                scored.truncate(k);
                scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                scored.into_iter().map(|(_, w)| w).collect()
            })
            .collect()
    }

    fn random_candidates(
        &self,
        trigger: &[u32],
        allowed: &[u32],
        rng: &mut ChaCha8Rng,
    ) -> Vec<Vec<u32>> {
        (0..trigger.len())
            .map(|p| {
                let mut out = Vec::with_capacity(self.config.candidates);
                while out.len() < self.config.candidates.min(allowed.len().saturating_sub(1)) {
                    let w = allowed[rng.random_range(0..allowed.len())];
                    if w != trigger[p] && !out.contains(&w) {
                        out.push(w);
                    }
                }
                out
            })
            .collect()
    }

    fn queries(&self) -> u64 {
        self.classifier.stats().model_queries + self.embedded.as_ref().map_or(0, |e| e.queries())
    }

    /// Run the search. `examples` are the search split; a fixed validation batch is carved
    /// from them to make losses comparable across iterations.
    pub fn run(
        &mut self,
        init: Vec<u32>,
        examples: &[SearchExample],
        allowed: &[u32],
        rng: &mut ChaCha8Rng,
        token_text: &TokenText,
        log: &mut dyn FnMut(&CurvePoint),
    ) -> Result<TriggerResult, TriggerError> {
        if examples.len() < 2 {
            return Err(TriggerError::NoExamples(format!(
                "{} search examples",
                examples.len()
            )));
        }
        if allowed.is_empty() {
            return Err(TriggerError::EmptyVocabulary);
        }
        let start = Instant::now();
        let queries_at_start = self.queries();
        let stats_at_start = self.classifier.stats();
        let embedded_at_start = self.embedded.as_ref().map_or(0, |e| e.queries());
        let mut order: Vec<usize> = (0..examples.len()).collect();
        order.shuffle(rng);
        let validation_size = self.config.batch.clamp(1, examples.len() / 2);
        let validation: Vec<SearchExample> = order[..validation_size]
            .iter()
            .map(|&i| examples[i].clone())
            .collect();
        let pool: Vec<usize> = order[validation_size..].to_vec();
        // #30 item 12: a budget that cannot pay for one iteration is an error, before any
        // model row of the search (the costs as the loop below counts them).
        if let Some(budget) = self.config.max_queries {
            let batch = self.config.batch.min(pool.len()) as u64;
            let gradient = match self.config.proposals {
                Proposals::Hotflip if self.embedded.is_some() => {
                    2 * self.config.directions as u64 * batch
                }
                _ => 0,
            };
            let validation = validation.len() as u64;
            let minimum = 2 * validation + gradient + batch;
            if budget < minimum {
                return Err(TriggerError::BudgetTooSmall {
                    budget,
                    minimum,
                    validation,
                    gradient,
                    batch,
                });
            }
        }
        let checkpoint = self.hooks.checkpoint.take();
        let key = checkpoint
            .as_ref()
            .map(|c| search_key(&c.context, &self.config, &init, examples, allowed));
        let resumed = match (&checkpoint, &key) {
            (Some(c), Some(k)) => c.open(k)?,
            _ => None,
        };
        let is_resumed = resumed.is_some();
        if let Some(trace) = self.hooks.trace.as_mut()
            && !is_resumed
        {
            let mut setup = serde_json::Map::new();
            setup.insert("type".into(), "setup".into());
            setup.extend(trace.context.clone());
            let position = match self.config.position {
                Position::Prefix => "prefix",
                Position::Suffix => "suffix",
            };
            let rest = serde_json::json!({
                "position": position,
                "target": self.config.target,
                "cls": self.specials.cls,
                "sep": self.specials.sep,
                "init": init,
                "allowed": allowed,
                "examples": examples.iter().map(|e| serde_json::json!({"ids": e.ids, "gold": e.gold})).collect::<Vec<_>>(),
                "validation": &order[..validation_size],
                "pool": pool,
                "config": {
                    "length": self.config.length,
                    "directions": self.config.directions,
                    "estimator": self.config.estimator,
                    "shrinkage": self.config.shrinkage,
                    "sigma": self.config.sigma,
                    "sigma_abs": self.embedded.as_ref().map(|e| self.config.sigma * e.table_rms()),
                    "candidates": self.config.candidates,
                    "beam": self.config.beam,
                    "batch": self.config.batch,
                    "max_iterations": self.config.max_iterations,
                    "patience": self.config.patience,
                    "max_queries": self.config.max_queries,
                    "proposals": self.config.proposals,
                },
            });
            if let serde_json::Value::Object(m) = rest {
                setup.extend(m);
            }
            trace.push(serde_json::Value::Object(setup));
        }
        let mut cursor = 0;
        // The last estimate, for Shrinkage::History.
        let mut previous: Option<Vec<f32>> = None;
        let mut trigger;
        let mut best;
        let mut curve;
        let mut stale = 0;
        let mut done = 0;
        let mut finished = false;
        let mut seconds_before = 0.0;
        let mut saved = (0, 0);
        match resumed {
            Some(r) => {
                let state = r.state;
                saved = (state.cache_entries, state.cache_bytes);
                for (k, v) in r.journal {
                    self.classifier.cache_mut().insert(k, v);
                }
                self.classifier.add_stats(&state.classifier);
                if let Some(e) = self.embedded.as_deref_mut() {
                    e.add_queries(state.embedded_queries);
                }
                *rng = state.rng().ok_or_else(|| CheckpointError::Corrupt {
                    path: checkpoint
                        .as_ref()
                        .map(|c| c.dir.clone())
                        .unwrap_or_default(),
                    problem: "unreadable random generator state".into(),
                })?;
                cursor = state.cursor;
                previous = state.previous_estimate;
                trigger = state.trigger;
                best = (state.best_loss, state.best);
                curve = state.curve;
                stale = state.stale;
                done = state.iteration;
                finished = state.finished;
                seconds_before = state.seconds;
                if let (Some(trace), Some(bytes)) = (self.hooks.trace.as_mut(), state.trace_bytes) {
                    trace.truncate(bytes)?;
                }
                self.classifier.cache_mut().start_journal();
            }
            None => {
                if checkpoint.is_some() {
                    self.classifier.cache_mut().start_journal();
                }
                trigger = init;
                best = (
                    self.losses(std::slice::from_ref(&trigger), &validation)?[0],
                    trigger.clone(),
                );
                curve = Vec::new();
            }
        }
        let elapsed = |start: &Instant| seconds_before + start.elapsed().as_secs_f64();
        // The query budget is checked before every model request, with the rows the request
        // may run (cache hits only make it cheaper): a search never spends more than its
        // budget, and stops at the first request that would not fit.
        let max_queries = self.config.max_queries;
        let left = |s: &Self| {
            max_queries.map_or(u64::MAX, |q| {
                q.saturating_sub(s.queries() - queries_at_start)
            })
        };
        let first = if finished {
            self.config.max_iterations + 1
        } else {
            done + 1
        };
        'search: for iteration in first..=self.config.max_iterations {
            let batch: Vec<SearchExample> = (0..self.config.batch.min(pool.len()))
                .map(|k| examples[pool[(cursor + k) % pool.len()]].clone())
                .collect();
            let rows = batch.len() as u64;
            // This iteration's fixed costs: the gradient estimate, the current trigger's
            // batch loss, and the validation loss of the trigger it ends with.
            let gradient_rows = match self.config.proposals {
                Proposals::Hotflip if self.embedded.is_some() => {
                    2 * self.config.directions as u64 * rows
                }
                _ => 0,
            };
            if left(self) < gradient_rows + rows + validation.len() as u64 {
                break 'search;
            }
            let batch_start = cursor;
            cursor = (cursor + batch.len()) % pool.len().max(1);
            let candidates = match self.config.proposals {
                Proposals::Hotflip if self.embedded.is_some() => {
                    let (grad, shrunk) =
                        self.gradient(&trigger, &batch, previous.as_deref(), rng)?;
                    if let Some(trace) = self.hooks.trace.as_mut() {
                        let indices: Vec<usize> = (0..batch.len())
                            .map(|k| pool[(batch_start + k) % pool.len()])
                            .collect();
                        trace.push(serde_json::json!({
                            "type": "gradient",
                            "iteration": iteration,
                            "trigger": trigger,
                            "batch": indices,
                            "estimate": grad,
                            "shrunk": shrunk,
                        }));
                    }
                    let candidates = self.hotflip_candidates(&trigger, &grad, allowed);
                    if self.config.shrinkage == Shrinkage::History {
                        previous = Some(grad);
                    }
                    candidates
                }
                _ => self.random_candidates(&trigger, allowed, rng),
            };
            // Beam search over positions, left to right, scoring with exact forward passes.
            let mut beams: Vec<(f64, Vec<u32>)> = vec![(
                self.losses(std::slice::from_ref(&trigger), &batch)?[0],
                trigger.clone(),
            )];
            for (p, cands) in candidates.iter().enumerate() {
                let mut proposals: Vec<Vec<u32>> = Vec::new();
                for (_, b) in &beams {
                    for &c in cands {
                        let mut t = b.clone();
                        t[p] = c;
                        proposals.push(t);
                    }
                }
                // Keep room for the validation pass; score only the proposals that fit.
                let affordable = left(self).saturating_sub(validation.len() as u64) / rows.max(1);
                proposals.truncate(usize::try_from(affordable).unwrap_or(usize::MAX));
                if proposals.is_empty() {
                    break;
                }
                let losses = self.losses(&proposals, &batch)?;
                let mut pool_beams: Vec<(f64, Vec<u32>)> = beams.clone();
                pool_beams.extend(losses.into_iter().zip(proposals));
                pool_beams.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                pool_beams.dedup_by(|a, b| a.1 == b.1);
                pool_beams.truncate(self.config.beam.max(1));
                beams = pool_beams;
            }
            let batch_loss = beams[0].0;
            trigger = beams[0].1.clone();
            let validation_loss = self.losses(std::slice::from_ref(&trigger), &validation)?[0];
            if validation_loss < best.0 - 1e-6 {
                best = (validation_loss, trigger.clone());
                stale = 0;
            } else {
                stale += 1;
            }
            let point = CurvePoint {
                iteration,
                trigger: token_text(&trigger).1,
                batch_loss,
                validation_loss,
                queries: self.queries() - queries_at_start,
                seconds: elapsed(&start),
            };
            log(&point);
            if let Some(trace) = self.hooks.trace.as_mut() {
                trace.push(serde_json::json!({
                    "type": "iteration",
                    "iteration": iteration,
                    "trigger": trigger,
                    "text": point.trigger,
                    "batch_loss": batch_loss,
                    "validation_loss": validation_loss,
                    "queries": point.queries,
                    "seconds": point.seconds,
                }));
            }
            curve.push(point);
            let out_of_queries = self
                .config
                .max_queries
                .is_some_and(|q| self.queries() - queries_at_start >= q);
            let out_of_time = self
                .config
                .max_seconds
                .is_some_and(|s| elapsed(&start) >= s);
            let stop = stale >= self.config.patience || out_of_queries || out_of_time;
            // The trace first, then the state that records the trace's length: a kill between
            // the two leaves lines the resumed search cuts off and writes again.
            let trace_bytes = match self.hooks.trace.as_mut() {
                Some(trace) => Some(trace.flush(is_resumed)?),
                None => None,
            };
            if let (Some(c), Some(k)) = (&checkpoint, &key) {
                let mut state = SearchState::new(
                    k.clone(),
                    iteration,
                    cursor,
                    trigger.clone(),
                    best.clone(),
                    stale,
                    stop,
                    curve.clone(),
                    rng,
                );
                state.classifier = self.classifier.stats().since(&stats_at_start);
                state.embedded_queries =
                    self.embedded.as_ref().map_or(0, |e| e.queries()) - embedded_at_start;
                state.seconds = elapsed(&start);
                let journal = self.classifier.cache_mut().take_journal();
                // The state's entries and bytes count from the start of the search: carry
                // over what the resumed checkpoint (or the last save) had recorded.
                state.cache_entries = saved.0;
                state.cache_bytes = saved.1;
                state.trace_bytes = trace_bytes;
                state.previous_estimate = previous.clone();
                c.save(&mut state, &journal)?;
                saved = (state.cache_entries, state.cache_bytes);
            }
            if stop {
                break;
            }
        }
        if checkpoint.is_some() {
            self.classifier.cache_mut().stop_journal();
        }
        if let Some(trace) = self.hooks.trace.as_mut() {
            trace.flush(is_resumed)?;
        }
        self.hooks.checkpoint = checkpoint;
        let (tokens, text) = token_text(&best.1);
        Ok(TriggerResult {
            ids: best.1,
            tokens,
            text,
            validation_loss: best.0,
            curve,
            queries: self.queries() - queries_at_start,
            seconds: elapsed(&start),
        })
    }
}

/// Everything a trigger attack produced.
pub(crate) struct TriggerAttack {
    pub result: TriggerResult,
    pub proposals: Proposals,
    pub target: Option<usize>,
    pub source: Option<usize>,
    pub search_examples: usize,
    /// Evaluation outcomes with the searched trigger (group "trigger").
    pub searched: Vec<crate::score::ExampleOutcome>,
    /// Evaluation outcomes with random triggers of the same length (groups "random-1", ...).
    pub baseline: Vec<crate::score::ExampleOutcome>,
    pub random_triggers: Vec<String>,
}

fn label_index(
    model: &Classifier,
    role: &'static str,
    label: Option<&str>,
) -> Result<Option<usize>, TriggerError> {
    label
        .map(|l| {
            model
                .info()
                .label_index(l)
                .ok_or_else(|| TriggerError::Label {
                    role,
                    label: l.to_string(),
                    known: model.labels().to_vec(),
                })
        })
        .transpose()
}

/// Whether an example of `gold` is attacked: the source class when given, else every class
/// but the target (targeted), else everything (untargeted).
fn attacked(gold: usize, source: Option<usize>, target: Option<usize>) -> bool {
    match (source, target) {
        (Some(s), _) => gold == s,
        (None, Some(t)) => gold != t,
        (None, None) => true,
    }
}

/// Search for a trigger on `search` and evaluate it, and random baselines, on `eval`.
pub(crate) fn run_attack(
    classifier: &mut Classifier,
    settings: &super::spec::TriggerSettings,
    eval: &[super::runner::Target],
    search: Option<&crate::data::corpus::Corpus>,
    seed: u64,
    hooks: SearchHooks,
    log: &mut dyn FnMut(&CurvePoint),
) -> Result<TriggerAttack, TriggerError> {
    use rand::SeedableRng;

    let target = label_index(classifier, "target", settings.target.as_deref())?;
    let source = label_index(classifier, "source", settings.source.as_deref())?;
    let mut config = settings.config.clone();
    config.target = target;
    let special_ids = classifier.encoder().special_ids();
    if !settings.exclude.is_empty() {
        // Excluded: each listed word, and the word piece that starts it (a word the vocabulary
        // splits, such as "unwatchable", must not come back as its first piece).
        let words: Vec<&str> = settings
            .exclude
            .iter()
            .flat_map(|l| l.words.iter().map(String::as_str))
            .collect();
        let encoded = classifier.encode(&words)?;
        config
            .stop_words
            .extend(words.iter().map(|w| w.to_string()));
        for e in encoded {
            if let Some(first) = e.input.ids.iter().find(|id| !special_ids.contains(id))
                && let Some(piece) = classifier.encoder().id_to_token(*first)
            {
                config.stop_words.push(piece);
            }
        }
    }
    let wrapped = classifier.encode(&[""])?.remove(0).input.ids.to_vec();
    let [cls, sep] = wrapped[..] else {
        return Err(TriggerError::Specials(wrapped));
    };
    let specials = Specials { cls, sep };
    let strip = |ids: &[u32]| ids[1..ids.len().saturating_sub(1).max(1)].to_vec();

    let vocab: Vec<(u32, String)> = {
        let mut v: Vec<(u32, String)> = classifier
            .encoder()
            .tokenizer()
            .get_vocab(true)
            .into_iter()
            .map(|(t, id)| (id, t))
            .collect();
        v.sort();
        v
    };
    let marker = classifier.encoder().word_marker();
    let kind = VocabularyKind {
        special_ids: &special_ids,
        marker: &marker,
    };
    let allowed = allowed_tokens(&vocab, &kind, &config, classifier.labels());
    if allowed.is_empty() {
        return Err(TriggerError::EmptyVocabulary);
    }
    // The trigger as text is what the tokenizer's own decoder makes of its ids: that text,
    // placed in a sentence, is what examples.csv holds and what is evaluated below.
    let tokenizer = classifier.encoder().tokenizer().clone();
    let decode = |ids: &[u32]| -> (Vec<String>, String) {
        let tokens: Vec<String> = ids.iter().map(|&i| classifier_token(&vocab, i)).collect();
        let text = tokenizer
            .decode(ids, true)
            .map(|t| t.trim().to_string())
            .unwrap_or_else(|_| tokens.join(" "));
        (tokens, text)
    };
    let (result, search_examples, proposals) = match (&settings.given, search) {
        (Some(text), _) => {
            // A given trigger is any text: it is tokenized as the model would tokenize it, so
            // words of several pieces are allowed, and the variant is written as given.
            let encoded = classifier.encode(&[text.as_str()])?.remove(0).input;
            let ids = strip(&encoded.ids);
            let tokens = decode(&ids).0;
            let result = TriggerResult {
                ids,
                tokens,
                text: text.clone(),
                validation_loss: f64::NAN,
                curve: Vec::new(),
                queries: 0,
                seconds: 0.0,
            };
            (result, 0, config.proposals)
        }
        (None, Some(search)) => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            search_trigger(
                classifier, settings, &config, search, specials, &allowed, &decode, &mut rng,
                source, target, hooks, log,
            )?
        }
        (None, None) => {
            return Err(TriggerError::NoExamples(
                "no search corpus and no given trigger".into(),
            ));
        }
    };
    let given_text = settings.given.as_deref();
    if given_text.is_some() {
        // Random baselines have the given trigger's length in word pieces.
        config.length = result.ids.len();
    }

    // Evaluation on the other split: the searched trigger and random triggers of equal length.
    let mut baseline_rng = ChaCha8Rng::seed_from_u64(seed);
    baseline_rng.set_stream(1);
    let random: Vec<Vec<u32>> = (0..settings.random_baselines)
        .map(|_| {
            (0..config.length)
                .map(|_| allowed[baseline_rng.random_range(0..allowed.len())])
                .collect()
        })
        .collect();
    let eval: Vec<&super::runner::Target> = eval
        .iter()
        .filter(|t| t.gold.is_some_and(|g| attacked(g, source, target)))
        .collect();
    let texts: Vec<&str> = eval.iter().map(|t| t.text.as_str()).collect();
    let originals = if eval.iter().any(|t| t.context.is_some()) {
        let inputs: Vec<crate::model::Input> = eval.iter().map(|t| t.input(&t.text)).collect();
        classifier.predict_inputs(&inputs, &mut |_, _| {})?
    } else {
        let originals_encoded = classifier.encode(&texts)?;
        let originals_ids: Vec<TokenIds> = originals_encoded.into_iter().map(|e| e.input).collect();
        classifier.predict_ids(&originals_ids, &mut |_, _| {})?
    };
    // Triggers are evaluated as text: each perturbed sentence is tokenized as `robust predict`
    // would tokenize it, so every row of examples.csv reproduces when fed back, whatever the
    // tokenizer makes of a word at the start of a sentence (byte-level BPE) or of the space
    // between trigger and text.
    let mut outcome_for = |trigger_text: &str,
                           group: &str|
     -> Result<Vec<crate::score::ExampleOutcome>, TriggerError> {
        let perturbed: Vec<String> = eval
            .iter()
            .map(|t| match config.position {
                Position::Prefix => format!("{trigger_text} {}", t.text),
                Position::Suffix => format!("{} {trigger_text}", t.text),
            })
            .collect();
        let inputs: Vec<crate::model::Input> = eval
            .iter()
            .zip(&perturbed)
            .map(|(t, p)| t.input(p))
            .collect();
        // #30 item 11: a suffix trigger on an input longer than the model's limit is cut off
        // with the end of the input; such rows are skipped with their reason, not counted as
        // rows the trigger failed to flip.
        let cut: Vec<bool> = match config.position {
            Position::Suffix => classifier
                .encode_inputs(&inputs)?
                .iter()
                .map(|e| e.truncated)
                .collect(),
            Position::Prefix => vec![false; inputs.len()],
        };
        let predictions = classifier.predict_inputs(&inputs, &mut |_, _| {})?;
        Ok(eval
            .iter()
            .zip(&originals)
            .zip(predictions)
            .zip(perturbed)
            .zip(cut)
            .map(
                |((((t, original), prediction), text), cut)| crate::score::ExampleOutcome {
                    line: t.line,
                    text: t.text.clone(),
                    context: t.context.clone(),
                    gold: t.gold,
                    original: original.clone(),
                    result: if cut {
                        Err(crate::perturb::SkipReason::TriggerTruncated)
                    } else {
                        Ok(vec![crate::score::PerturbedOutcome {
                            perturbation: crate::perturb::Perturbation {
                                text,
                                detail: format!("trigger '{trigger_text}'"),
                                group: group.to_string(),
                            },
                            prediction,
                        }])
                    },
                    queries: 2,
                },
            )
            .collect())
    };
    let searched_text = given_text.map_or_else(|| decode(&result.ids).1, str::to_string);
    let searched = outcome_for(&searched_text, "trigger")?;
    let mut baseline = Vec::new();
    let mut random_triggers = Vec::new();
    for (i, r) in random.iter().enumerate() {
        let text = decode(r).1;
        let outcomes = outcome_for(&text, &format!("random-{}", i + 1))?;
        random_triggers.push(text);
        if baseline.is_empty() {
            baseline = outcomes;
        } else {
            for (b, o) in baseline.iter_mut().zip(outcomes) {
                if let (Ok(vs), Ok(mut new)) = (b.result.as_mut(), o.result) {
                    vs.append(&mut new);
                }
                b.queries += 1;
            }
        }
    }
    Ok(TriggerAttack {
        result,
        proposals,
        target,
        source,
        search_examples,
        searched,
        baseline,
        random_triggers,
    })
}

/// Search a trigger on `search` (the attacked class's correctly classified examples).
#[allow(clippy::too_many_arguments)]
fn search_trigger(
    classifier: &mut Classifier,
    settings: &super::spec::TriggerSettings,
    config: &TriggerConfig,
    search: &crate::data::corpus::Corpus,
    specials: Specials,
    allowed: &[u32],
    decode: &TokenText,
    rng: &mut ChaCha8Rng,
    source: Option<usize>,
    target: Option<usize>,
    hooks: SearchHooks,
    log: &mut dyn FnMut(&CurvePoint),
) -> Result<(TriggerResult, usize, Proposals), TriggerError> {
    let mut config = config.clone();
    let strip = |ids: &[u32]| ids[1..ids.len().saturating_sub(1).max(1)].to_vec();
    // Search examples: the attacked class(es), long enough to resemble sentences, and
    // classified correctly to begin with (there is nothing to flip otherwise).
    if search.label_column.is_none() {
        return Err(TriggerError::NoLabels {
            path: search.path.clone(),
        });
    }
    let gold = search.label_indices(classifier.info())?;
    let texts: Vec<&str> = search
        .rows
        .iter()
        .zip(&gold)
        .filter(|(_, g)| attacked(**g, source, target))
        .map(|(r, _)| r.text.as_str())
        .collect();
    let golds: Vec<usize> = gold
        .iter()
        .copied()
        .filter(|&g| attacked(g, source, target))
        .collect();
    let encoded = classifier.encode(&texts)?;
    let mut candidates: Vec<(TokenIds, usize)> = encoded
        .into_iter()
        .zip(golds)
        .filter(|(e, _)| e.input.len() >= settings.min_search_tokens + 2)
        .map(|(e, g)| (e.input, g))
        .collect();
    candidates.shuffle(rng);
    // Check correctness on a few more than needed, then keep the first that are right.
    candidates.truncate(settings.max_search_examples.saturating_mul(2));
    let inputs: Vec<TokenIds> = candidates.iter().map(|(t, _)| t.clone()).collect();
    let predictions = classifier.predict_ids(&inputs, &mut |_, _| {})?;
    let examples: Vec<SearchExample> = candidates
        .iter()
        .zip(&predictions)
        .filter(|((_, g), p)| p.label == *g)
        .map(|((t, g), _)| SearchExample {
            ids: strip(&t.ids),
            gold: *g,
        })
        .take(settings.max_search_examples)
        .collect();

    let info = classifier.info().clone();
    let options = classifier.options().clone();
    let mut embedded = match EmbeddingModel::load(&info, &options) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(
                "cannot build the embedding-input graph ({e}); falling back to random proposals"
            );
            config.proposals = Proposals::Random;
            None
        }
    };
    // A word is looked up as a vocabulary entry with its word-start marker (`▁the`, `Ġthe`)
    // where the vocabulary marks word starts, else as it is written.
    let marker = classifier.encoder().word_marker();
    let word_id = |w: &str| -> Option<u32> {
        let encoder = classifier.encoder();
        match marker {
            crate::model::tokenize::WordMarker::Start(m) => encoder
                .token_to_id(&format!("{m}{w}"))
                .or_else(|| encoder.token_to_id(w)),
            _ => encoder.token_to_id(w),
        }
    };
    let init: Vec<u32> = match &config.init {
        Some(words) => words
            .iter()
            .map(|w| word_id(w).ok_or_else(|| TriggerError::InitToken { token: w.clone() }))
            .collect::<Result<_, _>>()?,
        None => {
            // "the", unless an exclusion list keeps it out.
            let the = word_id("the")
                .filter(|id| allowed.binary_search(id).is_ok())
                .unwrap_or(allowed[0]);
            vec![the; config.length]
        }
    };
    if init.len() != config.length {
        return Err(TriggerError::InitLength {
            got: init.len(),
            length: config.length,
        });
    }
    let mut search = TriggerSearch {
        classifier: &mut *classifier,
        embedded: embedded.as_mut(),
        specials,
        config: config.clone(),
        hooks,
    };
    let result = search.run(init, &examples, allowed, rng, decode, log)?;
    // The proposals the search used: random where the embedding graph could not be built.
    Ok((result, examples.len(), config.proposals))
}

fn classifier_token(vocab: &[(u32, String)], id: u32) -> String {
    vocab
        .binary_search_by_key(&id, |(i, _)| *i)
        .map(|k| vocab[k].1.clone())
        .unwrap_or_else(|_| format!("[{id}]"))
}

/// An example's row with the trigger's embeddings (from `offset`, `u.len()` values) moved by
/// `step` along `u`.
fn perturbed_row(
    ids: &[u32],
    embeddings: &[f32],
    offset: usize,
    step: f32,
    u: &[f32],
) -> EmbeddedRow {
    let mut e = embeddings.to_vec();
    for (v, &x) in e[offset..offset + u.len()].iter_mut().zip(u) {
        *v += step * x;
    }
    EmbeddedRow {
        ids: ids.to_vec(),
        type_ids: vec![0; ids.len()],
        embeddings: e,
    }
}

/// [`Estimator::PerExample`] and [`Estimator::Shared`]: antithetic pairs, with the
/// difference of the estimates from even and odd pairs (for [`shrink`]).
fn two_sided_gradient(
    embedded: &mut EmbeddingModel,
    config: &TriggerConfig,
    base: &[(Vec<u32>, usize, Vec<f32>)],
    batch: &[SearchExample],
    len: usize,
    sigma: f32,
    rng: &mut ChaCha8Rng,
) -> Result<(Vec<f32>, Vec<f64>), EmbedError> {
    let h = embedded.hidden();
    let n = batch.len();
    // One direction per (pair, example) row block: shared across the batch, or fresh for
    // every example. Drawn pair by pair, example by example, from the search's stream.
    let per_example = config.estimator == Estimator::PerExample;
    let directions: Vec<Vec<f32>> = (0..config.directions)
        .flat_map(|_| {
            let draws = if per_example { n } else { 1 };
            (0..draws)
                .map(|_| gaussian(rng, len * h))
                .collect::<Vec<_>>()
        })
        .collect();
    let direction = |pair: usize, example: usize| {
        if per_example {
            &directions[pair * n + example]
        } else {
            &directions[pair]
        }
    };
    let mut rows = Vec::with_capacity(2 * config.directions * n);
    for pair in 0..config.directions {
        for sign in [1.0f32, -1.0] {
            for (example, (ids, start, emb)) in base.iter().enumerate() {
                let u = direction(pair, example);
                rows.push(perturbed_row(ids, emb, start * h, sign * sigma, u));
            }
        }
    }
    let logits = embedded.logits(&rows)?;
    let losses: Vec<f64> = logits
        .chunks(n.max(1))
        .flat_map(|chunk| {
            chunk
                .iter()
                .zip(batch)
                .map(|(l, ex)| loss_of(l, ex.gold, config.target))
        })
        .collect();
    let step = 2.0 * f64::from(sigma) * config.directions as f64;
    let mut grad = vec![0f32; len * h];
    let mut split = vec![0f64; len * h];
    for pair in 0..config.directions {
        let plus = &losses[(2 * pair) * n..(2 * pair + 1) * n];
        let minus = &losses[(2 * pair + 1) * n..(2 * pair + 2) * n];
        let half = if pair % 2 == 0 { 1.0 } else { -1.0 };
        if per_example {
            for example in 0..n {
                let scale = ((plus[example] - minus[example]) / (step * n as f64)) as f32;
                add_term(&mut grad, &mut split, half, scale, direction(pair, example));
            }
        } else {
            // The mean loss's difference, summed in the same order as before, so that the
            // shared estimator's estimates (and searches) are those of earlier versions.
            let mean = |l: &[f64]| l.iter().sum::<f64>() / n as f64;
            let scale = ((mean(plus) - mean(minus)) / step) as f32;
            add_term(&mut grad, &mut split, half, scale, direction(pair, 0));
        }
    }
    Ok((grad, split))
}

/// [`Estimator::OneSided`]: `directions` one-sided differences per example (`trigger_len`
/// positions of the rows in `base` perturbed), each against the mean of the example's other
/// perturbed losses, averaged over directions and examples. Directions are drawn direction by
/// direction, example by example, from the search's stream.
#[allow(clippy::too_many_arguments)]
fn one_sided_gradient(
    embedded: &mut EmbeddingModel,
    base: &[(Vec<u32>, usize, Vec<f32>)],
    batch: &[SearchExample],
    trigger_len: usize,
    directions: usize,
    sigma: f32,
    target: Option<usize>,
    rng: &mut ChaCha8Rng,
) -> Result<(Vec<f32>, Vec<f64>), EmbedError> {
    let h = embedded.hidden();
    let n = batch.len();
    let dims = trigger_len * h;
    let draws: Vec<Vec<f32>> = (0..directions * n).map(|_| gaussian(rng, dims)).collect();
    let mut rows = Vec::with_capacity(directions * n);
    for d in 0..directions {
        for (example, (ids, start, emb)) in base.iter().enumerate() {
            let u = &draws[d * n + example];
            rows.push(perturbed_row(ids, emb, start * h, sigma, u));
        }
    }
    let logits = embedded.logits(&rows)?;
    let losses: Vec<f64> = logits
        .iter()
        .enumerate()
        .map(|(row, l)| loss_of(l, batch[row % n.max(1)].gold, target))
        .collect();
    let mut grad = vec![0f32; dims];
    let mut split = vec![0f64; dims];
    if directions < 2 || n == 0 {
        // No other direction to take a baseline from: nothing is known.
        return Ok((grad, split));
    }
    let m = directions as f64;
    for example in 0..n {
        let of = |d: usize| losses[d * n + example];
        let total: f64 = (0..directions).map(of).sum();
        for d in 0..directions {
            // Leave-one-out: the baseline does not depend on this direction, so subtracting it
            // changes the variance, not the expectation.
            let baseline = (total - of(d)) / (m - 1.0);
            let scale = ((of(d) - baseline) / (f64::from(sigma) * m * n as f64)) as f32;
            let half = if d % 2 == 0 { 1.0 } else { -1.0 };
            add_term(&mut grad, &mut split, half, scale, &draws[d * n + example]);
        }
    }
    Ok((grad, split))
}

/// Adds one direction's term to the estimate, and to (`half` = 1) or from (-1) the difference
/// between the estimates from even and odd directions. The halves' terms are independent with
/// the same spread, so that difference has the estimate's own noise variance: what [`shrink`]
/// weighs the estimate by. The estimate is summed in `f32` as before shrinkage existed.
fn add_term(grad: &mut [f32], split: &mut [f64], half: f64, scale: f32, u: &[f32]) {
    let signed = half * f64::from(scale);
    for ((g, s), &x) in grad.iter_mut().zip(split.iter_mut()).zip(u) {
        *g += scale * x;
        *s += signed * f64::from(x);
    }
}

/// James–Stein shrinkage of a `len x h` gradient estimate whose coordinates carry independent
/// noise of variance `noise` (see [`Shrinkage`]): the part that differs between positions is
/// shrunk toward their mean, and with `previous` that mean toward its projection on the
/// previous estimate's positions' mean. Each part keeps `1 - (dims - 2) noise / |part|^2` of
/// itself (at least 0), `dims` the dimensions it spans: `(len - 1) h` and `h - 1`.
pub(crate) fn shrink(
    grad: &[f32],
    len: usize,
    h: usize,
    noise: f64,
    previous: Option<&[f32]>,
) -> (Vec<f32>, Shrunk) {
    let keep = |dims: usize, part: &[f64]| {
        let norm: f64 = part.iter().map(|x| x * x).sum();
        if dims <= 2 || norm <= 0.0 {
            return 1.0;
        }
        (1.0 - (dims - 2) as f64 * noise / norm).max(0.0)
    };
    let position_mean = |v: &dyn Fn(usize) -> f64| -> Vec<f64> {
        (0..h)
            .map(|j| (0..len).map(|p| v(p * h + j)).sum::<f64>() / len.max(1) as f64)
            .collect()
    };
    let mean = position_mean(&|k| f64::from(grad[k]));
    let apart: Vec<f64> = (0..len * h)
        .map(|k| f64::from(grad[k]) - mean[k % h])
        .collect();
    let positions = keep((len.saturating_sub(1)) * h, &apart);
    // The previous estimate's direction, in the positions' mean: the mean's projection on it
    // is kept whole, the rest shrunk.
    let along = previous.and_then(|prev| {
        let dir = position_mean(&|k| f64::from(prev.get(k).copied().unwrap_or(0.0)));
        let norm = dir.iter().map(|x| x * x).sum::<f64>().sqrt();
        (norm > 0.0).then(|| {
            let unit: Vec<f64> = dir.iter().map(|x| x / norm).collect();
            let dot: f64 = unit.iter().zip(&mean).map(|(u, m)| u * m).sum();
            unit.into_iter().map(|u| dot * u).collect::<Vec<f64>>()
        })
    });
    let (center, history) = match along {
        Some(along) => {
            // In the full `len x h` space the mean is repeated over positions, so its parts'
            // squared norms are `len` times those of the `h` vectors.
            let rest: Vec<f64> = mean
                .iter()
                .zip(&along)
                .flat_map(|(m, a)| std::iter::repeat_n(m - a, len))
                .collect();
            let kept = keep(h.saturating_sub(1), &rest);
            let center: Vec<f64> = mean
                .iter()
                .zip(&along)
                .map(|(m, a)| a + kept * (m - a))
                .collect();
            (center, Some(kept))
        }
        None => (mean, None),
    };
    let out = (0..len * h)
        .map(|k| (center[k % h] + positions * apart[k]) as f32)
        .collect();
    (
        out,
        Shrunk {
            noise,
            positions,
            history,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn trigger_placement() {
        let s = Specials { cls: 101, sep: 102 };
        assert_eq!(
            with_trigger(s, Position::Prefix, &[7, 8], &[1, 2, 3]),
            (vec![101, 7, 8, 1, 2, 3, 102], 1)
        );
        assert_eq!(
            with_trigger(s, Position::Suffix, &[7, 8], &[1, 2, 3]),
            (vec![101, 1, 2, 3, 7, 8, 102], 4)
        );
    }

    #[test]
    fn losses_point_the_right_way() {
        // Targeted: confident in the target -> small loss.
        assert!(loss_of(&[0.0, 5.0], 0, Some(1)) < loss_of(&[5.0, 0.0], 0, Some(1)));
        // Untargeted: confident in gold -> large loss (the attacker wants it small).
        assert!(loss_of(&[5.0, 0.0], 0, None) > loss_of(&[0.0, 5.0], 0, None));
    }

    #[test]
    fn gaussian_draws_look_standard() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let x = gaussian(&mut rng, 20_000);
        let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / x.len() as f64;
        let var = x
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / x.len() as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }

    /// A bag-of-embeddings model folder whose gradient is easy to check.
    fn small_model(dir: &std::path::Path) -> (usize, usize) {
        let (vocab, hidden, labels) = (12usize, 4usize, 2usize);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let table = gaussian(&mut rng, vocab * hidden);
        let weights = gaussian(&mut rng, hidden * labels);
        let bytes = crate::onnx::build::bag_classifier(&table, vocab, hidden, &weights, labels);
        std::fs::write(dir.join("model.onnx"), bytes).unwrap();
        let words: Vec<String> = (0..vocab)
            .map(|i| match i {
                0 => "[PAD]".to_string(),
                1 => "[CLS]".to_string(),
                2 => "[SEP]".to_string(),
                3 => "[UNK]".to_string(),
                i => format!("w{i}"),
            })
            .collect();
        let vocab_json: serde_json::Map<String, serde_json::Value> = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), serde_json::json!(i)))
            .collect();
        let tokenizer = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null,
            "decoder": null, "model": {"type": "WordLevel", "vocab": vocab_json, "unk_token": "[UNK]"}
        });
        std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
        std::fs::write(
            dir.join("config.json"),
            r#"{"id2label": {"0": "neg", "1": "pos"}, "max_position_embeddings": 64}"#,
        )
        .unwrap();
        (vocab, hidden)
    }

    /// Cosines between finite-difference estimates (one per seed in `seeds`) and the gradient
    /// measured coordinate by coordinate, on a bag-of-embeddings model built in the test; and
    /// whether HotFlip's candidates from the first estimate are allowed tokens.
    fn estimate_cosines(
        directions: usize,
        estimator: Estimator,
        shrinkage: Shrinkage,
        seeds: std::ops::Range<u64>,
    ) -> Vec<f64> {
        let dir = tempfile::tempdir().unwrap();
        let (_, hidden) = small_model(dir.path());
        let options = crate::model::InferenceOptions {
            threads: 1,
            cache_capacity: 0,
            ..Default::default()
        };
        let mut classifier = Classifier::load(dir.path(), options.clone()).unwrap();
        let info = classifier.info().clone();
        let mut embedded = EmbeddingModel::load(&info, &options).unwrap();
        let config = TriggerConfig {
            directions,
            estimator,
            shrinkage,
            sigma: 0.05,
            target: Some(1),
            ..TriggerConfig::default()
        };
        let batch: Vec<SearchExample> = [vec![4, 5, 6], vec![7, 8], vec![9, 10, 11, 4], vec![6, 6]]
            .into_iter()
            .map(|ids| SearchExample { ids, gold: 0 })
            .collect();
        let trigger = vec![5u32, 6, 7];
        let specials = Specials { cls: 1, sep: 2 };
        let mut search = TriggerSearch {
            classifier: &mut classifier,
            embedded: Some(&mut embedded),
            specials,
            config,
            hooks: SearchHooks::default(),
        };
        // Reference: central differences along each coordinate of the trigger embeddings.
        let loss_at = |search: &mut TriggerSearch, k: usize, delta: f32| {
            let rows: Vec<EmbeddedRow> = batch
                .iter()
                .map(|ex| {
                    let (ids, start) = with_trigger(specials, Position::Prefix, &trigger, &ex.ids);
                    let mut e = search.embedded.as_deref().unwrap().embed(&ids);
                    e[start * hidden + k] += delta;
                    EmbeddedRow {
                        type_ids: vec![0; ids.len()],
                        ids,
                        embeddings: e,
                    }
                })
                .collect();
            let logits = search
                .embedded
                .as_deref_mut()
                .unwrap()
                .logits(&rows)
                .unwrap();
            logits.iter().map(|l| loss_of(l, 0, Some(1))).sum::<f64>() / batch.len() as f64
        };
        let eps = 1e-2;
        let reference: Vec<f64> = (0..trigger.len() * hidden)
            .map(|k| {
                (loss_at(&mut search, k, eps) - loss_at(&mut search, k, -eps))
                    / (2.0 * f64::from(eps))
            })
            .collect();
        let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
        let allowed: Vec<u32> = (4..12).collect();
        seeds
            .map(|seed| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let (estimate, _) = search.gradient(&trigger, &batch, None, &mut rng).unwrap();
                let cands = search.hotflip_candidates(&trigger, &estimate, &allowed);
                assert!(cands.iter().all(|c| c.iter().all(|w| allowed.contains(w))));
                let dot: f64 = estimate
                    .iter()
                    .zip(&reference)
                    .map(|(&a, &b)| f64::from(a) * b)
                    .sum();
                dot / (norm(&mut estimate.iter().map(|&x| f64::from(x)))
                    * norm(&mut reference.iter().copied()))
            })
            .collect()
    }

    /// Mean cosine over 24 seeds of 2-pair estimates: the comparisons below.
    fn mean_cosine(estimator: Estimator, shrinkage: Shrinkage) -> f64 {
        let cosines = estimate_cosines(2, estimator, shrinkage, 0..24);
        cosines.iter().sum::<f64>() / cosines.len() as f64
    }

    /// The finite-difference estimate points the same way as the gradient measured coordinate
    /// by coordinate, with either estimator (issue #4).
    #[test]
    fn gradient_estimate_has_the_right_direction() {
        for estimator in [
            Estimator::PerExample,
            Estimator::Shared,
            Estimator::OneSided,
        ] {
            let cosine = estimate_cosines(48, estimator, Shrinkage::None, 9..10)[0];
            assert!(
                cosine > 0.8,
                "{estimator:?}: cosine {cosine} between estimate and measured gradient"
            );
        }
    }

    /// Issue 14: at the same rows, fresh directions for every example measure the mean
    /// gradient better than directions shared by the batch, because the examples' gradients
    /// agree (on a bag of embeddings, they point the same way). With 2 direction pairs in 12
    /// dimensions the shared estimate's cosine is about sqrt(2/12) = 0.41; four examples'
    /// fresh directions give about sqrt(8/12) = 0.82.
    #[test]
    fn per_example_directions_estimate_the_mean_gradient_better() {
        let shared = mean_cosine(Estimator::Shared, Shrinkage::None);
        let per_example = mean_cosine(Estimator::PerExample, Shrinkage::None);
        assert!(
            per_example > shared + 0.15,
            "per-example cosine {per_example:.3} is not clearly above shared {shared:.3}"
        );
    }

    /// Issue 14: one-sided differences against a leave-one-out baseline spend one row per
    /// direction where antithetic pairs spend two, so the same rows measure twice the
    /// projections. Measured on MiniLM (benches/compare): cosine 0.69 against 0.56 for 64 pairs.
    #[test]
    fn one_sided_differences_estimate_better_for_the_same_rows() {
        let per_example = mean_cosine(Estimator::PerExample, Shrinkage::None);
        let one_sided = mean_cosine(Estimator::OneSided, Shrinkage::None);
        assert!(
            one_sided > per_example + 0.03,
            "one-sided cosine {one_sided:.3} is not above per-example {per_example:.3}"
        );
    }

    /// Issue 14: on a bag of embeddings every position has the same gradient, so shrinking
    /// toward the positions' mean (by the noise the estimate measures in itself) must bring
    /// the estimate clearly closer to the measured gradient.
    #[test]
    fn shrinking_toward_the_positions_mean_helps_when_positions_agree() {
        let raw = mean_cosine(Estimator::OneSided, Shrinkage::None);
        let shrunk = mean_cosine(Estimator::OneSided, Shrinkage::Positions);
        assert!(
            shrunk > raw + 0.05,
            "shrunk cosine {shrunk:.3} is not clearly above the raw estimate's {raw:.3}"
        );
    }

    /// Mean squared error over `draws` noisy copies of `truth` (noise variance `noise` per
    /// coordinate), raw and after [`shrink`] with `previous`.
    fn shrink_errors(
        truth: &[f32],
        len: usize,
        noise: f64,
        previous: Option<&[f32]>,
        draws: u64,
    ) -> (f64, f64) {
        let h = truth.len() / len;
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let (mut raw, mut shrunk) = (0.0, 0.0);
        for _ in 0..draws {
            let estimate: Vec<f32> = truth
                .iter()
                .zip(gaussian(&mut rng, truth.len()))
                .map(|(&t, z)| t + noise.sqrt() as f32 * z)
                .collect();
            let (out, kept) = shrink(&estimate, len, h, noise, previous);
            assert!((0.0..=1.0).contains(&kept.positions));
            let err = |v: &[f32]| {
                v.iter()
                    .zip(truth)
                    .map(|(a, b)| f64::from(a - b).powi(2))
                    .sum::<f64>()
            };
            raw += err(&estimate);
            shrunk += err(&out);
        }
        (raw / draws as f64, shrunk / draws as f64)
    }

    /// A `len x h` gradient whose positions share one Gaussian vector, each coordinate off it by
    /// `spread` times a standard normal draw.
    fn sharing_positions(rng: &mut ChaCha8Rng, len: usize, h: usize, spread: f32) -> Vec<f32> {
        let common = gaussian(rng, h);
        (0..len * h)
            .map(|k| common[k % h] + spread * gaussian(rng, 1)[0])
            .collect()
    }

    /// James–Stein: shrinking toward the positions' mean lowers the squared error a lot when
    /// the positions' gradients share most of themselves, and costs nothing worth the name
    /// when they share nothing.
    #[test]
    fn shrinkage_lowers_the_error_and_never_costs_much() {
        let (len, h) = (3, 64);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let shared = sharing_positions(&mut rng, len, h, 0.2);
        let (raw, shrunk) = shrink_errors(&shared, len, 1.0, None, 200);
        assert!(
            shrunk < 0.6 * raw,
            "shared positions: {shrunk:.1} against raw {raw:.1}"
        );
        let apart = gaussian(&mut rng, len * h);
        let (raw, shrunk) = shrink_errors(&apart, len, 1.0, None, 200);
        assert!(
            shrunk < 1.02 * raw,
            "unrelated positions: {shrunk:.1} against raw {raw:.1}"
        );
    }

    /// A previous estimate that points the way the positions' mean does helps further; one
    /// that points elsewhere costs little against shrinking toward the positions alone.
    #[test]
    fn the_previous_estimate_helps_when_it_agrees() {
        let (len, h) = (3, 64);
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let truth = sharing_positions(&mut rng, len, h, 0.3);
        let (_, positions) = shrink_errors(&truth, len, 1.0, None, 200);
        let agreeing: Vec<f32> = truth
            .iter()
            .map(|&t| t + 0.5 * gaussian(&mut rng, 1)[0])
            .collect();
        let (_, history) = shrink_errors(&truth, len, 1.0, Some(&agreeing), 200);
        assert!(
            history < 0.8 * positions,
            "agreeing history: {history:.1} against positions alone {positions:.1}"
        );
        let elsewhere = gaussian(&mut rng, len * h);
        let (_, history) = shrink_errors(&truth, len, 1.0, Some(&elsewhere), 200);
        assert!(
            history < 1.1 * positions,
            "unrelated history: {history:.1} against positions alone {positions:.1}"
        );
    }

    #[test]
    fn special_tokens_are_never_allowed() {
        let vocab: Vec<(u32, String)> = [
            "[PAD]",
            "[CLS]",
            "[unused3]",
            "good",
            "##ing",
            "42",
            "film",
            "positive",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| (i as u32, t.to_string()))
        .collect();
        let specials = std::collections::HashSet::from([0, 1]);
        let marker = crate::model::tokenize::WordMarker::Continuation("##".into());
        let kind = VocabularyKind {
            special_ids: &specials,
            marker: &marker,
        };
        let allowed = allowed_tokens(
            &vocab,
            &kind,
            &TriggerConfig::default(),
            &["positive".into()],
        );
        assert_eq!(allowed, vec![3, 6]);
    }

    /// Issue 15: on ALBERT, XLM-R and RoBERTa the candidate pool held `<s> </s> <pad> <unk>
    /// <mask>`, the label word `▁positive` and mid-word pieces.
    #[test]
    fn sentencepiece_and_byte_level_vocabularies_offer_whole_words_only() {
        let sentencepiece: Vec<(u32, String)> = [
            "<s>",
            "</s>",
            "<pad>",
            "▁good",
            "ing",
            "▁positive",
            "▁",
            "▁film",
            "<mask>",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| (i as u32, t.to_string()))
        .collect();
        let specials = std::collections::HashSet::from([0, 1, 2, 8]);
        let marker = crate::model::tokenize::WordMarker::Start('▁');
        let kind = VocabularyKind {
            special_ids: &specials,
            marker: &marker,
        };
        let labels = ["positive".to_string(), "negative".into()];
        let allowed = allowed_tokens(&sentencepiece, &kind, &TriggerConfig::default(), &labels);
        assert_eq!(allowed, vec![3, 7]);

        let byte_level: Vec<(u32, String)> = ["<s>", "Ġgood", "ing", "ĠPositive", "Ġfilm", "Ġ42"]
            .iter()
            .enumerate()
            .map(|(i, t)| (i as u32, t.to_string()))
            .collect();
        let specials = std::collections::HashSet::from([0]);
        let marker = crate::model::tokenize::WordMarker::Start('Ġ');
        let kind = VocabularyKind {
            special_ids: &specials,
            marker: &marker,
        };
        let mut config = TriggerConfig::default();
        config.stop_words.push("Ġfilm".into());
        let allowed = allowed_tokens(&byte_level, &kind, &config, &labels);
        assert_eq!(allowed, vec![1]);
    }
}
