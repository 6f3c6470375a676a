//! Cloze probes on a fill-mask model (Ettinger's negation items).

use super::*;

pub(super) fn cloze_probe(plan: &Plan, models: &mut Models) -> Result<AttackResult, EngineError> {
    use crate::report::cloze::{examples_csv, summary_csv};
    let attack = &plan.attack;
    let items = crate::attack::cloze::read_items(&attack.corpus)?;
    let items = &items[..items.len().min(attack.limit.unwrap_or(usize::MAX))];
    let model_sha256 = models.sha256(&attack.model)?;
    let model = models.masked_lm(&attack.model)?;
    let before = model.stats();
    let start = Instant::now();
    let results =
        crate::attack::cloze::run(model, items, plan.top_k).map_err(|source| EngineError::Run {
            dir: attack.model.clone(),
            source,
        })?;
    let wall_seconds = start.elapsed().as_secs_f64();
    let model_stats = model.stats().since(&before);
    let scores = crate::attack::cloze::score_all(&results);
    let corpus_sha256 =
        crate::hash::sha256_file(&attack.corpus).map_err(|e| EngineError::Input {
            path: attack.corpus.clone(),
            problem: format!("cannot read ({e})"),
        })?;
    let mut parameters = BTreeMap::new();
    parameters.insert("probe".to_string(), "cloze".to_string());
    parameters.insert("top_k".to_string(), plan.top_k.to_string());
    if let Some(limit) = attack.limit {
        parameters.insert("limit".to_string(), limit.to_string());
    }

    let provenance = ClozeProvenance {
        attack: attack.name.clone(),
        model: model.name().to_string(),
        model_sha256: model_sha256.clone(),
        corpus: attack
            .corpus
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        corpus_sha256,
        seed: attack.seed,
        parameters,
    };
    let files = vec![
        ("examples.csv".to_string(), examples_csv(&results)?),
        (
            "summary.csv".to_string(),
            summary_csv(&provenance, &scores)?,
        ),
    ];
    Ok(AttackResult {
        name: attack.name.clone(),
        kind: attack.kind,
        shape: plan.shape,
        reports: Vec::new(),
        failures: cloze_failures(&results),
        cloze: Some(ClozeOutcome {
            provenance,
            scores,
            results,
        }),
        trigger: None,
        files,
        staged: Vec::new(),
        rows: items.len(),
        wall_seconds,
        model_stats,
        model_sha256,
    })
}

/// Cloze items whose top-1 word did not change when the template was negated: the model
/// ignored the negation. Ranked by the top-1 word's probability in the negated template.
pub(super) fn cloze_failures(results: &[ItemResult]) -> Vec<FailureExample> {
    let mut found: Vec<(f64, FailureExample)> = results
        .iter()
        .filter(|r| r.top1_unchanged() == Some(true))
        .filter_map(|r| {
            let (aff_word, aff_lp) = r.top_aff.first()?;
            let (neg_word, neg_lp) = r.top_neg.first()?;
            let it = &r.item;
            Some((
                f64::from(*neg_lp),
                FailureExample {
                    line: it.line,
                    group: it.group.clone().unwrap_or_else(|| "all".into()),
                    gold: it.negated_answer.clone(),
                    original_text: it.template.clone(),
                    perturbed_text: it.negated.clone().unwrap_or_default(),
                    detail: format!("item {}", it.id),
                    original_label: aff_word.clone(),
                    original_confidence: f64::from(aff_lp.exp()),
                    perturbed_label: neg_word.clone(),
                    perturbed_confidence: f64::from(neg_lp.exp()),
                    why: "same top-1 word with and without negation".into(),
                },
            ))
        })
        .collect();
    found.sort_by(|a, b| b.0.total_cmp(&a.0));
    found.into_iter().map(|(_, e)| e).collect()
}
