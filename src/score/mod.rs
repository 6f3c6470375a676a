//! The scorer: how many predictions an attack changed, with denominators and intervals.
//!
//! Every attack ends here, so every attack reports the same numbers in the same way. A rate is
//! always a [`Rate`] (k, n and a 95% Wilson interval), and each metric says which denominator
//! it uses: perturbations, attacked examples, or attacked examples the model got right to
//! begin with. Skipped examples are counted by reason, never folded into a denominator.

pub mod gap;
pub mod metric;
pub mod stats;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Input, Prediction};
use crate::perturb::{Perturbation, Segment, SkipReason};
use crate::score::stats::{Rate, mcnemar_exact};

/// What the attack expects the model to do with a perturbed input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expectation {
    /// The label should stay the same (shuffles, name swaps): any change is a failure.
    Invariant,
    /// The label should move away from the gold label (negating a sentiment sentence): a change
    /// is wanted, and staying put means the model ignored the perturbation.
    FlipFromGold,
}

/// The half of a sentence pair an attack leaves alone, and which half the attacked text is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairContext {
    /// The segment left alone, as in the corpus.
    pub other: String,
    /// Which segment `text` (the attacked one) is.
    pub segment: Segment,
}

impl PairContext {
    /// The model input with `text` in the attacked segment.
    pub fn input<'a>(&'a self, text: &'a str) -> Input<'a> {
        match self.segment {
            Segment::First => Input::new(text, Some(&self.other)),
            Segment::Second => Input::new(&self.other, Some(text)),
        }
    }
}

/// One perturbed variant and the model's answer to it.
#[derive(Debug, Clone)]
pub struct PerturbedOutcome {
    /// The variant: its text, what was done, and its group.
    pub perturbation: Perturbation,
    /// The model's prediction on the variant.
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
    pub context: Option<PairContext>,
    /// The gold label's index among the model's labels; `None` for an unlabelled corpus.
    pub gold: Option<usize>,
    /// The model's prediction on the unperturbed input.
    pub original: Prediction,
    /// The variants and their predictions, or why the example got none (it is then counted as
    /// skipped, never scored).
    pub result: Result<Vec<PerturbedOutcome>, SkipReason>,
    /// Distinct model inputs this example needed (original plus distinct variants): its query
    /// cost, whether or not the cache later answered some of them.
    pub queries: u64,
}

impl ExampleOutcome {
    /// The variants and their predictions (none for a skipped example).
    pub fn variants(&self) -> &[PerturbedOutcome] {
        self.result.as_deref().unwrap_or(&[])
    }
}

/// Metrics over one set of perturbations (all of an attack's, or one group's).
#[derive(Debug, Clone, Serialize)]
pub struct GroupScores {
    /// The perturbation group, or `all` for the whole attack.
    pub group: String,
    /// Examples with at least one perturbation in this group.
    pub examples: u64,
    /// Variants in this group, over all examples: the denominator of the per-perturbation
    /// rates.
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

/// An attack's scores: counts of what was attacked and skipped, and its metrics overall and
/// by group.
#[derive(Debug, Clone, Serialize)]
pub struct AttackScores {
    /// Examples scored, with variants or without (every row the attack read).
    pub examples: u64,
    /// Examples with at least one variant: the denominator of the per-example rates.
    pub attacked: u64,
    /// Examples given no variant, by reason ([`SkipReason::as_str`]).
    pub skipped: BTreeMap<String, u64>,
    /// Distinct model inputs over all examples ([`ExampleOutcome::queries`], summed), skipped
    /// examples' originals included.
    pub queries: u64,
    /// `queries` / `attacked`; 0 when nothing was attacked.
    pub queries_per_example: f64,
    /// What the attack expects of the model, which decides what counts as a failure.
    pub expectation: Expectation,
    /// Metrics over every variant (group `all`).
    pub overall: GroupScores,
    /// For a per-example search (word and character attacks): its results in TextAttack's
    /// terms; `None` for the other attacks.
    pub search: Option<SearchScores>,
    /// One entry per perturbation group (swap direction, negation insert/remove, ...), sorted.
    pub groups: Vec<GroupScores>,
}

/// Tabulate an attack's outcomes.
pub fn score(
    outcomes: &[ExampleOutcome],
    labels: &[String],
    expectation: Expectation,
) -> AttackScores {
    let mut scorer = Scorer::new(labels, expectation);
    for o in outcomes {
        scorer.add(o);
    }
    scorer.finish()
}

/// The scorer fed one outcome at a time, so an attack on millions of rows need not keep its
/// outcomes: every metric is a count or a sum, and the sums are taken in corpus order, so
/// [`Scorer::finish`] gives exactly what [`score`] gives on the same outcomes in one slice.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Scorer {
    labels: Vec<String>,
    expectation: Expectation,
    examples: u64,
    attacked: u64,
    queries: u64,
    all_gold: bool,
    skipped: BTreeMap<String, u64>,
    overall: Tally,
    groups: BTreeMap<String, Tally>,
    /// Per-example searches' results; empty for other attacks (and absent from scorers
    /// saved before word attacks existed).
    #[serde(default)]
    search: SearchTally,
}

