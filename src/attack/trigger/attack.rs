//! The trigger attack as a whole: resolve the labels and the vocabulary, search a trigger on
//! the search corpus (or take the one given), and evaluate it on the evaluation corpus beside
//! random triggers of the same length.
//!
//! Search and evaluation use different data (by default SST-2 train and dev): the original
//! code searched and reported on the same examples, which overstates how universal a trigger
//! is. The random triggers are the baseline that says how much of a flip rate is the trigger's
//! and how much is any text put before the input.

use rand::RngExt;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::config::{Position, Proposals, TriggerConfig, TriggerSettings};
use super::error::TriggerError;
use super::exclusion::{ExclusionReport, widen};
use super::placement::{SearchExample, Specials};
use super::search::{SearchHooks, TokenText, TriggerResult, TriggerSearch};
use super::state::CurvePoint;
use super::vocabulary::{
    VocabularyKind, allowed_tokens, exclusion_stop_words, sorted_vocabulary, token_of, word_id,
};
use crate::attack::runner::Target;
use crate::data::corpus::Corpus;
use crate::model::embed::EmbeddingModel;
use crate::model::tokenize::TokenIds;
use crate::model::{Classifier, Input, Prediction};
use crate::perturb::{Perturbation, SkipReason};
use crate::score::{ExampleOutcome, PerturbedOutcome};

/// Everything a trigger attack produced.
pub(crate) struct TriggerAttack {
    pub result: TriggerResult,
    pub proposals: Proposals,
    pub target: Option<usize>,
    pub source: Option<usize>,
    pub search_examples: usize,
    /// Evaluation outcomes with the searched trigger (group "trigger").
    pub searched: Vec<ExampleOutcome>,
    /// Evaluation outcomes with random triggers of the same length (groups "random-1", ...).
    pub baseline: Vec<ExampleOutcome>,
    pub random_triggers: Vec<String>,
    /// What the exclusion took out of the vocabulary, stage by stage.
    pub exclusion: ExclusionReport,
    /// The trigger's words (bare, as the vocabulary has them; a given trigger's as written),
    /// with their ids when searched.
    pub trigger_words: Vec<(String, Option<u32>)>,
    /// Every token the search was offered, as its bare word, in the order first proposed.
    pub shortlist: Vec<(String, u32)>,
}

fn label_index(
    model: &Classifier,
    role: &'static str,
    label: Option<&str>,
) -> Result<Option<usize>, TriggerError> {
    label
        .map(|l| {
            model
                .info()
                .label_index(l)
                .ok_or_else(|| TriggerError::Label {
                    role,
                    label: l.to_string(),
                    known: model.labels().to_vec(),
                })
        })
        .transpose()
}

/// Whether an example of `gold` is attacked: the source class when given, else every class
/// but the target (targeted), else everything (untargeted).
fn attacked(gold: usize, source: Option<usize>, target: Option<usize>) -> bool {
    match (source, target) {
        (Some(s), _) => gold == s,
        (None, Some(t)) => gold != t,
        (None, None) => true,
    }
}

/// The ids the tokenizer wraps every sequence in; placement needs exactly `[CLS] ... [SEP]`.
fn specials_of(classifier: &Classifier) -> Result<Specials, TriggerError> {
    let wrapped = classifier.encode(&[""])?.remove(0).input.ids.to_vec();
    let [cls, sep] = wrapped[..] else {
        return Err(TriggerError::Specials(wrapped));
    };
    Ok(Specials { cls, sep })
}

/// A sequence's ids without the special tokens around it.
fn strip(ids: &[u32]) -> Vec<u32> {
    ids[1..ids.len().saturating_sub(1).max(1)].to_vec()
}

/// What a search is asked for, resolved against the model.
struct Request<'a> {
    settings: &'a TriggerSettings,
    config: &'a TriggerConfig,
    specials: Specials,
    allowed: &'a [u32],
    decode: &'a TokenText<'a>,
    source: Option<usize>,
    target: Option<usize>,
}

