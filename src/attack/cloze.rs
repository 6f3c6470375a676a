//! Cloze probes on fill-mask models: does the model know what fills the blank, and does a
//! negation change its answer?
//!
//! Ettinger (2019) showed BERT completing "A robin is a ___" with *bird* and "A robin is not a
//! ___" with *bird* as well: on NEG-136-SIMP it preferred the true completion in 100% of
//! affirmative items and 0% of negated ones. Kassner & Schütze (2020) found the same at scale
//! (negated LAMA): top-1 predictions for a sentence and its negation mostly coincide.
//!
//! Two things make such numbers trustworthy, and both live here:
//! - The determiner agrees with each completion: "(a|an)" in a context becomes "an" before
//!   *insect* and "a" before *bird*, so neither completion is penalised by a wrong article.
//! - A completion of several WordPieces is scored whole: the blank gets one `[MASK]` per piece
//!   and the pieces are filled left to right, each scored given the ones before
//!   (log p(w₁|M M) + log p(w₂|w₁ M) …), instead of scoring only the first piece.
//!
//! Probe files: NEG-136's own TSVs (`context_aff, context_neg, target_aff, target_neg`, and
//! `licensing` for NAT), or robust's general cloze format (`id, template, answers`, optional
//! `negated`), documented in `corpora/cloze/README.md`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::model::ModelError;
use crate::model::fill_mask::MaskedLm;
use crate::model::tokenize::TokenIds;
use crate::score::stats::Rate;

/// The blank in a probe template (BERT's mask token as text).
pub const MASK: &str = "[MASK]";
const ARTICLE: &str = "(a|an)";

