//! Robustness properties of the default model, stated with `robust::prop` as a user would
//! state them for their own model (issue #6), and metamorphic tests of the harness itself.
//!
//! Thresholds come from rates measured on this model and the default corpus with these seeds
//! and case counts (the cases are drawn from a seeded runner, so each check is deterministic:
//! it cannot flake, and it fails only if the model, the corpus or the harness changes).
//! Each is set a little under the measured rate's 95% lower bound, so that a change which
//! moves the rate by less than its own sampling noise does not fail the suite, and one that
//! moves it by more does.

use std::sync::{Mutex, MutexGuard, OnceLock};

use robust::attack::runner::{self, Target};
use robust::model::Classifier;
use robust::perturb::shuffle::{Shuffle, ShuffleMode};
use robust::perturb::{Perturbation, Perturber, SkipReason};
use robust::prop::{self, Check, Pool, PropError, SwapTarget};
use robust::score::{Expectation, score};

use crate::util::*;

/// One model for every test here: loading it costs more than the checks.
fn model() -> MutexGuard<'static, Classifier> {
    static MODEL: OnceLock<Mutex<Classifier>> = OnceLock::new();
    MODEL
        .get_or_init(|| Mutex::new(load_default(32, 100_000)))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn pool(model: &Classifier) -> Pool {
    let corpus = robust::data::corpus::Corpus::read(
        &default_corpus(),
        &robust::data::corpus::Columns::default(),
    )
    .expect("the default corpus reads");
    Pool::from_corpus(&corpus, model.info()).expect("its labels are the model's")
}

fn check<'m>(model: &'m mut Classifier) -> Check<'m> {
    Check::new(model).cases(200).seed(13)
}

fn passed(result: Result<robust::score::stats::Rate, PropError>) -> robust::score::stats::Rate {
    match result {
        Ok(rate) => {
            eprintln!("measured: {}", rate.display_percent());
            rate
        }
        Err(e) => panic!("{e}"),
    }
}

/// Sentiment does not depend on who is named. `robust attack --kind entity-swap` measured
/// 0.7% of 450 swaps changing the label on SST-2 dev and 1.2% [0.6, 2.3] of 750 on the
/// default corpus; here 199/200 = 99.5% [97.2, 99.9]: at least 95%.
#[test]
fn name_swaps_keep_the_prediction() {
    let mut m = model();
    let pool = pool(&m);
    let swap = prop::name_swap(&repo().join("corpora/names.tsv"), SwapTarget::OtherGender)
        .expect("the lexicon loads");
    let rate = passed(check(&mut m).at_least(
        "prediction invariant under other-gender name swap",
        prop::perturbed(&pool, swap),
        prop::invariant,
        0.95,
    ));
    assert_eq!(rate.n, 200);
}

/// Shuffling words inside windows of 3 keeps most meaning; the nightly suite measured 6.8%
/// [5.5, 8.4] of 1,200 such shuffles changing the label; here 182/200 = 91.0% [86.2,
/// 94.2] keep it: at least 85%.
#[test]
fn local_shuffles_mostly_keep_the_prediction() {
    let mut m = model();
    let pool = pool(&m);
    passed(check(&mut m).at_least(
        "prediction invariant under local shuffle (window 3)",
        prop::perturbed(&pool, prop::shuffle(ShuffleMode::Local { window: 3 })),
        prop::invariant,
        0.85,
    ));
}

/// Negating a sentence should move the label away from its gold label. The model follows a
/// negation only about a third of the time (33.9% [29.8, 38.1] of 496 in the nightly suite,
/// 38.6% on SST-2 dev): a known weakness, stated here so that it cannot get worse unnoticed.
/// Here 82/200 = 41.0% [34.4, 47.9]: at least 33%.
#[test]
fn negation_moves_the_label_away_from_gold() {
    let mut m = model();
    let pool = pool(&m);
    passed(check(&mut m).at_least(
        "label moves away from gold under negation",
        prop::perturbed(
            &pool,
            prop::negation(robust::perturb::negation::NegationMode::Auto),
        ),
        prop::moves_away_from_gold,
        0.33,
    ));
}

