//! The word tokenizer the text perturbations share.
//!
//! Perturbations work on words, not on the model's subword pieces, and two of them (negation,
//! entity swap) must hand back the input with only the edited words changed, so every token keeps
//! its byte span and text is rebuilt by splicing edits into the original string. The rules are
//! chosen for English and for SST's pre-tokenised lower-case text at once:
//!
//! - A word is a run of letters and digits (and combining marks, so accented text written with
//!   them stays one word). An apostrophe (`'` or `’`) or a hyphen between two word characters
//!   stays inside the word (`isn't`, `Emily's`, `never-ending`), as does `.` or `,` between two
//!   digits (`3.5`, `1,000`).
//! - An apostrophe that starts a clitic and follows a space is part of that clitic: SST writes
//!   `it 's`, `you 're`, `i 've`, and `'s` must be one token for negation to see the copula. `n't`
//!   is a word by the first rule.
//! - Anything else that is not white space is punctuation, one token per run of the same
//!   character (`...`, `--`, `` `` ``), with any combining marks, variation selectors or joiners
//!   after it attached, so emoji sequences are not torn apart more than need be.
//!
//! Every index is a char boundary by construction, so no input can make slicing panic.

use std::ops::Range;

/// Whether a token is a word or punctuation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Letters and digits, with inner apostrophes and hyphens, or a split clitic (`'s`).
    Word,
    /// A run of one punctuation or symbol character, with any marks joined to it.
    Punct,
}

/// One token: its kind and its byte span in the text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Word or punctuation.
    pub kind: TokenKind,
    /// Byte offset of the first byte (a char boundary).
    pub start: usize,
    /// Byte offset one past the last byte (a char boundary).
    pub end: usize,
}

impl Token {
    /// The token's text in `source`, which must be the text it was tokenised from.
    pub fn text<'a>(&self, source: &'a str) -> &'a str {
        &source[self.start..self.end]
    }

    /// The token's byte range in its source text.
    pub fn span(&self) -> Range<usize> {
        self.start..self.end
    }

    /// Whether the token is a word rather than punctuation.
    pub fn is_word(&self) -> bool {
        self.kind == TokenKind::Word
    }
}

/// Clitics that SST splits off with a space before them (`it 's`, `they 're`).
const CLITICS: [&str; 6] = ["s", "re", "ve", "ll", "d", "m"];

/// Split `text` into word and punctuation tokens, in order, white space dropped.
pub fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let end_of = |i: usize| chars.get(i).map_or(text.len(), |&(at, _)| at);
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if is_word_char(c) {
            let mut j = i + 1;
            while j < chars.len() {
                let d = chars[j].1;
                if is_word_char(d) {
                    j += 1;
                } else if joins_word(chars[j - 1].1, d, chars.get(j + 1).map(|&(_, n)| n)) {
                    j += 2;
                } else {
                    break;
                }
            }
            tokens.push(Token {
                kind: TokenKind::Word,
                start,
                end: end_of(j),
            });
            i = j;
            continue;
        }
        if is_apostrophe(c) && (i == 0 || chars[i - 1].1.is_whitespace()) {
            let mut j = i + 1;
            while j < chars.len() && chars[j].1.is_alphabetic() {
                j += 1;
            }
            let after_ok = chars.get(j).is_none_or(|&(_, d)| !is_word_char(d));
            let clitic = &text[end_of(i + 1)..end_of(j)];
            if j > i + 1 && after_ok && CLITICS.iter().any(|k| clitic.eq_ignore_ascii_case(k)) {
                tokens.push(Token {
                    kind: TokenKind::Word,
                    start,
                    end: end_of(j),
                });
                i = j;
                continue;
            }
        }
        let mut j = i + 1;
        loop {
            match chars.get(j) {
                Some(&(_, d)) if d == c || is_extender(d) => j += 1,
                // A zero-width joiner glues the next character on (emoji sequences).
                Some(&(_, '\u{200D}')) => {
                    j += match chars.get(j + 1) {
                        Some(&(_, n)) if !n.is_whitespace() => 2,
                        _ => 1,
                    }
                }
                _ => break,
            }
        }
        tokens.push(Token {
            kind: TokenKind::Punct,
            start,
            end: end_of(j),
        });
        i = j;
    }
    tokens
}

/// The tokens' texts joined by single spaces: how shuffled text is written out.
pub fn join_spaced<'a>(source: &str, tokens: impl IntoIterator<Item = &'a Token>) -> String {
    let mut out = String::with_capacity(source.len() + 8);
    for token in tokens {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(token.text(source));
    }
    out
}

/// Replace byte ranges of `source`; edits must not overlap and may come in any order.
pub fn splice(source: &str, edits: &mut [(Range<usize>, String)]) -> String {
    edits.sort_by_key(|(range, _)| (range.start, range.end));
    let mut out = String::with_capacity(source.len() + 16);
    let mut at = 0;
    for (range, replacement) in edits.iter() {
        debug_assert!(range.start >= at, "overlapping edits");
        out.push_str(&source[at..range.start]);
        out.push_str(replacement);
        at = range.end;
    }
    out.push_str(&source[at..]);
    out
}

/// A straight or typographic (`’`) apostrophe.
fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

