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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::attack::recipe::{AttackKind, AttackSpec, RecipeError, ResolvedAttack};
use crate::corpus::{Columns, Corpus, CorpusError};
use crate::model::{ModelError, ModelInfo};

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("failed to read suite {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {key}: {problem}")]
    Key {
        path: PathBuf,
        key: String,
        problem: String,
    },
    #[error("{path}: {key}")]
    Recipe {
        path: PathBuf,
        key: String,
        #[source]
        source: Box<RecipeError>,
    },
    #[error("{path}: {key}: cannot load model")]
    Model {
        path: PathBuf,
        key: String,
        #[source]
        source: Box<ModelError>,
    },
    #[error("{path}: {key}: cannot read corpus")]
    Corpus {
        path: PathBuf,
        key: String,
        #[source]
        source: Box<CorpusError>,
    },
}

/// The file as written; attack entries stay raw tables so that `recipe` can sit beside
/// recipe keys and every other key is still checked against [`AttackSpec`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    name: Option<String>,
    seed: Option<u64>,
    models: Vec<PathBuf>,
    corpora: Vec<PathBuf>,
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
    pub attack: ResolvedAttack,
    pub columns: Columns,
    /// The model's name as reports give it.
    pub model_name: String,
}

/// A checked suite, ready to run.
pub struct Suite {
    pub path: PathBuf,
    pub name: String,
    /// sha256 of the suite file itself.
    pub sha256: String,
    pub jobs: Vec<Job>,
    /// Every model folder the jobs use, in suite order.
    pub models: Vec<PathBuf>,
    /// Every corpus the jobs use, in suite order.
    pub corpora: Vec<PathBuf>,
}

