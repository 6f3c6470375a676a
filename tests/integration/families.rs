//! Every common encoder family, as users export it (issue 15): tiny models of BERT, DistilBERT,
//! RoBERTa (three labels), XLM-R, ELECTRA, ALBERT and DeBERTa-v2, each with its own kind of
//! tokenizer, exported by torch's exporter, one with external data and one int8-quantized
//! (`tests/fixtures/models/`, built by `models/recipes/build_fixtures.py`). For each: the
//! logits match PyTorch's, and every command runs. The README's "Model support" table is this
//! matrix.

use std::path::{Path, PathBuf};

use robust::model::{Classifier, InferenceOptions, Input};

use crate::util::*;

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/models").join(name)
}

fn reference(name: &str) -> serde_json::Value {
    let path = fixture(name).join("reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn load(name: &str) -> Classifier {
    let options = InferenceOptions {
        threads: 1,
        ..InferenceOptions::default()
    };
    Classifier::load(&fixture(name), options).unwrap_or_else(|e| panic!("{name}: {e:#}"))
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn floats(v: &serde_json::Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

fn ids(v: &serde_json::Value) -> Vec<Vec<u32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

fn assert_close(name: &str, what: &str, got: &[f32], want: &[f32], tolerance: f32) {
    assert_eq!(got.len(), want.len(), "{name} {what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= tolerance,
            "{name} {what}: {got:?} vs PyTorch {want:?}"
        );
    }
}

/// Which of ONNX Runtime's int8 kernel paths a reference holds that `first` (the first
/// sentence's logits) matches: `""` for `logits`, `"_vnni"` for `logits_vnni`. Its int8 GEMM
/// sums pairs of u8 x s8 products in int16 with saturation on AVX2 (`vpmaddubsw`) and exactly in
/// int32 with VNNI, so the same graph gives logits up to 0.04 apart by CPU (2026-12-01: an
/// AVX512-VNNI host failed the AVX2 reference, while Python's onnxruntime there gave robust's
/// logits to 1e-7). Every row must then match that one path within 1e-4: a plumbing error
/// matches neither. Float fixtures have one reference.
fn kernel_path(r: &serde_json::Value, first: &[f32]) -> &'static str {
    let near = |key: &str| {
        r.get(key).is_some_and(|v| {
            floats(v)[0]
                .iter()
                .zip(first)
                .all(|(w, g)| (w - g).abs() <= 1e-4)
        })
    };
    if !near("logits") && near("logits_vnni") {
        "_vnni"
    } else {
        ""
    }
}

/// Token ids as PyTorch's tokenizer gave them, and logits within 1e-4 of PyTorch's (of
/// ONNX Runtime's in Python for the int8 model, whose reference is the quantized graph on the
/// same kernel path, see [`kernel_path`]), for single sentences and sentence pairs, through the
/// library and through `robust predict`.
fn matches_reference(name: &str) {
    let r = reference(name);
    let mut model = load(name);
    let sentences = strings(&r["sentences"]);
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let encoded = model.encode(&texts).unwrap();
    for (e, want) in encoded.iter().zip(ids(&r["token_ids"])) {
        assert_eq!(e.input.ids.to_vec(), want, "{name}: token ids");
    }
    let predictions = model.predict(&texts).unwrap();
    let path = kernel_path(&r, &predictions[0].logits);
    let want = floats(&r[format!("logits{path}").as_str()]);
    for (i, p) in predictions.iter().enumerate() {
        assert_close(name, texts[i], &p.logits, &want[i], 1e-4);
    }
    assert!(
        predictions.iter().any(|p| p.label != predictions[0].label),
        "{name}: the fixture should not answer every sentence alike"
    );

    let pairs: Vec<(String, String)> = r["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let p = strings(p);
            (p[0].clone(), p[1].clone())
        })
        .collect();
    let inputs: Vec<Input> = pairs.iter().map(|(a, b)| Input::new(a, Some(b))).collect();
    let want_pairs = floats(&r[format!("pair_logits{path}").as_str()]);
    let got = model.predict_inputs(&inputs, &mut |_, _| {}).unwrap();
    for (i, p) in got.iter().enumerate() {
        assert_close(name, "pair", &p.logits, &want_pairs[i], 1e-4);
    }

    // The CLI prints logits with six decimals.
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("sentences.txt");
    std::fs::write(&input, sentences.join("\n")).unwrap();
    let dir = fixture(name);
    let out = robust(&[
        "predict",
        "--model",
        dir.to_str().unwrap(),
        "--logits",
        "-q",
        input.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{name}: {}", stderr(&out));
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let headers = reader.headers().unwrap().clone();
    let logit_cols: Vec<usize> = headers
        .iter()
        .enumerate()
        .filter(|(_, h)| h.starts_with("logit_"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(logit_cols.len(), want[0].len(), "{name}: {headers:?}");
    for (row, want) in reader.records().zip(&want) {
        let row = row.unwrap();
        let got: Vec<f32> = logit_cols
            .iter()
            .map(|&i| row[i].parse().unwrap())
            .collect();
        assert_close(name, "robust predict", &got, want, 1e-4);
    }
}

fn run_ok(name: &str, what: &str, args: &[&str]) -> String {
    let out = robust(args);
    assert!(
        out.status.success(),
        "{name} {what}: robust {args:?} failed:\n{}",
        stderr(&out)
    );
    stdout(&out)
}

/// eval, shuffle, negation, entity swap and a short trigger search all run; the trigger's
/// `perturbed_text`, fed back through `robust predict`, gives the attacked prediction on every
/// row.
fn every_command_runs(name: &str) {
    let dir = fixture(name);
    let model = dir.to_str().unwrap();
    let corpus = default_corpus();
    let corpus = corpus.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let table = run_ok(
        name,
        "eval",
        &[
            "eval", "--model", model, "--corpus", corpus, "--limit", "60", "-q",
        ],
    );
    assert!(table.contains("accuracy"), "{name}: {table}");
    assert!(
        table.contains(" 60 (0 blank lines skipped)"),
        "{name}: --limit 60: {table}"
    );
    for kind in ["shuffle", "negation", "entity-swap"] {
        let out = tmp.path().join(kind);
        run_ok(
            name,
            kind,
            &[
                "attack",
                "--kind",
                kind,
                "--model",
                model,
                "--corpus",
                corpus,
                "--limit",
                "40",
                "--out",
                out.to_str().unwrap(),
                "-q",
            ],
        );
        assert!(out.join("examples.csv").is_file(), "{name} {kind}");
        assert!(out.join("summary.csv").is_file(), "{name} {kind}");
    }
    let search = repo().join("corpora/rt-snippets-search.tsv");
    let eval = repo().join("corpora/rt-snippets-eval.tsv");
    let out = tmp.path().join("trigger");
    let flags = small_trigger_flags(&[]);
    let mut args = vec![
        "attack",
        "--kind",
        "trigger",
        "--model",
        model,
        "--corpus",
        eval.to_str().unwrap(),
        "--search-corpus",
        search.to_str().unwrap(),
        "--target",
        "negative",
        "--out",
        out.to_str().unwrap(),
        "-q",
    ];
    args.extend(flags.iter().map(String::as_str));
    run_ok(name, "trigger", &args);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("trigger.json")).unwrap()).unwrap();
    let trigger = &json["trigger"];
    // Issue 14, point 6: without an embedding-input graph (the int8 model's table is uint8)
    // the search falls back to random proposals and says so; every other family ranks with
    // HotFlip.
    let expected = if name == "bert-int8" {
        "random"
    } else {
        "hotflip"
    };
    assert_eq!(json["proposals"], expected, "{name}: proposals");
    assert_eq!(
        trigger["ids"].as_array().unwrap().len(),
        3,
        "{name}: {trigger}"
    );
    let text = trigger["text"].as_str().unwrap();
    for marker in ['▁', 'Ġ', '#'] {
        assert!(!text.contains(marker), "{name}: trigger text {text:?}");
    }
    let special = [
        "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", "<s>", "</s>", "<pad>", "<unk>", "<mask>",
    ];
    for token in trigger["tokens"].as_array().unwrap() {
        let token = token.as_str().unwrap();
        assert!(
            !special.contains(&token),
            "{name}: special token {token} in the trigger"
        );
        assert!(!token.starts_with("##"), "{name}: mid-word piece {token}");
    }
    reproduces(name, &dir, &out.join("examples.csv"), tmp.path());
}

/// Feed every `perturbed_text` of `examples` back through `robust predict` and compare labels.
fn reproduces(name: &str, model: &Path, examples: &Path, tmp: &Path) {
    let mut reader = csv::Reader::from_path(examples).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
    let (text_col, label_col) = (col("perturbed_text"), col("perturbed_label"));
    let rows: Vec<(String, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[text_col].to_string(), r[label_col].to_string())
        })
        .filter(|(t, _)| !t.is_empty())
        .collect();
    assert!(rows.len() >= 10, "{name}: {} rows", rows.len());
    let input = tmp.join("perturbed.txt");
    let texts: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    std::fs::write(&input, texts.join("\n")).unwrap();
    let out = run_ok(
        name,
        "predict",
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "-q",
            input.to_str().unwrap(),
        ],
    );
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    let labels: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[1].to_string())
        .collect();
    assert_eq!(labels.len(), rows.len(), "{name}");
    for ((text, want), got) in rows.iter().zip(&labels) {
        assert_eq!(
            got, want,
            "{name}: {text:?} predicted again gives another label"
        );
    }
}

