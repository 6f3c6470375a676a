//! The beam search of Wallace et al. (2019), ranking replacements by an estimated gradient.
//!
//! Each iteration takes the next batch from the search pool, proposes candidate tokens per
//! position (HotFlip with the estimate, or random ones), and walks a beam over the positions
//! left to right, scoring every candidate trigger with exact forward passes; the trigger it
//! ends with is scored on a fixed validation batch, which alone decides the best trigger and
//! when the search has stopped improving.
//!
//! Everything an iteration changes lives in one [`SearchState`], which the checkpoint saves
//! whole after every iteration; what is not saved (`Run`: the split, the checkpoint, the
//! counters this process started from) is rebuilt from the set-up by a resumed process. The
//! query budget is checked before every model request with the rows it may run, so a search
//! never spends more than its budget and stops at the first request that would not fit.

use std::time::Instant;

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::checkpoint::{Checkpoint, Resumed};
use super::config::{Proposals, Shrinkage, TriggerConfig};
use super::error::TriggerError;
use super::estimators::estimator_for;
use super::gradient;
use super::placement::{SearchExample, Specials, mean_losses};
use super::proposals;
use super::shrink::Shrunk;
use super::state::{CurvePoint, SearchState};
use super::trace::{GradientTrace, Setup};
use crate::model::embed::{EmbedError, EmbeddingModel};
use crate::model::{Classifier, ModelError, QueryStats};

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
    /// Every token proposed, in the order first proposed.
    #[serde(skip)]
    pub shortlist: Vec<u32>,
}

/// Renders trigger ids as (tokens, text).
pub(crate) type TokenText<'a> = dyn Fn(&[u32]) -> (Vec<String>, String) + 'a;

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

/// The search examples split once, with the seed: a fixed validation batch (so that losses
/// compare across iterations) and the pool that batches are drawn from in turn.
struct Split {
    /// Indices into the examples.
    validation_ids: Vec<usize>,
    validation: Vec<SearchExample>,
    pool: Vec<usize>,
}

impl Split {
    fn draw(examples: &[SearchExample], batch: usize, rng: &mut ChaCha8Rng) -> Self {
        let mut order: Vec<usize> = (0..examples.len()).collect();
        order.shuffle(rng);
        let size = batch.clamp(1, examples.len() / 2);
        let pool = order.split_off(size);
        let validation = order.iter().map(|&i| examples[i].clone()).collect();
        Self {
            validation_ids: order,
            validation,
            pool,
        }
    }
}

/// The counters this process of a search started from, and the search time of the processes
/// before it: queries and seconds are reported from the search's start, whoever ran it.
struct Origin {
    start: Instant,
    seconds_before: f64,
    queries: u64,
    stats: QueryStats,
    embedded: u64,
}

impl Origin {
    fn elapsed(&self) -> f64 {
        self.seconds_before + self.start.elapsed().as_secs_f64()
    }
}

/// What a search reads besides its state; none of it is saved.
struct Run<'a> {
    examples: &'a [SearchExample],
    allowed: &'a [u32],
    split: Split,
    checkpoint: Option<Checkpoint>,
    /// Whether the search resumed from a checkpoint (its trace is then appended to).
    resumed: bool,
    origin: Origin,
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

