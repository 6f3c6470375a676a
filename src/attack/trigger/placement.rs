//! Where a trigger goes and what it is scored by: the one placement (`[CLS] trigger text
//! [SEP]` or `[CLS] text trigger [SEP]`) and the one loss that the exact forward passes, the
//! gradient estimates and the trace all share, so that every part of the search measures the
//! same thing.

use super::config::{Position, TriggerConfig};
use crate::model::tokenize::TokenIds;
use crate::model::{Classifier, ModelError};

/// A search example: its tokens without special tokens, and its gold label.
#[derive(Debug, Clone)]
pub(crate) struct SearchExample {
    pub ids: Vec<u32>,
    pub gold: usize,
}

/// Special ids around a sequence: `[CLS] ... [SEP]` for BERT.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Specials {
    pub cls: u32,
    pub sep: u32,
}

/// Place a trigger in an example: `[CLS] trigger text [SEP]` or `[CLS] text trigger [SEP]`.
/// Returns the ids and the positions the trigger occupies.
pub(crate) fn with_trigger(
    specials: Specials,
    position: Position,
    trigger: &[u32],
    text: &[u32],
) -> (Vec<u32>, usize) {
    let mut ids = Vec::with_capacity(text.len() + trigger.len() + 2);
    ids.push(specials.cls);
    let start = match position {
        Position::Prefix => {
            ids.extend_from_slice(trigger);
            ids.extend_from_slice(text);
            1
        }
        Position::Suffix => {
            ids.extend_from_slice(text);
            ids.extend_from_slice(trigger);
            1 + text.len()
        }
    };
    ids.push(specials.sep);
    (ids, start)
}

/// Mean loss of a batch: targeted `-log p(target)`, untargeted `log p(gold)`; lower is better
/// for the attacker either way.
pub(crate) fn loss_of(logits: &[f32], gold: usize, target: Option<usize>) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = f64::from(max)
        + logits
            .iter()
            .map(|&l| f64::from(l - max).exp())
            .sum::<f64>()
            .ln();
    match target {
        Some(t) => lse - f64::from(logits[t]),
        None => f64::from(logits[gold]) - lse,
    }
}

/// Exact mean loss of each trigger on a batch, in one batched request, so that repeated rows
/// are cache hits and cost no query.
pub(crate) fn mean_losses(
    classifier: &mut Classifier,
    specials: Specials,
    config: &TriggerConfig,
    triggers: &[Vec<u32>],
    batch: &[SearchExample],
) -> Result<Vec<f64>, ModelError> {
    let mut inputs = Vec::with_capacity(triggers.len() * batch.len());
    for t in triggers {
        for ex in batch {
            inputs.push(TokenIds::single(
                with_trigger(specials, config.position, t, &ex.ids).0,
            ));
        }
    }
    let logits = classifier.logits(&inputs, &mut |_, _| {})?;
    Ok(logits
        .chunks(batch.len().max(1))
        .map(|rows| {
            rows.iter()
                .zip(batch)
                .map(|(l, ex)| loss_of(l, ex.gold, config.target))
                .sum::<f64>()
                / batch.len().max(1) as f64
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::{Position, Specials, loss_of, with_trigger};

    #[test]
    fn trigger_placement() {
        let s = Specials { cls: 101, sep: 102 };
        assert_eq!(
            with_trigger(s, Position::Prefix, &[7, 8], &[1, 2, 3]),
            (vec![101, 7, 8, 1, 2, 3, 102], 1)
        );
        assert_eq!(
            with_trigger(s, Position::Suffix, &[7, 8], &[1, 2, 3]),
            (vec![101, 1, 2, 3, 7, 8, 102], 4)
        );
    }

    #[test]
    fn losses_point_the_right_way() {
        // Targeted: confident in the target -> small loss.
        assert!(loss_of(&[0.0, 5.0], 0, Some(1)) < loss_of(&[5.0, 0.0], 0, Some(1)));
        // Untargeted: confident in gold -> large loss (the attacker wants it small).
        assert!(loss_of(&[5.0, 0.0], 0, None) > loss_of(&[0.0, 5.0], 0, None));
    }
}