/// Search for a trigger on `search` and evaluate it, and random baselines, on `eval`.
pub(crate) fn run_attack(
    classifier: &mut Classifier,
    settings: &TriggerSettings,
    eval: &[Target],
    search: Option<&Corpus>,
    seed: u64,
    hooks: SearchHooks,
    log: &mut dyn FnMut(&CurvePoint),
) -> Result<TriggerAttack, TriggerError> {
    let target = label_index(classifier, "target", settings.target.as_deref())?;
    let source = label_index(classifier, "source", settings.source.as_deref())?;
    let mut config = settings.config.clone();
    config.target = target;
    let special_ids = classifier.encoder().special_ids();
    if !settings.exclude.is_empty() {
        let stop = exclusion_stop_words(classifier, &settings.exclude, &special_ids)?;
        config.stop_words.extend(stop);
    }
    let specials = specials_of(classifier)?;
    let vocab = sorted_vocabulary(classifier);
    let marker = classifier.encoder().word_marker();
    let kind = VocabularyKind {
        special_ids: &special_ids,
        marker: &marker,
    };
    let allowed = allowed_tokens(&vocab, &kind, &config, classifier.labels());
    let word_of = |id: u32| kind.marker.bare(&token_of(&vocab, id)).0.to_string();
    let mut exclusion = ExclusionReport::default();
    let allowed = if settings.given.is_none()
        && (!settings.exclude.is_empty() || settings.exclusion.widens())
    {
        exclusion.candidates =
            allowed_tokens(&vocab, &kind, &settings.config, classifier.labels()).len();
        exclusion.listed = exclusion.candidates - allowed.len();
        widen(allowed, &word_of, settings, &mut exclusion)?
    } else {
        allowed
    };
    if allowed.is_empty() {
        return Err(TriggerError::EmptyVocabulary);
    }
    // The trigger as text is what the tokenizer's own decoder makes of its ids: that text,
    // placed in a sentence, is what examples.csv holds and what is evaluated below.
    let tokenizer = classifier.encoder().tokenizer().clone();
    let decode = |ids: &[u32]| -> (Vec<String>, String) {
        let tokens: Vec<String> = ids.iter().map(|&i| token_of(&vocab, i)).collect();
        let text = tokenizer
            .decode(ids, true)
            .map(|t| t.trim().to_string())
            .unwrap_or_else(|_| tokens.join(" "));
        (tokens, text)
    };
    let (result, search_examples, proposals) = match (&settings.given, search) {
        (Some(text), _) => {
            // A given trigger is any text: it is tokenized as the model would tokenize it, so
            // words of several pieces are allowed, and the variant is written as given.
            let encoded = classifier.encode(&[text.as_str()])?.remove(0).input;
            let ids = strip(&encoded.ids);
            let tokens = decode(&ids).0;
            let result = TriggerResult {
                ids,
                tokens,
                text: text.clone(),
                validation_loss: f64::NAN,
                curve: Vec::new(),
                queries: 0,
                seconds: 0.0,
                shortlist: Vec::new(),
            };
            (result, 0, config.proposals)
        }
        (None, Some(search)) => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let request = Request {
                settings,
                config: &config,
                specials,
                allowed: &allowed,
                decode: &decode,
                source,
                target,
            };
            search_trigger(classifier, &request, search, &mut rng, hooks, log)?
        }
        (None, None) => {
            return Err(TriggerError::NoExamples(
                "no search corpus and no given trigger".into(),
            ));
        }
    };
    let given_text = settings.given.as_deref();
    // Random baselines have the given trigger's length in word pieces.
    let length = if given_text.is_some() {
        result.ids.len()
    } else {
        config.length
    };
    let random = random_triggers(seed, settings.random_baselines, length, &allowed);
    let evaluation = Evaluation::new(classifier, eval, source, target, config.position)?;
    let searched_text = given_text.map_or_else(|| decode(&result.ids).1, str::to_string);
    let searched = evaluation.outcomes(classifier, &searched_text, "trigger")?;
    let mut baseline = Vec::new();
    let mut random_triggers = Vec::new();
    for (i, r) in random.iter().enumerate() {
        let text = decode(r).1;
        let outcomes = evaluation.outcomes(classifier, &text, &format!("random-{}", i + 1))?;
        random_triggers.push(text);
        if baseline.is_empty() {
            baseline = outcomes;
        } else {
            merge_baseline(&mut baseline, outcomes);
        }
    }
    let trigger_words = match given_text {
        Some(text) => text
            .split_whitespace()
            .map(|w| (w.to_string(), None))
            .collect(),
        None => result
            .ids
            .iter()
            .map(|&id| (word_of(id), Some(id)))
            .collect(),
    };
    let shortlist = result
        .shortlist
        .iter()
        .map(|&id| (word_of(id), id))
        .collect();
    Ok(TriggerAttack {
        result,
        proposals,
        target,
        source,
        search_examples,
        searched,
        baseline,
        random_triggers,
        exclusion,
        trigger_words,
        shortlist,
    })
}

