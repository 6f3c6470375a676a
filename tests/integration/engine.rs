//! Issue 13: one attack engine behind `robust attack` and `robust report`. Suites run every
//! kind (trigger searches, coreference swaps and cloze probes included), resume after a kill
//! during a trigger search with the same CSVs, judge absolute gates (exit 4 on a miss, 0 when
//! met), show failure examples in the HTML, and refuse bad entries before any work.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::*;

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(path: &Path) -> String {
    String::from_utf8(read(path)).unwrap()
}

fn report(dir: &Path, suite: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "report",
        "--threads",
        "2",
        "--suite",
        suite.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    robust_in(dir, &args, None)
}

fn only_run(out: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.remove(0)
}

/// A shuffle suite on the default model with the given extra lines on its one attack.
fn gated_suite(dir: &Path, gate_lines: &str) -> PathBuf {
    let path = dir.join("gated.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"gated\"\nseed = 5\nmodels = [\"{}\"]\ncorpora = [\"{}\"]\nexamples = 3\n\
             [[attack]]\nname = \"shuffle\"\nkind = \"shuffle\"\nsamples = 2\nlimit = 60\n{gate_lines}\n",
            default_model_dir().display(),
            default_corpus().display(),
        ),
    )
    .unwrap();
    path
}

/// Render a report in headless Chromium where it is installed: the page must load without
/// console errors and show `sections` attack sections, each with a chart and its examples.
fn check_in_chromium(test: &str, html: &Path, sections: usize) {
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
    else {
        eprintln!(
            "SKIPPED {test} (chromium part): no chromium installed (apt-get install chromium)"
        );
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            &format!("file://{}", html.display()),
        ])
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(
        !log.contains(":CONSOLE") && !log.contains("Uncaught"),
        "console messages while loading the report:\n{log}"
    );
    let dom = stdout(&out);
    assert_eq!(
        dom.matches("<section class=\"job\" ").count(),
        sections,
        "every attack has a section"
    );
    // #32: the first screen is the overview, a row per attack linking to its section.
    let overview = dom
        .find("<section class=\"overview\">")
        .expect("an overview section");
    assert!(
        overview < dom.find("<section class=\"job\" ").unwrap_or(usize::MAX),
        "the overview comes before the attacks"
    );
    assert_eq!(
        dom.matches("<a href=\"#job-").count(),
        sections,
        "an overview row per attack"
    );
    for i in 1..=sections {
        assert!(
            dom.contains(&format!("id=\"job-{i}\"")),
            "job-{i} is a link target"
        );
    }
    for section in dom.split("<section class=\"job\" ").skip(1) {
        assert!(section.contains("<svg"), "a chart in every section");
        // A trigger's random baseline is a control, not an attack: its section has no
        // failure examples of its own.
        if !section.contains("/random-baseline</h2>") {
            assert!(
                section.contains("class=\"examples\""),
                "failure examples in every attack's section: {section}"
            );
        }
    }
}

