//! What a run of one attack was, written whole so that it can be run again and checked.
//!
//! Why: `summary.csv`'s `parameters` column is for people. It names the settings that shape the
//! numbers, but not every input (the tokenizer, the columns read, a word list's path), and some
//! of its values are outcomes (the trigger found, how many rows were cut). A run folder needs a
//! record a program can act on: `provenance.json` holds the attack's spec exactly as recipe keys
//! (every setting with its real key and flag value, after the recipe and flags were merged),
//! the global options that change output, the working directory its relative paths were
//! resolved in, the sha256 of every file the run read, and the sha256 of every file it wrote.
//! `robust replay DIR` checks the inputs against it, runs the spec again and compares the
//! outputs byte for byte.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::engine::Plan;
use super::spec::AttackSpec;

/// The file name in a run folder.
pub const FILE: &str = "provenance.json";

/// One attack run, as `robust attack --out DIR` records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Provenance {
    /// The robust version that ran it (outputs are reproducible within a version).
    pub robust_version: String,
    /// The folder relative paths in `recipe` were resolved in.
    pub working_dir: PathBuf,
    /// The attack's spec as a recipe (TOML): every key that was set, by recipe or flag, the
    /// seed included.
    pub recipe: String,
    /// `--max-len`, which changes what the model sees.
    pub max_len: Option<usize>,
    /// `--full-graph`, which changes how the logits are computed (to float rounding).
    pub full_graph: bool,
    /// `--shard K/N`, when the run was one part of an attack.
    pub shard: Option<String>,
    /// Every file the run read, with its sha256.
    pub inputs: Vec<Recorded>,
    /// Every file the run wrote into its folder, with its sha256.
    pub outputs: Vec<Recorded>,
}

/// A file and its sha256.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Recorded {
    /// What the file is to the run: `model`, `tokenizer`, `corpus`, `exclude`, ... (inputs),
    /// or nothing (outputs).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    /// The path as the run named it (inputs), or the file name in the run folder (outputs).
    pub path: PathBuf,
    /// sha256 of its bytes, lower-case hex.
    pub sha256: String,
}

/// Why a record could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    /// An input could not be hashed.
    #[error("failed to read {path} to record its sha256")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The spec could not be written as TOML (a path that is not UTF-8).
    #[error("failed to write the attack's spec as a recipe: {0}")]
    Spec(String),
    /// A record is not valid JSON of this shape.
    #[error("{path}: not a robust provenance record ({message})")]
    Parse {
        /// The record.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
}

/// The files of a model folder that shape its predictions, with their roles.
const MODEL_FILES: [(&str, &str); 7] = [
    ("model.onnx", "model"),
    ("model.onnx.data", "model data"),
    ("tokenizer.json", "tokenizer"),
    ("tokenizer_config.json", "tokenizer config"),
    ("config.json", "config"),
    ("robust.toml", "model settings"),
    ("input.toml", "model input"),
];

impl Provenance {
    /// The record of `plan`, run from `spec` (the merged recipe and flags).
    pub fn new(
        spec: &AttackSpec,
        plan: &Plan,
        recipe_file: Option<&Path>,
        max_len: Option<usize>,
        full_graph: bool,
        shard: Option<String>,
    ) -> Result<Self, ProvenanceError> {
        let recipe = toml::to_string(spec)
            .map_err(|e| ProvenanceError::Spec(e.to_string().trim().into()))?;
        let mut inputs = Vec::new();
        let mut add = |role: &str, path: &Path| -> Result<(), ProvenanceError> {
            // A pipe or stdin is read once, by the run itself: hashing it here would consume
            // it. It is recorded without a hash, and a replay refuses it.
            let regular = std::fs::metadata(path).is_ok_and(|m| m.is_file());
            let sha256 = if regular {
                crate::hash::sha256_file(path).map_err(|source| ProvenanceError::Read {
                    path: path.to_path_buf(),
                    source,
                })?
            } else {
                String::new()
            };
            inputs.push(Recorded {
                role: role.into(),
                path: path.to_path_buf(),
                sha256,
            });
            Ok(())
        };
        if let Some(recipe) = recipe_file {
            add("recipe", recipe)?;
        }
        for (name, role) in MODEL_FILES {
            let path = plan.attack.model.join(name);
            if path.is_file() {
                add(role, &path)?;
            }
        }
        for (i, corpus) in plan.corpora().into_iter().enumerate() {
            add(if i == 0 { "corpus" } else { "search corpus" }, corpus)?;
        }
        // Lists named by path; the compiled-in ones are part of the version.
        for (role, path) in [
            ("names", spec.names.as_deref()),
            ("name frequency", spec.name_frequency.as_deref()),
        ] {
            if let Some(path) = path {
                add(role, path)?;
            }
        }
        for list in spec.exclude.iter().flatten() {
            if list.as_os_str() != "none" {
                add("exclude", list)?;
            }
        }
        if let Some(list) = spec.stop_words.as_deref()
            && list.as_os_str() != "none"
        {
            add("stop words", list)?;
        }
        // A word attack's resources, found by default or given: the folders its parameters
        // record (#31), file by file.
        let parameters = &plan.attack.parameters;
        if let Some(dir) = parameters.get("wordnet") {
            let dir = Path::new(dir);
            for name in crate::lexicon::wordnet::DATABASE_FILES {
                let path = dir.join(name);
                if path.is_file() {
                    add("wordnet", &path)?;
                }
            }
        }
        for (key, role) in [
            ("sentence_encoder", "sentence encoder"),
            ("mlm", "fill-mask model"),
        ] {
            if let Some(dir) = parameters.get(key) {
                for (name, _) in MODEL_FILES {
                    let path = Path::new(dir).join(name);
                    if path.is_file() {
                        add(&format!("{role} {name}"), &path)?;
                    }
                }
            }
        }
        Ok(Provenance {
            robust_version: crate::VERSION.to_string(),
            working_dir: std::env::current_dir().unwrap_or_default(),
            recipe,
            max_len,
            full_graph,
            shard,
            inputs,
            outputs: Vec::new(),
        })
    }