/// How a word is capitalised, so a replacement can be written the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// No upper-case letter.
    Lower,
    /// First letter upper, the rest not (`Emily`, and `I`).
    Capitalised,
    /// Two or more letters, all upper.
    Upper,
    /// Anything else (mixed case such as `McDonald`, or no letters at all).
    Other,
}

/// How `word`'s letters are capitalised.
pub fn case_of(word: &str) -> Case {
    let mut letters = word.chars().filter(|c| c.is_alphabetic());
    let Some(first) = letters.next() else {
        return Case::Other;
    };
    let (mut rest, mut rest_upper, mut rest_lower) = (0, true, true);
    for c in letters {
        rest += 1;
        rest_upper &= !c.is_lowercase();
        rest_lower &= !c.is_uppercase();
    }
    if !first.is_uppercase() {
        if rest_lower { Case::Lower } else { Case::Other }
    } else if rest > 0 && rest_upper {
        Case::Upper
    } else if rest_lower {
        Case::Capitalised
    } else {
        Case::Other
    }
}

/// Write `word` (given in any case) in `case`; `Other` leaves it as given.
pub fn with_case(word: &str, case: Case) -> String {
    match case {
        Case::Lower => word.to_lowercase(),
        Case::Upper => word.to_uppercase(),
        Case::Capitalised => {
            let lower = word.to_lowercase();
            let mut chars = lower.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => lower,
            }
        }
        Case::Other => word.to_string(),
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_combining_mark(c)
}

/// Whether `joiner` between `before` and `after` keeps one word together.
fn joins_word(before: char, joiner: char, after: Option<char>) -> bool {
    let Some(after) = after else {
        return false;
    };
    if !is_word_char(after) {
        return false;
    }
    match joiner {
        '\'' | '\u{2019}' | '-' => true,
        '.' | ',' => before.is_ascii_digit() && after.is_ascii_digit(),
        _ => false,
    }
}

/// The common combining-mark blocks; std has no general-category lookup, and a mark missed
/// here only costs a split token, never a panic.
fn is_combining_mark(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{0483}'..='\u{0489}'
        | '\u{0591}'..='\u{05BD}'
        | '\u{0610}'..='\u{061A}'
        | '\u{064B}'..='\u{065F}'
        | '\u{0900}'..='\u{0903}'
        | '\u{093A}'..='\u{094F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE20}'..='\u{FE2F}')
}

/// Characters that only modify the one before them: marks, variation selectors, skin tones.
fn is_extender(c: char) -> bool {
    is_combining_mark(c)
        || matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{1F3FB}'..='\u{1F3FF}' | '\u{E0020}'..='\u{E007F}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn texts(s: &str) -> Vec<&str> {
        tokenize(s).iter().map(|t| t.text(s)).collect()
    }

    #[test]
    fn splits_words_and_punctuation() {
        assert_eq!(
            texts("Emily's film isn't bad, it's 3.5/5..."),
            [
                "Emily's", "film", "isn't", "bad", ",", "it's", "3.5", "/", "5", "..."
            ]
        );
    }

    #[test]
    fn keeps_sst_clitics_whole() {
        assert_eq!(
            texts("it 's a charming and often affecting journey . "),
            [
                "it",
                "'s",
                "a",
                "charming",
                "and",
                "often",
                "affecting",
                "journey",
                "."
            ]
        );
        assert_eq!(
            texts("the movie is n't funny ."),
            ["the", "movie", "is", "n't", "funny", "."]
        );
        assert_eq!(texts("ca n't , wo n't"), ["ca", "n't", ",", "wo", "n't"]);
        assert_eq!(texts("`` so '' 'sup"), ["``", "so", "''", "'", "sup"]);
    }

    #[test]
    fn hyphens_join_words_only_between_letters() {
        assert_eq!(
            texts("never-ending -lrb- a -"),
            ["never-ending", "-", "lrb", "-", "a", "-"]
        );
    }

    #[test]
    fn case_round_trips() {
        assert_eq!(case_of("emily"), Case::Lower);
        assert_eq!(case_of("Emily"), Case::Capitalised);
        assert_eq!(case_of("EMILY"), Case::Upper);
        assert_eq!(case_of("McDonald"), Case::Other);
        assert_eq!(case_of("I"), Case::Capitalised);
        assert_eq!(with_case("jamal", Case::Capitalised), "Jamal");
        assert_eq!(with_case("Jamal", Case::Upper), "JAMAL");
    }

    #[test]
    fn splice_applies_edits_in_any_order() {
        let s = "the film works .";
        let mut edits = vec![
            (9..14, "does not work".to_string()),
            (0..3, "The".to_string()),
        ];
        assert_eq!(splice(s, &mut edits), "The film does not work .");
    }

    proptest! {
        #[test]
        fn spans_cover_all_non_space_text(s in ".*") {
            let tokens = tokenize(&s);
            let mut at = 0;
            for t in &tokens {
                prop_assert!(t.start < t.end);
                prop_assert!(s[at..t.start].chars().all(char::is_whitespace));
                at = t.end;
            }
            prop_assert!(s[at..].chars().all(char::is_whitespace));
        }

        #[test]
        fn ascii_words_match_a_simple_split(words in proptest::collection::vec("[a-z]{1,6}", 0..10)) {
            let s = words.join(" ");
            prop_assert_eq!(texts(&s), words.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }
}
