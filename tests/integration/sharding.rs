//! Sharded suites (issue 17): N shards run side by side as separate processes, then `robust
//! report merge` joins them into the run an unsharded report makes, byte for byte; bad shard
//! specs and bad merges fail with a message and write nothing.

use std::path::{Path, PathBuf};

use crate::util::*;

fn suite(dir: &Path) -> PathBuf {
    let path = dir.join("suite.toml");
    let text = format!(
        r#"name = "sharded"
seed = 5
models = ["{model}"]
corpora = ["{corpus}"]

[[attack]]
name = "shuffle-full"
kind = "shuffle"
samples = 2
limit = 50

[[attack]]
name = "negation"
kind = "negation"
limit = 50

[[attack]]
name = "shuffle-local"
kind = "shuffle"
mode = "local"
samples = 2
limit = 50
max_flip_rate = 0.5

[[attack]]
name = "entity-swap"
kind = "entity-swap"
samples = 2
limit = 80
"#,
        model = default_model_dir().display(),
        corpus = default_corpus().display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The one run folder under `out` (its name holds the run id).
fn run_dir(out: &Path) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

/// History rows without the run id and finish time, which differ between any two runs.
fn history_rows(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out.join("history.csv"))
        .unwrap()
        .lines()
        .map(|l| l.splitn(4, ',').nth(3).unwrap_or("").to_string())
        .collect()
}

fn ok(out: &std::process::Output, what: &str) {
    assert!(out.status.success(), "{what}:\n{}", stderr(out));
}

#[test]
fn shards_run_side_by_side_and_merge_into_the_unsharded_run() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = suite(tmp.path());
    let suite = suite.to_str().unwrap();
    let whole = tmp.path().join("whole");
    ok(
        &robust(&[
            "report",
            "--suite",
            suite,
            "--out",
            whole.to_str().unwrap(),
            "-q",
        ]),
        "unsharded run",
    );

    let shards = tmp.path().join("shards");
    let children: Vec<_> = (1..=3)
        .map(|k| {
            robust_spawn(
                &repo(),
                &[
                    "report",
                    "--suite",
                    suite,
                    "--shard",
                    &format!("{k}/3"),
                    "--out",
                    shards.to_str().unwrap(),
                    "-q",
                ],
            )
        })
        .collect();
    for child in children {
        ok(&child.wait_with_output().unwrap(), "shard");
    }
    assert!(
        !shards.join("history.csv").exists(),
        "shards leave the history to the merge"
    );
    let mut dirs: Vec<String> = std::fs::read_dir(&shards)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.to_str().unwrap().to_string())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 3);
    // Each shard did its own jobs only: 4 jobs dealt round-robin over 3 shards.
    let jobs: Vec<usize> = dirs
        .iter()
        .map(|d| {
            std::fs::read_dir(Path::new(d).join("jobs"))
                .unwrap()
                .count()
        })
        .collect();
    assert_eq!(jobs.iter().sum::<usize>(), 4, "{jobs:?}");

    let merged = tmp.path().join("merged");
    let mut args = vec!["report", "merge"];
    args.extend(dirs.iter().rev().map(String::as_str));
    args.extend(["--out", merged.to_str().unwrap(), "-q"]);
    ok(&robust(&args), "merge");

    let (a, b) = (run_dir(&whole), run_dir(&merged));
    for file in ["examples.csv", "summary.csv"] {
        assert_eq!(
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
            "{file} of the merged run differs from the unsharded run's"
        );
    }
    assert_eq!(history_rows(&whole), history_rows(&merged));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["merged_from"].as_array().unwrap().len(), 3);
    assert!(b.join("report.html").is_file());

    // Bad merges: a shard missing, a shard twice, an unsharded run. Nothing reaches --out.
    let refused = tmp.path().join("refused");
    for (shards, problem) in [
        (vec![dirs[0].as_str(), dirs[1].as_str()], "missing"),
        (
            vec![
                dirs[0].as_str(),
                dirs[1].as_str(),
                dirs[1].as_str(),
                dirs[2].as_str(),
            ],
            "given more than once",
        ),
        (vec![a.to_str().unwrap()], "not a shard run"),
    ] {
        let mut args = vec!["report", "merge"];
        args.extend(shards);
        args.extend(["--out", refused.to_str().unwrap()]);
        let out = robust(&args);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(problem), "{}", stderr(&out));
        assert!(
            !refused.exists(),
            "a refused merge wrote {}",
            refused.display()
        );
    }
}

