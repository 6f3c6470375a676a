//! Attack suites (`attacks/nightly.toml`): every attack × every model × every corpus, checked
//! in full before any of it runs.
//!
//! A nightly job that fails two hours in on a misspelt key in its last entry wastes the night,
//! so [`Suite::load`] parses the suite, reads every recipe it names, resolves every attack
//! (parameters, name lexicons), reads every model folder's config and every corpus (and checks
//! the corpus labels against each model's) before returning. Each problem is reported with the
//! file and key it came from.
//!
//! A suite entry is an attack recipe: either a path to `attacks/*.toml` (`recipe = "..."`)
//! with optional overrides beside it, or an inline table with the same keys. The suite's
//! `models` and `corpora` replace the recipe's `model` and `corpus`, so the same recipes serve
//! `robust attack` and any number of suites; an inline entry may not set them itself, which
//! keeps "what ran on what" in one place.
//!
//! ```toml
//! name = "nightly"
//! seed = 13
//! models = ["models/sst2-minilm"]
//! corpora = ["corpora/rt-snippets.tsv"]
//!
//! [[attack]]
//! recipe = "attacks/shuffle-default.toml"
//! samples = 3
//!
//! [[attack]]
//! kind = "negation"
//! limit = 500
//! ```

pub mod assemble;
pub mod compare;
pub mod merge;
pub mod run;
pub mod runner;

/// A suite's gates, judged on its summary rows; they live with the reports, beside the
/// run-to-run comparison.
pub use crate::report::gate;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::attack::engine::{self, DEFAULT_FAILURE_EXAMPLES, EngineError, Plan, Shape};
use crate::attack::kind::Registry;
use crate::attack::spec::{AttackSpec, RecipeError};
use crate::data::corpus::{Columns, Corpus, CorpusError};
use crate::model::{ModelError, ModelInfo, ModelKind};
use crate::report::gate::{Gate, GateMode};
use crate::shard::Shard;

/// Why a suite could not be loaded; each names the suite file and, where there is one, the
/// key or entry at fault.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The suite file could not be read.
    #[error("failed to read suite {path}")]
    Read {
        /// The suite file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid UTF-8 or not valid TOML (or has unknown top-level keys).
    #[error("{path}: {message}")]
    Parse {
        /// The suite file.
        path: PathBuf,
        /// The parser's message, on one line.
        message: String,
    },
    /// A key has a value the suite cannot use.
    #[error("{path}: {key}: {problem}")]
    Key {
        /// The suite file.
        path: PathBuf,
        /// The key, e.g. `attack[2].models`.
        key: String,
        /// What is wrong with its value.
        problem: String,
    },
    /// A recipe an entry names could not be read or is invalid.
    #[error("{path}: {key}")]
    Recipe {
        /// The suite file.
        path: PathBuf,
        /// The entry's `recipe` key.
        key: String,
        /// Why the recipe was refused.
        #[source]
        source: Box<RecipeError>,
    },
    /// An entry could not be planned against one of its models or corpora.
    #[error("{path}: {key}")]
    Plan {
        /// The suite file.
        path: PathBuf,
        /// The entry, and the model or corpus at fault.
        key: String,
        /// Why planning failed.
        #[source]
        source: Box<EngineError>,
    },
    /// A model folder's kind or configuration could not be read.
    #[error("{path}: {key}: cannot load model")]
    Model {
        /// The suite file.
        path: PathBuf,
        /// Where the model is named, e.g. `models[0] = models/sst2-minilm`.
        key: String,
        /// Why it could not be read.
        #[source]
        source: Box<ModelError>,
    },
    /// A corpus could not be read, or its labels do not fit a model it is attacked on.
    #[error("{path}: {key}: cannot read corpus")]
    Corpus {
        /// The suite file.
        path: PathBuf,
        /// The entry and the corpus.
        key: String,
        /// Why it was refused.
        #[source]
        source: Box<CorpusError>,
    },
}

