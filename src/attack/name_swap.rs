//! Person-name swaps in coreference rows: does the resolution of a pronoun depend on which names
//! the candidates have?
//!
//! Balasubramanian et al. (2020) found that replacing a single person name changed a
//! coreference model's prediction for 85% of test sentences. A GAP row names two candidates by
//! character offset; a swap gives one or both of them a new name from the lexicon and rewrites
//! *every* mention of that person: the full name, each part alone ("Leach" after "Bernard
//! Leach", possessives included), so the text still tells one consistent story.
//!
//! - The new first name has the pronoun's gender (`SameGender`, the control, where the row stays
//!   as ambiguous as before) or the other gender (`OtherGender`, where the swapped candidate can
//!   no longer be the referent of "she", so the model *should* often change its answer for the
//!   gold candidate). First and last names come from one origin, drawn uniformly per swap, so
//!   every origin gets a fair share of swaps for the breakdown.
//! - A one-part name becomes a first name; a longer one becomes first + last name, and its
//!   middle parts are dropped from full mentions (a middle name alone is left as it is).
//! - Title words ("Dr.", "Sir") and lower-case particles ("de", "van") are not name parts and
//!   stay. A part both candidates share ("Smith" for two siblings) is replaced only inside full
//!   mentions, since alone it could mean either.
//! - All offsets are recomputed through [`crate::data::spans::apply_edits`]; a swap whose edits would
//!   cut through the pronoun or another tracked span is dropped rather than guessed at.
//!
//! Each variant records what was inserted (origin, US-census frequency, and later its WordPiece
//! count) so results can be broken down by the paper's suspected causes.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::prelude::IndexedRandom;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use std::time::Instant;

use super::runner::example_rng;
use crate::data::spans::{Candidate, Edit, Span, SpanRow, apply_edits};
use crate::model::coref::{self, CorefModel};
use crate::model::{ModelError, Progress, QueryStats};
use crate::perturb::entity_swap::{COMMON_WORD_NAMES, Gender, NameEntry, NameKind, NameLexicon};
use crate::perturb::{Perturbation, SkipReason};
use crate::score::gap::pronoun_gender;
use crate::score::{AttackScores, ExampleOutcome, Expectation, PerturbedOutcome, score};

/// Words inside a candidate's name that are not names.
const TITLES: &[&str] = &[
    "Mr",
    "Mr.",
    "Mrs",
    "Mrs.",
    "Ms",
    "Ms.",
    "Miss",
    "Dr",
    "Dr.",
    "Sir",
    "Dame",
    "Lady",
    "Lord",
    "Saint",
    "St",
    "St.",
    "King",
    "Queen",
    "Prince",
    "Princess",
    "Jr",
    "Jr.",
    "Sr",
    "Sr.",
    "Captain",
    "Professor",
    "Rev.",
    "General",
];

const TRIES_PER_SAMPLE: usize = 10;

/// The gender of the new first names, relative to the row's pronoun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenderCondition {
    /// New first names have the pronoun's gender.
    Same,
    /// New first names have the other gender.
    Other,
}

impl GenderCondition {
    /// The name reports record: `same-gender` or `other-gender`.
    pub fn as_str(self) -> &'static str {
        match self {
            GenderCondition::Same => "same-gender",
            GenderCondition::Other => "other-gender",
        }
    }
}

/// Which candidates a swap renames.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Replace {
    /// The first candidate (GAP's A).
    #[serde(rename = "a")]
    #[value(name = "a")]
    First,
    /// The second candidate (GAP's B).
    #[serde(rename = "b")]
    #[value(name = "b")]
    Second,
    /// Both candidates.
    Both,
    /// One of the three, drawn per swap.
    Each,
}

/// US-census frequency of names (corpora/name-frequency.tsv), for the frequency breakdown.
#[derive(Debug, Clone, Default)]
pub struct NameFrequency {
    percent: HashMap<(String, NameKind), f64>,
}