/// A per-example search's results in the field's terms (TextAttack's attack summary), each
/// with its denominator.
#[derive(Debug, Clone, Serialize)]
pub struct SearchScores {
    /// Searches that reached the goal.
    pub succeeded: u64,
    /// Searches that tried every word and did not.
    pub failed: u64,
    /// Searches stopped by the example's query budget.
    pub out_of_budget: u64,
    /// Examples not searched (misclassified to begin with, or with no words), all reasons.
    pub skipped: u64,
    /// Examples whose search did not succeed (failed or out of budget) / every example read,
    /// skipped ones included (TextAttack's accuracy under attack); needs gold labels.
    pub accuracy_under_attack: Option<Rate>,
    /// Mean fraction of the original's words changed, over successful searches.
    pub words_perturbed: f64,
    /// Mean queries (distinct texts asked about, the original included) per searched example.
    pub queries_mean: f64,
    /// Median of the same.
    pub queries_median: f64,
    /// Mean cosine similarity of the adversarial texts to their originals, over successful
    /// searches, where the attack had a sentence encoder.
    pub similarity_mean: Option<f64>,
}

/// The counts behind [`SearchScores`].
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
struct SearchTally {
    succeeded: u64,
    failed: u64,
    out_of_budget: u64,
    words_sum: ExactSum,
    similarity_sum: ExactSum,
    similarity_n: u64,
    /// Searched examples by their query count, for the median.
    queries: BTreeMap<u64, u64>,
}

impl SearchTally {
    fn searched(&self) -> u64 {
        self.succeeded + self.failed + self.out_of_budget
    }

    fn add(&mut self, o: &ExampleOutcome) {
        let Some(edit) = o
            .variants()
            .first()
            .and_then(|v| v.perturbation.edit.as_deref())
        else {
            return;
        };
        match edit.end {
            crate::perturb::SearchEnd::Succeeded => {
                self.succeeded += 1;
                self.words_sum.add(edit.changed_fraction());
                if let Some(s) = edit.similarity {
                    self.similarity_sum.add(f64::from(s));
                    self.similarity_n += 1;
                }
            }
            crate::perturb::SearchEnd::Failed => self.failed += 1,
            crate::perturb::SearchEnd::OutOfBudget => self.out_of_budget += 1,
        }
        *self.queries.entry(o.queries).or_insert(0) += 1;
    }

    fn merge(&mut self, other: SearchTally) {
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.out_of_budget += other.out_of_budget;
        self.words_sum.merge(&other.words_sum);
        self.similarity_sum.merge(&other.similarity_sum);
        self.similarity_n += other.similarity_n;
        for (q, n) in other.queries {
            *self.queries.entry(q).or_insert(0) += n;
        }
    }

    /// The median of the query counts (the mean of the two middle ones for an even count).
    fn median(&self) -> f64 {
        let n = self.searched();
        if n == 0 {
            return 0.0;
        }
        let at = |rank: u64| -> f64 {
            let mut seen = 0;
            for (&q, &count) in &self.queries {
                seen += count;
                if seen > rank {
                    return q as f64;
                }
            }
            0.0
        };
        if n % 2 == 1 {
            at(n / 2)
        } else {
            (at(n / 2 - 1) + at(n / 2)) / 2.0
        }
    }

