//! Robustness properties of a model with `robust::prop`, as a program:
//!
//! ```sh
//! cargo run --release --example properties [MODEL_DIR] [CORPUS]
//! ```
//!
//! (defaults: models/sst2-minilm and corpora/rt-snippets.tsv). In a test suite the same calls
//! go inside `#[test]` functions; see tests/integration/properties.rs.

use robust::data::corpus::{Columns, Corpus};
use robust::model::{Classifier, InferenceOptions};
use robust::perturb::negation::NegationMode;
use robust::perturb::shuffle::ShuffleMode;
use robust::prop::{self, Check, Pool, SwapTarget};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model_dir = args.next().unwrap_or_else(|| "models/sst2-minilm".into());
    let corpus = args
        .next()
        .unwrap_or_else(|| "corpora/rt-snippets.tsv".into());
    let mut model = Classifier::load(model_dir.as_ref(), InferenceOptions::default())?;
    let corpus = Corpus::read(corpus.as_ref(), &Columns::default())?;
    let pool = Pool::from_corpus(&corpus, model.info())?;

    // Each check draws 200 seeded cases, runs the model on all of them in one batched call,
    // and fails with the observed rate and a shrunk counter-example below the threshold.
    let swap = prop::name_swap("corpora/names.tsv".as_ref(), SwapTarget::OtherGender)?;
    let checks = [
        (
            "prediction invariant under name swap",
            prop::perturbed(&pool, swap),
            prop::invariant as fn(&prop::Outcome) -> bool,
            0.95,
        ),
        (
            "label moves away from gold under negation",
            prop::perturbed(&pool, prop::negation(NegationMode::Auto)),
            prop::moves_away_from_gold,
            0.28,
        ),
        (
            // Deliberately too strict, to show what a failure looks like.
            "prediction invariant under full shuffle",
            prop::perturbed(&pool, prop::shuffle(ShuffleMode::Full)),
            prop::invariant,
            0.99,
        ),
    ];
    for (name, strategy, holds, min) in checks {
        match Check::new(&mut model)
            .cases(200)
            .seed(13)
            .at_least(name, strategy, holds, min)
        {
            Ok(rate) => println!("ok   {name}: {}", rate.display_percent()),
            Err(e) => println!("FAIL {e}"),
        }
    }
    Ok(())
}
