//! Absolute gates: per-attack thresholds a suite sets on its rates (`max_flip_rate = 0.10`,
//! `min_accuracy_after = 0.60`), beside the run-to-run regression check.
//!
//! A gate is judged on the 95% interval by default: `max_` fails only when the whole interval
//! lies above the threshold, `min_` only when it lies wholly below. A small sample therefore
//! cannot fail a build by bad luck, only by clear evidence; `gate = "point"` judges the point
//! estimate instead, for teams that prefer a stricter, noisier gate.

use serde::{Deserialize, Serialize};

use super::history::SummaryRow;
use crate::score::stats::Rate;

/// How a gate reads a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateMode {
    /// Fail only when the whole 95% interval is past the threshold.
    #[default]
    Interval,
    /// Fail when the point estimate is past the threshold.
    Point,
}

impl GateMode {
    /// The suite's spelling: `interval` or `point`.
    pub fn as_str(self) -> &'static str {
        match self {
            GateMode::Interval => "interval",
            GateMode::Point => "point",
        }
    }
}

/// Which side of the threshold is a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bound {
    /// The rate must not exceed the threshold.
    Max,
    /// The rate must not fall below the threshold.
    Min,
}

/// One threshold on one rate metric (group "all") of one attack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    /// The `summary.csv` metric name, e.g. `flip_rate` or `accuracy_after`.
    pub metric: String,
    /// Whether the threshold is a ceiling or a floor.
    pub bound: Bound,
    /// The threshold, as a fraction in [0, 1] (not a percentage).
    pub threshold: f64,
    /// Whether the interval or the point estimate is judged.
    pub mode: GateMode,
}

impl Gate {
    /// The suite key this gate was written as, e.g. `max_flip_rate`.
    pub fn key(&self) -> String {
        let side = match self.bound {
            Bound::Max => "max",
            Bound::Min => "min",
        };
        format!("{side}_{}", self.metric)
    }

    /// Parse a suite entry key such as `max_flip_rate`; None if it is not a gate key.
    pub fn parse_key(key: &str) -> Option<(Bound, &str)> {
        if let Some(m) = key.strip_prefix("max_") {
            Some((Bound::Max, m))
        } else {
            key.strip_prefix("min_").map(|m| (Bound::Min, m))
        }
    }

    /// Whether `rate` passes. A rate over nothing (0/0: nothing was attacked) fails in either
    /// mode (#30 item 14: its interval [0, 1] used to pass a `max_` gate while its point
    /// estimate failed it): a gate that measured nothing must not pass.
    pub fn passes(&self, rate: &Rate) -> bool {
        if rate.n == 0 {
            return false;
        }
        let (low, high) = match self.mode {
            GateMode::Interval => (rate.ci_low, rate.ci_high),
            GateMode::Point => (rate.value, rate.value),
        };
        match self.bound {
            Bound::Max => low <= self.threshold,
            Bound::Min => high >= self.threshold,
        }
    }

    /// Judge the gate on one attack's summary rows.
    pub fn judge(&self, rows: &[SummaryRow]) -> GateOutcome {
        let rate = rows
            .iter()
            .find(|r| r.group == "all" && r.metric == self.metric)
            .and_then(SummaryRow::rate);
        GateOutcome {
            gate: self.clone(),
            passed: rate.as_ref().is_some_and(|r| self.passes(r)),
            rate,
        }
    }
}

/// A judged gate. A gate whose metric the run did not produce (no attacked examples, say)
/// fails: a gate that cannot be checked must not pass silently.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateOutcome {
    /// The gate judged.
    pub gate: Gate,
    /// The measured rate (group `all`), or `None` when the run did not produce the metric.
    pub rate: Option<Rate>,
    /// Whether the gate passed (never when `rate` is `None`).
    pub passed: bool,
}

