//! Shrinkage of a gradient estimate toward what it is expected to share: the mean over the
//! trigger's positions, and the previous iteration's estimate (see [`Shrinkage`] for why
//! James–Stein shrinkage helps whatever the gradient is).
//!
//! Kept apart from the estimators because it needs nothing of them but the estimate and the
//! noise the estimate measures in itself: any estimator's output can be shrunk, and the
//! shrinkage is tested on synthetic noise with a known truth.

use serde::Serialize;

use super::config::Shrinkage;
use super::estimators::Estimate;

/// How much of each part of an estimate [`shrink`] kept (1 = all, 0 = none).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Shrunk {
    /// The estimate's noise variance per coordinate, measured from its two halves.
    pub noise: f64,
    /// Kept of the part that differs between positions.
    pub positions: f64,
    /// Kept of the positions' mean apart from its projection on the previous estimate's
    /// direction (`None` without a previous estimate).
    pub history: Option<f64>,
}

/// An estimate shrunk as `shrinkage` says (toward `previous`, the last iteration's estimate,
/// with [`Shrinkage::History`]); with what the shrinkage kept, unless it is
/// [`Shrinkage::None`].
pub(crate) fn shrink_as(
    shrinkage: Shrinkage,
    estimate: Estimate,
    len: usize,
    h: usize,
    previous: Option<&[f32]>,
) -> (Vec<f32>, Option<Shrunk>) {
    let previous = match shrinkage {
        Shrinkage::None => return (estimate.gradient, None),
        Shrinkage::Positions => None,
        Shrinkage::History => previous,
    };
    let (shrunk, kept) = shrink(&estimate.gradient, len, h, estimate.noise(), previous);
    (shrunk, Some(kept))
}

