//! The estimate HotFlip ranks with: the trigger placed in every example of the batch, a
//! [`GradientEstimator`](super::estimators::GradientEstimator) run on the embedding-input
//! graph, and the shrinkage the configuration asks for.
//!
//! This is the one place where the estimators meet the model and the shrinkage; the tests
//! here hold the whole pipeline against gradients measured coordinate by coordinate on a
//! small ONNX model.

use rand_chacha::ChaCha8Rng;

use super::config::TriggerConfig;
use super::estimators::{Placed, Probe, estimator_for};
use super::placement::{SearchExample, Specials, with_trigger};
use super::shrink::{Shrunk, shrink_as};
use crate::model::embed::{EmbedError, EmbeddingModel};

/// Finite-difference estimate of d(mean loss)/d(trigger embeddings), `length x hidden`,
/// shrunk as `config` says (toward `previous`, the last iteration's estimate, with
/// [`Shrinkage::History`](super::config::Shrinkage::History)); with what the shrinkage kept,
/// unless it is `Shrinkage::None`.
pub(crate) fn estimate(
    embedded: &mut EmbeddingModel,
    config: &TriggerConfig,
    specials: Specials,
    trigger: &[u32],
    batch: &[SearchExample],
    previous: Option<&[f32]>,
    rng: &mut ChaCha8Rng,
) -> Result<(Vec<f32>, Option<Shrunk>), EmbedError> {
    let hidden = embedded.hidden();
    let length = trigger.len();
    let sigma = config.sigma * embedded.table_rms();
    let placed: Vec<Placed> = batch
        .iter()
        .map(|ex| {
            let (ids, start) = with_trigger(specials, config.position, trigger, &ex.ids);
            let embeddings = embedded.embed(&ids);
            Placed {
                ids,
                start,
                embeddings,
            }
        })
        .collect();
    let probe = Probe {
        placed: &placed,
        batch,
        length,
        hidden,
        sigma,
        target: config.target,
    };
    let raw = estimator_for(config).estimate(&probe, &mut |rows| embedded.logits(rows), rng)?;
    Ok(shrink_as(config.shrinkage, raw, length, hidden, previous))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::estimate;
    use crate::attack::trigger::config::{Estimator, Position, Shrinkage, TriggerConfig};
    use crate::attack::trigger::estimators::gaussian;
    use crate::attack::trigger::placement::{SearchExample, Specials, loss_of, with_trigger};
    use crate::attack::trigger::proposals::hotflip;
    use crate::model::Classifier;
    use crate::model::embed::{EmbeddedRow, EmbeddingModel};

    /// A bag-of-embeddings model folder whose gradient is easy to check.
    fn small_model(dir: &std::path::Path) -> (usize, usize) {
        let (vocab, hidden, labels) = (12usize, 4usize, 2usize);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let table = gaussian(&mut rng, vocab * hidden);
        let weights = gaussian(&mut rng, hidden * labels);
        let bytes = crate::onnx::build::bag_classifier(&table, vocab, hidden, &weights, labels);
        std::fs::write(dir.join("model.onnx"), bytes).unwrap();
        let words: Vec<String> = (0..vocab)
            .map(|i| match i {
                0 => "[PAD]".to_string(),
                1 => "[CLS]".to_string(),
                2 => "[SEP]".to_string(),
                3 => "[UNK]".to_string(),
                i => format!("w{i}"),
            })
            .collect();
        let vocab_json: serde_json::Map<String, serde_json::Value> = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), serde_json::json!(i)))
            .collect();
        let tokenizer = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null,
            "decoder": null, "model": {"type": "WordLevel", "vocab": vocab_json, "unk_token": "[UNK]"}
        });
        std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
        std::fs::write(
            dir.join("config.json"),
            r#"{"id2label": {"0": "neg", "1": "pos"}, "max_position_embeddings": 64}"#,
        )
        .unwrap();
        (vocab, hidden)
    }

    /// Cosines between finite-difference estimates (one per seed in `seeds`) and the gradient
    /// measured coordinate by coordinate, on a bag-of-embeddings model built in the test; and
    /// whether HotFlip's candidates from the first estimate are allowed tokens.
    fn estimate_cosines(
        directions: usize,
        estimator: Estimator,
        shrinkage: Shrinkage,
        seeds: std::ops::Range<u64>,
    ) -> Vec<f64> {
        let dir = tempfile::tempdir().unwrap();
        let (_, hidden) = small_model(dir.path());
        let options = crate::model::InferenceOptions {
            threads: 1,
            cache_capacity: 0,
            ..Default::default()
        };
        let classifier = Classifier::load(dir.path(), options.clone()).unwrap();
        let mut embedded = EmbeddingModel::load(classifier.info(), &options).unwrap();
        let config = TriggerConfig {
            directions,
            estimator,
            shrinkage,
            sigma: 0.05,
            target: Some(1),
            ..TriggerConfig::default()
        };
        let batch: Vec<SearchExample> = [vec![4, 5, 6], vec![7, 8], vec![9, 10, 11, 4], vec![6, 6]]
            .into_iter()
            .map(|ids| SearchExample { ids, gold: 0 })
            .collect();
        let trigger = vec![5u32, 6, 7];
        let specials = Specials { cls: 1, sep: 2 };
        // Reference: central differences along each coordinate of the trigger embeddings.
        let mut loss_at = |k: usize, delta: f32| {
            let rows: Vec<EmbeddedRow> = batch
                .iter()
                .map(|ex| {
                    let (ids, start) = with_trigger(specials, Position::Prefix, &trigger, &ex.ids);
                    let mut e = embedded.embed(&ids);
                    e[start * hidden + k] += delta;
                    EmbeddedRow {
                        type_ids: vec![0; ids.len()],
                        ids,
                        embeddings: e,
                    }
                })
                .collect();
            let logits = embedded.logits(&rows).unwrap();
            logits.iter().map(|l| loss_of(l, 0, Some(1))).sum::<f64>() / batch.len() as f64
        };
        let eps = 1e-2;
        let reference: Vec<f64> = (0..trigger.len() * hidden)
            .map(|k| (loss_at(k, eps) - loss_at(k, -eps)) / (2.0 * f64::from(eps)))
            .collect();
        let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
        let allowed: Vec<u32> = (4..12).collect();
        seeds
            .map(|seed| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let (estimate, _) = estimate(
                    &mut embedded,
                    &config,
                    specials,
                    &trigger,
                    &batch,
                    None,
                    &mut rng,
                )
                .unwrap();
                let cands = hotflip(&embedded, &trigger, &estimate, &allowed, config.candidates);
                assert!(cands.iter().all(|c| c.iter().all(|w| allowed.contains(w))));
                let dot: f64 = estimate
                    .iter()
                    .zip(&reference)
                    .map(|(&a, &b)| f64::from(a) * b)
                    .sum();
                dot / (norm(&mut estimate.iter().map(|&x| f64::from(x)))
                    * norm(&mut reference.iter().copied()))
            })
            .collect()
    }

    /// Mean cosine over 24 seeds of 2-pair estimates: the comparisons below.
    fn mean_cosine(estimator: Estimator, shrinkage: Shrinkage) -> f64 {
        let cosines = estimate_cosines(2, estimator, shrinkage, 0..24);
        cosines.iter().sum::<f64>() / cosines.len() as f64
    }

    /// The finite-difference estimate points the same way as the gradient measured coordinate
    /// by coordinate, with either estimator (issue #4).
    #[test]
    fn gradient_estimate_has_the_right_direction() {
        for estimator in [
            Estimator::PerExample,
            Estimator::Shared,
            Estimator::OneSided,
        ] {
            let cosine = estimate_cosines(48, estimator, Shrinkage::None, 9..10)[0];
            assert!(
                cosine > 0.8,
                "{estimator:?}: cosine {cosine} between estimate and measured gradient"
            );
        }
    }

    /// Issue 14: at the same rows, fresh directions for every example measure the mean
    /// gradient better than directions shared by the batch, because the examples' gradients
    /// agree (on a bag of embeddings, they point the same way). With 2 direction pairs in 12
    /// dimensions the shared estimate's cosine is about sqrt(2/12) = 0.41; four examples'
    /// fresh directions give about sqrt(8/12) = 0.82.
    #[test]
    fn per_example_directions_estimate_the_mean_gradient_better() {
        let shared = mean_cosine(Estimator::Shared, Shrinkage::None);
        let per_example = mean_cosine(Estimator::PerExample, Shrinkage::None);
        assert!(
            per_example > shared + 0.15,
            "per-example cosine {per_example:.3} is not clearly above shared {shared:.3}"
        );
    }

    /// Issue 14: one-sided differences against a leave-one-out baseline spend one row per
    /// direction where antithetic pairs spend two, so the same rows measure twice the
    /// projections. Measured on MiniLM (benches/compare): cosine 0.69 against 0.56 for 64 pairs.
    #[test]
    fn one_sided_differences_estimate_better_for_the_same_rows() {
        let per_example = mean_cosine(Estimator::PerExample, Shrinkage::None);
        let one_sided = mean_cosine(Estimator::OneSided, Shrinkage::None);
        assert!(
            one_sided > per_example + 0.03,
            "one-sided cosine {one_sided:.3} is not above per-example {per_example:.3}"
        );
    }

    /// Issue 14: on a bag of embeddings every position has the same gradient, so shrinking
    /// toward the positions' mean (by the noise the estimate measures in itself) must bring
    /// the estimate clearly closer to the measured gradient.
    #[test]
    fn shrinking_toward_the_positions_mean_helps_when_positions_agree() {
        let raw = mean_cosine(Estimator::OneSided, Shrinkage::None);
        let shrunk = mean_cosine(Estimator::OneSided, Shrinkage::Positions);
        assert!(
            shrunk > raw + 0.05,
            "shrunk cosine {shrunk:.3} is not clearly above the raw estimate's {raw:.3}"
        );
    }
}
