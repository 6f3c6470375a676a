//! The kinds robust ships, as [`Attack`]s: shuffle, negation, entity swap and trigger.
//!
//! Why here and not in the perturbers: a perturber (`crate::perturb`) knows text only; what
//! makes it a kind — its recipe keys and their defaults, the parameters its reports record,
//! and which engine runs it on which model folder — is the attack layer's. Each kind below is
//! the whole of that for one kind; the registry ([`super::kind::Registry::builtin`]) lists them.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::kind::{Attack, Built, Registry, Shape, row_shape};
use super::name_swap::{GenderCondition, NameFrequency, Replace, SpanNameSwap};
use super::spec::{
    AttackSpec, DEFAULT_NAME_FREQUENCY, DEFAULT_NAMES, ProbeName, RecipeError, ShuffleModeName,
    TRIGGER_SEARCH_KEYS, TriggerSettings, value_name,
};
use super::trigger::{Position, Proposals, TriggerConfig};
use super::word::recipe::{WordKind, WordKindAttack};
use crate::model::ModelKind;
use crate::perturb::entity_swap::{EntitySwap, NameLexicon, SwapTarget};
use crate::perturb::negation::{Negation, NegationMode};
use crate::perturb::shuffle::{Shuffle, ShuffleMode};
use crate::resource::{self, Resource};
use crate::score::Expectation;
use crate::score::metric::Metric;

/// The built-in kinds, in the order `--kind` lists them.
pub(super) const ALL: &[fn() -> Box<dyn Attack>] = &[
    || Box::new(ShuffleAttack),
    || Box::new(NegationAttack),
    || Box::new(EntitySwapAttack),
    || Box::new(TriggerAttack),
    || Box::new(WordKindAttack(WordKind::Typo)),
    || Box::new(WordKindAttack(WordKind::Synonym)),
    || Box::new(WordKindAttack(WordKind::MlmSwap)),
];

impl Registry {
    /// The kinds robust ships: shuffle, negation (and its cloze probe), entity swap (and its
    /// span swap) and trigger.
    pub fn builtin() -> Self {
        ALL.iter().fold(Registry::empty(), |registry, make| {
            registry.with_boxed(make())
        })
    }
}

/// `--kind`'s values, with their help, from the built-in registry (the binary sets them on
/// the flag, so that `--help` lists them and a misspelt kind is refused with the list).
pub fn kind_values() -> clap::builder::PossibleValuesParser {
    let registry = Registry::builtin();
    clap::builder::PossibleValuesParser::new(
        registry
            .attacks()
            .map(|a| clap::builder::PossibleValue::new(a.name()).help(a.about()))
            .collect::<Vec<_>>(),
    )
}

/// A key set to a value it cannot take (shared by the kinds' builders).
pub(super) fn invalid(
    origin: &str,
    key: &'static str,
    value: String,
    problem: &str,
) -> RecipeError {
    RecipeError::Invalid {
        origin: origin.to_string(),
        key,
        value,
        problem: problem.to_string(),
    }
}

/// `samples`, or the kind's default; zero is refused.
fn samples(spec: &AttackSpec, origin: &str, default: usize) -> Result<usize, RecipeError> {
    match spec.samples.unwrap_or(default) {
        0 => Err(invalid(origin, "samples", "0".into(), "must be at least 1")),
        n => Ok(n),
    }
}

/// Word-order shuffles: the prediction should not change.
pub struct ShuffleAttack;