/// Why cloze probes could not be read or run.
#[derive(Debug, thiserror::Error)]
pub enum ClozeError {
    /// The probe file could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The probe file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The header or a row of the probe file is malformed.
    #[error("{path}: line {line}: {message}")]
    Line {
        /// The probe file.
        path: PathBuf,
        /// Line in the file (1-based; the header is line 1).
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// One probe: a template with one `[MASK]`, the answers that are true, and maybe the
/// template's negation and the completion that is true there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClozeItem {
    /// Line in the probe file (1-based; the header is line 1).
    pub line: usize,
    /// The file's `item` or `id` column, or `line-<line>` when it has neither.
    pub id: String,
    /// The affirmative template, with one [`MASK`] and perhaps `(a|an)` before it (NEG-136
    /// contexts get ` [MASK].` appended).
    pub template: String,
    /// The true completions (the general format's `|`-separated answers; NEG-136's
    /// `target_aff`); the first is the one scored.
    pub answers: Vec<String>,
    /// The negated template, where the probe has one.
    pub negated: Option<String>,
    /// The true completion of the negated template (NEG-136's `target_neg`).
    pub negated_answer: Option<String>,
    /// Breakdown group (NEG-136-NAT's licensing: "licensed" / "unlicensed").
    pub group: Option<String>,
}

/// Read a probe file: NEG-136 columns or the general cloze columns.
pub fn read_items(path: &Path) -> Result<Vec<ClozeItem>, ClozeError> {
    let text = std::fs::read_to_string(path).map_err(|source| ClozeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_items(path, &text)
}

/// Parse a probe file's text (tab-separated, with a header); `path` only names the file in
/// errors.
pub fn parse_items(path: &Path, text: &str) -> Result<Vec<ClozeItem>, ClozeError> {
    let err = |line: usize, message: String| ClozeError::Line {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, h)| h.trim_end_matches('\r').split('\t').collect())
        .unwrap_or_default();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let neg136 = ["context_aff", "context_neg", "target_aff", "target_neg"]
        .iter()
        .all(|c| col(c).is_some());
    let general = col("template").is_some() && col("answers").is_some();
    if !neg136 && !general {
        return Err(err(
            1,
            "header needs NEG-136's context_aff, context_neg, target_aff, target_neg or the cloze format's template, answers (tab-separated)".into(),
        ));
    }
    let mut items = Vec::new();
    for (i, raw) in lines {
        let line = i + 1;
        let raw = raw.trim_end_matches('\r');
        if raw.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = raw.split('\t').collect();
        if f.len() != header.len() {
            return Err(err(
                line,
                format!("{} fields, the header has {}", f.len(), header.len()),
            ));
        }
        let get = |name: &str| col(name).map(|c| f[c].trim().to_string());
        let id = get("item")
            .or_else(|| get("id"))
            .unwrap_or_else(|| format!("line-{line}"));
        let item = if neg136 {
            let blank = |c: String| format!("{c} {MASK}.");
            let licensing = get("licensing").map(|l| match l.as_str() {
                "Y" => "licensed".to_string(),
                "N" => "unlicensed".to_string(),
                other => other.to_string(),
            });
            ClozeItem {
                line,
                id,
                template: blank(get("context_aff").unwrap_or_default()),
                answers: vec![get("target_aff").unwrap_or_default()],
                negated: Some(blank(get("context_neg").unwrap_or_default())),
                negated_answer: get("target_neg"),
                group: licensing,
            }
        } else {
            ClozeItem {
                line,
                id,
                template: get("template").unwrap_or_default(),
                answers: get("answers")
                    .unwrap_or_default()
                    .split('|')
                    .map(|a| a.trim().to_string())
                    .filter(|a| !a.is_empty())
                    .collect(),
                negated: get("negated").filter(|n| !n.is_empty()),
                negated_answer: None,
                group: get("group").filter(|g| !g.is_empty()),
            }
        };
        for t in std::iter::once(&item.template).chain(&item.negated) {
            if t.matches(MASK).count() != 1 {
                return Err(err(
                    line,
                    format!("template {t:?} must hold exactly one {MASK}"),
                ));
            }
        }
        if item.answers.is_empty() || item.answers.iter().any(|a| a.is_empty()) {
            return Err(err(line, "no answer given".into()));
        }
        if item.negated_answer.as_deref() == Some("") {
            return Err(err(line, "empty target_neg".into()));
        }
        items.push(item);
    }
    if items.is_empty() {
        return Err(err(1, "no probe items".into()));
    }
    Ok(items)
}

/// The indefinite article for a completion, by how it sounds: vowel letters take "an", with
/// the usual exceptions (a university, a one-off, an hour).
pub(crate) fn article(word: &str) -> &'static str {
    let w = word.to_lowercase();
    const AN_CONSONANT: [&str; 4] = ["hour", "honest", "honour", "heir"];
    const A_VOWEL: [&str; 8] = ["uni", "use", "usu", "uti", "eu", "one", "once", "ewe"];
    if AN_CONSONANT.iter().any(|p| w.starts_with(p)) {
        return "an";
    }
    if A_VOWEL.iter().any(|p| w.starts_with(p)) {
        return "a";
    }
    match w.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// The template with its article fixed for `completion` and the blank widened to `pieces`
/// masks.
pub fn fill_template(template: &str, completion: &str, pieces: usize) -> String {
    let masks = vec![MASK; pieces.max(1)].join(" ");
    template
        .replace(ARTICLE, article(completion))
        .replace(MASK, &masks)
}

/// A completion's WordPieces (no special tokens).
fn pieces(model: &MaskedLm, word: &str) -> Result<Vec<u32>, ModelError> {
    let e = model.encoder().encode_batch(&[word])?;
    let ids = &e[0].input.ids;
    Ok(ids[1..ids.len().saturating_sub(1)].to_vec())
}

/// log p(completion | template), pieces filled left to right. Several completions of several
/// templates go to the model together.
pub fn score_completions(
    model: &mut MaskedLm,
    requests: &[(&str, &str)],
) -> Result<Vec<f32>, ModelError> {
    let mask = model.mask_id();
    let mut inputs: Vec<TokenIds> = Vec::new();
    // (request, piece id, index into inputs)
    let mut steps: Vec<(usize, u32, usize)> = Vec::new();
    for (r, &(template, completion)) in requests.iter().enumerate() {
        let target = pieces(model, completion)?;
        let text = fill_template(template, completion, target.len());
        let enc = model.encoder().encode_batch(&[&text])?;
        let base = enc[0].input.clone();
        let slots: Vec<usize> = base
            .ids
            .iter()
            .enumerate()
            .filter(|&(_, &id)| id == mask)
            .map(|(i, _)| i)
            .collect();
        for j in 0..target.len() {
            let mut ids = base.ids.to_vec();
            for (k, &slot) in slots.iter().enumerate().take(j) {
                ids[slot] = target[k];
            }
            steps.push((r, target[j], inputs.len()));
            inputs.push(TokenIds {
                ids: ids.into_boxed_slice(),
                type_ids: base.type_ids.clone(),
            });
        }
    }
    let out = model.mask_log_probs(&inputs)?;
    let mut scores = vec![0.0f32; requests.len()];
    for (r, piece, input) in steps {
        // The first remaining mask is the one this step scores.
        scores[r] += out[input][0][piece as usize];
    }
    Ok(scores)
}

/// The model's top-k one-piece words for each template, each word scored with the article it
/// takes, whole-word alphabetic pieces only; one request to the model for all of them (two
/// rows per template: one with "a", one with "an").
pub(crate) fn top_k_many(
    model: &mut MaskedLm,
    templates: &[&str],
    k: usize,
) -> Result<Vec<Vec<(String, f32)>>, ModelError> {
    let texts: Vec<String> = templates
        .iter()
        .flat_map(|t| [t.replace(ARTICLE, "a"), t.replace(ARTICLE, "an")])
        .collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let inputs: Vec<TokenIds> = model
        .encoder()
        .encode_batch(&texts)?
        .into_iter()
        .map(|e| e.input)
        .collect();
    let out = model.mask_log_probs(&inputs)?;
    // Words worth listing, and which article each takes: the same for every template.
    let encoder = model.encoder();
    let words: Vec<(usize, String, bool)> = (0..out.first().map_or(0, |o| o[0].len()))
        .filter_map(|id| {
            let token = encoder.id_to_token(id as u32)?;
            let word = token.len() >= 2 && token.chars().all(|c| c.is_ascii_alphabetic());
            word.then(|| (id, token.clone(), article(&token) == "an"))
        })
        .collect();
    Ok(out
        .chunks(2)
        .map(|pair| {
            let (with_a, with_an) = (&pair[0][0], &pair[1][0]);
            let mut scored: Vec<(String, f32)> = words
                .iter()
                .map(|(id, token, an)| {
                    (token.clone(), if *an { with_an[*id] } else { with_a[*id] })
                })
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            scored.truncate(k);
            scored
        })
        .collect())
}

/// One item's results.
#[derive(Debug, Clone, Serialize)]
pub struct ItemResult {
    /// The probe.
    pub item: ClozeItem,
    /// log p(true) and log p(false) in the affirmative template (false = the negated answer).
    /// Natural logs, of the whole completion (every WordPiece); true is the first answer.
    pub aff_true: f32,
    /// log p(negated answer | affirmative template), for probes with a negated answer.
    pub aff_false: Option<f32>,
    /// log p(negated answer | negated template): the true completion there.
    pub neg_true: Option<f32>,
    /// log p(first answer | negated template): the false completion there.
    pub neg_false: Option<f32>,
    /// The affirmative template's top-k one-piece words with their log-probabilities, best
    /// first.
    pub top_aff: Vec<(String, f32)>,
    /// The same for the negated template; empty when the probe has none.
    pub top_neg: Vec<(String, f32)>,
}

impl ItemResult {
    /// Whether the true completion outscores the false one in the affirmative template;
    /// `None` without a negated answer.
    pub fn prefers_true_aff(&self) -> Option<bool> {
        self.aff_false.map(|f| self.aff_true > f)
    }

