//! The replacement tokens a beam search tries at each position: HotFlip's ranking by the
//! gradient estimate, or uniformly random tokens (the baseline the ranking must beat at the
//! same budget).
//!
//! Both only propose; every proposal is then scored with exact forward passes, so an estimate
//! that ranks badly costs queries, never a wrong result.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::model::embed::EmbeddingModel;

/// HotFlip: for each position, the `k` allowed tokens with the smallest `(e_w - e_cur) . g`
/// (`e_cur . g` is the same for every `w`, so `e_w . g` ranks alike). Ties go to the smaller
/// id, so that the ranking does not depend on the order of `allowed`.
pub(crate) fn hotflip(
    embedded: &EmbeddingModel,
    trigger: &[u32],
    grad: &[f32],
    allowed: &[u32],
    k: usize,
) -> Vec<Vec<u32>> {
    let h = embedded.hidden();
    (0..trigger.len())
        .map(|p| {
            let g = &grad[p * h..(p + 1) * h];
            let mut scored: Vec<(f32, u32)> = allowed
                .iter()
                .filter(|&&w| w != trigger[p])
                .map(|&w| {
                    (
                        embedded
                            .embedding(w)
                            .iter()
                            .zip(g)
                            .map(|(a, b)| a * b)
                            .sum::<f32>(),
                        w,
                    )
                })
                .collect();
            let k = k.min(scored.len());
            if k == 0 {
                return Vec::new();
            }
            scored.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            scored.truncate(k);
            scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            scored.into_iter().map(|(_, w)| w).collect()
        })
        .collect()
}

/// For each position, `k` distinct allowed tokens other than the current one, drawn
/// uniformly from the search's stream.
pub(crate) fn random(
    trigger: &[u32],
    allowed: &[u32],
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<u32>> {
    (0..trigger.len())
        .map(|p| {
            let mut out = Vec::with_capacity(k);
            while out.len() < k.min(allowed.len().saturating_sub(1)) {
                let w = allowed[rng.random_range(0..allowed.len())];
                if w != trigger[p] && !out.contains(&w) {
                    out.push(w);
                }
            }
            out
        })
        .collect()
}