impl TriggerSearch<'_> {
    /// Run the search from `init`. `examples` are the search split; the validation batch is
    /// carved from them with `rng`, which the search then draws from (and leaves where the
    /// search left it).
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
        let origin = Origin {
            start: Instant::now(),
            seconds_before: 0.0,
            queries: self.queries(),
            stats: self.classifier.stats(),
            embedded: self.embedded.as_ref().map_or(0, |e| e.queries()),
        };
        let split = Split::draw(examples, self.config.batch, rng);
        self.check_budget(&split)?;
        let mut run = Run {
            examples,
            allowed,
            split,
            checkpoint: self.hooks.checkpoint.take(),
            resumed: false,
            origin,
        };
        let mut state = self.begin(&mut run, init, rng)?;
        for iteration in
            state.next_iteration(self.config.max_iterations)..=self.config.max_iterations
        {
            if !self.iterate(&run, &mut state, iteration, token_text, log)? {
                break;
            }
        }
        self.finish(run, state, rng, token_text)
    }

    /// #30 item 12: a budget that cannot pay for one iteration is an error, before any model
    /// row of the search (the costs as [`Self::iterate`] counts them).
    fn check_budget(&self, split: &Split) -> Result<(), TriggerError> {
        let Some(budget) = self.config.max_queries else {
            return Ok(());
        };
        let batch = self.config.batch.min(split.pool.len());
        let gradient = self.gradient_rows(batch);
        let batch = batch as u64;
        let validation = split.validation.len() as u64;
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
        Ok(())
    }

    /// The state to go on from: the checkpoint's, when it holds this search's, else a fresh
    /// one at `init`. A fresh search writes the trace's set-up line; a resumed one already
    /// has it.
    fn begin(
        &mut self,
        run: &mut Run,
        init: Vec<u32>,
        rng: &ChaCha8Rng,
    ) -> Result<SearchState, TriggerError> {
        let key = run
            .checkpoint
            .as_ref()
            .map(|c| search_key(&c.context, &self.config, &init, run.examples, run.allowed));
        let resumed = match (&run.checkpoint, &key) {
            (Some(c), Some(k)) => c.open(k)?,
            _ => None,
        };
        run.resumed = resumed.is_some();
        if !run.resumed
            && let Some(trace) = self.hooks.trace.as_mut()
        {
            trace.setup(&Setup {
                config: &self.config,
                specials: self.specials,
                sigma_abs: self
                    .embedded
                    .as_ref()
                    .map(|e| self.config.sigma * e.table_rms()),
                init: &init,
                allowed: run.allowed,
                examples: run.examples,
                validation: &run.split.validation_ids,
                pool: &run.split.pool,
            });
        }
        match resumed {
            Some(resumed) => self.restore(resumed, &mut run.origin),
            None => {
                if run.checkpoint.is_some() {
                    self.classifier.cache_mut().start_journal();
                }
                let loss = self.losses(std::slice::from_ref(&init), &run.split.validation)?[0];
                Ok(SearchState::start(
                    key.unwrap_or_default(),
                    init,
                    loss,
                    rng.clone(),
                ))
            }
        }
    }

    /// Put the models where the checkpointed search had them: the cache as it was (so the
    /// same rows are hits), the query counts it had paid, the trace as long as it was.
    fn restore(
        &mut self,
        resumed: Resumed,
        origin: &mut Origin,
    ) -> Result<SearchState, TriggerError> {
        let Resumed { state, journal } = resumed;
        for (k, v) in journal {
            self.classifier.cache_mut().insert(k, v);
        }
        self.classifier.add_stats(&state.classifier);
        if let Some(e) = self.embedded.as_deref_mut() {
            e.add_queries(state.embedded_queries);
        }
        origin.seconds_before = state.seconds;
        if let (Some(trace), Some(bytes)) = (self.hooks.trace.as_mut(), state.trace_bytes) {
            trace.truncate(bytes)?;
        }
        self.classifier.cache_mut().start_journal();
        Ok(state)
    }

    /// One iteration; `false` once the search is to stop (budget, patience or time).
    fn iterate(
        &mut self,
        run: &Run,
        state: &mut SearchState,
        iteration: usize,
        token_text: &TokenText,
        log: &mut dyn FnMut(&CurvePoint),
    ) -> Result<bool, TriggerError> {
        let pool = &run.split.pool;
        let batch_ids: Vec<usize> = (0..self.config.batch.min(pool.len()))
            .map(|k| pool[(state.cursor + k) % pool.len()])
            .collect();
        let batch: Vec<SearchExample> =
            batch_ids.iter().map(|&i| run.examples[i].clone()).collect();
        let rows = batch.len() as u64;
        // This iteration's fixed costs: the gradient estimate, the current trigger's batch
        // loss, and the validation loss of the trigger it ends with.
        let fixed = self.gradient_rows(batch.len()) + rows + run.split.validation.len() as u64;
        if self.left(&run.origin) < fixed {
            return Ok(false);
        }
        state.cursor = (state.cursor + batch.len()) % pool.len().max(1);
        let candidates = self.propose(run, state, &batch, &batch_ids, iteration)?;
        for &c in candidates.iter().flatten() {
            if !state.shortlist.contains(&c) {
                state.shortlist.push(c);
            }
        }
        let (batch_loss, trigger) = self.beam(run, &state.trigger, &candidates, &batch)?;
        state.trigger = trigger;
        let validation_loss =
            self.losses(std::slice::from_ref(&state.trigger), &run.split.validation)?[0];
        if validation_loss < state.best_loss - 1e-6 {
            state.best_loss = validation_loss;
            state.best = state.trigger.clone();
            state.stale = 0;
        } else {
            state.stale += 1;
        }
        let point = CurvePoint {
            iteration,
            trigger: token_text(&state.trigger).1,
            batch_loss,
            validation_loss,
            queries: self.queries() - run.origin.queries,
            seconds: run.origin.elapsed(),
        };
        log(&point);
        if let Some(trace) = self.hooks.trace.as_mut() {
            trace.iteration(&state.trigger, &point);
        }
        state.curve.push(point);
        let out_of_queries = self
            .config
            .max_queries
            .is_some_and(|q| self.queries() - run.origin.queries >= q);
        let out_of_time = self
            .config
            .max_seconds
            .is_some_and(|s| run.origin.elapsed() >= s);
        let stop = state.stale >= self.config.patience || out_of_queries || out_of_time;
        state.iteration = iteration;
        state.finished = stop;
        self.save(run, state)?;
        Ok(!stop)
    }

    /// Candidate tokens per position for this iteration's beam.
    fn propose(
        &mut self,
        run: &Run,
        state: &mut SearchState,
        batch: &[SearchExample],
        batch_ids: &[usize],
        iteration: usize,
    ) -> Result<Vec<Vec<u32>>, TriggerError> {
        let k = self.config.candidates;
        if !self.ranks_by_gradient() {
            return Ok(proposals::random(
                &state.trigger,
                run.allowed,
                k,
                &mut state.rng,
            ));
        }
        let (grad, shrunk) = self.gradient(
            &state.trigger,
            batch,
            state.previous_estimate.as_deref(),
            &mut state.rng,
        )?;
        if let Some(trace) = self.hooks.trace.as_mut() {
            trace.gradient(iteration, &state.trigger, batch_ids, &grad, shrunk);
        }
        let candidates = match self.embedded.as_deref() {
            Some(embedded) => proposals::hotflip(embedded, &state.trigger, &grad, run.allowed, k),
            None => vec![Vec::new(); state.trigger.len()],
        };
        if self.config.shrinkage == Shrinkage::History {
            state.previous_estimate = Some(grad);
        }
        Ok(candidates)
    }

    /// Beam search over positions, left to right, scoring with exact forward passes: the best
    /// trigger on the batch, and its loss. Proposals that the budget cannot pay for (keeping
    /// room for the validation pass) are not scored.
    fn beam(
        &mut self,
        run: &Run,
        trigger: &[u32],
        candidates: &[Vec<u32>],
        batch: &[SearchExample],
    ) -> Result<(f64, Vec<u32>), TriggerError> {
        let rows = batch.len() as u64;
        let mut beams: Vec<(f64, Vec<u32>)> = vec![(
            self.losses(&[trigger.to_vec()], batch)?[0],
            trigger.to_vec(),
        )];
        for (p, cands) in candidates.iter().enumerate() {
            let mut tried: Vec<Vec<u32>> = Vec::new();
            for (_, b) in &beams {
                for &c in cands {
                    let mut t = b.clone();
                    t[p] = c;
                    tried.push(t);
                }
            }
            let affordable = self
                .left(&run.origin)
                .saturating_sub(run.split.validation.len() as u64)
                / rows.max(1);
            tried.truncate(usize::try_from(affordable).unwrap_or(usize::MAX));
            if tried.is_empty() {
                break;
            }
            let losses = self.losses(&tried, batch)?;
            let mut next: Vec<(f64, Vec<u32>)> = beams.clone();
            next.extend(losses.into_iter().zip(tried));
            next.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            next.dedup_by(|a, b| a.1 == b.1);
            next.truncate(self.config.beam.max(1));
            beams = next;
        }
        Ok(beams.swap_remove(0))
    }

    /// Write the iteration out: the trace first, then the state that records the trace's
    /// length (a kill between the two leaves lines the resumed search cuts off and writes
    /// again), with the cache insertions since the last save.
    fn save(&mut self, run: &Run, state: &mut SearchState) -> Result<(), TriggerError> {
        let trace_bytes = match self.hooks.trace.as_mut() {
            Some(trace) => Some(trace.flush(run.resumed)?),
            None => None,
        };
        let Some(checkpoint) = &run.checkpoint else {
            return Ok(());
        };
        state.classifier = self.classifier.stats().since(&run.origin.stats);
        state.embedded_queries =
            self.embedded.as_ref().map_or(0, |e| e.queries()) - run.origin.embedded;
        state.seconds = run.origin.elapsed();
        state.trace_bytes = trace_bytes;
        let journal = self.classifier.cache_mut().take_journal();
        checkpoint.save(state, &journal)?;
        Ok(())
    }

    /// The best trigger, with the search's totals; the hooks are handed back to the caller.
    fn finish(
        &mut self,
        run: Run,
        state: SearchState,
        rng: &mut ChaCha8Rng,
        token_text: &TokenText,
    ) -> Result<TriggerResult, TriggerError> {
        if run.checkpoint.is_some() {
            self.classifier.cache_mut().stop_journal();
        }
        if let Some(trace) = self.hooks.trace.as_mut() {
            trace.flush(run.resumed)?;
        }
        self.hooks.checkpoint = run.checkpoint;
        *rng = state.rng;
        let (tokens, text) = token_text(&state.best);
        Ok(TriggerResult {
            ids: state.best,
            tokens,
            text,
            validation_loss: state.best_loss,
            curve: state.curve,
            queries: self.queries() - run.origin.queries,
            seconds: run.origin.elapsed(),
            shortlist: state.shortlist,
        })
    }

    /// Exact mean loss of each trigger on a batch.
    fn losses(
        &mut self,
        triggers: &[Vec<u32>],
        batch: &[SearchExample],
    ) -> Result<Vec<f64>, ModelError> {
        mean_losses(
            self.classifier,
            self.specials,
            &self.config,
            triggers,
            batch,
        )
    }

    /// The estimate HotFlip ranks with, shrunk as configured.
    fn gradient(
        &mut self,
        trigger: &[u32],
        batch: &[SearchExample],
        previous: Option<&[f32]>,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Vec<f32>, Option<Shrunk>), EmbedError> {
        let Some(embedded) = self.embedded.as_deref_mut() else {
            return Err(EmbedError::Unavailable);
        };
        gradient::estimate(
            embedded,
            &self.config,
            self.specials,
            trigger,
            batch,
            previous,
            rng,
        )
    }

    /// Whether proposals are ranked by a gradient estimate (HotFlip with the embedding graph).
    fn ranks_by_gradient(&self) -> bool {
        self.config.proposals == Proposals::Hotflip && self.embedded.is_some()
    }

    /// Rows one gradient estimate runs on a batch of `examples` (none for random proposals).
    fn gradient_rows(&self, examples: usize) -> u64 {
        if self.ranks_by_gradient() {
            estimator_for(&self.config).rows(examples)
        } else {
            0
        }
    }

    /// Model rows run so far, by both graphs.
    fn queries(&self) -> u64 {
        self.classifier.stats().model_queries + self.embedded.as_ref().map_or(0, |e| e.queries())
    }

    /// Rows the budget still allows this search.
    fn left(&self, origin: &Origin) -> u64 {
        self.config.max_queries.map_or(u64::MAX, |q| {
            q.saturating_sub(self.queries() - origin.queries)
        })
    }
}