#[test]
fn gates_exit_4_when_missed_and_0_when_met() {
    let work = tempfile::tempdir().unwrap();
    // Met: the flip rate of a 2-sample shuffle is far below 90%.
    let suite = gated_suite(
        work.path(),
        "max_flip_rate = 0.9\nmin_accuracy_before = 0.5",
    );
    let out = work.path().join("met");
    let r = report(work.path(), &suite, &out, &[]);
    assert_eq!(r.status.code(), Some(0), "{}\n{}", stdout(&r), stderr(&r));
    assert!(
        stdout(&r).contains("gate max_flip_rate 0.9 (interval)") && stdout(&r).contains("pass"),
        "{}",
        stdout(&r)
    );
    let run = only_run(&out);
    let summary = text(&run.join("summary.csv"));
    assert!(
        summary.contains(",all,gate:max_flip_rate,0.9 on the interval,"),
        "{summary}"
    );
    assert!(summary.contains(",pass,"), "{summary}");
    let html = text(&run.join("report.html"));
    assert!(
        html.contains("class=\"gate pass\"") && html.contains("Failure examples (the 3 clearest)"),
        "gates and examples in the HTML"
    );
    assert!(html.contains("<mark>"), "changed words are marked");
    check_in_chromium(
        "gates_exit_4_when_missed_and_0_when_met",
        &run.join("report.html"),
        1,
    );

    // Missed: no shuffle leaves every prediction alone, so a 0.1% ceiling fails on the
    // interval too; the exit code is 4, not 1 (error) or 3 (regression).
    let suite = gated_suite(work.path(), "max_flip_rate = 0.001");
    let out = work.path().join("missed");
    let r = report(work.path(), &suite, &out, &[]);
    assert_eq!(r.status.code(), Some(4), "{}\n{}", stdout(&r), stderr(&r));
    assert!(stdout(&r).contains("FAIL"), "{}", stdout(&r));
    assert!(stdout(&r).contains("GATES: 1 of 1 thresholds failed"));
    let run = only_run(&out);
    assert!(text(&run.join("summary.csv")).contains(",fail,"));
    assert!(text(&run.join("report.html")).contains("class=\"gate fail\""));

    // The point mode is stricter: 50% passes on the interval of a rate near it but, at a
    // threshold just under the point estimate, only the point mode fails.
    let summary = text(&run.join("summary.csv"));
    let flip = summary
        .lines()
        .find(|l| l.starts_with("shuffle,shuffle,all,flip_rate,"))
        .unwrap();
    let cells: Vec<&str> = flip.split(',').collect();
    let (value, low): (f64, f64) = (cells[7].parse().unwrap(), cells[8].parse().unwrap());
    let threshold = (value + low) / 2.0;
    for (mode, code) in [("interval", 0), ("point", 4)] {
        let suite = gated_suite(
            work.path(),
            &format!("max_flip_rate = {threshold}\ngate = \"{mode}\""),
        );
        let out = work.path().join(format!("mode-{mode}"));
        let r = report(work.path(), &suite, &out, &[]);
        assert_eq!(r.status.code(), Some(code), "{mode}: {}", stdout(&r));
    }
}

#[test]
fn bad_entries_fail_before_any_work_naming_file_and_key() {
    let work = tempfile::tempdir().unwrap();
    let broken_model = work.path().join("broken-model");
    std::fs::create_dir(&broken_model).unwrap();
    for f in ["model.onnx", "tokenizer.json"] {
        std::fs::copy(default_model_dir().join(f), broken_model.join(f)).unwrap();
    }
    std::fs::write(broken_model.join("config.json"), "{ not json").unwrap();
    let cases = [
        (
            "kind = \"trigger\"\nsearch_corpus = \"/no/such/train.tsv\"".to_string(),
            "attack[0]: search_corpus = /no/such/train.tsv: no such file",
        ),
        (
            "kind = \"shuffle\"\nmax_expected_direction_rate = 0.5".to_string(),
            "attack[0].max_expected_direction_rate",
        ),
        (
            "kind = \"negation\"\nmax_top1_unchanged = 0.5".to_string(),
            "produces no rate `top1_unchanged`",
        ),
        (
            format!(
                "kind = \"shuffle\"\nmodels = [\"{}\"]",
                broken_model.display()
            ),
            "attack[0].models[0]",
        ),
    ];
    for (entry, expected) in cases {
        let path = work.path().join("bad.toml");
        std::fs::write(
            &path,
            format!(
                "models = [\"{}\"]\ncorpora = [\"{}\"]\n[[attack]]\n{entry}\n",
                default_model_dir().display(),
                default_corpus().display()
            ),
        )
        .unwrap();
        let out = work.path().join("out");
        let r = report(work.path(), &path, &out, &[]);
        assert_eq!(r.status.code(), Some(1), "{entry}: {}", stderr(&r));
        let err = stderr(&r);
        assert!(err.contains("bad.toml"), "names the file: {err}");
        assert!(err.contains(expected), "expected {expected:?} in {err}");
        assert!(!out.exists(), "nothing written before the suite is valid");
    }
}

#[test]
fn the_shipped_suites_load() {
    // Both nightly suites are checked in full (recipes, models, corpora, gates) without
    // running; nightly-sst2 only where the shared data is present.
    let load = |rel: &str| {
        let r = robust_in(
            &repo(),
            &[
                "report",
                "--suite",
                rel,
                "--out",
                "/nonexistent/never",
                "--check",
            ],
            None,
        );
        assert!(r.status.success(), "{rel}: {}", stderr(&r));
        stdout(&r)
    };
    let plan = load("attacks/nightly.toml");
    for kind in ["shuffle", "negation", "entity-swap", "trigger"] {
        assert!(plan.contains(kind), "{plan}");
    }
    if shared_file("the_shipped_suites_load", "sst2/dev.tsv").is_some() {
        let plan = load("attacks/nightly-sst2.toml");
        for shape in [
            "text-perturbation",
            "trigger-search",
            "span-swap",
            "cloze-probe",
        ] {
            assert!(plan.contains(shape), "{plan}");
        }
    }
}

