//! Running a perturbation attack against a classifier and collecting what the scorer needs.
//!
//! Randomness is per example: example `i` draws from a ChaCha8 stream seeded with `--seed`
//! and set to stream `i`. So an example's perturbations depend only on the seed, its position
//! and its text, not on batch sizes, thread counts or which other examples ran.

use std::collections::HashSet;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::model::{Input, ModelError, Progress, QueryStats, TextModel};
use crate::perturb::{Perturbation, Perturber, SkipReason};
pub use crate::score::PairContext;
use crate::score::{ExampleOutcome, PerturbedOutcome};

/// One example to attack: its text, line in the corpus, and gold label if known. For a
/// sentence pair, `text` is the segment the attack perturbs and `context` the other one.
#[derive(Debug, Clone)]
pub struct Target {
    /// 1-based line in the corpus file.
    pub line: usize,
    /// The text the attack perturbs.
    pub text: String,
    /// The gold label's index among the model's labels, if the corpus has labels.
    pub gold: Option<usize>,
    /// For a sentence pair, the segment left alone; `None` for single sentences.
    pub context: Option<PairContext>,
}

impl Target {
    /// The model input for this example with `text` in place of the attacked text.
    pub fn input<'a>(&'a self, text: &'a str) -> Input<'a> {
        match &self.context {
            Some(c) => c.input(text),
            None => Input::new(text, None),
        }
    }
}

/// Why a row attack made no variants of a row, or failed.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    /// The row has nothing the attack can work on: a skip, counted under its reason.
    #[error("skipped: {}", .0.as_str())]
    Skip(SkipReason),
    /// The model failed while the attack queried it.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// One row's attack on the streamed engine: the variants of one row, drawn from the row's own
