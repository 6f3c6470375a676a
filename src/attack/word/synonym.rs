//! WordNet synonyms (PWWS, Ren et al. 2019): a word replaced by another lemma of one of its
//! synsets, spelt in the word's own inflection.
//!
//! Which synsets: those of the word's part of speech. There is no tagger here, so the part of
//! speech is WordNet's most frequent one for the word (the summed sense counts of its index
//! entries over the tagged SemCor corpus), or every part of speech with `pos = "any"`, which is
//! what TextAttack's `WordSwapWordNet` takes. Multi-word lemmas (`ice_cream`) are left out, as
//! TextAttack leaves them out. An inflected word ("movies", "liked") gets the synonym in the same
//! inflection ("films", "enjoyed"), and a synonym whose inflection cannot be spelt is dropped
//! rather than proposed in the wrong form.

use std::sync::Arc;

use rand_chacha::ChaCha8Rng;

use super::Transformation;
use super::text::{Sentence, cased_like};
use crate::lexicon::wordnet::{Pos, WordNet};
use crate::model::ModelError;

/// Which parts of speech a word's synonyms come from.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum SynonymPos {
    /// The word's most frequent part of speech in WordNet's sense counts.
    #[default]
    MostFrequent,
    /// Every part of speech the word has (TextAttack's `WordSwapWordNet`).
    Any,
}

/// The WordNet synonym transformation (see the module docs).
pub struct Synonyms {
    /// The database.
    pub wordnet: Arc<WordNet>,
    /// Which parts of speech.
    pub pos: SynonymPos,
    /// At most this many replacements per word, in WordNet's sense order.
    pub limit: Option<usize>,
}

impl Synonyms {
    /// The replacements for `word` (as written), best (most frequent sense) first.
    pub fn of_word(&self, word: &str) -> Vec<String> {
        let lower = word.to_lowercase();
        let parts = self.wordnet.parts_of_speech(&lower);
        let chosen: Vec<Pos> = match self.pos {
            SynonymPos::MostFrequent => parts.first().map(|(p, _)| *p).into_iter().collect(),
            SynonymPos::Any => parts.iter().map(|(p, _)| *p).collect(),
        };
        let mut out: Vec<String> = Vec::new();
        for pos in chosen {
            for lemma in self.wordnet.lemmas(&lower, pos) {
                for synonym in self.wordnet.synonyms(&lemma, pos) {
                    if synonym.contains(['_', ' ']) {
                        continue;
                    }
                    let Some(form) = self.wordnet.inflect_like(&lower, &lemma, &synonym, pos)
                    else {
                        continue;
                    };
                    let form = cased_like(&form, word);
                    if form.to_lowercase() != lower && !out.contains(&form) {
                        out.push(form);
                    }
                }
            }
        }
        if let Some(limit) = self.limit {
            out.truncate(limit);
        }
        out
    }
}

impl Transformation for Synonyms {
    fn replacements(
        &self,
        sentence: &Sentence,
        index: usize,
        _rng: &mut ChaCha8Rng,
    ) -> Result<Vec<String>, ModelError> {
        Ok(self.of_word(sentence.original_word(index)))
    }
}
