//! Finite-difference estimates of the loss's gradient with respect to the trigger's word
//! embeddings, from forward passes alone (ONNX Runtime has no backward pass).
//!
//! Every estimator perturbs the trigger's embeddings along random Gaussian directions drawn
//! from the search's seeded stream, runs the perturbed rows, and differences their losses. They
//! differ in how they spend the rows (see [`Estimator`]); behind the one
//! [`GradientEstimator`] trait the search neither knows nor cares which it holds, and each can
//! be tested against a forward pass whose gradient is known, without a model. Besides the
//! estimate, each returns the difference of its even and odd directions' halves: the
//! estimate's own noise, which shrinkage weighs it by.
//!
//! The sums are taken in the order, and the precision, of earlier versions, so that a search
//! makes the same estimates (and finds the same trigger) as it did before the estimators were
//! separated.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::config::{Estimator, TriggerConfig};
use super::placement::{SearchExample, loss_of};
use crate::model::embed::{EmbedError, EmbeddedRow};

/// One forward pass over embedded rows: logits per row.
pub(crate) type Forward<'a> = dyn FnMut(&[EmbeddedRow]) -> Result<Vec<Vec<f32>>, EmbedError> + 'a;

/// An example with the trigger placed: its ids, where the trigger starts, and its embeddings
/// (`ids.len() x hidden`).
#[derive(Debug, Clone)]
pub(crate) struct Placed {
    pub ids: Vec<u32>,
    pub start: usize,
    pub embeddings: Vec<f32>,
}

/// What an estimate is measured around: the batch with the trigger placed, and the step.
pub(crate) struct Probe<'a> {
    pub placed: &'a [Placed],
    pub batch: &'a [SearchExample],
    /// Tokens in the trigger.
    pub length: usize,
    pub hidden: usize,
    /// The finite-difference step, in embedding units.
    pub sigma: f32,
    pub target: Option<usize>,
}

impl Probe<'_> {
    fn dims(&self) -> usize {
        self.length * self.hidden
    }

    /// An example's row with the trigger's embeddings moved by `step` along `u`.
    fn row(&self, example: usize, step: f32, u: &[f32]) -> EmbeddedRow {
        let placed = &self.placed[example];
        let offset = placed.start * self.hidden;
        let mut e = placed.embeddings.clone();
        for (v, &x) in e[offset..offset + u.len()].iter_mut().zip(u) {
            *v += step * x;
        }
        EmbeddedRow {
            ids: placed.ids.clone(),
            type_ids: vec![0; placed.ids.len()],
            embeddings: e,
        }
    }

    /// Each row's loss; rows come example by example, so row `r` is example `r mod n`'s.
    fn losses(&self, logits: &[Vec<f32>]) -> Vec<f64> {
        let n = self.batch.len();
        logits
            .chunks(n.max(1))
            .flat_map(|chunk| {
                chunk
                    .iter()
                    .zip(self.batch)
                    .map(|(l, ex)| loss_of(l, ex.gold, self.target))
            })
            .collect()
    }
}

/// A `length x hidden` estimate, and the difference between the estimates from even and odd
/// directions (its noise, for shrinkage).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Estimate {
    pub gradient: Vec<f32>,
    pub split: Vec<f64>,
}

impl Estimate {
    fn zero(dims: usize) -> Self {
        Self {
            gradient: vec![0f32; dims],
            split: vec![0f64; dims],
        }
    }

    /// Adds one direction's term to the estimate, and to (`half` = 1) or from (-1) the
    /// difference between the halves. The halves' terms are independent with the same
    /// spread, so that difference has the estimate's own noise variance. The estimate is
    /// summed in `f32` as before shrinkage existed.
    fn add(&mut self, half: f64, scale: f32, u: &[f32]) {
        let signed = half * f64::from(scale);
        for ((g, s), &x) in self.gradient.iter_mut().zip(self.split.iter_mut()).zip(u) {
            *g += scale * x;
            *s += signed * f64::from(x);
        }
    }

    /// The noise variance per coordinate that the halves' difference measures.
    pub fn noise(&self) -> f64 {
        self.split.iter().map(|x| x * x).sum::<f64>() / self.split.len().max(1) as f64
    }
}