/// `count` random triggers of `length` allowed tokens, from their own stream of the seed (so
/// that they do not depend on how long the search ran).
fn random_triggers(seed: u64, count: usize, length: usize, allowed: &[u32]) -> Vec<Vec<u32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1);
    (0..count)
        .map(|_| {
            (0..length)
                .map(|_| allowed[rng.random_range(0..allowed.len())])
                .collect()
        })
        .collect()
}

/// One random trigger's outcomes joined to the baseline's: one report row per example, with
/// a variant per random trigger.
fn merge_baseline(baseline: &mut [ExampleOutcome], outcomes: Vec<ExampleOutcome>) {
    for (b, o) in baseline.iter_mut().zip(outcomes) {
        if let (Ok(vs), Ok(mut new)) = (b.result.as_mut(), o.result) {
            vs.append(&mut new);
        }
        b.queries += 1;
    }
}

/// The evaluation rows a trigger is tried on (the attacked classes'), with the model's
/// predictions on them as they are.
struct Evaluation<'e> {
    rows: Vec<&'e Target>,
    originals: Vec<Prediction>,
    position: Position,
}

impl<'e> Evaluation<'e> {
    fn new(
        classifier: &mut Classifier,
        eval: &'e [Target],
        source: Option<usize>,
        target: Option<usize>,
        position: Position,
    ) -> Result<Self, TriggerError> {
        let rows: Vec<&Target> = eval
            .iter()
            .filter(|t| t.gold.is_some_and(|g| attacked(g, source, target)))
            .collect();
        let originals = if rows.iter().any(|t| t.context.is_some()) {
            let inputs: Vec<Input> = rows.iter().map(|t| t.input(&t.text)).collect();
            classifier.predict_inputs(&inputs, &mut |_, _| {})?
        } else {
            let texts: Vec<&str> = rows.iter().map(|t| t.text.as_str()).collect();
            let encoded = classifier.encode(&texts)?;
            let ids: Vec<TokenIds> = encoded.into_iter().map(|e| e.input).collect();
            classifier.predict_ids(&ids, &mut |_, _| {})?
        };
        Ok(Self {
            rows,
            originals,
            position,
        })
    }

    /// Every row with `trigger_text` placed in it, as variants of `group`.
    ///
    /// Triggers are evaluated as text: each perturbed sentence is tokenized as `robust
    /// predict` would tokenize it, so every row of examples.csv reproduces when fed back,
    /// whatever the tokenizer makes of a word at the start of a sentence (byte-level BPE) or
    /// of the space between trigger and text.
    fn outcomes(
        &self,
        classifier: &mut Classifier,
        trigger_text: &str,
        group: &str,
    ) -> Result<Vec<ExampleOutcome>, TriggerError> {
        let perturbed: Vec<String> = self
            .rows
            .iter()
            .map(|t| match self.position {
                Position::Prefix => format!("{trigger_text} {}", t.text),
                Position::Suffix => format!("{} {trigger_text}", t.text),
            })
            .collect();
        let inputs: Vec<Input> = self
            .rows
            .iter()
            .zip(&perturbed)
            .map(|(t, p)| t.input(p))
            .collect();
        // #30 item 11: a suffix trigger on an input longer than the model's limit is cut off
        // with the end of the input; such rows are skipped with their reason, not counted as
        // rows the trigger failed to flip.
        let cut: Vec<bool> = match self.position {
            Position::Suffix => classifier
                .encode_inputs(&inputs)?
                .iter()
                .map(|e| e.truncated)
                .collect(),
            Position::Prefix => vec![false; inputs.len()],
        };
        let predictions = classifier.predict_inputs(&inputs, &mut |_, _| {})?;
        Ok(self
            .rows
            .iter()
            .zip(&self.originals)
            .zip(predictions)
            .zip(perturbed)
            .zip(cut)
            .map(
                |((((t, original), prediction), text), cut)| ExampleOutcome {
                    line: t.line,
                    text: t.text.clone(),
                    context: t.context.clone(),
                    gold: t.gold,
                    original: original.clone(),
                    result: if cut {
                        Err(SkipReason::TriggerTruncated)
                    } else {
                        Ok(vec![PerturbedOutcome {
                            perturbation: Perturbation {
                                text,
                                detail: format!("trigger '{trigger_text}'"),
                                group: group.to_string(),
                                edit: None,
                            },
                            prediction,
                        }])
                    },
                    queries: 2,
                },
            )
            .collect())
    }
}

