//! Character edits (DeepWordBug, Gao et al. 2018; TextBugger, Li et al. 2019): a word with two
//! neighbouring letters swapped, one substituted, deleted or inserted.
//!
//! Each edit type draws `per_edit` random edits of the word from the example's own stream, as
//! TextAttack's `random_one` character swaps draw one, so a step of the search asks the model
//! about a handful of candidates, not about every possible misspelling. A substitution takes a
//! neighbouring key on a QWERTY keyboard when `keyboard` is set (a plausible typo) and any letter
//! otherwise; `confusables` adds look-alike Unicode letters (Cyrillic `а` for Latin `a`), which
//! a tokenizer reads as unknown pieces while a person reads the same word.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::Transformation;
use super::text::Sentence;
use crate::model::ModelError;

/// One kind of character edit.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Edit {
    /// Two neighbouring characters swapped.
    Swap,
    /// One character replaced.
    Substitute,
    /// One character removed.
    Delete,
    /// One character inserted.
    Insert,
}

impl Edit {
    /// Every edit, in the order they are drawn.
    pub const ALL: [Edit; 4] = [Edit::Swap, Edit::Substitute, Edit::Delete, Edit::Insert];

    /// The name recipes and flags use.
    pub fn as_str(self) -> &'static str {
        match self {
            Edit::Swap => "swap",
            Edit::Substitute => "substitute",
            Edit::Delete => "delete",
            Edit::Insert => "insert",
        }
    }
}

/// The character-edit transformation (see the module docs).
#[derive(Debug, Clone)]
pub struct Typo {
    /// The edit types drawn, in order.
    pub edits: Vec<Edit>,
    /// Random edits drawn per edit type and word.
    pub per_edit: usize,
    /// Substitutions take neighbouring keys.
    pub keyboard: bool,
    /// Substitutions may also take look-alike Unicode letters.
    pub confusables: bool,
}

const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";

/// QWERTY neighbours of a lower-case letter.
fn neighbours(c: char) -> &'static str {
    match c {
        'q' => "wa",
        'w' => "qeas",
        'e' => "wrsd",
        'r' => "etdf",
        't' => "ryfg",
        'y' => "tugh",
        'u' => "yihj",
        'i' => "uojk",
        'o' => "ipkl",
        'p' => "ol",
        'a' => "qwsz",
        's' => "awedxz",
        'd' => "serfcx",
        'f' => "drtgvc",
        'g' => "ftyhbv",
        'h' => "gyujnb",
        'j' => "huikmn",
        'k' => "jiolm",
        'l' => "kop",
        'z' => "asx",
        'x' => "zsdc",
        'c' => "xdfv",
        'v' => "cfgb",
        'b' => "vghn",
        'n' => "bhjm",
        'm' => "njk",
        _ => "",
    }
}

/// Look-alike letters from other scripts (Unicode's confusables for the Latin lower case).
fn confusable(c: char) -> Option<char> {
    Some(match c {
        'a' => 'а',
        'c' => 'с',
        'e' => 'е',
        'i' => 'і',
        'j' => 'ј',
        'o' => 'о',
        'p' => 'р',
        's' => 'ѕ',
        'x' => 'х',
        'y' => 'у',
        _ => return None,
    })
}

fn random_letter(rng: &mut ChaCha8Rng) -> char {
    LETTERS[rng.random_range(0..LETTERS.len())] as char
}

impl Typo {
    /// One random edit of `word` of type `edit`, or `None` where the word is too short for it.
    fn draw(&self, word: &[char], edit: Edit, rng: &mut ChaCha8Rng) -> Option<String> {
        let n = word.len();
        let mut w = word.to_vec();
        match edit {
            Edit::Swap => {
                if n < 2 {
                    return None;
                }
                let i = rng.random_range(0..n - 1);
                w.swap(i, i + 1);
            }
            Edit::Substitute => {
                let i = rng.random_range(0..n);
                let lower = w[i].to_ascii_lowercase();
                let mut options: Vec<char> = Vec::new();
                if self.keyboard {
                    options.extend(neighbours(lower).chars());
                }
                if self.confusables {
                    options.extend(confusable(lower));
                }
                let c = if options.is_empty() {
                    random_letter(rng)
                } else {
                    options[rng.random_range(0..options.len())]
                };
                w[i] = if w[i].is_uppercase() {
                    c.to_uppercase().next().unwrap_or(c)
                } else {
                    c
                };
            }
            Edit::Delete => {
                if n < 2 {
                    return None;
                }
                w.remove(rng.random_range(0..n));
            }
            Edit::Insert => {
                let i = rng.random_range(0..=n);
                w.insert(i, random_letter(rng));
            }
        }
        Some(w.into_iter().collect())
    }
}

impl Transformation for Typo {
    fn replacements(
        &self,
        sentence: &Sentence,
        index: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<String>, ModelError> {
        let word: Vec<char> = sentence.word(index).chars().collect();
        let mut out: Vec<String> = Vec::new();
        for &edit in &self.edits {
            for _ in 0..self.per_edit {
                if let Some(w) = self.draw(&word, edit, rng)
                    && !out.contains(&w)
                {
                    out.push(w);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::word::text::edit_distance;
    use rand::SeedableRng;

    #[test]
    fn each_edit_is_one_character_operation_and_draws_repeat_under_a_seed() {
        let typo = Typo {
            edits: Edit::ALL.to_vec(),
            per_edit: 3,
            keyboard: true,
            confusables: false,
        };
        let s = Sentence::new("a wonderful film");
        let draw = |seed| {
            typo.replacements(&s, 1, &mut ChaCha8Rng::seed_from_u64(seed))
                .unwrap()
        };
        let words = draw(7);
        assert_eq!(words, draw(7));
        assert!(!words.is_empty() && words.len() <= 12);
        for w in &words {
            assert_ne!(w, "wonderful");
            // A swap of two neighbours is two single-character edits; the others are one.
            assert!(edit_distance("wonderful", w) <= 2, "{w}");
        }
    }

    #[test]
    fn confusables_look_the_same_and_are_other_characters() {
        let typo = Typo {
            edits: vec![Edit::Substitute],
            per_edit: 20,
            keyboard: false,
            confusables: true,
        };
        let s = Sentence::new("ocean");
        let words = typo
            .replacements(&s, 0, &mut ChaCha8Rng::seed_from_u64(1))
            .unwrap();
        assert!(words.iter().any(|w| !w.is_ascii()));
        // A one-letter word has no swap or deletion.
        let one = Typo {
            edits: vec![Edit::Swap, Edit::Delete],
            per_edit: 2,
            keyboard: true,
            confusables: false,
        };
        let s = Sentence::new("a");
        assert!(
            one.replacements(&s, 0, &mut ChaCha8Rng::seed_from_u64(1))
                .unwrap()
                .is_empty()
        );
    }
}
