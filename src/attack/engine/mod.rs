//! The attack engine: one way to run any attack, for the CLI, suites and library users alike.
//!
//! An [`AttackSpec`] (a recipe, flags, or a suite entry) says *what* to attack; which code
//! runs depends on the model as much as on the kind. A negation attack on a fill-mask model is
//! Ettinger's cloze probe; an entity swap on a model folder with a span template renames GAP
//! candidates and recomputes offsets; a trigger needs a search corpus. [`plan`] makes that
//! choice once, from the spec and the model folder (without loading the model), and fails
//! early with the file and key at fault. [`execute`] runs a [`Plan`] on models held by a
//! [`Models`] cache and returns an [`AttackResult`]: the typed reports, the files to write
//! (`examples.csv`, `summary.csv`, and the trigger's loss curve), timings, query counts, and
//! the clearest failure examples for the HTML report.
//!
//! Keeping this in the library (and not in the command line) is what lets `robust report` run
//! every kind `robust attack` runs, with the same bytes in the same CSVs.
//!
//! The files follow the two steps: `plan.rs` (checking and binding, and the [`Models`] a run
//! holds), this file (executing, and the result types), then one file per shape
//! (`perturbation.rs`, `span_swap.rs`, `trigger_search.rs`, `cloze_probe.rs`), with `shard.rs`
//! for perturbation attacks split by rows and `failures.rs` for the examples the HTML shows.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::kind::{Kind, Registry, ResolvedAttack};
use super::name_swap::{self, SpanNameSwap};
use super::runner::{self, Target};
use super::spec::{AttackSpec, RecipeError};
use super::trigger::{ResumeMode, TriggerError};
use crate::attack::cloze::{ClozeError, ItemResult};
use crate::data::corpus::{Columns, Corpus, CorpusError};
use crate::data::spans::{SpanCorpus, SpanCorpusError};
use crate::model::coref::{CorefError, CorefModel};
use crate::model::fill_mask::MaskedLm;
use crate::model::{Classifier, InferenceOptions, ModelError, ModelKind, QueryStats};
use crate::report::cloze::ClozeProvenance;
use crate::report::{Format, ReportError};
use crate::score::metric::Metric;
use crate::score::{AttackReport, ExampleOutcome, Expectation, Provenance, score};
use crate::shard::Shard;

mod cloze_probe;
mod failures;
mod perturbation;
mod plan;
mod row_checkpoint;
mod shard;
mod span_swap;
mod trigger_search;

pub use failures::failure_examples;
pub use perturbation::{DEFAULT_CHUNK_ROWS, targets};
pub use plan::{Models, Plan, Shape, plan, plan_with};
pub use shard::{AttackShard, MergeError, merge_attack_shards};

use cloze_probe::cloze_probe;
use failures::Failures;
use perturbation::perturbation;
use span_swap::span_swap;
use trigger_search::trigger_search;

/// Failure examples kept per attack unless a suite says otherwise.
pub const DEFAULT_FAILURE_EXAMPLES: usize = 5;

