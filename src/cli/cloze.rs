//! `robust attack --kind negation --probe cloze`: negation and knowledge probes on a fill-mask
//! model (NEG-136 or robust's general cloze format).

use anyhow::Context;
use robust::attack::recipe::{AttackKind, ResolvedAttack};
use robust::fill_mask::MaskedLm;
use robust::report::Format;
use robust::report::cloze::{ClozeProvenance, examples_csv, summary_csv, table};

use super::attack::AttackArgs;
use super::{GlobalArgs, emit};

pub fn run(
    global: &GlobalArgs,
    args: &AttackArgs,
    attack: &ResolvedAttack,
    k: usize,
) -> anyhow::Result<()> {
    if attack.kind != AttackKind::Negation {
        anyhow::bail!(
            "--probe cloze goes with --kind negation, not --kind {}",
            attack.kind.as_str()
        );
    }
    if k == 0 {
        anyhow::bail!("--top-k must be at least 1");
    }
    let items = robust::cloze::read_items(&attack.corpus)?;
    let items = &items[..items.len().min(attack.limit.unwrap_or(usize::MAX))];
    let mut model = MaskedLm::load(&attack.model, global.inference_options())
        .with_context(|| format!("failed to load model {}", attack.model.display()))?;
    let results = robust::cloze::run(&mut model, items, k)?;
    let scores = robust::cloze::score_all(&results);
    let bytes = std::fs::read(&attack.corpus)
        .with_context(|| format!("failed to read {}", attack.corpus.display()))?;
    let mut parameters = std::collections::BTreeMap::new();
    parameters.insert("probe".to_string(), "cloze".to_string());
    parameters.insert("top_k".to_string(), k.to_string());
    if let Some(limit) = attack.limit {
        parameters.insert("limit".to_string(), limit.to_string());
    }
    let provenance = ClozeProvenance {
        attack: attack.name.clone(),
        model: model.name().to_string(),
        model_sha256: model.sha256()?,
        corpus: attack
            .corpus
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        corpus_sha256: robust::hash::sha256_bytes(&bytes),
        seed: attack.seed,
        parameters,
    };
    if let Some(dir) = &args.out {
        let files = [
            ("examples.csv", examples_csv(&results)?),
            ("summary.csv", summary_csv(&provenance, &scores)?),
        ];
        robust::report::write_all_atomic(dir, &files)
            .with_context(|| format!("failed to write results to {}", dir.display()))?;
    }
    let text = match args.format {
        Format::Csv => summary_csv(&provenance, &scores)?,
        Format::Json => {
            serde_json::to_string_pretty(&serde_json::json!({
                "provenance": {"model": provenance.model, "model_sha256": provenance.model_sha256,
                    "corpus": provenance.corpus, "corpus_sha256": provenance.corpus_sha256},
                "scores": scores,
                "items": results,
            }))? + "\n"
        }
        Format::Table => table(&provenance, &scores, &results),
    };
    emit(None, &text)
}
