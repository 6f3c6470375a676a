//! Attacks as plug-ins: the [`Attack`] trait every kind implements and the [`Registry`] that
//! holds them.
//!
//! Why: each kind used to be wired in by hand — an enum variant, its keys, its name, its
//! expectation, a match arm that built it, another that chose its engine, the headline of its
//! report — in five files. Now a kind is one value implementing [`Attack`], and everything
//! that needs to know about kinds (checking recipes, choosing the engine, `--kind`'s values and
//! help, scoring, history's directions, the HTML's headline) asks the registry. The built-in
//! kinds are in [`super::builtin`] ([`Registry::builtin`]); a caller's own attack is one more
//! [`Registry::with`] line, run by the same engine, suites, shards and resume as they are.
//!
//! An attack that works row by row — a perturbation that needs only the text, or a search that
//! queries the model as it goes — implements [`RowAttack`](super::runner::RowAttack) and runs on the streamed engine
//! ([`Shape::TextPerturbation`]): rows read in blocks, each with its own random stream of the
//! seed, scored as they finish and split across shards by row ranges.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::name_swap::SpanNameSwap;
use super::runner::RowAttack;
use super::spec::{AttackSpec, GENERAL_KEYS, RecipeError, TriggerSettings};
use crate::model::ModelKind;
use crate::score::Expectation;
use crate::score::metric::Metric;

/// The engines an attack can run on, chosen by the attack from its spec and the model folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Attack each sentence row by row ([`RowAttack`]: shuffle, negation, entity swap, or a
    /// search that queries the model) and classify the variants; streamed and shardable.
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

    /// Whether the engine can split the attack's rows across shards exactly (the parts'
    /// scores merge into the whole's, [`crate::attack::engine::merge_attack_shards`]).
    pub fn splits_rows(self) -> bool {
        self == Shape::TextPerturbation
    }
}

/// A kind as results carry it: its name and what it expects of the model. Small and `Copy`,
/// so that a result does not hold the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    name: &'static str,
    expectation: Expectation,
}

impl Kind {
    /// The kind named `name`, expecting `expectation`.
    pub const fn new(name: &'static str, expectation: Expectation) -> Self {
        Self { name, expectation }
    }

    /// The kind's name in recipes and reports, e.g. `entity-swap`.
    pub fn as_str(self) -> &'static str {
        self.name
    }

    /// What the kind expects of the model.
    pub fn expectation(self) -> Expectation {
        self.expectation
    }
}

/// What an attack built from a spec: the parts the engine runs. A row attack for the streamed
/// engine; a trigger search's settings; the span swap for coreference rows (built beside the
/// row attack when which one runs depends on the model folder).
#[derive(Default)]
pub struct Built {
    /// The row-by-row attack, for [`Shape::TextPerturbation`].
    pub rows: Option<Box<dyn RowAttack>>,
    /// The trigger search or evaluation, for [`Shape::TriggerSearch`].
    pub trigger: Option<TriggerSettings>,
    /// The name swap on span rows, for [`Shape::SpanSwap`].
    pub name_swap: Option<SpanNameSwap>,
}

/// One kind of attack. Implementations are values registered in a [`Registry`]; see
/// `CONTRIBUTING.md` for a worked example.
pub trait Attack: Send + Sync {
    /// The kind's name in recipes (`kind = "…"`), flags and reports: kebab-case, unique in
    /// its registry.
    fn name(&self) -> &'static str;

    /// One line for `--kind`'s help.
    fn about(&self) -> &'static str;

    /// What the attack expects of the model: it decides how outcomes are scored and which
    /// direction of each metric is worse.
    fn expectation(&self) -> Expectation;