impl GateOutcome {
    /// A line for people: `max_flip_rate 0.1 (interval): 14.5% [13.7, 15.2] — FAIL`.
    pub fn describe(&self) -> String {
        let rate = match &self.rate {
            None => "not measured".to_string(),
            Some(r) if r.n == 0 => "nothing was attacked (0/0)".to_string(),
            Some(r) => r.display_percent(),
        };
        format!(
            "{} {} ({}): {} — {}",
            self.gate.key(),
            self.gate.threshold,
            self.gate.mode.as_str(),
            rate,
            if self.passed { "pass" } else { "FAIL" }
        )
    }

    /// The row this outcome adds to `summary.csv`, after the attack's own rows: metric
    /// `gate:<key>`, value `pass`/`fail`, the threshold and mode in the denominator column.
    pub fn summary_row(&self, like: &SummaryRow) -> SummaryRow {
        let rate = self.rate.as_ref();
        let fixed = |x: f64| super::fixed(x, 6);
        SummaryRow {
            group: "all".into(),
            metric: format!("gate:{}", self.gate.key()),
            denominator: format!("{} on the {}", self.gate.threshold, self.gate.mode.as_str()),
            k: rate.map_or_else(String::new, |r| r.k.to_string()),
            n: rate.map_or_else(String::new, |r| r.n.to_string()),
            value: if self.passed { "pass" } else { "fail" }.into(),
            ci_low: rate.map_or_else(String::new, |r| fixed(r.ci_low)),
            ci_high: rate.map_or_else(String::new, |r| fixed(r.ci_high)),
            p_value: String::new(),
            ..like.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(bound: Bound, threshold: f64, mode: GateMode) -> Gate {
        Gate {
            metric: "flip_rate".into(),
            bound,
            threshold,
            mode,
        }
    }

    #[test]
    fn interval_mode_fails_only_on_clear_evidence() {
        // 15/100: point 0.15, interval about [0.093, 0.233].
        let r = Rate::new(15, 100);
        assert!(gate(Bound::Max, 0.10, GateMode::Interval).passes(&r));
        assert!(!gate(Bound::Max, 0.10, GateMode::Point).passes(&r));
        assert!(!gate(Bound::Max, 0.05, GateMode::Interval).passes(&r));
        assert!(gate(Bound::Min, 0.20, GateMode::Interval).passes(&r));
        assert!(!gate(Bound::Min, 0.20, GateMode::Point).passes(&r));
        assert!(!gate(Bound::Min, 0.30, GateMode::Interval).passes(&r));
    }

    #[test]
    fn keys_round_trip() {
        assert_eq!(
            Gate::parse_key("max_flip_rate"),
            Some((Bound::Max, "flip_rate"))
        );
        assert_eq!(
            Gate::parse_key("min_accuracy_after"),
            Some((Bound::Min, "accuracy_after"))
        );
        assert_eq!(Gate::parse_key("samples"), None);
        assert_eq!(
            gate(Bound::Max, 0.1, GateMode::Point).key(),
            "max_flip_rate"
        );
    }

    /// #30 item 14: on 0/0 the interval gate passed and the point gate failed, and neither said
    /// that nothing was attacked. Now both fail, saying so.
    #[test]
    fn issue30_item14_gates_on_nothing_attacked_fail_alike_and_say_so() {
        let r = Rate::new(0, 0);
        for bound in [Bound::Max, Bound::Min] {
            for mode in [GateMode::Interval, GateMode::Point] {
                let g = gate(bound, 0.5, mode);
                assert!(!g.passes(&r), "{bound:?} {mode:?}");
                let outcome = GateOutcome {
                    gate: g,
                    rate: Some(r),
                    passed: false,
                };
                assert!(
                    outcome.describe().contains("nothing was attacked (0/0)"),
                    "{}",
                    outcome.describe()
                );
            }
        }
    }

    #[test]
    fn an_unmeasured_metric_fails() {
        let outcome = gate(Bound::Max, 0.5, GateMode::Interval).judge(&[]);
        assert!(!outcome.passed);
        assert!(
            outcome.describe().contains("not measured"),
            "{}",
            outcome.describe()
        );
    }
}
