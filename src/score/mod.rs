//! The scorer: how many predictions an attack changed, with denominators and intervals.
//!
//! Every attack ends here, so every attack reports the same numbers in the same way. A rate is
//! always a [`Rate`] (k, n and a 95% Wilson interval), and each metric says which denominator
//! it uses: perturbations, attacked examples, or attacked examples the model got right to
//! begin with. Skipped examples are counted by reason, never folded into a denominator.

pub mod metric;
pub mod stats;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::Prediction;
use crate::perturb::{Perturbation, SkipReason};
use crate::score::stats::{Rate, mcnemar_exact};

/// What the attack expects the model to do with a perturbed input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expectation {
    /// The label should stay the same (shuffles, name swaps): any change is a failure.
    Invariant,
    /// The label should move away from the gold label (negating a sentiment sentence): a change
    /// is wanted, and staying put means the model ignored the perturbation.
    FlipFromGold,
}

/// One perturbed variant and the model's answer to it.
#[derive(Debug, Clone)]
pub struct PerturbedOutcome {
    pub perturbation: Perturbation,
    pub prediction: Prediction,
}

/// One input example, its original prediction, and what the attack did to it.
#[derive(Debug, Clone)]
pub struct ExampleOutcome {
    /// Line in the corpus file.
    pub line: usize,
    /// The attacked text (of a sentence pair, the attacked segment).
    pub text: String,
    /// Of a sentence pair, the segment left alone.
    pub context: Option<crate::attack::runner::PairContext>,
    pub gold: Option<usize>,
    pub original: Prediction,
    pub result: Result<Vec<PerturbedOutcome>, SkipReason>,
    /// Distinct model inputs this example needed (original plus distinct variants): its query
    /// cost, whether or not the cache later answered some of them.
    pub queries: u64,
}

impl ExampleOutcome {
    fn variants(&self) -> &[PerturbedOutcome] {
        self.result.as_deref().unwrap_or(&[])
    }
}