    /// Recipe keys the kind reads beyond [`super::spec::GENERAL_KEYS`]; any other key set in
    /// a spec is an error (a parameter that does nothing would be recorded as if it did).
    /// A kind's own typed settings, beyond `AttackSpec`'s fields, go in the `settings` table.
    fn keys(&self) -> &'static [&'static str];

    /// Other names the kind's results carry (the cloze probe, negation on a fill-mask model,
    /// reports kind `cloze`).
    fn reported_as(&self) -> &'static [&'static str] {
        &[]
    }

    /// The rate a report of the kind leads with (the HTML's headline column), for results
    /// reported as `reported` (the kind's name or one of [`Attack::reported_as`]).
    fn headline(&self, reported: &str) -> Metric {
        let _ = reported;
        match self.expectation() {
            Expectation::Invariant => Metric::FlipRate,
            Expectation::FlipFromGold => Metric::ExpectedDirectionRate,
        }
    }

    /// Checks of the spec alone, run before the model and corpus are required, so that a
    /// recipe's own mistakes are named first.
    fn check(&self, spec: &AttackSpec, origin: &str) -> Result<(), RecipeError> {
        let _ = (spec, origin);
        Ok(())
    }

    /// Build the attack from a spec whose keys all apply to the kind. Every parameter in force,
    /// defaults included, goes into `parameters`, as reports record them: values spelt as the
    /// flags accept them, so a recorded run can be given back as flags.
    fn build(
        &self,
        spec: &AttackSpec,
        origin: &str,
        parameters: &mut BTreeMap<String, String>,
    ) -> Result<Built, RecipeError>;

    /// The engine that runs the attack on a model folder of kind `model` (decided once, from
    /// the folder, [`ModelKind::of_dir`]), or, in words, why the attack does not apply to it.
    /// By default: row attacks on sentence classifiers.
    fn shape(&self, model: ModelKind, spec: &AttackSpec) -> Result<Shape, String> {
        let _ = spec;
        row_shape(self.name(), model)
    }
}

/// [`Attack::shape`]'s default for the kind `name`: row attacks run on sentence classifiers,
/// not on fill-mask models or coreference (span) models.
pub fn row_shape(name: &str, model: ModelKind) -> Result<Shape, String> {
    match model {
        ModelKind::FillMask => Err(format!(
            "is a {}; only kind = \"negation\" (the cloze probe) runs on it, not {name}",
            ModelKind::FillMask.as_str(),
        )),
        ModelKind::CorefSpans => Err(format!(
            "resolves pronouns from span rows; only --kind entity-swap applies to it, not {name}"
        )),
        ModelKind::SentenceEncoder => Err(format!(
            "is a {}: it embeds sentences (for a word attack's similarity constraint) and has \
             no labels to attack with {name}",
            ModelKind::SentenceEncoder.as_str()
        )),
        ModelKind::Classifier => Ok(Shape::TextPerturbation),
    }
}

/// The kinds a run knows, by name: the built-in ones ([`Registry::builtin`]) and any a caller
/// adds ([`Registry::with`]).
#[derive(Clone)]
pub struct Registry {
    attacks: Vec<Arc<dyn Attack>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Registry {
    /// No kinds at all, for a caller that wants only its own.
    pub fn empty() -> Self {
        Self {
            attacks: Vec::new(),
        }
    }

    /// This registry with `attack` added; an attack of the same name is replaced.
    pub fn with(self, attack: impl Attack + 'static) -> Self {
        self.with_boxed(Box::new(attack))
    }

    /// [`Registry::with`], for an attack already boxed.
    pub fn with_boxed(mut self, attack: Box<dyn Attack>) -> Self {
        self.attacks.retain(|a| a.name() != attack.name());
        self.attacks.push(Arc::from(attack));
        self
    }

    /// The attack named `name` (its own name, not one it is reported as).
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Attack>> {
        self.attacks.iter().find(|a| a.name() == name)
    }

    /// The attack whose results carry the kind `reported` (its name or one it is reported as).
    pub fn reporting(&self, reported: &str) -> Option<&Arc<dyn Attack>> {
        self.get(reported).or_else(|| {
            self.attacks
                .iter()
                .find(|a| a.reported_as().contains(&reported))
        })
    }

    /// Every kind's name, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.attacks.iter().map(|a| a.name()).collect()
    }

    /// Every attack, in registration order.
    pub fn attacks(&self) -> impl Iterator<Item = &Arc<dyn Attack>> {
        self.attacks.iter()
    }