/// Issue 17: a suite of fewer jobs than shards splits its perturbation attacks by rows, so
/// every shard has work; the merge joins each job's row parts into the folder an unsharded
/// run writes, and the run into the same CSVs, history rows and report.
#[test]
fn a_suite_of_few_jobs_splits_them_by_rows_and_merges_into_the_unsharded_run() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("suite.toml");
    std::fs::write(
        &path,
        format!(
            r#"name = "few-jobs"
seed = 5
models = ["{model}"]
corpora = ["{corpus}"]

[[attack]]
name = "shuffle-full"
kind = "shuffle"
samples = 2
limit = 90

[[attack]]
name = "negation"
kind = "negation"
limit = 90
examples = 3
"#,
            model = default_model_dir().display(),
            corpus = default_corpus().display(),
        ),
    )
    .unwrap();
    let suite = path.to_str().unwrap();
    let whole = tmp.path().join("whole");
    ok(
        &robust(&[
            "report",
            "--suite",
            suite,
            "--out",
            whole.to_str().unwrap(),
            "-q",
        ]),
        "unsharded run",
    );
    let shards = tmp.path().join("shards");
    let children: Vec<_> = (1..=3)
        .map(|k| {
            let shard = format!("{k}/3");
            robust_spawn(
                &repo(),
                &[
                    "report",
                    "--suite",
                    suite,
                    "--shard",
                    &shard,
                    "--out",
                    shards.to_str().unwrap(),
                    "-q",
                ],
            )
        })
        .collect();
    for child in children {
        ok(&child.wait_with_output().unwrap(), "shard");
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&shards)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    // Two jobs, three shards: every shard attacks a third of each job's rows.
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let k = (1..=3)
            .find(|k| name.ends_with(&format!("-shard-{k}-of-3")))
            .unwrap();
        let mut jobs: Vec<String> = std::fs::read_dir(dir.join("jobs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        jobs.sort();
        assert_eq!(jobs.len(), 2, "{jobs:?}");
        assert!(
            jobs.iter().all(|j| j.ends_with(&format!(".rows-{k}-of-3"))),
            "{jobs:?}"
        );
    }
    let merged = tmp.path().join("merged");
    let mut args = vec!["report", "merge"];
    args.extend(dirs.iter().map(|d| d.to_str().unwrap()));
    args.extend(["--out", merged.to_str().unwrap(), "-q"]);
    ok(&robust(&args), "merge");
    let (a, b) = (run_dir(&whole), run_dir(&merged));
    for file in ["examples.csv", "summary.csv"] {
        assert_eq!(
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
            "{file} of the merged run differs from the unsharded run's"
        );
    }
    assert_eq!(history_rows(&whole), history_rows(&merged));
    for job in std::fs::read_dir(a.join("jobs")).unwrap() {
        let job = job.unwrap().file_name();
        let read =
            |run: &Path, f: &str| std::fs::read(run.join("jobs").join(&job).join(f)).unwrap();
        for f in ["examples.csv", "summary.csv", "failures.json"] {
            assert_eq!(read(&a, f), read(&b, f), "{job:?}/{f}");
        }
    }
}

#[test]
fn shards_of_different_suites_do_not_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let one = suite(tmp.path());
    let other_dir = tmp.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let other = suite(&other_dir);
    let text = std::fs::read_to_string(&other)
        .unwrap()
        .replace("seed = 5", "seed = 6");
    std::fs::write(&other, text).unwrap();
    let out = tmp.path().join("shards");
    for (suite, k) in [(&one, 1), (&other, 2)] {
        ok(
            &robust(&[
                "report",
                "--suite",
                suite.to_str().unwrap(),
                "--shard",
                &format!("{k}/2"),
                "--out",
                out.to_str().unwrap(),
                "-q",
            ]),
            "shard",
        );
    }
    let dirs: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.to_str().unwrap().to_string())
        .collect();
    let merged = tmp.path().join("merged");
    let mut args = vec!["report", "merge"];
    args.extend(dirs.iter().map(String::as_str));
    args.extend(["--out", merged.to_str().unwrap()]);
    let result = robust(&args);
    assert!(!result.status.success());
    assert!(
        stderr(&result).contains("shards of different runs"),
        "{}",
        stderr(&result)
    );
    assert!(!merged.exists());
}

#[test]
fn bad_shard_specs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = suite(tmp.path());
    let out = tmp.path().join("out");
    for (spec, problem) in [
        ("0/3", "numbered from 1"),
        ("4/3", "larger than N"),
        ("a/b", "not a whole number"),
    ] {
        let result = robust(&[
            "report",
            "--suite",
            suite.to_str().unwrap(),
            "--shard",
            spec,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(result.status.code(), Some(2), "{spec}");
        assert!(stderr(&result).contains(problem), "{}", stderr(&result));
        assert!(!out.exists());
    }
}

/// The CSVs an attack wrote to `dir`.
fn csvs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    ["examples.csv", "summary.csv"]
        .iter()
        .map(|f| (f.to_string(), std::fs::read(dir.join(f)).unwrap()))
        .collect()
}

fn attack_args<'a>(kind: &'a [&'a str], out: &'a str) -> Vec<&'a str> {
    let mut args = vec!["attack"];
    args.extend_from_slice(kind);
    args.extend(["--limit", "120", "--seed", "9", "--out", out, "-q"]);
    args
}

