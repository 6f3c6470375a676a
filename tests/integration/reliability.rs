//! Issue 16: nothing silently lost, truncated or wasted. Concurrent reports keep every history
//! row, suites check models, history and `--compare` before any work, outputs respect the
//! umask, no telemetry is written, and flags that would be silently clamped are usage errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

fn small_suite(dir: &Path, model: &Path) -> PathBuf {
    let path = dir.join("small.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"small\"\nseed = 2\nmodels = [\"{}\"]\ncorpora = [\"{}\"]\n\
             [[attack]]\nname = \"shuffle\"\nkind = \"shuffle\"\nsamples = 2\nlimit = 25\n",
            model.display(),
            default_corpus().display()
        ),
    )
    .unwrap();
    path
}

fn report_args<'a>(suite: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "report",
        "--threads",
        "1",
        "--suite",
        suite.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]
}

/// Runs in history.csv: run id -> rows.
fn history_runs(out: &Path) -> std::collections::BTreeMap<String, usize> {
    let text = std::fs::read_to_string(out.join("history.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let mut runs = std::collections::BTreeMap::new();
    for r in rdr.records() {
        *runs.entry(r.unwrap()[0].to_string()).or_insert(0) += 1;
    }
    runs
}

#[test]
fn concurrent_reports_into_one_folder_keep_every_history_row() {
    let work = tempfile::tempdir().unwrap();
    let suite = small_suite(work.path(), &default_model_dir());
    let out = work.path().join("out");
    let children: Vec<_> = (0..3)
        .map(|_| robust_spawn(work.path(), &report_args(&suite, &out)))
        .collect();
    for child in children {
        let r = child.wait_with_output().unwrap();
        assert!(r.status.success(), "{}", stderr(&r));
    }
    let runs = history_runs(&out);
    assert_eq!(
        runs.len(),
        3,
        "every run's rows are in history.csv: {runs:?}"
    );
    let counts: Vec<usize> = runs.values().copied().collect();
    assert!(counts.iter().all(|&c| c == counts[0] && c > 0), "{runs:?}");
    let leftovers: Vec<_> = walk(&out)
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with(".tmp-") || n.starts_with(".robust-")
        })
        .collect();
    assert!(leftovers.is_empty(), "temporaries left: {leftovers:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn suites_check_models_history_and_compare_before_any_attack() {
    let work = tempfile::tempdir().unwrap();
    // A second model whose weights are garbage: config and tokenizer read fine, the session
    // does not build.
    let broken = work.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(default_model_dir().join(f), broken.join(f)).unwrap();
    }
    std::fs::write(broken.join("model.onnx"), b"not an onnx file").unwrap();
    let suite = work.path().join("two.toml");
    std::fs::write(
        &suite,
        format!(
            "models = [\"{}\", \"{}\"]\ncorpora = [\"{}\"]\n[[attack]]\nkind = \"shuffle\"\nlimit = 5\n",
            default_model_dir().display(),
            broken.display(),
            default_corpus().display()
        ),
    )
    .unwrap();
    let out = work.path().join("out");
    let r = robust_in(work.path(), &report_args(&suite, &out), None);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stderr(&r).contains("broken"), "{}", stderr(&r));
    assert!(
        !walk(&out).iter().any(|p| p.ends_with("jobs")),
        "no run folder, no attack ran"
    );

    // A corrupt history and an unknown --compare run fail before any attack too.
    let suite = small_suite(work.path(), &default_model_dir());
    let out = work.path().join("hist");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("history.csv"), "run_id,oops\n1\n").unwrap();
    let r = robust_in(work.path(), &report_args(&suite, &out), None);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stderr(&r).contains("history.csv"), "{}", stderr(&r));
    assert!(!walk(&out).iter().any(|p| p.ends_with("jobs")));
    std::fs::remove_file(out.join("history.csv")).unwrap();
    let mut args = report_args(&suite, &out);
    args.extend(["--compare", "no-such-run"]);
    let r = robust_in(work.path(), &args, None);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("--compare no-such-run"),
        "{}",
        stderr(&r)
    );
    assert!(!walk(&out).iter().any(|p| p.ends_with("jobs")));
}

fn sh(dir: &Path, script: &str) -> std::process::Output {
    shell_command("sh", script)
        .current_dir(dir)
        .env("MODEL", default_model_dir())
        .env("CORPUS", default_corpus())
        .output()
        .unwrap()
}