/// All five kinds in one suite on the shared data, killed during the trigger search and
/// resumed: the CSVs equal an uninterrupted run's, and the report has a section per attack.
#[test]
fn every_kind_runs_in_a_suite_and_resumes_after_a_kill_during_the_trigger() {
    let test = "every_kind_runs_in_a_suite_and_resumes_after_a_kill_during_the_trigger";
    let (Some(dev), Some(train), Some(gap), Some(neg)) = (
        shared_file(test, "sst2/dev.tsv"),
        shared_file(test, "sst2/train.tsv"),
        shared_file(test, "gap/gap-test.tsv"),
        shared_file(test, "neg136/NEG-136-SIMP.tsv"),
    ) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let r = |p: &str| repo().join(p).display().to_string();
    let suite = work.path().join("all.toml");
    std::fs::write(
        &suite,
        format!(
            "name = \"all-kinds\"\nseed = 13\nmodels = [\"{model}\"]\ncorpora = [\"{dev}\"]\n\
             [[attack]]\nname = \"shuffle\"\nkind = \"shuffle\"\nsamples = 2\nlimit = 40\n\
             [[attack]]\nname = \"trigger\"\nkind = \"trigger\"\nsearch_corpus = \"{train}\"\n\
             target = \"negative\"\nsource = \"positive\"\nbudget_queries = 2500\n\
             max_search_examples = 200\nlimit = 120\nrandom_baselines = 1\n{exclusion}\
             [[attack]]\nname = \"negation\"\nkind = \"negation\"\nlimit = 60\n\
             [[attack]]\nname = \"names\"\nkind = \"entity-swap\"\nnames = \"{names}\"\nlimit = 150\n\
             [[attack]]\nrecipe = \"{coref}\"\nmodels = [\"{gap_model}\"]\ncorpora = [\"{gap}\"]\n\
             limit = 25\nnames = \"{names}\"\nname_frequency = \"{freq}\"\n\
             [[attack]]\nrecipe = \"{cloze}\"\nmodels = [\"{mlm}\"]\ncorpora = [\"{neg}\"]\n",
            model = default_model_dir().display(),
            dev = dev.display(),
            train = train.display(),
            names = r("corpora/names.tsv"),
            coref = r("attacks/coref-swap-gap-test.toml"),
            gap_model = r("models/gap-minilm"),
            gap = gap.display(),
            freq = r("corpora/name-frequency.tsv"),
            cloze = r("attacks/neg136-simp-cloze.toml"),
            mlm = r("models/minilm-mlm"),
            neg = neg.display(),
            exclusion = crate::util::trigger_exclusion_keys(),
        ),
    )
    .unwrap();

    let out_a = work.path().join("a");
    let done = report(work.path(), &suite, &out_a, &[]);
    assert!(done.status.success(), "{}", stderr(&done));
    let run_a = only_run(&out_a);
    let summary = text(&run_a.join("summary.csv"));
    for (attack, kind) in [
        ("shuffle", "shuffle"),
        ("trigger", "trigger"),
        ("trigger/random-baseline", "trigger"),
        ("negation", "negation"),
        ("names", "entity-swap"),
        ("coref-swap-gap-test", "entity-swap"),
        ("neg136-simp-cloze", "cloze"),
    ] {
        assert!(
            summary.contains(&format!("\n{attack},{kind},all,")),
            "{attack} in summary.csv:\n{summary}"
        );
    }
    assert!(run_a.join("cloze-examples.csv").is_file());
    let jobs = run_a.join("jobs");
    let trigger_job = std::fs::read_dir(&jobs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("01-trigger")
        })
        .expect("the trigger job's folder");
    for f in ["loss_curve.csv", "trigger.json", "failures.json"] {
        assert!(trigger_job.join(f).is_file(), "{f}");
    }
    let html = text(&run_a.join("report.html"));
    assert_eq!(
        html.matches("<section class=\"job\" ").count(),
        7,
        "a section per attack"
    );
    check_in_chromium(test, &run_a.join("report.html"), 7);

    // Kill -9 while the trigger search (job 01) runs: wait for job 00's checkpoint, give the
    // search a moment to start, then kill.
    let out_b = work.path().join("b");
    let mut child = robust_spawn(
        work.path(),
        &[
            "report",
            "--threads",
            "2",
            "--suite",
            suite.to_str().unwrap(),
            "--out",
            out_b.to_str().unwrap(),
        ],
    );
    let started = Instant::now();
    loop {
        let first = std::fs::read_dir(&out_b).ok().and_then(|d| {
            d.flatten()
                .map(|e| e.path().join("jobs"))
                .find(|j| j.is_dir())
                .and_then(|j| std::fs::read_dir(j).ok())
                .and_then(|mut d| {
                    d.find(|e| {
                        e.as_ref()
                            .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("00-"))
                    })
                })
        });
        if first.is_some() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "job 00 never finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().expect("kill -9");
    let _ = child.wait();
    let run_b = only_run(&out_b);
    assert!(!run_b.join("manifest.json").exists(), "killed mid-run");
    let trigger_done = std::fs::read_dir(run_b.join("jobs"))
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("01-"));
    assert!(!trigger_done, "the kill landed during the trigger search");
    let resumed = report(work.path(), &suite, &out_b, &["--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    for f in ["summary.csv", "examples.csv", "cloze-examples.csv"] {
        assert_eq!(
            read(&run_b.join(f)),
            read(&run_a.join(f)),
            "{f} after --resume"
        );
    }
    assert_eq!(
        read(
            &run_b
                .join("jobs")
                .join(trigger_job.file_name().unwrap())
                .join("loss_curve.csv")
        ),
        read(&trigger_job.join("loss_curve.csv"))
    );
}

