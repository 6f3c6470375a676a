//! Issue 29: a trigger search's exclusion holds against a lexicon it was not built from. On
//! the default model and corpus, with one opinion lexicon (Hu & Liu's) held out and the
//! exclusion built from the other seven, the held-out lexicon lists (in any inflection) under
//! 5% of the words the search is offered and none of the trigger's; without exclusion the same
//! search is offered them freely. `benches/trigger_leakage.py` measures the same on SST-2 for
//! every lexicon in turn.

use std::path::Path;

use crate::util::{repo, robust, stderr};

const HELD_OUT: &str = "huliu";
const OTHERS: [&str; 7] = [
    "vader",
    "afinn",
    "pattern",
    "mpqa",
    "gi",
    "nrc",
    "sentiwordnet",
];

/// A short search on the default model (positive → negative) with `extra` flags; its
/// `trigger.json`.
fn search(dir: &Path, extra: &[String]) -> serde_json::Value {
    let mut args: Vec<String> = [
        "-q",
        "attack",
        "--kind",
        "trigger",
        "--model",
        "models/sst2-minilm",
        "--corpus",
        "corpora/rt-snippets-eval.tsv",
        "--search-corpus",
        "corpora/rt-snippets-search.tsv",
        "--target",
        "negative",
        "--source",
        "positive",
        "--seed",
        "13",
        "--limit",
        "100",
        "--budget-queries",
        "4000",
        "--directions",
        "8",
        "--search-batch",
        "16",
        "--candidates",
        "20",
        "--max-search-examples",
        "300",
        "--random-baselines",
        "1",
        "--out",
    ]
    .map(String::from)
    .to_vec();
    args.push(dir.to_str().unwrap().to_string());
    args.extend(extra.iter().cloned());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = robust(&refs);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&std::fs::read(dir.join("trigger.json")).unwrap()).unwrap()
}

/// (words listed by the held-out lexicon, words) among the shortlist.
fn held_out_share(json: &serde_json::Value) -> (usize, usize) {
    let shortlist = json["explanation"]["shortlist"].as_array().unwrap();
    let held = shortlist
        .iter()
        .filter(|w| {
            w["lexicons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l == HELD_OUT)
        })
        .count();
    (held, shortlist.len())
}

#[test]
fn issue29_a_held_out_lexicon_barely_reaches_the_search() {
    assert!(
        repo()
            .join(format!("corpora/opinion/{HELD_OUT}.txt"))
            .is_file(),
        "run ./scripts/setup first (it fetches the opinion lexicons)"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut flags = Vec::new();
    for name in OTHERS {
        flags.push("--exclude".to_string());
        flags.push(format!("corpora/opinion/{name}.txt"));
    }
    let held_out = search(&dir.path().join("held-out"), &flags);
    let names: Vec<&str> = held_out["explanation"]["lexicons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&HELD_OUT),
        "the explanation consults it: {names:?}"
    );
    let (k, n) = held_out_share(&held_out);
    assert!(n >= 20, "the search was offered words: {n}");
    assert!(
        (k as f64) < 0.05 * n as f64,
        "{k} of {n} shortlisted words are {HELD_OUT}'s"
    );
    for w in held_out["explanation"]["words"].as_array().unwrap() {
        assert_eq!(w["lexicons"], serde_json::json!([]), "trigger word {w}");
    }

    let open = search(
        &dir.path().join("none"),
        &["--exclude".into(), "none".into()],
    );
    let (k, n) = held_out_share(&open);
    assert!(
        k as f64 >= 0.1 * n as f64,
        "without exclusion the lexicon's words are offered: {k} of {n}"
    );
    assert!(
        open.get("exclusion").is_none_or(|e| e.is_null()),
        "no exclusion recorded for --exclude none"
    );
}

/// Bad exclusion settings are refused before any work, naming the setting and what to do.
#[test]
fn issue29_bad_exclusion_settings_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--polarity-threshold=-0.1"], "polarity_threshold"),
        (&["--polarity-threshold", "often"], "not a number or `none`"),
        (
            &["--sentence-encoder", "models/nowhere"],
            "--polarity-threshold none",
        ),
        (&["--wordnet", "models/nowhere"], "models/nowhere"),
    ];
    for (extra, expected) in cases {
        let out_dir = dir.path().join("out");
        let mut args = vec![
            "attack",
            "--kind",
            "trigger",
            "--model",
            "models/sst2-minilm",
            "--corpus",
            "corpora/rt-snippets-eval.tsv",
            "--search-corpus",
            "corpora/rt-snippets-search.tsv",
            "--out",
            out_dir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = robust(&args);
        assert!(!out.status.success(), "{extra:?} refused");
        assert!(
            stderr(&out).contains(expected),
            "{extra:?}: {}",
            stderr(&out)
        );
        assert!(!out_dir.exists(), "{extra:?}: nothing written");
    }
}
