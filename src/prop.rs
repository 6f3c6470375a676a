//! Robustness properties of your own model, stated in `cargo test` with proptest.
//!
//! A robustness property is rarely "always": a good sentiment model still changes its mind on
//! a few name swaps. So besides plain proptest strategies (for properties that must hold in
//! every case), this module checks *rates*: [`Check::at_least`] draws cases from a seeded
//! proptest runner, runs the model on all of them in one batched call, and fails when the
//! share of cases where the property holds is below a threshold. The failure names the
//! observed rate with its denominator and 95% interval and shows a counter-example that
//! proptest has shrunk: cases are drawn from sentences sorted by length, so shrinking moves to
//! the shortest sentence (and smallest seed) that still breaks the property.
//!
//! Everything is reproducible: the runner is seeded ([`Check::seed`]) and each case's
//! perturbation draws from the same ChaCha8 stream the attack runner uses for that seed.
//!
//! ```no_run
//! use robust::model::{Classifier, InferenceOptions};
//! use robust::prop::{self, Check, Pool};
//!
//! let mut model = Classifier::load("models/sst2-minilm".as_ref(), InferenceOptions::default())?;
//! let corpus = robust::data::corpus::Corpus::read(
//!     "corpora/rt-snippets.tsv".as_ref(),
//!     &robust::data::corpus::Columns::default(),
//! )?;
//! let pool = Pool::from_corpus(&corpus, model.info())?;
//! let swap = prop::name_swap("corpora/names.tsv".as_ref(), prop::SwapTarget::OtherGender)?;
//! // Prediction unchanged under a person-name swap in at least 95% of 200 cases.
//! let rate = Check::new(&mut model)
//!     .cases(200)
//!     .seed(13)
//!     .at_least("invariant under name swap", prop::perturbed(&pool, swap), prop::invariant, 0.95)?;
//! println!("{}", rate.display_percent());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `examples/properties.rs` is the same as a runnable program, and
//! `tests/integration/properties.rs` is a suite of such properties against the default model.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::attack::runner::example_rng;
use crate::data::corpus::{Corpus, CorpusError};
use crate::model::{ModelError, ModelInfo, Prediction, TextModel};
use crate::perturb::entity_swap::{EntitySwap, LexiconError, NameLexicon};
use crate::perturb::negation::{Negation, NegationMode};
use crate::perturb::shuffle::{Shuffle, ShuffleMode};
use crate::perturb::{Perturbation, Perturber};
use crate::score::stats::Rate;

pub use crate::perturb::entity_swap::SwapTarget;

/// A perturber that properties can share across proptest's threads and closures.
pub type SharedPerturber = Arc<dyn Perturber + Send + Sync>;

/// One input sentence: its text, line in the corpus, and gold label index if known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    /// Line in the corpus file (1-based, counting the header), or the position in the list
    /// (from 1) for [`Pool::from_texts`].
    pub line: usize,
    /// The sentence.
    pub text: String,
    /// Index of the gold label among the model's labels, when the corpus has labels.
    pub gold: Option<usize>,
}

/// The sentences cases are drawn from, shortest first, so that proptest's shrinking (toward
/// index 0) moves toward shorter counter-examples.
#[derive(Debug, Clone)]
pub struct Pool {
    sentences: Arc<Vec<Sentence>>,
}

impl Pool {
    /// Every row of a corpus, with gold labels mapped to the model's where the corpus has them.
    pub fn from_corpus(corpus: &Corpus, model: &ModelInfo) -> Result<Pool, CorpusError> {
        let gold = match corpus.label_column {
            Some(_) => Some(corpus.label_indices(model)?),
            None => None,
        };
        Ok(Self::new(corpus.rows.iter().enumerate().map(|(i, r)| {
            Sentence {
                line: r.line,
                text: r.text.clone(),
                gold: gold.as_ref().map(|g| g[i]),
            }
        })))
    }

