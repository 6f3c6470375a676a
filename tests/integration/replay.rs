//! #30 (replayable provenance): every `robust attack --out DIR` writes `provenance.json`, and
//! `robust replay DIR` runs the attack again from it and checks its files byte for byte. One
//! run of every kind and shape is replayed here; an input changed since, or an output that
//! does not come out again, is refused with the file (and line) named.

use std::path::Path;

use crate::util::{
    default_corpus, default_corpus_rows, default_model_dir, repo, robust_in, shared_file,
    small_trigger_flags, stderr, stdout,
};

/// Run `robust attack ARGS --out DIR` from the repository, then `robust replay DIR` from
/// another folder, and expect both to succeed.
fn attack_then_replay(out: &Path, args: &[String]) {
    let mut attack: Vec<String> = ["-q", "--threads", "2", "attack"]
        .map(String::from)
        .to_vec();
    attack.extend(args.iter().cloned());
    attack.extend(["--out".to_string(), out.display().to_string()]);
    let attack: Vec<&str> = attack.iter().map(String::as_str).collect();
    let r = robust_in(&repo(), &attack, None);
    assert!(r.status.success(), "{attack:?}: {}", stderr(&r));
    assert!(
        out.join("provenance.json").is_file(),
        "{attack:?} wrote its record"
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let r = robust_in(
        elsewhere.path(),
        &[
            "-q",
            "--threads",
            "1",
            "--batch-size",
            "7",
            "replay",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        r.status.success(),
        "replay of {attack:?}:\n{}\n{}",
        stdout(&r),
        stderr(&r)
    );
    assert!(stdout(&r).contains("byte for byte"), "{}", stdout(&r));
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_run_of_every_kind_replays_byte_for_byte() {
    let work = tempfile::tempdir().unwrap();
    let model = default_model_dir();
    let model = model.to_str().unwrap();
    let corpus = default_corpus();
    let corpus = corpus.to_str().unwrap();
    // Relative paths from a recipe, resolved in the recorded working folder.
    attack_then_replay(
        &work.path().join("shuffle"),
        &strings(&[
            "--recipe",
            "attacks/shuffle-default.toml",
            "--limit",
            "40",
            "--samples",
            "2",
        ]),
    );
    attack_then_replay(
        &work.path().join("negation"),
        &strings(&[
            "--kind", "negation", "--model", model, "--corpus", corpus, "--limit", "60",
        ]),
    );
    attack_then_replay(
        &work.path().join("entity-swap"),
        &strings(&[
            "--kind",
            "entity-swap",
            "--model",
            model,
            "--corpus",
            corpus,
            "--limit",
            "400",
        ]),
    );
    let mut search = strings(&[
        "--kind",
        "trigger",
        "--model",
        model,
        "--corpus",
        "corpora/rt-snippets-eval.tsv",
        "--search-corpus",
        "corpora/rt-snippets-search.tsv",
        "--target",
        "negative",
        "--source",
        "positive",
    ]);
    search.extend(small_trigger_flags(&[]));
    attack_then_replay(&work.path().join("trigger-search"), &search);
    attack_then_replay(
        &work.path().join("trigger-given"),
        &strings(&[
            "--kind",
            "trigger",
            "--trigger",
            "zoning tapping fiennes",
            "--target",
            "negative",
            "--model",
            model,
            "--corpus",
            corpus,
            "--limit",
            "60",
            "--random-baselines",
            "1",
        ]),
    );
    attack_then_replay(
        &work.path().join("cloze"),
        &strings(&[
            "--kind",
            "negation",
            "--probe",
            "cloze",
            "--model",
            "models/minilm-mlm",
            "--corpus",
            "corpora/cloze/knowledge.tsv",
        ]),
    );
    let test = "a_run_of_every_kind_replays_byte_for_byte (GAP span swap)";
    if let Some(gap) = shared_file(test, "gap/gap-test.tsv") {
        attack_then_replay(
            &work.path().join("span-swap"),
            &strings(&[
                "--kind",
                "entity-swap",
                "--model",
                "models/gap-minilm",
                "--corpus",
                gap.to_str().unwrap(),
                "--limit",
                "40",
                "--samples",
                "1",
            ]),
        );
    }
}

#[test]
fn a_changed_input_or_a_different_output_is_named() {
    let work = tempfile::tempdir().unwrap();
    let corpus = work.path().join("c.tsv");
    let rows = default_corpus_rows(30);
    std::fs::write(&corpus, rows.join("\n") + "\n").unwrap();
    let out = work.path().join("run");
    let model = default_model_dir();
    attack_then_replay(
        &out,
        &strings(&[
            "--kind",
            "shuffle",
            "--samples",
            "2",
            "--model",
            model.to_str().unwrap(),
            "--corpus",
            corpus.to_str().unwrap(),
        ]),
    );

    // An output that the replay does not give again: line 3 of examples.csv, with the record
    // agreeing with the edited file (as if the run had written it).
    let examples = out.join("examples.csv");
    let text = std::fs::read_to_string(&examples).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[2] = lines[2].replacen(',', ",edited ", 1);
    let edited = lines.join("\n") + "\n";
    std::fs::write(&examples, &edited).unwrap();
    let record = std::fs::read_to_string(out.join("provenance.json")).unwrap();
    let old = robust::hash::sha256_bytes(text.as_bytes());
    let new = robust::hash::sha256_bytes(edited.as_bytes());
    std::fs::write(out.join("provenance.json"), record.replace(&old, &new)).unwrap();
    let r = robust_in(work.path(), &["-q", "replay", out.to_str().unwrap()], None);
    assert_eq!(r.status.code(), Some(1), "{}", stdout(&r));
    assert!(
        stderr(&r).contains("examples.csv: line 3: recorded"),
        "{}",
        stderr(&r)
    );

    // An input changed since the run: refused before any work, naming it.
    std::fs::write(&corpus, rows[..20].join("\n") + "\n").unwrap();
    let r = robust_in(work.path(), &["-q", "replay", out.to_str().unwrap()], None);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        stderr(&r).contains("1 input(s) differ") && stderr(&r).contains("c.tsv: recorded"),
        "{}",
        stderr(&r)
    );

    // A folder that no attack wrote.
    let r = robust_in(
        work.path(),
        &["-q", "replay", work.path().to_str().unwrap()],
        None,
    );
    assert_eq!(r.status.code(), Some(1));
    assert!(stderr(&r).contains("provenance.json"), "{}", stderr(&r));
}

/// #30 item 6 / #28 point 5: a parameter records the value its flag takes (`keep-ends`, not
/// the enum's Debug name `keepends`), so the parameters column can be typed back.
#[test]
fn recorded_enum_parameters_are_flag_values() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("keep-ends");
    let model = default_model_dir();
    attack_then_replay(
        &out,
        &strings(&[
            "--kind",
            "shuffle",
            "--mode",
            "keep-ends",
            "--samples",
            "1",
            "--limit",
            "10",
            "--model",
            model.to_str().unwrap(),
            "--corpus",
            default_corpus().to_str().unwrap(),
        ]),
    );
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(summary.contains(";mode=keep-ends;"), "{summary}");
    assert!(!summary.contains("keepends"), "{summary}");
}
