//! Declarative attack recipes (`attacks/*.toml`) and the flags that override them.
//!
//! A recipe names an attack, its kind, model, corpus, seed and parameters, so a measurement
//! can be rerun exactly from a file under version control. The CLI accepts the same fields
//! as flags; flags win. Unknown keys are errors: a misspelt parameter that silently fell back
//! to its default would produce a plausible-looking but wrong number.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::name_swap::Replace;
use super::trigger::{Estimator, Position, Proposals, Shrinkage};
pub use super::trigger::{ExclusionList, TriggerSettings};
use crate::perturb::entity_swap::SwapTarget;
use crate::perturb::negation::NegationMode;

/// The default name lexicon, shipped in `corpora/`.
pub const DEFAULT_NAMES: &str = "corpora/names.tsv";
/// US-census name frequencies for the coreference swap's breakdown, shipped in `corpora/`.
pub const DEFAULT_NAME_FREQUENCY: &str = "corpora/name-frequency.tsv";

/// Why a recipe (or the flags) does not make an attack.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// The recipe file could not be read.
    #[error("failed to read recipe {path}")]
    Read {
        /// The recipe file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The recipe is not valid TOML for a spec (an unknown key, a wrong type), or a word list
    /// is not UTF-8.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong (the TOML parser's message, on one line).
        message: String,
    },
    /// A key the attack needs is not set.
    #[error("{origin}: {key} is required")]
    Missing {
        /// The recipe file, or `flags`.
        origin: String,
        /// The missing key.
        key: &'static str,
    },
    /// A key is set to a value it cannot take, or is set where it has no effect.
    #[error("{origin}: {key} = {value}: {problem}")]
    Invalid {
        /// The recipe file, or `flags`.
        origin: String,
        /// The key.
        key: &'static str,
        /// Its value as written (`set` for a key that does not apply).
        value: String,
        /// Why it is refused.
        problem: String,
    },
    /// A trigger's exclusion word list could not be read.
    #[error("failed to read the exclusion word list {path}")]
    WordList {
        /// The word list.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The name lexicon or the name-frequency table could not be loaded.
    #[error("failed to load the name lexicon {path}")]
    Lexicon {
        /// The file.
        path: PathBuf,
        /// Why it could not be loaded.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A resource a word attack needs (WordNet, a sentence encoder, a fill-mask model) is not
    /// where it was looked for, and how to get it.
    #[error("{origin}: {key}: {problem}")]
    Unavailable {
        /// The recipe file, or `flags`.
        origin: String,
        /// The key naming the resource.
        key: &'static str,
        /// Where it was looked for and how to get it.
        problem: String,
    },
    /// A resource a word attack needs is there but could not be loaded.
    #[error("{origin}: {key} = {path}: failed to load")]
    Load {
        /// The recipe file, or `flags`.
        origin: String,
        /// The key naming the resource.
        key: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Keys only a trigger *search* reads (not the evaluation of a given trigger).
pub const TRIGGER_SEARCH_KEYS: &[&str] = &[
    "search_corpus",
    "exclude",
    "exclude_forms",
    "exclude_propagation",
    "polarity_threshold",
    "wordnet",
    "sentence_encoder",
    "init",
    "directions",
    "estimator",
    "shrinkage",
    "sigma",
    "candidates",
    "beam",
    "search_batch",
    "iterations",
    "patience",
    "budget_queries",
    "budget_seconds",
    "proposals",
    "allow_subwords",
    "min_search_tokens",
    "max_search_examples",
];

/// Keys every kind reads.
pub const GENERAL_KEYS: &[&str] = &[
    "name",
    "kind",
    "model",
    "corpus",
    "text_col",
    "label_col",
    "pair_col",
    "segment",
    "seed",
    "limit",
];

/// A shuffle mode as recipes and flags name it (the window size is a key of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ShuffleModeName {
    /// A random permutation of all words.
    Full,
    /// Shuffle inside consecutive windows of `--window` words.
    Local,
    /// Keep the first and last word, permute the middle.
    KeepEnds,
}

/// Probes that replace the classifier attack of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeName {
    /// Fill-mask cloze probe (negation: NEG-136, Ettinger 2019).
    Cloze,
}

/// The name a flag or recipe uses for an enum value (kebab-case), for the parameters column.
pub fn value_name<T: clap::ValueEnum>(value: &T) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string())
}