/// Metrics over one set of perturbations (all of an attack's, or one group's).
#[derive(Debug, Clone, Serialize)]
pub struct GroupScores {
    pub group: String,
    /// Examples with at least one perturbation in this group.
    pub examples: u64,
    pub perturbations: u64,
    /// Changed predictions / perturbations.
    pub flip_rate: Rate,
    /// Examples with at least one changed prediction / attacked examples.
    pub example_flip_rate: Rate,
    /// Originally-correct examples with at least one changed prediction / originally-correct
    /// attacked examples (TextAttack's attack success rate). Needs gold labels.
    pub attack_success_rate: Option<Rate>,
    /// Correct originals / attacked examples.
    pub accuracy_before: Option<Rate>,
    /// Examples whose every variant is predicted correctly / attacked examples (invariance
    /// attacks only).
    pub accuracy_after: Option<Rate>,
    /// Correct variants / perturbations.
    pub perturbed_accuracy: Option<Rate>,
    /// McNemar exact p-value for accuracy before vs after on the same examples.
    pub mcnemar_p: Option<f64>,
    /// For [`Expectation::FlipFromGold`]: variants predicted as the expected (non-gold) label /
    /// perturbations with a gold label.
    pub expected_direction_rate: Option<Rate>,
    /// For [`Expectation::FlipFromGold`]: unchanged predictions / perturbations.
    pub ignored_rate: Option<Rate>,
    /// Mean over perturbations of p(original label | original) - p(original label | variant).
    pub mean_confidence_drop: f64,
    /// Flip rate split by the gold class (or the original prediction where there is no gold).
    pub per_class_flip_rate: Vec<(String, Rate)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttackScores {
    pub examples: u64,
    pub attacked: u64,
    pub skipped: BTreeMap<String, u64>,
    pub queries: u64,
    pub queries_per_example: f64,
    pub expectation: Expectation,
    pub overall: GroupScores,
    /// One entry per perturbation group (swap direction, negation insert/remove, ...), sorted.
    pub groups: Vec<GroupScores>,
}

/// Tabulate an attack's outcomes.
pub fn score(
    outcomes: &[ExampleOutcome],
    labels: &[String],
    expectation: Expectation,
) -> AttackScores {
    let mut skipped = BTreeMap::new();
    for o in outcomes {
        if let Err(reason) = &o.result {
            *skipped.entry(reason.as_str().to_string()).or_insert(0) += 1;
        }
    }
    let attacked = outcomes.iter().filter(|o| !o.variants().is_empty()).count() as u64;
    let queries: u64 = outcomes.iter().map(|o| o.queries).sum();
    let overall = score_group("all", outcomes, labels, expectation, |_| true);
    let mut names: Vec<&str> = outcomes
        .iter()
        .flat_map(|o| o.variants().iter().map(|v| v.perturbation.group.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    let groups = if names.len() > 1 {
        names
            .iter()
            .map(|&g| {
                score_group(g, outcomes, labels, expectation, |v| {
                    v.perturbation.group == g
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    AttackScores {
        examples: outcomes.len() as u64,
        attacked,
        skipped,
        queries,
        queries_per_example: if attacked == 0 {
            0.0
        } else {
            queries as f64 / attacked as f64
        },
        expectation,
        overall,
        groups,
    }
}

fn score_group(
    name: &str,
    outcomes: &[ExampleOutcome],
    labels: &[String],
    expectation: Expectation,
    keep: impl Fn(&PerturbedOutcome) -> bool,
) -> GroupScores {
    let has_gold = outcomes.iter().all(|o| o.gold.is_some());
    let (mut examples, mut perturbations, mut changed, mut examples_changed) =
        (0u64, 0u64, 0u64, 0u64);
    let (mut correct_before, mut robust_after, mut correct_variants) = (0u64, 0u64, 0u64);
    let (mut success, mut success_n) = (0u64, 0u64);
    let (mut mc_b, mut mc_c) = (0u64, 0u64);
    let (mut expected_k, mut expected_n, mut unchanged) = (0u64, 0u64, 0u64);
    let mut drop_sum = 0.0f64;
    let mut per_class = vec![(0u64, 0u64); labels.len()];
    for o in outcomes {
        let variants: Vec<&PerturbedOutcome> = o.variants().iter().filter(|v| keep(v)).collect();
        if variants.is_empty() {
            continue;
        }
        examples += 1;
        let orig = o.original.label;
        let n_changed = variants
            .iter()
            .filter(|v| v.prediction.label != orig)
            .count() as u64;
        perturbations += variants.len() as u64;
        changed += n_changed;
        unchanged += variants.len() as u64 - n_changed;
        examples_changed += u64::from(n_changed > 0);
        for v in &variants {
            drop_sum += f64::from(o.original.probs[orig]) - f64::from(v.prediction.probs[orig]);
        }
        let class = o.gold.unwrap_or(orig);
        if let Some(slot) = per_class.get_mut(class) {
            slot.0 += n_changed;
            slot.1 += variants.len() as u64;
        }
        if let Some(gold) = o.gold {
            let before = orig == gold;
            let after = variants.iter().all(|v| v.prediction.label == gold);
            correct_before += u64::from(before);
            robust_after += u64::from(after);
            correct_variants += variants
                .iter()
                .filter(|v| v.prediction.label == gold)
                .count() as u64;
            if before {
                success_n += 1;
                success += u64::from(n_changed > 0);
            }
            mc_b += u64::from(before && !after);
            mc_c += u64::from(!before && after);
            expected_n += variants.len() as u64;
            expected_k += variants
                .iter()
                .filter(|v| v.prediction.label != gold)
                .count() as u64;
        }
    }
    let gold_rate = |k, n| has_gold.then(|| Rate::new(k, n));
    let flip_expected = expectation == Expectation::FlipFromGold;
    // Accuracy after a perturbation that should change the label would be scored against a
    // gold label that no longer applies; only invariance tests report it.
    let after_rate = |k, n| (has_gold && !flip_expected).then(|| Rate::new(k, n));
    GroupScores {
        group: name.to_string(),
        examples,
        perturbations,
        flip_rate: Rate::new(changed, perturbations),
        example_flip_rate: Rate::new(examples_changed, examples),
        attack_success_rate: gold_rate(success, success_n),
        accuracy_before: gold_rate(correct_before, examples),
        accuracy_after: after_rate(robust_after, examples),
        perturbed_accuracy: after_rate(correct_variants, perturbations),
        mcnemar_p: (has_gold && !flip_expected).then(|| mcnemar_exact(mc_b, mc_c)),
        expected_direction_rate: (flip_expected && has_gold)
            .then(|| Rate::new(expected_k, expected_n)),
        ignored_rate: flip_expected.then(|| Rate::new(unchanged, perturbations)),
        mean_confidence_drop: if perturbations == 0 {
            0.0
        } else {
            drop_sum / perturbations as f64
        },
        per_class_flip_rate: labels
            .iter()
            .zip(per_class)
            .map(|(l, (k, n))| (l.clone(), Rate::new(k, n)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn pred(label: usize) -> Prediction {
        let logits: Vec<f32> = (0..2).map(|i| if i == label { 2.0 } else { 0.0 }).collect();
        Prediction::from_logits(Arc::from(logits))
    }

    fn outcome(gold: usize, orig: usize, variants: &[(usize, &str)]) -> ExampleOutcome {
        ExampleOutcome {
            line: 2,
            text: "t".into(),
            context: None,
            gold: Some(gold),
            original: pred(orig),
            result: if variants.is_empty() {
                Err(SkipReason::TooFewWords)
            } else {
                Ok(variants
                    .iter()
                    .map(|&(label, group)| PerturbedOutcome {
                        perturbation: Perturbation {
                            text: "v".into(),
                            detail: String::new(),
                            group: group.into(),
                        },
                        prediction: pred(label),
                    })
                    .collect())
            },
            queries: 1 + variants.len() as u64,
        }
    }

    fn labels() -> Vec<String> {
        vec!["neg".into(), "pos".into()]
    }

    #[test]
    fn hand_computed_example() {
        let outcomes = vec![
            outcome(1, 1, &[(1, "a"), (0, "b")]), // correct, one flip
            outcome(0, 0, &[(0, "a")]),           // correct, robust
            outcome(1, 0, &[(1, "a"), (1, "a")]), // wrong before, right after
            outcome(1, 1, &[]),                   // skipped
        ];
        let s = score(&outcomes, &labels(), Expectation::Invariant);
        assert_eq!((s.examples, s.attacked), (4, 3));
        assert_eq!(s.skipped.get("too-few-words"), Some(&1));
        let o = &s.overall;
        assert_eq!((o.flip_rate.k, o.flip_rate.n), (3, 5));
        assert_eq!((o.example_flip_rate.k, o.example_flip_rate.n), (2, 3));
        let asr = o.attack_success_rate.unwrap();
        assert_eq!((asr.k, asr.n), (1, 2));
        assert_eq!(o.accuracy_before.unwrap().k, 2);
        assert_eq!(o.accuracy_after.unwrap().k, 2);
        assert_eq!(o.perturbed_accuracy.unwrap().k, 4);
        assert_eq!(s.groups.len(), 2);
        assert_eq!(s.groups[1].group, "b");
        assert_eq!(s.groups[1].flip_rate.k, 1);
        assert_eq!(s.queries, 3 + 2 + 3 + 1);
        assert!(o.ignored_rate.is_none());
    }

    #[test]
    fn negation_expectations() {
        let outcomes = vec![
            outcome(1, 1, &[(0, "insert")]),
            outcome(0, 0, &[(0, "insert")]),
            outcome(0, 1, &[(0, "remove")]),
        ];
        let s = score(&outcomes, &labels(), Expectation::FlipFromGold);
        let o = &s.overall;
        // Expected label is the non-gold one: only the first example's variant gets there.
        assert_eq!(
            (
                o.expected_direction_rate.unwrap().k,
                o.expected_direction_rate.unwrap().n
            ),
            (1, 3)
        );
        // The third changed (1 -> 0) but toward its gold label, not away from it.
        assert_eq!(o.flip_rate.k, 2);
        assert_eq!(o.ignored_rate.unwrap().k, 1);
    }

    fn outcome_strategy() -> impl Strategy<Value = ExampleOutcome> {
        (
            0usize..2,
            0usize..2,
            prop::collection::vec((0usize..2, prop::sample::select(vec!["x", "y"])), 0..5),
        )
            .prop_map(|(gold, orig, vars)| outcome(gold, orig, &vars))
    }

    proptest! {
        /// Counts agree with a brute-force recount on generated outcomes.
        #[test]
        fn counts_match_brute_force(outcomes in prop::collection::vec(outcome_strategy(), 0..60)) {
            let s = score(&outcomes, &labels(), Expectation::Invariant);
            let all: Vec<(&ExampleOutcome, &PerturbedOutcome)> =
                outcomes.iter().flat_map(|o| o.variants().iter().map(move |v| (o, v))).collect();
            let flips = all.iter().filter(|(o, v)| v.prediction.label != o.original.label).count() as u64;
            prop_assert_eq!(s.overall.flip_rate.k, flips);
            prop_assert_eq!(s.overall.flip_rate.n, all.len() as u64);
            let attacked: Vec<&ExampleOutcome> = outcomes.iter().filter(|o| o.result.is_ok()).collect();
            prop_assert_eq!(s.attacked, attacked.len() as u64);
            let correct_attacked: Vec<&&ExampleOutcome> = attacked.iter().filter(|o| o.gold == Some(o.original.label)).collect();
            let success = correct_attacked.iter().filter(|o| o.variants().iter().any(|v| v.prediction.label != o.original.label)).count() as u64;
            let asr = s.overall.attack_success_rate.unwrap();
            prop_assert_eq!((asr.k, asr.n), (success, correct_attacked.len() as u64));
            let skipped: u64 = s.skipped.values().sum();
            prop_assert_eq!(skipped + s.attacked, s.examples);
            let (lo, hi) = crate::score::stats::wilson(flips, all.len() as u64, crate::score::stats::Z95);
            prop_assert_eq!((s.overall.flip_rate.ci_low, s.overall.flip_rate.ci_high), (lo, hi));
            let group_total: u64 = s.groups.iter().map(|g| g.perturbations).sum();
            prop_assert!(s.groups.is_empty() || group_total == all.len() as u64);
        }
    }
}

/// A scored attack with everything a report must say about where its numbers came from.
#[derive(Debug, Clone, Serialize)]
pub struct AttackReport {
    pub attack: String,
    pub kind: String,
    pub model: String,
    pub model_sha256: String,
    pub corpus: String,
    pub corpus_sha256: String,
    pub seed: u64,
    pub robust_version: String,
    /// Attack parameters, sorted by name, as they were used.
    pub parameters: BTreeMap<String, String>,
    pub labels: Vec<String>,
    pub scores: AttackScores,
    #[serde(skip)]
    pub outcomes: Vec<ExampleOutcome>,
    /// Timing and model work: printed and kept in JSON, never in the CSVs (which must be
    /// byte-identical across runs with the same seed).
    pub wall_seconds: f64,
    pub model_stats: crate::model::QueryStats,
}

impl AttackReport {
    /// `k=v;k=v`, for one CSV cell.
    pub fn parameters_cell(&self) -> String {
        self.parameters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";")
    }
}
