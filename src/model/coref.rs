//! Pronoun resolution with a span-candidate classifier.
//!
//! A coreference model here is an ordinary sequence classifier whose folder also declares, in
//! `input.toml`, how a row with character spans becomes its inputs: which markers wrap the
//! pronoun and the candidate, and whether the candidate's name is a second segment. Keeping the
//! template in the model folder (and reading the same file in the training recipe) means the
//! attack code knows nothing about GAP or about this model: it rewrites spans, and the template
//! turns rows into exactly the inputs the model was trained on. The folder's kind
//! ([`ModelKind::CorefSpans`](crate::model::ModelKind)) is decided by that file alone.
//!
//! A row resolves to the candidate whose "refers to" probability is highest and above one half,
//! or to neither. That resolution (A, B or neither) is what the name-swap attack checks for
//! change, and what GAP's per-candidate F1 is computed from ([`crate::score::gap`]).
//!
//! The model sees rows only through [`CandidateRow`], which the span corpus implements: the
//! model does not depend on the data format, and GAP's scoring lives with the other scores,
//! so neither the data nor the scores form a loop with the model.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::model::{Classifier, ModelError, Prediction, Progress};

/// The span template in a coreference model's folder.
pub const INPUT_FILE: &str = "input.toml";
/// The label of a row resolved to no candidate.
pub const NEITHER: &str = "neither";

/// Why a coreference model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CorefError {
    /// `input.toml` names a positive label the model does not have.
    #[error("{path} is not valid: {message}")]
    Invalid {
        /// The template file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The model folder has no `input.toml`: it is a plain classifier.
    #[error(
        "model {dir} has no {INPUT_FILE}: it is a plain text classifier, and span rows need a model that declares its input template"
    )]
    NoTemplate {
        /// The model folder.
        dir: PathBuf,
    },
    /// The classifier failed, or `input.toml` could not be read or parsed.
    #[error(transparent)]
    Model(#[from] ModelError),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputFile {
    kind: String,
    positive_label: String,
    second_segment: Option<String>,
    markers: MarkerFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkerFile {
    pronoun: [String; 2],
    candidate: [String; 2],
}

/// How a span row becomes one model input per candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanTemplate {
    /// The classifier label that means "the pronoun refers to this candidate".
    pub positive_label: String,
    /// Pair the marked text with the candidate's name as a second segment.
    pub pair_with_candidate: bool,
    /// Text put before and after the pronoun.
    pub pronoun_markers: [String; 2],
    /// Text put before and after the candidate's mention.
    pub candidate_markers: [String; 2],
}

impl SpanTemplate {
    /// The template of a model folder, if it has one.
    pub fn read(dir: &Path) -> Result<Option<Self>, ModelError> {
        let path = dir.join(INPUT_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(&path, &text).map(Some)
    }

    /// Parse the text of an `input.toml` (kind `span-candidate`); `path` only names the file in
    /// errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ModelError> {
        let invalid = |message: String| ModelError::BadConfig {
            path: path.to_path_buf(),
            message,
        };
        let file: InputFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if file.kind != "span-candidate" {
            return Err(invalid(format!(
                "kind {:?} is not supported (only \"span-candidate\")",
                file.kind
            )));
        }
        let pair_with_candidate = match file.second_segment.as_deref() {
            None => false,
            Some("candidate") => true,
            Some(other) => {
                return Err(invalid(format!(
                    "second_segment {other:?} is not supported (only \"candidate\")"
                )));
            }
        };
        for m in file.markers.pronoun.iter().chain(&file.markers.candidate) {
            if m.is_empty() {
                return Err(invalid("markers must not be empty".into()));
            }
        }
        Ok(Self {
            positive_label: file.positive_label,
            pair_with_candidate,
            pronoun_markers: file.markers.pronoun,
            candidate_markers: file.markers.candidate,
        })
    }

    /// The model input for candidate `index` of a row: the text with the pronoun and that
    /// candidate's mention wrapped in markers, and the second segment if the template pairs.
    pub fn input<R: CandidateRow + ?Sized>(
        &self,
        row: &R,
        index: usize,
    ) -> (String, Option<String>) {
        row.candidate_input(self, index)
    }
}

/// A row with a pronoun and candidate mentions, as the model needs it: the span corpus's rows
/// implement it, so the model does not depend on how rows are read or rewritten.
pub trait CandidateRow {
    /// The candidates' column names (`A`, `B`), in order.
    fn candidate_labels(&self) -> Vec<&str>;
    /// The model input for candidate `index` under `template`: the text with the pronoun and
    /// that candidate's mention wrapped in the template's markers, and the candidate's name as
    /// a second segment if the template pairs.
    fn candidate_input(&self, template: &SpanTemplate, index: usize) -> (String, Option<String>);
}

/// A model that resolves pronouns: a classifier plus its span template.
pub struct CorefModel {
    /// The candidate classifier.
    pub classifier: Classifier,
    /// How its folder turns span rows into inputs.
    pub template: SpanTemplate,
    positive: usize,
}

/// The model's answer for one row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowResolution {
    /// p(refers to candidate i), per candidate.
    pub coref: Vec<f32>,
    /// The chosen candidate, `None` for neither.
    pub resolved: Option<usize>,
}

