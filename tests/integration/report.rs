//! `robust report` end to end on the real default model and corpus (issue #6): every file of a
//! run, history without duplicates, `--resume` after a real `kill -9`, `--compare` that stays
//! quiet on a rerun and exits 3 on a weaker model, and suite errors before any work.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::*;

/// A small suite (three attacks, a few hundred model rows) with absolute paths, so it runs
/// from any folder. `model` lets a test swap in another model folder.
fn write_suite(dir: &Path, model: &Path) -> PathBuf {
    let path = dir.join("suite.toml");
    let text = format!(
        "name = \"it\"\nseed = 3\nmodels = [\"{model}\"]\ncorpora = [\"{corpus}\"]\n\
         [[attack]]\nrecipe = \"{recipe}\"\nname = \"shuffle\"\nsamples = 2\nlimit = 30\n\
         [[attack]]\nname = \"negation\"\nkind = \"negation\"\nlimit = 80\n\
         [[attack]]\nname = \"names\"\nkind = \"entity-swap\"\nnames = \"{names}\"\nlimit = 150\n",
        model = model.display(),
        corpus = default_corpus().display(),
        recipe = repo().join("attacks/shuffle-default.toml").display(),
        names = repo().join("corpora/names.tsv").display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The one run folder under `out` (history.csv aside).
fn run_dirs(out: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn report(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["report", "--threads", "2"];
    all.extend_from_slice(args);
    robust_in(dir, &all, None)
}

fn history_rows(out: &Path, run_id: &str) -> usize {
    let text = String::from_utf8(read(&out.join("history.csv"))).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    rdr.records()
        .filter(|r| r.as_ref().unwrap().get(0) == Some(run_id))
        .count()
}

/// Issue 13, point 2: the suite runner on a small model (the 2-layer `bert` test fixture, not
/// the default model): every kind a text corpus allows, a trigger search included, runs in one
/// suite, and a second run with the same seed writes the same CSVs, byte for byte.
#[test]
fn a_suite_runs_every_text_kind_on_a_small_model_and_reproduces() {
    let work = tempfile::tempdir().unwrap();
    let model = repo().join("tests/fixtures/models/bert");
    let suite = work.path().join("small.toml");
    let text = format!(
        "name = \"small\"\nseed = 5\nmodels = [\"{model}\"]\ncorpora = [\"{corpus}\"]\n\
         [[attack]]\nname = \"shuffle\"\nkind = \"shuffle\"\nsamples = 2\nlimit = 40\n\
         [[attack]]\nname = \"negation\"\nkind = \"negation\"\nlimit = 80\n\
         [[attack]]\nname = \"names\"\nkind = \"entity-swap\"\nnames = \"{names}\"\nlimit = 150\n\
         [[attack]]\nname = \"trigger\"\nkind = \"trigger\"\ntarget = \"negative\"\n\
         search_corpus = \"{search}\"\nlimit = 60\niterations = 2\ndirections = 2\n\
         candidates = 4\nbeam = 1\nsearch_batch = 8\nmax_search_examples = 40\nrandom_baselines = 1\n\
         {exclusion}",
        exclusion = crate::util::trigger_exclusion_keys(),
        model = model.display(),
        corpus = repo().join("corpora/rt-snippets-eval.tsv").display(),
        names = repo().join("corpora/names.tsv").display(),
        search = repo().join("corpora/rt-snippets-search.tsv").display(),
    );
    std::fs::write(&suite, text).unwrap();
    let run = |name: &str| {
        let out = work.path().join(name);
        let r = report(
            work.path(),
            &[
                "--suite",
                suite.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert!(r.status.success(), "{}", stderr(&r));
        let runs = run_dirs(&out);
        assert_eq!(runs.len(), 1, "{runs:?}");
        runs[0].clone()
    };
    let (a, b) = (run("a"), run("b"));
    let summary = String::from_utf8(read(&a.join("summary.csv"))).unwrap();
    for attack in ["shuffle", "negation", "names", "trigger"] {
        assert!(
            summary.lines().any(|l| l.starts_with(&format!("{attack},"))
                || l.contains(&format!(",{attack},"))),
            "{attack} missing from summary.csv:\n{summary}"
        );
    }
    let html = String::from_utf8(read(&a.join("report.html"))).unwrap();
    assert!(html.contains("trigger"), "the report has the trigger job");
    for f in ["summary.csv", "examples.csv"] {
        assert_eq!(
            read(&a.join(f)),
            read(&b.join(f)),
            "{f} differs between two runs"
        );
    }
}

/// One long test, because every step needs the runs before it and each run costs model time.
#[test]
fn report_runs_resumes_and_gates() {
    let work = tempfile::tempdir().unwrap();
    let suite = write_suite(work.path(), &default_model_dir());
    let suite_arg = suite.to_str().unwrap();

    // 1. An uninterrupted run writes every file.
    let out_a = work.path().join("a");
    let r = report(
        work.path(),
        &["--suite", suite_arg, "--out", out_a.to_str().unwrap()],
    );
    assert!(r.status.success(), "{}", stderr(&r));
    let runs = run_dirs(&out_a);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run_a = &runs[0];
    let id_a = run_a.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        id_a.len() == "2025-01-01-12345678".len() && id_a.as_bytes()[4] == b'-',
        "run folders are <UTC date>-<short id>: {id_a}"
    );
    for f in [
        "examples.csv",
        "summary.csv",
        "manifest.json",
        "report.html",
        "run.json",
    ] {
        assert!(run_a.join(f).is_file(), "{f} missing");
    }
    let log = stderr(&r);
    assert!(
        log.contains("[1/3]") && log.contains("[3/3]") && log.contains("done in"),
        "progress per attack:\n{log}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&read(&run_a.join("manifest.json"))).expect("manifest.json is JSON");
    assert_eq!(manifest["run_id"], id_a.as_str());
    assert_eq!(manifest["models"][0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(manifest["corpora"][0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(manifest["jobs"].as_array().unwrap().len(), 3);
    assert_eq!(manifest["seeds"][1]["seed"], 3);
    assert!(manifest["jobs"][0]["wall_seconds"].as_f64().unwrap() > 0.0);
    assert!(manifest["machine"]["cpus"].as_u64().unwrap() >= 1);
    assert_eq!(manifest["jobs"][2]["parameters"]["swap"], "other-gender");
    let summary_a = read(&run_a.join("summary.csv"));
    let examples_a = read(&run_a.join("examples.csv"));
    let summary_lines = String::from_utf8(summary_a.clone())
        .unwrap()
        .lines()
        .count()
        - 1;
    for attack in ["shuffle,", "negation,", "names,"] {
        assert!(
            String::from_utf8_lossy(&summary_a).contains(&format!("\n{attack}")),
            "summary has {attack}"
        );
    }
    assert_eq!(history_rows(&out_a, &id_a), summary_lines);
    let html = String::from_utf8(read(&run_a.join("report.html"))).unwrap();
    assert!(
        html.contains("<svg") && html.contains("Trend: flip rate"),
        "charts"
    );
    assert!(!html.contains("<script"), "no scripts");

    // 2. Interrupt a second run with SIGKILL right after its first attack is checkpointed.
    let out_b = work.path().join("b");
    let mut child = robust_spawn(
        work.path(),
        &[
            "report",
            "--threads",
            "2",
            "--suite",
            suite_arg,
            "--out",
            out_b.to_str().unwrap(),
        ],
    );
    let started = Instant::now();
    let first_job = loop {
        let done = run_dirs(&out_b)
            .first()
            .map(|run| run.join("jobs"))
            .and_then(|jobs| {
                std::fs::read_dir(jobs).ok()?.flatten().find_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    (name.starts_with("00-") && e.path().is_dir()).then(|| e.path())
                })
            });
        if let Some(dir) = done {
            break dir;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the first attack never finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().expect("kill -9"); // SIGKILL on Unix: no chance to clean up.
    let _ = child.wait();
    let run_b = run_dirs(&out_b).remove(0);
    assert!(
        !run_b.join("manifest.json").exists(),
        "killed before the run finished"
    );
    assert!(!out_b.join("history.csv").exists(), "no history yet");
    let checkpoint = read(&first_job.join("job.json"));

    // 3. Resume: skips the finished attack, finishes the rest, same CSVs as the uninterrupted run.
    let r = report(
        work.path(),
        &[
            "--suite",
            suite_arg,
            "--out",
            out_b.to_str().unwrap(),
            "--resume",
        ],
    );
    assert!(r.status.success(), "{}", stderr(&r));
    let log = stderr(&r);
    assert!(
        log.contains("[1/3]") && log.contains("already done, skipped"),
        "{log}"
    );
    assert_eq!(read(&first_job.join("job.json")), checkpoint, "not redone");
    assert_eq!(read(&run_b.join("summary.csv")), summary_a);
    assert_eq!(read(&run_b.join("examples.csv")), examples_a);
    let id_b = run_b.file_name().unwrap().to_str().unwrap();
    assert_eq!(history_rows(&out_b, id_b), summary_lines);
    // Resuming a finished run again changes nothing and duplicates nothing.
    let history = read(&out_b.join("history.csv"));
    let r = report(
        work.path(),
        &[
            "--suite",
            suite_arg,
            "--out",
            out_b.to_str().unwrap(),
            "--resume",
            run_b.to_str().unwrap(),
        ],
    );
    assert!(r.status.success(), "{}", stderr(&r));
    let after = String::from_utf8(read(&out_b.join("history.csv"))).unwrap();
    assert_eq!(
        after.lines().count(),
        String::from_utf8(history).unwrap().lines().count()
    );
    let leftovers: Vec<_> = std::fs::read_dir(run_b.join("jobs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary files left: {leftovers:?}"
    );

    // 4. A rerun of the same suite compares clean: same seed, same numbers.
    let r = report(
        work.path(),
        &[
            "--suite",
            suite_arg,
            "--out",
            out_a.to_str().unwrap(),
            "--compare",
        ],
    );
    assert_eq!(r.status.code(), Some(0), "{}\n{}", stdout(&r), stderr(&r));
    assert!(
        stdout(&r).contains(&format!("vs {id_a}: 0 of ")),
        "{}",
        stdout(&r)
    );

    // 5. A weaker model: the same weights, but inputs cut to 8 word pieces (robust.toml
    //    max_length), under the same model name, as if a bad export had shipped. It should
    //    be caught, and the exit code should say so.
    let weak = work.path().join("weak");
    std::fs::create_dir(&weak).unwrap();
    for f in ["model.onnx", "tokenizer.json", "config.json"] {
        std::os::unix::fs::symlink(default_model_dir().join(f), weak.join(f)).unwrap();
    }
    std::fs::write(
        weak.join("robust.toml"),
        "name = \"sst2-minilm\"\nmax_length = 8\n",
    )
    .unwrap();
    let weak_dir = work.path().join("weak-suite");
    std::fs::create_dir(&weak_dir).unwrap();
    let weak_suite = write_suite(&weak_dir, &weak);
    let r = report(
        work.path(),
        &[
            "--suite",
            weak_suite.to_str().unwrap(),
            "--out",
            out_a.to_str().unwrap(),
            "--compare",
            "--alpha",
            "0.01",
        ],
    );
    assert_eq!(r.status.code(), Some(3), "{}\n{}", stdout(&r), stderr(&r));
    assert!(stdout(&r).contains("REGRESSED"), "{}", stdout(&r));
    let newest = run_dirs(&out_a).into_iter().find(|d| {
        std::fs::read_to_string(d.join("manifest.json")).is_ok_and(|m| m.contains("weak-suite"))
    });
    let newest = newest.expect("the weak run has a folder");
    let html = String::from_utf8(read(&newest.join("report.html"))).unwrap();
    assert!(
        html.contains("significantly worse"),
        "the report says so too"
    );
    assert!(newest.join("comparison.csv").is_file());

    // 6. Without --suite, --compare checks the latest run in history against the one before.
    let r = report(
        work.path(),
        &["--out", out_a.to_str().unwrap(), "--compare"],
    );
    assert_eq!(r.status.code(), Some(3), "{}\n{}", stdout(&r), stderr(&r));
    let r = report(
        work.path(),
        &["--out", out_a.to_str().unwrap(), "--compare", &id_a],
    );
    assert_eq!(r.status.code(), Some(3), "{}", stderr(&r));
}

#[test]
fn bad_suites_fail_before_any_work() {
    let work = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(write_suite(work.path(), &default_model_dir())).unwrap();
    let cases: Vec<(String, &str)> = vec![
        (
            good.replace("seed = 3", "seeed = 3"),
            "unknown field `seeed`",
        ),
        (
            good.replace("limit = 80", "limit = 80\nmode = \"sideways\""),
            "attack[1]: unknown variant `sideways`",
        ),
        (
            good.replace("samples = 2", "samples = 0"),
            "samples = 0: must be at least 1",
        ),
        (
            good.replace(default_model_dir().to_str().unwrap(), "/no/such/model"),
            "models[0] = /no/such/model",
        ),
        (
            good.replace(default_corpus().to_str().unwrap(), "/no/such.tsv"),
            "corpora[0] = /no/such.tsv: no such file",
        ),
    ];
    for (text, expected) in cases {
        let path = work.path().join("bad.toml");
        std::fs::write(&path, &text).unwrap();
        let out = work.path().join("out");
        let r = report(
            work.path(),
            &[
                "--suite",
                path.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
        let err = stderr(&r);
        assert!(err.contains("bad.toml"), "names the file: {err}");
        assert!(err.contains(expected), "expected {expected:?} in {err}");
        assert!(!out.exists(), "nothing written before the suite is valid");
    }
}
