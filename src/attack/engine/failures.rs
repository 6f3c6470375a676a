//! The clearest failures of an attack, for the HTML report: ranked by how far the answer
//! moved, kept as a bounded top-k so a streamed attack holds only `limit` of them.

use super::*;

/// The clearest failures of a scored attack, strongest first, at most one per input row.
///
/// For invariance attacks (shuffles, name swaps, triggers) a failure is a variant whose label
/// changed, ranked by how much probability the original label lost. For negation, where a
/// change away from the gold label is wanted, it is a variant still predicted as the gold
/// label, ranked by the confidence in it.
pub fn failure_examples(report: &AttackReport, limit: usize) -> Vec<FailureExample> {
    let mut failures = Failures::new(limit);
    for o in &report.outcomes {
        failures.add(o, &report.provenance.labels, report.scores.expectation);
    }
    failures.into_examples()
}

/// The strongest failures seen so far, at most `limit`, strongest first and in corpus order
/// on ties: what [`failure_examples`] keeps, collected one outcome at a time so a streamed
/// attack holds only these.
pub(super) struct Failures {
    pub(super) limit: usize,
    pub(super) found: Vec<(f64, FailureExample)>,
}

impl Failures {
    pub(super) fn new(limit: usize) -> Self {
        Failures {
            limit,
            found: Vec::new(),
        }
    }

    /// Consider one example: its strongest failing variant, if it has one.
    pub(super) fn add(&mut self, o: &ExampleOutcome, labels: &[String], expectation: Expectation) {
        if self.limit == 0 {
            return;
        }
        let Ok(variants) = &o.result else { return };
        let label = |i: usize| labels.get(i).cloned().unwrap_or_else(|| i.to_string());
        let mut best: Option<(f64, &crate::score::PerturbedOutcome, &'static str)> = None;
        for v in variants {
            let p = &v.prediction;
            let (strength, why) = match expectation {
                Expectation::Invariant if p.label != o.original.label => {
                    let before = o.original.probs.get(o.original.label).copied();
                    let after = p.probs.get(o.original.label).copied();
                    let drop = f64::from(before.unwrap_or(0.0) - after.unwrap_or(0.0));
                    (drop, "label changed")
                }
                Expectation::FlipFromGold => match o.gold {
                    Some(g) if p.label == g => (
                        f64::from(p.probs.get(g).copied().unwrap_or(0.0)),
                        "still the gold label after the perturbation",
                    ),
                    _ => continue,
                },
                _ => continue,
            };
            if best.as_ref().is_none_or(|(s, _, _)| strength > *s) {
                best = Some((strength, v, why));
            }
        }
        let Some((strength, v, why)) = best else {
            return;
        };
        if !self.would_keep(strength) {
            return;
        }
        let p = &v.prediction;
        let example = FailureExample {
            line: o.line,
            group: v.perturbation.group.clone(),
            gold: o.gold.map(label),
            original_text: o.text.clone(),
            perturbed_text: v.perturbation.text.clone(),
            // Of a sentence pair, the segment left alone is part of the example.
            detail: match &o.context {
                Some(c) => format!(
                    "{} · {} segment; the other: {}",
                    v.perturbation.detail,
                    c.segment.as_str(),
                    c.other
                ),
                None => v.perturbation.detail.clone(),
            },
            original_label: label(o.original.label),
            original_confidence: f64::from(o.original.confidence()),
            perturbed_label: label(p.label),
            perturbed_confidence: f64::from(p.confidence()),
            why: why.to_string(),
        };
        self.insert(strength, example);
    }

    /// After every kept failure at least as strong: a stable sort's place.
    pub(super) fn place(&self, strength: f64) -> usize {
        self.found
            .partition_point(|(s, _)| s.total_cmp(&strength) != std::cmp::Ordering::Less)
    }

    pub(super) fn would_keep(&self, strength: f64) -> bool {
        self.place(strength) < self.limit
    }

    pub(super) fn insert(&mut self, strength: f64, example: FailureExample) {
        let at = self.place(strength);
        if at < self.limit {
            self.found.insert(at, (strength, example));
            self.found.truncate(self.limit);
        }
    }

    pub(super) fn into_examples(self) -> Vec<FailureExample> {
        self.found.into_iter().map(|(_, e)| e).collect()
    }
}