    /// What results of kind `reported` expect of the model: the registered attack's
    /// expectation, else (a kind this registry does not know, from an older history) none.
    pub fn expectation(&self, reported: &str) -> Option<Expectation> {
        self.reporting(reported).map(|a| a.expectation())
    }

    /// The metric results of kind `reported` lead with ([`Attack::headline`]); the flip rate
    /// for a kind this registry does not know.
    pub fn headline(&self, reported: &str) -> Metric {
        self.reporting(reported)
            .map_or(Metric::FlipRate, |a| a.headline(reported))
    }
}

impl crate::score::metric::KindFacts for Registry {
    fn expectation(&self, kind: &str) -> Option<Expectation> {
        Registry::expectation(self, kind)
    }

    fn headline(&self, kind: &str) -> Metric {
        Registry::headline(self, kind)
    }
}

/// A checked attack, ready to run.
pub struct ResolvedAttack {
    /// The name reports use (the kind's name unless the spec names it).
    pub name: String,
    /// What the attack does, as results carry it.
    pub kind: Kind,
    /// The registered attack that built it (it also picks the engine, [`Attack::shape`]).
    pub attack: Arc<dyn Attack>,
    /// The model folder.
    pub model: PathBuf,
    /// The corpus the attack is evaluated on.
    pub corpus: PathBuf,
    /// The seed (0 unless set).
    pub seed: u64,
    /// Attack only the first this many rows.
    pub limit: Option<usize>,
    /// The row-by-row attack, for the streamed engine ([`Shape::TextPerturbation`]).
    pub perturber: Option<Box<dyn RowAttack>>,
    /// The trigger search, for `kind = "trigger"`.
    pub trigger: Option<TriggerSettings>,
    /// For `kind = "entity-swap"` on coreference (span) rows; which one runs depends on the
    /// model, so both are built.
    pub name_swap: Option<SpanNameSwap>,
    /// Every parameter in force, defaults included, as reports record them.
    pub parameters: BTreeMap<String, String>,
}

/// Resolving a spec against a registry lives with the registry, so that the spec (the recipe
/// keys and flags) needs to know no kinds.
impl AttackSpec {
    /// Check the spec and build the attack, with the built-in kinds. `origin` names the recipe
    /// file or "flags" in errors.
    pub fn resolve(&self, origin: &str) -> Result<ResolvedAttack, RecipeError> {
        self.resolve_with(&Registry::builtin(), origin)
    }

