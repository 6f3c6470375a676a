//! The per-example search every word and character attack runs: rank the words by importance,
//! then change them one at a time in that order (greedy, or keeping a beam of the best texts)
//! until the goal is reached or the example's query budget runs out.
//!
//! This is TextAttack's `GreedyWordSwapWIR` (and, with `beam` above 1, a beam over the same
//! order), with two differences that matter for what a run costs and reports:
//!
//! - A query is a distinct text the model is asked about for this example, the original
//!   included: asking again about a text already seen costs nothing and is not counted (TextAttack
//!   counts it again, though its cache answers it).
//! - All candidates of a step (every beam entry's) go to the model in one request, through the
//!   prediction cache, so a step is one batch.

use std::collections::HashMap;

use rand_chacha::ChaCha8Rng;

use super::text::Sentence;
use super::{Goal, Ranking, WordAttack};
use crate::attack::runner::{RowError, RowResult, Target};
use crate::model::{ModelError, Prediction, TextModel};
use crate::perturb::{Perturbation, SearchEnd, SkipReason, WordEdit};

/// A text the search holds: the sentence, the model's answer and its goal score.
#[derive(Debug, Clone)]
struct Scored {
    sentence: Sentence,
    prediction: Prediction,
    score: f64,
    similarity: Option<f32>,
}

/// What the goal is measured against: the label to move away from, or the one to reach.
#[derive(Debug, Clone, Copy)]
struct GoalFn {
    goal: Goal,
    reference: usize,
}

impl GoalFn {
    /// Higher is closer to the goal: 1 − p(reference) untargeted, p(target) targeted.
    fn score(&self, p: &Prediction) -> f64 {
        match self.goal {
            Goal::Untargeted => 1.0 - f64::from(p.probs[self.reference]),
            Goal::Targeted(t) => f64::from(p.probs.get(t).copied().unwrap_or(0.0)),
        }
    }

    fn reached(&self, p: &Prediction) -> bool {
        match self.goal {
            Goal::Untargeted => p.label != self.reference,
            Goal::Targeted(t) => p.label == t,
        }
    }
}

/// Where one example's search is.
enum Phase {
    /// The original is to be classified.
    Original,
    /// The words are to be ranked.
    Ranking,
    /// PWWS's weighting: the softmaxed saliency of each changeable word, to be weighted by
    /// its best replacement's gain.
    Saliency {
        words: Vec<usize>,
        weights: Vec<f64>,
    },
    /// Changing the word at `order[at]`.
    Step { at: usize },
    /// Finished.
    Done,
}

/// What polling a search gives: texts it needs answered, or its end.
enum Poll {
    Need(Vec<String>),
    Finished,
}

/// One example's search, run as a state machine so that the same step of many examples goes
/// to the model in one request ([`WordAttack::attack_rows`]). Each call of [`ExampleSearch::poll`]
/// runs the search as far as the answers it has allow; a phase whose texts are not all
/// answered asks for them and is run again, whole, once they are, so every random draw is
/// memoised and made once.
pub(super) struct ExampleSearch<'a> {
    attack: &'a WordAttack,
    row: &'a Target,
    rng: ChaCha8Rng,
    /// Every distinct text asked about, with its answer: the example's queries.
    seen: HashMap<String, Prediction>,
    /// Replacements already drawn, by (text, word index).
    memo: HashMap<(String, usize), Vec<String>>,
    phase: Phase,
    base: Sentence,
    goal: Option<GoalFn>,
    start: Option<Scored>,
    order: Vec<usize>,
    beam: Vec<Scored>,
    outcome: Option<Result<(Scored, SearchEnd), SkipReason>>,
}

impl<'a> ExampleSearch<'a> {
    pub(super) fn new(attack: &'a WordAttack, row: &'a Target, rng: ChaCha8Rng) -> Self {
        ExampleSearch {
            attack,
            row,
            rng,
            seen: HashMap::new(),
            memo: HashMap::new(),
            phase: Phase::Original,
            base: Sentence::new(&row.text),
            goal: None,
            start: None,
            order: Vec::new(),
            beam: Vec::new(),
            outcome: None,
        }
    }

