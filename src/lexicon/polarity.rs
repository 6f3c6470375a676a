//! A word's semantic orientation, from a sentence encoder that is not the attacked model.
//!
//! Why: a lexicon lists the words its authors thought of; a trigger search goes on to the
//! words they did not ("invalid", "negligence", "enhanced"). Turney & Littman (2003) scored a
//! word's orientation by its association with a few positive seed words less its association
//! with negative ones. Here association is cosine similarity under a sentence encoder (by
//! default all-MiniLM-L6-v2, which `scripts/setup` builds into `models/sentence-minilm`; not the
//! fine-tuned model under attack). Each word is read in a short context, "the movie is
//! WORD.", and measured from that context's own embedding, "the movie is .", so that what is
//! compared is what the word adds to the sentence. The score is the mean cosine with the
//! positive seeds less the mean cosine with the negative ones: above 0 leans positive, below
//! 0 negative, and a search excludes a word whose score is at least its threshold in size.
//!
//! How the form was chosen: of six variants (the word alone or in two contexts, each with and
//! without the context subtracted), this one separated the words of VADER, AFINN and Pattern
//! from the rest of BERT's whole-word vocabulary best (AUC 0.76 for the size of the score; the
//! word alone, uncentred, 0.58). Those three lexicons were the only ones looked at; the
//! leakage bench measures the score against the others.

use crate::model::ModelError;
use crate::model::sentence::SentenceEncoder;

/// Turney & Littman's (2003) positive paradigm words.
pub const POSITIVE_SEEDS: [&str; 7] = [
    "good",
    "nice",
    "excellent",
    "positive",
    "fortunate",
    "correct",
    "superior",
];
/// Turney & Littman's (2003) negative paradigm words.
pub const NEGATIVE_SEEDS: [&str; 7] = [
    "bad",
    "nasty",
    "poor",
    "negative",
    "unfortunate",
    "wrong",
    "inferior",
];
/// The context a word is read in; `{}` is the word.
pub const CONTEXT: &str = "the movie is {}.";
/// The default threshold on the size of the score: about the top 9% of BERT's whole words.
pub const DEFAULT_THRESHOLD: f64 = 0.06;

/// Seed-word orientation under one encoder.
pub struct Orientation {
    encoder: SentenceEncoder,
    origin: Vec<f64>,
    positive: Vec<Vec<f64>>,
    negative: Vec<Vec<f64>>,
}

fn in_context(word: &str) -> String {
    CONTEXT.replace("{}", word)
}

/// `v - origin`, at unit length (zero stays zero).
fn from_origin(v: &[f32], origin: &[f64]) -> Vec<f64> {
    let d: Vec<f64> = v
        .iter()
        .zip(origin)
        .map(|(a, o)| f64::from(*a) - o)
        .collect();
    let norm = d.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm == 0.0 {
        d
    } else {
        d.into_iter().map(|x| x / norm).collect()
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Orientation {
    /// Embeds the context and the seed words once.
    pub fn new(mut encoder: SentenceEncoder) -> Result<Self, ModelError> {
        let blank = CONTEXT.replace("{}", "");
        let origin: Vec<f64> = encoder.embed(&[blank.as_str()])?[0]
            .iter()
            .map(|x| f64::from(*x))
            .collect();
        let mut seeds = |words: &[&str]| -> Result<Vec<Vec<f64>>, ModelError> {
            let texts: Vec<String> = words.iter().map(|w| in_context(w)).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            Ok(encoder
                .embed(&refs)?
                .iter()
                .map(|v| from_origin(v, &origin))
                .collect())
        };
        let positive = seeds(&POSITIVE_SEEDS)?;
        let negative = seeds(&NEGATIVE_SEEDS)?;
        Ok(Orientation {
            encoder,
            origin,
            positive,
            negative,
        })
    }

    /// The encoder the scores come from.
    pub fn encoder(&self) -> &SentenceEncoder {
        &self.encoder
    }

    /// Each word's orientation, in [-2, 2] (in practice within ±0.3).
    pub fn scores(&mut self, words: &[&str]) -> Result<Vec<f64>, ModelError> {
        let texts: Vec<String> = words.iter().map(|w| in_context(w)).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = self.encoder.embed(&refs)?;
        let mean = |v: &[f64], seeds: &[Vec<f64>]| {
            seeds.iter().map(|s| dot(v, s)).sum::<f64>() / seeds.len() as f64
        };
        Ok(vectors
            .iter()
            .map(|v| {
                let v = from_origin(v, &self.origin);
                mean(&v, &self.positive) - mean(&v, &self.negative)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::{CONTEXT, Orientation};
    use crate::model::InferenceOptions;
    use crate::model::sentence::SentenceEncoder;

    #[test]
    fn the_blank_context_is_the_context_without_its_word() {
        assert_eq!(CONTEXT.replace("{}", ""), "the movie is .");
    }

    /// Issue 29: "invalid", "lacked" and "enhanced" were headline trigger words that no
    /// excluded list held; the orientation finds them, and leaves "film" alone.
    #[test]
    fn orientation_separates_evaluative_words_from_neutral_ones() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sentence-minilm");
        if !dir.join("model.onnx").exists() {
            eprintln!(
                "skipped: no sentence encoder at {} (scripts/setup builds it)",
                dir.display()
            );
            return;
        }
        let encoder = SentenceEncoder::load(&dir, InferenceOptions::default()).unwrap();
        let mut o = Orientation::new(encoder).unwrap();
        let s = o
            .scores(&[
                "good", "bad", "invalid", "lacked", "enhanced", "film", "basement",
            ])
            .unwrap();
        assert!(s[0] > 0.15 && s[1] < -0.15, "{s:?}");
        assert!(s[2] < -0.1 && s[3] < -0.1 && s[4] > 0.08, "{s:?}");
        assert!(s[5].abs() < 0.02 && s[6].abs() < 0.02, "{s:?}");
    }
}
