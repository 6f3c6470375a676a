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

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::name_swap::{self, SpanNameSwap};
use super::runner::{self, Target};
use super::search_state::{Checkpoint, ResumeMode};
use super::spec::{AttackKind, AttackSpec, ProbeName, RecipeError, ResolvedAttack};
use super::trigger::{self, TriggerError};
use crate::attack::cloze::{ClozeError, ItemResult};
use crate::data::corpus::{Columns, Corpus, CorpusError};
use crate::data::spans::{SpanCorpus, SpanCorpusError};
use crate::model::coref::{CorefError, CorefModel, SpanTemplate};
use crate::model::fill_mask::MaskedLm;
use crate::model::{Classifier, InferenceOptions, ModelError, ModelKind, QueryStats};
use crate::report::cloze::ClozeProvenance;
use crate::report::{Format, ReportError, fixed};
use crate::score::metric::Metric;
use crate::score::{AttackReport, ExampleOutcome, Expectation, score};
use crate::shard::Shard;

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

/// The four attack shapes: what the engine runs, decided from the kind and the model folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Perturb each sentence (shuffle, negation, entity swap) and classify the variants.
    TextPerturbation,
    /// Rename candidates in span rows (GAP) and resolve the pronoun again.
    SpanSwap,
    /// Search a universal trigger on one corpus and evaluate it on another.
    TriggerSearch,
    /// Cloze items on a fill-mask model (Ettinger's negation probes).
    ClozeProbe,
}

impl Shape {
    /// The shape's kebab-case name, as serialised and shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::TextPerturbation => "text-perturbation",
            Shape::SpanSwap => "span-swap",
            Shape::TriggerSearch => "trigger-search",
            Shape::ClozeProbe => "cloze-probe",
        }
    }
}

/// A checked attack bound to its shape: everything [`execute`] needs, nothing loaded yet.
pub struct Plan {
    /// The spec, checked, with its defaults filled in and paths resolved.
    pub attack: ResolvedAttack,
    /// Which of the four engines runs it.
    pub shape: Shape,
    /// Columns of the sentence corpus (and of the trigger's search corpus).
    pub columns: Columns,
    /// Cloze probes: words listed per template.
    pub top_k: usize,
    /// The segment of a sentence pair the attack perturbs (meaningful with a pair column).
    pub segment: crate::perturb::Segment,
}

impl Plan {
    /// Corpora the plan reads: the evaluated corpus, then the trigger's search corpus.
    pub fn corpora(&self) -> Vec<&Path> {
        let mut out = vec![self.attack.corpus.as_path()];
        if let Some(path) = self
            .attack
            .trigger
            .as_ref()
            .and_then(|t| t.search_corpus.as_ref())
        {
            out.push(path.as_path());
        }
        out
    }

    /// The rate metrics (group "all") this plan's `summary.csv` can hold, for checking gates
    /// before anything runs. `labelled` says whether the evaluated corpus has gold labels.
    pub fn rate_metrics(&self, labelled: bool) -> Vec<Metric> {
        use Metric::*;
        match self.shape {
            Shape::ClozeProbe => vec![
                TruePreferredAffirmative,
                TruePreferredNegated,
                Top1Unchanged,
                AnswerInTopk,
            ],
            _ => {
                let mut m = vec![FlipRate, ExampleFlipRate];
                // Span rows always carry their gold resolution; sentences only with labels.
                if labelled || self.shape == Shape::SpanSwap || self.shape == Shape::TriggerSearch {
                    m.extend([AttackSuccessRate, AccuracyBefore, PerturbedAccuracy]);
                    match self.attack.kind.expectation() {
                        Expectation::Invariant => m.push(AccuracyAfter),
                        Expectation::FlipFromGold => m.extend([ExpectedDirectionRate, IgnoredRate]),
                    }
                } else if self.attack.kind.expectation() == Expectation::FlipFromGold {
                    m.push(IgnoredRate);
                }
                m
            }
        }
    }
}

/// What the model folder is, without loading the model.
fn model_shape(dir: &Path) -> Result<(ModelKind, bool), EngineError> {
    let model_err = |source| EngineError::Model {
        dir: dir.to_path_buf(),
        source,
    };
    let kind = ModelKind::of_dir(dir).map_err(model_err)?;
    let spans = kind == ModelKind::Classifier && SpanTemplate::read(dir)?.is_some();
    Ok((kind, spans))
}

