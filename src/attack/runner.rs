//! Running a perturbation attack against a classifier and collecting what the scorer needs.
//!
//! Randomness is per example: example `i` draws from a ChaCha8 stream seeded with `--seed`
//! and set to stream `i`. So an example's perturbations depend only on the seed, its position
//! and its text, not on batch sizes, thread counts or which other examples ran.

use std::collections::HashSet;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Perturber;
use crate::model::{Classifier, ModelError, Progress, QueryStats};
use crate::score::{ExampleOutcome, PerturbedOutcome};

/// One example to attack: its text, line in the corpus, and gold label if known.
#[derive(Debug, Clone)]
pub struct Target {
    pub line: usize,
    pub text: String,
    pub gold: Option<usize>,
}

#[derive(Debug)]
pub struct AttackRun {
    pub outcomes: Vec<ExampleOutcome>,
    /// Model work this run caused (cache hits included).
    pub queries: QueryStats,
    pub wall_seconds: f64,
}

/// The rng for example `index` under `seed`.
pub fn example_rng(seed: u64, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index as u64);
    rng
}

/// Perturb every target, predict originals and variants in large batches, and pair them up.
pub fn run(
    model: &mut Classifier,
    targets: &[Target],
    perturber: &dyn Perturber,
    seed: u64,
    progress: Progress,
) -> Result<AttackRun, ModelError> {
    let start = Instant::now();
    let before = model.stats();
    let perturbed: Vec<_> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| perturber.perturb(&t.text, &mut example_rng(seed, i)))
        .collect();
    // Originals and every variant in one request: the model sees length-sorted batches across
    // the whole corpus, and repeats are answered by the cache.
    let mut texts: Vec<&str> = targets.iter().map(|t| t.text.as_str()).collect();
    for variants in perturbed.iter().flatten() {
        texts.extend(variants.iter().map(|v| v.text.as_str()));
    }
    let mut predictions = model.predict_with_progress(&texts, progress)?.into_iter();
    let originals: Vec<_> = predictions.by_ref().take(targets.len()).collect();
    let mut outcomes = Vec::with_capacity(targets.len());
    for ((target, original), result) in targets.iter().zip(originals).zip(perturbed) {
        let result = result.map(|variants| {
            variants
                .into_iter()
                .map(|perturbation| PerturbedOutcome {
                    prediction: predictions.next().expect("one prediction per variant"),
                    perturbation,
                })
                .collect::<Vec<_>>()
        });
        let mut distinct: HashSet<&str> = HashSet::from([target.text.as_str()]);
        if let Ok(variants) = &result {
            distinct.extend(variants.iter().map(|v| v.perturbation.text.as_str()));
        }
        let queries = distinct.len() as u64;
        outcomes.push(ExampleOutcome {
            line: target.line,
            text: target.text.clone(),
            gold: target.gold,
            original,
            result,
            queries,
        });
    }
    Ok(AttackRun {
        outcomes,
        queries: model.stats().since(&before),
        wall_seconds: start.elapsed().as_secs_f64(),
    })
}