/// A way of spending model rows on a gradient estimate.
pub(crate) trait GradientEstimator {
    /// Model rows one estimate runs on a batch of `examples` (what the query budget reserves).
    fn rows(&self, examples: usize) -> u64;

    /// Estimate d(mean loss)/d(trigger embeddings) around `probe`, drawing directions from
    /// `rng` and running the perturbed rows through `forward` (once).
    fn estimate(
        &self,
        probe: &Probe,
        forward: &mut Forward,
        rng: &mut ChaCha8Rng,
    ) -> Result<Estimate, EmbedError>;
}

/// The estimator a configuration asks for. `directions` counts pairs' worth of rows, so every
/// estimator runs `2 x directions x batch` rows.
pub(crate) fn estimator_for(config: &TriggerConfig) -> Box<dyn GradientEstimator> {
    let pairs = config.directions;
    match config.estimator {
        Estimator::PerExample => Box::new(PerExample { pairs }),
        Estimator::Shared => Box::new(Shared { pairs }),
        Estimator::OneSided => Box::new(OneSided {
            directions: 2 * pairs,
        }),
    }
}

/// [`Estimator::PerExample`]: antithetic pairs along fresh directions for every example, each
/// example's loss differenced.
pub(crate) struct PerExample {
    pub pairs: usize,
}

/// [`Estimator::Shared`]: antithetic pairs along directions shared by the batch, the batch's
/// mean loss differenced.
pub(crate) struct Shared {
    pub pairs: usize,
}

/// [`Estimator::OneSided`]: one row per direction, against a leave-one-out baseline.
pub(crate) struct OneSided {
    pub directions: usize,
}

/// The losses of antithetic pairs: for each pair, every example at `+sigma` along its
/// direction, then every example at `-sigma`.
fn antithetic_losses<'d>(
    probe: &Probe,
    pairs: usize,
    forward: &mut Forward,
    direction: impl Fn(usize, usize) -> &'d [f32],
) -> Result<Vec<f64>, EmbedError> {
    let n = probe.batch.len();
    let mut rows = Vec::with_capacity(2 * pairs * n);
    for pair in 0..pairs {
        for sign in [1.0f32, -1.0] {
            for example in 0..n {
                rows.push(probe.row(example, sign * probe.sigma, direction(pair, example)));
            }
        }
    }
    Ok(probe.losses(&forward(&rows)?))
}

/// Which half a direction's term goes to: even directions add to the split, odd ones subtract.
fn half(direction: usize) -> f64 {
    if direction.is_multiple_of(2) {
        1.0
    } else {
        -1.0
    }
}

impl GradientEstimator for PerExample {
    fn rows(&self, examples: usize) -> u64 {
        2 * self.pairs as u64 * examples as u64
    }

    fn estimate(
        &self,
        probe: &Probe,
        forward: &mut Forward,
        rng: &mut ChaCha8Rng,
    ) -> Result<Estimate, EmbedError> {
        let n = probe.batch.len();
        // Drawn pair by pair, example by example.
        let draws: Vec<Vec<f32>> = (0..self.pairs * n)
            .map(|_| gaussian(rng, probe.dims()))
            .collect();
        let direction = |pair: usize, example: usize| draws[pair * n + example].as_slice();
        let losses = antithetic_losses(probe, self.pairs, forward, direction)?;
        let step = 2.0 * f64::from(probe.sigma) * self.pairs as f64;
        let mut estimate = Estimate::zero(probe.dims());
        for pair in 0..self.pairs {
            let plus = &losses[(2 * pair) * n..(2 * pair + 1) * n];
            let minus = &losses[(2 * pair + 1) * n..(2 * pair + 2) * n];
            for example in 0..n {
                let scale = ((plus[example] - minus[example]) / (step * n as f64)) as f32;
                estimate.add(half(pair), scale, direction(pair, example));
            }
        }
        Ok(estimate)
    }
}

impl GradientEstimator for Shared {
    fn rows(&self, examples: usize) -> u64 {
        2 * self.pairs as u64 * examples as u64
    }