/// The file as written; attack entries stay raw tables so that suite-only keys (`recipe`,
/// `models`, `corpora`, gates) can sit beside recipe keys and every other key is still
/// checked against [`AttackSpec`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    name: Option<String>,
    seed: Option<u64>,
    models: Vec<PathBuf>,
    corpora: Vec<PathBuf>,
    /// Default gate mode for every attack's thresholds.
    gate: Option<GateMode>,
    /// Failure examples per attack in the HTML report.
    examples: Option<usize>,
    #[serde(default)]
    attack: Vec<toml::Table>,
}

/// One attack on one model and one corpus: the unit that runs, is checkpointed and resumed.
pub struct Job {
    /// Position in the suite, from 0; jobs run and are reported in this order.
    pub index: usize,
    /// File-name-safe and unique within the suite, e.g. `00-shuffle-sst2-minilm-rt-snippets`.
    pub id: String,
    /// Where the entry came from, for messages: `attack[0] (attacks/shuffle-default.toml)`.
    pub origin: String,
    /// The attack, checked and bound to this job's model and corpus.
    pub plan: Plan,
    /// The model's name as reports give it.
    pub model_name: String,
    /// Absolute thresholds on this attack's rates.
    pub gates: Vec<Gate>,
    /// Failure examples the HTML report shows for this attack.
    pub examples: usize,
}

/// A checked suite, ready to run.
pub struct Suite {
    /// The suite file.
    pub path: PathBuf,
    /// The suite's `name`, else the file name without its extension.
    pub name: String,
    /// sha256 of the suite file itself.
    pub sha256: String,
    /// Every attack × model × corpus, in suite order (entries, then models, then corpora).
    pub jobs: Vec<Job>,
    /// Every model folder the jobs use, in suite order.
    pub models: Vec<PathBuf>,
    /// Every corpus the jobs use (trigger search corpora included), in suite order.
    pub corpora: Vec<PathBuf>,
    /// The kinds the suite was loaded with: its history and HTML ask them what each kind's
    /// rows mean.
    pub registry: Registry,
}

/// A suite entry's own keys, taken out of its table before the rest is read as a recipe.
struct EntryKeys {
    recipe: Option<PathBuf>,
    models: Option<Vec<PathBuf>>,
    corpora: Option<Vec<PathBuf>>,
    mode: Option<GateMode>,
    examples: Option<usize>,
    /// (key, bound, metric, threshold)
    gates: Vec<(String, gate::Bound, String, f64)>,
}

fn take_entry_keys(
    table: &mut toml::Table,
    key: &str,
    err: &dyn Fn(String, &str) -> SuiteError,
) -> Result<EntryKeys, SuiteError> {
    let paths = |table: &mut toml::Table, name: &str| -> Result<Option<Vec<PathBuf>>, SuiteError> {
        match table.remove(name) {
            None => Ok(None),
            Some(toml::Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    match v {
                        toml::Value::String(p) => out.push(PathBuf::from(p)),
                        other => {
                            return Err(err(
                                format!("{key}.{name}[{i}]"),
                                &format!("must be a path string, found {}", other.type_str()),
                            ));
                        }
                    }
                }
                if out.is_empty() {
                    return Err(err(format!("{key}.{name}"), "must not be empty"));
                }
                Ok(Some(out))
            }
            Some(other) => Err(err(
                format!("{key}.{name}"),
                &format!("must be a list of paths, found {}", other.type_str()),
            )),
        }
    };
    let recipe = match table.remove("recipe") {
        None => None,
        Some(toml::Value::String(p)) => Some(PathBuf::from(p)),
        Some(other) => {
            return Err(err(
                format!("{key}.recipe"),
                &format!("must be a path string, found {}", other.type_str()),
            ));
        }
    };
    let models = paths(table, "models")?;
    let corpora = paths(table, "corpora")?;
    let mode = match table.remove("gate") {
        None => None,
        Some(v) => Some(GateMode::deserialize(v.clone()).map_err(|_| {
            err(
                format!("{key}.gate"),
                &format!("must be \"interval\" or \"point\", found {v}"),
            )
        })?),
    };
    let examples = match table.remove("examples") {
        None => None,
        Some(toml::Value::Integer(n)) if n >= 0 => Some(n as usize),
        Some(v) => {
            return Err(err(
                format!("{key}.examples"),
                &format!("must be a count of failure examples, found {v}"),
            ));
        }
    };
    let mut gates = Vec::new();
    let names: Vec<String> = table.keys().cloned().collect();
    for name in names {
        // Recipe keys such as `max_search_examples` are not gates.
        if AttackSpec::KEYS.contains(&name.as_str()) {
            continue;
        }
        let Some((bound, metric)) = Gate::parse_key(&name) else {
            continue;
        };
        let metric = metric.to_string();
        let value = table.remove(&name).expect("key listed just above");
        let threshold = match value {
            toml::Value::Float(x) => x,
            toml::Value::Integer(i) => i as f64,
            other => {
                return Err(err(
                    format!("{key}.{name}"),
                    &format!("must be a number between 0 and 1, found {other}"),
                ));
            }
        };
        if !(0.0..=1.0).contains(&threshold) {
            return Err(err(
                format!("{key}.{name}"),
                &format!("{threshold}: a rate threshold must be between 0 and 1"),
            ));
        }
        gates.push((name, bound, metric, threshold));
    }
    Ok(EntryKeys {
        recipe,
        models,
        corpora,
        mode,
        examples,
        gates,
    })
}