    fn finish(&self, examples: u64, skipped: u64, has_gold: bool) -> Option<SearchScores> {
        let searched = self.searched();
        if searched == 0 {
            return None;
        }
        let query_sum: u64 = self.queries.iter().map(|(q, n)| q * n).sum();
        Some(SearchScores {
            succeeded: self.succeeded,
            failed: self.failed,
            out_of_budget: self.out_of_budget,
            skipped,
            accuracy_under_attack: has_gold
                .then(|| Rate::new(self.failed + self.out_of_budget, examples)),
            words_perturbed: if self.succeeded == 0 {
                0.0
            } else {
                self.words_sum.value() / self.succeeded as f64
            },
            queries_mean: query_sum as f64 / searched as f64,
            queries_median: self.median(),
            similarity_mean: (self.similarity_n > 0)
                .then(|| self.similarity_sum.value() / self.similarity_n as f64),
        })
    }
}

impl Scorer {
    /// A scorer for a model with these label names, judging changes by `expectation`.
    pub fn new(labels: &[String], expectation: Expectation) -> Self {
        Scorer {
            labels: labels.to_vec(),
            expectation,
            examples: 0,
            attacked: 0,
            queries: 0,
            all_gold: true,
            skipped: BTreeMap::new(),
            overall: Tally::new(labels.len()),
            groups: BTreeMap::new(),
            search: SearchTally::default(),
        }
    }

    /// Count one example's outcome (call in corpus order).
    pub fn add(&mut self, o: &ExampleOutcome) {
        self.examples += 1;
        self.queries += o.queries;
        self.all_gold &= o.gold.is_some();
        if let Err(reason) = &o.result {
            *self.skipped.entry(reason.as_str().to_string()).or_insert(0) += 1;
        }
        self.search.add(o);
        let variants: Vec<&PerturbedOutcome> = o.variants().iter().collect();
        if variants.is_empty() {
            return;
        }
        self.attacked += 1;
        self.overall.add(o, &variants);
        let mut names: Vec<&str> = variants
            .iter()
            .map(|v| v.perturbation.group.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let in_group: Vec<&PerturbedOutcome> = variants
                .iter()
                .copied()
                .filter(|v| v.perturbation.group == name)
                .collect();
            let k = self.labels.len();
            self.groups
                .entry(name.to_string())
                .or_insert_with(|| Tally::new(k))
                .add(o, &in_group);
        }
    }

    /// Add the outcomes another scorer counted, as if they had followed this one's (the
    /// scorers of row ranges of one attack, merged in row order, give the whole attack's).
    pub fn merge(&mut self, other: Scorer) {
        self.examples += other.examples;
        self.attacked += other.attacked;
        self.queries += other.queries;
        self.all_gold &= other.all_gold;
        for (reason, n) in other.skipped {
            *self.skipped.entry(reason).or_insert(0) += n;
        }
        self.overall.merge(other.overall);
        self.search.merge(other.search);
        for (name, tally) in other.groups {
            match self.groups.get_mut(&name) {
                Some(mine) => mine.merge(tally),
                None => {
                    self.groups.insert(name, tally);
                }
            }
        }
    }

    /// The scores of every outcome added so far.
    pub fn finish(self) -> AttackScores {
        let (labels, expectation, has_gold) = (&self.labels, self.expectation, self.all_gold);
        let groups = if self.groups.len() > 1 {
            self.groups
                .into_iter()
                .map(|(name, tally)| tally.finish(&name, labels, expectation, has_gold))
                .collect()
        } else {
            Vec::new()
        };
        let skipped: u64 = self.skipped.values().sum();
        let search = self.search.finish(self.examples, skipped, has_gold);
        AttackScores {
            search,
            examples: self.examples,
            attacked: self.attacked,
            skipped: self.skipped,
            queries: self.queries,
            queries_per_example: if self.attacked == 0 {
                0.0
            } else {
                self.queries as f64 / self.attacked as f64
            },
            expectation,
            overall: self.overall.finish("all", labels, expectation, has_gold),
            groups,
        }
    }
}