    /// Record the files written (name and contents), each by the sha256 of its
    /// [`comparable`] form.
    pub fn with_outputs<'a>(
        mut self,
        files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Self {
        self.outputs = files
            .into_iter()
            .map(|(name, bytes)| Recorded {
                role: String::new(),
                path: PathBuf::from(name),
                sha256: crate::hash::sha256_bytes(&comparable(name, bytes)),
            })
            .collect();
        self.outputs.sort_by(|a, b| a.path.cmp(&b.path));
        self
    }

    /// The record as JSON, one key a line.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Read `DIR/provenance.json`.
    pub fn read(dir: &Path) -> Result<Self, ProvenanceError> {
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| ProvenanceError::Read {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| ProvenanceError::Parse {
            path,
            message: e.to_string(),
        })
    }

    /// The spec the run was made from.
    pub fn spec(&self) -> Result<AttackSpec, ProvenanceError> {
        toml::from_str(&self.recipe).map_err(|e| ProvenanceError::Parse {
            path: PathBuf::from(FILE),
            message: format!("its recipe: {e}"),
        })
    }

    /// Inputs whose bytes are not what the run read, as (file, recorded, now) — `now` is the
    /// error when the file cannot be read, and an input that was not a regular file (a pipe,
    /// stdin) is never the same again. Relative paths are taken from `working_dir`.
    pub fn changed_inputs(&self) -> Vec<(PathBuf, String, String)> {
        self.inputs
            .iter()
            .filter_map(|input| {
                if input.sha256.is_empty() {
                    return Some((
                        input.path.clone(),
                        "no hash: it was not a regular file (a pipe or stdin), read once".into(),
                        "cannot be read again".into(),
                    ));
                }
                let path = self.working_dir.join(&input.path);
                let now =
                    crate::hash::sha256_file(&path).unwrap_or_else(|e| format!("unreadable ({e})"));
                (now != input.sha256).then(|| (input.path.clone(), input.sha256.clone(), now))
            })
            .collect()
    }
}

/// What of an output must come out again: a CSV whole; a JSON file (`trigger.json`) with the
/// timings it reports (every key ending in `seconds`) set to null, since wall time is the one
/// thing a seed does not fix.
pub fn comparable(name: &str, bytes: &[u8]) -> Vec<u8> {
    fn mask(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if key.ends_with("seconds") {
                        *v = serde_json::Value::Null;
                    } else {
                        mask(v);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(mask),
            _ => {}
        }
    }
    if !name.ends_with(".json") {
        return bytes.to_vec();
    }
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(mut value) => {
            mask(&mut value);
            serde_json::to_vec_pretty(&value).unwrap_or_else(|_| bytes.to_vec())
        }
        Err(_) => bytes.to_vec(),
    }
}

/// Where two files first differ: the 1-based line and both lines (`None` past a file's end).
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<(usize, Option<String>, Option<String>)> {
    if a == b {
        return None;
    }
    let mut left = a.split(|&c| c == b'\n');
    let mut right = b.split(|&c| c == b'\n');
    let mut line = 0;
    loop {
        line += 1;
        match (left.next(), right.next()) {
            (Some(x), Some(y)) if x == y => continue,
            (x, y) => {
                let text = |l: Option<&[u8]>| l.map(|l| String::from_utf8_lossy(l).into_owned());
                return Some((line, text(x), text(y)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_difference_names_its_line() {
        assert_eq!(first_difference(b"a\nb\n", b"a\nb\n"), None);
        assert_eq!(
            first_difference(b"a\nb\nc\n", b"a\nx\nc\n"),
            Some((2, Some("b".into()), Some("x".into())))
        );
        assert_eq!(
            first_difference(b"a\n", b"a\nb\n"),
            Some((2, Some(String::new()), Some("b".into())))
        );
    }

    #[test]
    fn timings_are_masked_in_json_and_nothing_else_is() {
        let a = br#"{"trigger": "a b", "seconds": 1.5, "runs": [{"wall_seconds": 2, "k": 3}]}"#;
        let b = br#"{"trigger": "a b", "seconds": 9.0, "runs": [{"wall_seconds": 7, "k": 3}]}"#;
        assert_eq!(comparable("trigger.json", a), comparable("trigger.json", b));
        let c = br#"{"trigger": "a c", "seconds": 1.5, "runs": [{"wall_seconds": 2, "k": 3}]}"#;
        assert_ne!(comparable("trigger.json", a), comparable("trigger.json", c));
        assert_eq!(comparable("x.csv", b"seconds,1\n"), b"seconds,1\n");
    }

    #[test]
    fn a_spec_survives_the_record_as_the_same_recipe() {
        let spec: AttackSpec = toml::from_str(
            "name = \"t\"\nkind = \"trigger\"\nmodel = \"m\"\ncorpus = \"c.tsv\"\nseed = 7\n\
             search_corpus = \"s.tsv\"\nestimator = \"per-example\"\nshrinkage = \"none\"\n\
             sigma = 0.25\nexclude = [\"none\"]\nallow_subwords = true\nposition = \"suffix\"\n",
        )
        .unwrap();
        let text = toml::to_string(&spec).unwrap();
        let back: AttackSpec = toml::from_str(&text).unwrap();
        assert_eq!(format!("{back:?}"), format!("{spec:?}"), "{text}");
        for kebab in ["per-example", "suffix", "none"] {
            assert!(text.contains(&format!("\"{kebab}\"")), "{text}");
        }
    }
}
