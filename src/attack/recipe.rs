//! Declarative attack recipes (`attacks/*.toml`) and the flags that override them.
//!
//! A recipe names an attack, its kind, model, corpus, seed and parameters, so a measurement
//! can be rerun exactly from a file under version control. The CLI accepts the same fields
//! as flags; flags win. Unknown keys are errors: a misspelt parameter that silently fell back
//! to its default would produce a plausible-looking but wrong number.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::Perturber;
use super::entity_swap::{EntitySwap, NameLexicon, SwapTarget};
use super::name_swap::{GenderCondition, NameFrequency, Replace, SpanNameSwap};
use super::negation::{Negation, NegationMode};
use super::shuffle::{Shuffle, ShuffleMode};
use super::trigger::{Position, Proposals, TriggerConfig};
use crate::score::Expectation;

/// The default name lexicon, shipped in `corpora/`.
pub const DEFAULT_NAMES: &str = "corpora/names.tsv";
/// US-census name frequencies for the coreference swap's breakdown, shipped in `corpora/`.
pub const DEFAULT_NAME_FREQUENCY: &str = "corpora/name-frequency.tsv";

#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("failed to read recipe {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{origin}: {key} is required")]
    Missing { origin: String, key: &'static str },
    #[error("{origin}: {key} = {value}: {problem}")]
    Invalid {
        origin: String,
        key: &'static str,
        value: String,
        problem: String,
    },
    #[error("failed to load the name lexicon {path}")]
    Lexicon {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AttackKind {
    Shuffle,
    Negation,
    EntitySwap,
    /// Universal adversarial trigger search (HotFlip with estimated gradients).
    Trigger,
}

impl AttackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AttackKind::Shuffle => "shuffle",
            AttackKind::Negation => "negation",
            AttackKind::EntitySwap => "entity-swap",
            AttackKind::Trigger => "trigger",
        }
    }

    pub fn expectation(self) -> Expectation {
        match self {
            AttackKind::Negation => Expectation::FlipFromGold,
            AttackKind::Shuffle | AttackKind::EntitySwap | AttackKind::Trigger => {
                Expectation::Invariant
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ShuffleModeName {
    /// A random permutation of all words.
    Full,
    /// Shuffle inside consecutive windows of `--window` words.
    Local,
    /// Keep the first and last word, permute the middle.
    KeepEnds,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NegationModeName {
    /// Remove negation where the sentence has it, insert it otherwise.
    Auto,
    Insert,
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SwapTargetName {
    SameGender,
    OtherGender,
    OtherOrigin,
    Any,
}

/// Probes that replace the classifier attack of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeName {
    /// Fill-mask cloze probe (negation: NEG-136, Ettinger 2019).
    Cloze,
}

/// Which candidates a coreference name swap renames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ReplaceName {
    /// The first candidate (GAP's A).
    A,
    /// The second candidate (GAP's B).
    B,
    Both,
    /// A, B or both, drawn per swap.
    Each,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PositionName {
    Prefix,
    Suffix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ProposalsName {
    /// Rank tokens by HotFlip with the finite-difference gradient.
    Hotflip,
    /// Propose uniformly random tokens (the baseline).
    Random,
}

/// Every field of a recipe; all optional so that a recipe and flags can be merged.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackSpec {
    pub name: Option<String>,
    pub kind: Option<AttackKind>,
    pub model: Option<PathBuf>,
    pub corpus: Option<PathBuf>,
    pub text_col: Option<String>,
    pub label_col: Option<String>,
    pub seed: Option<u64>,
    /// Attack only the first N rows of the corpus.
    pub limit: Option<usize>,
    /// Variants per sentence (shuffle, entity-swap).
    pub samples: Option<usize>,
    /// Shuffle mode.
    pub mode: Option<ShuffleModeName>,
    /// Window for `mode = "local"`.
    pub window: Option<usize>,
    /// Negation direction.
    pub negation: Option<NegationModeName>,
    /// Name lexicon TSV for entity swaps.
    pub names: Option<PathBuf>,
    /// Which names replace a name.
    pub swap: Option<SwapTargetName>,
    /// Coreference rows: which candidates a swap renames.
    pub replace: Option<ReplaceName>,
    /// Run a probe on a fill-mask model instead of attacking a classifier.
    pub probe: Option<ProbeName>,
    /// Cloze probe: words listed per template.
    pub top_k: Option<usize>,
    /// Coreference rows: name-frequency table for the breakdown.
    pub name_frequency: Option<PathBuf>,
    /// Trigger: push examples toward this label (name or index); absent = untargeted.
    pub target: Option<String>,
    /// Trigger: attack examples of this label [default: every label but the target].
    pub source: Option<String>,
    /// Trigger: where the trigger's search examples come from (another split than `corpus`).
    pub search_corpus: Option<PathBuf>,
    pub length: Option<usize>,
    pub init: Option<String>,
    pub position: Option<PositionName>,
    pub directions: Option<usize>,
    pub sigma: Option<f32>,
    pub candidates: Option<usize>,
    pub beam: Option<usize>,
    pub search_batch: Option<usize>,
    pub iterations: Option<usize>,
    pub patience: Option<usize>,
    pub budget_queries: Option<u64>,
    pub budget_seconds: Option<f64>,
    pub proposals: Option<ProposalsName>,
    pub allow_subwords: Option<bool>,
    /// Random triggers of the same length evaluated beside the searched one.
    pub random_baselines: Option<usize>,
    /// Search only on examples with at least this many word pieces.
    pub min_search_tokens: Option<usize>,
    /// At most this many search examples (drawn with the seed).
    pub max_search_examples: Option<usize>,
}

impl AttackSpec {
    pub fn from_file(path: &Path) -> Result<Self, RecipeError> {
        let text = std::fs::read_to_string(path).map_err(|source| RecipeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| RecipeError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })
    }

    /// Fields set in `over` replace those in `self`.
    pub fn overridden_by(self, over: AttackSpec) -> AttackSpec {
        AttackSpec {
            name: over.name.or(self.name),
            kind: over.kind.or(self.kind),
            model: over.model.or(self.model),
            corpus: over.corpus.or(self.corpus),
            text_col: over.text_col.or(self.text_col),
            label_col: over.label_col.or(self.label_col),
            seed: over.seed.or(self.seed),
            limit: over.limit.or(self.limit),
            samples: over.samples.or(self.samples),
            mode: over.mode.or(self.mode),
            window: over.window.or(self.window),
            negation: over.negation.or(self.negation),
            names: over.names.or(self.names),
            swap: over.swap.or(self.swap),
            replace: over.replace.or(self.replace),
            probe: over.probe.or(self.probe),
            top_k: over.top_k.or(self.top_k),
            name_frequency: over.name_frequency.or(self.name_frequency),
            target: over.target.or(self.target),
            source: over.source.or(self.source),
            search_corpus: over.search_corpus.or(self.search_corpus),
            length: over.length.or(self.length),
            init: over.init.or(self.init),
            position: over.position.or(self.position),
            directions: over.directions.or(self.directions),
            sigma: over.sigma.or(self.sigma),
            candidates: over.candidates.or(self.candidates),
            beam: over.beam.or(self.beam),
            search_batch: over.search_batch.or(self.search_batch),
            iterations: over.iterations.or(self.iterations),
            patience: over.patience.or(self.patience),
            budget_queries: over.budget_queries.or(self.budget_queries),
            budget_seconds: over.budget_seconds.or(self.budget_seconds),
            proposals: over.proposals.or(self.proposals),
            allow_subwords: over.allow_subwords.or(self.allow_subwords),
            random_baselines: over.random_baselines.or(self.random_baselines),
            min_search_tokens: over.min_search_tokens.or(self.min_search_tokens),
            max_search_examples: over.max_search_examples.or(self.max_search_examples),
        }
    }

    /// Check the spec and build the attack. `origin` names the recipe file or "flags" in errors.
    pub fn resolve(&self, origin: &str) -> Result<ResolvedAttack, RecipeError> {
        let missing = |key| RecipeError::Missing {
            origin: origin.to_string(),
            key,
        };
        let invalid = |key, value: String, problem: &str| RecipeError::Invalid {
            origin: origin.to_string(),
            key,
            value,
            problem: problem.to_string(),
        };
        let kind = self.kind.ok_or_else(|| missing("kind"))?;
        let model = self.model.clone().ok_or_else(|| missing("model"))?;
        let corpus = self.corpus.clone().ok_or_else(|| missing("corpus"))?;
        let samples = self.samples.unwrap_or(match kind {
            AttackKind::Shuffle => 10,
            AttackKind::EntitySwap => 5,
            AttackKind::Negation | AttackKind::Trigger => 1,
        });
        if samples == 0 {
            return Err(invalid("samples", "0".into(), "must be at least 1"));
        }
        let mut parameters = BTreeMap::new();
        let mut trigger = None;
        let mut name_swap = None;
        let perturber: Option<Box<dyn Perturber + Send + Sync>> = match kind {
            AttackKind::Shuffle => {
                let mode = match self.mode.unwrap_or(ShuffleModeName::Full) {
                    ShuffleModeName::Full => ShuffleMode::Full,
                    ShuffleModeName::KeepEnds => ShuffleMode::KeepEnds,
                    ShuffleModeName::Local => {
                        let window = self.window.unwrap_or(3);
                        if window < 2 {
                            return Err(invalid(
                                "window",
                                window.to_string(),
                                "must be at least 2",
                            ));
                        }
                        parameters.insert("window".to_string(), window.to_string());
                        ShuffleMode::Local { window }
                    }
                };
                parameters.insert(
                    "mode".to_string(),
                    format!("{:?}", self.mode.unwrap_or(ShuffleModeName::Full)).to_lowercase(),
                );
                parameters.insert("samples".to_string(), samples.to_string());
                Some(Box::new(Shuffle { mode, samples }))
            }
            AttackKind::Negation => {
                let (mode, name) = match self.negation.unwrap_or(NegationModeName::Auto) {
                    NegationModeName::Auto => (NegationMode::Auto, "auto"),
                    NegationModeName::Insert => (NegationMode::Insert, "insert"),
                    NegationModeName::Remove => (NegationMode::Remove, "remove"),
                };
                parameters.insert("negation".to_string(), name.to_string());
                Some(Box::new(Negation { mode }))
            }
            AttackKind::EntitySwap => {
                let names = self
                    .names
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_NAMES));
                let lexicon = NameLexicon::from_path(&names).map_err(|e| RecipeError::Lexicon {
                    path: names.clone(),
                    source: Box::new(e),
                })?;
                let (target, name) = match self.swap.unwrap_or(SwapTargetName::OtherGender) {
                    SwapTargetName::SameGender => (SwapTarget::SameGender, "same-gender"),
                    SwapTargetName::OtherGender => (SwapTarget::OtherGender, "other-gender"),
                    SwapTargetName::OtherOrigin => (SwapTarget::OtherOrigin, "other-origin"),
                    SwapTargetName::Any => (SwapTarget::Any, "any"),
                };
                parameters.insert("names".to_string(), names.display().to_string());
                parameters.insert("swap".to_string(), name.to_string());
                parameters.insert("samples".to_string(), samples.to_string());
                let lexicon = Arc::new(lexicon);
                name_swap = self.span_name_swap(&lexicon, target, samples)?;
                Some(Box::new(EntitySwap {
                    lexicon,
                    samples,
                    target,
                }))
            }
            AttackKind::Trigger => {
                let settings = self.trigger_settings(origin, &mut parameters)?;
                trigger = Some(settings);
                None
            }
        };
        if let Some(limit) = self.limit {
            parameters.insert("limit".to_string(), limit.to_string());
        }
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| kind.as_str().to_string());
        Ok(ResolvedAttack {
            name,
            kind,
            model,
            corpus,
            seed: self.seed.unwrap_or(0),
            limit: self.limit,
            perturber,
            trigger,
            name_swap,
            parameters,
        })
    }

    /// The coreference (span-row) form of an entity swap: the gender condition is relative to
    /// the row's pronoun (`same-gender` keeps it, `other-gender` flips it; `other-origin` and
    /// `any` keep it too, and the report breaks results down by origin either way).
    fn span_name_swap(
        &self,
        lexicon: &Arc<NameLexicon>,
        target: SwapTarget,
        samples: usize,
    ) -> Result<Option<SpanNameSwap>, RecipeError> {
        // Sentence attacks never need the frequency table: without an explicit path, a missing
        // default just means no span swap (the coreference command then says what is missing).
        let path = match &self.name_frequency {
            Some(p) => p.clone(),
            None if Path::new(DEFAULT_NAME_FREQUENCY).is_file() => {
                PathBuf::from(DEFAULT_NAME_FREQUENCY)
            }
            None => return Ok(None),
        };
        let frequency = NameFrequency::from_path(&path).map_err(|e| RecipeError::Lexicon {
            path: path.clone(),
            source: Box::new(e),
        })?;
        Ok(Some(SpanNameSwap {
            lexicon: lexicon.clone(),
            frequency: Arc::new(frequency),
            samples,
            condition: match target {
                SwapTarget::OtherGender => GenderCondition::Other,
                _ => GenderCondition::Same,
            },
            replace: match self.replace.unwrap_or(ReplaceName::Each) {
                ReplaceName::A => Replace::First,
                ReplaceName::B => Replace::Second,
                ReplaceName::Both => Replace::Both,
                ReplaceName::Each => Replace::Each,
            },
        }))
    }

    fn trigger_settings(
        &self,
        origin: &str,
        parameters: &mut BTreeMap<String, String>,
    ) -> Result<TriggerSettings, RecipeError> {
        let invalid = |key, value: String, problem: &str| RecipeError::Invalid {
            origin: origin.to_string(),
            key,
            value,
            problem: problem.to_string(),
        };
        let defaults = TriggerConfig::default();
        let positive = |key: &'static str, v: Option<usize>, default: usize| match v {
            Some(0) => Err(invalid(key, "0".into(), "must be at least 1")),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        let length = positive("length", self.length, defaults.length)?;
        let init = match &self.init {
            Some(text) => {
                let words: Vec<String> = text.split_whitespace().map(str::to_string).collect();
                if words.len() != length {
                    return Err(invalid(
                        "init",
                        text.clone(),
                        &format!("has {} words, length is {length}", words.len()),
                    ));
                }
                Some(words)
            }
            None => None,
        };
        let sigma = self.sigma.unwrap_or(defaults.sigma);
        if !(sigma > 0.0 && sigma.is_finite()) {
            return Err(invalid(
                "sigma",
                sigma.to_string(),
                "must be a positive number",
            ));
        }
        let search_corpus = self
            .search_corpus
            .clone()
            .ok_or_else(|| RecipeError::Missing {
                origin: origin.to_string(),
                key: "search_corpus",
            })?;
        let config = TriggerConfig {
            length,
            init,
            position: match self.position.unwrap_or(PositionName::Prefix) {
                PositionName::Prefix => Position::Prefix,
                PositionName::Suffix => Position::Suffix,
            },
            target: None,
            directions: positive("directions", self.directions, defaults.directions)?,
            sigma,
            candidates: positive("candidates", self.candidates, defaults.candidates)?,
            beam: positive("beam", self.beam, defaults.beam)?,
            batch: positive("search_batch", self.search_batch, defaults.batch)?,
            max_iterations: positive("iterations", self.iterations, defaults.max_iterations)?,
            patience: positive("patience", self.patience, defaults.patience)?,
            max_queries: self.budget_queries.or(defaults.max_queries),
            max_seconds: self.budget_seconds.or(defaults.max_seconds),
            proposals: match self.proposals.unwrap_or(ProposalsName::Hotflip) {
                ProposalsName::Hotflip => Proposals::Hotflip,
                ProposalsName::Random => Proposals::Random,
            },
            allow_subwords: self.allow_subwords.unwrap_or(false),
            allow_numbers: false,
            stop_words: Vec::new(),
        };
        let settings = TriggerSettings {
            config,
            target: self.target.clone(),
            source: self.source.clone(),
            search_corpus,
            random_baselines: self.random_baselines.unwrap_or(5),
            min_search_tokens: self.min_search_tokens.unwrap_or(8),
            max_search_examples: self.max_search_examples.unwrap_or(4000),
        };
        let c = &settings.config;
        for (k, v) in [
            (
                "target",
                settings
                    .target
                    .clone()
                    .unwrap_or_else(|| "untargeted".into()),
            ),
            (
                "source",
                settings
                    .source
                    .clone()
                    .unwrap_or_else(|| "non-target".into()),
            ),
            (
                "search_corpus",
                settings.search_corpus.display().to_string(),
            ),
            ("length", c.length.to_string()),
            (
                "init",
                c.init.as_ref().map_or("the*".into(), |w| w.join(" ")),
            ),
            ("position", format!("{:?}", c.position).to_lowercase()),
            ("directions", c.directions.to_string()),
            ("sigma", c.sigma.to_string()),
            ("candidates", c.candidates.to_string()),
            ("beam", c.beam.to_string()),
            ("search_batch", c.batch.to_string()),
            ("iterations", c.max_iterations.to_string()),
            ("patience", c.patience.to_string()),
            (
                "budget_queries",
                c.max_queries.map_or("none".into(), |q| q.to_string()),
            ),
            (
                "budget_seconds",
                c.max_seconds.map_or("none".into(), |q| q.to_string()),
            ),
            ("proposals", format!("{:?}", c.proposals).to_lowercase()),
            ("allow_subwords", c.allow_subwords.to_string()),
            ("random_baselines", settings.random_baselines.to_string()),
            ("min_search_tokens", settings.min_search_tokens.to_string()),
            (
                "max_search_examples",
                settings.max_search_examples.to_string(),
            ),
        ] {
            parameters.insert(k.to_string(), v);
        }
        Ok(settings)
    }
}

/// A trigger attack's settings beyond the search configuration.
#[derive(Debug, Clone)]
pub struct TriggerSettings {
    pub config: TriggerConfig,
    /// Label names (or indices) resolved against the model at run time.
    pub target: Option<String>,
    pub source: Option<String>,
    pub search_corpus: PathBuf,
    pub random_baselines: usize,
    pub min_search_tokens: usize,
    pub max_search_examples: usize,
}

/// A checked attack, ready to run.
pub struct ResolvedAttack {
    pub name: String,
    pub kind: AttackKind,
    pub model: PathBuf,
    pub corpus: PathBuf,
    pub seed: u64,
    pub limit: Option<usize>,
    /// The text perturbation, for every kind but `trigger`.
    pub perturber: Option<Box<dyn Perturber + Send + Sync>>,
    /// The trigger search, for `kind = "trigger"`.
    pub trigger: Option<TriggerSettings>,
    /// For `kind = "entity-swap"` on coreference (span) rows; which one runs depends on the
    /// model, so both are built.
    pub name_swap: Option<SpanNameSwap>,
    pub parameters: BTreeMap<String, String>,
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
        assert!(parse("kind = \"trigger-happy\"").is_err());
    }
}
