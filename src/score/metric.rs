//! The rates robust reports, by name, with the direction in which each gets worse.
//!
//! Why a type: `summary.csv` names metrics as text, and the history, the regression test and
//! the HTML need to know which way each one is bad. Deciding that from the text at each place
//! (prefixes like `flip_rate[`, tests of the attack kind) let them drift apart; here a name is
//! parsed once into a [`Metric`], and its direction follows from the metric and from what the
//! attack expected of the model ([`Expectation`]).

use serde::Serialize;

use super::Expectation;

/// Which way a metric gets worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Worse {
    /// A higher value is worse (a flip rate under an invariance attack).
    Higher,
    /// A lower value is worse (an accuracy).
    Lower,
}

/// A rate in `summary.csv` (group rows and cloze rows alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Changed predictions / perturbations.
    FlipRate,
    /// The flip rate of one class (`flip_rate[<label>]`).
    ClassFlipRate,
    /// Examples with at least one changed prediction / attacked examples.
    ExampleFlipRate,
    /// Originally-correct examples with a changed prediction / originally-correct attacked
    /// examples.
    AttackSuccessRate,
    /// Correct originals / attacked examples.
    AccuracyBefore,
    /// Examples a per-example search did not break / every example (TextAttack's accuracy
    /// under attack).
    AccuracyUnderAttack,
    /// Examples whose every variant is predicted correctly / attacked examples.
    AccuracyAfter,
    /// Correct variants / perturbations.
    PerturbedAccuracy,
    /// Variants predicted as the expected non-gold label / perturbations (negation).
    ExpectedDirectionRate,
    /// Unchanged predictions / perturbations, for an attack meant to flip them (negation).
    IgnoredRate,
    /// Cloze probes (fill-mask models): items whose true completion outscores the false one
    /// in the affirmative template.
    TruePreferredAffirmative,
    /// Cloze: items whose true completion outscores the affirmative one in the negated
    /// template.
    TruePreferredNegated,
    /// Cloze: items whose top-1 word is the same with and without the negation.
    Top1Unchanged,
    /// Cloze: items with one of their answers among the affirmative template's top-k words.
    AnswerInTopk,
}

impl Metric {
    /// Every metric with a fixed name (not [`Metric::ClassFlipRate`]).
    pub const NAMED: [Metric; 13] = [
        Metric::FlipRate,
        Metric::AccuracyUnderAttack,
        Metric::ExampleFlipRate,
        Metric::AttackSuccessRate,
        Metric::AccuracyBefore,
        Metric::AccuracyAfter,
        Metric::PerturbedAccuracy,
        Metric::ExpectedDirectionRate,
        Metric::IgnoredRate,
        Metric::TruePreferredAffirmative,
        Metric::TruePreferredNegated,
        Metric::Top1Unchanged,
        Metric::AnswerInTopk,
    ];

