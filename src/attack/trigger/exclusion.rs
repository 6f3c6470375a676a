//! What a trigger search keeps out beyond the listed words as written, and, for each word of
//! the trigger it found, why it got through.
//!
//! Why both halves: an exclusion is only as good as what it misses, so the words the search
//! was offered and the ones it kept are reported against every opinion lexicon robust can find
//! (including the audit lexicons no default search is built from), with their polarity score
//! and the model's answer on the word alone. A reader of `trigger.json` can then see that a
//! trigger is free of sentiment words by more than one measure, or see that it is not.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::config::{ExclusionList, TriggerSettings};
use super::error::TriggerError;
use crate::lexicon::opinion::{Matcher, SOURCES, Source, Via, list_name};
use crate::lexicon::polarity::{CONTEXT, NEGATIVE_SEEDS, Orientation, POSITIVE_SEEDS};
use crate::lexicon::wordnet::WordNet;
use crate::model::sentence::SentenceEncoder;
use crate::model::{Classifier, InferenceOptions};

/// How many vocabulary candidates each stage of the exclusion took out.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ExclusionReport {
    /// Candidates before any exclusion list (specials, subwords, numbers, stop words and label
    /// names already out).
    pub candidates: usize,
    /// Taken out by a listed word as written, or the piece that starts one.
    pub listed: usize,
    /// Taken out because a base form is listed (or is a base form of a listed word).
    pub forms: usize,
    /// Taken out as a WordNet synonym or derivational relative of a listed word.
    pub propagation: usize,
    /// Taken out by the polarity filter.
    pub polarity: usize,
    /// What the search may use.
    pub allowed: usize,
    /// Whether base forms were matched, and the propagation depth.
    pub forms_matched: bool,
    pub propagation_depth: usize,
    /// Words that propagation reached and no list holds in any form.
    pub propagated_words: usize,
    /// The polarity filter, when on.
    pub polarity_filter: Option<PolarityReport>,
    /// Orientation of every word scored (by token id), for the explanations.
    #[serde(skip)]
    pub scores: HashMap<u32, f64>,
}

/// The polarity filter as run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PolarityReport {
    pub threshold: f64,
    pub encoder: String,
    pub encoder_sha256: String,
    pub context: &'static str,
    pub positive_seeds: [&'static str; 7],
    pub negative_seeds: [&'static str; 7],
}

/// Takes out of `allowed` what the settings' exclusion reaches beyond the listed words as
/// written: base forms and WordNet neighbours of listed words, then words whose orientation is
/// at least the polarity threshold in size. `word_of` gives a token's bare word.
pub(crate) fn widen(
    allowed: Vec<u32>,
    word_of: &dyn Fn(u32) -> String,
    settings: &TriggerSettings,
    report: &mut ExclusionReport,
) -> Result<Vec<u32>, TriggerError> {
    let exclusion = &settings.exclusion;
    report.forms_matched = exclusion.forms && exclusion.wordnet.is_some();
    report.propagation_depth = exclusion.propagation;
    let mut allowed = allowed;
    if !settings.exclude.is_empty() && exclusion.wordnet.is_some() {
        let lists: Vec<&ExclusionList> = settings.exclude.iter().collect();
        let matcher = Matcher::new(
            &lists,
            exclusion.wordnet.clone(),
            exclusion.forms,
            exclusion.propagation,
        );
        report.propagated_words = matcher.propagated_only();
        allowed.retain(|&id| {
            let found = matcher.matches(&word_of(id));
            if found.iter().any(|(_, via)| *via == Via::Form) {
                report.forms += 1;
                false
            } else if !found.is_empty() {
                report.propagation += 1;
                false
            } else {
                true
            }
        });
    }
    if let Some(filter) = &exclusion.polarity {
        let encoder = SentenceEncoder::load(&filter.encoder, InferenceOptions::default())?;
        let encoder_sha256 = encoder.sha256()?;
        let mut orientation = Orientation::new(encoder)?;
        let words: Vec<String> = allowed.iter().map(|&id| word_of(id)).collect();
        let refs: Vec<&str> = words.iter().map(String::as_str).collect();
        let scores = orientation.scores(&refs)?;
        let mut kept = Vec::with_capacity(allowed.len());
        for (&id, &score) in allowed.iter().zip(&scores) {
            report.scores.insert(id, score);
            if score.abs() >= filter.threshold {
                report.polarity += 1;
            } else {
                kept.push(id);
            }
        }
        allowed = kept;
        report.polarity_filter = Some(PolarityReport {
            threshold: filter.threshold,
            encoder: filter.encoder.display().to_string(),
            encoder_sha256,
            context: CONTEXT,
            positive_seeds: POSITIVE_SEEDS,
            negative_seeds: NEGATIVE_SEEDS,
        });
    }
    report.allowed = allowed.len();
    Ok(allowed)
}

/// A lexicon an explanation consulted.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Consulted {
    pub name: String,
    pub path: String,
    pub sha256: String,
    pub words: usize,
    /// `exclude` (built this search's exclusion), `audit` (a known lexicon it was not built
    /// from) or `given` (named by --exclude).
    pub role: &'static str,
}

