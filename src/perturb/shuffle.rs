//! Word shuffle: does the model read word order at all?
//!
//! Pham et al. (2021, "Out of Order") found that BERT-family classifiers keep most of their
//! predictions on GLUE when the words of the input are shuffled, i.e. that they lean on bags of
//! words. A robust sentiment model should not: "not good, bad" and "bad, not good" may agree,
//! but a shuffled sentence is mostly word salad and a confident unchanged prediction on it is a
//! finding. The modes grade how much order is destroyed: `Full` permutes everything, `Local`
//! only within consecutive n-grams, `KeepEnds` keeps the first and last token (the position
//! effects BERT is known to use) and permutes the middle.
//!
//! Punctuation is a token like any other and moves with the shuffle, as in the paper. The output
//! is the tokens joined by single spaces: the original spacing means nothing once order is gone.

use std::collections::HashSet;

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::words::{self, Token};
use super::{Perturbation, Perturber, SkipReason};

/// Draws per wanted sample before giving up on finding distinct permutations. Short inputs
/// (three tokens) have few permutations; this is enough to find them all with near certainty.
const TRIES_PER_SAMPLE: usize = 20;

/// How much of the word order a [`Shuffle`] destroys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShuffleMode {
    /// Permute every token.
    Full,
    /// Cut the tokens into consecutive non-overlapping groups of `window` and permute inside each.
    Local {
        /// Tokens per group (punctuation counts); a last group shorter than two stays put.
        window: usize,
    },
    /// Keep the first and the last token where they are and permute the ones between.
    KeepEnds,
}

impl ShuffleMode {
    /// The breakdown group: "full", "local-3", "keep-ends".
    pub fn name(&self) -> String {
        match self {
            ShuffleMode::Full => "full".to_string(),
            ShuffleMode::Local { window } => format!("local-{window}"),
            ShuffleMode::KeepEnds => "keep-ends".to_string(),
        }
    }
}

/// The word-shuffle perturber: each variant is the input's tokens permuted by `mode` and
/// joined by single spaces, distinct from the original and from each other.
#[derive(Debug, Clone)]
pub struct Shuffle {
    /// Which tokens may move.
    pub mode: ShuffleMode,
    /// Distinct permutations wanted per input; fewer come back when fewer exist.
    pub samples: usize,
}

impl Perturber for Shuffle {
    fn name(&self) -> &'static str {
        "shuffle"
    }

    fn perturb(&self, text: &str, rng: &mut ChaCha8Rng) -> Result<Vec<Perturbation>, SkipReason> {
        let tokens = words::tokenize(text);
        let word_count = tokens.iter().filter(|t| t.is_word()).count();
        if word_count < 2 || (self.mode == ShuffleMode::KeepEnds && tokens.len() < 4) {
            return Err(SkipReason::TooFewWords);
        }
        let groups = self.groups(tokens.len());
        // When every group holds copies of one token ("a a a"), no draw can differ: say so now
        // instead of spending the retries.
        let movable = groups.iter().any(|g| {
            let first = tokens[g.start].text(text);
            tokens[g.clone()].iter().any(|t| t.text(text) != first)
        });
        if !movable {
            return Err(SkipReason::NoDistinctPermutation);
        }

        let original = words::join_spaced(text, &tokens);
        let group = self.mode.name();
        let detail = format!("shuffle {group}");
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut order: Vec<&Token> = tokens.iter().collect();
        for _ in 0..self.samples.saturating_mul(TRIES_PER_SAMPLE) {
            if out.len() == self.samples {
                break;
            }
            for g in &groups {
                order[g.clone()].shuffle(rng);
            }
            let shuffled = words::join_spaced(text, order.iter().copied());
            if shuffled != original && seen.insert(shuffled.clone()) {
                out.push(Perturbation {
                    text: shuffled,
                    detail: detail.clone(),
                    group: group.clone(),
                    edit: None,
                });
            }
        }
        if out.is_empty() && self.samples > 0 {
            return Err(SkipReason::NoDistinctPermutation);
        }
        Ok(out)
    }
}