/// James–Stein shrinkage of a `len x h` gradient estimate whose coordinates carry independent
/// noise of variance `noise` (see [`Shrinkage`]): the part that differs between positions is
/// shrunk toward their mean, and with `previous` that mean toward its projection on the
/// previous estimate's positions' mean. Each part keeps `1 - (dims - 2) noise / |part|^2` of
/// itself (at least 0), `dims` the dimensions it spans: `(len - 1) h` and `h - 1`.
pub(crate) fn shrink(
    grad: &[f32],
    len: usize,
    h: usize,
    noise: f64,
    previous: Option<&[f32]>,
) -> (Vec<f32>, Shrunk) {
    let keep = |dims: usize, part: &[f64]| {
        let norm: f64 = part.iter().map(|x| x * x).sum();
        if dims <= 2 || norm <= 0.0 {
            return 1.0;
        }
        (1.0 - (dims - 2) as f64 * noise / norm).max(0.0)
    };
    let position_mean = |v: &dyn Fn(usize) -> f64| -> Vec<f64> {
        (0..h)
            .map(|j| (0..len).map(|p| v(p * h + j)).sum::<f64>() / len.max(1) as f64)
            .collect()
    };
    let mean = position_mean(&|k| f64::from(grad[k]));
    let apart: Vec<f64> = (0..len * h)
        .map(|k| f64::from(grad[k]) - mean[k % h])
        .collect();
    let positions = keep((len.saturating_sub(1)) * h, &apart);
    // The previous estimate's direction, in the positions' mean: the mean's projection on it
    // is kept whole, the rest shrunk.
    let along = previous.and_then(|prev| {
        let dir = position_mean(&|k| f64::from(prev.get(k).copied().unwrap_or(0.0)));
        let norm = dir.iter().map(|x| x * x).sum::<f64>().sqrt();
        (norm > 0.0).then(|| {
            let unit: Vec<f64> = dir.iter().map(|x| x / norm).collect();
            let dot: f64 = unit.iter().zip(&mean).map(|(u, m)| u * m).sum();
            unit.into_iter().map(|u| dot * u).collect::<Vec<f64>>()
        })
    });
    let (center, history) = match along {
        Some(along) => {
            // In the full `len x h` space the mean is repeated over positions, so its parts'
            // squared norms are `len` times those of the `h` vectors.
            let rest: Vec<f64> = mean
                .iter()
                .zip(&along)
                .flat_map(|(m, a)| std::iter::repeat_n(m - a, len))
                .collect();
            let kept = keep(h.saturating_sub(1), &rest);
            let center: Vec<f64> = mean
                .iter()
                .zip(&along)
                .map(|(m, a)| a + kept * (m - a))
                .collect();
            (center, Some(kept))
        }
        None => (mean, None),
    };
    let out = (0..len * h)
        .map(|k| (center[k % h] + positions * apart[k]) as f32)
        .collect();
    (
        out,
        Shrunk {
            noise,
            positions,
            history,
        },
    )
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::shrink;
    use crate::attack::trigger::estimators::gaussian;

    /// Mean squared error over `draws` noisy copies of `truth` (noise variance `noise` per
    /// coordinate), raw and after [`shrink`] with `previous`.
    fn shrink_errors(
        truth: &[f32],
        len: usize,
        noise: f64,
        previous: Option<&[f32]>,
        draws: u64,
    ) -> (f64, f64) {
        let h = truth.len() / len;
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let (mut raw, mut shrunk) = (0.0, 0.0);
        for _ in 0..draws {
            let estimate: Vec<f32> = truth
                .iter()
                .zip(gaussian(&mut rng, truth.len()))
                .map(|(&t, z)| t + noise.sqrt() as f32 * z)
                .collect();
            let (out, kept) = shrink(&estimate, len, h, noise, previous);
            assert!((0.0..=1.0).contains(&kept.positions));
            let err = |v: &[f32]| {
                v.iter()
                    .zip(truth)
                    .map(|(a, b)| f64::from(a - b).powi(2))
                    .sum::<f64>()
            };
            raw += err(&estimate);
            shrunk += err(&out);
        }
        (raw / draws as f64, shrunk / draws as f64)
    }

    /// A `len x h` gradient whose positions share one Gaussian vector, each coordinate off it by
    /// `spread` times a standard normal draw.
    fn sharing_positions(rng: &mut ChaCha8Rng, len: usize, h: usize, spread: f32) -> Vec<f32> {
        let common = gaussian(rng, h);
        (0..len * h)
            .map(|k| common[k % h] + spread * gaussian(rng, 1)[0])
            .collect()
    }

    /// James–Stein: shrinking toward the positions' mean lowers the squared error a lot when
    /// the positions' gradients share most of themselves, and costs nothing worth the name
    /// when they share nothing.
    #[test]
    fn shrinkage_lowers_the_error_and_never_costs_much() {
        let (len, h) = (3, 64);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let shared = sharing_positions(&mut rng, len, h, 0.2);
        let (raw, shrunk) = shrink_errors(&shared, len, 1.0, None, 200);
        assert!(
            shrunk < 0.6 * raw,
            "shared positions: {shrunk:.1} against raw {raw:.1}"
        );
        let apart = gaussian(&mut rng, len * h);
        let (raw, shrunk) = shrink_errors(&apart, len, 1.0, None, 200);
        assert!(
            shrunk < 1.02 * raw,
            "unrelated positions: {shrunk:.1} against raw {raw:.1}"
        );
    }

    /// A previous estimate that points the way the positions' mean does helps further; one
    /// that points elsewhere costs little against shrinking toward the positions alone.
    #[test]
    fn the_previous_estimate_helps_when_it_agrees() {
        let (len, h) = (3, 64);
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let truth = sharing_positions(&mut rng, len, h, 0.3);
        let (_, positions) = shrink_errors(&truth, len, 1.0, None, 200);
        let agreeing: Vec<f32> = truth
            .iter()
            .map(|&t| t + 0.5 * gaussian(&mut rng, 1)[0])
            .collect();
        let (_, history) = shrink_errors(&truth, len, 1.0, Some(&agreeing), 200);
        assert!(
            history < 0.8 * positions,
            "agreeing history: {history:.1} against positions alone {positions:.1}"
        );
        let elsewhere = gaussian(&mut rng, len * h);
        let (_, history) = shrink_errors(&truth, len, 1.0, Some(&elsewhere), 200);
        assert!(
            history < 1.1 * positions,
            "unrelated history: {history:.1} against positions alone {positions:.1}"
        );
    }
}
