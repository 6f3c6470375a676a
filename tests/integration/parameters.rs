//! Issue 28, point 5: one source for every name. For every kind, the parameters a run records
//! (the `parameters` column of `summary.csv`, and `trigger.json`'s, which are the same map)
//! are given back to `robust attack` as flags, and must make the same attack: each value
//! parses as its flag's value, and the parameters recorded again are the same, byte for byte.
//! This caught `mode=keepends` for `--mode keep-ends`, `replace=first` for `--replace a`, and
//! `init=the*`, which `--init` reads as one word.

use std::collections::BTreeMap;

use clap::{Args, FromArgMatches};
use robust::attack::engine;
use robust::attack::kind::Registry;
use robust::attack::spec::AttackSpec;

use crate::util::{default_corpus, default_model_dir, repo};

/// Parameters that record what a run found or measured, or describe an input, rather than a
/// setting: each with why it has no flag of its own.
const RECORDS: &[(&str, &str)] = &[
    (
        "given",
        "says that --trigger was given rather than searched",
    ),
    (
        "exclude",
        "describes each exclusion list (file, sha256 prefix, words); the files are named in provenance.json",
    ),
    ("max_len", "the global --max-len, not an attack key"),
    ("truncated", "a count of inputs cut, measured"),
    (
        "trigger",
        "for a search, the trigger it found (an evaluation's is its --trigger, given back below)",
    ),
    ("search_examples", "rows the search used, measured"),
    ("random_triggers", "the random baselines drawn"),
    (
        "stop_words",
        "describes the stop-word list (file, sha256 prefix, words), like exclude; given back below",
    ),
    (
        "wordnet_sha256",
        "the digest of the WordNet files read, measured",
    ),
    (
        "sentence_encoder_sha256",
        "the digest of the sentence encoder's files, measured",
    ),
    (
        "mlm_sha256",
        "the digest of the fill-mask model's files, measured",
    ),
];

fn attack_command() -> clap::Command {
    AttackSpec::augment_args(clap::Command::new("attack").no_binary_name(true))
}

fn parse_flags(flags: &[String]) -> AttackSpec {
    let matches = attack_command()
        .try_get_matches_from(flags)
        .unwrap_or_else(|e| panic!("{flags:?}: {e}"));
    AttackSpec::from_arg_matches(&matches).unwrap()
}

/// The parameters `flags` make, as the engine records them (the plan adds the exclusion lists
/// and the pair segment).
fn recorded(flags: &[String]) -> BTreeMap<String, String> {
    let spec = parse_flags(flags);
    engine::plan(&spec, "flags")
        .unwrap_or_else(|e| panic!("{flags:?}: {e:#}"))
        .attack
        .parameters
}

fn flags(words: &[&str]) -> Vec<String> {
    let model = default_model_dir();
    let corpus = default_corpus();
    let mut out: Vec<String> = vec![
        "--model".into(),
        model.display().to_string(),
        "--corpus".into(),
        corpus.display().to_string(),
    ];
    out.extend(words.iter().map(|w| w.to_string()));
    out
}