/// One word of the trigger, or of the shortlist, explained.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WordExplanation {
    pub word: String,
    /// The lexicons that list it in some form (its own or a base form's).
    pub lexicons: Vec<String>,
    /// Its orientation, when the polarity filter ran.
    pub polarity: Option<f64>,
    /// The model's answer on the word alone (trigger words only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction: Option<WordPrediction>,
}

/// The model's answer on a word alone.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WordPrediction {
    pub label: String,
    pub probability: f64,
}

/// The explanations of a trigger: the lexicons consulted, each trigger word, and each word the
/// search was offered.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Explanation {
    pub lexicons: Vec<Consulted>,
    /// Whether base forms were matched (WordNet was found).
    pub forms_matched: bool,
    pub words: Vec<WordExplanation>,
    pub shortlist: Vec<WordExplanation>,
}

/// WordNet for matching base forms: the exclusion's, else the default folder if there is one
/// (an explanation does without it rather than fail).
fn explanation_wordnet(settings: &TriggerSettings) -> Option<Arc<WordNet>> {
    settings.exclusion.wordnet.clone().or_else(|| {
        crate::attack::word::recipe::default_wordnet_dir()
            .and_then(|dir| WordNet::open(&dir).ok())
            .map(Arc::new)
    })
}

/// Explains `words` (the trigger's, with their ids where searched) and the `shortlist`
/// against the settings' lists and every known lexicon found, with the model's answer on each
/// trigger word alone.
pub(crate) fn explain(
    classifier: &mut Classifier,
    settings: &TriggerSettings,
    words: &[(String, Option<u32>)],
    shortlist: &[(String, u32)],
    report: &ExclusionReport,
) -> Result<Explanation, TriggerError> {
    let mut lists: Vec<ExclusionList> = Vec::new();
    let mut consulted: Vec<Consulted> = Vec::new();
    let known = |name: &str| Source::named(name);
    for list in &settings.exclude {
        let name = list_name(list);
        let role = match known(&name) {
            Some(_) => "exclude",
            None => "given",
        };
        consulted.push(consulted_of(list, role));
        lists.push(list.clone());
    }
    for source in SOURCES.iter() {
        if lists.iter().any(|l| list_name(l) == source.name) {
            continue;
        }
        // A lexicon that cannot be read here is left out of the explanation, which names
        // the ones it consulted.
        let Ok(Some(found)) = source.find() else {
            continue;
        };
        let Ok(list) = ExclusionList::from_bytes(&found.path, &found.bytes) else {
            continue;
        };
        // Not part of this search's exclusion, whatever its default role.
        consulted.push(consulted_of(&list, "audit"));
        lists.push(list);
    }
    let wordnet = explanation_wordnet(settings);
    let forms_matched = wordnet.is_some();
    let refs: Vec<&ExclusionList> = lists.iter().collect();
    let matcher = Matcher::new(&refs, wordnet, true, 0);
    let listed = |w: &str| -> Vec<String> {
        matcher
            .matches(w)
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    };
    let texts: Vec<&str> = words.iter().map(|(w, _)| w.as_str()).collect();
    let predictions = if texts.is_empty() {
        Vec::new()
    } else {
        classifier.predict(&texts)?
    };
    let labels = classifier.labels().to_vec();
    let explained = words
        .iter()
        .zip(predictions.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|((word, id), p)| WordExplanation {
            word: word.clone(),
            lexicons: listed(word),
            polarity: id.and_then(|id| report.scores.get(&id).copied()),
            prediction: p.map(|p| WordPrediction {
                label: labels.get(p.label).cloned().unwrap_or_default(),
                probability: f64::from(p.probs.get(p.label).copied().unwrap_or(0.0)),
            }),
        })
        .collect();
    let shortlist = shortlist
        .iter()
        .map(|(word, id)| WordExplanation {
            word: word.clone(),
            lexicons: listed(word),
            polarity: report.scores.get(id).copied(),
            prediction: None,
        })
        .collect();
    Ok(Explanation {
        lexicons: consulted,
        forms_matched,
        words: explained,
        shortlist,
    })
}

fn consulted_of(list: &ExclusionList, role: &'static str) -> Consulted {
    Consulted {
        name: list_name(list),
        path: list.path.display().to_string(),
        sha256: list.sha256.clone(),
        words: list.size,
        role,
    }
}