impl Attack for ShuffleAttack {
    fn name(&self) -> &'static str {
        "shuffle"
    }

    fn about(&self) -> &'static str {
        "Word-order shuffles (the prediction should not change)"
    }

    fn expectation(&self) -> Expectation {
        Expectation::Invariant
    }

    fn keys(&self) -> &'static [&'static str] {
        &["samples", "mode", "window"]
    }

    fn check(&self, spec: &AttackSpec, origin: &str) -> Result<(), RecipeError> {
        if spec.window.is_some() && spec.mode != Some(ShuffleModeName::Local) {
            return Err(invalid(
                origin,
                "window",
                spec.window.unwrap_or_default().to_string(),
                "applies only to mode = \"local\"",
            ));
        }
        Ok(())
    }

    fn build(
        &self,
        spec: &AttackSpec,
        origin: &str,
        parameters: &mut BTreeMap<String, String>,
    ) -> Result<Built, RecipeError> {
        let samples = samples(spec, origin, 10)?;
        let mode = match spec.mode.unwrap_or(ShuffleModeName::Full) {
            ShuffleModeName::Full => ShuffleMode::Full,
            ShuffleModeName::KeepEnds => ShuffleMode::KeepEnds,
            ShuffleModeName::Local => {
                let window = spec.window.unwrap_or(3);
                if window < 2 {
                    return Err(invalid(
                        origin,
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
            value_name(&spec.mode.unwrap_or(ShuffleModeName::Full)),
        );
        parameters.insert("samples".to_string(), samples.to_string());
        Ok(Built {
            rows: Some(Box::new(Shuffle { mode, samples })),
            ..Built::default()
        })
    }
}

/// Negation flips: the prediction should move away from the gold label. On a fill-mask model,
/// Ettinger's cloze probe.
pub struct NegationAttack;

impl Attack for NegationAttack {
    fn name(&self) -> &'static str {
        "negation"
    }

    fn about(&self) -> &'static str {
        "Negation flips (the prediction should move away from the gold label); a cloze probe on \
         a fill-mask model"
    }

    fn expectation(&self) -> Expectation {
        Expectation::FlipFromGold
    }

    fn keys(&self) -> &'static [&'static str] {
        &["negation", "probe", "top_k"]
    }

    fn reported_as(&self) -> &'static [&'static str] {
        &["cloze"]
    }

    fn headline(&self, reported: &str) -> Metric {
        if reported == "cloze" {
            Metric::Top1Unchanged
        } else {
            Metric::ExpectedDirectionRate
        }
    }

    fn build(
        &self,
        spec: &AttackSpec,
        origin: &str,
        parameters: &mut BTreeMap<String, String>,
    ) -> Result<Built, RecipeError> {
        let _ = origin;
        let mode = spec.negation.unwrap_or(NegationMode::Auto);
        parameters.insert("negation".to_string(), value_name(&mode));
        Ok(Built {
            rows: Some(Box::new(Negation { mode })),
            ..Built::default()
        })
    }

    fn shape(&self, model: ModelKind, spec: &AttackSpec) -> Result<Shape, String> {
        match model {
            ModelKind::FillMask => Ok(Shape::ClozeProbe),
            _ if spec.probe == Some(ProbeName::Cloze) => Err(format!(
                "is a {}; this command needs a {} (probe = \"cloze\")",
                model.as_str(),
                ModelKind::FillMask.as_str()
            )),
            _ => row_shape(self.name(), model),
        }
    }
}

/// Person-name swaps: the prediction should not change. On a coreference model's span rows,
/// the candidates are renamed and the pronoun resolved again.
pub struct EntitySwapAttack;

impl Attack for EntitySwapAttack {
    fn name(&self) -> &'static str {
        "entity-swap"
    }

    fn about(&self) -> &'static str {
        "Person-name swaps (the prediction should not change); span swaps on coreference rows"
    }

    fn expectation(&self) -> Expectation {
        Expectation::Invariant
    }

    fn keys(&self) -> &'static [&'static str] {
        &["samples", "names", "swap", "replace", "name_frequency"]
    }

    fn build(
        &self,
        spec: &AttackSpec,
        origin: &str,
        parameters: &mut BTreeMap<String, String>,
    ) -> Result<Built, RecipeError> {
        let samples = samples(spec, origin, 5)?;
        let names = resource::find(Resource::Names, spec.names.as_deref()).map_err(|e| {
            RecipeError::Lexicon {
                path: spec.names.clone().unwrap_or_else(|| DEFAULT_NAMES.into()),
                source: Box::new(e),
            }
        })?;
        let unreadable = |e: Box<dyn std::error::Error + Send + Sync>| RecipeError::Lexicon {
            path: names.path.clone(),
            source: e,
        };
        let text = names.text().map_err(|e| unreadable(Box::new(e)))?;
        let lexicon = NameLexicon::parse(&names.path.display().to_string(), text)
            .map_err(|e| unreadable(Box::new(e)))?;
        let target = spec.swap.unwrap_or(SwapTarget::OtherGender);
        parameters.insert("names".to_string(), names.path.display().to_string());
        parameters.insert("swap".to_string(), value_name(&target));
        parameters.insert("samples".to_string(), samples.to_string());
        let lexicon = Arc::new(lexicon);
        // Which of the two runs depends on the model folder, decided later by `shape`.
        let name_swap = span_name_swap(spec, &lexicon, target, samples)?;
        Ok(Built {
            rows: Some(Box::new(EntitySwap {
                lexicon,
                samples,
                target,
            })),
            trigger: None,
            name_swap,
        })
    }

    fn shape(&self, model: ModelKind, _spec: &AttackSpec) -> Result<Shape, String> {
        match model {
            ModelKind::CorefSpans => Ok(Shape::SpanSwap),
            _ => row_shape(self.name(), model),
        }
    }
}