/// Check a spec and decide its shape from the kind and the model folder. `origin` names the
/// recipe file (or "flags", or a suite entry) in errors.
pub fn plan(spec: &AttackSpec, origin: &str) -> Result<Plan, EngineError> {
    let attack = spec.resolve(origin)?;
    let (model_kind, spans) = model_shape(&attack.model)?;
    let unsupported = |problem: String| EngineError::Unsupported {
        dir: attack.model.clone(),
        problem,
    };
    let shape = match (model_kind, attack.kind) {
        (ModelKind::FillMask, AttackKind::Negation) => Shape::ClozeProbe,
        (ModelKind::FillMask, kind) => {
            return Err(unsupported(format!(
                "is a {}; only kind = \"negation\" (the cloze probe) runs on it, not {}",
                ModelKind::FillMask.as_str(),
                kind.as_str()
            )));
        }
        (ModelKind::Classifier, _) if spec.probe == Some(ProbeName::Cloze) => {
            return Err(unsupported(format!(
                "is a {}; this command needs a {} (probe = \"cloze\")",
                ModelKind::Classifier.as_str(),
                ModelKind::FillMask.as_str()
            )));
        }
        (ModelKind::Classifier, AttackKind::EntitySwap) if spans => Shape::SpanSwap,
        (ModelKind::Classifier, kind) if spans => {
            return Err(unsupported(format!(
                "resolves pronouns from span rows; only --kind entity-swap applies to it, not {}",
                kind.as_str()
            )));
        }
        (ModelKind::Classifier, AttackKind::Trigger) => Shape::TriggerSearch,
        (ModelKind::Classifier, _) => Shape::TextPerturbation,
    };
    if shape == Shape::SpanSwap && attack.name_swap.is_none() {
        return Err(EngineError::Input {
            path: PathBuf::from(super::spec::DEFAULT_NAME_FREQUENCY),
            problem: "not found: name swaps on span rows need the name-frequency table (run \
                      from the repository root, or set name_frequency / --name-frequency)"
                .into(),
        });
    }
    let mut attack = attack;
    if shape == Shape::TriggerSearch {
        resolve_exclusions(spec, &mut attack)?;
    }
    if spec.pair_col.is_some() {
        let refused = match shape {
            Shape::SpanSwap => Some("span rows (GAP) are single texts"),
            Shape::ClozeProbe => Some("cloze items are single texts"),
            Shape::TriggerSearch if spec.trigger.is_none() => Some(
                "the trigger search places trigger ids in single-segment inputs; search on \
                 single texts and evaluate the trigger on the pairs with --trigger",
            ),
            _ => None,
        };
        if let Some(reason) = refused {
            return Err(EngineError::Unsupported {
                dir: attack.model.clone(),
                problem: format!(
                    "cannot run {} on sentence pairs (pair_col): {reason}",
                    attack.kind.as_str()
                ),
            });
        }
    } else if spec.segment == Some(crate::perturb::Segment::Second) {
        return Err(EngineError::Input {
            path: attack.corpus.clone(),
            problem: "segment = \"second\" needs a pair column (pair_col / --pair-col)".into(),
        });
    }
    if let Some(pair_col) = &spec.pair_col {
        // Reports say which segment of each pair was attacked.
        attack
            .parameters
            .insert("pair_col".into(), pair_col.clone());
        attack.parameters.insert(
            "segment".into(),
            spec.segment.unwrap_or_default().as_str().into(),
        );
    }
    let top_k = spec.top_k.unwrap_or(5);
    if shape == Shape::ClozeProbe && top_k == 0 {
        return Err(RecipeError::Invalid {
            origin: origin.to_string(),
            key: "top_k",
            value: "0".into(),
            problem: "must be at least 1".into(),
        }
        .into());
    }
    Ok(Plan {
        attack,
        shape,
        columns: Columns {
            text: spec.text_col.clone(),
            label: spec.label_col.clone(),
            pair: spec.pair_col.clone(),
            require_label: false,
        },
        top_k,
        segment: spec.segment.unwrap_or_default(),
    })
}

/// The word lists a trigger search keeps out of its triggers: those the spec names, `none`
/// for none, or by default, for a model whose labels include positive and negative, the
/// sentiment-word list `scripts/setup` builds (Wallace et al. kept sentiment words out of
/// their SST-2 triggers, since a trigger that says "awful" is not fooling anyone).
fn resolve_exclusions(spec: &AttackSpec, attack: &mut ResolvedAttack) -> Result<(), EngineError> {
    use super::spec::{DEFAULT_EXCLUDE, ExclusionList};
    let Some(settings) = attack.trigger.as_mut() else {
        return Ok(());
    };
    if settings.given.is_some() {
        return Ok(());
    }
    let paths: Vec<PathBuf> = match &spec.exclude {
        Some(list) if list.iter().all(|p| p.as_os_str() == "none") => Vec::new(),
        Some(list) => list.clone(),
        None => {
            let info = crate::model::ModelInfo::read(&attack.model).map_err(|source| {
                EngineError::Model {
                    dir: attack.model.clone(),
                    source,
                }
            })?;
            let has = |l: &str| info.labels.iter().any(|x| x.eq_ignore_ascii_case(l));
            if has("positive") && has("negative") {
                // In the working directory, else in the repository robust was built from
                // (as for the runtime library in .ort/), so suites run from anywhere.
                let default = [
                    PathBuf::from(DEFAULT_EXCLUDE),
                    Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_EXCLUDE),
                ]
                .into_iter()
                .find(|p| p.is_file());
                let Some(default) = default else {
                    return Err(EngineError::Input {
                        path: PathBuf::from(DEFAULT_EXCLUDE),
                        problem: "not found: the default sentiment-word exclusion list for \
                                  trigger searches on sentiment models (run ./scripts/setup, or \
                                  set exclude = [\"none\"] / --exclude none to search without it)"
                            .into(),
                    });
                };
                vec![default]
            } else {
                Vec::new()
            }
        }
    };
    settings.exclude = paths
        .iter()
        .map(|p| ExclusionList::read(p))
        .collect::<Result<_, _>>()?;
    let described = if settings.exclude.is_empty() {
        "none".to_string()
    } else {
        settings
            .exclude
            .iter()
            .map(ExclusionList::describe)
            .collect::<Vec<_>>()
            .join(" | ")
    };
    attack.parameters.insert("exclude".into(), described);
    Ok(())
}

/// Loaded models, kept across attacks so that a suite loads each folder once.
pub struct Models {
    options: InferenceOptions,
    classifiers: HashMap<PathBuf, Classifier>,
    coref: HashMap<PathBuf, CorefModel>,
    fill_mask: HashMap<PathBuf, MaskedLm>,
    /// sha256 by folder: a model file is hashed once, however many jobs run on it.
    shas: HashMap<PathBuf, String>,
}

impl Models {
    /// No models loaded yet; each loads with `options` when first asked for.
    pub fn new(options: InferenceOptions) -> Self {
        Self {
            options,
            classifiers: HashMap::new(),
            coref: HashMap::new(),
            fill_mask: HashMap::new(),
            shas: HashMap::new(),
        }
    }