    /// Unlabelled texts (line = position from 1).
    pub fn from_texts<S: Into<String>>(texts: impl IntoIterator<Item = S>) -> Pool {
        Self::new(texts.into_iter().enumerate().map(|(i, t)| Sentence {
            line: i + 1,
            text: t.into(),
            gold: None,
        }))
    }

    fn new(sentences: impl Iterator<Item = Sentence>) -> Pool {
        let mut sentences: Vec<Sentence> = sentences.collect();
        // Stable: equal lengths keep corpus order, so the pool is a function of the corpus.
        sentences.sort_by_key(|s| s.text.split_whitespace().count());
        Pool {
            sentences: Arc::new(sentences),
        }
    }

    /// Only the sentences `perturber` can perturb (names for a name swap, a negation site for
    /// negation), so cases are not spent on skips. Skips depend on the text alone.
    pub fn applicable(&self, perturber: &dyn Perturber) -> Pool {
        let kept: Vec<Sentence> = self
            .sentences
            .iter()
            .filter(|s| perturber.perturb(&s.text, &mut example_rng(0, 0)).is_ok())
            .cloned()
            .collect();
        Pool {
            sentences: Arc::new(kept),
        }
    }

    /// Sentences in the pool.
    pub fn len(&self) -> usize {
        self.sentences.len()
    }

    /// Whether the pool has no sentences (no case can be drawn from it).
    pub fn is_empty(&self) -> bool {
        self.sentences.is_empty()
    }

    /// Any sentence of the pool; shrinks toward the shortest.
    pub fn sentences(&self) -> BoxedStrategy<Sentence> {
        let pool = self.sentences.clone();
        (0..pool.len().max(1))
            .prop_filter_map("empty pool", move |i| pool.get(i).cloned())
            .boxed()
    }
}

/// A sentence, the seed drawn for it, and the variant that seed's perturbation gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The original sentence.
    pub sentence: Sentence,
    /// Seed of the perturbation's rng (as the attack runner seeds an example).
    pub seed: u64,
    /// The perturbed variant (the first the perturber gave).
    pub variant: Perturbation,
}

/// Cases from `pool` perturbed by `perturber`: the sentence shrinks toward the shortest, the
/// seed toward 0. Sentences the perturber skips are filtered; use [`Pool::applicable`] first
/// when most of the pool would be skipped (name swaps), or proptest gives up on rejections.
pub fn perturbed(pool: &Pool, perturber: SharedPerturber) -> BoxedStrategy<Case> {
    let pool = pool.applicable(perturber.as_ref());
    let sentences = pool.sentences.clone();
    (0..sentences.len().max(1), any::<u64>())
        .prop_filter_map("the perturber skipped this sentence", move |(i, seed)| {
            let sentence = sentences.get(i)?.clone();
            let variant = perturber
                .perturb(&sentence.text, &mut example_rng(seed, 0))
                .ok()?
                .into_iter()
                .next()?;
            Some(Case {
                sentence,
                seed,
                variant,
            })
        })
        .boxed()
}

/// One variant per case: a random permutation of the words (`ShuffleMode::Full`), or of
/// windows of them.
pub fn shuffle(mode: ShuffleMode) -> SharedPerturber {
    Arc::new(Shuffle { mode, samples: 1 })
}

/// Insert or remove a negation in the main clause.
pub fn negation(mode: NegationMode) -> SharedPerturber {
    Arc::new(Negation { mode })
}

/// Swap every person name for another from the lexicon (`corpora/names.tsv`).
pub fn name_swap(
    lexicon: &std::path::Path,
    target: SwapTarget,
) -> Result<SharedPerturber, LexiconError> {
    Ok(Arc::new(EntitySwap {
        lexicon: Arc::new(NameLexicon::from_path(lexicon)?),
        samples: 1,
        target,
    }))
}

/// What a property sees: the case and the model's answers before and after.
pub struct Outcome<'a> {
    /// The sentence and its variant.
    pub case: &'a Case,
    /// The model's prediction for the original sentence.
    pub original: &'a Prediction,
    /// The model's prediction for the variant.
    pub perturbed: &'a Prediction,
}