/// Issue 14: a given trigger (Wallace et al.'s published SST-2 trigger, words of several pieces
/// included) is evaluated without a search corpus, and transfers across corpora in a suite.
#[test]
fn a_given_trigger_is_evaluated_without_a_search() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("given");
    let eval = repo().join("corpora/rt-snippets-eval.tsv");
    let r = robust(&[
        "attack",
        "--kind",
        "trigger",
        "--trigger",
        "zoning tapping fiennes",
        "--model",
        default_model_dir().to_str().unwrap(),
        "--corpus",
        eval.to_str().unwrap(),
        "--target",
        "negative",
        "--source",
        "positive",
        "--limit",
        "120",
        "--random-baselines",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let examples = text(&out.join("examples.csv"));
    assert!(
        examples.contains(",zoning tapping fiennes "),
        "variants are written with the trigger as given"
    );
    let summary = text(&out.join("summary.csv"));
    assert!(summary.contains("given=true"), "{summary}");
    assert!(
        summary.contains("trigger=zoning tapping fiennes"),
        "{summary}"
    );
    assert!(summary.contains("\ntrigger/random-baseline,trigger,all,accuracy_after,"));
    let json: serde_json::Value = serde_json::from_str(&text(&out.join("trigger.json"))).unwrap();
    assert_eq!(json["given"], true);
    assert!(json["search_corpus"].is_null());
    // "fiennes" is several word pieces: the random baselines match the trigger's piece count.
    let pieces = json["trigger"]["ids"].as_array().unwrap().len();
    assert!(pieces > 3, "{json}");
    let random = json["random_triggers"][0].as_str().unwrap();
    assert!(!random.is_empty());

    // Search keys make no sense with a given trigger.
    let r = robust(&[
        "attack",
        "--kind",
        "trigger",
        "--trigger",
        "zoning tapping fiennes",
        "--init",
        "the the the",
        "--model",
        default_model_dir().to_str().unwrap(),
        "--corpus",
        eval.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        stderr(&r).contains("init = set: applies to a trigger search"),
        "{}",
        stderr(&r)
    );

    // Transfer: one trigger on two corpora in one suite, one set of rows per pair.
    let suite = work.path().join("transfer.toml");
    std::fs::write(
        &suite,
        format!(
            "name = \"transfer\"\nseed = 1\nmodels = [\"{}\"]\ncorpora = [\"{}\", \"{}\"]\n\
             [[attack]]\nname = \"wallace\"\nkind = \"trigger\"\ntrigger = \"zoning tapping fiennes\"\n\
             target = \"negative\"\nsource = \"positive\"\nlimit = 60\nrandom_baselines = 1\n",
            default_model_dir().display(),
            eval.display(),
            repo().join("corpora/rt-snippets-search.tsv").display(),
        ),
    )
    .unwrap();
    let out = work.path().join("transfer");
    let r = report(work.path(), &suite, &out, &[]);
    assert!(r.status.success(), "{}", stderr(&r));
    let summary = text(&only_run(&out).join("summary.csv"));
    for corpus in ["rt-snippets-eval.tsv", "rt-snippets-search.tsv"] {
        assert!(
            summary
                .lines()
                .any(|l| l.starts_with("wallace,trigger,all,accuracy_after,") && l.contains(corpus)),
            "{corpus}: {summary}"
        );
    }
}

/// Issue 14: exclusion lists are checked before a search starts, and recorded.
#[test]
fn exclusion_lists_are_checked_and_recorded() {
    let eval = repo().join("corpora/rt-snippets-eval.tsv");
    let search = repo().join("corpora/rt-snippets-search.tsv");
    let args = |exclude: &str, out: &str| -> Vec<String> {
        let mut args: Vec<String> = [
            "attack",
            "--kind",
            "trigger",
            "--model",
            default_model_dir().to_str().unwrap(),
            "--corpus",
            eval.to_str().unwrap(),
            "--search-corpus",
            search.to_str().unwrap(),
            "--target",
            "negative",
            "--source",
            "positive",
            "--exclude",
            exclude,
            "--out",
            out,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(small_trigger_flags(&[("--iterations", "1")]));
        args
    };
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("none");
    let a = args("none", out.to_str().unwrap());
    let r = robust(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(text(&out.join("summary.csv")).contains("exclude=none"));

    let list = work.path().join("mine.txt");
    std::fs::write(&list, "# mine\nThe\nfilm\n\n").unwrap();
    let out = work.path().join("mine");
    let a = args(list.to_str().unwrap(), out.to_str().unwrap());
    let r = robust(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(r.status.success(), "{}", stderr(&r));
    let summary = text(&out.join("summary.csv"));
    assert!(summary.contains("exclude=mine.txt:"), "{summary}");
    assert!(summary.contains(":2;"), "two words: {summary}");
    let json: serde_json::Value = serde_json::from_str(&text(&out.join("trigger.json"))).unwrap();
    assert_eq!(json["exclude"][0]["size"], 2);
    assert_eq!(json["exclude"][0]["sha256"].as_str().unwrap().len(), 64);
    let trigger = json["trigger"]["text"].as_str().unwrap().to_lowercase();
    assert!(
        trigger
            .split_whitespace()
            .all(|w| w != "the" && w != "film"),
        "{trigger}"
    );

    let out = work.path().join("missing");
    let a = args("/no/such/list.txt", out.to_str().unwrap());
    let r = robust(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.status.code(), Some(1));
    assert!(
        stderr(&r).contains("failed to read the exclusion word list /no/such/list.txt"),
        "{}",
        stderr(&r)
    );
    assert!(!out.exists());
}

/// Issue 14: `--budget-queries 500` used to spend 2,700 queries (the budget was checked only
/// between iterations). Now every request is checked before it runs; and (#30 item 12) a
/// budget below one iteration's cost (500 here: one gradient estimate is 2,048 rows) is an
/// error naming the minimum, not the starting trigger after 0 iterations.
#[test]
fn the_query_budget_is_honoured_within_one_batch() {
    let work = tempfile::tempdir().unwrap();
    for budget in [500u64, 2200, 3000] {
        let out = work.path().join(format!("b{budget}"));
        let r = robust(&[
            "attack",
            "--kind",
            "trigger",
            "--model",
            default_model_dir().to_str().unwrap(),
            "--corpus",
            repo()
                .join("corpora/rt-snippets-eval.tsv")
                .to_str()
                .unwrap(),
            "--search-corpus",
            repo()
                .join("corpora/rt-snippets-search.tsv")
                .to_str()
                .unwrap(),
            "--target",
            "negative",
            "--source",
            "positive",
            "--limit",
            "30",
            "--max-search-examples",
            "300",
            "--random-baselines",
            "1",
            "--budget-queries",
            &budget.to_string(),
            "--out",
            out.to_str().unwrap(),
        ]);
        if budget == 500 {
            assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
            let err = stderr(&r);
            assert!(
                err.contains("one iteration of this search needs 2144"),
                "{err}"
            );
            assert!(err.contains("give at least 2144"), "{err}");
            assert!(!out.join("trigger.json").exists());
            continue;
        }
        assert!(r.status.success(), "{}", stderr(&r));
        let json: serde_json::Value =
            serde_json::from_str(&text(&out.join("trigger.json"))).unwrap();
        let spent = json["trigger"]["queries"].as_u64().unwrap();
        // The search batch (32 rows) is the most the first validation pass can add.
        assert!(spent <= budget + 32, "budget {budget}, spent {spent}");
        assert!(spent > 0);
    }
}