    /// The name `summary.csv` and gates use (`flip_rate[…]` for a class's flip rate).
    pub fn name(self) -> &'static str {
        match self {
            Metric::FlipRate => "flip_rate",
            Metric::ClassFlipRate => "flip_rate[]",
            Metric::ExampleFlipRate => "example_flip_rate",
            Metric::AttackSuccessRate => "attack_success_rate",
            Metric::AccuracyBefore => "accuracy_before",
            Metric::AccuracyUnderAttack => "accuracy_under_attack",
            Metric::AccuracyAfter => "accuracy_after",
            Metric::PerturbedAccuracy => "perturbed_accuracy",
            Metric::ExpectedDirectionRate => "expected_direction_rate",
            Metric::IgnoredRate => "ignored_rate",
            Metric::TruePreferredAffirmative => "true_preferred_affirmative",
            Metric::TruePreferredNegated => "true_preferred_negated",
            Metric::Top1Unchanged => "top1_unchanged",
            Metric::AnswerInTopk => "answer_in_topk",
        }
    }

    /// The `summary.csv` name of `class`'s flip rate.
    pub fn class_flip_rate(class: &str) -> String {
        format!("flip_rate[{class}]")
    }

    /// The class of a class flip-rate name (`flip_rate[positive]` → `positive`).
    pub fn class_of(name: &str) -> Option<&str> {
        name.strip_prefix("flip_rate[")?.strip_suffix(']')
    }

    /// The metric a `summary.csv` name stands for; `None` for values that are not rates.
    pub fn parse(name: &str) -> Option<Metric> {
        if Metric::class_of(name).is_some() {
            return Some(Metric::ClassFlipRate);
        }
        Metric::NAMED.into_iter().find(|m| m.name() == name)
    }

    /// The bad direction, for an attack that expected `expectation`; `None` where a change
    /// either way is not a failure (the flip rate of a negation, which is meant to flip).
    pub fn worse(self, expectation: Expectation) -> Option<Worse> {
        use Metric::*;
        let invariant = expectation == Expectation::Invariant;
        match self {
            AccuracyBefore | AccuracyUnderAttack => Some(Worse::Lower),
            FlipRate | ClassFlipRate | ExampleFlipRate | AttackSuccessRate => {
                invariant.then_some(Worse::Higher)
            }
            AccuracyAfter | PerturbedAccuracy => invariant.then_some(Worse::Lower),
            ExpectedDirectionRate => (!invariant).then_some(Worse::Lower),
            IgnoredRate => (!invariant).then_some(Worse::Higher),
            TruePreferredAffirmative | TruePreferredNegated | AnswerInTopk => Some(Worse::Lower),
            Top1Unchanged => Some(Worse::Higher),
        }
    }
}

/// What results of a kind mean, asked by the kind's name as rows record it: what the kind
/// expected of the model, and the metric its reports lead with. The attack registry answers
/// (`crate::attack::kind::Registry`); reports and history ask through this trait, so they
/// need not know the attacks.
pub trait KindFacts {
    /// What results of `kind` expected of the model; `None` for a kind not known here.
    fn expectation(&self, kind: &str) -> Option<Expectation>;
    /// The metric results of `kind` lead with.
    fn headline(&self, kind: &str) -> Metric;
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_class_rates_parse() {
        for m in Metric::NAMED {
            assert_eq!(Metric::parse(m.name()), Some(m));
        }
        assert_eq!(
            Metric::parse("flip_rate[positive]"),
            Some(Metric::ClassFlipRate)
        );
        assert_eq!(Metric::parse("queries_per_example"), None);
        assert_eq!(Metric::parse("flip_rate[positive"), None);
        let name = Metric::class_flip_rate("neutral");
        assert_eq!(Metric::class_of(&name), Some("neutral"));
    }

    #[test]
    fn a_flip_is_bad_for_invariance_and_wanted_for_negation() {
        let inv = Expectation::Invariant;
        let neg = Expectation::FlipFromGold;
        assert_eq!(Metric::FlipRate.worse(inv), Some(Worse::Higher));
        assert_eq!(Metric::ClassFlipRate.worse(inv), Some(Worse::Higher));
        assert_eq!(Metric::FlipRate.worse(neg), None);
        assert_eq!(Metric::AccuracyAfter.worse(inv), Some(Worse::Lower));
        assert_eq!(Metric::PerturbedAccuracy.worse(neg), None);
        assert_eq!(Metric::ExpectedDirectionRate.worse(neg), Some(Worse::Lower));
        assert_eq!(Metric::IgnoredRate.worse(neg), Some(Worse::Higher));
        assert_eq!(Metric::AccuracyBefore.worse(neg), Some(Worse::Lower));
        assert_eq!(Metric::Top1Unchanged.worse(inv), Some(Worse::Higher));
        assert_eq!(Metric::AnswerInTopk.worse(inv), Some(Worse::Lower));
    }
}