    /// Digests already known (a suite hashes every model before its first job), so that jobs
    /// do not read the model files again.
    pub fn with_known_shas(mut self, shas: impl IntoIterator<Item = (PathBuf, String)>) -> Self {
        self.shas.extend(shas);
        self
    }

    /// sha256 of the model in `dir` (of `model.onnx` and its external data), read once.
    pub fn sha256(&mut self, dir: &Path) -> Result<String, EngineError> {
        if let Some(sha) = self.shas.get(dir) {
            return Ok(sha.clone());
        }
        let sha = crate::model::model_sha256(dir).map_err(Self::load_err(dir))?;
        self.shas.insert(dir.to_path_buf(), sha.clone());
        Ok(sha)
    }

    /// The options every model is loaded with.
    pub fn options(&self) -> &InferenceOptions {
        &self.options
    }

    fn load_err(dir: &Path) -> impl FnOnce(ModelError) -> EngineError + '_ {
        move |source| EngineError::Model {
            dir: dir.to_path_buf(),
            source,
        }
    }

    /// The classifier in `dir`, loaded on first use.
    pub fn classifier(&mut self, dir: &Path) -> Result<&mut Classifier, EngineError> {
        if !self.classifiers.contains_key(dir) {
            let model = Classifier::load(dir, self.options.clone()).map_err(Self::load_err(dir))?;
            self.classifiers.insert(dir.to_path_buf(), model);
        }
        Ok(self.classifiers.get_mut(dir).expect("inserted just above"))
    }

    /// The coreference model (classifier + span template) in `dir`, loaded on first use.
    pub fn coref(&mut self, dir: &Path) -> Result<&mut CorefModel, EngineError> {
        if !self.coref.contains_key(dir) {
            let classifier =
                Classifier::load(dir, self.options.clone()).map_err(Self::load_err(dir))?;
            self.coref
                .insert(dir.to_path_buf(), CorefModel::new(classifier)?);
        }
        Ok(self.coref.get_mut(dir).expect("inserted just above"))
    }

    /// The fill-mask model in `dir`, loaded on first use.
    pub fn masked_lm(&mut self, dir: &Path) -> Result<&mut MaskedLm, EngineError> {
        if !self.fill_mask.contains_key(dir) {
            let model = MaskedLm::load(dir, self.options.clone()).map_err(Self::load_err(dir))?;
            self.fill_mask.insert(dir.to_path_buf(), model);
        }
        Ok(self.fill_mask.get_mut(dir).expect("inserted just above"))
    }
}

