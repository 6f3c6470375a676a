//! Pronoun resolution with a span-candidate classifier, and GAP's measures of it.
//!
//! A coreference model here is an ordinary sequence classifier whose folder also declares, in
//! `input.toml`, how a row with character spans becomes its inputs: which markers wrap the
//! pronoun and the candidate, and whether the candidate's name is a second segment. Keeping the
//! template in the model folder (and reading the same file in the training recipe) means the
//! attack code knows nothing about GAP or about this model: it rewrites spans, and the template
//! turns rows into exactly the inputs the model was trained on.
//!
//! A row resolves to the candidate whose "refers to" probability is highest and above one half,
//! or to neither. That resolution (A, B or neither) is what the name-swap attack checks for
//! change, and what GAP's per-candidate F1 is computed from.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::data::spans::{Edit, Span, SpanRow, apply_edits};
use crate::model::{Classifier, ModelError, Prediction, Progress};
use crate::score::stats::Rate;

/// The span template in a coreference model's folder.
pub const INPUT_FILE: &str = "input.toml";
/// The label of a row resolved to no candidate.
pub const NEITHER: &str = "neither";

/// Why a coreference model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CorefError {
    /// `input.toml` could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The template file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `input.toml` is malformed, or names a positive label the model does not have.
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
    /// The classifier failed.
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
    pub fn read(dir: &Path) -> Result<Option<Self>, CorefError> {
        let path = dir.join(INPUT_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|source| CorefError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(&path, &text).map(Some)
    }

    /// Parse the text of an `input.toml` (kind `span-candidate`); `path` only names the file in
    /// errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, CorefError> {
        let invalid = |message: String| CorefError::Invalid {
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
    pub fn input(&self, row: &SpanRow, index: usize) -> (String, Option<String>) {
        let candidate = &row.candidates[index];
        let wrap = |span: Span, markers: &[String; 2]| Edit {
            span,
            replacement: format!("{}{}{}", markers[0], span.of(&row.text), markers[1]),
        };
        let edits = [
            wrap(row.pronoun, &self.pronoun_markers),
            wrap(candidate.span, &self.candidate_markers),
        ];
        // Spans come from a checked row and never overlap (the reader and the swaps keep
        // pronoun and names apart); fall back to the unmarked text rather than panic.
        let text = apply_edits(&row.text, &edits, &[])
            .map(|(t, _)| t)
            .unwrap_or_else(|_| row.text.clone());
        let second = self.pair_with_candidate.then(|| candidate.name.clone());
        (text, second)
    }
}

/// A model that resolves pronouns: a classifier plus its span template.
pub struct CorefModel {
    /// The candidate classifier.
    pub classifier: Classifier,
    /// How its folder turns span rows into inputs.
    pub template: SpanTemplate,
    positive: usize,
}

impl crate::model::LoadedModel for CorefModel {
    fn dir(&self) -> &std::path::Path {
        self.classifier.dir()
    }
    fn name(&self) -> &str {
        self.classifier.name()
    }
    fn work(&self) -> crate::model::QueryStats {
        self.classifier.work()
    }
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
pub fn labels(row: &SpanRow) -> Vec<String> {
    row.candidates
        .iter()
        .map(|c| c.label.clone())
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
    pub fn resolve(
        &mut self,
        rows: &[&SpanRow],
        progress: Progress,
    ) -> Result<Vec<RowResolution>, ModelError> {
        let inputs: Vec<(String, Option<String>)> = rows
            .iter()
            .flat_map(|r| (0..r.candidates.len()).map(|i| self.template.input(r, i)))
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
        Ok(rows
            .iter()
            .map(|r| {
                let coref = it
                    .by_ref()
                    .take(r.candidates.len())
                    .map(|p| p.probs[self.positive])
                    .collect();
                RowResolution::from_probs(coref)
            })
            .collect())
    }
}

/// Grammatical gender of a third-person pronoun, as GAP splits its results.
pub fn pronoun_gender(pronoun: &str) -> Option<&'static str> {
    match pronoun.to_lowercase().as_str() {
        "he" | "him" | "his" | "himself" => Some("masculine"),
        "she" | "her" | "hers" | "herself" => Some("feminine"),
        _ => None,
    }
}

/// GAP's measures over one set of rows.
#[derive(Debug, Clone, Serialize)]
pub struct GapScores {
    /// `all`, `masculine` or `feminine` (by the pronoun).
    pub group: String,
    /// Rows with gold labels.
    pub rows: u64,
    /// Rows resolved to the gold answer (A, B or neither) / rows.
    pub accuracy: Rate,
    /// Per-candidate decisions, as GAP's scorer counts them.
    pub precision: Rate,
    /// Gold referents their row resolved to / gold referents.
    pub recall: Rate,
    /// Per-candidate F1, a fraction in [0, 1] (0 when nothing is right).
    pub f1: f64,
}

/// `robust eval` on a coreference model: GAP's measures overall and by pronoun gender.
#[derive(Debug, Clone, Serialize)]
pub struct CorefEval {
    /// The model as reports name it.
    pub model: String,
    /// sha256 of the model, lower-case hex.
    pub model_sha256: String,
    /// The corpus as reports name it.
    pub corpus: String,
    /// sha256 of the corpus file, lower-case hex.
    pub corpus_sha256: String,
    /// Scores over every row with gold labels.
    pub overall: GapScores,
    /// masculine, feminine.
    pub by_gender: Vec<GapScores>,
    /// F1 feminine / F1 masculine (GAP's bias ratio; 1 is parity).
    pub bias: Option<f64>,
    /// Model inputs (one per row and candidate) cut to the model's length limit.
    pub truncated_inputs: u64,
    /// Wall-clock time of the evaluation, in seconds.
    pub wall_seconds: f64,
}

/// Score resolutions against gold; rows without gold labels are left out.
pub fn gap_scores(group: &str, rows: &[&SpanRow], resolutions: &[&RowResolution]) -> GapScores {
    let (mut tp, mut fp, mut fn_, mut correct, mut n) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for (row, res) in rows.iter().zip(resolutions) {
        let Some(gold) = row.gold() else { continue };
        n += 1;
        correct += u64::from(gold == res.resolved);
        for (i, c) in row.candidates.iter().enumerate() {
            let predicted = res.resolved == Some(i);
            let truth = c.gold == Some(true);
            tp += u64::from(predicted && truth);
            fp += u64::from(predicted && !truth);
            fn_ += u64::from(!predicted && truth);
        }
    }
    let precision = Rate::new(tp, tp + fp);
    let recall = Rate::new(tp, tp + fn_);
    let f1 = if tp == 0 {
        0.0
    } else {
        2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
    };
    GapScores {
        group: group.to_string(),
        rows: n,
        accuracy: Rate::new(correct, n),
        precision,
        recall,
        f1,
    }
}

/// Overall and per-gender scores, and the bias ratio.
pub fn evaluate(
    rows: &[&SpanRow],
    resolutions: &[RowResolution],
) -> (GapScores, Vec<GapScores>, Option<f64>) {
    let all: Vec<&RowResolution> = resolutions.iter().collect();
    let overall = gap_scores("all", rows, &all);
    let mut by_gender = Vec::new();
    for gender in ["masculine", "feminine"] {
        let (r, s): (Vec<&SpanRow>, Vec<&RowResolution>) = rows
            .iter()
            .zip(resolutions)
            .filter(|(row, _)| pronoun_gender(row.pronoun_text()) == Some(gender))
            .map(|(row, res)| (*row, res))
            .unzip();
        if !r.is_empty() {
            by_gender.push(gap_scores(gender, &r, &s));
        }
    }
    let f1 = |g: &str| by_gender.iter().find(|s| s.group == g).map(|s| s.f1);
    let bias = match (f1("feminine"), f1("masculine")) {
        (Some(f), Some(m)) if m > 0.0 => Some(f / m),
        _ => None,
    };
    (overall, by_gender, bias)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::spans::Candidate;

    fn row() -> SpanRow {
        let text = "Ann met Bo Li. She left.".to_string();
        SpanRow {
            line: 2,
            id: "t".into(),
            pronoun: Span::new(15, 18),
            candidates: vec![
                Candidate {
                    label: "A".into(),
                    name: "Ann".into(),
                    span: Span::new(0, 3),
                    gold: Some(true),
                },
                Candidate {
                    label: "B".into(),
                    name: "Bo Li".into(),
                    span: Span::new(8, 13),
                    gold: Some(false),
                },
            ],
            text,
        }
    }

    fn template() -> SpanTemplate {
        SpanTemplate::parse(
            Path::new("input.toml"),
            "kind = \"span-candidate\"\npositive_label = \"coref\"\nsecond_segment = \"candidate\"\n[markers]\npronoun = [\"<\", \">\"]\ncandidate = [\"[\", \"]\"]\n",
        )
        .unwrap()
    }

    #[test]
    fn template_marks_pronoun_and_one_candidate() {
        let t = template();
        assert_eq!(
            t.input(&row(), 0),
            (
                "[Ann] met Bo Li. <She> left.".to_string(),
                Some("Ann".to_string())
            )
        );
        assert_eq!(t.input(&row(), 1).0, "Ann met [Bo Li]. <She> left.");
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
        let err = SpanTemplate::parse(Path::new("input.toml"), "kind = \"span-candidate\"\npositive_label = \"x\"\ncolour = 1\n[markers]\npronoun=[\"<\",\">\"]\ncandidate=[\"[\",\"]\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("input.toml") && err.contains("colour"),
            "{err}"
        );
        let err = SpanTemplate::parse(Path::new("input.toml"), "kind = \"qa\"\npositive_label = \"x\"\n[markers]\npronoun=[\"<\",\">\"]\ncandidate=[\"[\",\"]\"]\n")
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

    #[test]
    fn gap_f1_counts_per_candidate_decisions() {
        let r = row();
        let right = RowResolution::from_probs(vec![0.9, 0.1]);
        let wrong = RowResolution::from_probs(vec![0.1, 0.9]);
        let neither = RowResolution::from_probs(vec![0.1, 0.1]);
        let rows = [&r, &r, &r];
        let s = gap_scores("all", &rows, &[&right, &wrong, &neither]);
        // tp 1, fp 1 (wrong picks B), fn 2 (wrong and neither miss A).
        assert_eq!((s.precision.k, s.precision.n), (1, 2));
        assert_eq!((s.recall.k, s.recall.n), (1, 3));
        assert!((s.f1 - 0.4).abs() < 1e-12);
        assert_eq!((s.accuracy.k, s.accuracy.n), (1, 3));
    }

    #[test]
    fn pronoun_genders() {
        assert_eq!(pronoun_gender("Her"), Some("feminine"));
        assert_eq!(pronoun_gender("his"), Some("masculine"));
        assert_eq!(pronoun_gender("they"), None);
    }
}