impl NameFrequency {
    /// Read and [parse](Self::parse) a frequency table.
    pub fn from_path(path: &Path) -> Result<Self, FrequencyError> {
        let text = std::fs::read_to_string(path).map_err(|source| FrequencyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parse the table's text: header `name, kind, gender, census_percent` (tab-separated),
    /// percentages of people (a name listed twice keeps its larger share; an empty percentage
    /// is skipped). `path` names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, FrequencyError> {
        let bad = |line: usize, problem: String| FrequencyError::Line {
            path: path.to_path_buf(),
            line,
            problem,
        };
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, h)) if h.trim_end() == "name\tkind\tgender\tcensus_percent" => {}
            _ => {
                return Err(bad(
                    1,
                    "header must be name, kind, gender, census_percent (tab-separated)".into(),
                ));
            }
        }
        let mut percent = HashMap::new();
        for (i, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() != 4 {
                return Err(bad(i + 1, format!("{} fields, expected 4", f.len())));
            }
            let kind = match f[1] {
                "first" => NameKind::First,
                "last" => NameKind::Last,
                other => return Err(bad(i + 1, format!("kind {other:?} is not first or last"))),
            };
            if f[3].is_empty() {
                continue;
            }
            let p: f64 = f[3]
                .parse()
                .map_err(|_| bad(i + 1, format!("census_percent {:?} is not a number", f[3])))?;
            let slot = percent.entry((f[0].to_lowercase(), kind)).or_insert(p);
            *slot = slot.max(p);
        }
        Ok(Self { percent })
    }

    /// "common" (≥ 0.1% of people), "mid" (0.01–0.1%), "rare" (< 0.01%) or "not-in-census".
    pub fn bucket(&self, name: &str, kind: NameKind) -> &'static str {
        match self.percent.get(&(name.to_lowercase(), kind)) {
            None => "not-in-census",
            Some(&p) if p >= 0.1 => "common",
            Some(&p) if p >= 0.01 => "mid",
            Some(_) => "rare",
        }
    }
}

/// Why a name-frequency table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrequencyError {
    /// The file could not be read.
    #[error("failed to read name frequencies {path}")]
    Read {
        /// The table file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The header or a row is malformed.
    #[error("{path}:{line}: {problem}")]
    Line {
        /// The table file.
        path: PathBuf,
        /// Line in the file (1-based, header is line 1).
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
}

/// The name swap on coreference (span) rows (see the module docs).
pub struct SpanNameSwap {
    /// Where new names are drawn from.
    pub lexicon: Arc<NameLexicon>,
    /// US-census frequencies, for the breakdown by how common an inserted name is.
    pub frequency: Arc<NameFrequency>,
    /// Distinct swapped rows wanted per row.
    pub samples: usize,
    /// New first names of the pronoun's gender or the other.
    pub condition: GenderCondition,
    /// Which candidates are renamed.
    pub replace: Replace,
}

/// One swapped row and what went into it.
#[derive(Debug, Clone, PartialEq)]
pub struct SwappedRow {
    /// The rewritten row, its spans moved to the new text.
    pub row: SpanRow,
    /// "A: Cheryl Cassidy -> Ama Okafor"
    pub detail: String,
    /// Candidates renamed: "A", "B" or "A+B".
    pub replaced: String,
    /// The lexicon origin both new names were drawn from (e.g. `yo_NG`).
    pub origin: String,
    /// Frequency bucket of the inserted first name (the rarer one when both are renamed).
    pub frequency: &'static str,
    /// The full names inserted at the candidates' offsets.
    pub inserted: Vec<String>,
}

/// How a candidate's name breaks into parts.
struct NameParts<'a> {
    /// Indices into `words` that are name parts (capitalised, not titles).
    parts: Vec<&'a str>,
}