/// random stream (so a row's variants depend on the seed, its position and its text only, not
/// on shards, chunks or threads), with the model at hand for attacks that search.
///
/// The engine classifies the original and every returned variant afterwards, in large
/// batches; variants the attack already queried are answered by the prediction cache. Model
/// rows the attack asks for count toward the row's `queries`.
pub trait RowAttack: Send + Sync {
    /// The variants of `row.text`, or why it has none. `model` classifies texts (or, for a
    /// sentence pair, [`Target::input`]s); an attack that needs only the text ignores it.
    fn attack_row(
        &self,
        row: &Target,
        model: &mut dyn TextModel,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<Perturbation>, RowError>;

    /// Whether the attack itself asks the model about the original and every variant it
    /// returns (a search does), so that a row's `queries` are the rows it asked for, not those
    /// plus the texts the engine classifies again.
    fn counts_own_queries(&self) -> bool {
        false
    }

    /// Every row of a chunk at once: each row's variants (or skip) and the model rows its
    /// search asked for, in row order; row `i` draws from `rngs[i]`. By default the rows are
    /// attacked one after another with [`RowAttack::attack_row`]. A search that asks the model
    /// step by step overrides this to put the same step of many rows in one request, which is
    /// what lets small per-row requests run at the model's batched speed.
    fn attack_rows(
        &self,
        rows: &[Target],
        model: &mut dyn TextModel,
        rngs: Vec<ChaCha8Rng>,
    ) -> Result<Vec<RowResult>, ModelError> {
        let mut out = Vec::with_capacity(rows.len());
        for (row, mut rng) in rows.iter().zip(rngs) {
            let asked = model.stats().requests;
            let variants = match self.attack_row(row, model, &mut rng) {
                Ok(variants) => Ok(variants),
                Err(RowError::Skip(reason)) => Err(reason),
                Err(RowError::Model(e)) => return Err(e),
            };
            out.push(RowResult {
                variants,
                searched: model.stats().requests - asked,
            });
        }
        Ok(out)
    }
}

/// One row's part of [`RowAttack::attack_rows`].
#[derive(Debug)]
pub struct RowResult {
    /// The row's variants, or why it has none.
    pub variants: Result<Vec<Perturbation>, SkipReason>,
    /// Model rows the attack asked for on this row's behalf (cache hits included).
    pub searched: u64,
}

impl<P: Perturber + Send + Sync> RowAttack for P {
    fn attack_row(
        &self,
        row: &Target,
        _model: &mut dyn TextModel,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<Perturbation>, RowError> {
        self.perturb(&row.text, rng).map_err(RowError::Skip)
    }
}

/// What [`run`] returns: one outcome per target, and the cost.
#[derive(Debug)]
pub struct AttackRun {
    /// One per target, in the targets' order.
    pub outcomes: Vec<ExampleOutcome>,
    /// Model work this run caused (cache hits included).
    pub queries: QueryStats,
    /// Time the run took, in seconds (perturbing and predicting).
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
    model: &mut dyn TextModel,
    targets: &[Target],
    perturber: &dyn RowAttack,
    seed: u64,
    progress: Progress,
) -> Result<AttackRun, ModelError> {
    run_from(model, targets, perturber, seed, 0, progress)
}

/// [`run`] on a chunk of a longer corpus whose first target is example `first_index` of the
/// whole: each example draws from its own stream of the seed, so a corpus run in chunks gets
/// the perturbations it gets run whole.
pub fn run_from(
    model: &mut dyn TextModel,
    targets: &[Target],
    perturber: &dyn RowAttack,
    seed: u64,
    first_index: usize,
    progress: Progress,
) -> Result<AttackRun, ModelError> {
    let start = Instant::now();
    let before = model.stats();
    // Each row's attack first (a search queries the model here), then the originals and
    // variants below; a row's search queries count toward its own `queries`.
    let rngs = (0..targets.len())
        .map(|i| example_rng(seed, first_index + i))
        .collect();
    let (perturbed, searched): (Vec<_>, Vec<_>) = perturber
        .attack_rows(targets, model, rngs)?
        .into_iter()
        .map(|r| (r.variants, r.searched))
        .unzip();
    // Originals and every variant in one request: the model sees length-sorted batches across
    // the whole corpus, and repeats are answered by the cache.
    let mut predictions = if targets.iter().any(|t| t.context.is_some()) {
        let mut inputs: Vec<Input> = targets.iter().map(|t| t.input(&t.text)).collect();
        for (t, variants) in targets.iter().zip(&perturbed) {
            if let Ok(variants) = variants {
                inputs.extend(variants.iter().map(|v| t.input(&v.text)));
            }
        }
        model.predict_inputs(&inputs, progress)?
    } else {
        let mut texts: Vec<&str> = targets.iter().map(|t| t.text.as_str()).collect();
        for variants in perturbed.iter().flatten() {
            texts.extend(variants.iter().map(|v| v.text.as_str()));
        }
        model.predict_with_progress(&texts, progress)?
    }
    .into_iter();
    let originals: Vec<_> = predictions.by_ref().take(targets.len()).collect();
    let mut outcomes = Vec::with_capacity(targets.len());
    for (((target, original), result), searched) in
        targets.iter().zip(originals).zip(perturbed).zip(searched)
    {
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
        let queries = if perturber.counts_own_queries() {
            searched
        } else {
            distinct.len() as u64 + searched
        };
        outcomes.push(ExampleOutcome {
            line: target.line,
            text: target.text.clone(),
            context: target.context.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perturb::negation::{Negation, NegationMode};
    use crate::perturb::shuffle::{Shuffle, ShuffleMode};
    use crate::testing::KeywordModel;

    /// A row attack that searches: it asks the model about each one-word deletion and keeps
    /// the one that changes the answer, if any (#28: the seam a model-querying attack uses).
    struct DeleteToFlip;

    impl RowAttack for DeleteToFlip {
        fn attack_row(
            &self,
            row: &Target,
            model: &mut dyn TextModel,
            _rng: &mut ChaCha8Rng,
        ) -> Result<Vec<Perturbation>, RowError> {
            let words: Vec<&str> = row.text.split_whitespace().collect();
            if words.len() < 2 {
                return Err(RowError::Skip(SkipReason::TooFewWords));
            }
            let original = model.predict(&[&row.text])?[0].label;
            let deletions: Vec<String> = (0..words.len())
                .map(|i| {
                    let mut w = words.clone();
                    w.remove(i);
                    w.join(" ")
                })
                .collect();
            let texts: Vec<&str> = deletions.iter().map(String::as_str).collect();
            let answers = model.predict(&texts)?;
            let pick = (0..texts.len())
                .find(|&i| answers[i].label != original)
                .unwrap_or(0);
            Ok(vec![Perturbation {
                text: deletions[pick].clone(),
                detail: format!("deleted {}", words[pick]),
                group: "delete".into(),
                edit: None,
            }])
        }
    }

    #[test]
    fn a_searching_row_attack_pays_for_its_queries_and_its_variants_are_cache_hits() {
        let mut model = KeywordModel::default();
        let t = targets(&[("a good film", 1), ("bad", 0)]);
        let run = run(&mut model, &t, &DeleteToFlip, 1, &mut |_, _| {}).unwrap();
        // "a good film": the original and three deletions asked by the search, then the
        // original and the chosen deletion again (cache hits) by the engine.
        let first = &run.outcomes[0];
        let variants = first.result.as_ref().unwrap();
        assert_eq!(variants[0].perturbation.text, "a film");
        assert_ne!(variants[0].prediction.label, first.original.label);
        assert_eq!(
            first.queries,
            4 + 2,
            "search rows plus the distinct texts scored"
        );
        assert!(matches!(
            run.outcomes[1].result,
            Err(SkipReason::TooFewWords)
        ));
        // Nothing the engine asked for after the search ran the model again.
        assert_eq!(run.queries.model_queries, 5);
    }

    fn targets(texts: &[(&str, usize)]) -> Vec<Target> {
        texts
            .iter()
            .enumerate()
            .map(|(i, (t, g))| Target {
                line: i + 2,
                text: t.to_string(),
                gold: Some(*g),
                context: None,
            })
            .collect()
    }

    #[test]
    fn a_bag_of_words_model_is_invariant_to_shuffles() {
        let mut model = KeywordModel::default();
        let t = targets(&[("a good and fine film", 1), ("bad", 0), ("it was awful", 0)]);
        let shuffle = Shuffle {
            mode: ShuffleMode::Full,
            samples: 3,
        };
        let run = run(&mut model, &t, &shuffle, 7, &mut |_, _| {}).unwrap();
        assert_eq!(run.outcomes.len(), 3);
        assert!(matches!(
            run.outcomes[1].result,
            Err(SkipReason::TooFewWords)
        ));
        for o in &run.outcomes {
            for v in o.result.as_deref().unwrap_or(&[]) {
                assert_eq!(
                    v.prediction.label, o.original.label,
                    "{}",
                    v.perturbation.text
                );
            }
        }
        // Each example pays for its original and its distinct variants, no more.
        let distinct: u64 = run.outcomes.iter().map(|o| o.queries).sum();
        assert_eq!(run.queries.model_queries, distinct);
        assert_eq!(run.queries.requests, 3 + 3 + 3);
    }

    #[test]
    fn negation_flips_a_model_that_reads_not() {
        let mut model = KeywordModel::default();
        let t = targets(&[("The film is good .", 1), ("The plot is bad .", 0)]);
        let negation = Negation {
            mode: NegationMode::Auto,
        };
        let run = run(&mut model, &t, &negation, 0, &mut |_, _| {}).unwrap();
        for o in &run.outcomes {
            let variants = o.result.as_ref().expect("a negation site");
            assert_eq!(variants.len(), 1);
            assert_ne!(variants[0].prediction.label, o.original.label, "{o:?}");
        }
    }

    /// A perturber that returns the same variant twice and the original once: the runner
    /// counts distinct inputs per example, and the model's cache answers the repeats.
    struct Repeats;
    impl Perturber for Repeats {
        fn name(&self) -> &'static str {
            "repeats"
        }
        fn perturb(&self, text: &str, _: &mut ChaCha8Rng) -> Result<Vec<Perturbation>, SkipReason> {
            let v = |t: &str| Perturbation {
                text: t.to_string(),
                detail: String::new(),
                group: "g".into(),
                edit: None,
            };
            Ok(vec![v("bad"), v("bad"), v(text)])
        }
    }

    #[test]
    fn repeated_inputs_cost_one_query() {
        let mut model = KeywordModel::default();
        let t = targets(&[("good", 1)]);
        let run = run(&mut model, &t, &Repeats, 0, &mut |_, _| {}).unwrap();
        assert_eq!(run.outcomes[0].queries, 2, "good and bad");
        assert_eq!(run.queries.model_queries, 2);
        assert_eq!(run.queries.cache_hits, 2);
        let labels: Vec<usize> = run.outcomes[0]
            .result
            .as_ref()
            .unwrap()
            .iter()
            .map(|v| v.prediction.label)
            .collect();
        assert_eq!(labels, [0, 0, 1]);
    }

    /// Issue 15: the attack perturbs one segment of a sentence pair and feeds the other
    /// unchanged, in its place.
    #[test]
    fn sentence_pairs_perturb_one_segment_and_keep_the_other() {
        use crate::perturb::Segment;
        let pair = |segment| Target {
            line: 2,
            text: "good".into(),
            gold: Some(1),
            context: Some(PairContext {
                other: "a fine film".into(),
                segment,
            }),
        };
        for segment in [Segment::First, Segment::Second] {
            let mut model = KeywordModel::default();
            let run = run(&mut model, &[pair(segment)], &Repeats, 0, &mut |_, _| {}).unwrap();
            let o = &run.outcomes[0];
            // "good" + "a fine film": two positive cues; "bad" + "a fine film": one each.
            assert_eq!(o.original.label, 1);
            let labels: Vec<usize> = o
                .result
                .as_ref()
                .unwrap()
                .iter()
                .map(|v| v.prediction.label)
                .collect();
            assert_eq!(labels, [0, 0, 1], "{segment:?}");
            assert_eq!(o.context.as_ref().unwrap().other, "a fine film");
            assert_eq!(o.context.as_ref().unwrap().segment, segment);
        }
        let t = pair(Segment::Second);
        assert_eq!(t.input("x"), Input::new("a fine film", Some("x")));
        let t = pair(Segment::First);
        assert_eq!(t.input("x"), Input::new("x", Some("a fine film")));
    }
}