    fn estimate(
        &self,
        probe: &Probe,
        forward: &mut Forward,
        rng: &mut ChaCha8Rng,
    ) -> Result<Estimate, EmbedError> {
        let n = probe.batch.len();
        let draws: Vec<Vec<f32>> = (0..self.pairs)
            .map(|_| gaussian(rng, probe.dims()))
            .collect();
        let losses = antithetic_losses(probe, self.pairs, forward, |pair, _| &draws[pair])?;
        let step = 2.0 * f64::from(probe.sigma) * self.pairs as f64;
        // The mean loss's difference, summed in the same order as before, so that the shared
        // estimator's estimates (and searches) are those of earlier versions.
        let mean = |l: &[f64]| l.iter().sum::<f64>() / n as f64;
        let mut estimate = Estimate::zero(probe.dims());
        for (pair, u) in draws.iter().enumerate() {
            let plus = &losses[(2 * pair) * n..(2 * pair + 1) * n];
            let minus = &losses[(2 * pair + 1) * n..(2 * pair + 2) * n];
            let scale = ((mean(plus) - mean(minus)) / step) as f32;
            estimate.add(half(pair), scale, u);
        }
        Ok(estimate)
    }
}

impl GradientEstimator for OneSided {
    fn rows(&self, examples: usize) -> u64 {
        self.directions as u64 * examples as u64
    }

    /// `directions` one-sided differences per example, each against the mean of the
    /// example's other perturbed losses, averaged over directions and examples.
    fn estimate(
        &self,
        probe: &Probe,
        forward: &mut Forward,
        rng: &mut ChaCha8Rng,
    ) -> Result<Estimate, EmbedError> {
        let n = probe.batch.len();
        let directions = self.directions;
        // Drawn direction by direction, example by example.
        let draws: Vec<Vec<f32>> = (0..directions * n)
            .map(|_| gaussian(rng, probe.dims()))
            .collect();
        let mut rows = Vec::with_capacity(directions * n);
        for d in 0..directions {
            for example in 0..n {
                rows.push(probe.row(example, probe.sigma, &draws[d * n + example]));
            }
        }
        let losses = probe.losses(&forward(&rows)?);
        let mut estimate = Estimate::zero(probe.dims());
        if directions < 2 || n == 0 {
            // No other direction to take a baseline from: nothing is known.
            return Ok(estimate);
        }
        let m = directions as f64;
        for example in 0..n {
            let of = |d: usize| losses[d * n + example];
            let total: f64 = (0..directions).map(of).sum();
            for d in 0..directions {
                // Leave-one-out: the baseline does not depend on this direction, so
                // subtracting it changes the variance, not the expectation.
                let baseline = (total - of(d)) / (m - 1.0);
                let scale = ((of(d) - baseline) / (f64::from(probe.sigma) * m * n as f64)) as f32;
                estimate.add(half(d), scale, &draws[d * n + example]);
            }
        }
        Ok(estimate)
    }
}