/// Search a trigger on `search` (the attacked class's correctly classified examples); with
/// the number of search examples and the proposals the search used (random where the
/// embedding graph could not be built).
fn search_trigger(
    classifier: &mut Classifier,
    request: &Request,
    search: &Corpus,
    rng: &mut ChaCha8Rng,
    hooks: SearchHooks,
    log: &mut dyn FnMut(&CurvePoint),
) -> Result<(TriggerResult, usize, Proposals), TriggerError> {
    let mut config = request.config.clone();
    let examples = search_examples(classifier, request, search, rng)?;
    let info = classifier.info().clone();
    let options = classifier.options().clone();
    let mut embedded = match EmbeddingModel::load(&info, &options) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(
                "cannot build the embedding-input graph ({e}); falling back to random proposals"
            );
            config.proposals = Proposals::Random;
            None
        }
    };
    let init = initial_trigger(classifier, &config, request.allowed)?;
    let mut search = TriggerSearch {
        classifier: &mut *classifier,
        embedded: embedded.as_mut(),
        specials: request.specials,
        config: config.clone(),
        hooks,
    };
    let result = search.run(init, &examples, request.allowed, rng, request.decode, log)?;
    Ok((result, examples.len(), config.proposals))
}

/// Search examples: the attacked class(es), long enough to resemble sentences, and classified
/// correctly to begin with (there is nothing to flip otherwise).
fn search_examples(
    classifier: &mut Classifier,
    request: &Request,
    search: &Corpus,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<SearchExample>, TriggerError> {
    let settings = request.settings;
    let (source, target) = (request.source, request.target);
    if search.label_column.is_none() {
        return Err(TriggerError::NoLabels {
            path: search.path.clone(),
        });
    }
    let gold = search.label_indices(classifier.info())?;
    let texts: Vec<&str> = search
        .rows
        .iter()
        .zip(&gold)
        .filter(|(_, g)| attacked(**g, source, target))
        .map(|(r, _)| r.text.as_str())
        .collect();
    let golds: Vec<usize> = gold
        .iter()
        .copied()
        .filter(|&g| attacked(g, source, target))
        .collect();
    let encoded = classifier.encode(&texts)?;
    let mut candidates: Vec<(TokenIds, usize)> = encoded
        .into_iter()
        .zip(golds)
        .filter(|(e, _)| e.input.len() >= settings.min_search_tokens + 2)
        .map(|(e, g)| (e.input, g))
        .collect();
    candidates.shuffle(rng);
    // Check correctness on a few more than needed, then keep the first that are right.
    candidates.truncate(settings.max_search_examples.saturating_mul(2));
    let inputs: Vec<TokenIds> = candidates.iter().map(|(t, _)| t.clone()).collect();
    let predictions = classifier.predict_ids(&inputs, &mut |_, _| {})?;
    Ok(candidates
        .iter()
        .zip(&predictions)
        .filter(|((_, g), p)| p.label == *g)
        .map(|((t, g), _)| SearchExample {
            ids: strip(&t.ids),
            gold: *g,
        })
        .take(settings.max_search_examples)
        .collect())
}

/// The trigger a search starts from: `init`'s words, else "the" repeated (unless an
/// exclusion list keeps it out).
fn initial_trigger(
    classifier: &Classifier,
    config: &TriggerConfig,
    allowed: &[u32],
) -> Result<Vec<u32>, TriggerError> {
    let marker = classifier.encoder().word_marker();
    let init: Vec<u32> = match &config.init {
        Some(words) => words
            .iter()
            .map(|w| {
                word_id(classifier, &marker, w)
                    .ok_or_else(|| TriggerError::InitToken { token: w.clone() })
            })
            .collect::<Result<_, _>>()?,
        None => {
            let the = word_id(classifier, &marker, "the")
                .filter(|id| allowed.binary_search(id).is_ok())
                .unwrap_or(allowed[0]);
            vec![the; config.length]
        }
    };
    if init.len() != config.length {
        return Err(TriggerError::InitLength {
            got: init.len(),
            length: config.length,
        });
    }
    Ok(init)
}