    /// Distinct texts asked about so far.
    pub(super) fn queries(&self) -> u64 {
        self.seen.len() as u64
    }

    fn exhausted(&self) -> bool {
        self.attack
            .search
            .example_budget
            .is_some_and(|b| self.queries() >= b)
    }

    /// Of `texts`, those not yet answered, within what is left of the budget.
    fn missing(&self, texts: &[&str]) -> Vec<String> {
        let mut new: Vec<String> = Vec::new();
        for &t in texts {
            if !self.seen.contains_key(t) && !new.iter().any(|n| n == t) {
                new.push(t.to_string());
            }
        }
        if let Some(budget) = self.attack.search.example_budget {
            new.truncate(budget.saturating_sub(self.queries()) as usize);
        }
        new
    }

    /// Record the model's answers to texts this search asked for.
    pub(super) fn answer(&mut self, texts: Vec<String>, predictions: Vec<Prediction>) {
        for (t, p) in texts.into_iter().zip(predictions) {
            self.seen.insert(t, p);
        }
    }

    /// The model input for `text` (of a sentence pair, with the other segment).
    pub(super) fn input<'t>(&'t self, text: &'t str) -> crate::model::Input<'t> {
        self.row.input(text)
    }

    /// Run as far as the answers allow.
    fn poll(&mut self) -> Result<Poll, RowError> {
        loop {
            match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Done => return Ok(Poll::Finished),
                Phase::Original => {
                    if self.base.is_empty() {
                        self.outcome = Some(Err(SkipReason::TooFewWords));
                        return Ok(Poll::Finished);
                    }
                    let need = self.missing(&[self.base.text()]);
                    if !need.is_empty() {
                        self.phase = Phase::Original;
                        return Ok(Poll::Need(need));
                    }
                    let original = self.seen[self.base.text()].clone();
                    let reference = match self.attack.search.goal {
                        Goal::Untargeted => match self.row.gold {
                            Some(gold) if gold != original.label => {
                                self.outcome = Some(Err(SkipReason::Misclassified));
                                return Ok(Poll::Finished);
                            }
                            Some(gold) => gold,
                            None => original.label,
                        },
                        Goal::Targeted(t) => {
                            if original.label == t {
                                self.outcome = Some(Err(SkipReason::AlreadyTarget));
                                return Ok(Poll::Finished);
                            }
                            original.label
                        }
                    };
                    let goal = GoalFn {
                        goal: self.attack.search.goal,
                        reference,
                    };
                    let start = Scored {
                        score: goal.score(&original),
                        prediction: original,
                        sentence: self.base.clone(),
                        similarity: None,
                    };
                    self.goal = Some(goal);
                    self.beam = vec![start.clone()];
                    self.start = Some(start);
                    self.phase = Phase::Ranking;
                }
                Phase::Ranking => {
                    let s = self.base.clone();
                    let words: Vec<usize> = (0..s.len())
                        .filter(|&i| self.attack.constraints.may_change(&s, i))
                        .collect();
                    let leave_one: Vec<String> = words
                        .iter()
                        .map(|&i| match self.attack.search.ranking {
                            Ranking::Delete => s.without(i),
                            Ranking::Unk | Ranking::Saliency => s.with(i, UNK).text().to_string(),
                            Ranking::Mask => s.with(i, MASK).text().to_string(),
                        })
                        .collect();
                    let texts: Vec<&str> = leave_one.iter().map(String::as_str).collect();
                    let need = self.missing(&texts);
                    if !need.is_empty() {
                        self.phase = Phase::Ranking;
                        return Ok(Poll::Need(need));
                    }
                    if texts.iter().any(|t| !self.seen.contains_key(*t)) {
                        return self.finish(SearchEnd::OutOfBudget);
                    }
                    let goal = self.goal.expect("set with the original");
                    let importance: Vec<f64> =
                        texts.iter().map(|t| goal.score(&self.seen[*t])).collect();
                    if self.attack.search.ranking == Ranking::Saliency {
                        // PWWS (Ren et al. 2019): the softmax of the words' saliencies, each
                        // weighted by how far the word's best replacement moves the goal score.
                        let max = importance.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        let exp: Vec<f64> = importance.iter().map(|v| (v - max).exp()).collect();
                        let sum: f64 = exp.iter().sum();
                        self.phase = Phase::Saliency {
                            words,
                            weights: exp.iter().map(|e| e / sum).collect(),
                        };
                    } else {
                        self.order = ranked(&words, &importance);
                        self.phase = Phase::Step { at: 0 };
                    }
                }
                Phase::Saliency { words, weights } => {
                    // Every word's candidates in one request: PWWS asks about all of them
                    // before the search starts, so they need not wait for one another.
                    let start = self.start.clone().expect("set with the original");
                    let mut per_word = Vec::with_capacity(words.len());
                    let mut need: Vec<String> = Vec::new();
                    for &i in &words {
                        let candidates = self.expand(&start.sentence, i)?;
                        let (kept, missing) = self.admissible(candidates)?;
                        for t in missing {
                            if !need.contains(&t) {
                                need.push(t);
                            }
                        }
                        per_word.push(kept);
                    }
                    let need = self.missing(&need.iter().map(String::as_str).collect::<Vec<_>>());
                    if !need.is_empty() {
                        self.phase = Phase::Saliency { words, weights };
                        return Ok(Poll::Need(need));
                    }
                    let mut gains = Vec::with_capacity(words.len());
                    for kept in per_word {
                        let scored = self.scored(kept);
                        let best = best_of(&scored).map_or(start.score, |b| b.score);
                        gains.push(best - start.score);
                    }
                    if self.exhausted() && gains.iter().all(|g| *g == 0.0) {
                        return self.finish(SearchEnd::OutOfBudget);
                    }
                    let importance: Vec<f64> =
                        weights.iter().zip(&gains).map(|(w, g)| w * g).collect();
                    self.order = ranked(&words, &importance);
                    self.phase = Phase::Step { at: 0 };
                }
                Phase::Step { at } => {
                    let Some(&i) = self.order.get(at) else {
                        let end = if self.exhausted() {
                            SearchEnd::OutOfBudget
                        } else {
                            SearchEnd::Failed
                        };
                        return self.finish(end);
                    };
                    let mut candidates: Vec<Sentence> = Vec::new();
                    for held in self.beam.clone() {
                        for s in self.expand(&held.sentence, i)? {
                            if !candidates.iter().any(|c| c.text() == s.text()) {
                                candidates.push(s);
                            }
                        }
                    }
                    let (kept, need) = self.admissible(candidates)?;
                    if !need.is_empty() {
                        self.phase = Phase::Step { at };
                        return Ok(Poll::Need(need));
                    }
                    let scored = self.scored(kept);
                    let goal = self.goal.expect("set with the original");
                    let mut winners: Vec<&Scored> = scored
                        .iter()
                        .filter(|c| goal.reached(&c.prediction))
                        .collect();
                    if !winners.is_empty() {
                        // Of the texts that reach the goal, the closest in meaning where there
                        // is an encoder, else the furthest past it; the first on ties.
                        winners.sort_by(|a, b| {
                            let key = |c: &Scored| (c.similarity.unwrap_or(0.0) as f64, c.score);
                            key(b)
                                .partial_cmp(&key(a))
                                .unwrap_or(std::cmp::Ordering::Equal)
                        });
                        let won = winners[0].clone();
                        self.beam = vec![won];
                        return self.finish(SearchEnd::Succeeded);
                    }
                    let width = self.attack.search.beam.max(1);
                    if width == 1 {
                        if let Some(best) = best_of(&scored)
                            && best.score > self.beam[0].score
                        {
                            self.beam[0] = best.clone();
                        }
                    } else {
                        self.beam.extend(scored);
                        // Stable: earlier entries (and earlier candidates) win ties.
                        self.beam.sort_by(|a, b| {
                            b.score
                                .partial_cmp(&a.score)
                                .unwrap_or(std::cmp::Ordering::Equal)
                        });
                        self.beam.truncate(width);
                    }
                    if self.exhausted() {
                        return self.finish(SearchEnd::OutOfBudget);
                    }
                    self.phase = Phase::Step { at: at + 1 };
                }
            }
        }
    }

    fn finish(&mut self, end: SearchEnd) -> Result<Poll, RowError> {
        let best = self.beam.swap_remove(0);
        self.outcome = Some(Ok((best, end)));
        self.phase = Phase::Done;
        Ok(Poll::Finished)
    }

    /// `s` with word `i` replaced by each admissible replacement within the edit distance.
    fn expand(&mut self, s: &Sentence, i: usize) -> Result<Vec<Sentence>, RowError> {
        let constraints = &self.attack.constraints;
        if !constraints.may_change(s, i) {
            return Ok(Vec::new());
        }
        let key = (s.text().to_string(), i);
        let words = match self.memo.get(&key) {
            Some(words) => words.clone(),
            None => {
                let words = self
                    .attack
                    .transformation
                    .replacements(s, i, &mut self.rng)?;
                self.memo.insert(key, words.clone());
                words
            }
        };
        let original = s.original_word(i);
        Ok(words
            .iter()
            .filter(|w| w.as_str() != s.word(i) && constraints.admits(original, w))
            .map(|w| s.with(i, w))
            .filter(|c| constraints.within_edit_distance(c))
            .collect())
    }

    /// The candidates that pass the similarity constraint, with their similarities, and the
    /// texts of those still to be asked about.
    #[allow(clippy::type_complexity)]
    fn admissible(
        &mut self,
        candidates: Vec<Sentence>,
    ) -> Result<(Vec<(Sentence, Option<f32>)>, Vec<String>), RowError> {
        let similarities = self.attack.constraints.similarities(&candidates)?;
        let kept: Vec<(Sentence, Option<f32>)> = candidates
            .into_iter()
            .zip(similarities)
            .filter(|(_, sim)| self.attack.constraints.similar_enough(*sim))
            .collect();
        let texts: Vec<&str> = kept.iter().map(|(s, _)| s.text()).collect();
        let need = self.missing(&texts);
        Ok((kept, need))
    }

    /// The answered candidates, scored, in order; those the budget left unasked are dropped.
    fn scored(&self, kept: Vec<(Sentence, Option<f32>)>) -> Vec<Scored> {
        let goal = self.goal.expect("set with the original");
        kept.into_iter()
            .filter_map(|(sentence, similarity)| {
                let prediction = self.seen.get(sentence.text())?.clone();
                Some(Scored {
                    score: goal.score(&prediction),
                    prediction,
                    sentence,
                    similarity,
                })
            })
            .collect()
    }

    /// The example's variant (the adversarial text, or the best attempt), or why it has none.
    fn into_result(self) -> Result<Vec<Perturbation>, SkipReason> {
        let (best, end) = self.outcome.unwrap_or(Err(SkipReason::TooFewWords))?;
        let changes = best.sentence.changes();
        let detail = changes
            .iter()
            .map(|c| format!("{}->{}", c.from, c.to))
            .collect::<Vec<_>>()
            .join(" ");
        Ok(vec![Perturbation {
            text: best.sentence.text().to_string(),
            detail,
            group: self.attack.name.to_string(),
            edit: Some(Box::new(WordEdit {
                words: best.sentence.len(),
                changes,
                similarity: best.similarity,
                end,
            })),
        }])
    }
}