/// The label did not change.
pub fn invariant(o: &Outcome) -> bool {
    o.original.label == o.perturbed.label
}

/// The label changed.
pub fn flips(o: &Outcome) -> bool {
    o.original.label != o.perturbed.label
}

/// The perturbed text is predicted as something other than the gold label (for negation: the
/// label moved the way negating the sentence should move it). Without gold, the label changed.
pub fn moves_away_from_gold(o: &Outcome) -> bool {
    match o.case.sentence.gold {
        Some(gold) => o.perturbed.label != gold,
        None => flips(o),
    }
}

/// Why a property check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum PropError {
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// proptest could not draw the cases (an empty pool, or too many rejected sentences).
    #[error("could not draw cases for {property}: {reason}")]
    Draw {
        /// The property's name.
        property: String,
        /// proptest's reason.
        reason: String,
    },
    /// The property held in too few cases.
    #[error(transparent)]
    Failed(Box<PropertyFailure>),
}

/// A rate property that did not hold: the observed rate and a shrunk counter-example.
pub struct PropertyFailure {
    /// The property's name.
    pub property: String,
    /// Cases where the property held / cases drawn.
    pub rate: Rate,
    /// The least rate required, as a fraction in [0, 1].
    pub required: f64,
    /// The model's label names, by index (to print predictions).
    pub labels: Vec<String>,
    /// The shrunk failing case.
    pub counterexample: Counterexample,
    /// Shrinking steps that made the counter-example simpler.
    pub shrink_steps: usize,
}

/// A case where the property does not hold, with the model's answers.
pub struct Counterexample {
    /// The sentence and its variant.
    pub case: Case,
    /// The prediction for the original sentence.
    pub original: Prediction,
    /// The prediction for the variant.
    pub perturbed: Prediction,
}

impl std::fmt::Display for PropertyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.counterexample;
        let label = |p: &Prediction| {
            format!(
                "{} ({:.3})",
                self.labels
                    .get(p.label)
                    .cloned()
                    .unwrap_or_else(|| p.label.to_string()),
                p.confidence()
            )
        };
        writeln!(
            f,
            "property \"{}\" held in {} of cases; required at least {:.1}%",
            self.property,
            self.rate.display_percent(),
            100.0 * self.required
        )?;
        writeln!(
            f,
            "minimal counter-example (after {} shrink steps), line {}, seed {}:",
            self.shrink_steps, c.case.sentence.line, c.case.seed
        )?;
        if let Some(g) = c.case.sentence.gold {
            writeln!(
                f,
                "  gold:      {}",
                self.labels.get(g).cloned().unwrap_or_else(|| g.to_string())
            )?;
        }
        writeln!(
            f,
            "  original:  {:?} -> {}",
            c.case.sentence.text,
            label(&c.original)
        )?;
        writeln!(
            f,
            "  perturbed: {:?} -> {}",
            c.case.variant.text,
            label(&c.perturbed)
        )?;
        write!(f, "  change:    {}", c.case.variant.detail)
    }
}

// Tests print errors with Debug; make that the readable message, not a struct dump.
impl std::fmt::Debug for PropertyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for PropertyFailure {}

/// Checks rate properties against one model.
pub struct Check<'m> {
    model: &'m mut dyn TextModel,
    cases: u32,
    seed: u64,
    max_shrink_steps: usize,
}

impl<'m> Check<'m> {
    /// 256 cases, seed 0.
    pub fn new(model: &'m mut dyn TextModel) -> Self {
        Self {
            model,
            cases: 256,
            seed: 0,
            max_shrink_steps: 1000,
        }
    }

    /// Cases to draw: the denominator of the rate.
    pub fn cases(mut self, cases: u32) -> Self {
        self.cases = cases.max(1);
        self
    }

