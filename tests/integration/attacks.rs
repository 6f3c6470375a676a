//! Every attack end to end on the real default model and SST-2 dev (issues #3 and #4): it runs
//! from the CLI, writes both CSVs, and the same seed gives byte-identical files.

use std::path::Path;

use crate::util::*;

fn run_attack(args: &[&str], out: &Path) -> String {
    let model = default_model_dir();
    let mut all = vec![
        "attack",
        "--model",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ];
    all.extend_from_slice(args);
    let result = robust(&all);
    assert!(
        result.status.success(),
        "robust {all:?} failed:\n{}",
        stderr(&result)
    );
    stdout(&result)
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Run twice with one seed and once with another; the first two must match byte for byte.
fn check_reproducible(
    test: &str,
    args: &[&str],
    files: &[&str],
) -> Option<(tempfile::TempDir, String)> {
    let dev = shared_file(test, "sst2/dev.tsv")?;
    let mut with_corpus = vec!["--corpus", dev.to_str().unwrap()];
    with_corpus.extend_from_slice(args);
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let table = run_attack(&[&with_corpus[..], &["--seed", "7"]].concat(), a.path());
    run_attack(&[&with_corpus[..], &["--seed", "7"]].concat(), b.path());
    for f in files {
        assert_eq!(
            read(a.path(), f),
            read(b.path(), f),
            "{f} differs between two runs with seed 7"
        );
    }
    Some((a, table))
}

fn summary_value(dir: &Path, group: &str, metric: &str) -> (u64, u64) {
    let text = String::from_utf8(read(dir, "summary.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    for row in rdr.records() {
        let row = row.unwrap();
        if &row[2] == group && &row[3] == metric {
            return (row[5].parse().unwrap(), row[6].parse().unwrap());
        }
    }
    panic!("no {group}/{metric} in summary.csv:\n{text}");
}

#[test]
fn shuffle_end_to_end() {
    let Some((dir, table)) = check_reproducible(
        "shuffle_end_to_end",
        &["--kind", "shuffle", "--samples", "3", "--limit", "150"],
        &["examples.csv", "summary.csv"],
    ) else {
        return;
    };
    let (k, n) = summary_value(dir.path(), "all", "flip_rate");
    assert_eq!(n, 450, "3 samples x 150 sentences, none skipped");
    assert!(k > 0 && k < n, "some but not all shuffles flip: {k}/{n}");
    assert!(table.contains("flip rate"), "{table}");
    let examples = String::from_utf8(read(dir.path(), "examples.csv")).unwrap();
    assert_eq!(examples.lines().count(), 451);
}

#[test]
fn negation_end_to_end() {
    let Some((dir, _)) = check_reproducible(
        "negation_end_to_end",
        &["--kind", "negation", "--limit", "200"],
        &["examples.csv", "summary.csv"],
    ) else {
        return;
    };
    let (k, n) = summary_value(dir.path(), "all", "expected_direction_rate");
    assert!(n > 50, "most sentences have a negation site: {n}");
    // A sentiment model should follow many negations; a model that ignored all would be broken.
    assert!(k > n / 5, "expected-direction flips {k}/{n}");
    let text = String::from_utf8(read(dir.path(), "summary.csv")).unwrap();
    assert!(
        text.contains("skipped[no-negation-site]"),
        "skips are counted"
    );
}

#[test]
fn entity_swap_end_to_end() {
    let Some((dir, _)) = check_reproducible(
        "entity_swap_end_to_end",
        &["--kind", "entity-swap", "--samples", "3"],
        &["examples.csv", "summary.csv"],
    ) else {
        return;
    };
    let (_, n) = summary_value(dir.path(), "all", "flip_rate");
    assert!(n >= 100, "dev has sentences with names: {n} swaps");
    let (_, n_female) = summary_value(dir.path(), "female->male", "flip_rate");
    assert!(n_female > 0, "per-group breakdown present");
}

/// Issue 14, point 6: an untargeted search (no --target, no --source) runs end to end on the
/// default model and corpus: it pushes every example away from its own gold label, so its
/// loss is the gold label's log-probability (never above 0, where a targeted loss is a
/// cross-entropy, never below), it evaluates both classes, and trigger.json says no target.
#[test]
fn an_untargeted_trigger_search_runs_end_to_end() {
    let out = tempfile::tempdir().unwrap();
    let search = repo().join("corpora/rt-snippets-search.tsv");
    let eval = repo().join("corpora/rt-snippets-eval.tsv");
    let flags = small_trigger_flags(&[("--limit", "80"), ("--max-search-examples", "60")]);
    let mut args = vec![
        "--kind",
        "trigger",
        "--corpus",
        eval.to_str().unwrap(),
        "--search-corpus",
        search.to_str().unwrap(),
    ];
    args.extend(flags.iter().map(String::as_str));
    run_attack(&args, out.path());
    let json: serde_json::Value =
        serde_json::from_slice(&read(out.path(), "trigger.json")).unwrap();
    assert!(json["target"].is_null(), "untargeted: {}", json["target"]);
    assert_eq!(
        json["proposals"], "hotflip",
        "the default model has an embedding graph"
    );
    let curve = String::from_utf8(read(out.path(), "loss_curve.csv")).unwrap();
    let losses: Vec<f64> = curve
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(losses.len(), 2, "two iterations:\n{curve}");
    assert!(
        losses.iter().all(|&l| l <= 0.0),
        "an untargeted loss is a log-probability:\n{curve}"
    );
    let (_, negative) = summary_value(out.path(), "all", "flip_rate[negative]");
    let (_, positive) = summary_value(out.path(), "all", "flip_rate[positive]");
    assert!(
        negative > 0 && positive > 0,
        "both classes attacked: {negative} negative, {positive} positive"
    );
}

/// A small trigger search: runs, writes the loss curve, and is reproducible under a seed.
#[test]
fn trigger_end_to_end() {
    let Some(train) = shared_file("trigger_end_to_end", "sst2/train.tsv") else {
        return;
    };
    let flags = small_trigger_flags(&[
        ("--limit", "120"),
        ("--directions", "4"),
        ("--candidates", "6"),
        ("--max-search-examples", "200"),
        ("--random-baselines", "2"),
    ]);
    let mut args = vec![
        "--kind",
        "trigger",
        "--search-corpus",
        train.to_str().unwrap(),
        "--target",
        "negative",
        "--source",
        "positive",
    ];
    args.extend(flags.iter().map(String::as_str));
    let Some((dir, table)) = check_reproducible(
        "trigger_end_to_end",
        &args,
        &["examples.csv", "summary.csv", "loss_curve.csv"],
    ) else {
        return;
    };
    let curve = String::from_utf8(read(dir.path(), "loss_curve.csv")).unwrap();
    assert!(
        curve.starts_with("iteration,trigger,batch_loss,validation_loss,queries\n"),
        "{curve}"
    );
    assert!(curve.lines().count() >= 2);
    let (_, n) = summary_value(dir.path(), "all", "flip_rate");
    assert!(
        n > 30,
        "evaluated on the positive dev examples among the first 120: {n}"
    );
    assert!(table.contains("random triggers"), "{table}");
    let json: serde_json::Value =
        serde_json::from_slice(&read(dir.path(), "trigger.json")).unwrap();
    let tokens = json["trigger"]["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 3);
    assert!(
        tokens.iter().all(|t| !t.as_str().unwrap().starts_with('[')),
        "no special tokens"
    );
    // Issue 14: on a sentiment model the search keeps sentiment words out by default; issue
    // 29: from eight opinion lexicons, in every inflection, with WordNet's neighbours and a
    // polarity filter, and each trigger word is explained.
    let summary = String::from_utf8(read(dir.path(), "summary.csv")).unwrap();
    for part in [
        "exclude=vader.txt:",
        "| sentiwordnet.txt:",
        "exclude_forms=true",
        "exclude_propagation=1",
        "polarity_threshold=0.06",
    ] {
        assert!(summary.contains(part), "{part} in {summary}");
    }
    let lists = json["exclude"].as_array().unwrap();
    assert_eq!(lists.len(), 8);
    assert_eq!(lists[0]["path"], "corpora/opinion/vader.txt");
    let exclusion = &json["exclusion"];
    for stage in ["listed", "forms", "propagation", "polarity"] {
        assert!(
            exclusion[stage].as_u64().unwrap() > 0,
            "{stage}: {exclusion}"
        );
    }
    let explained = json["explanation"]["words"].as_array().unwrap();
    assert_eq!(explained.len(), 3);
    for w in explained {
        assert_eq!(w["lexicons"], serde_json::json!([]), "{w}");
        let prediction = &w["prediction"];
        assert!(["positive", "negative"].contains(&prediction["label"].as_str().unwrap()));
    }
    let words = std::fs::read_to_string(repo().join("corpora/sentiment-words.txt")).unwrap();
    let words: std::collections::HashSet<&str> = words.lines().collect();
    for t in tokens {
        let t = t.as_str().unwrap().to_lowercase();
        assert!(!words.contains(t.as_str()), "{t} is a sentiment word");
    }
}

#[test]
fn recipe_flags_override_and_unknown_keys_fail() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("r.toml");
    std::fs::write(&recipe, "kind = \"shuffle\"\nsampels = 3\n").unwrap();
    let out = robust(&["attack", "--recipe", recipe.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown field `sampels`"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("r.toml"), "{}", stderr(&out));
}

/// Issue 14: a trigger search killed (-9) mid-way goes on with `--resume` from its last
/// checkpoint and ends byte-identical to a search never stopped: results, loss curve, and the
/// gradient trace (timings aside), so every piece of state is restored, the previous estimate
/// the default shrinkage leans on included. `--resume` refuses another search's checkpoint, and a
/// finished search leaves no checkpoint behind.
#[test]
fn a_killed_trigger_search_resumes_byte_identical() {
    use std::time::{Duration, Instant};
    let work = tempfile::tempdir().unwrap();
    let recipe = repo().join("attacks/trigger-default.toml");
    let args = |out: &Path, trace: &Path| -> Vec<String> {
        let mut args = [
            "attack",
            "--recipe",
            recipe.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--gradient-trace",
            trace.to_str().unwrap(),
            "--budget-queries",
            "4000",
            "-q",
        ]
        .map(String::from)
        .to_vec();
        // Long enough to be killed mid-way: many iterations, the recipe's beam of 2.
        args.extend(small_trigger_flags(&[
            ("--iterations", "12"),
            ("--patience", "12"),
            ("--directions", "4"),
            ("--candidates", "6"),
            ("--beam", "2"),
            ("--max-search-examples", "200"),
            ("--limit", "100"),
        ]));
        args
    };
    let run = |args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        robust_in(&repo(), &args, None)
    };
    let (a, trace_a) = (work.path().join("a"), work.path().join("a.jsonl"));
    let whole = run(&args(&a, &trace_a));
    assert!(whole.status.success(), "{}", stderr(&whole));
    assert!(
        !a.join(".trigger-search").exists(),
        "a finished search leaves no checkpoint"
    );
    let curve = String::from_utf8(read(&a, "loss_curve.csv")).unwrap();
    assert!(curve.lines().count() > 5, "several iterations:\n{curve}");

    let (b, trace_b) = (work.path().join("b"), work.path().join("b.jsonl"));
    let b_args = args(&b, &trace_b);
    let mut child = {
        let a: Vec<&str> = b_args.iter().map(String::as_str).collect();
        robust_spawn(&repo(), &a)
    };
    let state = b.join(".trigger-search/state.json");
    let started = Instant::now();
    loop {
        let iteration = std::fs::read(&state)
            .ok()
            .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
            .and_then(|v| v["iteration"].as_u64());
        if iteration.is_some_and(|i| i >= 3) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no checkpoint of iteration 3"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    assert!(!b.join("examples.csv").exists(), "killed before the end");

    // Another search (another seed) may not take over this checkpoint.
    let mut other = b_args.clone();
    other.extend(["--resume", "--seed", "14"].map(String::from));
    let refused = run(&other);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("written by a different search"),
        "{}",
        stderr(&refused)
    );
    let mut resume = b_args.clone();
    resume.push("--resume".into());
    let resumed = run(&resume);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    for f in ["examples.csv", "summary.csv", "loss_curve.csv"] {
        assert_eq!(read(&b, f), read(&a, f), "{f} after --resume");
    }
    let trigger = |dir: &Path| {
        let mut v: serde_json::Value = serde_json::from_slice(&read(dir, "trigger.json")).unwrap();
        let t = &mut v["trigger"];
        t["seconds"] = 0.into();
        for p in t["curve"].as_array_mut().unwrap() {
            p["seconds"] = 0.into();
        }
        v["wall_seconds"] = 0.into();
        v
    };
    assert_eq!(trigger(&b), trigger(&a), "trigger.json but for timings");
    let lines = |path: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                if let Some(o) = v.as_object_mut() {
                    o.remove("seconds");
                }
                v
            })
            .collect()
    };
    let (ta, tb) = (lines(&trace_a), lines(&trace_b));
    assert_eq!(ta.first().unwrap()["type"], "setup");
    assert!(ta.iter().any(|l| l["type"] == "gradient"));
    assert_eq!(tb, ta, "the gradient trace after --resume");
    assert!(!b.join(".trigger-search").exists());
    let again = run(&resume);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("no trigger-search checkpoint"),
        "{}",
        stderr(&again)
    );
}