    /// [`AttackSpec::resolve`] with the kinds of `registry`.
    pub fn resolve_with(
        &self,
        registry: &Registry,
        origin: &str,
    ) -> Result<ResolvedAttack, RecipeError> {
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
        let name = self.kind.as_deref().ok_or_else(|| missing("kind"))?;
        let attack = registry.get(name).ok_or_else(|| {
            invalid(
                "kind",
                name.to_string(),
                &format!("is not a kind (kinds: {})", registry.names().join(", ")),
            )
        })?;
        // A key the kind does not read would be silently ignored, and the report would
        // record a parameter that had no effect.
        for key in self.set_keys() {
            if !GENERAL_KEYS.contains(&key) && !attack.keys().contains(&key) {
                return Err(invalid(
                    key,
                    "set".into(),
                    &format!(
                        "does not apply to kind = \"{}\" (its keys: {})",
                        attack.name(),
                        attack.keys().join(", ")
                    ),
                ));
            }
        }
        attack.check(self, origin)?;
        if self.limit == Some(0) {
            return Err(invalid(
                "limit",
                "0".into(),
                "must be at least 1 (an empty run measures nothing)",
            ));
        }
        let model = self.model.clone().ok_or_else(|| missing("model"))?;
        let corpus = self.corpus.clone().ok_or_else(|| missing("corpus"))?;
        let mut parameters = BTreeMap::new();
        let built = attack.build(self, origin, &mut parameters)?;
        if let Some(limit) = self.limit {
            parameters.insert("limit".to_string(), limit.to_string());
        }
        Ok(ResolvedAttack {
            name: self
                .name
                .clone()
                .unwrap_or_else(|| attack.name().to_string()),
            kind: Kind::new(attack.name(), attack.expectation()),
            attack: attack.clone(),
            model,
            corpus,
            seed: self.seed.unwrap_or(0),
            limit: self.limit,
            perturber: built.rows,
            trigger: built.trigger,
            name_swap: built.name_swap,
            parameters,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::builtin::ShuffleAttack;

    /// A kind of the test's own, to check what registering one does.
    struct Renamed(&'static str);

    impl Attack for Renamed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn about(&self) -> &'static str {
            "a test kind"
        }
        fn expectation(&self) -> Expectation {
            Expectation::FlipFromGold
        }
        fn keys(&self) -> &'static [&'static str] {
            &[]
        }
        fn build(
            &self,
            spec: &AttackSpec,
            origin: &str,
            parameters: &mut BTreeMap<String, String>,
        ) -> Result<Built, RecipeError> {
            ShuffleAttack.build(spec, origin, parameters)
        }
    }

    #[test]
    fn registering_adds_or_replaces_a_kind_by_name() {
        let registry = Registry::builtin();
        assert_eq!(
            registry.names(),
            [
                "shuffle",
                "negation",
                "entity-swap",
                "trigger",
                "typo",
                "synonym",
                "mlm-swap"
            ]
        );
        let more = registry.clone().with(Renamed("mine"));
        assert_eq!(more.names().len(), 8);
        assert_eq!(more.expectation("mine"), Some(Expectation::FlipFromGold));
        assert_eq!(more.headline("mine"), Metric::ExpectedDirectionRate);
        // Same name: the new one replaces the built-in.
        let replaced = registry.with(Renamed("shuffle"));
        assert_eq!(replaced.names().len(), 7);
        assert_eq!(
            replaced.expectation("shuffle"),
            Some(Expectation::FlipFromGold)
        );
        assert!(Registry::empty().get("shuffle").is_none());
    }

    #[test]
    fn a_spec_resolves_only_against_the_kinds_of_its_registry() {
        let spec: AttackSpec =
            toml::from_str("kind = \"mine\"\nmodel = \"m\"\ncorpus = \"c\"").unwrap();
        let err = spec.resolve("r.toml").err().unwrap().to_string();
        assert!(err.contains("kind = mine: is not a kind"), "{err}");
        let registry = Registry::builtin().with(Renamed("mine"));
        let resolved = spec.resolve_with(&registry, "r.toml").unwrap();
        assert_eq!(resolved.kind.as_str(), "mine");
        assert_eq!(resolved.kind.expectation(), Expectation::FlipFromGold);
        assert!(resolved.perturber.is_some());
        // Keys the kind does not read are refused, naming the kind.
        let spec: AttackSpec =
            toml::from_str("kind = \"mine\"\nmodel = \"m\"\ncorpus = \"c\"\nsamples = 2").unwrap();
        let err = spec
            .resolve_with(&registry, "r.toml")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("samples = set: does not apply to kind = \"mine\""),
            "{err}"
        );
    }

    #[test]
    fn each_builtin_kind_picks_its_engine_from_the_model_folder() {
        let registry = Registry::builtin();
        let spec = AttackSpec::default();
        let shape = |kind: &str, model| registry.get(kind).unwrap().shape(model, &spec);
        assert_eq!(
            shape("shuffle", ModelKind::Classifier),
            Ok(Shape::TextPerturbation)
        );
        assert!(shape("shuffle", ModelKind::FillMask).is_err());
        assert!(shape("shuffle", ModelKind::CorefSpans).is_err());
        assert_eq!(
            shape("negation", ModelKind::FillMask),
            Ok(Shape::ClozeProbe)
        );
        assert_eq!(
            shape("entity-swap", ModelKind::CorefSpans),
            Ok(Shape::SpanSwap)
        );
        assert_eq!(
            shape("trigger", ModelKind::Classifier),
            Ok(Shape::TriggerSearch)
        );
        assert!(shape("trigger", ModelKind::CorefSpans).is_err());
    }
}