#[test]
fn issue28_every_recorded_parameter_parses_back_as_its_flag() {
    let search = repo().join("corpora/rt-snippets-search.tsv");
    let search = search.display().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["--kind", "shuffle"],
        vec!["--kind", "shuffle", "--mode", "keep-ends", "--samples", "3"],
        vec![
            "--kind", "shuffle", "--mode", "local", "--window", "4", "--limit", "9",
        ],
        vec!["--kind", "negation"],
        vec!["--kind", "negation", "--negation", "insert"],
        vec!["--kind", "entity-swap"],
        vec![
            "--kind",
            "entity-swap",
            "--swap",
            "same-gender",
            "--samples",
            "2",
        ],
        vec!["--kind", "trigger", "--search-corpus", &search],
        vec![
            "--kind",
            "trigger",
            "--search-corpus",
            &search,
            "--exclude-forms",
            "false",
            "--exclude-propagation",
            "2",
            "--polarity-threshold",
            "none",
        ],
        vec![
            "--kind",
            "trigger",
            "--search-corpus",
            &search,
            "--target",
            "positive",
            "--length",
            "2",
            "--init",
            "a film",
            "--position",
            "suffix",
            "--estimator",
            "shared",
            "--shrinkage",
            "none",
            "--proposals",
            "random",
            "--allow-subwords",
            "--budget-seconds",
            "30",
            "--exclude",
            "none",
        ],
        vec!["--kind", "trigger", "--trigger", "zoning tapping fiennes"],
        vec!["--kind", "typo"],
        vec![
            "--kind",
            "typo",
            "--preset",
            "strict",
            "--edits",
            "swap,delete",
            "--confusables",
            "--min-similarity",
            "none",
            "--beam",
            "2",
            "--stop-words",
            "none",
        ],
        vec![
            "--kind",
            "synonym",
            "--synonym-pos",
            "any",
            "--ranking",
            "delete",
        ],
        vec![
            "--kind",
            "synonym",
            "--preset",
            "strict",
            "--target",
            "negative",
            "--max-words-changed",
            "0.5",
            "--example-budget",
            "300",
        ],
        vec![
            "--kind",
            "mlm-swap",
            "--candidates",
            "20",
            "--allow-antonyms",
        ],
        vec![
            "--kind",
            "trigger",
            "--trigger",
            "a b",
            "--position",
            "suffix",
            "--random-baselines",
            "2",
        ],
    ];
    let keys = attack_command();
    let mut checked = 0;
    for case in cases {
        let first = recorded(&flags(&case));
        // Every recorded setting as a flag, on top of the kind, model and corpus only.
        let mut again = flags(&["--kind", case[1]]);
        for (key, value) in &first {
            if RECORDS.iter().any(|(k, _)| k == key) {
                continue;
            }
            let arg = keys
                .get_arguments()
                .find(|a| a.get_id() == key.as_str())
                .unwrap_or_else(|| {
                    panic!("{case:?}: `{key}` is recorded but is neither a flag nor in RECORDS")
                });
            let long = arg.get_long().expect("every recipe key is a long flag");
            if ["model", "corpus", "kind"].contains(&long) {
                continue;
            }
            again.push(format!("--{long}"));
            again.push(value.clone());
            checked += 1;
        }
        // A given trigger is recorded with the run's results (`trigger=…`, `given=true`):
        // it goes back as --trigger, as a reader of the summary would give it.
        if first.contains_key("given") {
            let i = case.iter().position(|w| *w == "--trigger").expect("given");
            again.push("--trigger".into());
            again.push(case[i + 1].to_string());
        }
        // `stop_words` likewise.
        if first.contains_key("stop_words")
            && let Some(i) = case.iter().position(|w| *w == "--stop-words")
        {
            again.push("--stop-words".into());
            again.push(case[i + 1].to_string());
        }
        // `exclude` is a description; the case's own list goes back as it was given.
        if first.contains_key("exclude")
            && let Some(i) = case.iter().position(|w| *w == "--exclude")
        {
            again.push("--exclude".into());
            again.push(case[i + 1].to_string());
        }
        let second = recorded(&again);
        assert_eq!(
            first, second,
            "{case:?}: the recorded parameters, given back as flags ({again:?}), record otherwise"
        );
    }
    assert!(checked > 40, "{checked} parameters given back");
}

/// The registry is the one list of kinds: `--kind`'s values are its names, and each kind's
/// keys are recipe keys.
#[test]
fn issue28_kind_values_and_keys_come_from_the_registry() {
    let registry = Registry::builtin();
    // The binary's own help: every kind with its line of help, and a misspelt kind refused
    // with the list.
    let help = crate::util::stdout(&crate::util::robust(&["attack", "--help"]));
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for attack in registry.attacks() {
        assert!(
            help.contains(&format!("- {}: {}", attack.name(), attack.about())),
            "{}: {help}",
            attack.name()
        );
    }
    let wrong = crate::util::robust(&["attack", "--kind", "shufle"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        crate::util::stderr(&wrong).contains(&registry.names().join(", ")),
        "{}",
        crate::util::stderr(&wrong)
    );
    for attack in registry.attacks() {
        for key in attack.keys() {
            assert!(AttackSpec::KEYS.contains(key), "{}: {key}", attack.name());
        }
        assert!(registry.reporting(attack.name()).is_some());
    }
    // Cloze rows are reported as kind `cloze`: judged as the negation probe they are.
    assert_eq!(
        registry.expectation("cloze"),
        Some(robust::score::Expectation::FlipFromGold)
    );
    assert_eq!(
        registry.headline("cloze"),
        robust::score::metric::Metric::Top1Unchanged
    );
    assert_eq!(registry.expectation("no-such-kind"), None);
}