    /// Whether the true completion (the negated answer) outscores the affirmative answer in
    /// the negated template; `None` without a negated template and answer.
    pub fn prefers_true_neg(&self) -> Option<bool> {
        Some(self.neg_true? > self.neg_false?)
    }

    /// Whether the two templates' top-1 words are the same; `None` without a negated
    /// template (or with an empty list).
    pub fn top1_unchanged(&self) -> Option<bool> {
        Some(self.top_aff.first()?.0 == self.top_neg.first()?.0)
    }

    /// Share of the top-k words the two templates have in common (over the longer list);
    /// `None` without a negated template.
    pub fn top_overlap(&self) -> Option<f64> {
        if self.top_neg.is_empty() || self.top_aff.is_empty() {
            return None;
        }
        let a: HashSet<&str> = self.top_aff.iter().map(|(w, _)| w.as_str()).collect();
        let common = self
            .top_neg
            .iter()
            .filter(|(w, _)| a.contains(w.as_str()))
            .count();
        Some(common as f64 / self.top_aff.len().max(self.top_neg.len()) as f64)
    }

    /// Whether one of the answers (any case) is in the affirmative top-k.
    pub fn answer_in_top(&self) -> bool {
        self.top_aff
            .iter()
            .any(|(w, _)| self.item.answers.iter().any(|a| a.eq_ignore_ascii_case(w)))
    }
}

/// Run every item: the completions each needs, then the top-k lists.
pub fn run(
    model: &mut MaskedLm,
    items: &[ClozeItem],
    k: usize,
) -> Result<Vec<ItemResult>, ModelError> {
    let mut requests: Vec<(&str, &str)> = Vec::new();
    for it in items {
        let truth = it.answers[0].as_str();
        requests.push((&it.template, truth));
        if let (Some(neg), Some(neg_answer)) = (&it.negated, &it.negated_answer) {
            requests.push((&it.template, neg_answer));
            requests.push((neg, neg_answer));
            requests.push((neg, truth));
        }
    }
    let scores = score_completions(model, &requests)?;
    let mut s = scores.into_iter();
    let templates: Vec<&str> = items
        .iter()
        .flat_map(|it| std::iter::once(it.template.as_str()).chain(it.negated.as_deref()))
        .collect();
    let mut tops = top_k_many(model, &templates, k)?.into_iter();
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        let aff_true = s.next().unwrap_or(f32::NAN);
        let (aff_false, neg_true, neg_false) =
            if it.negated.is_some() && it.negated_answer.is_some() {
                (s.next(), s.next(), s.next())
            } else {
                (None, None, None)
            };
        let top_aff = tops.next().unwrap_or_default();
        let top_neg = match &it.negated {
            Some(_) => tops.next().unwrap_or_default(),
            None => Vec::new(),
        };
        out.push(ItemResult {
            item: it.clone(),
            aff_true,
            aff_false,
            neg_true,
            neg_false,
            top_aff,
            top_neg,
        });
    }
    Ok(out)
}