/// Standard normal draws by Box-Muller, from the caller's seeded stream (so that a search's
/// directions, and with them its trigger, depend on its seed alone).
pub(crate) fn gaussian(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        out.push((r * theta.cos()) as f32);
        out.push((r * theta.sin()) as f32);
    }
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::{
        EmbedError, EmbeddedRow, Estimator, GradientEstimator, Placed, Probe, SearchExample,
        TriggerConfig, estimator_for, gaussian,
    };

    #[test]
    fn gaussian_draws_look_standard() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let x = gaussian(&mut rng, 20_000);
        let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / x.len() as f64;
        let var = x
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / x.len() as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }

    const HIDDEN: usize = 3;
    const LENGTH: usize = 2;

    /// A linear two-label model over the embedded rows: logit 1 is `w . (sum of the row's
    /// embeddings)`, logit 0 is zero. Its targeted loss toward label 1 is
    /// `log(1 + exp(-s))`, so the mean loss's gradient with respect to every trigger
    /// position is `-mean(sigmoid(-s)) w`, known in closed form.
    struct Linear {
        w: [f32; HIDDEN],
        rows_run: usize,
    }

    impl Linear {
        fn score(&self, embeddings: &[f32]) -> f32 {
            embeddings
                .chunks(HIDDEN)
                .map(|e| e.iter().zip(&self.w).map(|(a, b)| a * b).sum::<f32>())
                .sum()
        }

        fn forward(&mut self, rows: &[EmbeddedRow]) -> Result<Vec<Vec<f32>>, EmbedError> {
            self.rows_run += rows.len();
            Ok(rows
                .iter()
                .map(|r| vec![0.0, self.score(&r.embeddings)])
                .collect())
        }
    }

    /// Three examples of two or three tokens with the trigger in front, and the exact mean
    /// gradient (`LENGTH x HIDDEN`) of the linear model's loss.
    fn probe_parts(model: &Linear) -> (Vec<Placed>, Vec<SearchExample>, Vec<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let placed: Vec<Placed> = [4usize, 5, 4]
            .iter()
            .map(|&tokens| Placed {
                ids: (0..tokens as u32).collect(),
                start: 1,
                embeddings: gaussian(&mut rng, tokens * HIDDEN)
                    .iter()
                    .map(|x| 0.3 * x)
                    .collect(),
            })
            .collect();
        let batch: Vec<SearchExample> = placed
            .iter()
            .map(|p| SearchExample {
                ids: p.ids.clone(),
                gold: 0,
            })
            .collect();
        let weight: f64 = placed
            .iter()
            .map(|p| 1.0 / (1.0 + f64::from(model.score(&p.embeddings)).exp()))
            .sum::<f64>()
            / placed.len() as f64;
        let exact = (0..LENGTH * HIDDEN)
            .map(|k| -weight * f64::from(model.w[k % HIDDEN]))
            .collect();
        (placed, batch, exact)
    }

    fn cosine(a: &[f32], b: &[f64]) -> f64 {
        let dot: f64 = a.iter().zip(b).map(|(&x, y)| f64::from(x) * y).sum();
        let na = a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
        dot / (na * nb)
    }

    /// Every estimator, taken through the trait as the search takes it, runs the rows it
    /// reserves in one forward pass and recovers a gradient known in closed form; the same
    /// seed gives the same estimate.
    #[test]
    fn every_estimator_finds_a_known_gradient_through_the_trait() {
        for kind in [
            Estimator::PerExample,
            Estimator::Shared,
            Estimator::OneSided,
        ] {
            let mut model = Linear {
                w: [0.8, -0.5, 0.3],
                rows_run: 0,
            };
            let (placed, batch, exact) = probe_parts(&model);
            let probe = Probe {
                placed: &placed,
                batch: &batch,
                length: LENGTH,
                hidden: HIDDEN,
                sigma: 0.01,
                target: Some(1),
            };
            let config = TriggerConfig {
                directions: 200,
                estimator: kind,
                ..TriggerConfig::default()
            };
            let estimator = estimator_for(&config);
            let mut run = |seed| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                estimator
                    .estimate(&probe, &mut |rows| model.forward(rows), &mut rng)
                    .unwrap()
            };
            let first = run(7);
            assert_eq!(first, run(7), "{kind:?}: the seed decides the estimate");
            assert_eq!(
                model.rows_run as u64,
                2 * estimator.rows(batch.len()),
                "{kind:?}: the rows reserved are the rows run"
            );
            assert_eq!(estimator.rows(batch.len()), 2 * 200 * 3);
            let cos = cosine(&first.gradient, &exact);
            assert!(cos > 0.9, "{kind:?}: cosine {cos} with the exact gradient");
            assert!(
                first.noise() > 0.0,
                "{kind:?}: the halves measure some noise"
            );
        }
    }

    /// One direction leaves the one-sided estimator nothing to take a baseline from: it
    /// reports no gradient rather than a biased one.
    #[test]
    fn a_single_one_sided_direction_estimates_nothing() {
        let mut model = Linear {
            w: [1.0, 0.0, 0.0],
            rows_run: 0,
        };
        let (placed, batch, _) = probe_parts(&model);
        let probe = Probe {
            placed: &placed,
            batch: &batch,
            length: LENGTH,
            hidden: HIDDEN,
            sigma: 0.01,
            target: Some(1),
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let estimate = super::OneSided { directions: 1 }
            .estimate(&probe, &mut |rows| model.forward(rows), &mut rng)
            .unwrap();
        assert!(estimate.gradient.iter().all(|&g| g == 0.0));
        assert_eq!(estimate.noise(), 0.0);
    }
}