/// One piece of a shard's work: a whole job, or the rows of a job split by rows.
#[derive(Clone, Copy)]
pub struct ShardWork<'a> {
    /// The job.
    pub job: &'a Job,
    /// The part of its rows this shard attacks, when the job is split by rows.
    pub rows: Option<Shard>,
}

impl ShardWork<'_> {
    /// The folder under `jobs/` this piece of work is written to: the job's id, or for a
    /// part of a job's rows `<id>.rows-K-of-N`.
    pub fn folder(&self) -> String {
        match self.rows {
            None => self.job.id.clone(),
            Some(s) => format!("{}.rows-{}-of-{}", self.job.id, s.index, s.count),
        }
    }
}

impl Suite {
    /// Whether shards of `count` split the job at `index`'s rows rather than deal it whole:
    /// when the suite has fewer jobs than shards, whole jobs would leave shards idle, so
    /// perturbation attacks (which split by rows exactly, [`engine::merge_attack_shards`]) go
    /// to every shard in row ranges. Trigger searches, span swaps and cloze probes stay whole.
    pub fn splits_rows(&self, job: &Job, count: usize) -> bool {
        self.jobs.len() < count && job.plan.shape.splits_rows()
    }

    /// What `shard` of the suite runs, in suite order: whole jobs dealt round-robin
    /// ([`Shard::owns`]), and this shard's row range of every job split by rows.
    pub fn shard_work(&self, shard: Shard) -> Vec<ShardWork<'_>> {
        self.jobs
            .iter()
            .filter_map(|job| {
                if self.splits_rows(job, shard.count) {
                    Some(ShardWork {
                        job,
                        rows: Some(shard),
                    })
                } else {
                    shard
                        .owns(job.index)
                        .then_some(ShardWork { job, rows: None })
                }
            })
            .collect()
    }

    /// Parse and check everything, with the built-in kinds; no model is run.
    pub fn load(path: &Path) -> Result<Suite, SuiteError> {
        Self::load_with(&Registry::builtin(), path)
    }

    /// [`Suite::load`] with the kinds of `registry`: entries may name any of them, and each
    /// job runs the registered attack (a caller's own, `CONTRIBUTING.md`).
    pub fn load_with(registry: &Registry, path: &Path) -> Result<Suite, SuiteError> {
        let bytes = std::fs::read(path).map_err(|source| SuiteError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes.clone()).map_err(|e| SuiteError::Parse {
            path: path.to_path_buf(),
            message: format!("not valid UTF-8 ({e})"),
        })?;
        let file: SuiteFile = toml::from_str(&text).map_err(|e| SuiteError::Parse {
            path: path.to_path_buf(),
            // #30: the parser's multi-line rendering is kept, so its caret still points
            // at the bad value.
            message: e.to_string().trim_end().to_string(),
        })?;
        let key_err = |key: String, problem: &str| SuiteError::Key {
            path: path.to_path_buf(),
            key,
            problem: problem.to_string(),
        };
        if file.models.is_empty() {
            return Err(key_err("models".into(), "needs at least one model folder"));
        }
        if file.corpora.is_empty() {
            return Err(key_err("corpora".into(), "needs at least one corpus"));
        }
        if file.attack.is_empty() {
            return Err(key_err("attack".into(), "needs at least one [[attack]]"));
        }
        let name = match file.name {
            Some(n) if n.trim().is_empty() => {
                return Err(key_err("name".into(), "must not be empty"));
            }
            Some(n) => n,
            None => path
                .file_stem()
                .map_or_else(|| "suite".into(), |s| s.to_string_lossy().into_owned()),
        };

        // Every model folder, with its kind (and labels, for classifiers), read once.
        let mut infos: BTreeMap<PathBuf, Option<ModelInfo>> = BTreeMap::new();
        let mut read_model = |dir: &Path, key: String| -> Result<(), SuiteError> {
            if infos.contains_key(dir) {
                return Ok(());
            }
            let model_err = |source| SuiteError::Model {
                path: path.to_path_buf(),
                key: key.clone(),
                source: Box::new(source),
            };
            let info = match ModelKind::of_dir(dir).map_err(model_err)? {
                ModelKind::Classifier | ModelKind::CorefSpans => {
                    Some(ModelInfo::read(dir).map_err(model_err)?)
                }
                ModelKind::FillMask | ModelKind::SentenceEncoder => None,
            };
            infos.insert(dir.to_path_buf(), info);
            Ok(())
        };
        for (i, dir) in file.models.iter().enumerate() {
            read_model(dir, format!("models[{i}] = {}", dir.display()))?;
        }
        let check_files = |list: &[PathBuf], key: &str| -> Result<(), SuiteError> {
            for (i, corpus) in list.iter().enumerate() {
                if !corpus.is_file() {
                    return Err(key_err(
                        format!("{key}[{i}] = {}", corpus.display()),
                        "no such file",
                    ));
                }
            }
            Ok(())
        };
        check_files(&file.corpora, "corpora")?;

        struct Entry {
            spec: AttackSpec,
            origin: String,
            keys: EntryKeys,
        }
        let mut entries = Vec::new();
        for (i, table) in file.attack.iter().enumerate() {
            let key = format!("attack[{i}]");
            let mut table = table.clone();
            let keys = take_entry_keys(&mut table, &key, &key_err)?;
            for fixed in ["model", "corpus"] {
                if table.contains_key(fixed) {
                    return Err(key_err(
                        format!("{key}.{fixed}"),
                        &format!(
                            "set by the suite's {fixed}s list (or this entry's own {fixed}s                              list), not per attack"
                        ),
                    ));
                }
            }
            if let Some(models) = &keys.models {
                for (j, dir) in models.iter().enumerate() {
                    read_model(dir, format!("{key}.models[{j}] = {}", dir.display()))?;
                }
            }
            if let Some(corpora) = &keys.corpora {
                check_files(corpora, &format!("{key}.corpora"))?;
            }
            let inline: AttackSpec = toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| key_err(key.clone(), e.message().trim_end()))?;
            let (spec, origin) = match &keys.recipe {
                Some(r) => (
                    AttackSpec::from_file(r)
                        .map_err(|source| SuiteError::Recipe {
                            path: path.to_path_buf(),
                            key: format!("{key}.recipe"),
                            source: Box::new(source),
                        })?
                        .overridden_by(inline),
                    format!("{key} ({})", r.display()),
                ),
                None => (inline, key.clone()),
            };
            if let Some(search) = &spec.search_corpus
                && !search.is_file()
            {
                return Err(key_err(
                    format!("{origin}: search_corpus = {}", search.display()),
                    "no such file",
                ));
            }
            entries.push(Entry { spec, origin, keys });
        }

        let mut jobs = Vec::new();
        let mut seen = BTreeSet::new();
        for entry in &entries {
            let models = entry.keys.models.as_ref().unwrap_or(&file.models);
            let corpora = entry.keys.corpora.as_ref().unwrap_or(&file.corpora);
            for model in models {
                for corpus_path in corpora {
                    let mut spec = entry.spec.clone();
                    spec.model = Some(model.clone());
                    spec.corpus = Some(corpus_path.clone());
                    spec.seed = spec.seed.or(file.seed);
                    let plan =
                        engine::plan_with(registry, &spec, &entry.origin).map_err(|source| {
                            SuiteError::Plan {
                                path: path.to_path_buf(),
                                key: entry.origin.clone(),
                                source: Box::new(source),
                            }
                        })?;
                    let model_name = match &infos[model] {
                        Some(info) => info.name.clone(),
                        None => crate::model::folder_name(model).map_err(|source| {
                            SuiteError::Model {
                                path: path.to_path_buf(),
                                key: format!("{}: model {}", entry.origin, model.display()),
                                source: Box::new(source),
                            }
                        })?,
                    };
                    let corpus_name = corpus_path
                        .file_stem()
                        .map_or_else(|| "corpus".into(), |s| s.to_string_lossy().into_owned());
                    let attack_name = plan.attack.name.clone();
                    if !seen.insert((attack_name.clone(), model_name.clone(), corpus_name.clone()))
                    {
                        return Err(key_err(
                            format!("{}: name = {attack_name}", entry.origin),
                            "two attacks in the suite have this name; give each a distinct name",
                        ));
                    }
                    let mode = entry.keys.mode.or(file.gate).unwrap_or_default();
                    let gates = entry
                        .keys
                        .gates
                        .iter()
                        .map(|(_, bound, metric, threshold)| Gate {
                            metric: metric.clone(),
                            bound: *bound,
                            threshold: *threshold,
                            mode,
                        })
                        .collect();
                    let index = jobs.len();
                    let id = format!(
                        "{index:02}-{}-{}-{}",
                        slug(&attack_name),
                        slug(&model_name),
                        slug(&corpus_name)
                    );
                    jobs.push(Job {
                        index,
                        id,
                        origin: entry.origin.clone(),
                        plan,
                        model_name,
                        gates,
                        examples: entry
                            .keys
                            .examples
                            .or(file.examples)
                            .unwrap_or(DEFAULT_FAILURE_EXAMPLES),
                    });
                }
            }
        }

        // Read every input with the columns each job asks for, check labels against each
        // model, and check that each gate names a rate the attack produces, so a bad row or
        // key fails now rather than an hour in.
        let mut labelled: BTreeMap<(PathBuf, Columns, PathBuf), bool> = BTreeMap::new();
        for (job, entry_gates) in jobs.iter().map(|j| {
            let e = entries
                .iter()
                .find(|e| e.origin == j.origin)
                .expect("every job comes from an entry");
            (j, &e.keys.gates)
        }) {
            let plan = &job.plan;
            let a = &plan.attack;
            let corpus_err = |corpus: &Path| {
                let key = format!("{}: corpus {}", job.origin, corpus.display());
                move |source| SuiteError::Corpus {
                    path: path.to_path_buf(),
                    key,
                    source: Box::new(source),
                }
            };
            let plan_err = |source: EngineError| SuiteError::Plan {
                path: path.to_path_buf(),
                key: format!("{}: corpus {}", job.origin, a.corpus.display()),
                source: Box::new(source),
            };
            let has_labels = match plan.shape {
                Shape::SpanSwap => {
                    crate::data::spans::SpanCorpus::read(&a.corpus)
                        .map_err(|e| plan_err(e.into()))?;
                    true
                }
                Shape::ClozeProbe => {
                    crate::attack::cloze::read_items(&a.corpus).map_err(|e| plan_err(e.into()))?;
                    true
                }
                Shape::TextPerturbation | Shape::TriggerSearch => {
                    let mut inputs = vec![(a.corpus.clone(), plan.columns.clone())];
                    if let Some(search) = a.trigger.as_ref().and_then(|t| t.search_corpus.clone()) {
                        inputs.push((
                            search,
                            Columns {
                                require_label: true,
                                ..plan.columns.clone()
                            },
                        ));
                    }
                    let mut first = None;
                    for (corpus_path, columns) in inputs {
                        let key = (corpus_path.clone(), columns.clone(), a.model.clone());
                        let has = match labelled.get(&key) {
                            Some(h) => *h,
                            None => {
                                let corpus = Corpus::read(&corpus_path, &columns)
                                    .map_err(corpus_err(&corpus_path))?;
                                if corpus.label_column.is_some() {
                                    let info = infos[&a.model]
                                        .as_ref()
                                        .expect("text attacks run on classifiers");
                                    corpus
                                        .label_indices(info)
                                        .map_err(corpus_err(&corpus_path))?;
                                }
                                let has = corpus.label_column.is_some();
                                labelled.insert(key, has);
                                has
                            }
                        };
                        first.get_or_insert(has);
                    }
                    first.unwrap_or(false)
                }
            };
            if plan.shape == Shape::TriggerSearch && !has_labels {
                return Err(key_err(
                    format!("{}: corpus {}", job.origin, a.corpus.display()),
                    "a trigger attack needs gold labels (no label column)",
                ));
            }
            let produced = plan.rate_metrics(has_labels);
            for (key, _, metric, _) in entry_gates {
                if !crate::score::metric::Metric::parse(metric)
                    .is_some_and(|m| produced.contains(&m))
                {
                    return Err(key_err(
                        format!("{}.{key}", job.origin),
                        &format!(
                            "{} ({}) on {} produces no rate `{metric}`; gates can use: {}",
                            a.name,
                            plan.shape.as_str(),
                            a.corpus.display(),
                            produced
                                .iter()
                                .map(|m| format!("max_{m}, min_{m}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
        }

        let mut models: Vec<PathBuf> = Vec::new();
        let mut corpora: Vec<PathBuf> = Vec::new();
        for job in &jobs {
            if !models.contains(&job.plan.attack.model) {
                models.push(job.plan.attack.model.clone());
            }
            for c in job.plan.corpora() {
                if !corpora.iter().any(|x| x == c) {
                    corpora.push(c.to_path_buf());
                }
            }
        }
        Ok(Suite {
            path: path.to_path_buf(),
            name,
            sha256: crate::hash::sha256_bytes(&bytes),
            jobs,
            models,
            corpora,
            registry: registry.clone(),
        })
    }

    /// A digest of what the suite will compute: every job's attack, model, corpus, seed and
    /// parameters, plus the model and corpus contents. A resumed run must match it exactly,
    /// or finished and unfinished attacks would have measured different things.
    pub fn fingerprint(&self, model_sha: &BTreeMap<PathBuf, String>) -> String {
        let mut text = format!("suite={}\n", self.name);
        for job in &self.jobs {
            let a = &job.plan.attack;
            let corpus_sha: Vec<String> = job
                .plan
                .corpora()
                .iter()
                .map(|c| crate::hash::sha256_file(c).unwrap_or_else(|e| format!("unreadable {e}")))
                .collect();
            text.push_str(&format!(
                "{}|{}|{}|{}|{}|{}|{}|{:?}|{:?}\n",
                job.id,
                a.kind.as_str(),
                a.model.display(),
                model_sha.get(&a.model).map_or("", String::as_str),
                a.corpus.display(),
                corpus_sha.join(","),
                a.seed,
                a.parameters,
                (&job.plan.columns.text, &job.plan.columns.label),
            ));
            // Gates and example counts do not change what is computed; they are judged when
            // the run is assembled, so changing them between a kill and --resume is allowed.
        }
        crate::hash::sha256_bytes(text.as_bytes())
    }
}

/// Lower-case letters, digits and `-` only, so ids are safe as file names everywhere.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() { "x".into() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// Write a suite into a temporary folder; paths inside are absolute into the repository.
    fn suite(body: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        let model = repo().join("models/sst2-minilm");
        let text = body
            .replace("MODEL", model.to_str().unwrap())
            .replace("NAMES", repo().join("corpora/names.tsv").to_str().unwrap());
        std::fs::write(&path, text).unwrap();
        // A small labelled corpus of our own, so these tests need no setup.
        std::fs::write(
            dir.path().join("c.tsv"),
            "sentence\tlabel\nit is good\tpositive\nJohn is not bad\tnegative\n",
        )
        .unwrap();
        (dir, path)
    }

    fn err(body: &str) -> String {
        let (_dir, path) = suite(body);
        match Suite::load(&path) {
            Ok(_) => panic!("expected an error for {body}"),
            Err(e) => {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    text.push_str(&format!(": {s}"));
                    source = s.source();
                }
                text
            }
        }
    }

    #[test]
    fn loads_a_valid_suite_as_a_cross_product() {
        let (dir, path) = suite("");
        std::fs::copy(dir.path().join("c.tsv"), dir.path().join("d.tsv")).unwrap();
        std::fs::write(
            &path,
            format!(
                "name = \"t\"\nseed = 5\nmodels = [\"{}\"]\ncorpora = [\"{}\", \"{}\"]\n\
                 [[attack]]\nkind = \"shuffle\"\nsamples = 2\n\
                 [[attack]]\nname = \"neg\"\nkind = \"negation\"\nseed = 9\n",
                repo().join("models/sst2-minilm").display(),
                dir.path().join("c.tsv").display(),
                dir.path().join("d.tsv").display(),
            ),
        )
        .unwrap();
        let s = Suite::load(&path).unwrap();
        assert_eq!(s.name, "t");
        assert_eq!(s.jobs.len(), 4);
        assert_eq!(s.jobs[0].id, "00-shuffle-sst2-minilm-c");
        assert_eq!(s.jobs[1].id, "01-shuffle-sst2-minilm-d");
        assert_eq!(
            s.jobs[0].plan.attack.seed, 5,
            "the suite's seed is the default"
        );
        assert_eq!(s.jobs[2].plan.attack.seed, 9, "an attack's own seed wins");
        assert_eq!(s.jobs[2].plan.attack.name, "neg");
    }

    #[test]
    fn every_problem_names_file_and_key() {
        let e = err("models = [\"MODEL\"]\ncorpora = []\nmodle = 1\n");
        assert!(
            e.contains("s.toml") && e.contains("unknown field `modle`"),
            "{e}"
        );
        let e =
            err("models = [\"MODEL\"]\ncorpora = [\"nope.tsv\"]\n[[attack]]\nkind = \"shuffle\"\n");
        assert!(e.contains("corpora[0] = nope.tsv: no such file"), "{e}");
        let e = err(
            "models = [\"missing-model\"]\ncorpora = [\"x\"]\n[[attack]]\nkind = \"shuffle\"\n",
        );
        assert!(
            e.contains("models[0] = missing-model") && e.contains("no model.onnx"),
            "{e}"
        );
        let body = |attack: &str| {
            let (dir, path) = suite("");
            let c = dir.path().join("c.tsv");
            std::fs::write(
                &path,
                format!(
                    "models = [\"{}\"]\ncorpora = [\"{}\"]\n[[attack]]\n{attack}\n",
                    repo().join("models/sst2-minilm").display(),
                    c.display()
                ),
            )
            .unwrap();
            let e = Suite::load(&path).err().unwrap();
            let mut text = e.to_string();
            if let Some(s) = std::error::Error::source(&e) {
                text.push_str(&format!(": {s}"));
            }
            text
        };
        let e = body("kind = \"shuffle\"\nsampels = 3");
        assert!(e.contains("attack[0]: unknown field `sampels`"), "{e}");
        let e = body("kind = \"shuffle\"\nmode = \"local\"\nwindow = 1");
        assert!(e.contains("window = 1: must be at least 2"), "{e}");
        let e = body("kind = \"shuffle\"\nmodel = \"m\"");
        assert!(e.contains("attack[0].model"), "{e}");
        let e = body("recipe = \"no/such.toml\"");
        assert!(
            e.contains("attack[0].recipe") && e.contains("no/such.toml"),
            "{e}"
        );
        let e = body("recipe = 3");
        assert!(e.contains("must be a path string"), "{e}");
        // Issue 13: suites run trigger searches, and one without a search corpus is refused
        // before anything runs.
        let e = body("kind = \"trigger\"");
        assert!(e.contains("search_corpus is required"), "{e}");
        let e = body("kind = \"trigger\"\nsearch_corpus = \"no/such.tsv\"");
        assert!(
            e.contains("attack[0]: search_corpus = no/such.tsv: no such file"),
            "{e}"
        );
        let e = body("kind = \"shuffle\"\nmax_flip_rat = 0.1");
        assert!(
            e.contains("attack[0].max_flip_rat") && e.contains("produces no rate `flip_rat`"),
            "{e}"
        );
        // Recipe keys that look like gates stay recipe keys.
        let e = body("kind = \"shuffle\"\nmax_search_examples = 10\nmax_flip_rate = 1.5");
        assert!(e.contains("between 0 and 1"), "{e}");
        let e = body("kind = \"shuffle\"\ngate = \"loose\"");
        assert!(e.contains("attack[0].gate"), "{e}");
        let e = body("kind = \"shuffle\"\nmodels = [\"no-such-model\"]");
        assert!(
            e.contains("attack[0].models[0] = no-such-model") && e.contains("no model.onnx"),
            "{e}"
        );
        let e = body("kind = \"shuffle\"\n[[attack]]\nkind = \"shuffle\"");
        assert!(e.contains("two attacks in the suite have this name"), "{e}");
        let e = body("kind = \"shuffle\"\nsamples = 0");
        assert!(e.contains("samples = 0: must be at least 1"), "{e}");
    }

    #[test]
    fn gates_take_the_suite_mode_unless_the_entry_sets_its_own() {
        let (dir, path) = suite("");
        std::fs::write(
            &path,
            format!(
                "gate = \"point\"\nexamples = 2\nmodels = [\"{}\"]\ncorpora = [\"{}\"]\n\
                 [[attack]]\nkind = \"shuffle\"\nmax_flip_rate = 0.1\nmin_accuracy_after = 0.5\n\
                 [[attack]]\nkind = \"negation\"\ngate = \"interval\"\nexamples = 0\n\
                 min_expected_direction_rate = 0.6\n",
                repo().join("models/sst2-minilm").display(),
                dir.path().join("c.tsv").display(),
            ),
        )
        .unwrap();
        let s = Suite::load(&path).unwrap();
        let g = &s.jobs[0].gates;
        assert_eq!(g.len(), 2);
        assert!(g.iter().all(|g| g.mode == GateMode::Point));
        assert_eq!(s.jobs[0].examples, 2);
        assert_eq!(s.jobs[1].gates[0].mode, GateMode::Interval);
        assert_eq!(s.jobs[1].gates[0].metric, "expected_direction_rate");
        assert_eq!(s.jobs[1].examples, 0);
    }

    #[test]
    fn corpus_labels_are_checked_against_the_model() {
        let (dir, path) = suite("");
        let c = dir.path().join("bad.tsv");
        std::fs::write(&c, "sentence\tlabel\nfine\tpositive\nodd\tneutral\n").unwrap();
        std::fs::write(
            &path,
            format!(
                "models = [\"{}\"]\ncorpora = [\"{}\"]\n[[attack]]\nkind = \"negation\"\n",
                repo().join("models/sst2-minilm").display(),
                c.display()
            ),
        )
        .unwrap();
        let e = Suite::load(&path).err().unwrap();
        let source = std::error::Error::source(&e).unwrap().to_string();
        assert!(e.to_string().contains("attack[0]"), "{e}");
        assert!(
            source.contains("bad.tsv:3:") && source.contains("neutral"),
            "{source}"
        );
    }

    proptest! {
        #[test]
        fn slugs_are_file_name_safe(text in ".{0,40}") {
            let s = slug(&text);
            prop_assert!(!s.is_empty());
            prop_assert!(s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
            prop_assert!(!s.starts_with('-') && !s.ends_with('-') && !s.contains("--"));
        }
    }
}
