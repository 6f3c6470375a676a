//! Bad input gets a clear error naming the file, line and problem, a non-zero exit, and no
//! output file (issue #2).

use std::path::Path;

use crate::util::*;

fn eval_on(
    corpus_bytes: &[u8],
    name: &str,
    extra: &[&str],
) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join(name);
    std::fs::write(&corpus, corpus_bytes).unwrap();
    let model = default_model_dir();
    let out_file = dir.path().join("report.csv");
    let mut args = vec![
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--corpus",
        corpus.to_str().unwrap(),
        "--format",
        "csv",
        "--out",
        out_file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = robust(&args);
    (out, dir)
}

fn assert_fails_with(out: &std::process::Output, dir: &Path, expected: &str) {
    assert!(!out.status.success(), "expected failure, got success");
    let err = stderr(out);
    assert!(err.contains(expected), "stderr lacks {expected:?}:\n{err}");
    assert!(
        !dir.join("report.csv").exists(),
        "no output is written on error"
    );
}

#[test]
fn missing_column() {
    let (out, dir) = eval_on(b"sentence\tgold\ngood\t1\n", "c.tsv", &[]);
    assert_fails_with(&out, dir.path(), "c.tsv:1: no column named \"label\"");
    let (out, dir) = eval_on(
        b"sentence\tlabel\ngood\t1\n",
        "c.tsv",
        &["--text-col", "review"],
    );
    assert_fails_with(&out, dir.path(), "c.tsv:1: no column named \"review\"");
}

#[test]
fn unknown_label() {
    let (out, dir) = eval_on(b"text\tlabel\ngood\tpositive\nmeh\tneutral\n", "c.tsv", &[]);
    assert_fails_with(&out, dir.path(), "c.tsv:3: unknown label \"neutral\"");
}

#[test]
fn ragged_row() {
    let (out, dir) = eval_on(b"text,label\ngood,1\n\"bad\",0,extra\n", "c.csv", &[]);
    assert_fails_with(
        &out,
        dir.path(),
        "c.csv:3: row has 3 fields, the header has 2",
    );
}

#[test]
fn invalid_utf8() {
    let (out, dir) = eval_on(b"text\tlabel\ngood\t1\nbad \xff\t0\n", "c.tsv", &[]);
    assert_fails_with(&out, dir.path(), "c.tsv:3: invalid UTF-8");
}

#[test]
fn empty_file() {
    let (out, dir) = eval_on(b"", "c.tsv", &[]);
    assert_fails_with(&out, dir.path(), "c.tsv: the file is empty");
}

#[test]
fn blank_lines_are_skipped_and_counted() {
    let (out, dir) = eval_on(
        b"text\tlabel\ngreat fun\t1\n\n\ndull and lifeless\t0\n",
        "c.tsv",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = std::fs::read_to_string(dir.path().join("report.csv")).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.contains(",accuracy,,") && l.contains(",2,")),
        "{csv}"
    );
    assert!(stderr(&out).contains("blank_lines=2"), "{}", stderr(&out));
}

#[test]
fn missing_model_folder() {
    let out = robust(&["predict", "--model", "no/such/model", "-q"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("model folder no/such/model has no model.onnx"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn model_folder_without_labels() {
    let dir = tempfile::tempdir().unwrap();
    let src = default_model_dir();
    for f in ["model.onnx", "tokenizer.json"] {
        std::os::unix::fs::symlink(src.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(
        dir.path().join("config.json"),
        b"{\"model_type\": \"bert\"}",
    )
    .unwrap();
    let out = robust(&["predict", "--model", dir.path().to_str().unwrap(), "-q"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no id2label"), "{}", stderr(&out));
}

#[test]
fn missing_runtime_library_is_an_error_not_a_panic() {
    let out = robust(&[
        "predict",
        "--model",
        default_model_dir().to_str().unwrap(),
        "--ort-lib",
        "/nonexistent/libonnxruntime.so",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(
            "onnx runtime library /nonexistent/libonnxruntime.so (from --ort-lib) does not exist"
        ),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn predict_names_the_bad_line_of_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, b"fine\nbroken \xc3\x28\n").unwrap();
    let out = robust(&[
        "predict",
        "--model",
        default_model_dir().to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("in.txt:2: invalid UTF-8"),
        "{}",
        stderr(&out)
    );
}