macro_rules! family {
    ($($module:ident => $name:literal),* $(,)?) => {
        $(
            mod $module {
                #[test]
                fn matches_the_pytorch_reference() {
                    super::matches_reference($name);
                }

                #[test]
                fn every_command_runs() {
                    super::every_command_runs($name);
                }
            }
        )*
    };
}

family! {
    bert => "bert",
    distilbert => "distilbert",
    roberta => "roberta",
    xlm_roberta => "xlm-roberta",
    electra => "electra",
    albert => "albert",
    deberta_v2 => "deberta-v2",
    bert_int8 => "bert-int8",
}

/// Issue 15: one long row crashed RoBERTa and XLM-R, whose positions start after the padding
/// index; ALBERT's `tokenizer_config.json` sets a limit below its position table.
#[test]
fn long_inputs_fit_every_family() {
    for (name, limit) in [
        ("bert", 128),
        ("roberta", 126),
        ("xlm-roberta", 128),
        ("albert", 64),
    ] {
        let mut model = load(name);
        assert_eq!(model.info().max_len, limit, "{name}");
        let long = "the film is long and slow but the acting is good ".repeat(40);
        let p = model.predict(&[long.as_str(), "short"]).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(model.stats().truncated, 1, "{name}");
    }
}

/// Issue 15: torch's exporter writes weights to `model.onnx.data`; the narrowed graph and the
/// trigger search's embedding graph, both loaded from memory, failed on it.
#[test]
fn external_data_models_load_everywhere() {
    let external: Vec<&str> = [
        "bert",
        "distilbert",
        "roberta",
        "xlm-roberta",
        "electra",
        "albert",
        "deberta-v2",
    ]
    .into_iter()
    .filter(|n| fixture(n).join("model.onnx.data").is_file())
    .collect();
    assert!(
        !external.is_empty(),
        "at least one fixture keeps external data"
    );
    for name in external {
        let model = load(name);
        let embedded = robust::model::embed::EmbeddingModel::load(model.info(), model.options());
        assert!(embedded.is_ok(), "{name}: {}", embedded.err().unwrap());
        let full = Classifier::load(
            &fixture(name),
            InferenceOptions {
                threads: 1,
                narrow_tail: false,
                ..InferenceOptions::default()
            },
        )
        .unwrap();
        assert_eq!(full.labels(), model.labels());
    }
}

