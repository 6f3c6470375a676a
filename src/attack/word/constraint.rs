//! What a word search may change, and which of its candidates count: the constraints that make
//! an adversarial example one a person would accept as the same sentence.
//!
//! Checked before the attacked model sees a candidate, as TextAttack does, so a candidate that
//! breaks one costs no query. Each is a recipe key and a flag, and recorded in the parameters:
//!
//! - stop words are never changed;
//! - at most a fraction of the words change (`max_words_changed`);
//! - no word changes twice (the search visits each word once, so this holds by construction);
//! - a replacement is never a WordNet antonym of the word it replaces (TextFooler #24 counted
//!   "good" → "bad" as a successful attack);
//! - a character attack stays within an edit distance of the original (`max_edit_distance`);
//! - the adversarial text stays within a cosine similarity of the original under a sentence
//!   encoder (`min_similarity`), an encoder that is not the attacked model.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use super::text::{Sentence, edit_distance};
use crate::lexicon::wordnet::WordNet;
use crate::model::ModelError;
use crate::model::sentence::SentenceEncoder;

/// The similarity constraint: an encoder and the least cosine a candidate may have.
pub struct Similarity {
    /// The encoder (behind a lock: row attacks are shared by reference).
    pub encoder: Mutex<SentenceEncoder>,
    /// The least cosine similarity to the original, in [0, 1].
    pub threshold: f32,
}

/// Every constraint of one attack (see the module docs).
#[derive(Default)]
pub struct Constraints {
    /// Lower-case words never changed.
    pub stop_words: HashSet<String>,
    /// The largest fraction of the original's words that may change, in (0, 1].
    pub max_words_changed: Option<f64>,
    /// WordNet, when replacements that are antonyms of the word are refused.
    pub antonyms: Option<Arc<WordNet>>,
    /// The largest character edit distance from the original text.
    pub max_edit_distance: Option<usize>,
    /// The sentence-similarity constraint.
    pub similarity: Option<Similarity>,
}

impl Constraints {
    /// Whether word `i` of `s` may be changed now: a word with a letter or digit, not a stop
    /// word, not changed already, and one more change stays within the changed fraction.
    pub fn may_change(&self, s: &Sentence, i: usize) -> bool {
        let word = s.original_word(i);
        // A clitic is looked up without its apostrophe: SST's "it 's" has the stop word "s".
        let bare = word.trim_matches(['\'', '\u{2019}']).to_lowercase();
        if s.is_changed(i)
            || !word.chars().any(char::is_alphanumeric)
            || self.stop_words.contains(&bare)
        {
            return false;
        }
        match self.max_words_changed {
            Some(fraction) => (s.changed() + 1) as f64 <= fraction * s.len() as f64 + 1e-9,
            None => true,
        }
    }

    /// Whether `replacement` may stand for the original word `word`: not the word itself and
    /// not one of its WordNet antonyms.
    pub fn admits(&self, word: &str, replacement: &str) -> bool {
        if replacement.is_empty() || replacement.eq_ignore_ascii_case(word) {
            return false;
        }
        match &self.antonyms {
            Some(wordnet) => {
                !wordnet.are_antonyms(&word.to_lowercase(), &replacement.to_lowercase())
            }
            None => true,
        }
    }

    /// Whether `s` is within the edit distance of its original.
    pub fn within_edit_distance(&self, s: &Sentence) -> bool {
        self.max_edit_distance
            .is_none_or(|d| edit_distance(s.original(), s.text()) <= d)
    }

    /// Each candidate's similarity to its original, where there is an encoder (one request).
    pub fn similarities(&self, candidates: &[Sentence]) -> Result<Vec<Option<f32>>, ModelError> {
        let Some(similarity) = &self.similarity else {
            return Ok(vec![None; candidates.len()]);
        };
        let Some(first) = candidates.first() else {
            return Ok(Vec::new());
        };
        let texts: Vec<&str> = candidates.iter().map(Sentence::text).collect();
        let mut encoder = similarity
            .encoder
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(encoder
            .similarity(first.original(), &texts)?
            .into_iter()
            .map(Some)
            .collect())
    }

    /// Whether a candidate's similarity meets the threshold (always, without an encoder).
    pub fn similar_enough(&self, similarity: Option<f32>) -> bool {
        match (&self.similarity, similarity) {
            (Some(s), Some(v)) => v >= s.threshold,
            _ => true,
        }
    }
}