fn name_parts(name: &str) -> NameParts<'_> {
    let parts = name
        .split_whitespace()
        .filter(|w| {
            !TITLES.contains(w)
                && w.chars().next().is_some_and(char::is_uppercase)
                && w.chars()
                    .all(|c| c.is_alphabetic() || c == '\'' || c == '-' || c == '’')
        })
        .collect();
    NameParts { parts }
}

/// Whole-word occurrences of `needle` in `text` (case-sensitive; neighbours must not be letters
/// or digits, so "Ann" does not match inside "Anna" but does in "Ann's").
fn occurrences(text: &str, needle: &str) -> Vec<Span> {
    let mut out = Vec::new();
    if needle.is_empty() {
        return out;
    }
    let mut from = 0;
    while let Some(i) = text[from..].find(needle) {
        let start = from + i;
        let end = start + needle.len();
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        if !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric) {
            out.push(Span::new(start, end));
        }
        from = start + needle.len().max(1);
    }
    out
}

impl SpanNameSwap {
    /// Up to `samples` distinct swaps of a row.
    pub fn swap(&self, row: &SpanRow, rng: &mut ChaCha8Rng) -> Result<Vec<SwappedRow>, SkipReason> {
        let gender = match pronoun_gender(row.pronoun_text()) {
            Some("feminine") => Gender::Female,
            Some(_) => Gender::Male,
            None => return Err(SkipReason::UnknownPronoun),
        };
        let wanted = match self.condition {
            GenderCondition::Same => gender,
            GenderCondition::Other => match gender {
                Gender::Female => Gender::Male,
                _ => Gender::Female,
            },
        };
        let parts: Vec<NameParts> = row.candidates.iter().map(|c| name_parts(&c.name)).collect();
        if parts.iter().all(|p| p.parts.is_empty()) {
            return Err(SkipReason::NoNames);
        }
        let mut out: Vec<SwappedRow> = Vec::new();
        let mut seen = HashSet::new();
        for _ in 0..self.samples.saturating_mul(TRIES_PER_SAMPLE) {
            if out.len() == self.samples {
                break;
            }
            if let Some(s) = self.draw(row, &parts, wanted, rng)
                && seen.insert(s.row.text.clone())
            {
                out.push(s);
            }
        }
        if out.is_empty() {
            return Err(SkipReason::NoNames);
        }
        Ok(out)
    }