/// Copy a fixture into a temporary folder, to break one of its files.
fn copy_fixture(name: &str, into: &Path) -> PathBuf {
    let dir = into.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    dir
}

/// Rewrite a JSON file of a copied fixture with `change` applied.
fn edit_json(path: &Path, change: impl FnOnce(&mut serde_json::Value)) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    change(&mut value);
    std::fs::write(path, value.to_string()).unwrap();
}

fn predict_fails(dir: &Path) -> String {
    let out = robust_in(
        &repo(),
        &["predict", "--model", dir.to_str().unwrap(), "-q"],
        Some(b"a fine film\n"),
    );
    assert!(!out.status.success(), "{} loaded", dir.display());
    stderr(&out)
}

/// Issue 15: folders that mix two models' files, vocabularies without the special tokens the
/// configs name, and labels that do not fit are refused when the model loads.
#[test]
fn mismatched_model_folders_are_refused_at_load() {
    let tmp = tempfile::tempdir().unwrap();

    let mixed = copy_fixture("bert", tmp.path());
    std::fs::copy(
        fixture("roberta").join("tokenizer.json"),
        mixed.join("tokenizer.json"),
    )
    .unwrap();
    let _ = std::fs::remove_file(mixed.join("tokenizer_config.json"));
    let err = predict_fails(&mixed);
    assert!(
        err.contains("byte-level BPE tokenizer, but config.json says the model is bert"),
        "{err}"
    );

    let pad = copy_fixture("roberta", &tmp.path().join("pad"));
    edit_json(&pad.join("config.json"), |config| {
        config["pad_token_id"] = serde_json::json!(999_999);
        config["max_position_embeddings"] = serde_json::json!(2_000_000);
    });
    let err = predict_fails(&pad);
    assert!(err.contains("names pad_token_id 999999"), "{err}");

    let mask = copy_fixture("albert", &tmp.path().join("mask"));
    edit_json(&mask.join("tokenizer_config.json"), |tc| {
        tc["mask_token"] = serde_json::json!("[NOMASK]");
    });
    let err = predict_fails(&mask);
    assert!(err.contains("names mask_token \"[NOMASK]\""), "{err}");

    let labels = copy_fixture("bert", &tmp.path().join("labels"));
    edit_json(&labels.join("config.json"), |config| {
        config["id2label"] = serde_json::json!({"0": "negative", "1": "neutral", "2": "positive"});
    });
    let err = predict_fails(&labels);
    assert!(err.contains("labels"), "{err}");
}