/// `target` as recorded for an untargeted trigger; as a flag value, untargeted.
pub const UNTARGETED: &str = "untargeted";
/// `source` as recorded when every label but the target is attacked; as a flag value, that.
pub const NON_TARGET: &str = "non-target";

/// Universal adversarial triggers (HotFlip with estimated gradients), searched on one corpus
/// and evaluated on another, or a given trigger evaluated.
pub struct TriggerAttack;

/// The trigger's keys: those of both a search and an evaluation, then a search's own
/// ([`TRIGGER_SEARCH_KEYS`], which a given trigger refuses).
static TRIGGER_KEYS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    [
        &[
            "trigger",
            "target",
            "source",
            "length",
            "position",
            "random_baselines",
        ][..],
        TRIGGER_SEARCH_KEYS,
    ]
    .concat()
});

impl Attack for TriggerAttack {
    fn name(&self) -> &'static str {
        "trigger"
    }

    fn about(&self) -> &'static str {
        "Universal adversarial trigger search (HotFlip with estimated gradients)"
    }

    fn expectation(&self) -> Expectation {
        Expectation::Invariant
    }

    fn keys(&self) -> &'static [&'static str] {
        &TRIGGER_KEYS
    }

    fn build(
        &self,
        spec: &AttackSpec,
        origin: &str,
        parameters: &mut BTreeMap<String, String>,
    ) -> Result<Built, RecipeError> {
        Ok(Built {
            trigger: Some(trigger_settings(spec, origin, parameters)?),
            ..Built::default()
        })
    }

    fn shape(&self, model: ModelKind, _spec: &AttackSpec) -> Result<Shape, String> {
        row_shape(self.name(), model).map(|_| Shape::TriggerSearch)
    }
}

/// The coreference (span-row) form of an entity swap: the gender condition is relative to
/// the row's pronoun (`same-gender` keeps it, `other-gender` flips it; `other-origin` and
/// `any` keep it too, and the report breaks results down by origin either way).
fn span_name_swap(
    spec: &AttackSpec,
    lexicon: &Arc<NameLexicon>,
    target: SwapTarget,
    samples: usize,
) -> Result<Option<SpanNameSwap>, RecipeError> {
    let found =
        resource::find(Resource::NameFrequency, spec.name_frequency.as_deref()).map_err(|e| {
            RecipeError::Lexicon {
                path: spec
                    .name_frequency
                    .clone()
                    .unwrap_or_else(|| DEFAULT_NAME_FREQUENCY.into()),
                source: Box::new(e),
            }
        })?;
    let unreadable = |e: Box<dyn std::error::Error + Send + Sync>| RecipeError::Lexicon {
        path: found.path.clone(),
        source: e,
    };
    let text = found.text().map_err(|e| unreadable(Box::new(e)))?;
    let frequency = NameFrequency::parse(&found.path, text).map_err(|e| unreadable(Box::new(e)))?;
    Ok(Some(SpanNameSwap {
        lexicon: lexicon.clone(),
        frequency: Arc::new(frequency),
        samples,
        condition: match target {
            SwapTarget::OtherGender => GenderCondition::Other,
            _ => GenderCondition::Same,
        },
        replace: spec.replace.unwrap_or(Replace::Each),
    }))
}