#[test]
fn outputs_respect_the_umask_and_keep_an_existing_mode() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let r = sh(
        work.path(),
        "umask 022; \"$ROBUST\" -q attack --kind shuffle --model \"$MODEL\" --corpus \"$CORPUS\" \
         --limit 5 --out res > /dev/null",
    );
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(mode(&work.path().join("res/summary.csv")), 0o644);
    std::fs::set_permissions(
        work.path().join("res/summary.csv"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let r = sh(
        work.path(),
        "umask 077; \"$ROBUST\" -q attack --kind shuffle --model \"$MODEL\" --corpus \"$CORPUS\" \
         --limit 5 --out res --force > /dev/null",
    );
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(mode(&work.path().join("res/summary.csv")), 0o640, "kept");
    assert_eq!(mode(&work.path().join("res/examples.csv")), 0o644, "kept");
    let r = sh(
        work.path(),
        "umask 022; printf 'a good film\\n' | \"$ROBUST\" -q predict --model \"$MODEL\" --out p.csv",
    );
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(mode(&work.path().join("p.csv")), 0o644);
}

#[test]
fn no_telemetry_is_written_under_home() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("in.txt");
    std::fs::write(&input, "a good film\na bad film\n").unwrap();
    let r = robust_command()
        .args(["-q", "predict", "--model"])
        .arg(default_model_dir())
        .arg(&input)
        .current_dir(repo())
        .env("HOME", home.path())
        .env_remove("XDG_CACHE_HOME")
        .env_remove("ORT_DISABLE_TELEMETRY")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", stderr(&r));
    let written = walk(home.path());
    assert!(written.is_empty(), "written under HOME: {written:?}");
}

