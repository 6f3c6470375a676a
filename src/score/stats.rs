//! Interval estimates and tests for the rates robust reports.
//!
//! Rates from a few hundred examples are noisy; a flip rate without its denominator and
//! interval invites over-reading. Wilson's score interval behaves well near 0 and 1 (where
//! robustness numbers often sit) unlike the normal approximation, and McNemar's exact test is
//! the right comparison for accuracy before and after an attack on the same examples.

use serde::Serialize;

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A proportion k/n with its 95% Wilson score interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    /// Successes (the numerator).
    pub k: u64,
    /// Trials (the denominator).
    pub n: u64,
    /// k/n as a fraction in [0, 1]; NaN when n is 0.
    pub value: f64,
    /// Lower bound of the 95% Wilson interval, as a fraction (0 when n is 0).
    pub ci_low: f64,
    /// Upper bound of the 95% Wilson interval, as a fraction (1 when n is 0).
    pub ci_high: f64,
}

impl Rate {
    /// k successes out of n, with its 95% Wilson interval.
    pub fn new(k: u64, n: u64) -> Self {
        let (ci_low, ci_high) = wilson(k, n, Z95);
        let value = if n == 0 {
            f64::NAN
        } else {
            k as f64 / n as f64
        };
        Self {
            k,
            n,
            value,
            ci_low,
            ci_high,
        }
    }

    /// The rate and its interval in percent, with k/n: "87.3% [85.0, 89.3] (761/872)", or
    /// "n/a (0/0)".
    pub fn display_percent(&self) -> String {
        if self.n == 0 {
            return "n/a (0/0)".to_string();
        }
        format!(
            "{:.1}% [{:.1}, {:.1}] ({}/{})",
            100.0 * self.value,
            100.0 * self.ci_low,
            100.0 * self.ci_high,
            self.k,
            self.n
        )
    }
}

/// Wilson score interval for k successes in n trials. With n = 0 there is no information:
/// the interval is the whole of [0, 1].
pub fn wilson(k: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n_f = n as f64;
    let p = k as f64 / n_f;
    let z2 = z * z;
    let denom = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denom;
    let half = z * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt() / denom;
    // At k = 0 or k = n the bound is exactly 0 or 1; clamp away rounding.
    let low = if k == 0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let high = if k == n {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    (low, high)
}

/// McNemar's exact test on paired outcomes: `b` pairs right before and wrong after, `c` wrong
/// before and right after. Returns the two-sided p-value (binomial, p = 1/2, on b + c).
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // P(X <= k) for X ~ Bin(n, 1/2), summed in log space to survive large n.
    let ln_half_n = -(n as f64) * std::f64::consts::LN_2;
    let mut tail = 0.0;
    for i in 0..=k {
        tail += (ln_choose(n, i) + ln_half_n).exp();
    }
    (2.0 * tail).min(1.0)
}

/// Two-proportion z-test (pooled) for k1/n1 against k2/n2; two-sided p-value.
pub fn two_proportion_p(k1: u64, n1: u64, k2: u64, n2: u64) -> f64 {
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let pooled = (k1 + k2) as f64 / (n1f + n2f);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f)).sqrt();
    if se == 0.0 {
        return 1.0;
    }
    let z = (k1 as f64 / n1f - k2 as f64 / n2f) / se;
    2.0 * normal_sf(z.abs())
}

fn ln_choose(n: u64, k: u64) -> f64 {
    ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
}

/// Lanczos approximation (g = 7, n = 9); accurate to ~1e-13 for positive arguments.
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = COEF[0];
    let t = x + G + 0.5;
    for (i, &c) in COEF.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Upper tail of the standard normal, via the complementary error function.
fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// erfc with relative error below 1.2e-7 (Numerical Recipes' Chebyshev fit).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() < tol
    }

    #[test]
    fn wilson_matches_published_values() {
        // Newcombe (1998), table I: 81/263 -> 0.2553 to 0.3662; 15/148 -> 0.0624 to 0.1605.
        let (lo, hi) = wilson(81, 263, Z95);
        assert!(
            close(lo, 0.2553, 5e-4) && close(hi, 0.3662, 5e-4),
            "{lo} {hi}"
        );
        let (lo, hi) = wilson(15, 148, Z95);
        assert!(
            close(lo, 0.0624, 5e-4) && close(hi, 0.1605, 5e-4),
            "{lo} {hi}"
        );
        // 0/10 -> 0 to 0.2775; 10/10 -> 0.7225 to 1.
        let (lo, hi) = wilson(0, 10, Z95);
        assert!(lo == 0.0 && close(hi, 0.2775, 5e-4));
        let (lo, hi) = wilson(10, 10, Z95);
        assert!(close(lo, 0.7225, 5e-4) && hi == 1.0);
    }

    #[test]
    fn wilson_of_nothing_is_everything() {
        assert_eq!(wilson(0, 0, Z95), (0.0, 1.0));
        assert!(Rate::new(0, 0).value.is_nan());
    }

    #[test]
    fn mcnemar_matches_binomial_by_hand() {
        // b=0, c=5: p = 2 * 0.5^5 = 0.0625.
        assert!(close(mcnemar_exact(0, 5), 0.0625, 1e-12));
        // b=3, c=10: 2 * P(X<=3), X~Bin(13,.5) = 2 * (1+13+78+286)/8192 = 0.092285...
        assert!(close(mcnemar_exact(3, 10), 2.0 * 378.0 / 8192.0, 1e-12));
        assert_eq!(mcnemar_exact(4, 4), 1.0);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
    }

    #[test]
    fn two_proportion_known_value() {
        // 60/100 vs 40/100: z = 2.828, p = 0.00468.
        assert!(close(two_proportion_p(60, 100, 40, 100), 0.004_677, 1e-5));
        assert_eq!(two_proportion_p(0, 10, 0, 10), 1.0);
    }

    proptest! {
        #[test]
        fn wilson_contains_the_estimate(n in 1u64..5000, frac in 0.0f64..=1.0) {
            let k = ((n as f64) * frac).round() as u64;
            let (lo, hi) = wilson(k, n, Z95);
            let p = k as f64 / n as f64;
            prop_assert!(0.0 <= lo && lo <= p + 1e-12 && p <= hi + 1e-12 && hi <= 1.0);
        }

        #[test]
        fn wilson_narrows_with_more_data(k in 0u64..50, extra in 1u64..50) {
            let n = 50 + extra;
            let (lo1, hi1) = wilson(k, n, Z95);
            let (lo4, hi4) = wilson(4 * k, 4 * n, Z95);
            prop_assert!(hi4 - lo4 < hi1 - lo1);
        }

        #[test]
        fn mcnemar_is_a_probability_and_symmetric(b in 0u64..400, c in 0u64..400) {
            let p = mcnemar_exact(b, c);
            prop_assert!((0.0..=1.0).contains(&p));
            prop_assert!((p - mcnemar_exact(c, b)).abs() < 1e-12);
        }
    }
}