fn trigger_settings(
    spec: &AttackSpec,
    origin: &str,
    parameters: &mut BTreeMap<String, String>,
) -> Result<TriggerSettings, RecipeError> {
    let invalid = |key, value: String, problem: &str| RecipeError::Invalid {
        origin: origin.to_string(),
        key,
        value,
        problem: problem.to_string(),
    };
    // As recorded, the defaults read back as themselves: `--target untargeted`, `--source
    // non-target`.
    let target = spec.target.clone().filter(|t| t != UNTARGETED);
    let source = spec.source.clone().filter(|s| s != NON_TARGET);
    let defaults = TriggerConfig::default();
    let positive = |key: &'static str, v: Option<usize>, default: usize| match v {
        Some(0) => Err(invalid(key, "0".into(), "must be at least 1")),
        Some(v) => Ok(v),
        None => Ok(default),
    };
    let length = positive("length", spec.length, defaults.length)?;
    let init = match &spec.init {
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
    let sigma = spec.sigma.unwrap_or(defaults.sigma);
    if !(sigma > 0.0 && sigma.is_finite()) {
        return Err(invalid(
            "sigma",
            sigma.to_string(),
            "must be a positive number",
        ));
    }
    // Both shapes of trigger attack record whom they attack.
    parameters.insert(
        "target".into(),
        target.clone().unwrap_or_else(|| UNTARGETED.into()),
    );
    parameters.insert(
        "source".into(),
        source.clone().unwrap_or_else(|| NON_TARGET.into()),
    );
    if let Some(given) = &spec.trigger {
        // Evaluating a given trigger searches nothing: search keys would do nothing.

        if let Some(key) = spec
            .set_keys()
            .into_iter()
            .find(|k| TRIGGER_SEARCH_KEYS.contains(k))
        {
            return Err(invalid(
                key,
                "set".into(),
                "applies to a trigger search, not to evaluating a given trigger",
            ));
        }
        if given.split_whitespace().next().is_none() {
            return Err(invalid("trigger", given.clone(), "must not be empty"));
        }
        let settings = TriggerSettings {
            config: TriggerConfig {
                position: spec.position.unwrap_or(Position::Prefix),
                ..defaults
            },
            target: target.clone(),
            source: source.clone(),
            search_corpus: None,
            exclude: Vec::new(),
            exclusion: Default::default(),
            given: Some(given.split_whitespace().collect::<Vec<_>>().join(" ")),
            random_baselines: spec.random_baselines.unwrap_or(5),
            min_search_tokens: 0,
            max_search_examples: 0,
        };
        for (k, v) in [
            ("given", "true".to_string()),
            ("position", value_name(&settings.config.position)),
            ("random_baselines", settings.random_baselines.to_string()),
        ] {
            parameters.insert(k.to_string(), v);
        }
        return Ok(settings);
    }
    let search_corpus = spec
        .search_corpus
        .clone()
        .ok_or_else(|| RecipeError::Missing {
            origin: origin.to_string(),
            key: "search_corpus",
        })?;
    let config = TriggerConfig {
        length,
        init,
        position: spec.position.unwrap_or(Position::Prefix),
        target: None,
        directions: positive("directions", spec.directions, defaults.directions)?,
        estimator: spec.estimator.unwrap_or(defaults.estimator),
        shrinkage: spec.shrinkage.unwrap_or(defaults.shrinkage),
        sigma,
        candidates: positive("candidates", spec.candidates, defaults.candidates)?,
        beam: positive("beam", spec.beam, defaults.beam)?,
        batch: positive("search_batch", spec.search_batch, defaults.batch)?,
        max_iterations: positive("iterations", spec.iterations, defaults.max_iterations)?,
        patience: positive("patience", spec.patience, defaults.patience)?,
        max_queries: spec.budget_queries.or(defaults.max_queries),
        // `none` (infinity) on the flag is no time budget, as recorded.
        max_seconds: spec
            .budget_seconds
            .or(defaults.max_seconds)
            .filter(|s| s.is_finite()),
        proposals: spec.proposals.unwrap_or(Proposals::Hotflip),
        allow_subwords: spec.allow_subwords.unwrap_or(false),
        allow_numbers: false,
        stop_words: Vec::new(),
    };
    let settings = TriggerSettings {
        config,
        target,
        source,
        search_corpus: Some(search_corpus.clone()),
        given: None,
        exclude: Vec::new(),
        exclusion: Default::default(),
        random_baselines: spec.random_baselines.unwrap_or(5),
        min_search_tokens: spec.min_search_tokens.unwrap_or(8),
        max_search_examples: spec.max_search_examples.unwrap_or(4000),
    };
    let c = &settings.config;
    for (k, v) in [
        ("search_corpus", search_corpus.display().to_string()),
        ("length", c.length.to_string()),
        (
            "init",
            // The words the search starts from, as `--init` takes them (#28: `the*` was
            // recorded, which the flag reads as one word).
            c.init
                .as_ref()
                .map_or_else(|| vec!["the"; c.length].join(" "), |w| w.join(" ")),
        ),
        ("position", value_name(&c.position)),
        ("directions", c.directions.to_string()),
        ("estimator", value_name(&c.estimator)),
        ("shrinkage", value_name(&c.shrinkage)),
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
        ("proposals", value_name(&c.proposals)),
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