/// The counts and sums behind one [`GroupScores`].
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
struct Tally {
    examples: u64,
    perturbations: u64,
    changed: u64,
    examples_changed: u64,
    unchanged: u64,
    correct_before: u64,
    robust_after: u64,
    correct_variants: u64,
    success: u64,
    success_n: u64,
    mc_b: u64,
    mc_c: u64,
    expected_k: u64,
    expected_n: u64,
    drop_sum: ExactSum,
    per_class: Vec<(u64, u64)>,
}

impl Tally {
    fn new(labels: usize) -> Self {
        Tally {
            per_class: vec![(0, 0); labels],
            ..Tally::default()
        }
    }

    fn merge(&mut self, o: Tally) {
        self.examples += o.examples;
        self.perturbations += o.perturbations;
        self.changed += o.changed;
        self.examples_changed += o.examples_changed;
        self.unchanged += o.unchanged;
        self.correct_before += o.correct_before;
        self.robust_after += o.robust_after;
        self.correct_variants += o.correct_variants;
        self.success += o.success;
        self.success_n += o.success_n;
        self.mc_b += o.mc_b;
        self.mc_c += o.mc_c;
        self.expected_k += o.expected_k;
        self.expected_n += o.expected_n;
        self.drop_sum.merge(&o.drop_sum);
        for (mine, theirs) in self.per_class.iter_mut().zip(o.per_class) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
    }

    /// Count one example's variants of this group (never empty).
    fn add(&mut self, o: &ExampleOutcome, variants: &[&PerturbedOutcome]) {
        self.examples += 1;
        let orig = o.original.label;
        let n_changed = variants
            .iter()
            .filter(|v| v.prediction.label != orig)
            .count() as u64;
        self.perturbations += variants.len() as u64;
        self.changed += n_changed;
        self.unchanged += variants.len() as u64 - n_changed;
        self.examples_changed += u64::from(n_changed > 0);
        for v in variants {
            self.drop_sum
                .add(f64::from(o.original.probs[orig]) - f64::from(v.prediction.probs[orig]));
        }
        let class = o.gold.unwrap_or(orig);
        if let Some(slot) = self.per_class.get_mut(class) {
            slot.0 += n_changed;
            slot.1 += variants.len() as u64;
        }
        if let Some(gold) = o.gold {
            let before = orig == gold;
            let after = variants.iter().all(|v| v.prediction.label == gold);
            self.correct_before += u64::from(before);
            self.robust_after += u64::from(after);
            self.correct_variants += variants
                .iter()
                .filter(|v| v.prediction.label == gold)
                .count() as u64;
            if before {
                self.success_n += 1;
                self.success += u64::from(n_changed > 0);
            }
            self.mc_b += u64::from(before && !after);
            self.mc_c += u64::from(!before && after);
            self.expected_n += variants.len() as u64;
            self.expected_k += variants
                .iter()
                .filter(|v| v.prediction.label != gold)
                .count() as u64;
        }
    }

    /// `has_gold`: every example of the attack (attacked or skipped) has a gold label.
    fn finish(
        self,
        name: &str,
        labels: &[String],
        expectation: Expectation,
        has_gold: bool,
    ) -> GroupScores {
        let gold_rate = |k, n| has_gold.then(|| Rate::new(k, n));
        let flip_expected = expectation == Expectation::FlipFromGold;
        // Accuracy after a perturbation that should change the label would be scored against
        // a gold label that no longer applies; only invariance tests report it.
        let after_rate = |k, n| (has_gold && !flip_expected).then(|| Rate::new(k, n));
        let perturbations = self.perturbations;
        GroupScores {
            group: name.to_string(),
            examples: self.examples,
            perturbations,
            flip_rate: Rate::new(self.changed, perturbations),
            example_flip_rate: Rate::new(self.examples_changed, self.examples),
            attack_success_rate: gold_rate(self.success, self.success_n),
            accuracy_before: gold_rate(self.correct_before, self.examples),
            accuracy_after: after_rate(self.robust_after, self.examples),
            perturbed_accuracy: after_rate(self.correct_variants, perturbations),
            mcnemar_p: (has_gold && !flip_expected).then(|| mcnemar_exact(self.mc_b, self.mc_c)),
            expected_direction_rate: (flip_expected && has_gold)
                .then(|| Rate::new(self.expected_k, self.expected_n)),
            ignored_rate: flip_expected.then(|| Rate::new(self.unchanged, perturbations)),
            mean_confidence_drop: if perturbations == 0 {
                0.0
            } else {
                self.drop_sum.value() / perturbations as f64
            },
            per_class_flip_rate: labels
                .iter()
                .zip(self.per_class)
                .map(|(l, (k, n))| (l.clone(), Rate::new(k, n)))
                .collect(),
        }
    }
}

