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
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("ROBUST", env!("CARGO_BIN_EXE_robust"))
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
         --limit 5 --out res > /dev/null",
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
    let r = Command::new(env!("CARGO_BIN_EXE_robust"))
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
    let r = Command::new("bash")
        .arg("-c")
        .arg(
            "ulimit -f 8; exec \"$ROBUST\" -q attack --kind shuffle --model \"$MODEL\" \
             --corpus \"$CORPUS\" --limit 40 --out res",
        )
        .current_dir(work.path())
        .env("ROBUST", env!("CARGO_BIN_EXE_robust"))
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
