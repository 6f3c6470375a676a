//! Property-based fuzzing of every reader and perturber (issue 16): arbitrary, truncated and
//! mutated input never panics, and every error names the file it came from.

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;

use crate::attack::runner::example_rng;
use crate::data::corpus::{Columns, Corpus};
use crate::data::spans::SpanCorpus;
use crate::onnx::OnnxModel;
use crate::perturb::Perturber;
use crate::perturb::entity_swap::{EntitySwap, NameLexicon, SwapTarget};
use crate::perturb::negation::{Negation, NegationMode};
use crate::perturb::shuffle::{Shuffle, ShuffleMode};

const GOOD_TSV: &str = "sentence\tlabel\nit is a good film\tpositive\nnot bad at all\t0\n";
const GOOD_GAP: &str = "ID\tText\tPronoun\tPronoun-offset\tA\tA-offset\tA-coref\tB\tB-offset\tB-coref\n\
     t-1\tAnn met Bob. She left.\tShe\t13\tAnn\t0\tTRUE\tBob\t8\tFALSE\n";

/// Bytes of `base` with some positions overwritten and the end cut at a drawn length.
fn mutated(base: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        any::<prop::sample::Index>(),
    )
        .prop_map(move |(edits, cut)| {
            let mut bytes = base.to_vec();
            for (at, b) in edits {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] = b;
                }
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            bytes
        })
}

fn lexicon() -> Arc<NameLexicon> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpora/names.tsv");
    Arc::new(NameLexicon::from_path(&path).expect("the committed name lexicon"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn corpus_reader_never_panics(bytes in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        mutated(GOOD_TSV.as_bytes()),
    ], csv in any::<bool>()) {
        let name = if csv { "fuzz.csv" } else { "fuzz.tsv" };
        if let Err(e) = Corpus::parse(Path::new(name), &bytes, &Columns::default()) {
            prop_assert!(e.to_string().contains(name), "{}", e);
        }
    }

    #[test]
    fn span_reader_never_panics(bytes in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        mutated(GOOD_GAP.as_bytes()),
    ]) {
        if let Err(e) = SpanCorpus::parse(Path::new("fuzz-gap.tsv"), &bytes) {
            prop_assert!(e.to_string().contains("fuzz-gap.tsv"), "{}", e);
        }
    }

    #[test]
    fn recipe_and_suite_parsers_never_panic(text in prop_oneof![
        ".{0,120}",
        "(kind|mode|samples|limit|window|negation|models|corpora|max_flip_rate) = (\"shuffle\"|3|-1|0|1e400|\\[\\]|\"x\"|true)\n{0,3}",
    ]) {
        let dir = tempfile::tempdir().unwrap();
        let recipe = dir.path().join("fuzz-recipe.toml");
        std::fs::write(&recipe, &text).unwrap();
        match crate::attack::spec::AttackSpec::from_file(&recipe) {
            Err(e) => prop_assert!(e.to_string().contains("fuzz-recipe.toml"), "{}", e),
            Ok(spec) => {
                if let Err(e) = spec.resolve("fuzz-recipe.toml") {
                    prop_assert!(e.to_string().contains("fuzz-recipe.toml"), "{}", e);
                }
            }
        }
        let suite = dir.path().join("fuzz-suite.toml");
        std::fs::write(&suite, &text).unwrap();
        if let Err(e) = crate::suite::Suite::load(&suite) {
            prop_assert!(e.to_string().contains("fuzz-suite.toml"), "{}", e);
        }
    }

    #[test]
    fn onnx_wire_parser_never_panics(bytes in mutated(bag_model())) {
        let model = OnnxModel::from_bytes(Path::new("fuzz.onnx"), bytes);
        match model.embedding_site() {
            Ok(site) => {
                let _ = model.embedding_matrix(&site);
                let _ = model.with_embedding_input(&site);
            }
            Err(e) => prop_assert!(e.to_string().contains("fuzz.onnx"), "{}", e),
        }
        let _ = model.with_cls_only_tail();
    }

    #[test]
    fn perturbers_never_panic_on_any_text(text in "\\PC{0,80}", seed in any::<u64>()) {
        let perturbers: Vec<Box<dyn Perturber>> = vec![
            Box::new(Shuffle { mode: ShuffleMode::Full, samples: 3 }),
            Box::new(Shuffle { mode: ShuffleMode::Local { window: 2 }, samples: 3 }),
            Box::new(Shuffle { mode: ShuffleMode::KeepEnds, samples: 3 }),
            Box::new(Negation { mode: NegationMode::Auto }),
            Box::new(Negation { mode: NegationMode::Insert }),
            Box::new(Negation { mode: NegationMode::Remove }),
            Box::new(EntitySwap { lexicon: lexicon(), samples: 2, target: SwapTarget::OtherGender }),
        ];
        for p in &perturbers {
            if let Ok(variants) = p.perturb(&text, &mut example_rng(seed, 0)) {
                for v in variants {
                    prop_assert!(!v.text.is_empty() || text.trim().is_empty());
                }
            }
        }
    }
}

/// A small valid ONNX classifier to mutate, built once.
fn bag_model() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| crate::onnx::build::bag_classifier(&[0.5; 8], 4, 2, &[0.25; 4], 2))
}
