//! What a trigger attack is asked to do: the recipe's trigger keys, checked, and the few
//! choices (placement, proposals, estimator, shrinkage) a search is configured by.
//!
//! This file is a leaf on purpose. The recipe layer (`attack::spec`) builds these types and
//! the search, its checkpoint and its trace read them; when they lived beside the search (and
//! the settings beside the recipe) each side imported the other. Nothing here imports the
//! recipe, the search or the checkpoint.

use std::path::PathBuf;

use serde::Serialize;

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

/// A trigger attack's settings beyond the search configuration.
#[derive(Debug, Clone)]
pub struct TriggerSettings {
    /// The search's configuration (its `target` is filled in at run time).
    pub config: TriggerConfig,
    /// Label names (or indices) resolved against the model at run time.
    pub target: Option<String>,
    /// Attack only examples of this label (name or index); `None`: every label but the
    /// target.
    pub source: Option<String>,
    /// Where the trigger is searched; None when a given trigger is evaluated.
    pub search_corpus: Option<PathBuf>,
    /// A trigger to evaluate as given (any text), instead of searching one.
    pub given: Option<String>,
    /// Word lists kept out of the trigger (resolved against the model by the engine's plan).
    pub exclude: Vec<ExclusionList>,
    /// How far the exclusion reaches beyond the listed words (resolved by the plan too).
    pub exclusion: Exclusion,
    /// Random triggers of the same length evaluated as a baseline.
    pub random_baselines: usize,
    /// Search only on examples of at least this many word pieces (0 for a given trigger).
    pub min_search_tokens: usize,
    /// At most this many search examples, drawn with the seed (0 for a given trigger).
    pub max_search_examples: usize,
}

/// What a trigger search excludes beyond the listed words as written: their WordNet base
/// forms and neighbours, and words an independent encoder scores as evaluative.
#[derive(Clone, Default)]
pub struct Exclusion {
    /// WordNet, for base forms and propagation; `None`: listed words match as written.
    pub wordnet: Option<std::sync::Arc<crate::lexicon::wordnet::WordNet>>,
    /// Match base forms ("lacked" by "lack"); needs `wordnet`.
    pub forms: bool,
    /// Steps of WordNet synonyms and derivational links from the listed words; needs `wordnet`.
    pub propagation: usize,
    /// The polarity filter, when on.
    pub polarity: Option<PolarityFilter>,
}

/// Words whose semantic orientation ([`crate::lexicon::polarity`]) is at least `threshold` in
/// size are excluded.
#[derive(Debug, Clone)]
pub struct PolarityFilter {
    /// The sentence-encoder folder that scores words.
    pub encoder: PathBuf,
    /// The least size of score that excludes a word.
    pub threshold: f64,
}

impl Exclusion {
    /// Whether anything beyond the listed words as written is excluded.
    pub fn widens(&self) -> bool {
        (self.wordnet.is_some() && (self.forms || self.propagation > 0)) || self.polarity.is_some()
    }
}

impl std::fmt::Debug for Exclusion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exclusion")
            .field(
                "wordnet",
                &self.wordnet.as_ref().map(|w| w.source().dir.clone()),
            )
            .field("forms", &self.forms)
            .field("propagation", &self.propagation)
            .field("polarity", &self.polarity)
            .finish()
    }
}

/// A list of words a trigger may not contain.
///
/// Reading one is the recipe's business (`ExclusionList::read` stands in `attack::spec`, whose
/// errors it returns); the type stands here because the settings hold it.
#[derive(Debug, Clone, Serialize)]
pub struct ExclusionList {
    /// The word list file.
    pub path: PathBuf,
    /// sha256 of the file's bytes, lower-case hex.
    pub sha256: String,
    /// Lower-cased, in file order.
    #[serde(skip)]
    pub words: Vec<String>,
    /// Words in the list.
    pub size: usize,
}