    fn draw(
        &self,
        row: &SpanRow,
        parts: &[NameParts],
        gender: Gender,
        rng: &mut ChaCha8Rng,
    ) -> Option<SwappedRow> {
        let which: Vec<usize> = match self.replace {
            Replace::First => vec![0],
            Replace::Second => vec![1],
            Replace::Both => vec![0, 1],
            Replace::Each => [vec![0], vec![1], vec![0, 1]].choose(rng)?.clone(),
        };
        let which: Vec<usize> = which
            .into_iter()
            .filter(|&i| i < row.candidates.len() && !parts[i].parts.is_empty())
            .collect();
        if which.is_empty() {
            return None;
        }
        let origins = self.lexicon.origins();
        let origin = origins.choose(rng)?.clone();
        // Names already in the row (any candidate's parts) are never drawn.
        let taken: HashSet<String> = parts
            .iter()
            .flat_map(|p| p.parts.iter().map(|s| s.to_lowercase()))
            .collect();
        let pool = |kind: NameKind, gender: Option<Gender>| -> Vec<&NameEntry> {
            let mut names: Vec<&NameEntry> = Vec::new();
            for e in self.lexicon.entries() {
                let lower = e.name.to_lowercase();
                if e.kind == kind
                    && e.origin == origin
                    && gender.is_none_or(|g| e.gender == g)
                    && !taken.contains(&lower)
                    && !COMMON_WORD_NAMES.contains(&lower.as_str())
                    && !names.iter().any(|n| n.name == e.name)
                {
                    names.push(e);
                }
            }
            names
        };
        let mut firsts = pool(NameKind::First, Some(gender));
        let mut lasts = pool(NameKind::Last, None);
        firsts.shuffle(rng);
        lasts.shuffle(rng);
        // For every renamed candidate: part -> replacement, and the full replacement.
        let mut renames: Vec<(usize, HashMap<&str, String>, String)> = Vec::new();
        for (n, &i) in which.iter().enumerate() {
            let p = &parts[i].parts;
            let first = firsts.get(n)?.name.clone();
            let mut map = HashMap::new();
            let full = if p.len() == 1 {
                map.insert(p[0], first.clone());
                first
            } else {
                let last = lasts.get(n)?.name.clone();
                map.insert(p[0], first.clone());
                map.insert(p[p.len() - 1], last.clone());
                format!("{first} {last}")
            };
            renames.push((i, map, full));
        }
        let shared: HashSet<&str> = if parts.len() >= 2 {
            parts[0]
                .parts
                .iter()
                .filter(|p| parts[1].parts.contains(p))
                .copied()
                .collect()
        } else {
            HashSet::new()
        };
        // Edits, highest priority first: the mentions at the candidates' offsets, then every
        // other full mention, then parts alone. A later edit overlapping an earlier one is
        // dropped.
        let mut edits: Vec<Edit> = Vec::new();
        let push = |edits: &mut Vec<Edit>, span: Span, replacement: String| {
            let overlaps = |other: Span| other.start < span.end && span.start < other.end;
            if !edits.iter().any(|e| overlaps(e.span)) && !overlaps(row.pronoun) {
                edits.push(Edit { span, replacement });
            }
        };
        for (i, _, full) in &renames {
            push(&mut edits, row.candidates[*i].span, full.clone());
        }
        for (i, _, full) in &renames {
            for span in occurrences(&row.text, &row.candidates[*i].name) {
                push(&mut edits, span, full.clone());
            }
        }
        for (_, map, _) in &renames {
            let mut keys: Vec<&&str> = map.keys().collect();
            keys.sort();
            for part in keys {
                if shared.contains(*part) {
                    continue;
                }
                for span in occurrences(&row.text, part) {
                    push(&mut edits, span, map[*part].clone());
                }
            }
        }
        // Every candidate's offset mention must be edited exactly (renamed) or untouched.
        let mut tracked = vec![row.pronoun];
        tracked.extend(row.candidates.iter().map(|c| c.span));
        let (text, moved) = apply_edits(&row.text, &edits, &tracked).ok()?;
        let candidates: Vec<Candidate> = row
            .candidates
            .iter()
            .zip(&moved[1..])
            .enumerate()
            .map(|(i, (c, span))| Candidate {
                label: c.label.clone(),
                name: renames
                    .iter()
                    .find(|(j, _, _)| *j == i)
                    .map_or_else(|| c.name.clone(), |(_, _, full)| full.clone()),
                span: *span,
                gold: c.gold,
            })
            .collect();
        let new_row = SpanRow {
            line: row.line,
            id: row.id.clone(),
            text,
            pronoun: moved[0],
            candidates,
        };
        let detail = renames
            .iter()
            .map(|(i, _, full)| {
                format!(
                    "{}: {} -> {}",
                    row.candidates[*i].label, row.candidates[*i].name, full
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let rank = |b: &str| match b {
            "common" => 0,
            "mid" => 1,
            "rare" => 2,
            _ => 3,
        };
        let frequency = renames
            .iter()
            .map(|(_, _, full)| {
                let first = full.split(' ').next().unwrap_or(full);
                self.frequency.bucket(first, NameKind::First)
            })
            .max_by_key(|b| rank(b))
            .unwrap_or("not-in-census");
        Some(SwappedRow {
            detail,
            replaced: renames
                .iter()
                .map(|(i, _, _)| row.candidates[*i].label.as_str())
                .collect::<Vec<_>>()
                .join("+"),
            origin,
            frequency,
            inserted: renames.iter().map(|(_, _, full)| full.clone()).collect(),
            row: new_row,
        })
    }
}

/// What one swap inserted, for the breakdowns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SwapFacts {
    /// Candidates renamed: "A", "B" or "A+B".
    pub replaced: String,
    /// The origin the new names were drawn from.
    pub origin: String,
    /// Frequency bucket of the inserted first name.
    pub frequency: &'static str,
    /// WordPiece tokens of the inserted name (the longest, when both candidates are renamed).
    pub pieces: usize,
}

/// A name-swap run over span rows: outcomes in the scorer's terms, plus each variant's facts.
pub(crate) struct SpanAttackRun {
    /// One outcome per row: the original resolution and each variant's.
    pub outcomes: Vec<ExampleOutcome>,
    /// Parallel to each outcome's variants.
    pub facts: Vec<Vec<SwapFacts>>,
    /// Resolution labels: the candidates' column names, then "neither".
    pub labels: Vec<String>,
    /// The classifier's work during the run.
    pub queries: QueryStats,
    /// Wall-clock time of the run, in seconds.
    pub wall_seconds: f64,
}

/// Swap names in every row and resolve originals and variants in one request. Row `i` draws
/// from stream `i` of the seed, as every attack does.
pub(crate) fn run(
    model: &mut CorefModel,
    rows: &[SpanRow],
    swap: &SpanNameSwap,
    seed: u64,
    progress: Progress,
) -> Result<SpanAttackRun, ModelError> {
    let start = Instant::now();
    let before = model.classifier.stats();
    let swapped: Vec<Result<Vec<SwappedRow>, SkipReason>> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| swap.swap(r, &mut example_rng(seed, i)))
        .collect();
    let mut all: Vec<&SpanRow> = rows.iter().collect();
    for variants in swapped.iter().flatten() {
        all.extend(variants.iter().map(|v| &v.row));
    }
    let mut resolutions = model.resolve(&all, progress)?.into_iter();
    // WordPiece counts of every inserted name, tokenized in one parallel batch.
    let names: Vec<&str> = swapped
        .iter()
        .flatten()
        .flatten()
        .flat_map(|v| v.inserted.iter().map(String::as_str))
        .collect();
    let name_pieces: Vec<usize> = model
        .classifier
        .encoder()
        .encode_batch(&names)
        .map_err(ModelError::from)?
        .iter()
        .map(|e| e.input.len().saturating_sub(2))
        .collect();
    let mut name_pieces = name_pieces.into_iter();
    let originals: Vec<_> = resolutions.by_ref().take(rows.len()).collect();
    let labels = rows.first().map(coref::labels).unwrap_or_default();
    let neither = labels.len().saturating_sub(1);
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut facts = Vec::with_capacity(rows.len());
    for ((row, original), result) in rows.iter().zip(originals).zip(swapped) {
        let mut row_facts = Vec::new();
        let result = match result {
            Ok(variants) => {
                let mut out = Vec::with_capacity(variants.len());
                for v in variants {
                    let resolution = resolutions.next().expect("one resolution per variant");
                    let pieces = name_pieces
                        .by_ref()
                        .take(v.inserted.len())
                        .max()
                        .unwrap_or(0);
                    row_facts.push(SwapFacts {
                        replaced: v.replaced.clone(),
                        origin: v.origin.clone(),
                        frequency: v.frequency,
                        pieces,
                    });
                    out.push(PerturbedOutcome {
                        perturbation: Perturbation {
                            text: v.row.text,
                            detail: v.detail,
                            group: v.replaced,
                            edit: None,
                        },
                        prediction: resolution.as_prediction(),
                    });
                }
                Ok(out)
            }
            Err(reason) => Err(reason),
        };
        let variants = result.as_ref().map_or(0, Vec::len) as u64;
        outcomes.push(ExampleOutcome {
            line: row.line,
            text: row.text.clone(),
            context: None,
            gold: row.gold().map(|g| g.unwrap_or(neither)),
            original: original.as_prediction(),
            result,
            queries: (1 + variants) * row.candidates.len() as u64,
        });
        facts.push(row_facts);
    }
    Ok(SpanAttackRun {
        outcomes,
        facts,
        labels,
        queries: model.classifier.stats().since(&before),
        wall_seconds: start.elapsed().as_secs_f64(),
    })
}

/// Scores overall and by which candidates were renamed, then the same metrics grouped by the
/// inserted names' origin, census frequency and WordPiece count (groups named `origin=yo_NG`,
/// `frequency=rare`, `pieces=3`).
pub(crate) fn score_breakdown(run: &SpanAttackRun) -> AttackScores {
    let regroup = |key: &dyn Fn(&SwapFacts) -> String| -> Vec<ExampleOutcome> {
        run.outcomes
            .iter()
            .zip(&run.facts)
            .map(|(o, facts)| {
                let mut o = o.clone();
                if let Ok(variants) = &mut o.result {
                    for (v, f) in variants.iter_mut().zip(facts) {
                        v.perturbation.group = key(f);
                    }
                }
                o
            })
            .collect()
    };
    let expectation = Expectation::Invariant;
    let mut scores = score(
        &regroup(&|f| format!("replaced={}", f.replaced)),
        &run.labels,
        expectation,
    );
    type Key<'a> = &'a dyn Fn(&SwapFacts) -> String;
    let dims: [(&str, Key); 3] = [
        ("origin", &|f| f.origin.clone()),
        ("frequency", &|f| f.frequency.to_string()),
        ("pieces", &|f| {
            if f.pieces >= 5 {
                "5+".to_string()
            } else {
                f.pieces.to_string()
            }
        }),
    ];
    for (dim, key) in dims {
        let s = score(
            &regroup(&|f| format!("{dim}={}", key(f))),
            &run.labels,
            expectation,
        );
        if s.groups.is_empty() {
            // One value only: score() made no groups, so name the overall one.
            let mut overall = s.overall;
            if let Some(f) = run.facts.iter().flatten().next() {
                overall.group = format!("{dim}={}", key(f));
                scores.groups.push(overall);
            }
        } else {
            scores.groups.extend(s.groups);
        }
    }
    scores
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::SeedableRng;

    use super::*;
    use crate::data::spans::strategies::span_row;

    fn swapper(condition: GenderCondition, replace: Replace) -> SpanNameSwap {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpora/names.tsv");
        let freq = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpora/name-frequency.tsv");
        SpanNameSwap {
            lexicon: Arc::new(NameLexicon::from_path(&path).unwrap()),
            frequency: Arc::new(NameFrequency::from_path(&freq).unwrap()),
            samples: 5,
            condition,
            replace,
        }
    }

    fn gap_like() -> SpanRow {
        let text = "Bernard Leach taught Warren MacKenzie. Leach's pottery influenced him, and MacKenzie said his teacher was kind.".to_string();
        let p = text.find("his").unwrap();
        SpanRow {
            line: 2,
            id: "g".into(),
            pronoun: Span::new(p, p + 3),
            candidates: vec![
                Candidate {
                    label: "A".into(),
                    name: "MacKenzie".into(),
                    span: Span::new(
                        text.rfind("MacKenzie").unwrap(),
                        text.rfind("MacKenzie").unwrap() + 9,
                    ),
                    gold: Some(true),
                },
                Candidate {
                    label: "B".into(),
                    name: "Bernard Leach".into(),
                    span: Span::new(0, 13),
                    gold: Some(false),
                },
            ],
            text,
        }
    }

    #[test]
    fn every_mention_is_renamed_and_offsets_follow() {
        let s = swapper(GenderCondition::Same, Replace::Both);
        let row = gap_like();
        let out = s.swap(&row, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        assert!(!out.is_empty());
        for v in &out {
            let t = &v.row.text;
            assert!(
                !t.contains("Leach") && !t.contains("MacKenzie") && !t.contains("Bernard"),
                "{t}"
            );
            assert_eq!(v.row.pronoun_text(), "his");
            for c in &v.row.candidates {
                assert_eq!(c.span.of(t), c.name);
            }
            // The surname alone and the possessive were renamed to the new surname.
            let b = &v.row.candidates[1].name;
            let surname = b.split(' ').nth(1).unwrap();
            assert!(t.contains(&format!("{surname}'s pottery")), "{t}");
            assert_eq!(v.replaced, "A+B");
        }
    }

    #[test]
    fn other_gender_draws_names_of_the_other_gender() {
        let s = swapper(GenderCondition::Other, Replace::First);
        let lexicon = s.lexicon.clone();
        let out = s
            .swap(&gap_like(), &mut ChaCha8Rng::seed_from_u64(3))
            .unwrap();
        for v in out {
            let first = v.inserted[0].split(' ').next().unwrap().to_string();
            assert!(
                lexicon
                    .entries()
                    .iter()
                    .any(|e| e.name == first && e.gender == Gender::Female),
                "{first} should be a female first name"
            );
        }
    }

    #[test]
    fn same_seed_same_swaps() {
        let s = swapper(GenderCondition::Same, Replace::Each);
        let a = s
            .swap(&gap_like(), &mut ChaCha8Rng::seed_from_u64(9))
            .unwrap();
        let b = s
            .swap(&gap_like(), &mut ChaCha8Rng::seed_from_u64(9))
            .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn unknown_pronoun_is_a_skip() {
        let mut row = gap_like();
        let p = row.text.find("kind").unwrap();
        row.pronoun = Span::new(p, p + 4);
        let s = swapper(GenderCondition::Same, Replace::Both);
        assert_eq!(
            s.swap(&row, &mut ChaCha8Rng::seed_from_u64(1)),
            Err(SkipReason::UnknownPronoun)
        );
    }

    #[test]
    fn frequency_buckets() {
        let f = NameFrequency::parse(
            Path::new("f.tsv"),
            "name\tkind\tgender\tcensus_percent\nMary\tfirst\tfemale\t2.629\nAda\tfirst\tfemale\t0.050\nZelda\tfirst\tfemale\t0.002\nAma\tfirst\tfemale\t\n",
        )
        .unwrap();
        assert_eq!(f.bucket("mary", NameKind::First), "common");
        assert_eq!(f.bucket("Ada", NameKind::First), "mid");
        assert_eq!(f.bucket("Zelda", NameKind::First), "rare");
        assert_eq!(f.bucket("Ama", NameKind::First), "not-in-census");
        let err = NameFrequency::parse(
            Path::new("f.tsv"),
            "name\tkind\tgender\tcensus_percent\nX\tmiddle\tany\t1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("f.tsv:2"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Issue #5: after any swap the pronoun offset still points at the pronoun and every
        /// name offset at the candidate's (new) name.
        #[test]
        fn offsets_stay_right_on_generated_rows(row in span_row(), seed in any::<u64>(), other in any::<bool>()) {
            let condition = if other { GenderCondition::Other } else { GenderCondition::Same };
            let s = swapper(condition, Replace::Each);
            let pronoun = row.pronoun_text().to_lowercase();
            if let Ok(out) = s.swap(&row, &mut ChaCha8Rng::seed_from_u64(seed)) {
                for v in out {
                    prop_assert_eq!(v.row.pronoun_text().to_lowercase(), pronoun.clone());
                    let p = v.row.pronoun_text().to_string();
                    prop_assert_eq!(v.row.check(&p), Ok(()));
                    for (old, new) in row.candidates.iter().zip(&v.row.candidates) {
                        if v.replaced.contains(old.label.as_str()) {
                            prop_assert_ne!(&old.name, &new.name);
                        } else {
                            prop_assert_eq!(&old.name, &new.name);
                        }
                    }
                }
            }
        }
    }
}