/// Ettinger's and Kassner & Schütze's measures over a set of items.
#[derive(Debug, Clone, Serialize)]
pub struct ClozeScores {
    /// `all`, or an item group (NEG-136-NAT's `licensed` / `unlicensed`).
    pub group: String,
    /// Items in the group.
    pub items: u64,
    /// Items whose true completion beats the other in the affirmative template.
    pub true_preferred_affirmative: Option<Rate>,
    /// Items whose true completion (target_neg) beats target_aff in the negated template.
    pub true_preferred_negated: Option<Rate>,
    /// Items whose top-1 word is the same with and without negation.
    pub top1_unchanged: Option<Rate>,
    /// Mean share of top-k words shared by the template and its negation.
    pub mean_topk_overlap: Option<f64>,
    /// Items with one of their answers among the affirmative top-k.
    pub answer_in_topk: Rate,
}

/// The measures over `results`, named `group`. Each rate counts only the items it applies to
/// (and is `None` when none does).
pub fn score(group: &str, results: &[&ItemResult]) -> ClozeScores {
    let rate = |f: &dyn Fn(&ItemResult) -> Option<bool>| {
        let v: Vec<bool> = results.iter().filter_map(|r| f(r)).collect();
        (!v.is_empty()).then(|| Rate::new(v.iter().filter(|&&b| b).count() as u64, v.len() as u64))
    };
    let overlaps: Vec<f64> = results.iter().filter_map(|r| r.top_overlap()).collect();
    ClozeScores {
        group: group.to_string(),
        items: results.len() as u64,
        true_preferred_affirmative: rate(&|r| r.prefers_true_aff()),
        true_preferred_negated: rate(&|r| r.prefers_true_neg()),
        top1_unchanged: rate(&|r| r.top1_unchanged()),
        mean_topk_overlap: (!overlaps.is_empty())
            .then(|| overlaps.iter().sum::<f64>() / overlaps.len() as f64),
        answer_in_topk: Rate::new(
            results.iter().filter(|r| r.answer_in_top()).count() as u64,
            results.len() as u64,
        ),
    }
}