/// Why an attack could not be planned or run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The spec (recipe, flags or suite entry) is invalid.
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    /// The model folder could not be read, loaded or hashed.
    #[error("failed to load model {dir}")]
    Model {
        /// The model folder.
        dir: PathBuf,
        /// Why it failed.
        #[source]
        source: ModelError,
    },
    /// The attack does not apply to this kind of model (a shuffle on a fill-mask model, say),
    /// or not to sentence pairs.
    #[error("model {dir}: {problem}")]
    Unsupported {
        /// The model folder.
        dir: PathBuf,
        /// What does not fit, in words.
        problem: String,
    },
    /// The sentence corpus could not be read.
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    /// The span corpus (GAP rows) could not be read.
    #[error(transparent)]
    Spans(#[from] SpanCorpusError),
    /// The cloze items could not be read or fit to the model.
    #[error(transparent)]
    Cloze(#[from] ClozeError),
    /// The coreference model's span template is invalid.
    #[error(transparent)]
    Coref(#[from] CorefError),
    /// The trigger search or its evaluation failed.
    #[error(transparent)]
    Trigger(#[from] TriggerError),
    /// An input file is missing, unreadable or of the wrong kind for the attack.
    #[error("{path}: {problem}")]
    Input {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong, and where it says how, what to do.
        problem: String,
    },
    /// The model loaded but failed during inference.
    #[error("model {dir} failed while running")]
    Run {
        /// The model folder.
        dir: PathBuf,
        /// Why it failed.
        #[source]
        source: ModelError,
    },
    /// A result file could not be rendered or written.
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// The trigger a search found, as printed and recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TriggerFound {
    /// The trigger as the tokenizer decodes it, as placed in each sentence.
    pub text: String,
    /// How candidate tokens were proposed (`hotflip` or `random`), lower-case.
    pub proposals: String,
    /// Search-corpus rows the search used (0 for a given trigger).
    pub search_examples: usize,
    /// The search corpus's file name, or `none (given trigger)`.
    pub search_corpus: String,
    /// Model rows run by the search (0 for a given trigger).
    pub queries: u64,
    /// Search time, in seconds (0 for a given trigger).
    pub seconds: f64,
}

/// One clear case of an attack working: the input, what the attack made of it, and both
/// answers. Shown in the HTML report, so that a rate comes with sentences behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureExample {
    /// Line in the corpus file.
    pub line: usize,
    /// The group the variant is scored in (`all` where the attack has no groups).
    pub group: String,
    /// The gold label's name; for a cloze item, the answer expected under negation.
    pub gold: Option<String>,
    /// The input as in the corpus (for a cloze item, the affirmative template).
    pub original_text: String,
    /// The input after the attack (for a cloze item, the negated template).
    pub perturbed_text: String,
    /// What the perturbation did, as in `examples.csv`'s `detail` column; for a sentence
    /// pair, also which segment was attacked and the other one.
    pub detail: String,
    /// The model's label for the original (for a cloze item, its top-1 word).
    pub original_label: String,
    /// Probability of `original_label`, in [0, 1].
    pub original_confidence: f64,
    /// The model's label for the perturbed input (for a cloze item, its top-1 word).
    pub perturbed_label: String,
    /// Probability of `perturbed_label`, in [0, 1].
    pub perturbed_confidence: f64,
    /// Why this counts as a failure, in words.
    pub why: String,
}

/// What an attack measured.
pub struct AttackResult {
    /// The attack's name (the recipe's, or the suite entry's).
    pub name: String,
    /// What the attack does to its inputs.
    pub kind: Kind,
    /// Which engine ran it.
    pub shape: Shape,
    /// The scored attack(s): one, or for a trigger the searched trigger and the random
    /// baseline. Empty for cloze probes, whose scores are in `cloze`.
    pub reports: Vec<AttackReport>,
    /// A cloze probe's scores and items; `None` for other shapes.
    pub cloze: Option<ClozeOutcome>,
    /// The trigger searched (or given); `None` for other shapes.
    pub trigger: Option<TriggerFound>,
    /// `examples.csv`, `summary.csv`, then any extra files (trigger: `loss_curve.csv`,
    /// `trigger.json`), in the order they are written; `examples.csv` is in `staged` instead
    /// when it was written to disk as the attack ran ([`ExecuteOptions::stage_in`]).
    pub files: Vec<(String, String)>,
    /// Files already on disk, to be moved into place beside `files`
    /// ([`write_all_atomic_with`](crate::report::write_all_atomic_with)).
    pub staged: Vec<crate::report::StagedFile>,
    /// Rows (sentences, span rows or cloze items) attacked.
    pub rows: usize,
    /// Time the attack took, in seconds (for a trigger, the search and both evaluations).
    pub wall_seconds: f64,
    /// The model's work during the attack.
    pub model_stats: QueryStats,
    /// sha256 of the model (`model.onnx` and its external data), lower-case hex.
    pub model_sha256: String,
    /// The clearest failures, strongest first ([`failure_examples`]; for a cloze probe, items
    /// whose top-1 word ignored the negation), at most [`ExecuteOptions::failure_limit`] for
    /// a perturbation attack.
    pub failures: Vec<FailureExample>,
}

/// A cloze probe's outcome.
pub struct ClozeOutcome {
    /// Which model, corpus, seed and parameters the scores are of.
    pub provenance: ClozeProvenance,
    /// Overall (`all`), then one entry per item group.
    pub scores: Vec<crate::attack::cloze::ClozeScores>,
    /// One per item: its answers' log-probabilities and top words, with and without negation.
    pub results: Vec<ItemResult>,
}

impl AttackResult {
    /// The content of one of the result's files.
    pub fn file(&self, name: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.as_str())
    }

    /// The summary printed to standard output, in `format`.
    pub fn render(&self, format: Format) -> Result<String, EngineError> {
        if let Some(c) = &self.cloze {
            use crate::report::cloze::{summary_csv, table};
            return Ok(match format {
                Format::Csv => summary_csv(&c.provenance, &c.scores)?,
                Format::Json => {
                    let p = &c.provenance;
                    serde_json::to_string_pretty(&serde_json::json!({
                        "provenance": {"model": p.model, "model_sha256": p.model_sha256,
                            "corpus": p.corpus, "corpus_sha256": p.corpus_sha256},
                        "scores": c.scores,
                        "items": c.results,
                    }))
                    .map_err(|e| ReportError::Serialise(Box::new(e)))?
                        + "\n"
                }
                Format::Table => table(&c.provenance, &c.scores, &c.results),
            });
        }
        let exporter = format.exporter();
        let mut text = String::new();
        if let Some(t) = &self.trigger {
            text.push_str(&format!(
                "trigger   {:?} ({} proposals; search: {} examples of {}, {} queries, {:.1} s)\n\n",
                t.text, t.proposals, t.search_examples, t.search_corpus, t.queries, t.seconds
            ));
        }
        for (i, report) in self.reports.iter().enumerate() {
            if i == 1 && self.trigger.is_some() {
                text.push_str("\n--- random triggers of the same length (baseline) ---\n");
            }
            text.push_str(&exporter.attack(report)?);
        }
        Ok(text)
    }
}

/// Run a plan. `progress` is told (rows done, rows in all) as model work proceeds; the
/// trigger search logs its iterations through `tracing`. Every model's cache is cleared first,
/// so an attack's time and query counts do not depend on what ran before it.
pub fn execute(
    plan: &Plan,
    models: &mut Models,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<AttackResult, EngineError> {
    execute_with(plan, models, &ExecuteOptions::default(), progress)
}

/// State a run may keep beside its results. Only a trigger search has any: it is the one
/// attack long enough (minutes to an hour) to be worth resuming from the middle.
#[derive(Debug, Clone, Default)]
pub struct ExecuteOptions {
    /// A folder for the trigger search's checkpoint (written after every iteration).
    pub checkpoint: Option<PathBuf>,
    /// Whether a checkpoint found there is resumed, required or replaced.
    pub resume: Option<ResumeMode>,
    /// Where the trigger search writes its gradient estimates (JSON lines).
    pub gradient_trace: Option<PathBuf>,
    /// A folder (on the file system the results will be written to) where a perturbation
    /// attack writes `examples.csv` as it runs, rather than holding it in memory: the file
    /// comes back in [`AttackResult::staged`], to be moved into place with the others.
    pub stage_in: Option<PathBuf>,
    /// Failure examples to keep, strongest first (all when `None`).
    pub failure_limit: Option<usize>,
    /// Attack only this part of the rows of a perturbation attack (contiguous ranges, see
    /// [`Shard::rows`]); the result then carries an [`AttackShard`] record instead of
    /// `summary.csv`, and [`merge_attack_shards`] joins the parts.
    pub shard: Option<Shard>,
    /// Target rows per chunk of a perturbation attack ([`DEFAULT_CHUNK_ROWS`]); no result
    /// depends on it, only memory and batching.
    pub chunk_rows: Option<usize>,
    /// Bytes of the corpus file read at once
    /// ([`DEFAULT_BLOCK_BYTES`](crate::data::corpus_stream::DEFAULT_BLOCK_BYTES)).
    pub block_bytes: Option<usize>,
}

/// [`execute`], with a checkpoint folder and a gradient trace for a trigger search.
pub fn execute_with(
    plan: &Plan,
    models: &mut Models,
    options: &ExecuteOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<AttackResult, EngineError> {
    match plan.shape {
        Shape::TextPerturbation => perturbation(plan, models, options, progress),
        Shape::SpanSwap => span_swap(plan, models, progress),
        Shape::TriggerSearch => trigger_search(plan, models, options),
        Shape::ClozeProbe => cloze_probe(plan, models),
    }
}

fn read_corpus(path: &Path, columns: &Columns) -> Result<Corpus, EngineError> {
    let corpus = Corpus::read(path, columns)?;
    if corpus.blank_lines > 0 {
        tracing::info!(
            blank_lines = corpus.blank_lines,
            "skipped blank lines in {}",
            path.display()
        );
    }
    Ok(corpus)
}

/// A scored report with the provenance every report carries.
#[allow(clippy::too_many_arguments)]
fn new_report(
    attack: &ResolvedAttack,
    name: String,
    parameters: BTreeMap<String, String>,
    model: &Classifier,
    model_sha256: &str,
    corpus: &Corpus,
    outcomes: Vec<ExampleOutcome>,
    wall_seconds: f64,
    model_stats: QueryStats,
) -> AttackReport {
    AttackReport {
        scores: score(&outcomes, model.labels(), attack.kind.expectation()),
        provenance: Provenance {
            attack: name,
            kind: attack.kind.as_str().to_string(),
            model: model.info().name.clone(),
            model_sha256: model_sha256.to_string(),
            corpus: corpus.name(),
            corpus_sha256: corpus.sha256.clone(),
            seed: attack.seed,
            robust_version: crate::VERSION.to_string(),
            parameters,
            labels: model.labels().to_vec(),
        },
        outcomes,
        wall_seconds,
        model_stats,
    }
}

/// Say when inputs were cut to the model's length, and record it with the parameters: a
/// flip rate measured on truncated sentences is a different number. `max_len` goes into the
/// parameters when it was asked for (`--max-len`), the count whenever anything was cut; a run
/// that cut nothing at the model's own limit records neither, as before.
fn record_truncation(
    parameters: &mut BTreeMap<String, String>,
    attack: &str,
    asked: Option<usize>,
    max_len: usize,
    truncated: u64,
) {
    if asked.is_some() || truncated > 0 {
        parameters.insert("max_len".into(), max_len.to_string());
    }
    if truncated > 0 {
        tracing::warn!(
            "{attack}: {truncated} model inputs were longer than {max_len} tokens and were cut \
             (recorded as truncated={truncated} in the parameters)"
        );
        parameters.insert("truncated".into(), truncated.to_string());
    }
}

/// `examples.csv` and `summary.csv` of one or more reports, each with one header.
fn report_files(reports: &[&AttackReport]) -> Result<Vec<(String, String)>, EngineError> {
    let mut examples = String::new();
    let mut summary = String::new();
    for (i, report) in reports.iter().enumerate() {
        let e = crate::report::examples_csv(report)?;
        let s = Format::Csv.exporter().attack(report)?;
        // Later reports drop their header line.
        let skip = |text: &str| {
            if i == 0 {
                text.to_string()
            } else {
                text.split_once('\n')
                    .map_or(String::new(), |(_, rest)| rest.to_string())
            }
        };
        examples.push_str(&skip(&e));
        summary.push_str(&skip(&s));
    }
    Ok(vec![
        ("examples.csv".into(), examples),
        ("summary.csv".into(), summary),
    ])
}

fn finish_reports(
    plan: &Plan,
    reports: Vec<AttackReport>,
    rows: usize,
    model_sha256: String,
    trigger: Option<TriggerFound>,
    extra: Vec<(String, String)>,
) -> Result<AttackResult, EngineError> {
    let refs: Vec<&AttackReport> = reports.iter().collect();
    let mut files = report_files(&refs)?;
    files.extend(extra);
    let first = &reports[0];
    Ok(AttackResult {
        name: plan.attack.name.clone(),
        kind: plan.attack.kind,
        shape: plan.shape,
        failures: failure_examples(first, usize::MAX),
        wall_seconds: first.wall_seconds,
        model_stats: first.model_stats,
        reports,
        cloze: None,
        trigger,
        files,
        staged: Vec::new(),
        rows,
        model_sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Prediction;
    use crate::perturb::Perturbation;
    use crate::score::PerturbedOutcome;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn prediction(p_first: f32) -> Prediction {
        // Logits whose softmax gives p_first to label 0.
        let logit = (p_first / (1.0 - p_first)).ln();
        Prediction::from_logits(Arc::from(vec![logit, 0.0]))
    }

    fn outcome(line: usize, original: f32, variants: &[f32]) -> ExampleOutcome {
        ExampleOutcome {
            line,
            text: format!("row {line}"),
            context: None,
            gold: Some(0),
            original: prediction(original),
            result: Ok(variants
                .iter()
                .map(|&p| PerturbedOutcome {
                    perturbation: Perturbation {
                        text: format!("variant {p}"),
                        detail: String::new(),
                        group: "g".into(),
                        edit: None,
                    },
                    prediction: prediction(p),
                })
                .collect()),
            queries: 1 + variants.len() as u64,
        }
    }

    proptest! {
        /// The bounded top-k a streamed attack keeps is the head of the full ranking (ties in
        /// corpus order: few distinct probabilities, so ties are common), and so is the top-k
        /// of two shards' top-k lists merged in row order.
        #[test]
        fn bounded_failures_are_the_head_of_the_full_ranking(
            rows in prop::collection::vec(
                (
                    prop::sample::select(vec![0.6f32, 0.8]),
                    prop::collection::vec(prop::sample::select(vec![0.1f32, 0.3, 0.45, 0.6]), 0..3),
                ),
                0..30,
            ),
            limit in 0usize..6,
            cut in 0usize..30,
        ) {
            let labels = vec!["a".to_string(), "b".to_string()];
            let outcomes: Vec<ExampleOutcome> = rows
                .iter()
                .enumerate()
                .map(|(i, (o, v))| outcome(i + 2, *o, v))
                .collect();
            let mut all = Failures::new(usize::MAX);
            let mut bounded = Failures::new(limit);
            for o in &outcomes {
                all.add(o, &labels, Expectation::Invariant);
                bounded.add(o, &labels, Expectation::Invariant);
            }
            let head: Vec<FailureExample> = all.into_examples().into_iter().take(limit).collect();
            prop_assert_eq!(&bounded.into_examples(), &head);
            let cut = cut.min(outcomes.len());
            let (mut first, mut second) = (Failures::new(limit), Failures::new(limit));
            outcomes[..cut].iter().for_each(|o| first.add(o, &labels, Expectation::Invariant));
            outcomes[cut..].iter().for_each(|o| second.add(o, &labels, Expectation::Invariant));
            for (strength, example) in second.found {
                first.insert(strength, example);
            }
            prop_assert_eq!(first.into_examples(), head);
        }
    }
}
