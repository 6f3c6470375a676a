//! Text perturbations: the input half of the attacks.
//!
//! Each perturber turns one input text into variants (shuffled words, a flipped negation,
//! swapped person names) without touching the model; the attack runner scores them. They are
//! kept apart from the runner so they can be tested exhaustively on text alone, and so their
//! randomness is all drawn from the one seeded rng the caller passes, which is what makes a
//! report reproducible from its `--seed`.
//!
//! An input a perturber cannot handle is not an error and is never dropped silently: it comes
//! back as a [`SkipReason`], which the report counts, because a flip rate over the sentences an
//! attack happened to like is only honest next to the number it skipped.

pub mod entity_swap;
pub mod negation;
pub mod shuffle;
pub(crate) mod words;

/// One perturbed variant of an input text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Perturbation {
    /// The perturbed text, as fed to the model in place of the original.
    pub text: String,
    /// Short human-readable description, e.g. "shuffle full", "insert not after 'is'", "Emily->Jamal".
    pub detail: String,
    /// Group for breakdowns (entity swap: e.g. "female->male", "en_US->yo_NG"; negation: "insert"/"remove"; shuffle: mode name).
    pub group: String,
    /// What a per-example search changed and what it cost (word and character attacks);
    /// `None` for the rule-based perturbations, whose rows and metrics do not have it.
    pub edit: Option<Box<WordEdit>>,
}

/// One word a search replaced: its position among the text's words, and both forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordChange {
    /// 0-based index of the word among the text's whitespace-separated words.
    pub index: usize,
    /// The word as it was.
    pub from: String,
    /// The word put in its place.
    pub to: String,
}

/// How a per-example search ended (TextAttack's result types, skipped ones aside: those are
/// [`SkipReason`]s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchEnd {
    /// The goal was reached: the variant's label is not the original's (or is the target).
    Succeeded,
    /// Every word was tried and the goal was not reached.
    Failed,
    /// The example's query budget ran out before the goal was reached.
    OutOfBudget,
}

impl SearchEnd {
    /// The name `examples.csv` gives the end: `succeeded`, `failed`, `out-of-budget`.
    pub fn as_str(self) -> &'static str {
        match self {
            SearchEnd::Succeeded => "succeeded",
            SearchEnd::Failed => "failed",
            SearchEnd::OutOfBudget => "out-of-budget",
        }
    }
}

/// What a per-example word or character search did to one example.
#[derive(Debug, Clone, PartialEq)]
pub struct WordEdit {
    /// Words in the original text: the denominator of the changed-word fraction.
    pub words: usize,
    /// The words changed, in text order.
    pub changes: Vec<WordChange>,
    /// Cosine similarity of the variant to the original under the sentence encoder, when the
    /// attack has one.
    pub similarity: Option<f32>,
    /// How the search ended.
    pub end: SearchEnd,
}

// A similarity is a cosine computed from finite embeddings, never NaN, so equality is total.
impl Eq for WordEdit {}

impl WordEdit {
    /// Changed words / words in the original.
    pub fn changed_fraction(&self) -> f64 {
        if self.words == 0 {
            0.0
        } else {
            self.changes.len() as f64 / self.words as f64
        }
    }
}

/// Which segment of a sentence pair an attack perturbs (the other is fed as it is). The
/// default is the first; a trigger goes into the segment named here.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Segment {
    /// The first segment (the only one of a single-text input).
    #[default]
    First,
    /// The second segment of a pair (e.g. the hypothesis of an NLI premise/hypothesis pair).
    Second,
}

impl Segment {
    /// The name used on the command line and in recipes: `first` or `second`.
    pub fn as_str(self) -> &'static str {
        match self {
            Segment::First => "first",
            Segment::Second => "second",
        }
    }
}

/// Why an input got no perturbation; reported and counted, never silently dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The input has too few words to perturb (under two for a shuffle, none for a negation).
    TooFewWords,
    /// The negation perturber found no verb or negation it could flip.
    NoNegationSite,
    /// No person name to swap: none the lexicon knows (for a gendered swap, no gendered first
    /// name; on coreference rows, no candidate with a name part), or no replacement could be
    /// drawn for those found.
    NoNames,
    /// Every permutation of the input the shuffle could draw equals the original.
    NoDistinctPermutation,
    /// A coreference row whose pronoun has no grammatical gender the swap can keep or flip.
    UnknownPronoun,
    /// A suffix trigger that truncation to the model's length cut off (#30 item 11): the
    /// model never saw it, so the row says nothing about the trigger.
    TriggerTruncated,
    /// A per-example search's original was misclassified to begin with (TextAttack's
    /// "skipped"): there is no correct prediction to change.
    Misclassified,
    /// A targeted per-example search's original is already predicted as the target.
    AlreadyTarget,
}

impl SkipReason {
    /// The kebab-case name reports count skips under, e.g. `too-few-words`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SkipReason::TooFewWords => "too-few-words",
            SkipReason::NoNegationSite => "no-negation-site",
            SkipReason::NoNames => "no-names",
            SkipReason::NoDistinctPermutation => "no-distinct-permutation",
            SkipReason::UnknownPronoun => "unknown-pronoun",
            SkipReason::TriggerTruncated => "trigger-truncated",
            SkipReason::Misclassified => "misclassified",
            SkipReason::AlreadyTarget => "already-target",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text-to-variants perturbation. Every random choice comes from the caller's rng (seeded from --seed).
pub trait Perturber {
    /// The perturber's name as reports show it, e.g. `shuffle`, `negation`.
    fn name(&self) -> &'static str;
    /// The variants of `text` (possibly none, when none is wanted), or why it has none.
    fn perturb(
        &self,
        text: &str,
        rng: &mut rand_chacha::ChaCha8Rng,
    ) -> Result<Vec<Perturbation>, SkipReason>;
}
