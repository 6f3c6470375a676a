//! Which vocabulary entries a trigger may use, and how words and ids are looked up.
//!
//! The filter is the attack's definition of a fair trigger: no special tokens (listed or
//! bracketed), by default whole words only, no numbers, and nothing from the stop words, the
//! label names or the exclusion lists (with the word piece each excluded word starts with, so
//! that a word the vocabulary splits cannot come back as its first piece). It is kept apart
//! from the search because it depends only on the tokenizer, and is tested on WordPiece,
//! SentencePiece and byte-level vocabularies without a model.

use std::collections::HashSet;

use super::config::{ExclusionList, TriggerConfig};
use crate::model::tokenize::WordMarker;
use crate::model::{Classifier, ModelError};

/// What a vocabulary entry is, as the tokenizer that owns it says: which ids are special, and
/// how a word's first piece is marked (`##` continuations for WordPiece, `▁` / `Ġ` word starts
/// for SentencePiece and byte-level BPE).
pub(crate) struct VocabularyKind<'a> {
    pub special_ids: &'a HashSet<u32>,
    pub marker: &'a WordMarker,
}

/// Token ids a trigger may use: no special tokens, and by default only whole words (a word's
/// first piece), no numbers and no stop words. Words are compared with the stop words and
/// label names after the word marker is stripped and case folded.
pub(crate) fn allowed_tokens(
    vocab: &[(u32, String)],
    kind: &VocabularyKind,
    config: &TriggerConfig,
    label_words: &[String],
) -> Vec<u32> {
    let stop: HashSet<String> = config
        .stop_words
        .iter()
        .chain(label_words)
        .map(|w| kind.marker.bare(w).0.to_lowercase())
        .collect();
    let mut ids: Vec<u32> = vocab
        .iter()
        .filter(|(id, tok)| {
            // Bracketed entries are specials too where the tokenizer does not list them
            // (BERT's `[unused0]` ... `[unused993]`).
            let special =
                kind.special_ids.contains(id) || (tok.starts_with('[') && tok.ends_with(']'));
            let (word, starts_word) = kind.marker.bare(tok);
            let number = word.chars().any(|c| c.is_ascii_digit());
            !word.trim().is_empty()
                && !special
                && (config.allow_subwords || starts_word)
                && (config.allow_numbers || !number)
                && !stop.contains(&word.to_lowercase())
        })
        .map(|(id, _)| *id)
        .collect();
    ids.sort_unstable();
    ids
}

/// The vocabulary as `(id, token)`, sorted by id (so that [`token_of`] can search it).
pub(crate) fn sorted_vocabulary(classifier: &Classifier) -> Vec<(u32, String)> {
    let mut v: Vec<(u32, String)> = classifier
        .encoder()
        .tokenizer()
        .get_vocab(true)
        .into_iter()
        .map(|(t, id)| (id, t))
        .collect();
    v.sort();
    v
}

/// The vocabulary entry of `id`, or `[id]` for an id the vocabulary lacks.
pub(crate) fn token_of(vocab: &[(u32, String)], id: u32) -> String {
    vocab
        .binary_search_by_key(&id, |(i, _)| *i)
        .map(|k| vocab[k].1.clone())
        .unwrap_or_else(|_| format!("[{id}]"))
}

/// A word as one vocabulary entry: with its word-start marker (`▁the`, `Ġthe`) where the
/// vocabulary marks word starts, else as it is written.
pub(crate) fn word_id(classifier: &Classifier, marker: &WordMarker, word: &str) -> Option<u32> {
    let encoder = classifier.encoder();
    match marker {
        WordMarker::Start(m) => encoder
            .token_to_id(&format!("{m}{word}"))
            .or_else(|| encoder.token_to_id(word)),
        _ => encoder.token_to_id(word),
    }
}

/// Stop words for the exclusion lists: each listed word, and the word piece that starts it
/// (a word the vocabulary splits, such as "unwatchable", must not come back as its first
/// piece).
pub(crate) fn exclusion_stop_words(
    classifier: &Classifier,
    lists: &[ExclusionList],
    special_ids: &HashSet<u32>,
) -> Result<Vec<String>, ModelError> {
    let words: Vec<&str> = lists
        .iter()
        .flat_map(|l| l.words.iter().map(String::as_str))
        .collect();
    let encoded = classifier.encode(&words)?;
    let mut stop: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    for e in encoded {
        if let Some(first) = e.input.ids.iter().find(|id| !special_ids.contains(id))
            && let Some(piece) = classifier.encoder().id_to_token(*first)
        {
            stop.push(piece);
        }
    }
    Ok(stop)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::{TriggerConfig, VocabularyKind, WordMarker, allowed_tokens};

    #[test]
    fn special_tokens_are_never_allowed() {
        let vocab: Vec<(u32, String)> = [
            "[PAD]",
            "[CLS]",
            "[unused3]",
            "good",
            "##ing",
            "42",
            "film",
            "positive",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| (i as u32, t.to_string()))
        .collect();
        let specials = HashSet::from([0, 1]);
        let marker = WordMarker::Continuation("##".into());
        let kind = VocabularyKind {
            special_ids: &specials,
            marker: &marker,
        };
        let allowed = allowed_tokens(
            &vocab,
            &kind,
            &TriggerConfig::default(),
            &["positive".into()],
        );
        assert_eq!(allowed, vec![3, 6]);
    }

    /// Issue 15: on ALBERT, XLM-R and RoBERTa the candidate pool held `<s> </s> <pad> <unk>
    /// <mask>`, the label word `▁positive` and mid-word pieces.
    #[test]
    fn sentencepiece_and_byte_level_vocabularies_offer_whole_words_only() {
        let sentencepiece: Vec<(u32, String)> = [
            "<s>",
            "</s>",
            "<pad>",
            "▁good",
            "ing",
            "▁positive",
            "▁",
            "▁film",
            "<mask>",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| (i as u32, t.to_string()))
        .collect();
        let specials = HashSet::from([0, 1, 2, 8]);
        let marker = WordMarker::Start('▁');
        let kind = VocabularyKind {
            special_ids: &specials,
            marker: &marker,
        };
        let labels = ["positive".to_string(), "negative".into()];
        let allowed = allowed_tokens(&sentencepiece, &kind, &TriggerConfig::default(), &labels);
        assert_eq!(allowed, vec![3, 7]);

        let byte_level: Vec<(u32, String)> = ["<s>", "Ġgood", "ing", "ĠPositive", "Ġfilm", "Ġ42"]
            .iter()
            .enumerate()
            .map(|(i, t)| (i as u32, t.to_string()))
            .collect();
        let specials = HashSet::from([0]);
        let marker = WordMarker::Start('Ġ');
        let kind = VocabularyKind {
            special_ids: &specials,
            marker: &marker,
        };
        let mut config = TriggerConfig::default();
        config.stop_words.push("Ġfilm".into());
        let allowed = allowed_tokens(&byte_level, &kind, &config, &labels);
        assert_eq!(allowed, vec![1]);
    }
}