    /// Seed of the proptest runner; the same seed draws the same cases.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn runner(&self) -> TestRunner {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&self.seed.to_le_bytes());
        TestRunner::new_with_rng(
            Config {
                cases: self.cases,
                failure_persistence: None,
                ..Config::default()
            },
            TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
        )
    }

    /// The share of drawn cases for which `holds` is true, with its 95% interval.
    pub fn rate(
        &mut self,
        property: &str,
        strategy: impl Strategy<Value = Case>,
        holds: impl Fn(&Outcome) -> bool,
    ) -> Result<Rate, PropError> {
        self.evaluate(property, &strategy, &holds, None)
    }

    /// Fail unless `holds` is true in at least `min_rate` of the drawn cases (point estimate).
    pub fn at_least(
        &mut self,
        property: &str,
        strategy: impl Strategy<Value = Case>,
        holds: impl Fn(&Outcome) -> bool,
        min_rate: f64,
    ) -> Result<Rate, PropError> {
        self.evaluate(property, &strategy, &holds, Some(min_rate))
    }

    fn evaluate<S: Strategy<Value = Case>>(
        &mut self,
        property: &str,
        strategy: &S,
        holds: &dyn Fn(&Outcome) -> bool,
        min_rate: Option<f64>,
    ) -> Result<Rate, PropError> {
        let mut runner = self.runner();
        let mut trees = Vec::with_capacity(self.cases as usize);
        for _ in 0..self.cases {
            let tree = strategy
                .new_tree(&mut runner)
                .map_err(|reason| PropError::Draw {
                    property: property.to_string(),
                    reason: reason.to_string(),
                })?;
            trees.push(tree);
        }
        let cases: Vec<Case> = trees.iter().map(ValueTree::current).collect();
        // Originals and variants in one call: length-sorted batches and the cache do the rest.
        let mut texts: Vec<&str> = cases.iter().map(|c| c.sentence.text.as_str()).collect();
        texts.extend(cases.iter().map(|c| c.variant.text.as_str()));
        let predictions = self.model.predict(&texts)?;
        let (originals, variants) = predictions.split_at(cases.len());
        let verdicts: Vec<bool> = cases
            .iter()
            .zip(originals.iter().zip(variants))
            .map(|(case, (original, perturbed))| {
                holds(&Outcome {
                    case,
                    original,
                    perturbed,
                })
            })
            .collect();
        let rate = Rate::new(
            verdicts.iter().filter(|&&h| h).count() as u64,
            cases.len() as u64,
        );
        let Some(required) = min_rate else {
            return Ok(rate);
        };
        if rate.value >= required {
            return Ok(rate);
        }
        let first = verdicts
            .iter()
            .position(|&h| !h)
            .expect("a rate below the threshold has a failing case");
        let tree = trees.swap_remove(first);
        let (counterexample, shrink_steps) = self.shrink(tree, holds)?;
        Err(PropError::Failed(Box::new(PropertyFailure {
            property: property.to_string(),
            rate,
            required,
            labels: self.model.labels().to_vec(),
            counterexample,
            shrink_steps,
        })))
    }

    fn outcome(&mut self, case: &Case) -> Result<(Prediction, Prediction), ModelError> {
        let mut p = self
            .model
            .predict(&[case.sentence.text.as_str(), case.variant.text.as_str()])?
            .into_iter();
        let original = p.next().expect("two predictions");
        let perturbed = p.next().expect("two predictions");
        Ok((original, perturbed))
    }

    /// proptest's shrinking loop: simplify while the property still fails, step back
    /// (complicate) when it passes, stop when neither moves.
    fn shrink<T: ValueTree<Value = Case>>(
        &mut self,
        mut tree: T,
        holds: &dyn Fn(&Outcome) -> bool,
    ) -> Result<(Counterexample, usize), ModelError> {
        let mut best = tree.current();
        let (mut orig, mut pert) = self.outcome(&best)?;
        let mut steps = 0;
        let mut budget = self.max_shrink_steps;
        if tree.simplify() {
            while budget > 0 {
                budget -= 1;
                let case = tree.current();
                let (o, p) = self.outcome(&case)?;
                let fails = !holds(&Outcome {
                    case: &case,
                    original: &o,
                    perturbed: &p,
                });
                if fails {
                    (best, orig, pert) = (case, o, p);
                    steps += 1;
                    if !tree.simplify() {
                        break;
                    }
                } else if !tree.complicate() {
                    break;
                }
            }
        }
        Ok((
            Counterexample {
                case: best,
                original: orig,
                perturbed: pert,
            },
            steps,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A perturber that returns the text unchanged, or skips texts with fewer than 3 words.
    struct Same;
    impl Perturber for Same {
        fn name(&self) -> &'static str {
            "same"
        }
        fn perturb(
            &self,
            text: &str,
            _rng: &mut rand_chacha::ChaCha8Rng,
        ) -> Result<Vec<Perturbation>, crate::perturb::SkipReason> {
            if text.split_whitespace().count() < 3 {
                return Err(crate::perturb::SkipReason::TooFewWords);
            }
            Ok(vec![Perturbation {
                text: text.to_string(),
                detail: "same".into(),
                group: "same".into(),
                edit: None,
            }])
        }
    }

    #[test]
    fn pools_sort_shortest_first_and_filter_skips() {
        let pool = Pool::from_texts(["a b c d", "a", "a b c", "x y"]);
        let texts: Vec<&str> = pool.sentences.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["a", "x y", "a b c", "a b c d"]);
        let ok = pool.applicable(&Same);
        assert_eq!(ok.len(), 2);
        assert_eq!(ok.sentences[0].line, 3);
    }

    proptest! {
        /// Every drawn case comes from a sentence the perturber can handle, and its variant is what the
        /// perturber gives for its seed: cases are reproducible from (sentence, seed).
        #[test]
        fn cases_are_reproducible_from_their_seed(
            case in perturbed(
                &Pool::from_texts(["one two three four five", "the film is not bad at all", "short"]),
                shuffle(ShuffleMode::Full),
            )
        ) {
            // One word has no other order: the shuffle skips it, so it is never drawn.
            prop_assert_ne!(case.sentence.text.as_str(), "short");
            let again = Shuffle { mode: ShuffleMode::Full, samples: 1 }
                .perturb(&case.sentence.text, &mut example_rng(case.seed, 0))
                .unwrap();
            prop_assert_eq!(&again[0], &case.variant);
        }
    }

    /// `Check` against the fake model: a bag-of-words model is invariant under shuffles (rate
    /// 1, n = cases), and a property that fails is reported with a shrunk counter-example.
    #[test]
    fn check_measures_rates_and_shrinks_failures_on_a_fake_model() {
        let mut model = crate::testing::KeywordModel::default();
        let pool = Pool::from_texts([
            "a good film with a great cast",
            "the plot is bad and the acting is awful",
            "it is not good",
            "boring , boring , boring film",
        ]);
        let rate = Check::new(&mut model)
            .cases(40)
            .seed(3)
            .at_least(
                "shuffle invariance",
                perturbed(&pool, shuffle(ShuffleMode::Full)),
                invariant,
                1.0,
            )
            .unwrap();
        assert_eq!((rate.k, rate.n), (40, 40));

        // Negation flips this model every time, so "invariant under negation" fails.
        let err = Check::new(&mut model)
            .cases(20)
            .seed(3)
            .at_least(
                "negation invariance",
                perturbed(&pool, negation(NegationMode::Auto)),
                invariant,
                0.9,
            )
            .expect_err("the property fails");
        let PropError::Failed(failure) = err else {
            panic!("expected a property failure, got {err}")
        };
        assert_eq!(failure.rate.k, 0, "{failure}");
        let c = &failure.counterexample;
        assert_ne!(c.original.label, c.perturbed.label);
        // Shrinking walks toward the shortest sentence in the pool that still fails.
        assert_eq!(c.case.sentence.text, "it is not good", "{failure}");
    }
}
