//! Issue #8: cloze probes on the committed fill-mask model, NEG-136 from the shared data and the
//! general probe format, multi-piece scoring, and refusing the wrong kind of model.

use std::path::PathBuf;

use robust::attack::cloze::{fill_template, score_completions};
use robust::model::InferenceOptions;
use robust::model::fill_mask::MaskedLm;

use crate::util::*;

fn mlm() -> PathBuf {
    repo().join("models/minilm-mlm")
}

fn load_mlm() -> MaskedLm {
    MaskedLm::load(
        &mlm(),
        InferenceOptions {
            threads: 2,
            ..InferenceOptions::default()
        },
    )
    .expect("the masked LM loads")
}

fn probe(corpus: &str, out: &std::path::Path) -> String {
    let model = mlm();
    let args = [
        "attack",
        "--kind",
        "negation",
        "--probe",
        "cloze",
        "--model",
        model.to_str().unwrap(),
        "--corpus",
        corpus,
        "--out",
        out.to_str().unwrap(),
        "-q",
    ];
    let result = robust(&args);
    assert!(result.status.success(), "{}", stderr(&result));
    stdout(&result)
}

fn metric(dir: &std::path::Path, group: &str, name: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    for row in rdr.records() {
        let row = row.unwrap();
        if &row[2] == group && &row[3] == name {
            return (row[5].parse().unwrap(), row[6].parse().unwrap());
        }
    }
    panic!("no {group}/{name} in summary.csv:\n{text}");
}

#[test]
fn neg136_simp_and_nat_from_the_cli() {
    let Some(dir) = shared_file("neg136_simp_and_nat_from_the_cli", "neg136") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let table = probe(dir.join("NEG-136-SIMP.tsv").to_str().unwrap(), out.path());
    assert!(
        table.contains("true completion preferred, negated"),
        "{table}"
    );
    assert_eq!(
        metric(out.path(), "all", "true_preferred_affirmative").1,
        18
    );
    assert_eq!(metric(out.path(), "all", "true_preferred_negated").1, 18);
    assert_eq!(metric(out.path(), "all", "top1_unchanged").1, 18);
    let examples = std::fs::read_to_string(out.path().join("examples.csv")).unwrap();
    // Determiner selection: "An ant is (a|an)" is scored as "an insect" in the CSV's template
    // column only through the template; the completion column holds the word.
    assert!(examples.contains("insect"), "{examples}");

    let nat = tempfile::tempdir().unwrap();
    probe(dir.join("NEG-136-NAT.tsv").to_str().unwrap(), nat.path());
    let (_, licensed) = metric(nat.path(), "licensed", "true_preferred_affirmative");
    let (_, unlicensed) = metric(nat.path(), "unlicensed", "true_preferred_affirmative");
    assert!(licensed > 0 && unlicensed > 0 && licensed + unlicensed >= 16);
}

#[test]
fn general_probe_format_runs_without_shared_data() {
    let out = tempfile::tempdir().unwrap();
    let corpus = repo().join("corpora/cloze/knowledge.tsv");
    probe(corpus.to_str().unwrap(), out.path());
    let (_, n) = metric(out.path(), "all", "answer_in_topk");
    assert_eq!(n, 16);
    let (_, n) = metric(out.path(), "capital", "top1_unchanged");
    assert_eq!(n, 5);
}

/// A completion of several pieces scores as the sum over left-to-right filled masks, not as
/// its first piece alone.
#[test]
fn multi_piece_completions_are_scored_whole() {
    let mut model = load_mlm();
    let word = "vegetables";
    let template = "A carrot is one of the [MASK].";
    let enc = model.encoder().encode_batch(&[word]).unwrap();
    let ids = enc[0].input.ids.to_vec();
    let pieces = &ids[1..ids.len() - 1];
    // Pick a word that really splits; fall back to a rarer one if the vocabulary has it whole.
    let (word, pieces) = if pieces.len() >= 2 {
        (word.to_string(), pieces.to_vec())
    } else {
        let w = "aubergines".to_string();
        let e = model.encoder().encode_batch(&[w.as_str()]).unwrap();
        let ids = e[0].input.ids.to_vec();
        (w, ids[1..ids.len() - 1].to_vec())
    };
    assert!(pieces.len() >= 2, "{word} should be several WordPieces");
    let got = score_completions(&mut model, &[(template, word.as_str())]).unwrap()[0];

    // By hand: one mask per piece, fill left to right.
    let text = fill_template(template, &word, pieces.len());
    let base = model.encoder().encode_batch(&[text.as_str()]).unwrap()[0]
        .input
        .clone();
    let slots: Vec<usize> = base
        .ids
        .iter()
        .enumerate()
        .filter(|&(_, &id)| id == model.mask_id())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(slots.len(), pieces.len());
    let mut expected = 0.0;
    let mut ids = base.ids.to_vec();
    for (j, &piece) in pieces.iter().enumerate() {
        let input = robust::model::tokenize::TokenIds {
            ids: ids.clone().into_boxed_slice(),
            type_ids: base.type_ids.clone(),
        };
        let lp = model.mask_log_probs(&[input]).unwrap();
        expected += lp[0][0][piece as usize];
        ids[slots[j]] = piece;
    }
    assert!((got - expected).abs() < 1e-4, "{got} vs {expected}");
    let first_only = {
        let input = robust::model::tokenize::TokenIds {
            ids: base.ids.clone(),
            type_ids: base.type_ids.clone(),
        };
        model.mask_log_probs(&[input]).unwrap()[0][0][pieces[0] as usize]
    };
    assert!(
        got < first_only,
        "the whole word is less likely than its first piece"
    );
}

#[test]
fn kinds_are_refused_with_a_clear_message() {
    let out = robust(&[
        "eval",
        "--model",
        mlm().to_str().unwrap(),
        "--corpus",
        default_corpus().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is a fill-mask (masked-LM) model; this command needs a classifier"),
        "{}",
        stderr(&out)
    );
    let corpus = repo().join("corpora/cloze/knowledge.tsv");
    let out = robust(&[
        "attack",
        "--kind",
        "negation",
        "--probe",
        "cloze",
        "--model",
        default_model_dir().to_str().unwrap(),
        "--corpus",
        corpus.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is a classifier; this command needs a fill-mask"),
        "{}",
        stderr(&out)
    );
}