/// Overall, then one entry per item group, sorted.
pub fn score_all(results: &[ItemResult]) -> Vec<ClozeScores> {
    let all: Vec<&ItemResult> = results.iter().collect();
    let mut out = vec![score("all", &all)];
    let mut groups: Vec<&str> = results
        .iter()
        .filter_map(|r| r.item.group.as_deref())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    for g in groups {
        let part: Vec<&ItemResult> = results
            .iter()
            .filter(|r| r.item.group.as_deref() == Some(g))
            .collect();
        out.push(score(g, &part));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn articles_follow_the_sound() {
        assert_eq!(article("insect"), "an");
        assert_eq!(article("bird"), "a");
        assert_eq!(article("hour"), "an");
        assert_eq!(article("university"), "a");
        assert_eq!(article("Owl"), "an");
        assert_eq!(
            fill_template("An ant is (a|an) [MASK].", "insect", 1),
            "An ant is an [MASK]."
        );
        assert_eq!(
            fill_template("A robin is (a|an) [MASK].", "vegetable", 3),
            "A robin is a [MASK] [MASK] [MASK]."
        );
    }

    #[test]
    fn reads_neg136_and_general_probes() {
        let neg = "item\tcontext_aff\tcontext_neg\ttarget_aff\ttarget_neg\tlicensing\n0\tA trout is (a|an)\tA trout is not (a|an)\tfish\ttool\tY\n";
        let items = parse_items(Path::new("n.tsv"), neg).unwrap();
        assert_eq!(items[0].template, "A trout is (a|an) [MASK].");
        assert_eq!(
            items[0].negated.as_deref(),
            Some("A trout is not (a|an) [MASK].")
        );
        assert_eq!(items[0].negated_answer.as_deref(), Some("tool"));
        assert_eq!(items[0].group.as_deref(), Some("licensed"));
        let general =
            "id\ttemplate\tanswers\nparis\tThe capital of France is [MASK].\tparis|Paris\n";
        let items = parse_items(Path::new("c.tsv"), general).unwrap();
        assert_eq!(items[0].answers, vec!["paris", "Paris"]);
        assert!(items[0].negated.is_none());
    }

    #[test]
    fn bad_probe_files_name_file_and_line() {
        let err = parse_items(
            Path::new("c.tsv"),
            "id\ttemplate\tanswers\nx\tno blank here\ty\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("c.tsv: line 2:") && err.contains("exactly one [MASK]"),
            "{err}"
        );
        let err = parse_items(Path::new("c.tsv"), "sentence\tlabel\nx\t1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1") && err.contains("template"), "{err}");
        let err = parse_items(Path::new("c.tsv"), "id\ttemplate\tanswers\nx\tA [MASK].\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("2 fields"), "{err}");
    }
}