/// `words` ordered by `importance`, highest first; ties keep text order.
fn ranked(words: &[usize], importance: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..words.len()).collect();
    order.sort_by(|&a, &b| {
        importance[b]
            .partial_cmp(&importance[a])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    order.into_iter().map(|k| words[k]).collect()
}

/// Run the searches of `rows` side by side: each round, every unfinished search says which
/// texts it needs, and all of them go to the model in one request (through its cache).
pub(super) fn run_all(
    attack: &WordAttack,
    rows: &[Target],
    model: &mut dyn TextModel,
    rngs: Vec<ChaCha8Rng>,
) -> Result<Vec<RowResult>, ModelError> {
    let mut searches: Vec<ExampleSearch> = rows
        .iter()
        .zip(rngs)
        .map(|(row, rng)| ExampleSearch::new(attack, row, rng))
        .collect();
    let mut active: Vec<usize> = (0..searches.len()).collect();
    let pairs = rows.iter().any(|r| r.context.is_some());
    while !active.is_empty() {
        let mut requests: Vec<(usize, Vec<String>)> = Vec::new();
        let mut still = Vec::with_capacity(active.len());
        for &i in &active {
            match searches[i].poll() {
                Ok(Poll::Need(texts)) => {
                    requests.push((i, texts));
                    still.push(i);
                }
                Ok(Poll::Finished) => {}
                Err(RowError::Skip(reason)) => searches[i].outcome = Some(Err(reason)),
                Err(RowError::Model(e)) => return Err(e),
            }
        }
        active = still;
        if requests.is_empty() {
            break;
        }
        let predictions = if pairs {
            let inputs: Vec<crate::model::Input> = requests
                .iter()
                .flat_map(|(i, texts)| texts.iter().map(|t| searches[*i].input(t)))
                .collect();
            model.predict_inputs(&inputs, &mut |_, _| {})?
        } else {
            let texts: Vec<&str> = requests
                .iter()
                .flat_map(|(_, texts)| texts.iter().map(String::as_str))
                .collect();
            model.predict(&texts)?
        };
        let mut answers = predictions.into_iter();
        for (i, texts) in requests {
            let got: Vec<Prediction> = answers.by_ref().take(texts.len()).collect();
            searches[i].answer(texts, got);
        }
    }
    Ok(searches
        .into_iter()
        .map(|s| {
            let searched = s.queries();
            RowResult {
                variants: s.into_result(),
                searched,
            }
        })
        .collect())
}

/// The highest-scoring entry, the first on ties.
fn best_of(scored: &[Scored]) -> Option<&Scored> {
    scored
        .iter()
        .fold(None, |best: Option<&Scored>, c| match best {
            Some(b) if b.score >= c.score => Some(b),
            _ => Some(c),
        })
}

/// What a word is replaced by for the unknown-token ranking (BERT's spelling; other
/// vocabularies split it into pieces, which still blanks the word out).
const UNK: &str = "[UNK]";
/// What a word is replaced by for the mask ranking.
const MASK: &str = "[MASK]";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::runner::{RowAttack, run};
    use crate::attack::word::constraint::Constraints;
    use crate::attack::word::{SearchSettings, Transformation};
    use crate::perturb::SearchEnd;
    use crate::testing::KeywordModel;

    /// Replacements from a fixed table, whatever the sentence.
    struct Table(&'static [(&'static str, &'static [&'static str])]);

    impl Transformation for Table {
        fn replacements(
            &self,
            sentence: &Sentence,
            index: usize,
            _rng: &mut ChaCha8Rng,
        ) -> Result<Vec<String>, ModelError> {
            let word = sentence.word(index);
            Ok(self
                .0
                .iter()
                .find(|(w, _)| *w == word)
                .map(|(_, r)| r.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default())
        }
    }

    fn attack(table: &'static [(&'static str, &'static [&'static str])]) -> WordAttack {
        WordAttack {
            name: "table",
            transformation: Box::new(Table(table)),
            constraints: Constraints::default(),
            search: SearchSettings {
                goal: Goal::Untargeted,
                ranking: Ranking::Delete,
                beam: 1,
                example_budget: Some(100),
            },
        }
    }

    fn target(text: &str, gold: usize) -> Target {
        Target {
            line: 2,
            text: text.into(),
            gold: Some(gold),
            context: None,
        }
    }

    fn edit(p: &Perturbation) -> &WordEdit {
        p.edit
            .as_deref()
            .expect("a search's variant carries its edit")
    }

    #[test]
    fn the_search_changes_the_most_important_words_until_the_label_flips() {
        // "good" and "fine" are the positive cues; both must go before the label turns.
        let a = attack(&[("good", &["okay", "bad"]), ("fine", &["plain", "awful"])]);
        let t = [target("a good and fine film", 1)];
        let out = run(&mut KeywordModel::default(), &t, &a, 3, &mut |_, _| {}).unwrap();
        let o = &out.outcomes[0];
        let v = &o.result.as_ref().unwrap()[0];
        assert_eq!(edit(&v.perturbation).end, SearchEnd::Succeeded);
        assert_ne!(v.prediction.label, 1, "{}", v.perturbation.text);
        assert_eq!(edit(&v.perturbation).words, 5);
        // Every query is a distinct text: the original, five deletions, then candidates.
        assert!(o.queries >= 1 + 5 + 2, "{}", o.queries);
        assert_eq!(out.queries.model_queries, o.queries, "nothing asked twice");
    }

    #[test]
    fn misclassified_originals_are_skipped_and_a_budget_stops_the_search() {
        let a = attack(&[("good", &["okay", "bad"])]);
        let t = [target("a good film", 0)];
        let out = run(&mut KeywordModel::default(), &t, &a, 3, &mut |_, _| {}).unwrap();
        assert!(matches!(
            out.outcomes[0].result,
            Err(SkipReason::Misclassified)
        ));
        assert_eq!(out.outcomes[0].queries, 1, "only the original was asked");

        let mut tight = attack(&[("good", &["okay", "bad"])]);
        tight.search.example_budget = Some(3);
        let t = [target("a good film", 1)];
        let out = run(&mut KeywordModel::default(), &t, &tight, 3, &mut |_, _| {}).unwrap();
        let o = &out.outcomes[0];
        assert!(o.queries <= 3, "{}", o.queries);
        assert_eq!(
            edit(&o.result.as_ref().unwrap()[0].perturbation).end,
            SearchEnd::OutOfBudget
        );
    }

    #[test]
    fn a_search_that_cannot_flip_fails_and_stop_words_are_never_changed() {
        let mut a = attack(&[("good", &["fine"]), ("a", &["bad"])]);
        a.constraints.stop_words = ["a".to_string()].into();
        let t = [target("a good film", 1)];
        let out = run(&mut KeywordModel::default(), &t, &a, 3, &mut |_, _| {}).unwrap();
        let v = &out.outcomes[0].result.as_ref().unwrap()[0];
        assert_eq!(edit(&v.perturbation).end, SearchEnd::Failed);
        assert!(!v.perturbation.text.contains("bad"), "the stop word stayed");
    }

    /// Many rows searched side by side give what each gives alone: one request per round
    /// changes nothing a row sees.
    #[test]
    fn rows_searched_together_equal_rows_searched_alone() {
        let a = attack(&[
            ("good", &["okay", "bad"]),
            ("fine", &["plain", "awful"]),
            ("great", &["big"]),
        ]);
        let rows = [
            target("a good and fine film", 1),
            target("great fun", 1),
            target("a good film", 1),
        ];
        let together = run(&mut KeywordModel::default(), &rows, &a, 9, &mut |_, _| {}).unwrap();
        for (i, row) in rows.iter().enumerate() {
            let mut model = KeywordModel::default();
            let rng = crate::attack::runner::example_rng(9, i);
            let alone = a
                .attack_rows(std::slice::from_ref(row), &mut model, vec![rng])
                .unwrap();
            let got = together.outcomes[i].result.as_ref().unwrap();
            let want = alone[0].variants.as_ref().unwrap();
            assert_eq!(got[0].perturbation, want[0]);
            assert_eq!(together.outcomes[i].queries, alone[0].searched);
        }
    }

    #[test]
    fn a_beam_keeps_several_texts_and_still_finds_the_flip() {
        let mut a = attack(&[("good", &["okay", "nice"]), ("fine", &["awful", "plain"])]);
        a.search.beam = 3;
        let t = [target("good fine", 1)];
        let out = run(&mut KeywordModel::default(), &t, &a, 1, &mut |_, _| {}).unwrap();
        let v = &out.outcomes[0].result.as_ref().unwrap()[0];
        assert_eq!(edit(&v.perturbation).end, SearchEnd::Succeeded);
        assert_eq!(v.prediction.label, 0);
    }
}