#[test]
fn silently_clamped_flags_are_usage_errors() {
    let model = default_model_dir();
    let corpus = default_corpus();
    let base = [
        "attack",
        "--kind",
        "shuffle",
        "--model",
        model.to_str().unwrap(),
        "--corpus",
        corpus.to_str().unwrap(),
        "--limit",
        "3",
    ];
    for bad in [["--batch-size", "0"], ["--threads", "0"]] {
        let mut args = base.to_vec();
        args.extend(bad);
        let r = robust(&args);
        assert_eq!(r.status.code(), Some(2), "{bad:?}: {}", stderr(&r));
    }
    let r = robust(&["report", "--compare", "--alpha", "5"]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("must be between 0 and 1"),
        "{}",
        stderr(&r)
    );

    // --out naming an existing file fails at once, before the attack runs.
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("taken");
    std::fs::write(&file, "keep me").unwrap();
    let mut args = base.to_vec();
    args.extend(["--out", file.to_str().unwrap()]);
    let r = robust(&args);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        stderr(&r).contains("is a file, not a folder"),
        "{}",
        stderr(&r)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

#[test]
fn truncation_is_refused_below_the_minimum_and_recorded_above_it() {
    let model = default_model_dir();
    let corpus = default_corpus();
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("in.txt");
    std::fs::write(&input, "a thoroughly good film\n").unwrap();
    for bad in ["0", "1", "2"] {
        let r = robust(&[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--max-len",
            bad,
            input.to_str().unwrap(),
        ]);
        assert_eq!(r.status.code(), Some(1), "--max-len {bad}");
        assert!(
            stderr(&r).contains("leaves no room for text") && stderr(&r).contains("least is 3"),
            "{}",
            stderr(&r)
        );
    }
    // robust.toml's max_length is checked the same way.
    let folder = work.path().join("m");
    std::fs::create_dir(&folder).unwrap();
    for f in ["model.onnx", "tokenizer.json", "config.json"] {
        std::fs::copy(model.join(f), folder.join(f)).unwrap();
    }
    std::fs::write(folder.join("robust.toml"), "max_length = 0\n").unwrap();
    let r = robust(&[
        "predict",
        "--model",
        folder.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        stderr(&r).contains("leaves no room for text"),
        "{}",
        stderr(&r)
    );

    // An attack that cuts inputs says so and records it with its parameters.
    let out = work.path().join("cut");
    let r = robust(&[
        "attack",
        "--kind",
        "shuffle",
        "--model",
        model.to_str().unwrap(),
        "--corpus",
        corpus.to_str().unwrap(),
        "--limit",
        "20",
        "--max-len",
        "8",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(stderr(&r).contains("tokens and were cut"), "{}", stderr(&r));
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(
        summary.contains("max_len=8") && summary.contains(";truncated="),
        "{summary}"
    );
}

/// Issue 16: `--resume` while the run is still going used to fail with "Directory not empty"
/// and leave `jobs/.tmp-*` behind. Now it waits for the running report's lock, then finds the
/// run finished: a clear message, and the finished run's files untouched.
#[test]
fn resume_while_a_run_is_active_waits_for_it() {
    let work = tempfile::tempdir().unwrap();
    let suite = small_suite(work.path(), &default_model_dir());
    let out = work.path().join("out");
    let first = robust_spawn(work.path(), &report_args(&suite, &out));
    // Wait until the first run holds the lock (its run folder exists).
    let started = std::time::Instant::now();
    while !std::fs::read_dir(&out)
        .map(|d| d.flatten().any(|e| e.path().join("run.json").is_file()))
        .unwrap_or(false)
    {
        assert!(
            started.elapsed().as_secs() < 120,
            "the first run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut args = report_args(&suite, &out);
    args.push("--resume");
    let second = robust_in(work.path(), &args, None);
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    let log = stderr(&second);
    assert!(
        second.status.success() || log.contains("no unfinished run of suite small"),
        "{log}"
    );
    let leftovers: Vec<_> = walk(&out)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".tmp-")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(history_runs(&out).len(), 1, "one run, recorded once");
}

/// Issue 16: past a file-size limit the kernel used to kill the run with SIGXFSZ and leave a
/// temporary file in --out. Now the write fails, the error says so, and nothing is left.
#[test]
fn a_file_size_limit_fails_cleanly_without_temporaries() {
    let work = tempfile::tempdir().unwrap();
    // bash counts ulimit -f in 1024-byte blocks; 8 KiB is less than examples.csv needs.
    let r = shell_command(
        "bash",
        "ulimit -f 8; exec \"$ROBUST\" -q attack --kind shuffle --model \"$MODEL\" \
         --corpus \"$CORPUS\" --limit 40 --out res",
    )
    .current_dir(work.path())
    .env("MODEL", default_model_dir())
    .env("CORPUS", default_corpus())
    .output()
    .unwrap();
    assert_eq!(r.status.code(), Some(1), "an error, not a signal: {r:?}");
    assert!(stderr(&r).contains("failed to write"), "{}", stderr(&r));
    let left: Vec<_> = std::fs::read_dir(work.path().join("res"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing half-written: {left:?}");
}

/// #30 item 1: an output path that is also an input used to replace it, rc 0 (`eval --corpus
/// x.tsv --out x.tsv`, `predict --out` over its input, `eval --out M/config.json`, `attack
/// --corpus D/examples.csv --out D`). Now each is refused before any work, naming both, and the
/// input is left as it was, symlinks followed.
#[test]
fn issue30_item1_outputs_never_replace_inputs() {
    let work = tempfile::tempdir().unwrap();
    let r = sh(
        work.path(),
        "cp \"$CORPUS\" x.tsv && cp -al \"$MODEL\" m && ln -s x.tsv link.tsv \
         && printf 'good film\\nbad film\\n' > s.txt \
         && cp x.tsv x.before && cp m/config.json config.before",
    );
    assert!(r.status.success(), "{r:?}");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "eval", "--model", "m", "--corpus", "x.tsv", "--out", "x.tsv",
            ],
            "is the corpus x.tsv",
        ),
        (
            vec![
                "eval", "--model", "m", "--corpus", "x.tsv", "--out", "link.tsv",
            ],
            "is the corpus x.tsv",
        ),
        (
            vec![
                "eval",
                "--model",
                "m",
                "--corpus",
                "x.tsv",
                "--out",
                "m/config.json",
            ],
            "is inside the model folder m",
        ),
        (
            vec!["predict", "--model", "m", "s.txt", "--out", "s.txt"],
            "is the input s.txt",
        ),
        (
            vec![
                "attack", "--kind", "shuffle", "--model", "m", "--corpus", "x.tsv", "--out", "m",
            ],
            "the model folder m",
        ),
    ];
    for (args, expect) in cases {
        let r = robust_in(work.path(), &args, None);
        assert_eq!(r.status.code(), Some(1), "{args:?}: {r:?}");
        assert!(stderr(&r).contains(expect), "{args:?}: {}", stderr(&r));
        assert!(stderr(&r).contains("refusing to write"), "{}", stderr(&r));
    }
    let same = |a: &str, b: &str| {
        std::fs::read(work.path().join(a)).unwrap() == std::fs::read(work.path().join(b)).unwrap()
    };
    assert!(same("x.tsv", "x.before"), "the corpus is untouched");
    assert!(
        same("m/config.json", "config.before"),
        "the model is untouched"
    );
    assert_eq!(
        std::fs::read_to_string(work.path().join("s.txt")).unwrap(),
        "good film\nbad film\n"
    );

    // Re-attacking an earlier run's perturbed_text, into the same folder: refused, naming both.
    let attack = |corpus: &str, out: &str, extra: &[&str]| {
        let mut args = vec![
            "-q",
            "attack",
            "--kind",
            "shuffle",
            "--model",
            "m",
            "--corpus",
            corpus,
            "--limit",
            "10",
            "--samples",
            "2",
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        robust_in(work.path(), &args, None)
    };
    let r = attack("x.tsv", "d", &[]);
    assert!(r.status.success(), "{}", stderr(&r));
    let before = std::fs::read(work.path().join("d/examples.csv")).unwrap();
    let r = attack(
        "d/examples.csv",
        "d",
        &["--text-col", "perturbed_text", "--force"],
    );
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(
        stderr(&r).contains("--out d/examples.csv")
            || stderr(&r).contains("is the corpus d/examples.csv"),
        "{}",
        stderr(&r)
    );
    assert_eq!(
        std::fs::read(work.path().join("d/examples.csv")).unwrap(),
        before
    );
}

/// #30 item 3: `attack --out D` into a folder with earlier results overwrote examples.csv and
/// summary.csv (even a 0444 one) and left the earlier run's trigger.json and loss_curve.csv
/// beside them. Now such a folder is refused unless --force, which leaves one run's files.
#[test]
fn issue30_item3_an_out_with_earlier_results_needs_force() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let attack = |extra: &[&str]| {
        let mut args = vec![
            "-q".to_string(),
            "attack".into(),
            "--kind".into(),
            "shuffle".into(),
            "--model".into(),
            default_model_dir().display().to_string(),
            "--corpus".into(),
            default_corpus().display().to_string(),
            "--limit".into(),
            "10".into(),
            "--samples".into(),
            "2".into(),
            "--out".into(),
            "d".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        robust_in(work.path(), &args, None)
    };
    let r = attack(&[]);
    assert!(r.status.success(), "{}", stderr(&r));
    let d = work.path().join("d");
    std::fs::write(d.join("trigger.json"), "{}\n").unwrap();
    std::fs::write(d.join("loss_curve.csv"), "x\n").unwrap();
    std::fs::set_permissions(
        d.join("summary.csv"),
        std::fs::Permissions::from_mode(0o444),
    )
    .unwrap();
    let summary = std::fs::read(d.join("summary.csv")).unwrap();
    let r = attack(&["--seed", "9"]);
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    let err = stderr(&r);
    assert!(
        err.contains("already holds an earlier run's results"),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    assert!(
        err.contains("examples.csv, summary.csv, trigger.json, loss_curve.csv"),
        "{err}"
    );
    assert_eq!(std::fs::read(d.join("summary.csv")).unwrap(), summary);
    let r = attack(&["--seed", "9", "--force"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let mut left: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["examples.csv", "provenance.json", "summary.csv"],
        "one run's files"
    );
    assert_ne!(std::fs::read(d.join("summary.csv")).unwrap(), summary);
    // --force is documented in --help.
    let help = stdout(&robust(&["attack", "--help"]));
    assert!(help.contains("--force"), "{help}");
}

/// #30 item 2: `report merge s1 s2 --out s1` overwrote shard 1, and merging again gave rc 0
/// with 120 example rows while summary.csv counted 80. Now --out may not be a shard, and each
/// shard's examples must be the rows its attack-shard.json says it attacked.
#[test]
fn issue30_item2_merge_refuses_its_own_shards_and_counts_their_rows() {
    let work = tempfile::tempdir().unwrap();
    for k in ["1/2", "2/2"] {
        let out = format!("s{}", &k[..1]);
        let r = robust_in(
            work.path(),
            &[
                "-q",
                "attack",
                "--kind",
                "shuffle",
                "--model",
                default_model_dir().to_str().unwrap(),
                "--corpus",
                default_corpus().to_str().unwrap(),
                "--limit",
                "40",
                "--samples",
                "2",
                "--shard",
                k,
                "--out",
                &out,
            ],
            None,
        );
        assert!(r.status.success(), "{}", stderr(&r));
    }
    let s1 = std::fs::read(work.path().join("s1/examples.csv")).unwrap();
    let r = robust_in(
        work.path(),
        &["-q", "report", "merge", "s1", "s2", "--out", "s1"],
        None,
    );
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(stderr(&r).contains("is the shard s1"), "{}", stderr(&r));
    assert_eq!(
        std::fs::read(work.path().join("s1/examples.csv")).unwrap(),
        s1
    );
    assert!(!work.path().join("s1/summary.csv").exists());

    let r = robust_in(
        work.path(),
        &["-q", "report", "merge", "s1", "s2", "--out", "m"],
        None,
    );
    assert!(r.status.success(), "{}", stderr(&r));
    // A shard whose examples.csv is not its own (here: the merged one) is refused.
    std::fs::copy(
        work.path().join("m/examples.csv"),
        work.path().join("s1/examples.csv"),
    )
    .unwrap();
    let r = robust_in(
        work.path(),
        &["-q", "report", "merge", "s1", "s2", "--out", "m2"],
        None,
    );
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    let err = stderr(&r);
    assert!(err.contains("holds 40 examples"), "{err}");
    assert!(err.contains("attacked 20 rows"), "{err}");
    assert!(!work.path().join("m2/examples.csv").exists());
    // Merging into a folder with an earlier merge's results needs --force.
    std::fs::copy(
        work.path().join("m/examples.csv"),
        work.path().join("s1/examples.csv"),
    )
    .unwrap();
    std::fs::write(work.path().join("s1/examples.csv"), &s1).unwrap();
    let r = robust_in(
        work.path(),
        &["-q", "report", "merge", "s1", "s2", "--out", "m"],
        None,
    );
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(stderr(&r).contains("--force"), "{}", stderr(&r));
    let r = robust_in(
        work.path(),
        &["-q", "report", "merge", "s1", "s2", "--out", "m", "--force"],
        None,
    );
    assert!(r.status.success(), "{}", stderr(&r));
}

/// #30 item 9: `robust report ... > /dev/full` (or `| true`) panicked, rc 101, from a
/// `println!`, hiding exit codes 3 and 4. Now a failed print is an error (rc 1) where there is
/// no verdict, and a failed gate still exits 4, the print's failure said on stderr.
#[test]
fn issue30_item9_a_full_stdout_is_an_error_not_a_panic() {
    let work = tempfile::tempdir().unwrap();
    let suite = small_suite(work.path(), &default_model_dir());
    let gated = work.path().join("gated.toml");
    let text = std::fs::read_to_string(&suite).unwrap();
    std::fs::write(&gated, format!("{text}max_flip_rate = 0.0\n")).unwrap();
    let run = |script: &str| {
        shell_command("sh", script)
            .current_dir(work.path())
            .env("SUITE", &suite)
            .env("GATED", &gated)
            .output()
            .unwrap()
    };
    for (script, code) in [
        (
            "\"$ROBUST\" -q report --threads 1 --suite \"$SUITE\" --out o1 > /dev/full",
            1,
        ),
        (
            "\"$ROBUST\" -q report --suite \"$SUITE\" --check > /dev/full",
            1,
        ),
        (
            "\"$ROBUST\" -q report --threads 1 --suite \"$GATED\" --out o2 > /dev/full",
            4,
        ),
        (
            "\"$ROBUST\" -q report --compare --out o1 > /dev/full; echo rc=$? >&2",
            0,
        ),
    ] {
        let r = run(script);
        let err = stderr(&r);
        if code == 0 {
            // No earlier run to compare with: nothing printed, rc 0 (or 1 with a write error).
            assert!(
                !err.contains("rc=101") && !err.contains("panicked"),
                "{script}: {err}"
            );
            continue;
        }
        assert_eq!(r.status.code(), Some(code), "{script}: {err}");
        assert!(!err.contains("panicked"), "{script}: {err}");
        assert!(
            err.contains("failed to write to standard output"),
            "{script}: {err}"
        );
    }
}

/// Wait for `child` at most `secs` seconds; kill it past that (a hang fails the test, never
/// the test run).
fn wait_at_most(mut child: std::process::Child, secs: u64) -> std::process::Output {
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed().as_secs() > secs {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("still running after {secs} s (killed): {}", stderr(&out));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// #30 item 7: a FIFO corpus hung forever (the corpus was opened twice, the second open
/// blocked), and `/dev/stdin` gave "the file is empty". Now a corpus that can be read only once
/// is read once: a FIFO gives the same examples.csv and summary.csv as the file, and `-` and
/// `/dev/stdin` read standard input.
#[test]
fn issue30_item7_a_fifo_or_stdin_corpus_is_read_once() {
    let work = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(default_corpus()).unwrap();
    let (regular, piped) = (work.path().join("r"), work.path().join("p"));
    std::fs::create_dir_all(&regular).unwrap();
    std::fs::create_dir_all(&piped).unwrap();
    std::fs::write(regular.join("c.tsv"), &bytes).unwrap();
    let fifo = piped.join("c.tsv");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let attack = |corpus: &Path, out: &str| {
        robust_spawn(
            work.path(),
            &[
                "-q",
                "attack",
                "--kind",
                "shuffle",
                "--model",
                default_model_dir().to_str().unwrap(),
                "--corpus",
                corpus.to_str().unwrap(),
                "--limit",
                "30",
                "--samples",
                "2",
                "--out",
                out,
            ],
        )
    };
    let r = wait_at_most(attack(&regular.join("c.tsv"), "from-file"), 300);
    assert!(r.status.success(), "{}", stderr(&r));
    let child = attack(&fifo, "from-fifo");
    let writer = {
        let (fifo, bytes) = (fifo.clone(), bytes.clone());
        std::thread::spawn(move || std::fs::write(fifo, bytes))
    };
    let r = wait_at_most(child, 300);
    assert!(r.status.success(), "{}", stderr(&r));
    writer.join().unwrap().unwrap();
    for f in ["examples.csv", "summary.csv"] {
        assert_eq!(
            std::fs::read(work.path().join("from-file").join(f)).unwrap(),
            std::fs::read(work.path().join("from-fifo").join(f)).unwrap(),
            "{f}: a FIFO reads as the file"
        );
    }
    for corpus in ["-", "/dev/stdin"] {
        let r = robust_in(
            work.path(),
            &[
                "-q",
                "eval",
                "--model",
                default_model_dir().to_str().unwrap(),
                "--corpus",
                corpus,
                "--limit",
                "20",
                "--format",
                "json",
            ],
            Some(&bytes),
        );
        assert!(r.status.success(), "{corpus}: {}", stderr(&r));
        assert!(
            stdout(&r).contains("\"n\": 20,"),
            "{corpus}: {}",
            stdout(&r)
        );
        assert!(
            stdout(&r).contains("\"corpus_sha256\": \"9096ee38"),
            "{corpus}: the whole file was read: {}",
            stdout(&r)
        );
    }
}

/// #30 item 8: `/dev/zero` as a corpus grew memory without bound until the allocator aborted
/// (rc 134): a never-ending line was read whole. Now a line over the limit (1 MiB) is an
/// error naming its line, fast, for a device and for a regular file alike.
#[test]
fn issue30_item8_a_line_over_the_limit_fails_fast_naming_it() {
    let work = tempfile::tempdir().unwrap();
    let long = work.path().join("long.tsv");
    let mut text = b"sentence\tlabel\ngood\t1\n".to_vec();
    text.extend(std::iter::repeat_n(b'a', 2 << 20));
    text.extend(b"\t1\nbad\t0\n");
    std::fs::write(&long, text).unwrap();
    for (corpus, line) in [("/dev/zero", ":1:"), (long.to_str().unwrap(), ":3:")] {
        let start = std::time::Instant::now();
        let model = default_model_dir();
        for cmd in ["eval", "attack"] {
            let mut args = vec![
                "-q",
                cmd,
                "--model",
                model.to_str().unwrap(),
                "--corpus",
                corpus,
            ];
            if cmd == "attack" {
                args.extend(["--kind", "shuffle"]);
            }
            let r = wait_at_most(robust_spawn(work.path(), &args), 120);
            assert_eq!(r.status.code(), Some(1), "{corpus} {cmd}: {r:?}");
            let err = stderr(&r);
            assert!(err.contains(line), "{corpus} {cmd}: {err}");
            assert!(
                err.contains("longer than 1048576 bytes"),
                "{corpus} {cmd}: {err}"
            );
        }
        assert!(start.elapsed().as_secs() < 60, "{corpus}: slow");
    }
    // `robust predict` reads its input the same way.
    let model = default_model_dir();
    let r = wait_at_most(
        robust_spawn(
            work.path(),
            &[
                "-q",
                "predict",
                "--model",
                model.to_str().unwrap(),
                "/dev/zero",
            ],
        ),
        120,
    );
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(
        stderr(&r).contains("/dev/zero:1: the line is longer"),
        "{}",
        stderr(&r)
    );
}

/// #30 item 10: `--threads 64 --workers 64` on 2 cores peaked at 8.1 GB and 4x the time with
/// no warning. Now both are capped at the cores available, with a warning, and the output is
/// the same bytes.
#[test]
fn issue30_item10_threads_and_workers_beyond_the_cores_are_capped() {
    let cores = std::thread::available_parallelism().unwrap().get();
    let many = (cores + 3).to_string();
    let run = |threads: &str| {
        robust(&[
            "eval",
            "--threads",
            threads,
            "--workers",
            threads,
            "--model",
            default_model_dir().to_str().unwrap(),
            "--corpus",
            default_corpus().to_str().unwrap(),
            "--limit",
            "30",
            "--format",
            "csv",
        ])
    };
    let r = run(&many);
    assert!(r.status.success(), "{}", stderr(&r));
    let err = stderr(&r);
    for flag in ["--threads", "--workers"] {
        assert!(
            err.contains(&format!(
                "{flag} {many}: this machine has {cores} cores available"
            )),
            "{err}"
        );
    }
    let capped = run(&cores.to_string());
    assert!(
        !stderr(&capped).contains("cores available"),
        "{}",
        stderr(&capped)
    );
    let rows = |o: &std::process::Output| {
        stdout(o)
            .lines()
            .filter(|l| !l.contains("seconds") && !l.contains("per_second"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(rows(&r), rows(&capped));
}

/// #30 item 11: a suffix trigger cut off by truncation counted as "no flip" (`--position suffix
/// --max-len 12`: 0/24, the attacked confidence equal to the original). Now those rows are
/// skipped as `trigger-truncated`, and summary.csv counts them.
#[test]
fn issue30_item11_a_truncated_suffix_trigger_is_skipped_not_a_no_flip() {
    let work = tempfile::tempdir().unwrap();
    let r = robust_in(
        work.path(),
        &[
            "-q",
            "attack",
            "--kind",
            "trigger",
            "--trigger",
            "awful dreadful",
            "--model",
            default_model_dir().to_str().unwrap(),
            "--corpus",
            repo()
                .join("corpora/rt-snippets-eval.tsv")
                .to_str()
                .unwrap(),
            "--limit",
            "40",
            "--random-baselines",
            "1",
            "--position",
            "suffix",
            "--max-len",
            "12",
            "--out",
            "d",
        ],
        None,
    );
    assert!(r.status.success(), "{}", stderr(&r));
    let examples = std::fs::read_to_string(work.path().join("d/examples.csv")).unwrap();
    let cut = examples
        .lines()
        .filter(|l| l.ends_with(",trigger-truncated"))
        .count();
    assert!(cut > 0, "{examples}");
    let summary = std::fs::read_to_string(work.path().join("d/summary.csv")).unwrap();
    assert!(summary.contains("skipped[trigger-truncated]"), "{summary}");
    // No row the model saw without the trigger is scored as the trigger's failure.
    for line in examples.lines().skip(1) {
        assert!(
            line.ends_with(",trigger-truncated") || line.contains("trigger '"),
            "{line}"
        );
    }
}

/// #30 item 15: SIGINT or SIGTERM during `attack` left a hidden `.robust-XXXXXX` in --out that
/// a later successful run did not remove. Temporaries now carry their process's id, and a
/// later run removes those of processes that no longer run.
#[test]
fn issue30_item15_a_later_run_removes_a_stopped_runs_temporaries() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("d");
    let args = |limit: &str, force: bool| {
        let mut a = vec![
            "-q".to_string(),
            "attack".into(),
            "--kind".into(),
            "shuffle".into(),
            "--model".into(),
            default_model_dir().display().to_string(),
            "--corpus".into(),
            default_corpus().display().to_string(),
            "--limit".into(),
            limit.into(),
            "--out".into(),
            out.display().to_string(),
        ];
        if force {
            a.push("--force".into());
        }
        a
    };
    let temporaries = || -> Vec<String> {
        std::fs::read_dir(&out)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(".robust-"))
                    .collect()
            })
            .unwrap_or_default()
    };
    for signal in ["INT", "TERM"] {
        let a = args("3000", true);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let child = robust_spawn(work.path(), &a);
        let pid = child.id().to_string();
        let mine = format!(".robust-{pid}-");
        let start = std::time::Instant::now();
        while !temporaries().iter().any(|n| n.starts_with(&mine)) {
            assert!(start.elapsed().as_secs() < 120, "no temporary appeared");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let mut kill = Command::new("kill");
        kill.args([&format!("-{signal}"), &pid]);
        assert!(kill.status().unwrap().success());
        let _ = child.wait_with_output();
        let left = temporaries();
        assert!(
            left.iter().any(|n| n.starts_with(&mine)),
            "the signal left a temporary ({signal}): {left:?}"
        );
    }
    let a = args("10", true);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let r = robust_in(work.path(), &a, None);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(
        temporaries().is_empty(),
        "stale temporaries removed: {:?}",
        temporaries()
    );
}

/// #30, unclear messages: label `2` on a two-label model said "(or their indices 0..2)";
/// `model.onnx` symlinked to /dev/zero was "has no model.onnx"; TOML errors were squashed
/// onto one line, so the caret no longer pointed at the bad value.
#[test]
fn issue30_unclear_messages_say_what_is_wrong() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("c.tsv"), "sentence\tlabel\ngood film\t2\n").unwrap();
    let r = robust_in(
        work.path(),
        &[
            "eval",
            "--model",
            default_model_dir().to_str().unwrap(),
            "--corpus",
            "c.tsv",
        ],
        None,
    );
    assert_eq!(r.status.code(), Some(1));
    assert!(
        stderr(&r).contains("(or their indices 0 and 1)"),
        "{}",
        stderr(&r)
    );

    let m = work.path().join("m");
    std::fs::create_dir(&m).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::os::unix::fs::symlink(default_model_dir().join(f), m.join(f)).unwrap();
    }
    std::os::unix::fs::symlink("/dev/zero", m.join("model.onnx")).unwrap();
    let r = robust_in(
        work.path(),
        &[
            "eval",
            "--model",
            "m",
            "--corpus",
            default_corpus().to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.status.code(), Some(1));
    assert!(
        stderr(&r).contains("is not a regular file"),
        "{}",
        stderr(&r)
    );
    assert!(!stderr(&r).contains("has no model.onnx"), "{}", stderr(&r));

    std::fs::write(
        work.path().join("r.toml"),
        "kind = \"shuffle\"\nsamples = \"ten\"\n",
    )
    .unwrap();
    let r = robust_in(work.path(), &["attack", "--recipe", "r.toml"], None);
    assert_eq!(r.status.code(), Some(1));
    let err = stderr(&r);
    let lines: Vec<&str> = err.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("samples = \"ten\""))
        .unwrap_or_else(|| panic!("the bad line is shown: {err}"));
    let caret = lines[at + 1];
    let column = lines[at].find("\"ten\"").unwrap();
    assert_eq!(
        caret.find('^'),
        Some(column),
        "the caret points at the value:\n{err}"
    );
}

/// #30 item 5: `model_sha256` covered `model.onnx` (+ data) but not `tokenizer.json` or
/// `config.json`, and `report merge` accepted shards run with different tokenizers or
/// different `--text-col`. Now the model's hash covers its tokenizer and config, and shards
/// that read other columns do not merge.
#[test]
fn issue30_item5_shards_of_other_tokenizers_or_columns_do_not_merge() {
    let work = tempfile::tempdir().unwrap();
    let r = sh(
        work.path(),
        "cp -al \"$MODEL\" m1 && cp -al \"$MODEL\" m2 && rm m2/tokenizer.json \
         && cp \"$MODEL/tokenizer.json\" m2/ && echo >> m2/tokenizer.json",
    );
    assert!(r.status.success(), "{r:?}");
    let corpus = default_corpus();
    let shard = |model: &str, k: &str, out: &str, extra: &[&str]| {
        let mut args = vec![
            "-q",
            "attack",
            "--kind",
            "shuffle",
            "--model",
            model,
            "--corpus",
            corpus.to_str().unwrap(),
            "--limit",
            "20",
            "--samples",
            "2",
            "--shard",
            k,
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        let r = robust_in(work.path(), &args, None);
        assert!(r.status.success(), "{}", stderr(&r));
    };
    shard("m1", "1/2", "a1", &[]);
    shard("m2", "2/2", "a2", &[]);
    shard("m1", "2/2", "b2", &["--text-col", "text"]);
    let merge = |a: &str, b: &str| {
        robust_in(
            work.path(),
            &["-q", "report", "merge", a, b, "--out", "m"],
            None,
        )
    };
    let r = merge("a1", "a2");
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(stderr(&r).contains("model sha256"), "{}", stderr(&r));
    let r = merge("a1", "b2");
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(stderr(&r).contains("corpus columns"), "{}", stderr(&r));
    let sha = |dir: &str| {
        let s = std::fs::read_to_string(work.path().join(dir).join("attack-shard.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        v["model_sha256"].as_str().unwrap().to_string()
    };
    assert_ne!(
        sha("a1"),
        sha("a2"),
        "the tokenizer is part of the model's hash"
    );
    assert!(!work.path().join("m").exists(), "nothing merged");
}