impl Suite {
    /// Parse and check everything; no model is run.
    pub fn load(path: &Path) -> Result<Suite, SuiteError> {
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
            message: e.to_string().trim_end().replace('\n', " "),
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

        let mut infos = Vec::new();
        for (i, dir) in file.models.iter().enumerate() {
            let info = ModelInfo::read(dir).map_err(|source| SuiteError::Model {
                path: path.to_path_buf(),
                key: format!("models[{i}] = {}", dir.display()),
                source: Box::new(source),
            })?;
            infos.push(info);
        }
        for (i, corpus) in file.corpora.iter().enumerate() {
            if !corpus.is_file() {
                return Err(key_err(
                    format!("corpora[{i}] = {}", corpus.display()),
                    "no such file",
                ));
            }
        }

        let mut specs = Vec::new();
        for (i, table) in file.attack.iter().enumerate() {
            let key = format!("attack[{i}]");
            let mut table = table.clone();
            let recipe = match table.remove("recipe") {
                None => None,
                Some(toml::Value::String(p)) => Some(PathBuf::from(p)),
                Some(other) => {
                    return Err(key_err(
                        format!("{key}.recipe"),
                        &format!("must be a path string, found {}", other.type_str()),
                    ));
                }
            };
            for fixed in ["model", "corpus"] {
                if table.contains_key(fixed) {
                    return Err(key_err(
                        format!("{key}.{fixed}"),
                        "set by the suite's models and corpora lists, not per attack",
                    ));
                }
            }
            let inline: AttackSpec = toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| key_err(key.clone(), e.message().trim_end()))?;
            let (spec, origin) = match &recipe {
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
            if spec.kind == Some(AttackKind::Trigger) {
                return Err(key_err(
                    format!("{origin}: kind"),
                    "trigger searches are not run in suites (use robust attack --kind trigger)",
                ));
            }
            specs.push((spec, origin));
        }

        let mut jobs = Vec::new();
        let mut seen = BTreeSet::new();
        for (spec, origin) in &specs {
            for (info, model) in infos.iter().zip(&file.models) {
                for corpus_path in &file.corpora {
                    let mut spec = spec.clone();
                    spec.model = Some(model.clone());
                    spec.corpus = Some(corpus_path.clone());
                    spec.seed = spec.seed.or(file.seed);
                    let attack = spec.resolve(origin).map_err(|source| SuiteError::Recipe {
                        path: path.to_path_buf(),
                        key: origin.clone(),
                        source: Box::new(source),
                    })?;
                    let corpus_name = corpus_path
                        .file_stem()
                        .map_or_else(|| "corpus".into(), |s| s.to_string_lossy().into_owned());
                    if !seen.insert((attack.name.clone(), info.name.clone(), corpus_name.clone())) {
                        return Err(key_err(
                            format!("{origin}: name = {}", attack.name),
                            "two attacks in the suite have this name; give each a distinct name",
                        ));
                    }
                    let index = jobs.len();
                    let id = format!(
                        "{index:02}-{}-{}-{}",
                        slug(&attack.name),
                        slug(&info.name),
                        slug(&corpus_name)
                    );
                    jobs.push(Job {
                        index,
                        id,
                        origin: origin.clone(),
                        attack,
                        columns: Columns {
                            text: spec.text_col.clone(),
                            label: spec.label_col.clone(),
                            require_label: false,
                        },
                        model_name: info.name.clone(),
                    });
                }
            }
        }

        // Read every corpus with the columns each job asks for, and check its labels against
        // each model, so a bad row fails now rather than an hour in.
        let mut checked = BTreeMap::new();
        for job in &jobs {
            let key = (
                job.attack.corpus.clone(),
                job.columns.text.clone(),
                job.columns.label.clone(),
                job.attack.model.clone(),
            );
            if checked.contains_key(&key) {
                continue;
            }
            let corpus_err = |source| SuiteError::Corpus {
                path: path.to_path_buf(),
                key: format!("{}: corpus {}", job.origin, job.attack.corpus.display()),
                source: Box::new(source),
            };
            let corpus = Corpus::read(&job.attack.corpus, &job.columns).map_err(corpus_err)?;
            if corpus.label_column.is_some() {
                let info = infos
                    .iter()
                    .zip(&file.models)
                    .find(|(_, m)| **m == job.attack.model)
                    .map(|(info, _)| info)
                    .expect("every job's model is one of the suite's");
                corpus.label_indices(info).map_err(corpus_err)?;
            }
            checked.insert(key, ());
        }

        Ok(Suite {
            path: path.to_path_buf(),
            name,
            sha256: crate::hash::sha256_bytes(&bytes),
            jobs,
            models: file.models,
            corpora: file.corpora,
        })
    }

    /// A digest of what the suite will compute: every job's attack, model, corpus, seed and
    /// parameters, plus the model and corpus contents. A resumed run must match it exactly,
    /// or finished and unfinished attacks would have measured different things.
    pub fn fingerprint(&self, model_sha: &BTreeMap<PathBuf, String>) -> String {
        let mut text = format!("suite={}\n", self.name);
        for job in &self.jobs {
            let a = &job.attack;
            let corpus_sha =
                crate::hash::sha256_file(&a.corpus).unwrap_or_else(|e| format!("unreadable {e}"));
            text.push_str(&format!(
                "{}|{}|{}|{}|{}|{}|{}|{:?}|{:?}\n",
                job.id,
                a.kind.as_str(),
                a.model.display(),
                model_sha.get(&a.model).map_or("", String::as_str),
                a.corpus.display(),
                corpus_sha,
                a.seed,
                a.parameters,
                (&job.columns.text, &job.columns.label),
            ));
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
        assert_eq!(s.jobs[0].attack.seed, 5, "the suite's seed is the default");
        assert_eq!(s.jobs[2].attack.seed, 9, "an attack's own seed wins");
        assert_eq!(s.jobs[2].attack.name, "neg");
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
        let e = body("kind = \"trigger\"");
        assert!(e.contains("trigger searches are not run in suites"), "{e}");
        let e = body("kind = \"shuffle\"\n[[attack]]\nkind = \"shuffle\"");
        assert!(e.contains("two attacks in the suite have this name"), "{e}");
        let e = body("kind = \"shuffle\"\nsamples = 0");
        assert!(e.contains("samples = 0: must be at least 1"), "{e}");
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