/// A sum of floats kept exactly (Shewchuk's non-overlapping partials, as Python's
/// `math.fsum`), rounded once at the end. The mean confidence drop is such a sum; kept exactly,
/// it does not depend on the order of its terms, so the sums of row ranges of an attack run
/// on different machines merge into the sum of the whole, to the last bit.
///
/// Written to JSON as the partials' bit patterns: a decimal float read back by a parser that
/// is not correctly rounded could lose the last bit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(into = "Vec<u64>", from = "Vec<u64>")]
pub struct ExactSum {
    partials: Vec<f64>,
}

impl From<ExactSum> for Vec<u64> {
    fn from(sum: ExactSum) -> Self {
        sum.partials.iter().map(|p| p.to_bits()).collect()
    }
}

impl From<Vec<u64>> for ExactSum {
    fn from(bits: Vec<u64>) -> Self {
        ExactSum {
            partials: bits.into_iter().map(f64::from_bits).collect(),
        }
    }
}

impl ExactSum {
    /// Add one finite term.
    pub fn add(&mut self, mut x: f64) {
        let mut kept = 0;
        for j in 0..self.partials.len() {
            let mut y = self.partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[kept] = lo;
                kept += 1;
            }
            x = hi;
        }
        self.partials.truncate(kept);
        self.partials.push(x);
    }

    /// Add every term another sum holds.
    pub fn merge(&mut self, other: &ExactSum) {
        for &p in &other.partials {
            self.add(p);
        }
    }

    /// The sum, correctly rounded (ties to even).
    pub fn value(&self) -> f64 {
        let p = &self.partials;
        let Some(&top) = p.last() else {
            return 0.0;
        };
        let (mut hi, mut lo) = (top, 0.0);
        let mut n = p.len() - 1;
        while n > 0 {
            let x = hi;
            let y = p[n - 1];
            n -= 1;
            hi = x + y;
            lo = y - (hi - x);
            if lo != 0.0 {
                break;
            }
        }
        // Half-way cases: the partials below decide which way to round.
        if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            if y == x - hi {
                hi = x;
            }
        }
        hi
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
                            edit: None,
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
    fn arbitrary_outcome() -> impl Strategy<Value = ExampleOutcome> {
        let variant = (
            0usize..2,
            prop::sample::select(vec!["a", "b", "c"]),
            0.0f32..4.0,
        );
        (
            0usize..2,
            0usize..2,
            -3.0f32..3.0,
            prop::collection::vec(variant, 0..4),
        )
            .prop_map(|(gold, orig, margin, variants)| {
                let mut o = outcome(gold, orig, &[]);
                // Unequal confidences, so the drop is a sum of many different terms.
                let logits = |label: usize, m: f32| -> Prediction {
                    let l: Vec<f32> = (0..2)
                        .map(|i| if i == label { m.abs() + 0.1 } else { 0.0 })
                        .collect();
                    Prediction::from_logits(Arc::from(l))
                };
                o.original = logits(orig, margin);
                if !variants.is_empty() {
                    o.result = Ok(variants
                        .into_iter()
                        .map(|(label, group, m)| PerturbedOutcome {
                            perturbation: Perturbation {
                                text: "v".into(),
                                detail: String::new(),
                                group: group.into(),
                                edit: None,
                            },
                            prediction: logits(label, m),
                        })
                        .collect());
                }
                o
            })
    }

    proptest! {
        /// Issue 17: the scorers of row ranges, merged in order (after a trip through JSON, as
        /// between machines), score exactly what one scorer of the whole does.
        #[test]
        fn merged_scorers_of_row_ranges_equal_the_whole(
            outcomes in prop::collection::vec(arbitrary_outcome(), 0..40),
            cuts in prop::collection::vec(0usize..40, 0..4),
        ) {
            let whole = score(&outcomes, &labels(), Expectation::Invariant);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(outcomes.len())).collect();
            cuts.push(0);
            cuts.push(outcomes.len());
            cuts.sort_unstable();
            let mut merged = Scorer::new(&labels(), Expectation::Invariant);
            for range in cuts.windows(2) {
                let mut part = Scorer::new(&labels(), Expectation::Invariant);
                for o in &outcomes[range[0]..range[1]] {
                    part.add(o);
                }
                let json = serde_json::to_string(&part).unwrap();
                merged.merge(serde_json::from_str(&json).unwrap());
            }
            let merged = merged.finish();
            prop_assert_eq!(
                serde_json::to_string(&merged).unwrap(),
                serde_json::to_string(&whole).unwrap()
            );
        }

        /// The exact sum is the same in any order and split, and within rounding of the
        /// naive sum.
        #[test]
        fn exact_sums_do_not_depend_on_order(terms in prop::collection::vec(-1.0f64..1.0, 0..200), split in 0usize..200) {
            let mut forward = ExactSum::default();
            terms.iter().for_each(|&t| forward.add(t));
            let mut backward = ExactSum::default();
            terms.iter().rev().for_each(|&t| backward.add(t));
            let split = split.min(terms.len());
            let (mut left, mut right) = (ExactSum::default(), ExactSum::default());
            terms[..split].iter().for_each(|&t| left.add(t));
            terms[split..].iter().for_each(|&t| right.add(t));
            right.merge(&left);
            prop_assert_eq!(forward.value().to_bits(), backward.value().to_bits());
            prop_assert_eq!(forward.value().to_bits(), right.value().to_bits());
            let naive: f64 = terms.iter().sum();
            prop_assert!((forward.value() - naive).abs() <= 1e-12, "{} vs {}", forward.value(), naive);
        }
    }

    #[test]
    fn exact_sums_survive_cancellation() {
        let mut s = ExactSum::default();
        for t in [1e16, 1.0, -1e16, 1e-3] {
            s.add(t);
        }
        // The naive sum loses the 1.0 to rounding.
        assert_eq!(s.value(), 1.001);
        assert_eq!(ExactSum::default().value(), 0.0);
    }
}

