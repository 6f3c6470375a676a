//! The inference core on the real default model (issue #2).

use proptest::prelude::*;
use robust::model::Classifier;

use crate::util::*;

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn logits(model: &mut Classifier, texts: &[&str]) -> Vec<Vec<f32>> {
    model
        .predict(texts)
        .expect("predict")
        .into_iter()
        .map(|p| p.logits.to_vec())
        .collect()
}

/// Issue #2: `robust eval` on SST-2 dev stays above the accuracy floor (the model card reports
/// the measured value; 0.85 is the acceptance target).
#[test]
fn eval_on_sst2_dev_is_above_floor() {
    let Some(dev) = shared_file("eval_on_sst2_dev_is_above_floor", "sst2/dev.tsv") else {
        return;
    };
    let model = default_model_dir();
    let out = robust(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--corpus",
        dev.to_str().unwrap(),
        "--format",
        "json",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    let accuracy = report["accuracy"]["value"].as_f64().unwrap();
    assert_eq!(report["n"], 872);
    assert!(accuracy >= 0.85, "accuracy {accuracy} below 0.85");
    let low = report["accuracy"]["ci_low"].as_f64().unwrap();
    let high = report["accuracy"]["ci_high"].as_f64().unwrap();
    assert!(low < accuracy && accuracy < high);
    assert_eq!(report["queries"]["model_queries"], 872);
}

/// The default job: eval on the default corpus built by scripts/setup.
#[test]
fn eval_on_default_corpus_in_every_format() {
    let corpus = default_corpus();
    let model = default_model_dir();
    let base = [
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--corpus",
        corpus.to_str().unwrap(),
        "-q",
    ];
    let table = robust(&base);
    assert!(table.status.success(), "{}", stderr(&table));
    let text = stdout(&table);
    assert!(
        text.contains("accuracy") && text.contains("gold \\ predicted"),
        "{text}"
    );
    let csv = robust(&[&base[..], &["--format", "csv"]].concat());
    let csv_text = stdout(&csv);
    assert!(csv_text.starts_with(
        "model,model_sha256,corpus,corpus_sha256,metric,class,k,n,value,ci_low,ci_high\n"
    ));
    assert!(csv_text.lines().any(|l| l.contains(",accuracy,,")));
    let json = robust(&[&base[..], &["--format", "json"]].concat());
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let accuracy = report["accuracy"]["value"].as_f64().unwrap();
    // Held-out Rotten Tomatoes sentences are harder than SST-2 dev but far above chance.
    assert!(accuracy > 0.75, "accuracy {accuracy} on the default corpus");
}

/// Issue #2: outputs must not depend on the batch size (padding differs between them).
#[test]
fn batch_sizes_give_the_same_logits() {
    let texts = corpus_texts(&default_corpus(), 200);
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let reference = logits(&mut load_default(1, 0), &texts);
    for batch in [8, 64] {
        let got = logits(&mut load_default(batch, 0), &texts);
        for (i, (a, b)) in reference.iter().zip(&got).enumerate() {
            let d = max_abs_diff(a, b);
            assert!(
                d < 1e-4,
                "row {i} differs by {d} between batch 1 and {batch}"
            );
        }
    }
}

/// Issue #7: computing the last layer for [CLS] only (the default) must not move any logit
/// against the graph as exported (`--full-graph`).
#[test]
fn narrowed_tail_gives_the_same_logits_as_the_full_graph() {
    let texts = corpus_texts(&default_corpus(), 200);
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let load = |narrow_tail| {
        let options = robust::model::InferenceOptions {
            batch_size: 16,
            cache_capacity: 0,
            threads: 2,
            narrow_tail,
            ..robust::model::InferenceOptions::default()
        };
        Classifier::load(&default_model_dir(), options).expect("default model loads")
    };
    let full = logits(&mut load(false), &texts);
    let narrowed = logits(&mut load(true), &texts);
    for (i, (a, b)) in full.iter().zip(&narrowed).enumerate() {
        let d = max_abs_diff(a, b);
        assert!(d < 1e-5, "row {i} ({:?}) moved by {d}", texts[i]);
    }
}

/// Issue #7: running batches of short rows on two one-thread sessions side by side gives the
/// same logits, bit for bit, and the same query accounting as one two-thread session. The
/// workers are built only for a large request of mostly short rows; later small requests are
/// split between them; mostly-long requests never use them.
#[test]
fn workers_give_the_same_logits_and_counts_as_one_session() {
    let texts = corpus_texts(&default_corpus(), 3_000);
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let load = |workers| {
        let options = robust::model::InferenceOptions {
            batch_size: 16,
            cache_capacity: 0,
            threads: 2,
            workers: Some(workers),
            ..robust::model::InferenceOptions::default()
        };
        Classifier::load(&default_model_dir(), options).expect("default model loads")
    };
    let (mut one, mut two) = (load(1), load(2));
    let batches = |m: &Classifier| m.stats().batches;

    // 300 rows: not worth building the workers, so the same batches on both.
    assert_eq!(
        logits(&mut one, &texts[..300]),
        logits(&mut two, &texts[..300])
    );
    assert_eq!(batches(&one), batches(&two), "no workers for 300 rows");

    // 3,000 rows, nearly all short: the workers run them.
    assert_eq!(logits(&mut one, &texts), logits(&mut two, &texts));
    // Then 5 rows run as one batch on one session and as 3 + 2 rows on two workers.
    let before = (batches(&one), batches(&two));
    assert_eq!(logits(&mut one, &texts[..5]), logits(&mut two, &texts[..5]));
    assert_eq!(batches(&one) - before.0, 1);
    assert_eq!(batches(&two) - before.1, 2);
    let (a, b) = (one.stats(), two.stats());
    assert_eq!(a.requests, b.requests);
    assert_eq!(a.model_queries, b.model_queries);
    assert_eq!(a.real_tokens, b.real_tokens);

    // Rows over SHORT_ROW_TOKENS run on the all-threads session in full batches, and a
    // request that is mostly such rows keeps its few short ones there too: no split.
    let long: Vec<String> = texts[..40]
        .iter()
        .map(|t| format!("{t} {t} {t} {t} {t}"))
        .collect();
    let mut request: Vec<&str> = long.iter().map(String::as_str).collect();
    request.extend(&texts[..3]);
    let before = (batches(&one), batches(&two));
    assert_eq!(logits(&mut one, &request), logits(&mut two, &request));
    assert_eq!(batches(&one) - before.0, 3, "43 rows in batches of 16");
    assert_eq!(
        batches(&two) - before.1,
        3,
        "a mostly-long request is not split"
    );
}

/// Issue #2: a repeated input is answered from the cache, never by the model again.
#[test]
fn repeats_hit_the_cache() {
    let texts = corpus_texts(&default_corpus(), 50);
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut model = load_default(16, 1000);
    let first = model.predict(&texts).unwrap();
    let after_first = model.stats();
    assert_eq!(after_first.model_queries, 50);
    let second = model.predict(&texts).unwrap();
    let delta = model.stats().since(&after_first);
    assert_eq!(delta.model_queries, 0, "no model queries on repeats");
    assert_eq!(delta.cache_hits, 50);
    assert_eq!(first, second);
    // Duplicates inside one request are run once.
    let mut fresh = load_default(16, 1000);
    fresh
        .predict(&["same text", "same text", "other text"])
        .unwrap();
    assert_eq!(fresh.stats().model_queries, 2);
    assert_eq!(fresh.stats().cache_hits, 1);
}

#[test]
fn long_inputs_are_truncated_and_counted() {
    let mut model = load_default(4, 0);
    let long = "very ".repeat(600) + "good";
    let p = model.predict(&[long.as_str(), "fine"]).unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!(model.stats().truncated, 1);
}

#[test]
fn predict_reads_stdin_and_writes_csv() {
    let model = default_model_dir();
    let out = robust_in(
        &repo(),
        &["predict", "--model", model.to_str().unwrap(), "-q"],
        Some(b"a gorgeous, witty, seductive movie .\n\nthe worst film of the year .\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "text,label,p_negative,p_positive");
    assert_eq!(lines.len(), 3, "blank line skipped: {text}");
    assert!(lines[1].contains(",positive,"), "{text}");
    assert!(lines[2].contains(",negative,"), "{text}");
}

/// Padding and batch composition never change a row's logits (cache off, so every row runs).
mod padding_invariance {
    use super::*;
    use std::sync::{Mutex, OnceLock};

    fn model() -> &'static Mutex<Classifier> {
        static MODEL: OnceLock<Mutex<Classifier>> = OnceLock::new();
        MODEL.get_or_init(|| Mutex::new(load_default(8, 0)))
    }

    fn pool() -> &'static Vec<String> {
        static POOL: OnceLock<Vec<String>> = OnceLock::new();
        POOL.get_or_init(|| corpus_texts(&default_corpus(), 400))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
        #[test]
        fn a_rows_logits_do_not_depend_on_its_batch(
            target in 0usize..400,
            others in prop::collection::vec(0usize..400, 0..40),
            batch in 1usize..48,
        ) {
            let pool = pool();
            let mut model = model().lock().unwrap();
            model.set_batch_size(1);
            let alone = logits(&mut model, &[pool[target].as_str()]).remove(0);
            let mut texts: Vec<&str> = others.iter().map(|&i| pool[i].as_str()).collect();
            let at = others.len() / 2;
            texts.insert(at, pool[target].as_str());
            model.set_batch_size(batch);
            let together = logits(&mut model, &texts);
            let d = max_abs_diff(&alone, &together[at]);
            prop_assert!(d < 1e-4, "logits moved by {} in a batch of {}", d, batch);
        }
    }
}
