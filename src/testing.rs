//! A small fake model for tests: the attack runner, `robust::prop::Check` and users' own
//! property tests can be checked against a model whose every answer is known in advance, in
//! microseconds and without ONNX Runtime.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{Input, ModelError, Prediction, Progress, QueryStats, TextModel};

/// A two-label sentiment "model" that counts cue words: `positive` when the text has more
/// positive cues than negative ones (a `not`/`n't` anywhere flips the verdict), `negative`
/// otherwise. Deterministic and blind to word order, and it counts its queries
/// the way the real classifier does: distinct texts run once, repeats are cache hits.
pub struct KeywordModel {
    labels: Vec<String>,
    positive: Vec<String>,
    negative: Vec<String>,
    seen: HashMap<String, Arc<[f32]>>,
    stats: QueryStats,
}

impl Default for KeywordModel {
    fn default() -> Self {
        Self::new(
            &["good", "great", "fine", "love"],
            &["bad", "awful", "boring", "hate"],
        )
    }
}

impl KeywordModel {
    /// A model with these positive and negative cue words (matched whole and lower-case; the
    /// default has four of each). Its labels are `negative` (0) and `positive` (1).
    pub fn new(positive: &[&str], negative: &[&str]) -> Self {
        Self {
            labels: vec!["negative".into(), "positive".into()],
            positive: positive.iter().map(|w| w.to_string()).collect(),
            negative: negative.iter().map(|w| w.to_string()).collect(),
            seen: HashMap::new(),
            stats: QueryStats::default(),
        }
    }

    fn logits(&self, text: &str) -> Arc<[f32]> {
        let words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric() && c != '\'')
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let count = |cues: &[String]| words.iter().filter(|w| cues.contains(w)).count() as f32;
        let negated = words.iter().any(|w| w == "not" || w.ends_with("n't"));
        let mut score = count(&self.positive) - count(&self.negative);
        if negated {
            score = -score;
        }
        // A margin of one cue word is a confident answer; none is a mild lean to negative.
        let margin = if score == 0.0 { -0.5 } else { score * 2.0 };
        Arc::from(vec![0.0, margin])
    }
}

impl TextModel for KeywordModel {
    fn labels(&self) -> &[String] {
        &self.labels
    }

    fn predict_with_progress(
        &mut self,
        texts: &[&str],
        progress: Progress,
    ) -> Result<Vec<Prediction>, ModelError> {
        let mut out = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            self.stats.requests += 1;
            let logits = match self.seen.get(*text) {
                Some(l) => {
                    self.stats.cache_hits += 1;
                    l.clone()
                }
                None => {
                    self.stats.model_queries += 1;
                    let l = self.logits(text);
                    self.seen.insert(text.to_string(), l.clone());
                    l
                }
            };
            out.push(Prediction::from_logits(logits));
            progress(i + 1, texts.len());
        }
        self.stats.batches += 1;
        Ok(out)
    }

    /// A pair is read as its two segments joined by a space.
    fn predict_inputs(
        &mut self,
        inputs: &[Input],
        progress: Progress,
    ) -> Result<Vec<Prediction>, ModelError> {
        let joined: Vec<String> = inputs
            .iter()
            .map(|i| match i.pair {
                Some(pair) => format!("{} {pair}", i.text),
                None => i.text.to_string(),
            })
            .collect();
        let refs: Vec<&str> = joined.iter().map(String::as_str).collect();
        self.predict_with_progress(&refs, progress)
    }

    fn stats(&self) -> QueryStats {
        self.stats
    }
}

/// Kind facts for tests of reports and history without the attack registry: `negation`
/// expects a flip, `cloze` leads with its top-1 rate, every other kind is invariant.
pub struct TestKinds;

impl crate::score::metric::KindFacts for TestKinds {
    fn expectation(&self, kind: &str) -> Option<crate::score::Expectation> {
        Some(match kind {
            "negation" | "cloze" => crate::score::Expectation::FlipFromGold,
            _ => crate::score::Expectation::Invariant,
        })
    }

    fn headline(&self, kind: &str) -> crate::score::metric::Metric {
        use crate::score::metric::Metric;
        match kind {
            "negation" => Metric::ExpectedDirectionRate,
            "cloze" => Metric::Top1Unchanged,
            _ => Metric::FlipRate,
        }
    }
}