/// Issue 17: an attack is read, perturbed, run and written in chunks; the chunk size changes
/// memory and batching, never a number. Chunks of 7 rows (so a row's variants and its
/// neighbours' land in other batches, and chunks end mid-block) give the bytes one chunk
/// does, for a shuffle (many variants per row) and a negation (skips and two groups).
#[test]
fn a_chunked_attack_writes_what_an_unchunked_one_does() {
    let tmp = tempfile::tempdir().unwrap();
    let model = default_model_dir();
    let model = model.to_str().unwrap();
    let corpus = default_corpus();
    let corpus = corpus.to_str().unwrap();
    for kind in ["shuffle", "negation"] {
        let spec = ["--kind", kind, "--model", model, "--corpus", corpus];
        let mut runs = Vec::new();
        for chunk in ["7", "100000"] {
            let out = tmp.path().join(format!("{kind}-{chunk}"));
            let mut args = attack_args(&spec, out.to_str().unwrap());
            args.extend(["--chunk-rows", chunk]);
            ok(&robust(&args), kind);
            runs.push(csvs(&out));
        }
        assert_eq!(
            runs[0], runs[1],
            "{kind}: chunks of 7 rows changed the CSVs"
        );
    }
}

/// Issue 17: one attack split by rows into N shards that run side by side, merged, equals
/// the unsharded run byte for byte; bad shard specs and bad merges fail and write nothing.
#[test]
fn an_attack_split_in_shards_merges_into_the_unsharded_run() {
    let tmp = tempfile::tempdir().unwrap();
    let model = default_model_dir();
    let model = model.to_str().unwrap();
    let corpus = default_corpus();
    let corpus = corpus.to_str().unwrap();
    let spec = [
        "--kind",
        "shuffle",
        "--samples",
        "3",
        "--model",
        model,
        "--corpus",
        corpus,
    ];
    let whole = tmp.path().join("whole");
    ok(
        &robust(&attack_args(&spec, whole.to_str().unwrap())),
        "whole",
    );

    let shard_dirs: Vec<PathBuf> = (1..=3)
        .map(|k| tmp.path().join(format!("shard{k}")))
        .collect();
    let children: Vec<_> = shard_dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let shard = format!("{}/3", i + 1);
            let mut args = attack_args(&spec, dir.to_str().unwrap());
            args.extend(["--shard", &shard]);
            robust_spawn(&repo(), &args)
        })
        .collect();
    for child in children {
        ok(&child.wait_with_output().unwrap(), "shard");
    }
    for dir in &shard_dirs {
        assert!(dir.join("attack-shard.json").is_file());
        assert!(
            !dir.join("summary.csv").exists(),
            "a shard's partial scores must not pass for the attack's"
        );
    }
    let merged = tmp.path().join("merged");
    let dirs: Vec<&str> = shard_dirs.iter().map(|d| d.to_str().unwrap()).collect();
    let mut args = vec!["report", "merge", dirs[2], dirs[0], dirs[1]];
    args.extend(["--out", merged.to_str().unwrap(), "-q"]);
    let out = robust(&args);
    ok(&out, "merge");
    assert!(stdout(&out).contains("flip rate"), "{}", stdout(&out));
    assert_eq!(
        csvs(&whole),
        csvs(&merged),
        "merged shards differ from the whole"
    );

    // A shard of another seed: same rows, different perturbations.
    let other = tmp.path().join("other-seed");
    let mut args = vec!["attack"];
    args.extend_from_slice(&spec);
    args.extend(["--limit", "120", "--seed", "10", "--shard", "2/3", "--out"]);
    args.extend([other.to_str().unwrap(), "-q"]);
    ok(&robust(&args), "other seed");

    let refused = tmp.path().join("refused");
    for (shards, problem) in [
        (vec![dirs[0], dirs[1]], "shard 3/3 missing"),
        (
            vec![dirs[0], dirs[1], dirs[1], dirs[2]],
            "given more than once",
        ),
        (vec![dirs[0], other.to_str().unwrap(), dirs[2]], "seed"),
    ] {
        let mut args = vec!["report", "merge"];
        args.extend(shards);
        args.extend(["--out", refused.to_str().unwrap()]);
        let out = robust(&args);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(problem), "{}", stderr(&out));
        assert!(
            !refused.exists(),
            "a refused merge wrote {}",
            refused.display()
        );
    }

    // Bad --shard values, and attacks that do not split by rows, are refused before any work.
    for (shard, problem) in [
        ("0/3", "numbered from 1"),
        ("4/3", "larger than N"),
        ("a/b", "K is not"),
    ] {
        let dir = tmp.path().join("bad");
        let mut args = attack_args(&spec, dir.to_str().unwrap());
        args.extend(["--shard", shard]);
        let out = robust(&args);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(problem), "{shard}: {}", stderr(&out));
        assert!(!dir.exists());
    }
    let dir = tmp.path().join("trigger");
    let out = robust(&[
        "attack",
        "--kind",
        "trigger",
        "--trigger",
        "zoning tapping",
        "--model",
        model,
        "--corpus",
        corpus,
        "--shard",
        "1/2",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("only perturbation attacks"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.exists());
}
