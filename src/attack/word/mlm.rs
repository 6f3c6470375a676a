//! Masked-LM proposals (BAE-R, Garg & Ramakrishnan 2020; BERT-Attack, Li et al. 2020): the
//! word is masked and a fill-mask model proposes what goes there.
//!
//! Why capped and whole-word: BERT-Attack expands a word of several pieces into every
//! combination of each piece's top-K proposals, which is where its two hours an example come
//! from (TextAttack #586). Here a word, of however many pieces, becomes one mask, and of the
//! model's proposals at that mask only whole words (a piece that starts a word and is made of
//! letters) are kept, best first, up to `limit`: K candidates a word, never K to the power of
//! its pieces. The fill-mask model is any fill-mask folder (`models/minilm-mlm` by default); it
//! is not the attacked model, and its rows are not the attack's queries.

use std::sync::Mutex;

use rand_chacha::ChaCha8Rng;

use super::Transformation;
use super::text::{Sentence, cased_like};
use crate::model::ModelError;
use crate::model::fill_mask::MaskedLm;
use crate::model::tokenize::WordMarker;

/// The masked-LM transformation (see the module docs).
pub struct MaskedProposals {
    /// The fill-mask model (behind a lock: row attacks are shared by reference).
    model: Mutex<MaskedLm>,
    /// The mask token as text (`[MASK]`, `<mask>`).
    mask: String,
    marker: WordMarker,
    /// Proposals kept per word.
    limit: usize,
}

impl MaskedProposals {
    /// Proposals from `model`, at most `limit` a word.
    pub fn new(model: MaskedLm, limit: usize) -> Result<Self, ModelError> {
        let mask = model
            .encoder()
            .id_to_token(model.mask_id())
            .unwrap_or_else(|| "[MASK]".to_string());
        let marker = model.encoder().word_marker();
        Ok(Self {
            model: Mutex::new(model),
            mask,
            marker,
            limit,
        })
    }

    /// Rows the fill-mask model has run.
    pub fn model_rows(&self) -> u64 {
        self.model
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .stats()
            .model_queries
    }
}

impl Transformation for MaskedProposals {
    fn replacements(
        &self,
        sentence: &Sentence,
        index: usize,
        _rng: &mut ChaCha8Rng,
    ) -> Result<Vec<String>, ModelError> {
        let masked = sentence.with(index, &self.mask);
        let mut model = self
            .model
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let encoded = model.encoder().encode_batch(&[masked.text()])?;
        let Some(input) = encoded.into_iter().next().map(|e| e.input) else {
            return Ok(Vec::new());
        };
        // Truncation may have cut the mask off a long text: nothing to propose then.
        let mask_id = model.mask_id();
        if !input.ids.contains(&mask_id) {
            return Ok(Vec::new());
        }
        let rows = model.mask_log_probs(std::slice::from_ref(&input))?;
        let Some(log_probs) = rows.first().and_then(|masks| masks.first()) else {
            return Ok(Vec::new());
        };
        let mut order: Vec<usize> = (0..log_probs.len()).collect();
        // Best first; equal scores by id, so the order never depends on the sort.
        order.sort_by(|&a, &b| {
            log_probs[b]
                .partial_cmp(&log_probs[a])
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.cmp(&b))
        });
        let original = sentence.original_word(index);
        let current = sentence.word(index).to_lowercase();
        let special = model.encoder().special_ids();
        let mut out: Vec<String> = Vec::new();
        for id in order {
            if out.len() >= self.limit {
                break;
            }
            if special.contains(&(id as u32)) {
                continue;
            }
            let Some(token) = model.encoder().id_to_token(id as u32) else {
                continue;
            };
            let (bare, starts_word) = self.marker.bare(&token);
            if !starts_word
                || bare.is_empty()
                || !bare.chars().all(char::is_alphabetic)
                || bare.to_lowercase() == current
            {
                continue;
            }
            let word = cased_like(bare, original);
            if !out.contains(&word) {
                out.push(word);
            }
        }
        Ok(out)
    }
}
