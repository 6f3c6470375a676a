//! The embedding-input graph built from an unmodified export (issue #4's gradient-free search
//! stands on it) must compute exactly what the original computes.

use proptest::prelude::*;
use robust::model::embed::{EmbeddedRow, EmbeddingModel};
use robust::model::{InferenceOptions, ModelInfo};
use std::sync::{Mutex, OnceLock};

use crate::util::*;

fn models() -> &'static Mutex<(robust::model::Classifier, EmbeddingModel)> {
    static M: OnceLock<Mutex<(robust::model::Classifier, EmbeddingModel)>> = OnceLock::new();
    M.get_or_init(|| {
        let classifier = load_default(16, 0);
        let info = ModelInfo::read(&default_model_dir()).unwrap();
        let options = InferenceOptions {
            batch_size: 16,
            threads: 2,
            ..InferenceOptions::default()
        };
        let embedded =
            EmbeddingModel::load(&info, &options).expect("embedding graph builds from the export");
        Mutex::new((classifier, embedded))
    })
}

fn pool() -> &'static Vec<String> {
    static POOL: OnceLock<Vec<String>> = OnceLock::new();
    POOL.get_or_init(|| corpus_texts(&default_corpus(), 300))
}

#[test]
fn table_matches_the_tokenizer_vocabulary() {
    let guard = models().lock().unwrap();
    let (classifier, embedded) = &*guard;
    assert_eq!(embedded.vocab(), classifier.encoder().vocab_size());
    assert_eq!(embedded.hidden(), 384);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, .. ProptestConfig::default() })]
    #[test]
    fn same_logits_as_the_original_graph(picks in prop::collection::vec(0usize..300, 1..24)) {
        let texts: Vec<&str> = picks.iter().map(|&i| pool()[i].as_str()).collect();
        let mut guard = models().lock().unwrap();
        let (classifier, embedded) = &mut *guard;
        let encoded = classifier.encode(&texts).unwrap();
        let inputs: Vec<_> = encoded.iter().map(|e| e.input.clone()).collect();
        let reference = classifier.predict_ids(&inputs, &mut |_, _| {}).unwrap();
        let rows: Vec<EmbeddedRow> = inputs
            .iter()
            .map(|t| EmbeddedRow { ids: t.ids.to_vec(), type_ids: t.type_ids.to_vec(), embeddings: embedded.embed(&t.ids) })
            .collect();
        let got = embedded.logits(&rows).unwrap();
        for (r, g) in reference.iter().zip(&got) {
            for (a, b) in r.logits.iter().zip(g) {
                prop_assert!((a - b).abs() < 1e-4, "{} vs {}", a, b);
            }
        }
    }
}