impl Shuffle {
    /// The index ranges that are permuted independently, each at least two long.
    fn groups(&self, len: usize) -> Vec<std::ops::Range<usize>> {
        // Every mode is a span of tokens cut into windows: the whole text in one window, the
        // middle in one window, or the whole text in windows of n.
        let (start, end, window) = match self.mode {
            ShuffleMode::Full => (0, len, len),
            ShuffleMode::KeepEnds => (1, len.saturating_sub(1).max(1), len),
            ShuffleMode::Local { window } => (0, len, window),
        };
        let window = window.max(1);
        (start..end)
            .step_by(window)
            .map(|from| from..(from + window).min(end))
            .filter(|r| r.len() >= 2)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    fn sorted_tokens(s: &str) -> Vec<String> {
        let mut v: Vec<String> = words::tokenize(s)
            .iter()
            .map(|t| t.text(s).to_string())
            .collect();
        v.sort();
        v
    }

    fn shuffle(mode: ShuffleMode, samples: usize) -> Shuffle {
        Shuffle { mode, samples }
    }

    #[test]
    fn full_shuffle_permutes_sst_sentence() {
        let s = "it 's a charming and often affecting journey .";
        let out = shuffle(ShuffleMode::Full, 5)
            .perturb(s, &mut rng(1))
            .unwrap();
        assert_eq!(out.len(), 5);
        for p in &out {
            assert_ne!(p.text, s);
            assert_eq!(sorted_tokens(&p.text), sorted_tokens(s));
            assert_eq!(p.group, "full");
            assert_eq!(p.detail, "shuffle full");
        }
    }

    #[test]
    fn keep_ends_fixes_first_and_last_token() {
        let s = "the movie is n't funny .";
        let out = shuffle(ShuffleMode::KeepEnds, 4)
            .perturb(s, &mut rng(2))
            .unwrap();
        assert!(!out.is_empty());
        for p in &out {
            assert!(
                p.text.starts_with("the ") && p.text.ends_with(" ."),
                "{}",
                p.text
            );
            assert_eq!(sorted_tokens(&p.text), sorted_tokens(s));
        }
    }

    #[test]
    fn local_shuffle_stays_inside_windows() {
        let s = "a b c d e f g";
        let out = shuffle(ShuffleMode::Local { window: 3 }, 10)
            .perturb(s, &mut rng(3))
            .unwrap();
        for p in &out {
            let t: Vec<&str> = p.text.split(' ').collect();
            assert_eq!(sorted_tokens(&t[0..3].join(" ")), ["a", "b", "c"]);
            assert_eq!(sorted_tokens(&t[3..6].join(" ")), ["d", "e", "f"]);
            assert_eq!(t[6], "g");
            assert_eq!(p.group, "local-3");
        }
    }

    #[test]
    fn skips_are_reported() {
        let full = shuffle(ShuffleMode::Full, 3);
        assert_eq!(
            full.perturb("wow", &mut rng(0)),
            Err(SkipReason::TooFewWords)
        );
        assert_eq!(
            full.perturb("wow !", &mut rng(0)),
            Err(SkipReason::TooFewWords)
        );
        assert_eq!(full.perturb("", &mut rng(0)), Err(SkipReason::TooFewWords));
        assert_eq!(
            full.perturb("a a a", &mut rng(0)),
            Err(SkipReason::NoDistinctPermutation)
        );
        assert_eq!(
            shuffle(ShuffleMode::KeepEnds, 3).perturb("good film .", &mut rng(0)),
            Err(SkipReason::TooFewWords)
        );
        assert_eq!(
            shuffle(ShuffleMode::Local { window: 1 }, 3).perturb("a b c", &mut rng(0)),
            Err(SkipReason::NoDistinctPermutation)
        );
    }

    #[test]
    fn small_inputs_give_every_distinct_permutation_once() {
        let out = shuffle(ShuffleMode::Full, 10)
            .perturb("a b c", &mut rng(4))
            .unwrap();
        let texts: HashSet<_> = out.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(out.len(), 5);
        assert_eq!(texts.len(), 5);
        assert!(!texts.contains("a b c"));
    }

    proptest! {
        #[test]
        fn is_a_permutation_and_deterministic(
            ws in proptest::collection::vec("[a-z]{1,5}|[.,!?]", 0..12),
            seed in any::<u64>(),
            samples in 1usize..6,
            mode in prop_oneof![
                Just(ShuffleMode::Full),
                Just(ShuffleMode::KeepEnds),
                (0usize..5).prop_map(|window| ShuffleMode::Local { window }),
            ],
        ) {
            let s = ws.join(" ");
            let sh = shuffle(mode, samples);
            let a = sh.perturb(&s, &mut rng(seed));
            let b = sh.perturb(&s, &mut rng(seed));
            prop_assert_eq!(&a, &b);
            if let Ok(out) = a {
                prop_assert!(!out.is_empty() && out.len() <= samples);
                for p in &out {
                    prop_assert_ne!(&p.text, &s);
                    prop_assert_eq!(sorted_tokens(&p.text), sorted_tokens(&s));
                }
            }
        }

        #[test]
        fn never_panics(s in ".*", seed in any::<u64>()) {
            for mode in [ShuffleMode::Full, ShuffleMode::KeepEnds, ShuffleMode::Local { window: 2 }] {
                if let Ok(out) = shuffle(mode, 3).perturb(&s, &mut rng(seed)) {
                    for p in &out {
                        prop_assert_eq!(sorted_tokens(&p.text), sorted_tokens(&s));
                    }
                }
            }
        }
    }
}