/// `--budget-seconds`: a number of seconds, or `none` (no budget, as reports record it), read
/// as infinity.
fn seconds_or_none(text: &str) -> Result<f64, String> {
    if text == "none" {
        return Ok(f64::INFINITY);
    }
    text.parse::<f64>()
        .map_err(|_| format!("`{text}` is not a number of seconds or `none`"))
}

/// Defines [`AttackSpec`] from one list of fields: each field is at once a recipe key (serde),
/// a flag (clap) and a line of [`AttackSpec::overridden_by`], so a new parameter is written
/// once.
macro_rules! attack_spec {
    ($(#[$meta:meta])* pub struct $name:ident { $( $(#[$field_meta:meta])* pub $field:ident : Option<$ty:ty>, )* }) => {
        $(#[$meta])*
        pub struct $name { $( $(#[$field_meta])* pub $field: Option<$ty>, )* }

        impl $name {
            /// Every recipe key, in order.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// The keys this spec sets.
            pub fn set_keys(&self) -> Vec<&'static str> {
                let mut keys = Vec::new();
                $( if self.$field.is_some() { keys.push(stringify!($field)); } )*
                keys
            }

            /// Fields set in `over` replace those in `self`.
            pub fn overridden_by(self, over: $name) -> $name {
                $name { $( $field: over.$field.or(self.$field), )* }
            }
        }
    };
}

attack_spec! {
    /// Every field of a recipe; all optional so that a recipe, flags and suite entries can be
    /// merged. The same struct is the recipe (serde) and `robust attack`'s flags (clap).
    #[derive(Debug, Clone, Default, Deserialize, serde::Serialize, clap::Args)]
    #[serde(deny_unknown_fields)]
    pub struct AttackSpec {
        /// Name used in reports [default: the kind].
        #[arg(long)]
        pub name: Option<String>,
        /// Attack kind.
        #[arg(long)]
        pub kind: Option<String>,
        /// Model folder: model.onnx, tokenizer.json and config.json (id2label).
        #[arg(long, value_name = "DIR")]
        pub model: Option<PathBuf>,
        /// Corpus: TSV or CSV with a header; a label column, when present, enables accuracy metrics.
        #[arg(long, value_name = "FILE")]
        pub corpus: Option<PathBuf>,
        /// Column holding the text [default: `sentence`, else `text`].
        #[arg(long, value_name = "NAME")]
        pub text_col: Option<String>,
        /// Column holding the gold label [default: `label`, if present].
        #[arg(long, value_name = "NAME")]
        pub label_col: Option<String>,
        /// Column holding the second segment of sentence pairs (NLI's hypothesis, say): each
        /// row is then fed as the tokenizer's pair.
        #[arg(long, value_name = "NAME")]
        pub pair_col: Option<String>,
        /// Which segment of a pair the attack perturbs, or where a trigger goes [default: first].
        #[arg(long, value_enum)]
        pub segment: Option<crate::perturb::Segment>,
        /// Seed (the global --seed on the command line).
        #[arg(skip)]
        pub seed: Option<u64>,
        /// Attack only the first N rows.
        #[arg(long, value_name = "N")]
        pub limit: Option<usize>,
        /// Variants per sentence [default: 10 for shuffle, 5 for entity-swap].
        #[arg(long, value_name = "N")]
        pub samples: Option<usize>,
        /// Shuffle mode [default: full].
        #[arg(long, value_enum)]
        pub mode: Option<ShuffleModeName>,
        /// Window size for `--mode local` [default: 3].
        #[arg(long, value_name = "K")]
        pub window: Option<usize>,
        /// Negation direction [default: auto].
        #[arg(long, value_enum)]
        pub negation: Option<NegationMode>,
        /// Name lexicon for entity swaps [default: the built-in corpora/names.tsv].
        #[arg(long, value_name = "FILE")]
        pub names: Option<PathBuf>,
        /// Which names replace a name [default: other-gender]. On coreference rows the gender is
        /// relative to the pronoun.
        #[arg(long, value_enum)]
        pub swap: Option<SwapTarget>,
        /// Coreference rows: which candidates each swap renames [default: each].
        #[arg(long, value_enum)]
        pub replace: Option<Replace>,
        /// Negation on a fill-mask model runs the cloze probe (NEG-136 or corpora/cloze/ format);
        /// naming it here makes a recipe refuse any other model.
        #[arg(long, value_enum)]
        pub probe: Option<ProbeName>,
        /// Cloze probe: words listed per template [default: 5].
        #[arg(long, value_name = "K")]
        pub top_k: Option<usize>,
        /// Coreference rows: name-frequency table [default: the built-in
        /// corpora/name-frequency.tsv].
        #[arg(long, value_name = "FILE")]
        pub name_frequency: Option<PathBuf>,
        /// Trigger and word attacks: push examples toward this label (name or index); `untargeted` for none
        /// [default: untargeted].
        #[arg(long, help_heading = "Trigger")]
        pub target: Option<String>,
        /// Trigger: attack examples of this label; `non-target` for every label but the target
        /// [default: non-target].
        #[arg(long, help_heading = "Trigger")]
        pub source: Option<String>,
        /// Trigger: corpus the trigger is searched on; must differ from --corpus, where it is evaluated.
        #[arg(long, value_name = "FILE", help_heading = "Trigger")]
        pub search_corpus: Option<PathBuf>,
        /// Trigger: evaluate this trigger (any text, words of several pieces allowed) instead of
        /// searching one; needs no search corpus.
        #[arg(long, value_name = "TEXT", help_heading = "Trigger")]
        pub trigger: Option<String>,
        /// Trigger: word lists (one word a line, `#` comments) kept out of the trigger, matched
        /// case-insensitively on whole words, their base forms and the word pieces that start
        /// them; repeat for several. `none` turns exclusion off [default for models with
        /// positive/negative labels: the eight opinion lexicons of corpora/opinion/, three built
        /// in and five fetched by scripts/setup].
        #[arg(long, value_name = "FILE", help_heading = "Trigger")]
        pub exclude: Option<Vec<PathBuf>>,
        /// Trigger: a vocabulary word is also excluded when one of its WordNet base forms is
        /// listed or is a base form of a listed word ("lacked" by "lack") [default: true].
        #[arg(long, help_heading = "Trigger", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        pub exclude_forms: Option<bool>,
        /// Trigger: steps of WordNet links from the listed words whose words are excluded too
        /// (derivations, and for adjectives and adverbs the synonyms of the most frequent
        /// sense); 0 for none [default: 1].
        #[arg(long, value_name = "DEPTH", help_heading = "Trigger")]
        pub exclude_propagation: Option<usize>,
        /// Trigger: exclude words whose semantic orientation under --sentence-encoder
        /// (Turney's seed words) is at least this in size; `none` for no polarity filter
        /// [default on positive/negative models with an exclusion: 0.06; else none].
        #[arg(long, value_name = "SIZE", help_heading = "Trigger")]
        pub polarity_threshold: Option<crate::attack::word::recipe::MinSimilarity>,
        /// Trigger: tokens in the trigger [default: 3].
        #[arg(long, help_heading = "Trigger")]
        pub length: Option<usize>,
        /// Trigger: initial tokens, e.g. "the the the" [default: "the" repeated].
        #[arg(long, help_heading = "Trigger")]
        pub init: Option<String>,
        /// Trigger: where the trigger goes [default: prefix].
        #[arg(long, value_enum, help_heading = "Trigger")]
        pub position: Option<Position>,
        /// Trigger: random direction pairs per finite-difference gradient estimate (rows per
        /// example: twice this; one-sided, twice as many single directions) [default: 32].
        #[arg(long, help_heading = "Trigger")]
        pub directions: Option<usize>,
        /// Trigger: directions shared by the batch, fresh for every example (two rows each), or
        /// one-sided (fresh, one row each, for twice the directions) [default: one-sided].
        #[arg(long, value_enum, help_heading = "Trigger")]
        pub estimator: Option<Estimator>,
        /// Trigger: what the gradient estimate is shrunk toward, by its own measured noise:
        /// nothing, the mean over the trigger's positions, or that and the previous iteration's
        /// estimate [default: history].
        #[arg(long, value_enum, help_heading = "Trigger")]
        pub shrinkage: Option<Shrinkage>,
        /// Trigger: finite-difference step, in units of the embedding table's RMS [default: 0.5].
        #[arg(long, help_heading = "Trigger")]
        pub sigma: Option<f32>,
        /// Trigger: candidate tokens per position [default: 20]. Word attacks: replacements per
        /// word (typo: per edit type) [default: 1 for typo, 50 for mlm-swap, all for synonym].
        #[arg(long, help_heading = "Trigger")]
        pub candidates: Option<usize>,
        /// Trigger: beam width [default: 2]. Word attacks: texts kept per step, 1 for a greedy
        /// search [default: 1].
        #[arg(long, help_heading = "Trigger")]
        pub beam: Option<usize>,
        /// Trigger: search examples per iteration [default: 32].
        #[arg(long, help_heading = "Trigger")]
        pub search_batch: Option<usize>,
        /// Trigger: maximum search iterations [default: 30].
        #[arg(long, help_heading = "Trigger")]
        pub iterations: Option<usize>,
        /// Trigger: stop after this many iterations without a better validation loss [default: 5].
        #[arg(long, help_heading = "Trigger")]
        pub patience: Option<usize>,
        /// Trigger: stop after this many model rows [default: 300000].
        #[arg(long, help_heading = "Trigger")]
        pub budget_queries: Option<u64>,
        /// Trigger: stop after this many seconds (results then depend on machine speed);
        /// `none` for no time budget [default: none].
        #[arg(long, help_heading = "Trigger", value_parser = seconds_or_none, value_name = "SECONDS")]
        pub budget_seconds: Option<f64>,
        /// Trigger: how candidate tokens are proposed [default: hotflip].
        #[arg(long, value_enum, help_heading = "Trigger")]
        pub proposals: Option<Proposals>,
        /// Trigger: allow `##` word pieces in the trigger.
        #[arg(long, help_heading = "Trigger", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        pub allow_subwords: Option<bool>,
        /// Trigger: random triggers of the same length evaluated as a baseline [default: 5].
        #[arg(long, help_heading = "Trigger")]
        pub random_baselines: Option<usize>,
        /// Trigger: search only on examples with at least this many word pieces [default: 8].
        #[arg(long, help_heading = "Trigger")]
        pub min_search_tokens: Option<usize>,
        /// Trigger: at most this many search examples, drawn with the seed [default: 4000].
        #[arg(long, help_heading = "Trigger")]
        pub max_search_examples: Option<usize>,
        /// Word attacks: the constraint preset the other word-attack keys start from: `lax` (the
        /// TextAttack recipe's own constraints) or `strict` (fewer words changed, a similarity
        /// floor) [default: lax].
        #[arg(long, value_enum, help_heading = "Word attacks")]
        pub preset: Option<crate::attack::word::recipe::Preset>,
        /// Word attacks: how words are ranked before they are changed [default: delete for
        /// synonym and mlm-swap, unk for typo].
        #[arg(long, value_enum, help_heading = "Word attacks")]
        pub ranking: Option<crate::attack::word::Ranking>,
        /// Word attacks: the most distinct texts the model is asked about for one example, the
        /// original included [default: 2000].
        #[arg(long, value_name = "N", help_heading = "Word attacks")]
        pub example_budget: Option<u64>,
        /// Word attacks: the largest fraction of a sentence's words that may change, in (0, 1]
        /// [default: the preset's].
        #[arg(long, value_name = "FRACTION", help_heading = "Word attacks")]
        pub max_words_changed: Option<f64>,
        /// Word attacks: the least cosine similarity between the original and the adversarial
        /// text under --sentence-encoder, in [0, 1]; `none` for no similarity constraint
        /// [default: the preset's].
        #[arg(long, value_name = "COSINE", help_heading = "Word attacks")]
        pub min_similarity: Option<crate::attack::word::recipe::MinSimilarity>,
        /// Word attacks: the sentence-encoder folder the similarity is measured with (not the
        /// attacked model); trigger: the one the polarity filter scores words with [default:
        /// models/sentence-minilm, which scripts/setup builds].
        #[arg(long, value_name = "DIR", help_heading = "Word attacks")]
        pub sentence_encoder: Option<PathBuf>,
        /// Word attacks: the WordNet database folder (synonyms and the antonym check); trigger:
        /// the one the exclusion's base forms and propagation come from [default: corpora/wordnet, which scripts/setup fetches, else /usr/share/wordnet].
        #[arg(long, value_name = "DIR", help_heading = "Word attacks")]
        pub wordnet: Option<PathBuf>,
        /// Word attacks: words never changed, one a line; `none` for no stop words [default: the
        /// built-in corpora/stop-words.txt, TextAttack's list].
        #[arg(long, value_name = "FILE", help_heading = "Word attacks")]
        pub stop_words: Option<PathBuf>,
        /// Word attacks: let a replacement be a WordNet antonym of the word it replaces
        /// [default: false].
        #[arg(long, help_heading = "Word attacks", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        pub allow_antonyms: Option<bool>,
        /// synonym: which parts of speech a word's synonyms come from [default: most-frequent].
        #[arg(long, value_enum, help_heading = "Word attacks")]
        pub synonym_pos: Option<crate::attack::word::synonym::SynonymPos>,
        /// mlm-swap: the fill-mask model folder that proposes replacements [default:
        /// models/minilm-mlm].
        #[arg(long, value_name = "DIR", help_heading = "Word attacks")]
        pub mlm: Option<PathBuf>,
        /// typo: the character edits drawn, comma-separated [default: swap,substitute,delete,insert].
        #[arg(long, value_enum, value_delimiter = ',', help_heading = "Word attacks")]
        pub edits: Option<Vec<crate::attack::word::typo::Edit>>,
        /// typo: substitutions take neighbouring QWERTY keys (else any letter) [default: false].
        #[arg(long, help_heading = "Word attacks", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        pub keyboard: Option<bool>,
        /// typo: substitutions may take look-alike Unicode letters [default: false].
        #[arg(long, help_heading = "Word attacks", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        pub confusables: Option<bool>,
        /// typo: the largest character edit distance from the original text [default: 30].
        #[arg(long, value_name = "N", help_heading = "Word attacks")]
        pub max_edit_distance: Option<usize>,
        /// A plug-in kind's own settings (a table the kind reads into its typed settings);
        /// the built-in kinds read the keys above.
        #[arg(skip)]
        pub settings: Option<toml::Table>,
    }
}

impl AttackSpec {
    /// Read a recipe file (TOML; unknown keys are errors).
    pub fn from_file(path: &Path) -> Result<Self, RecipeError> {
        let text = std::fs::read_to_string(path).map_err(|source| RecipeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| RecipeError::Parse {
            path: path.to_path_buf(),
            // #30: the parser's multi-line rendering is kept, so its caret still points
            // at the bad value.
            message: e.to_string().trim_end().to_string(),
        })
    }
}

/// The default exclusion list for sentiment models (compiled in; see [`crate::resource`]).
pub const DEFAULT_EXCLUDE: &str = "corpora/sentiment-words.txt";

// The type stands with the trigger's settings, which hold it; reading a list stays here, with
// the recipe errors it returns.
impl ExclusionList {
    /// Read a word list: one word a line; blank lines and `#` comments skipped.
    pub fn read(path: &Path) -> Result<Self, RecipeError> {
        let bytes = std::fs::read(path).map_err(|source| RecipeError::WordList {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(path, &bytes)
    }

    /// A word list from its bytes; `path` is what it is recorded and named in errors as.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, RecipeError> {
        let text = std::str::from_utf8(bytes).map_err(|e| RecipeError::Parse {
            path: path.to_path_buf(),
            message: format!("not valid UTF-8 ({e})"),
        })?;
        let words: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_lowercase)
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            sha256: crate::hash::sha256_bytes(bytes),
            size: words.len(),
            words,
        })
    }

    /// `name:sha256-prefix:words`, for the parameters column.
    pub fn describe(&self) -> String {
        format!(
            "{}:{}:{}",
            self.path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            &self.sha256[..12],
            self.size
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AttackSpec, String> {
        toml::from_str(text).map_err(|e: toml::de::Error| e.to_string())
    }

    #[test]
    fn flags_override_recipe() {
        let recipe =
            parse("kind = \"shuffle\"\nmodel = \"m\"\ncorpus = \"c.tsv\"\nsamples = 3\nseed = 7")
                .unwrap();
        let flags = AttackSpec {
            samples: Some(5),
            ..AttackSpec::default()
        };
        let spec = recipe.overridden_by(flags);
        assert_eq!(spec.samples, Some(5));
        assert_eq!(spec.seed, Some(7));
        let resolved = spec.resolve("r.toml").unwrap();
        assert_eq!(
            resolved.parameters.get("samples").map(String::as_str),
            Some("5")
        );
        assert_eq!(
            resolved.parameters.get("mode").map(String::as_str),
            Some("full")
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = parse("kind = \"shuffle\"\nsampels = 3").unwrap_err();
        assert!(err.contains("unknown field `sampels`"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let spec = parse(
            "kind = \"shuffle\"\nmodel = \"m\"\ncorpus = \"c\"\nmode = \"local\"\nwindow = 1",
        )
        .unwrap();
        let err = spec.resolve("r.toml").err().unwrap().to_string();
        assert_eq!(err, "r.toml: window = 1: must be at least 2");
        let spec = parse("model = \"m\"\ncorpus = \"c\"").unwrap();
        assert_eq!(
            spec.resolve("r.toml").err().unwrap().to_string(),
            "r.toml: kind is required"
        );
        // The spec knows no kinds; the registry refuses an unknown one, naming the kinds.
        let err = parse("kind = \"trigger-happy\"\nmodel = \"m\"\ncorpus = \"c\"")
            .unwrap()
            .resolve("r.toml")
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            "r.toml: kind = trigger-happy: is not a kind (kinds: shuffle, negation, \
             entity-swap, trigger, typo, synonym, mlm-swap)"
        );
    }

    /// Issue 16: keys a kind does not read, `window` without `mode = "local"` and `limit = 0`
    /// were accepted silently.
    #[test]
    fn keys_that_do_nothing_are_errors() {
        let err = |text: &str| {
            parse(&format!("model = \"m\"\ncorpus = \"c\"\n{text}"))
                .unwrap()
                .resolve("r.toml")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(
            err("kind = \"shuffle\"\nnegation = \"insert\"")
                .starts_with("r.toml: negation = set: does not apply to kind = \"shuffle\""),
            "{}",
            err("kind = \"shuffle\"\nnegation = \"insert\"")
        );
        assert!(err("kind = \"negation\"\nsamples = 3").contains("samples = set: does not apply"));
        assert_eq!(
            err("kind = \"shuffle\"\nmode = \"full\"\nwindow = 3"),
            "r.toml: window = 3: applies only to mode = \"local\""
        );
        assert_eq!(
            err("kind = \"shuffle\"\nlimit = 0"),
            "r.toml: limit = 0: must be at least 1 (an empty run measures nothing)"
        );
        assert_eq!(err("kind = \"shuffle\"\nmode = \"local\"\nwindow = 3"), "");
        // A given trigger is evaluated, not searched: search keys, exclusions included, do nothing.
        for key in [
            "exclude = [\"w.txt\"]",
            "search_corpus = \"s.tsv\"",
            "beam = 2",
        ] {
            let e = err(&format!("kind = \"trigger\"\ntrigger = \"a b\"\n{key}"));
            assert!(e.contains("applies to a trigger search"), "{key}: {e}");
        }
        assert_eq!(
            err("kind = \"trigger\"\ntrigger = \"a b\"\ntarget = \"x\""),
            ""
        );
        assert!(err("kind = \"shuffle\"\nbeam = 2").contains("does not apply to kind"));
    }
}
