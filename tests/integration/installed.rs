//! #32: robust as an installed tool. The binary is copied out of the checkout, as `cargo install`
//! or a release download would place it, and run from an empty working directory with an empty
//! `HOME`, on a model folder and a corpus given by path. Nothing of the repository is in reach:
//! not its `corpora/`, not its `.ort/` (the runtime library comes through `ORT_DYLIB_PATH`, as
//! for a user who ran `pip install onnxruntime`), not the folder the binary was built in. Every
//! attack kind and a suite must run, and write only under `--out`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::{
    default_corpus_rows, default_model_dir, repo, small_trigger_flags, stderr, stdout,
};

/// A temporary install: the binary, a runtime library, a model folder, a corpus, and an empty
/// working directory and `HOME`.
struct Install {
    root: tempfile::TempDir,
}

impl Install {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let p = root.path();
        for dir in ["bin", "lib", "model", "data", "work", "home", "out"] {
            std::fs::create_dir(p.join(dir)).unwrap();
        }
        std::fs::copy(env!("CARGO_BIN_EXE_robust"), p.join("bin/robust")).unwrap();
        // The library itself, not the checkout's symlink to it.
        let lib = std::fs::canonicalize(repo().join(".ort/libonnxruntime.so"))
            .expect("the runtime library (run ./scripts/setup first)");
        std::fs::copy(lib, p.join("lib/libonnxruntime.so")).unwrap();
        for entry in std::fs::read_dir(default_model_dir()).unwrap().flatten() {
            std::fs::copy(entry.path(), p.join("model").join(entry.file_name())).unwrap();
        }
        // A labelled corpus: sentences of the default corpus, and a few with names so that the
        // entity swap has something to swap.
        let mut corpus = default_corpus_rows(60);
        for (text, label) in [
            ("emily watson is wonderful as the lonely widow", "positive"),
            (
                "michael caine gives a tired and lazy performance",
                "negative",
            ),
            ("sarah and john make this comedy a delight", "positive"),
            ("david fincher's film is a joyless slog", "negative"),
        ] {
            corpus.push(format!("{text}\t{label}"));
        }
        std::fs::write(p.join("data/c.tsv"), corpus.join("\n") + "\n").unwrap();
        Install { root }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// Run the installed binary with a bare environment, from the empty working directory.
    fn robust(&self, args: &[&str]) -> Output {
        let out = Command::new(self.path("bin/robust"))
            .args(args)
            .current_dir(self.path("work"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.path("home"))
            .env("ORT_DYLIB_PATH", self.path("lib/libonnxruntime.so"))
            .output()
            .expect("the installed robust runs");
        assert!(
            out.status.success(),
            "robust {args:?}\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        out
    }

    /// `robust attack --kind KIND` as [`attack`](Self::attack) runs it, expected to fail; its
    /// error output.
    fn attack_refused(&self, kind: &str, extra: &[String]) -> String {
        let out = self.path(&format!("out/{kind}-refused"));
        let mut args = vec![
            "attack".to_string(),
            "--kind".into(),
            kind.into(),
            "--model".into(),
            path_str(&self.path("model")),
            "--corpus".into(),
            path_str(&self.path("data/c.tsv")),
            "--out".into(),
            path_str(&out),
        ];
        args.extend(extra.iter().cloned());
        let output = Command::new(self.path("bin/robust"))
            .args(&args)
            .current_dir(self.path("work"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.path("home"))
            .env("ORT_DYLIB_PATH", self.path("lib/libonnxruntime.so"))
            .output()
            .expect("the installed robust runs");
        assert!(!output.status.success(), "robust {args:?} was refused");
        assert!(!out.exists(), "nothing written under --out");
        stderr(&output)
    }

    fn attack(&self, kind: &str, extra: &[String]) -> PathBuf {
        let out = self.path(&format!("out/{kind}"));
        let mut args = vec![
            "-q".to_string(),
            "--threads".into(),
            "2".into(),
            "attack".into(),
            "--kind".into(),
            kind.into(),
            "--model".into(),
            path_str(&self.path("model")),
            "--corpus".into(),
            path_str(&self.path("data/c.tsv")),
            "--out".into(),
            path_str(&out),
        ];
        args.extend(extra.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.robust(&args);
        assert!(
            out.join("examples.csv").is_file(),
            "{kind} wrote examples.csv"
        );
        out
    }
}

fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    found
}

#[test]
fn the_installed_binary_runs_every_attack_from_an_empty_directory() {
    let install = Install::new();
    let resources = stdout(&install.robust(&["resources", "--csv"]));
    for name in ["names.tsv", "name-frequency.tsv", "sentiment-words.txt"] {
        let line = resources
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} listed:\n{resources}"));
        assert!(line.contains(",built in,"), "{line}");
    }

    install.attack("shuffle", &["--samples".into(), "2".into()]);
    install.attack("negation", &[]);
    let swap = install.attack("entity-swap", &[]);
    let summary = std::fs::read_to_string(swap.join("summary.csv")).unwrap();
    assert!(
        summary.contains("names=corpora/names.tsv"),
        "the compiled-in lexicon, recorded as in the repository:\n{summary}"
    );
    let swapped = std::fs::read_to_string(swap.join("examples.csv")).unwrap();
    assert!(
        swapped.lines().count() > 1,
        "the names were found and swapped:\n{swapped}"
    );
    let mut trigger = small_trigger_flags(&[("--limit", "60"), ("--max-search-examples", "60")]);
    trigger.extend(
        [
            "--search-corpus",
            &path_str(&install.path("data/c.tsv")),
            "--target",
            "negative",
            "--source",
            "positive",
        ]
        .map(String::from),
    );
    // Issue 29: the default exclusion on a sentiment model needs what scripts/setup fetches
    // (five of its eight lexicons, WordNet, the sentence encoder); without them the search is
    // refused before any work, naming what is missing and how to get it.
    let refused = install.attack_refused("trigger", &trigger);
    assert!(
        refused.contains("corpora/opinion/huliu.txt")
            && refused.contains("scripts/setup")
            && refused.contains("--exclude none"),
        "{refused}"
    );
    // `scripts/setup --install-data DIR` puts them in the data directory, where they are found.
    let data = install.path("home/.local/share/robust");
    let setup = Command::new("python3")
        .arg(repo().join("scripts/setup.py"))
        .arg("--install-data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        setup.status.success(),
        "scripts/setup --install-data: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let sources = robust::lexicon::opinion::SOURCES;
    assert_eq!(sources.iter().filter(|s| !s.is_built_in()).count(), 5);
    for source in sources {
        let installed = data.join(format!("opinion/{}.txt", source.name));
        if source.is_built_in() {
            assert!(!installed.exists(), "{} is built in", source.name);
        } else {
            assert_eq!(
                std::fs::read(&installed).unwrap(),
                std::fs::read(repo().join(source.repo_path())).unwrap(),
                "{}",
                source.name
            );
        }
    }
    let mut home_files = files(&install.path("home"));
    home_files.sort();
    let search = install.attack("trigger", &trigger);
    let summary = std::fs::read_to_string(search.join("summary.csv")).unwrap();
    assert!(
        summary.contains("exclude=vader.txt:80a49468d27c:7217 | afinn.txt:")
            && summary.contains("polarity_threshold=0.06"),
        "the compiled-in and data-directory lexicons keep opinion words out:\n{summary}"
    );
    let json = std::fs::read_to_string(search.join("trigger.json")).unwrap();
    assert!(
        json.contains("\"path\": \"corpora/opinion/vader.txt\"")
            && json.contains(&format!("{}", data.join("opinion/huliu.txt").display())),
        "the compiled-in lexicon under its repository path, the others under their own:\n{json}"
    );

    // A suite outside the repository, naming its model and corpus by path.
    let suite = install.path("data/suite.toml");
    std::fs::write(
        &suite,
        format!(
            "name = \"installed\"\nseed = 3\nmodels = [\"{}\"]\ncorpora = [\"{}\"]\n\
             [[attack]]\nname = \"shuffle\"\nkind = \"shuffle\"\nsamples = 2\n\
             [[attack]]\nname = \"names\"\nkind = \"entity-swap\"\n",
            install.path("model").display(),
            install.path("data/c.tsv").display(),
        ),
    )
    .unwrap();
    let report = stdout(&install.robust(&[
        "--threads",
        "2",
        "report",
        "--suite",
        &path_str(&suite),
        "--out",
        &path_str(&install.path("out/suite")),
    ]));
    assert!(report.contains("report.html"), "{report}");
    assert!(
        files(&install.path("out/suite"))
            .iter()
            .any(|f| f.ends_with("report.html")),
        "the suite wrote its report"
    );

    // Only under --out: nothing in the working directory or HOME, nothing beside the inputs.
    assert_eq!(files(&install.path("work")), Vec::<PathBuf>::new());
    // HOME holds only the resources put in its data directory above.
    let mut home = files(&install.path("home"));
    home.sort();
    assert_eq!(home, home_files, "nothing written in HOME");
    let mut data = files(&install.path("data"));
    data.sort();
    assert_eq!(data, [PathBuf::from("c.tsv"), PathBuf::from("suite.toml")]);
    assert_eq!(files(&install.path("bin")), [PathBuf::from("robust")]);
}

#[test]
fn a_copy_in_the_data_directory_or_robust_data_dir_comes_before_the_built_in_one() {
    let install = Install::new();
    let data_dir = install.path("home/.local/share/robust");
    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::write(data_dir.join("sentiment-words.txt"), "# mine\nsplendid\n").unwrap();
    let listed = stdout(&install.robust(&["resources", "--csv"]));
    let line = listed
        .lines()
        .find(|l| l.starts_with("sentiment-words.txt"))
        .unwrap();
    assert!(line.contains(",data directory,"), "{line}");
    assert!(line.contains(&path_str(&data_dir)), "{line}");

    // ROBUST_DATA_DIR before the data directory.
    let env_dir = install.path("data/resources");
    std::fs::create_dir(&env_dir).unwrap();
    std::fs::write(env_dir.join("sentiment-words.txt"), "dreadful\n").unwrap();
    let out = Command::new(install.path("bin/robust"))
        .args(["resources", "--csv"])
        .current_dir(install.path("work"))
        .env_clear()
        .env("HOME", install.path("home"))
        .env("ROBUST_DATA_DIR", &env_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = stdout(&out);
    let line = listed
        .lines()
        .find(|l| l.starts_with("sentiment-words.txt"))
        .unwrap();
    assert!(line.contains(",ROBUST_DATA_DIR,"), "{line}");
    // The others still come built in.
    assert!(
        listed
            .lines()
            .find(|l| l.starts_with("names.tsv"))
            .unwrap()
            .contains(",built in,"),
        "{listed}"
    );
}

#[test]
fn a_missing_runtime_library_names_the_one_command_that_installs_it() {
    let install = Install::new();
    let out = Command::new(install.path("bin/robust"))
        .args(["predict", "--model", &path_str(&install.path("model"))])
        .current_dir(install.path("work"))
        .env_clear()
        .env("PATH", "/nonexistent")
        .env("HOME", install.path("home"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("pip install onnxruntime"),
        "{}",
        stderr(&out)
    );
}