/// Where an attack's numbers came from: what ran, on which model and corpus (by content
/// hash), with which seed, parameters and robust. A report carries it, and so does each shard
/// of an attack split by rows, which must agree on it to merge.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Provenance {
    /// The attack's name (a trigger's random baseline adds `/random-baseline`).
    pub attack: String,
    /// The attack kind, kebab-case (`shuffle`, `negation`, `entity-swap`, `trigger`).
    pub kind: String,
    /// The model's name in reports ([`crate::model::ModelInfo::name`]).
    pub model: String,
    /// sha256 of `model.onnx` (and its external data), lower-case hex.
    pub model_sha256: String,
    /// The attacked corpus's file name.
    pub corpus: String,
    /// sha256 of the corpus file's bytes, lower-case hex.
    pub corpus_sha256: String,
    /// The seed every perturbation came from.
    pub seed: u64,
    /// The version of robust that ran the attack ([`crate::VERSION`]).
    pub robust_version: String,
    /// Attack parameters, sorted by name, as they were used.
    pub parameters: BTreeMap<String, String>,
    /// The model's labels, by index.
    pub labels: Vec<String>,
}

/// A scored attack with everything a report must say about where its numbers came from.
#[derive(Debug, Clone, Serialize)]
pub struct AttackReport {
    /// Where the numbers came from (flattened: its fields are the report's own in JSON).
    #[serde(flatten)]
    pub provenance: Provenance,
    /// What the attack measured.
    pub scores: AttackScores,
    /// The outcomes scored, in corpus order, where kept: perturbation attacks stream theirs to
    /// `examples.csv` and leave this empty. Not serialised.
    #[serde(skip)]
    pub outcomes: Vec<ExampleOutcome>,
    /// Timing and model work: printed and kept in JSON, never in the CSVs (which must be
    /// byte-identical across runs with the same seed).
    pub wall_seconds: f64,
    /// The model's work during the attack.
    pub model_stats: crate::model::QueryStats,
}

impl AttackReport {
    /// `k=v;k=v`, for one CSV cell.
    pub fn parameters_cell(&self) -> String {
        self.provenance
            .parameters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";")
    }
}