impl RowResolution {
    /// The resolution of these probabilities: the most probable candidate above one half (the
    /// first on ties), else neither.
    pub fn from_probs(coref: Vec<f32>) -> Self {
        let mut resolved = None;
        for (i, &p) in coref.iter().enumerate() {
            if p > 0.5 && resolved.is_none_or(|b: usize| p > coref[b]) {
                resolved = Some(i);
            }
        }
        Self { coref, resolved }
    }

    /// Index into `labels(row)`: candidates first, then neither.
    pub fn label(&self) -> usize {
        self.resolved.unwrap_or(self.coref.len())
    }

    /// As a [`Prediction`] over candidates + neither, so the attack scorer treats a resolution
    /// like any label: the scores are p(candidate) and one half for neither, whose argmax is
    /// exactly the resolution rule.
    pub fn as_prediction(&self) -> Prediction {
        let mut scores: Vec<f32> = self.coref.iter().map(|p| p.max(1e-9).ln()).collect();
        scores.push(0.5f32.ln());
        let mut p = Prediction::from_logits(Arc::from(scores));
        p.label = self.label();
        p
    }
}

/// Labels of a resolution: the candidates' column names, then "neither".
pub fn labels<R: CandidateRow + ?Sized>(row: &R) -> Vec<String> {
    row.candidate_labels()
        .into_iter()
        .map(str::to_string)
        .chain(std::iter::once(NEITHER.to_string()))
        .collect()
}

impl CorefModel {
    /// Wrap a loaded classifier whose folder has an `input.toml`, whose positive label must
    /// be one of the classifier's.
    pub fn new(classifier: Classifier) -> Result<Self, CorefError> {
        let dir = classifier.info().dir.clone();
        let template =
            SpanTemplate::read(&dir)?.ok_or(CorefError::NoTemplate { dir: dir.clone() })?;
        let positive = classifier
            .info()
            .label_index(&template.positive_label)
            .ok_or_else(|| CorefError::Invalid {
                path: dir.join(INPUT_FILE),
                message: format!(
                    "positive_label {:?} is not one of the model's labels {:?}",
                    template.positive_label,
                    classifier.labels()
                ),
            })?;
        Ok(Self {
            classifier,
            template,
            positive,
        })
    }

    /// Resolve rows: every candidate of every row in one request, so batches are length-sorted
    /// across the corpus and repeated inputs come from the cache.
    pub fn resolve<R: CandidateRow + ?Sized>(
        &mut self,
        rows: &[&R],
        progress: Progress,
    ) -> Result<Vec<RowResolution>, ModelError> {
        let counts: Vec<usize> = rows.iter().map(|r| r.candidate_labels().len()).collect();
        let inputs: Vec<(String, Option<String>)> = rows
            .iter()
            .zip(&counts)
            .flat_map(|(r, &n)| (0..n).map(|i| r.candidate_input(&self.template, i)))
            .collect();
        let predictions = if self.template.pair_with_candidate {
            let pairs: Vec<(&str, &str)> = inputs
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_deref().unwrap_or("")))
                .collect();
            self.classifier.predict_pairs(&pairs, progress)?
        } else {
            let texts: Vec<&str> = inputs.iter().map(|(a, _)| a.as_str()).collect();
            self.classifier.predict_with_progress(&texts, progress)?
        };
        let mut it = predictions.into_iter();
        Ok(counts
            .into_iter()
            .map(|n| {
                let coref = it
                    .by_ref()
                    .take(n)
                    .map(|p| p.probs[self.positive])
                    .collect();
                RowResolution::from_probs(coref)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template_text(extra: &str) -> String {
        format!(
            "kind = \"span-candidate\"\npositive_label = \"x\"\n{extra}[markers]\npronoun=[\"<\",\">\"]\ncandidate=[\"[\",\"]\"]\n"
        )
    }

    #[test]
    fn committed_gap_template_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gap-minilm");
        let t = SpanTemplate::read(&dir)
            .unwrap()
            .expect("input.toml is committed");
        assert!(t.pair_with_candidate);
    }

    #[test]
    fn unknown_template_keys_and_kinds_are_errors() {
        let err = SpanTemplate::parse(Path::new("input.toml"), &template_text("colour = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("input.toml") && err.contains("colour"),
            "{err}"
        );
        let qa = template_text("").replace("span-candidate", "qa");
        let err = SpanTemplate::parse(Path::new("input.toml"), &qa)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"qa\""), "{err}");
    }

    #[test]
    fn resolution_takes_the_most_likely_candidate_above_one_half() {
        assert_eq!(RowResolution::from_probs(vec![0.7, 0.9]).resolved, Some(1));
        assert_eq!(RowResolution::from_probs(vec![0.7, 0.2]).resolved, Some(0));
        assert_eq!(RowResolution::from_probs(vec![0.4, 0.2]).resolved, None);
        let r = RowResolution::from_probs(vec![0.4, 0.6]);
        assert_eq!(r.as_prediction().label, 1);
        assert_eq!(
            RowResolution::from_probs(vec![0.1, 0.2])
                .as_prediction()
                .label,
            2
        );
    }
}
