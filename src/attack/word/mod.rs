//! Per-example word and character attacks: for each sentence, rank its words by importance,
//! then replace them one at a time (WordNet synonyms, masked-LM proposals, character edits)
//! under constraints until the label changes or the example's query budget runs out.
//!
//! Why one engine for three attacks: TextAttack's recipes (PWWS, BAE, DeepWordBug, TextFooler)
//! differ in the transformation and the constraints, and share the goal, the word ranking and
//! the search. So here too: a [`Transformation`] proposes replacements for one word, the
//! [`constraint::Constraints`] decide which are admissible, and [`search`] runs the rest the
//! same way for all of them. Each attack is a [`crate::attack::runner::RowAttack`], so it runs
//! on the streamed engine with everything the other row attacks have: suites, gates, shards,
//! `--resume`, sentence pairs (the chosen segment is perturbed) and byte-identical CSVs under a
//! seed.
//!
//! - [`text`]: a sentence's words and the edits made to it.
//! - [`search`]: the goal, the ranking and the greedy or beam search.
//! - [`constraint`]: stop words, changed fraction, antonyms, edit distance, similarity.
//! - [`typo`], [`synonym`], [`mlm`]: the transformations.
//! - [`recipe`]: the kinds `typo`, `synonym` and `mlm-swap`, their keys and presets.

pub mod constraint;
pub mod mlm;
pub mod recipe;
pub mod search;
pub mod synonym;
pub mod text;
pub mod typo;

use rand_chacha::ChaCha8Rng;

use crate::attack::runner::{RowAttack, RowError, RowResult, Target};
use crate::model::{ModelError, TextModel};
use crate::perturb::Perturbation;
use text::Sentence;

/// Proposes replacements for one word of a sentence.
pub trait Transformation: Send + Sync {
    /// Replacements for word `index` of `sentence` as it now stands, best first; random choices
    /// from `rng`, the example's own stream.
    fn replacements(
        &self,
        sentence: &Sentence,
        index: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<String>, ModelError>;
}

/// What the search tries to reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Any label but the gold one (or, without gold labels, the original prediction).
    Untargeted,
    /// This label (its index among the model's labels).
    Targeted(usize),
}

/// How words are ranked before the search changes them.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Ranking {
    /// By how far the goal score moves when the word is deleted.
    #[default]
    Delete,
    /// When the word is replaced by the unknown token (`[UNK]`, DeepWordBug's ranking).
    Unk,
    /// When the word is replaced by the mask token (`[MASK]`).
    Mask,
    /// PWWS's weighted saliency: the unknown-token saliency, softmaxed, times the goal-score
    /// gain of the word's best replacement (queries every word's candidates up front).
    Saliency,
}

/// The search's settings.
#[derive(Debug, Clone)]
pub struct SearchSettings {
    /// The goal.
    pub goal: Goal,
    /// The word ranking.
    pub ranking: Ranking,
    /// Texts kept per step: 1 is greedy.
    pub beam: usize,
    /// The most distinct texts asked about for one example, the original included.
    pub example_budget: Option<u64>,
}

/// A word or character attack: a transformation, its constraints and the search.
pub struct WordAttack {
    /// The kind's name: each row's group.
    pub name: &'static str,
    /// Proposes replacements.
    pub transformation: Box<dyn Transformation>,
    /// Decides which are admissible.
    pub constraints: constraint::Constraints,
    /// The search.
    pub search: SearchSettings,
}

impl RowAttack for WordAttack {
    fn attack_row(
        &self,
        row: &Target,
        model: &mut dyn TextModel,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<Perturbation>, RowError> {
        use rand::SeedableRng;
        // One row is a chunk of one; its stream continues from the caller's.
        let rng = ChaCha8Rng::from_rng(rng);
        let mut results = search::run_all(self, std::slice::from_ref(row), model, vec![rng])?;
        let result = results.pop().expect("one result per row");
        result.variants.map_err(RowError::Skip)
    }

    fn counts_own_queries(&self) -> bool {
        true
    }

    fn attack_rows(
        &self,
        rows: &[Target],
        model: &mut dyn TextModel,
        rngs: Vec<ChaCha8Rng>,
    ) -> Result<Vec<RowResult>, ModelError> {
        search::run_all(self, rows, model, rngs)
    }
}
