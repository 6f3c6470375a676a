//! #32: docs that cannot rot. Every command shown in a ```sh block of the README and `docs/` is
//! checked against the real CLI: its subcommand exists, every `--flag` it names is one that
//! `robust <subcommand> --help` lists, every repository file it names exists (and every recipe
//! parses, every suite passes `--check`), and every script it runs exists and knows its flags.
//! The guide's recipe-key table is generated from the same definitions as `robust attack
//! --help` (`AttackSpec`'s clap arguments); `ROBUST_BLESS=1` rewrites it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::Args;
use robust::attack::kind::Registry;
use robust::attack::spec::{AttackSpec, GENERAL_KEYS, TRIGGER_SEARCH_KEYS};

use crate::util::{repo, robust, shared_data, stderr, stdout};

/// The pages checked: the README and every page under `docs/` (CHANGELOG.md is history: its
/// commands ran once, as written then).
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![repo().join("README.md")];
    let mut stack = vec![repo().join("docs")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                pages.push(path);
            }
        }
    }
    pages.sort();
    pages
}

/// A command from a page: where it is, and its words.
struct Shown {
    page: String,
    line: usize,
    words: Vec<String>,
}

impl Shown {
    fn at(&self) -> String {
        format!("{}:{}: {}", self.page, self.line, self.words.join(" "))
    }
}

/// The commands of every ```sh block, comments cut, split into words as a shell would
/// (double and single quotes kept together).
fn shown_commands() -> Vec<Shown> {
    let mut shown = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let name = page.strip_prefix(repo()).unwrap().display().to_string();
        let mut in_sh = false;
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.starts_with("```") {
                in_sh = !in_sh && trimmed == "```sh";
                continue;
            }
            if !in_sh || trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let words = shell_words(trimmed);
            assert!(
                !words.is_empty() && !trimmed.ends_with('\\'),
                "{name}:{}: one command a line",
                i + 1
            );
            shown.push(Shown {
                page: name.clone(),
                line: i + 1,
                words,
            });
        }
    }
    shown
}

fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut started = false;
    for c in line.chars() {
        match (quote, c) {
            (None, '#') if !started => break,
            (None, '"' | '\'') => {
                quote = Some(c);
                started = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            (_, c) => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

/// Flags `robust <path> --help` lists.
fn help_flags(path: &[&str]) -> BTreeSet<String> {
    let mut args = path.to_vec();
    args.push("--help");
    let r = robust(&args);
    assert!(r.status.success(), "robust {args:?}: {}", stderr(&r));
    stdout(&r)
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.split(['=', '<']).next().unwrap_or(w).to_string())
        .collect()
}

/// A word that names a file of the repository (or of `../shared/`) as input.
fn repo_path(word: &str) -> Option<&str> {
    const ROOTS: [&str; 8] = [
        "models/",
        "attacks/",
        "corpora/",
        "scripts/",
        "benches/",
        "docs/",
        "examples/",
        "../shared/",
    ];
    ROOTS
        .iter()
        .any(|r| word.starts_with(r))
        .then_some(word)
        .filter(|w| !w.contains('*'))
}

#[test]
fn every_command_in_the_readme_and_docs_exists_with_its_flags_and_files() {
    let shown = shown_commands();
    assert!(
        shown.len() > 50,
        "the pages show commands ({})",
        shown.len()
    );
    let shared = shared_data().ok();
    let subcommands = ["predict", "eval", "attack", "report", "resources", "replay"];
    let mut helps: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    let mut suites = BTreeSet::new();
    let mut problems = Vec::new();
    for cmd in &shown {
        let program = cmd.words[0].as_str();
        // Values that are outputs (written by the command) need not exist.
        let outputs: BTreeSet<usize> = cmd
            .words
            .iter()
            .enumerate()
            .filter(|(_, w)| *w == "--out")
            .map(|(i, _)| i + 1)
            .collect();
        for (i, word) in cmd.words.iter().enumerate() {
            let Some(path) = repo_path(word) else {
                continue;
            };
            if outputs.contains(&i) {
                continue;
            }
            if path.starts_with("../shared/") && shared.is_none() {
                continue;
            }
            if !repo().join(path).exists() {
                problems.push(format!("{}: no file {path}", cmd.at()));
            }
        }
        match program {
            "robust" => {
                let mut path: Vec<String> = Vec::new();
                if let Some(sub) = cmd.words.iter().skip(1).find(|w| !w.starts_with('-')) {
                    if !subcommands.contains(&sub.as_str()) {
                        problems.push(format!("{}: no subcommand {sub}", cmd.at()));
                        continue;
                    }
                    path.push(sub.clone());
                    let next = cmd.words.iter().skip_while(|w| *w != sub).nth(1);
                    if sub == "report" && next.is_some_and(|w| w == "merge") {
                        path.push("merge".into());
                    }
                }
                let known = helps.entry(path.clone()).or_insert_with(|| {
                    help_flags(&path.iter().map(String::as_str).collect::<Vec<_>>())
                });
                for flag in cmd.words.iter().filter(|w| w.starts_with("--")) {
                    let flag = flag.split('=').next().unwrap_or(flag);
                    if !known.contains(flag) {
                        problems.push(format!("{}: robust {path:?} has no {flag}", cmd.at()));
                    }
                }
                for (i, w) in cmd.words.iter().enumerate() {
                    if w == "--recipe" {
                        let recipe = repo().join(&cmd.words[i + 1]);
                        if let Err(e) = AttackSpec::from_file(&recipe) {
                            problems.push(format!("{}: {e}", cmd.at()));
                        }
                    }
                    if w == "--suite" {
                        suites.insert(cmd.words[i + 1].clone());
                    }
                }
            }
            "./scripts/demo" | "./scripts/test" | "./scripts/setup" => {
                if !repo().join(program).is_file() {
                    problems.push(format!("{}: no script {program}", cmd.at()));
                }
            }
            "cargo" => {
                let targets = [
                    ("--example", "examples"),
                    ("--bench", "benches"),
                    ("--test", "tests"),
                ];
                for (flag, dir) in targets {
                    if let Some(i) = cmd.words.iter().position(|w| w == flag) {
                        let name = &cmd.words[i + 1];
                        let found = repo().join(dir).join(format!("{name}.rs")).is_file()
                            || repo().join(dir).join(name).is_dir();
                        if !found {
                            problems.push(format!("{}: no {flag} {name}", cmd.at()));
                        }
                    }
                }
            }
            script if script.starts_with("benches/") || script == "python3" => {
                // A bench script's flags are those its folder's sources parse.
                let file = if script == "python3" {
                    cmd.words[1].as_str()
                } else {
                    script
                };
                let Some(dir) = Path::new(file).parent().map(|d| repo().join(d)) else {
                    continue;
                };
                let sources: String = std::fs::read_dir(&dir)
                    .map(|entries| {
                        entries
                            .flatten()
                            .filter(|e| e.path().is_file())
                            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                            .collect()
                    })
                    .unwrap_or_default();
                // A quoted value that holds flags of its own (robust's) is a value.
                let flags = cmd
                    .words
                    .iter()
                    .filter(|w| w.starts_with("--") && !w.contains(' '));
                for flag in flags {
                    if !sources.contains(flag.as_str()) {
                        problems.push(format!("{}: {file} knows no {flag}", cmd.at()));
                    }
                }
            }
            other => problems.push(format!("{}: unknown program {other}", cmd.at())),
        }
    }
    for suite in &suites {
        let r = robust(&["report", "--suite", suite, "--check"]);
        if !r.status.success() {
            problems.push(format!(
                "robust report --suite {suite} --check: {}",
                stderr(&r)
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "commands in the docs that no longer work:\n{}",
        problems.join("\n")
    );
}

/// The recipe-key table, from `AttackSpec`'s clap arguments: the key, its flag, the kinds
/// that read it and the help `robust attack --help` prints.
fn recipe_key_table() -> String {
    // `--kind`'s values as the binary sets them, from the registry.
    let cmd = AttackSpec::augment_args(clap::Command::new("attack")).mut_arg("kind", |a| {
        a.value_parser(robust::attack::builtin::kind_values())
    });
    let registry = Registry::builtin();
    let mut table = String::from("| key | flag | read by | meaning |\n| --- | --- | --- | --- |\n");
    for key in AttackSpec::KEYS {
        let arg = cmd.get_arguments().find(|a| a.get_id() == *key);
        let flag = match arg.and_then(|a| a.get_long()) {
            Some(long) => format!("`--{long}`"),
            None if *key == "seed" => "`--seed` (global)".into(),
            None => "(recipes and suites only)".into(),
        };
        let readers = if GENERAL_KEYS.contains(key) {
            "every kind".to_string()
        } else {
            // A trigger search's own keys say so; a key a search shares with other kinds
            // (the WordNet and sentence-encoder folders) names them all.
            let kinds: Vec<&str> = registry
                .attacks()
                .filter(|k| k.keys().contains(key))
                .map(|k| {
                    if k.name() == "trigger" && TRIGGER_SEARCH_KEYS.contains(key) {
                        "trigger (search)"
                    } else {
                        k.name()
                    }
                })
                .collect();
            if kinds.is_empty() {
                "plug-in kinds".to_string()
            } else {
                kinds.join(", ")
            }
        };
        let help = arg
            .and_then(|a| a.get_long_help().or(a.get_help()))
            .map(|h| h.to_string())
            .unwrap_or_else(|| match *key {
                "seed" => "seed for every random choice [default: the recipe's, else 0]".into(),
                _ => "a plug-in kind's own settings, a table it reads into its typed settings \
                      (CONTRIBUTING.md); the built-in kinds read the keys above"
                    .into(),
            });
        let mut meaning = help.split_whitespace().collect::<Vec<_>>().join(" ");
        let values: Vec<String> = arg
            .map(|a| {
                a.get_possible_values()
                    .iter()
                    .filter(|v| !v.is_hide_set())
                    .map(|v| format!("`{}`", v.get_name()))
                    .collect()
            })
            .unwrap_or_default();
        // Enum keys list their values; a bool's true/false go without saying.
        if !values.is_empty() && values != ["`true`", "`false`"] {
            meaning.push_str(&format!("; values: {}", values.join(", ")));
        }
        table.push_str(&format!(
            "| `{key}` | {flag} | {readers} | {} |\n",
            meaning.replace('|', "\\|")
        ));
    }
    table
}

#[test]
fn the_guides_recipe_key_table_is_the_one_attack_help_is_made_from() {
    const BEGIN: &str = "<!-- recipe-keys:begin -->\n";
    const END: &str = "<!-- recipe-keys:end -->";
    let path = repo().join("docs/guide.md");
    let guide = std::fs::read_to_string(&path).unwrap();
    let (Some(a), Some(b)) = (guide.find(BEGIN), guide.find(END)) else {
        panic!("docs/guide.md has no recipe-keys markers");
    };
    let written = &guide[a + BEGIN.len()..b];
    let table = recipe_key_table();
    if std::env::var_os("ROBUST_BLESS").is_some() {
        let updated = format!("{}{table}{}", &guide[..a + BEGIN.len()], &guide[b..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(
        written, table,
        "docs/guide.md's recipe-key table differs from AttackSpec's definitions; \
         ROBUST_BLESS=1 cargo test --release --test integration docs rewrites it"
    );
    // Every key appears, once.
    for key in AttackSpec::KEYS {
        assert_eq!(written.matches(&format!("| `{key}` |")).count(), 1, "{key}");
    }
}