/// A property that does not hold fails with the observed rate and a shrunk counter-example
/// that really breaks it.
#[test]
fn a_false_property_fails_with_a_shrunk_counterexample() {
    let mut m = model();
    let pool = pool(&m);
    let err = check(&mut m)
        .cases(100)
        .at_least(
            "prediction invariant under full shuffle",
            prop::perturbed(&pool, prop::shuffle(ShuffleMode::Full)),
            prop::invariant,
            0.999,
        )
        .expect_err("full shuffles change some labels");
    let PropError::Failed(failure) = err else {
        panic!("expected a failed property, got {err}");
    };
    let text = failure.to_string();
    eprintln!("{text}");
    assert!(text.contains("held in") && text.contains("/100)"), "{text}");
    assert!(text.contains("minimal counter-example"), "{text}");
    let c = &failure.counterexample;
    let again = m
        .predict(&[c.case.sentence.text.as_str(), c.case.variant.text.as_str()])
        .unwrap();
    assert_ne!(again[0].label, again[1].label, "the counter-example fails");
    // Shrinking moves toward shorter sentences: the counter-example is no longer than the
    // median sentence of the corpus.
    let words = |t: &str| t.split_whitespace().count();
    let mut lengths: Vec<usize> = robust::data::corpus::Corpus::read(
        &default_corpus(),
        &robust::data::corpus::Columns::default(),
    )
    .unwrap()
    .rows
    .iter()
    .map(|r| words(&r.text))
    .collect();
    lengths.sort_unstable();
    assert!(
        words(&c.case.sentence.text) <= lengths[lengths.len() / 2],
        "shrunk to a short sentence: {:?}",
        c.case.sentence.text
    );
}

/// The identity perturbation: returns the text as it is.
struct Identity;

impl Perturber for Identity {
    fn name(&self) -> &'static str {
        "identity"
    }
    fn perturb(
        &self,
        text: &str,
        _rng: &mut rand_chacha::ChaCha8Rng,
    ) -> Result<Vec<Perturbation>, SkipReason> {
        Ok(vec![Perturbation {
            text: text.to_string(),
            detail: "unchanged".into(),
            group: "identity".into(),
            edit: None,
        }])
    }
}

/// Metamorphic: a perturbation that changes nothing changes no prediction, so any flip
/// would be the harness's (batching, caching, pairing of originals and variants), not the
/// model's.
#[test]
fn the_identity_perturbation_changes_nothing() {
    let mut m = model();
    let pool = pool(&m);
    let rate = check(&mut m)
        .rate(
            "invariant under identity",
            prop::perturbed(&pool, std::sync::Arc::new(Identity)),
            prop::invariant,
        )
        .unwrap();
    assert_eq!((rate.k, rate.n), (200, 200));
}

/// Metamorphic: the same seed draws the same cases (same rate), another seed other cases.
#[test]
fn checks_are_reproducible_from_their_seed() {
    let mut m = model();
    let pool = pool(&m);
    let strategy = || prop::perturbed(&pool, prop::shuffle(ShuffleMode::Full));
    let mut rate = |seed| {
        Check::new(&mut *m)
            .cases(60)
            .seed(seed)
            .rate("invariant", strategy(), prop::invariant)
            .unwrap()
    };
    let (a, b) = (rate(5), rate(5));
    assert_eq!((a.k, a.n), (b.k, b.n));
    // Sentences drawn differ with the seed: check the cases, not the (coarse) rate.
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let draw = |seed: u8| {
        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
        );
        (0..20)
            .map(|_| strategy().new_tree(&mut runner).unwrap().current())
            .collect::<Vec<_>>()
    };
    assert_eq!(draw(1), draw(1));
    assert_ne!(draw(1), draw(2));
}

/// Metamorphic: the scorer's counts do not depend on the order of examples, and scoring a
/// corpus twice over doubles every count (rates stay the same).
#[test]
fn scores_ignore_order_and_add_up() {
    let mut m = model();
    let targets: Vec<Target> = corpus_texts(&default_corpus(), 60)
        .into_iter()
        .enumerate()
        .map(|(i, text)| Target {
            line: i + 2,
            text,
            gold: None,
            context: None,
        })
        .collect();
    let shuffle = Shuffle {
        mode: ShuffleMode::Full,
        samples: 3,
    };
    let run = runner::run(&mut *m, &targets, &shuffle, 7, &mut |_, _| {}).unwrap();
    let labels = m.labels().to_vec();
    let base = score(&run.outcomes, &labels, Expectation::Invariant);
    let mut reversed = run.outcomes.clone();
    reversed.reverse();
    let rev = score(&reversed, &labels, Expectation::Invariant);
    assert_eq!(base.overall.flip_rate, rev.overall.flip_rate);
    assert_eq!(
        base.overall.example_flip_rate,
        rev.overall.example_flip_rate
    );
    assert_eq!(base.queries, rev.queries);
    let mut twice = run.outcomes.clone();
    twice.extend(run.outcomes.iter().cloned());
    let double = score(&twice, &labels, Expectation::Invariant);
    assert_eq!(double.overall.flip_rate.k, 2 * base.overall.flip_rate.k);
    assert_eq!(double.overall.flip_rate.n, 2 * base.overall.flip_rate.n);
    assert_eq!(double.overall.flip_rate.value, base.overall.flip_rate.value);
    assert_eq!(double.attacked, 2 * base.attacked);
    // The runner's flips are the model's: re-predict each variant alone and compare.
    for o in run.outcomes.iter().take(10) {
        for v in o.result.as_ref().unwrap() {
            let alone = m.predict(&[v.perturbation.text.as_str()]).unwrap();
            assert_eq!(alone[0].label, v.prediction.label);
        }
    }
}