/// Issue 15: a 0/1-labelled corpus on a negative/neutral/positive model read "1" as neutral.
#[test]
fn index_labels_that_do_not_fit_the_model_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("binary.tsv");
    std::fs::write(&corpus, "sentence\tlabel\na fine film\t1\na dull film\t0\n").unwrap();
    let roberta = fixture("roberta");
    let out = robust(&[
        "eval",
        "--model",
        roberta.to_str().unwrap(),
        "--corpus",
        corpus.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("1 would mean \"neutral\""), "{err}");
    // On a two-label model the same corpus is fine.
    let bert = fixture("bert");
    run_ok(
        "bert",
        "eval",
        &[
            "eval",
            "--model",
            bert.to_str().unwrap(),
            "--corpus",
            corpus.to_str().unwrap(),
            "-q",
        ],
    );
}

/// Sentence pairs (`--pair-col`): eval feeds both segments; an attack perturbs the segment it
/// is told to, says so in examples.csv, and every row reproduces through `predict --pairs`.
#[test]
fn sentence_pair_corpora_run_and_reproduce() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("pairs.tsv");
    let rows = [
        (
            "The film is good.",
            "It is not a waste of time.",
            "positive",
        ),
        (
            "The plot is dull.",
            "The acting is wooden and it drags.",
            "negative",
        ),
        (
            "A warm and funny story.",
            "Emily loved every minute of it.",
            "positive",
        ),
        (
            "The pacing is slow.",
            "James is bored by the second act.",
            "negative",
        ),
        (
            "It is a charming film.",
            "The cast is wonderful.",
            "positive",
        ),
        (
            "The script is weak.",
            "It never finds its tone.",
            "negative",
        ),
    ];
    let mut text = String::from("premise\thypothesis\tlabel\n");
    for (a, b, l) in rows {
        text.push_str(&format!("{a}\t{b}\t{l}\n"));
    }
    std::fs::write(&corpus, text).unwrap();
    let model = fixture("bert");
    let model = model.to_str().unwrap();
    let corpus = corpus.to_str().unwrap();
    run_ok(
        "bert",
        "eval pairs",
        &[
            "eval",
            "--model",
            model,
            "--corpus",
            corpus,
            "--text-col",
            "premise",
            "--pair-col",
            "hypothesis",
            "-q",
        ],
    );
    let out = tmp.path().join("negation");
    run_ok(
        "bert",
        "negation pairs",
        &[
            "attack",
            "--kind",
            "negation",
            "--model",
            model,
            "--corpus",
            corpus,
            "--text-col",
            "premise",
            "--pair-col",
            "hypothesis",
            "--segment",
            "second",
            "--out",
            out.to_str().unwrap(),
            "-q",
        ],
    );
    let mut reader = csv::Reader::from_path(out.join("examples.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |n: &str| {
        headers
            .iter()
            .position(|h| h == n)
            .unwrap_or_else(|| panic!("{n}: {headers:?}"))
    };
    let (segment, other, perturbed, label) = (
        col("segment"),
        col("other_segment"),
        col("perturbed_text"),
        col("perturbed_label"),
    );
    let mut lines = Vec::new();
    let mut want = Vec::new();
    for r in reader.records() {
        let r = r.unwrap();
        assert_eq!(&r[segment], "second");
        if r[perturbed].is_empty() {
            continue;
        }
        // The premise is left alone; the hypothesis is what was negated.
        assert!(
            rows.iter().any(|(a, _, _)| *a == &r[other]),
            "{:?}",
            &r[other]
        );
        lines.push(format!("{}\t{}", &r[other], &r[perturbed]));
        want.push(r[label].to_string());
    }
    assert!(want.len() >= 4, "{want:?}");
    let input = tmp.path().join("again.tsv");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let again = run_ok(
        "bert",
        "predict --pairs",
        &[
            "predict",
            "--model",
            model,
            "--pairs",
            "-q",
            input.to_str().unwrap(),
        ],
    );
    let mut reader = csv::Reader::from_reader(again.as_bytes());
    let got: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[2].to_string())
        .collect();
    assert_eq!(got, want);

    // A trigger search on pairs is refused, naming the model and the reason.
    let out = robust(&[
        "attack",
        "--kind",
        "trigger",
        "--model",
        model,
        "--corpus",
        corpus,
        "--text-col",
        "premise",
        "--pair-col",
        "hypothesis",
        "--search-corpus",
        corpus,
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("sentence pairs") && err.contains("bert"),
        "{err}"
    );
}