impl Plan {
    /// Load the plan's model and run it once on a one-word input, so that a model that does
    /// not load, or whose output does not fit its labels, fails before any attack runs.
    pub fn preflight(&self, models: &mut Models) -> Result<(), EngineError> {
        let dir = &self.attack.model;
        let run_err = |source| EngineError::Run {
            dir: dir.clone(),
            source,
        };
        match self.shape {
            Shape::TextPerturbation | Shape::TriggerSearch => {
                let model = models.classifier(dir)?;
                model.predict(&["preflight"]).map_err(run_err)?;
                model.clear_cache();
            }
            Shape::SpanSwap => {
                let model = models.coref(dir)?;
                model.classifier.predict(&["preflight"]).map_err(run_err)?;
                model.classifier.clear_cache();
            }
            Shape::ClozeProbe => {
                let model = models.masked_lm(dir)?;
                let mask = model.mask_id();
                let input = crate::model::tokenize::TokenIds::single(vec![mask]);
                model.mask_log_probs(&[input]).map_err(run_err)?;
            }
        }
        Ok(())
    }
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
    pub kind: AttackKind,
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

/// The examples an attack runs on: the first `limit` rows, with gold labels where the corpus
/// has them.
pub fn targets(
    corpus: &Corpus,
    model: &Classifier,
    limit: Option<usize>,
    segment: crate::perturb::Segment,
) -> Result<Vec<Target>, CorpusError> {
    let gold = match corpus.label_column {
        Some(_) => Some(corpus.label_indices(model.info())?),
        None => None,
    };
    if gold.is_some()
        && let Some(warning) = corpus.label_warning(model.info())
    {
        tracing::warn!("{warning}");
    }
    Ok(corpus
        .rows
        .iter()
        .enumerate()
        .take(limit.unwrap_or(usize::MAX))
        .map(|(i, row)| target(row, gold.as_ref().map(|g| g[i]), segment))
        .collect())
}

/// The example a corpus row makes: its text, or of a sentence pair the attacked segment with
/// the other beside it.
fn target(
    row: &crate::data::corpus::Row,
    gold: Option<usize>,
    segment: crate::perturb::Segment,
) -> Target {
    use crate::perturb::Segment;
    let (text, context) = match (&row.pair, segment) {
        (None, _) => (row.text.clone(), None),
        (Some(pair), Segment::First) => (row.text.clone(), Some((pair, segment))),
        (Some(pair), Segment::Second) => (pair.clone(), Some((&row.text, segment))),
    };
    Target {
        line: row.line,
        text,
        gold,
        context: context.map(|(other, segment)| runner::PairContext {
            other: other.clone(),
            segment,
        }),
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

/// Target rows per chunk of a streamed perturbation attack: with their variants (ten per row
/// for a shuffle) a chunk is tens of thousands of model inputs, enough for length-sorted
/// batches and worker sessions, and a few tens of megabytes while it is encoded and run.
pub const DEFAULT_CHUNK_ROWS: usize = 2_048;

fn perturbation(
    plan: &Plan,
    models: &mut Models,
    options: &ExecuteOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<AttackResult, EngineError> {
    use crate::data::corpus_stream::{CorpusBlocks, DEFAULT_BLOCK_BYTES, scan};
    let attack = &plan.attack;
    let sha = models.sha256(&attack.model)?;
    let model = models.classifier(&attack.model)?;
    model.clear_cache();
    let block_bytes = options.block_bytes.unwrap_or(DEFAULT_BLOCK_BYTES);
    let chunk_rows = options.chunk_rows.unwrap_or(DEFAULT_CHUNK_ROWS).max(1);
    // Pass 1: every row parsed and every label checked before any model work, as when the
    // corpus is read whole.
    let corpus = scan(
        &attack.corpus,
        &plan.columns,
        model.info(),
        None,
        false,
        block_bytes,
    )?;
    if corpus.blank_lines > 0 {
        tracing::info!(
            blank_lines = corpus.blank_lines,
            "skipped blank lines in {}",
            attack.corpus.display()
        );
    }
    let total = attack.limit.map_or(corpus.rows, |l| l.min(corpus.rows));
    let perturber = attack
        .perturber
        .as_deref()
        .expect("every text-perturbation kind has a perturber");
    let labels = model.labels().to_vec();
    let expectation = attack.kind.expectation();
    let mut scorer = crate::score::Scorer::new(&labels, expectation);
    let mut failures = Failures::new(options.failure_limit.unwrap_or(usize::MAX));
    // examples.csv goes to disk as the chunks are scored when the caller names a folder for
    // it; otherwise into memory, as a library caller reading `AttackResult::file` expects.
    let mut staged = match &options.stage_in {
        Some(dir) => Some(crate::report::StagedFile::create(dir, "examples.csv")?),
        None => None,
    };
    let mut memory = Vec::new();
    let sink: Box<dyn std::io::Write + '_> = match &mut staged {
        Some(file) => Box::new(std::io::BufWriter::new(file.file())),
        None => Box::new(&mut memory),
    };
    let examples_path = options
        .stage_in
        .clone()
        .unwrap_or_default()
        .join("examples.csv");
    let mut examples =
        crate::report::ExamplesWriter::new(sink, &attack.name, &labels, corpus.pairs && total > 0)?
            .naming(examples_path.clone());
    // Pass 2: chunk by chunk; nothing of a chunk outlives it but the scorer's counts, the
    // few clearest failures and the rows already written.
    let start = Instant::now();
    let before = model.stats();
    let mut blocks = CorpusBlocks::open(&attack.corpus, &plan.columns, block_bytes)?;
    // Rows are numbered over the whole (limited) corpus, so a shard's rows draw the
    // perturbations they draw in an unsharded run.
    let rows = options.shard.map_or(0..total, |shard| shard.rows(total));
    let mut seen = 0;
    let mut done = 0;
    while seen < rows.end
        && let Some(mut block) = blocks.next_block()?
    {
        let first = seen;
        seen += block.rows.len();
        if seen <= rows.start {
            continue;
        }
        block.rows.truncate(rows.end - first);
        block.rows.drain(..rows.start.saturating_sub(first));
        let block_targets = targets_of_block(&block, model, plan.segment)?;
        for chunk in block_targets.chunks(chunk_rows) {
            let offset = rows.start + done;
            let mut report = |d: usize, t: usize| {
                progress(
                    done + (chunk.len() * d).checked_div(t).unwrap_or(0),
                    rows.len(),
                )
            };
            let run = runner::run_from(model, chunk, perturber, attack.seed, offset, &mut report)
                .map_err(|source| EngineError::Run {
                dir: attack.model.clone(),
                source,
            })?;
            for o in &run.outcomes {
                scorer.add(o);
                failures.add(o, &labels, expectation);
                examples.write(o)?;
            }
            done += chunk.len();
            progress(done, rows.len());
        }
    }
    let wall_seconds = start.elapsed().as_secs_f64();
    let queries = model.stats().since(&before);
    let write_err = |source| {
        EngineError::Report(ReportError::Write {
            path: examples_path.clone(),
            source,
        })
    };
    examples.finish()?.flush().map_err(write_err)?;
    let shard = AttackShard {
        format: AttackShard::FORMAT,
        shard: options.shard.unwrap_or(Shard { index: 1, count: 1 }),
        rows: (rows.start, rows.end),
        total_rows: total,
        attack: attack.name.clone(),
        kind: attack.kind.as_str().to_string(),
        model: model.info().name.clone(),
        model_sha256: sha.clone(),
        corpus: corpus.name,
        corpus_sha256: corpus.sha256,
        seed: attack.seed,
        robust_version: crate::VERSION.to_string(),
        parameters: attack.parameters.clone(),
        asked_max_len: model.options().max_len,
        max_len: model.encoder().max_len(),
        labels,
        scorer,
        failures: failures.found,
        failure_limit: failures.limit,
        queries,
        wall_seconds,
    };
    let mut files = Vec::new();
    let mut staged_files = Vec::new();
    match staged {
        Some(file) => staged_files.push(file),
        None => files.push((
            "examples.csv".to_string(),
            String::from_utf8(memory).map_err(|e| ReportError::Serialise(Box::new(e)))?,
        )),
    }
    if options.shard.is_some() {
        // A shard's scores are of its rows only: its record is written for the merge, and
        // summary.csv only by the merge, so that no partial summary passes for the attack's.
        let record = serde_json::to_string_pretty(&shard)
            .map_err(|e| ReportError::Serialise(Box::new(e)))?;
        files.push((AttackShard::FILE.to_string(), record + "\n"));
    }
    let (report, failures) = shard.into_report();
    if options.shard.is_none() {
        files.push((
            "summary.csv".to_string(),
            Format::Csv.exporter().attack(&report)?,
        ));
    }
    Ok(AttackResult {
        name: attack.name.clone(),
        kind: attack.kind,
        shape: plan.shape,
        failures,
        wall_seconds,
        model_stats: queries,
        reports: vec![report],
        cloze: None,
        trigger: None,
        files,
        staged: staged_files,
        rows: rows.len(),
        model_sha256: sha,
    })
}

/// What one shard of a perturbation attack split by rows (`robust attack --shard K/N`)
/// leaves for the merge beside its `examples.csv`: the scorer's counts over its rows, its
/// strongest failures, and everything that must agree across the shards for them to be
/// parts of one attack. Merged in shard order ([`merge_attack_shards`]), shards give the
/// summary an unsharded run writes, byte for byte.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttackShard {
    /// Version of this record's layout.
    pub format: u32,
    /// Which part this is.
    pub shard: Shard,
    /// The rows attacked, `[start, end)` from 0, of the corpus cut to its limit.
    pub rows: (usize, usize),
    /// Rows of the whole attack.
    pub total_rows: usize,
    /// Attack name.
    pub attack: String,
    /// Attack kind.
    pub kind: String,
    /// Model name, as reports give it.
    pub model: String,
    /// sha256 of the model.
    pub model_sha256: String,
    /// Corpus file name.
    pub corpus: String,
    /// sha256 of the corpus file.
    pub corpus_sha256: String,
    /// The seed every perturbation came from.
    pub seed: u64,
    /// The robust that ran the shard.
    pub robust_version: String,
    /// Attack parameters (before inputs cut to the model's length are recorded).
    pub parameters: BTreeMap<String, String>,
    /// `--max-len` as given.
    pub asked_max_len: Option<usize>,
    /// The model's input limit in tokens.
    pub max_len: usize,
    /// Label names, by index.
    pub labels: Vec<String>,
    /// Counts over the shard's rows.
    pub scorer: crate::score::Scorer,
    /// The shard's strongest failures with their strengths, strongest first.
    pub failures: Vec<(f64, FailureExample)>,
    /// How many failures a shard keeps.
    pub failure_limit: usize,
    /// Model work of the shard.
    pub queries: QueryStats,
    /// Seconds the shard's attack took.
    pub wall_seconds: f64,
}

impl AttackShard {
    /// The record's file name in a shard's output folder.
    pub const FILE: &str = "attack-shard.json";
    /// The layout version written now.
    pub const FORMAT: u32 = 1;

    /// The scored report and failure examples of the rows this record covers.
    fn into_report(self) -> (AttackReport, Vec<FailureExample>) {
        let mut parameters = self.parameters;
        record_truncation(
            &mut parameters,
            &self.attack,
            self.asked_max_len,
            self.max_len,
            self.queries.truncated,
        );
        let report = AttackReport {
            scores: self.scorer.finish(),
            attack: self.attack,
            kind: self.kind,
            model: self.model,
            model_sha256: self.model_sha256,
            corpus: self.corpus,
            corpus_sha256: self.corpus_sha256,
            seed: self.seed,
            robust_version: self.robust_version,
            parameters,
            labels: self.labels,
            outcomes: Vec::new(),
            wall_seconds: self.wall_seconds,
            model_stats: self.queries,
        };
        let failures = self.failures.into_iter().map(|(_, e)| e).collect();
        (report, failures)
    }
}

/// Why shards of an attack do not merge.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// The shards are not N distinct parts of one split.
    #[error("{0}")]
    Incomplete(String),
    /// Two shards disagree on something that must be the same in every part of one attack.
    #[error("shards {a} and {b} are not parts of one attack: {what} {va:?} vs {vb:?}")]
    Differ {
        /// The first shard.
        a: Shard,
        /// The other.
        b: Shard,
        /// What differs.
        what: &'static str,
        /// Its value in `a`.
        va: String,
        /// Its value in `b`.
        vb: String,
    },
    /// The shards were run by another robust, whose numbers this one does not vouch for.
    #[error("the shards ran robust {ran}, this is {this}; merge with the version that ran them")]
    Version {
        /// The version that ran them.
        ran: String,
        /// This version.
        this: String,
    },
}

/// Join the records of shards 1/N..N/N of one attack (in any order) into the report an
/// unsharded run gives, and its strongest failures.
pub fn merge_attack_shards(
    mut shards: Vec<AttackShard>,
) -> Result<(AttackReport, Vec<FailureExample>), MergeError> {
    let parts: Vec<Shard> = shards.iter().map(|s| s.shard).collect();
    Shard::check_complete(&parts).map_err(MergeError::Incomplete)?;
    shards.sort_by_key(|s| s.shard.index);
    let mut all = shards.into_iter();
    let mut merged = all.next().expect("check_complete refuses no shards");
    if merged.robust_version != crate::VERSION {
        return Err(MergeError::Version {
            ran: merged.robust_version,
            this: crate::VERSION.to_string(),
        });
    }
    for next in all {
        let (a, b) = (merged.shard, next.shard);
        let differ = |what, va: String, vb: String| -> Result<(), MergeError> {
            if va == vb {
                Ok(())
            } else {
                Err(MergeError::Differ { a, b, what, va, vb })
            }
        };
        differ("attack", merged.attack.clone(), next.attack.clone())?;
        differ("kind", merged.kind.clone(), next.kind.clone())?;
        differ(
            "model sha256",
            merged.model_sha256.clone(),
            next.model_sha256.clone(),
        )?;
        differ(
            "corpus sha256",
            merged.corpus_sha256.clone(),
            next.corpus_sha256.clone(),
        )?;
        differ("seed", merged.seed.to_string(), next.seed.to_string())?;
        differ(
            "robust version",
            merged.robust_version.clone(),
            next.robust_version.clone(),
        )?;
        differ(
            "rows in all",
            merged.total_rows.to_string(),
            next.total_rows.to_string(),
        )?;
        differ("labels", merged.labels.join(","), next.labels.join(","))?;
        differ(
            "parameters",
            format!("{:?} max_len {:?}", merged.parameters, merged.asked_max_len),
            format!("{:?} max_len {:?}", next.parameters, next.asked_max_len),
        )?;
        if merged.rows.1 != next.rows.0 {
            return Err(MergeError::Differ {
                a,
                b,
                what: "rows",
                va: format!("ending at {}", merged.rows.1),
                vb: format!("starting at {}", next.rows.0),
            });
        }
        merged.rows.1 = next.rows.1;
        merged.scorer.merge(next.scorer);
        let mut failures = Failures {
            limit: merged.failure_limit,
            found: std::mem::take(&mut merged.failures),
        };
        // Later shards' failures come after on ties, as later rows do in one run.
        for (strength, example) in next.failures {
            failures.insert(strength, example);
        }
        merged.failures = failures.found;
        merged.queries.add(&next.queries);
        merged.wall_seconds += next.wall_seconds;
    }
    Ok(merged.into_report())
}

/// The targets of one block of a corpus read in blocks; labels were checked over the whole
/// file by the first pass.
fn targets_of_block(
    block: &Corpus,
    model: &Classifier,
    segment: crate::perturb::Segment,
) -> Result<Vec<Target>, CorpusError> {
    let gold = match block.label_column {
        Some(_) => Some(block.row_label_indices(model.info())?),
        None => None,
    };
    Ok(block
        .rows
        .iter()
        .enumerate()
        .map(|(i, row)| target(row, gold.as_ref().map(|g| g[i]), segment))
        .collect())
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

fn span_swap(
    plan: &Plan,
    models: &mut Models,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<AttackResult, EngineError> {
    let attack = &plan.attack;
    let swap: &SpanNameSwap = attack
        .name_swap
        .as_ref()
        .expect("plan() checks that span swaps have their frequency table");
    if !SpanCorpus::sniff(&attack.corpus) && attack.corpus.is_file() {
        return Err(EngineError::Input {
            path: attack.corpus.clone(),
            problem: "line 1: a coreference model needs GAP-format rows (columns Text, Pronoun, \
                      Pronoun-offset, A, A-offset, B, B-offset)"
                .into(),
        });
    }
    let corpus = SpanCorpus::read(&attack.corpus)?;
    let sha = models.sha256(&attack.model)?;
    let model = models.coref(&attack.model)?;
    model.classifier.clear_cache();
    let rows = &corpus.rows[..corpus.rows.len().min(attack.limit.unwrap_or(usize::MAX))];
    let run = name_swap::run(model, rows, swap, attack.seed, progress).map_err(|source| {
        EngineError::Run {
            dir: attack.model.clone(),
            source,
        }
    })?;
    let mut parameters = attack.parameters.clone();
    parameters.insert("condition".into(), swap.condition.as_str().into());
    parameters.insert(
        "replace".into(),
        format!("{:?}", swap.replace).to_lowercase(),
    );
    // Recipe swap names that only make sense for sentences are replaced by the condition.
    parameters.remove("swap");
    record_truncation(
        &mut parameters,
        &attack.name,
        model.classifier.options().max_len,
        model.classifier.encoder().max_len(),
        run.queries.truncated,
    );
    let scores = name_swap::score_breakdown(&run);
    let info = model.classifier.info();
    let report = AttackReport {
        scores,
        attack: attack.name.clone(),
        kind: attack.kind.as_str().to_string(),
        model: info.name.clone(),
        model_sha256: sha.clone(),
        corpus: corpus.name(),
        corpus_sha256: corpus.sha256.clone(),
        seed: attack.seed,
        robust_version: crate::VERSION.to_string(),
        parameters,
        labels: run.labels.clone(),
        outcomes: run.outcomes,
        wall_seconds: run.wall_seconds,
        model_stats: run.queries,
    };
    finish_reports(plan, vec![report], rows.len(), sha, None, Vec::new())
}

fn trigger_search(
    plan: &Plan,
    models: &mut Models,
    options: &ExecuteOptions,
) -> Result<AttackResult, EngineError> {
    let attack = &plan.attack;
    let settings = attack
        .trigger
        .as_ref()
        .expect("trigger plans carry their settings");
    let corpus = read_corpus(&attack.corpus, &plan.columns)?;
    if corpus.label_column.is_none() {
        return Err(EngineError::Input {
            path: corpus.path.clone(),
            problem: "a trigger attack needs gold labels (no label column)".into(),
        });
    }
    if settings.search_corpus.as_ref() == Some(&attack.corpus) {
        tracing::warn!(
            "searching and evaluating on the same corpus overstates how universal a trigger is"
        );
    }
    let search_columns = Columns {
        require_label: true,
        ..plan.columns.clone()
    };
    let search = match &settings.search_corpus {
        Some(path) => Some(read_corpus(path, &search_columns)?),
        None => None,
    };
    let model_sha = models.sha256(&attack.model)?;
    let model = models.classifier(&attack.model)?;
    model.clear_cache();
    let targets = targets(&corpus, model, attack.limit, plan.segment)?;
    let before = model.stats();
    let start = Instant::now();
    let checkpoint = options.checkpoint.as_ref().map(|dir| Checkpoint {
        dir: dir.clone(),
        mode: options.resume.unwrap_or(ResumeMode::Fresh),
        context: format!(
            "model {model_sha}\ncorpus {}\nsearch {:?}\nseed {}\nlimit {:?}\n{:?}\n{:?}",
            corpus.sha256,
            search.as_ref().map(|c| &c.sha256),
            attack.seed,
            attack.limit,
            attack.parameters,
            model.options().max_len,
        ),
    });
    let trace = options.gradient_trace.as_ref().map(|path| {
        let mut context = serde_json::Map::new();
        context.insert("model".into(), attack.model.display().to_string().into());
        context.insert("source".into(), settings.source.clone().into());
        context.insert("labels".into(), model.labels().to_vec().into());
        trigger::GradientTrace::new(path.clone(), context)
    });
    let outcome = trigger::run_attack(
        model,
        settings,
        &targets,
        search.as_ref(),
        attack.seed,
        trigger::SearchHooks { checkpoint, trace },
        &mut |p| {
            tracing::info!(
                "iteration {:>2}: trigger {:?}, batch loss {:.4}, validation loss {:.4}, {} queries, {:.0} s",
                p.iteration,
                p.trigger,
                p.batch_loss,
                p.validation_loss,
                p.queries,
                p.seconds
            );
        },
    )?;
    let wall_seconds = start.elapsed().as_secs_f64();
    let model_stats = model.stats().since(&before);
    let mut parameters = attack.parameters.clone();
    record_truncation(
        &mut parameters,
        &attack.name,
        model.options().max_len,
        model.encoder().max_len(),
        model_stats.truncated,
    );
    parameters.insert("trigger".into(), outcome.result.text.clone());
    parameters.insert(
        "search_examples".into(),
        outcome.search_examples.to_string(),
    );
    let labels = model.labels().to_vec();
    let sha = model_sha;
    let searched = new_report(
        attack,
        attack.name.clone(),
        parameters.clone(),
        model,
        &sha,
        &corpus,
        outcome.searched,
        wall_seconds,
        model_stats,
    );
    let mut baseline_params = parameters;
    baseline_params.insert(
        "random_triggers".into(),
        outcome.random_triggers.join(" | "),
    );
    let baseline = new_report(
        attack,
        format!("{}/random-baseline", attack.name),
        baseline_params,
        model,
        &sha,
        &corpus,
        outcome.baseline,
        wall_seconds,
        model_stats,
    );
    let mut curve = String::from("iteration,trigger,batch_loss,validation_loss,queries\n");
    for p in &outcome.result.curve {
        curve.push_str(&format!(
            "{},\"{}\",{},{},{}\n",
            p.iteration,
            p.trigger.replace('"', "\"\""),
            fixed(p.batch_loss, 6),
            fixed(p.validation_loss, 6),
            p.queries
        ));
    }
    let proposals = format!("{:?}", outcome.proposals).to_lowercase();
    let json = serde_json::to_string_pretty(&serde_json::json!({
        "trigger": outcome.result,
        "proposals": outcome.proposals,
        "target": outcome.target.map(|t| labels[t].clone()),
        "source": outcome.source.map(|s| labels[s].clone()),
        "given": settings.given.is_some(),
        "exclude": settings.exclude,
        "search_corpus": search.as_ref().map(|c| &c.path),
        "search_corpus_sha256": search.as_ref().map(|c| &c.sha256),
        "search_examples": outcome.search_examples,
        "random_triggers": outcome.random_triggers,
        "wall_seconds": wall_seconds,
    }))
    .map_err(|e| ReportError::Serialise(Box::new(e)))?;
    let found = TriggerFound {
        text: outcome.result.text.clone(),
        proposals,
        search_examples: outcome.search_examples,
        search_corpus: search
            .as_ref()
            .map_or_else(|| "none (given trigger)".into(), Corpus::name),
        queries: outcome.result.queries,
        seconds: outcome.result.seconds,
    };
    finish_reports(
        plan,
        vec![searched, baseline],
        targets.len(),
        sha,
        Some(found),
        vec![
            ("loss_curve.csv".into(), curve),
            ("trigger.json".into(), json + "\n"),
        ],
    )
}

fn cloze_probe(plan: &Plan, models: &mut Models) -> Result<AttackResult, EngineError> {
    use crate::report::cloze::{examples_csv, summary_csv};
    let attack = &plan.attack;
    let items = crate::attack::cloze::read_items(&attack.corpus)?;
    let items = &items[..items.len().min(attack.limit.unwrap_or(usize::MAX))];
    let model_sha256 = models.sha256(&attack.model)?;
    let model = models.masked_lm(&attack.model)?;
    let before = model.stats();
    let start = Instant::now();
    let results =
        crate::attack::cloze::run(model, items, plan.top_k).map_err(|source| EngineError::Run {
            dir: attack.model.clone(),
            source,
        })?;
    let wall_seconds = start.elapsed().as_secs_f64();
    let model_stats = model.stats().since(&before);
    let scores = crate::attack::cloze::score_all(&results);
    let corpus_sha256 =
        crate::hash::sha256_file(&attack.corpus).map_err(|e| EngineError::Input {
            path: attack.corpus.clone(),
            problem: format!("cannot read ({e})"),
        })?;
    let mut parameters = BTreeMap::new();
    parameters.insert("probe".to_string(), "cloze".to_string());
    parameters.insert("top_k".to_string(), plan.top_k.to_string());
    if let Some(limit) = attack.limit {
        parameters.insert("limit".to_string(), limit.to_string());
    }

    let provenance = ClozeProvenance {
        attack: attack.name.clone(),
        model: model.name().to_string(),
        model_sha256: model_sha256.clone(),
        corpus: attack
            .corpus
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        corpus_sha256,
        seed: attack.seed,
        parameters,
    };
    let files = vec![
        ("examples.csv".to_string(), examples_csv(&results)?),
        (
            "summary.csv".to_string(),
            summary_csv(&provenance, &scores)?,
        ),
    ];
    Ok(AttackResult {
        name: attack.name.clone(),
        kind: attack.kind,
        shape: plan.shape,
        reports: Vec::new(),
        failures: cloze_failures(&results),
        cloze: Some(ClozeOutcome {
            provenance,
            scores,
            results,
        }),
        trigger: None,
        files,
        staged: Vec::new(),
        rows: items.len(),
        wall_seconds,
        model_stats,
        model_sha256,
    })
}

/// The clearest failures of a scored attack, strongest first, at most one per input row.
///
/// For invariance attacks (shuffles, name swaps, triggers) a failure is a variant whose label
/// changed, ranked by how much probability the original label lost. For negation, where a
/// change away from the gold label is wanted, it is a variant still predicted as the gold
/// label, ranked by the confidence in it.
pub fn failure_examples(report: &AttackReport, limit: usize) -> Vec<FailureExample> {
    let mut failures = Failures::new(limit);
    for o in &report.outcomes {
        failures.add(o, &report.labels, report.scores.expectation);
    }
    failures.into_examples()
}

/// The strongest failures seen so far, at most `limit`, strongest first and in corpus order
/// on ties: what [`failure_examples`] keeps, collected one outcome at a time so a streamed
/// attack holds only these.
struct Failures {
    limit: usize,
    found: Vec<(f64, FailureExample)>,
}

impl Failures {
    fn new(limit: usize) -> Self {
        Failures {
            limit,
            found: Vec::new(),
        }
    }

    /// Consider one example: its strongest failing variant, if it has one.
    fn add(&mut self, o: &ExampleOutcome, labels: &[String], expectation: Expectation) {
        if self.limit == 0 {
            return;
        }
        let Ok(variants) = &o.result else { return };
        let label = |i: usize| labels.get(i).cloned().unwrap_or_else(|| i.to_string());
        let mut best: Option<(f64, &crate::score::PerturbedOutcome, &'static str)> = None;
        for v in variants {
            let p = &v.prediction;
            let (strength, why) = match expectation {
                Expectation::Invariant if p.label != o.original.label => {
                    let before = o.original.probs.get(o.original.label).copied();
                    let after = p.probs.get(o.original.label).copied();
                    let drop = f64::from(before.unwrap_or(0.0) - after.unwrap_or(0.0));
                    (drop, "label changed")
                }
                Expectation::FlipFromGold => match o.gold {
                    Some(g) if p.label == g => (
                        f64::from(p.probs.get(g).copied().unwrap_or(0.0)),
                        "still the gold label after the perturbation",
                    ),
                    _ => continue,
                },
                _ => continue,
            };
            if best.as_ref().is_none_or(|(s, _, _)| strength > *s) {
                best = Some((strength, v, why));
            }
        }
        let Some((strength, v, why)) = best else {
            return;
        };
        if !self.would_keep(strength) {
            return;
        }
        let p = &v.prediction;
        let example = FailureExample {
            line: o.line,
            group: v.perturbation.group.clone(),
            gold: o.gold.map(label),
            original_text: o.text.clone(),
            perturbed_text: v.perturbation.text.clone(),
            // Of a sentence pair, the segment left alone is part of the example.
            detail: match &o.context {
                Some(c) => format!(
                    "{} · {} segment; the other: {}",
                    v.perturbation.detail,
                    c.segment.as_str(),
                    c.other
                ),
                None => v.perturbation.detail.clone(),
            },
            original_label: label(o.original.label),
            original_confidence: f64::from(o.original.confidence()),
            perturbed_label: label(p.label),
            perturbed_confidence: f64::from(p.confidence()),
            why: why.to_string(),
        };
        self.insert(strength, example);
    }

    /// After every kept failure at least as strong: a stable sort's place.
    fn place(&self, strength: f64) -> usize {
        self.found
            .partition_point(|(s, _)| s.total_cmp(&strength) != std::cmp::Ordering::Less)
    }

    fn would_keep(&self, strength: f64) -> bool {
        self.place(strength) < self.limit
    }

    fn insert(&mut self, strength: f64, example: FailureExample) {
        let at = self.place(strength);
        if at < self.limit {
            self.found.insert(at, (strength, example));
            self.found.truncate(self.limit);
        }
    }

    fn into_examples(self) -> Vec<FailureExample> {
        self.found.into_iter().map(|(_, e)| e).collect()
    }
}

/// Cloze items whose top-1 word did not change when the template was negated: the model
/// ignored the negation. Ranked by the top-1 word's probability in the negated template.
fn cloze_failures(results: &[ItemResult]) -> Vec<FailureExample> {
    let mut found: Vec<(f64, FailureExample)> = results
        .iter()
        .filter(|r| r.top1_unchanged() == Some(true))
        .filter_map(|r| {
            let (aff_word, aff_lp) = r.top_aff.first()?;
            let (neg_word, neg_lp) = r.top_neg.first()?;
            let it = &r.item;
            Some((
                f64::from(*neg_lp),
                FailureExample {
                    line: it.line,
                    group: it.group.clone().unwrap_or_else(|| "all".into()),
                    gold: it.negated_answer.clone(),
                    original_text: it.template.clone(),
                    perturbed_text: it.negated.clone().unwrap_or_default(),
                    detail: format!("item {}", it.id),
                    original_label: aff_word.clone(),
                    original_confidence: f64::from(aff_lp.exp()),
                    perturbed_label: neg_word.clone(),
                    perturbed_confidence: f64::from(neg_lp.exp()),
                    why: "same top-1 word with and without negation".into(),
                },
            ))
        })
        .collect();
    found.sort_by(|a, b| b.0.total_cmp(&a.0));
    found.into_iter().map(|(_, e)| e).collect()
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
