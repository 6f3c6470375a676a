//! A sentence as a word search sees it: its words with their byte spans, and the edits made so
//! far, so that a candidate is the original string with only the changed words spliced in.

use std::ops::Range;

use crate::perturb::words::{self, TokenKind};
use crate::perturb::{WordChange, words::Case};

/// The words of one text and what has been changed in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    /// The original text.
    original: String,
    /// Byte spans of the words (not punctuation) in the original.
    spans: Vec<Range<usize>>,
    /// Replacements by word index, in index order.
    changes: Vec<(usize, String)>,
    /// The text with the replacements spliced in.
    text: String,
}

impl Sentence {
    /// The words of `text` ([`crate::perturb::words::tokenize`]'s word tokens), unchanged.
    pub fn new(text: &str) -> Self {
        let spans = words::tokenize(text)
            .into_iter()
            .filter(|t| t.kind == TokenKind::Word)
            .map(|t| t.span())
            .collect();
        Sentence {
            original: text.to_string(),
            spans,
            changes: Vec::new(),
            text: text.to_string(),
        }
    }

    /// The text as it now stands.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The original text.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// Words in the original.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the text has no words.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Word `i` of the original.
    pub fn original_word(&self, i: usize) -> &str {
        &self.original[self.spans[i].clone()]
    }

    /// Word `i` as it now stands.
    pub fn word(&self, i: usize) -> &str {
        match self.changes.iter().find(|(j, _)| *j == i) {
            Some((_, w)) => w,
            None => self.original_word(i),
        }
    }

    /// Whether word `i` has been changed.
    pub fn is_changed(&self, i: usize) -> bool {
        self.changes.iter().any(|(j, _)| *j == i)
    }

    /// Words changed so far.
    pub fn changed(&self) -> usize {
        self.changes.len()
    }

    /// This sentence with word `i` replaced by `word` (a replacement of a changed word
    /// replaces the change).
    pub fn with(&self, i: usize, word: &str) -> Sentence {
        let mut changes: Vec<(usize, String)> = self
            .changes
            .iter()
            .filter(|(j, _)| *j != i)
            .cloned()
            .collect();
        if word != self.original_word(i) {
            changes.push((i, word.to_string()));
            changes.sort_by_key(|(j, _)| *j);
        }
        let mut edits: Vec<(Range<usize>, String)> = changes
            .iter()
            .map(|(j, w)| (self.spans[*j].clone(), w.clone()))
            .collect();
        let text = words::splice(&self.original, &mut edits);
        Sentence {
            original: self.original.clone(),
            spans: self.spans.clone(),
            changes,
            text,
        }
    }

    /// The text with word `i` removed (with the space before it, or after it at the start):
    /// the leave-one-out input of the deletion ranking.
    pub fn without(&self, i: usize) -> String {
        let span = self.spans[i].clone();
        let bytes = self.original.as_bytes();
        let (start, end) = if span.start > 0 && bytes[span.start - 1] == b' ' {
            (span.start - 1, span.end)
        } else if span.end < bytes.len() && bytes[span.end] == b' ' {
            (span.start, span.end + 1)
        } else {
            (span.start, span.end)
        };
        let mut edits = vec![(start..end, String::new())];
        words::splice(&self.original, &mut edits)
    }

    /// The words changed, in text order.
    pub fn changes(&self) -> Vec<WordChange> {
        self.changes
            .iter()
            .map(|(i, w)| WordChange {
                index: *i,
                from: self.original_word(*i).to_string(),
                to: w.clone(),
            })
            .collect()
    }
}

/// `word` written with `like`'s capitalisation (a replacement for `like`).
pub fn cased_like(word: &str, like: &str) -> String {
    match words::case_of(like) {
        Case::Other => word.to_string(),
        case => words::with_case(word, case),
    }
}

/// Levenshtein distance between `a` and `b`, in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Common prefix and suffix cost nothing; a search's candidates differ in a word or two.
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[prefix..], &b[prefix..]);
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a, b) = (&a[..a.len() - suffix], &b[..b.len() - suffix]);
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacing_words_splices_only_them_and_keeps_punctuation() {
        let s = Sentence::new("It 's a charming , often affecting journey .");
        assert_eq!(s.len(), 7, "punctuation is not a word");
        assert_eq!(s.original_word(2), "a");
        let t = s.with(3, "lovely").with(6, "trip");
        assert_eq!(t.text(), "It 's a lovely , often affecting trip .");
        assert_eq!(t.changed(), 2);
        assert_eq!(t.changes()[0].from, "charming");
        // Putting the original word back undoes the change.
        let u = t.with(3, "charming");
        assert_eq!(u.changed(), 1);
        assert_eq!(u.text(), "It 's a charming , often affecting trip .");
        assert_eq!(s.without(0), "'s a charming , often affecting journey .");
        assert_eq!(s.without(6), "It 's a charming , often affecting .");
    }

    #[test]
    fn edit_distance_counts_characters() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("a good film", "a good film"), 0);
        assert_eq!(edit_distance("a good film", "a god film"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("naïve", "naive"), 1);
    }

    #[test]
    fn replacements_take_the_original_case() {
        assert_eq!(cased_like("film", "Movie"), "Film");
        assert_eq!(cased_like("film", "MOVIE"), "FILM");
        assert_eq!(cased_like("film", "movie"), "film");
    }
}
