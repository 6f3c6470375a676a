//! Span swaps: candidates of coreference rows renamed, offsets recomputed, the pronoun
//! resolved again.

use super::*;

pub(super) fn span_swap(
    plan: &Plan,
    models: &mut Models,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<AttackResult, EngineError> {
    let attack = &plan.attack;
    let swap: &SpanNameSwap = attack
        .name_swap
        .as_ref()
        .expect("plan() checks that span swaps have their frequency table");
    if !SpanCorpus::sniff(&attack.corpus) && attack.corpus.is_file() {
        return Err(EngineError::Input {
            path: attack.corpus.clone(),
            problem: "line 1: a coreference model needs GAP-format rows (columns Text, Pronoun, \
                      Pronoun-offset, A, A-offset, B, B-offset)"
                .into(),
        });
    }
    let corpus = SpanCorpus::read(&attack.corpus)?;
    let sha = models.sha256(&attack.model)?;
    let model = models.coref(&attack.model)?;
    model.classifier.clear_cache();
    let rows = &corpus.rows[..corpus.rows.len().min(attack.limit.unwrap_or(usize::MAX))];
    let run = name_swap::run(model, rows, swap, attack.seed, progress).map_err(|source| {
        EngineError::Run {
            dir: attack.model.clone(),
            source,
        }
    })?;
    let mut parameters = attack.parameters.clone();
    parameters.insert("condition".into(), swap.condition.as_str().into());
    parameters.insert(
        "replace".into(),
        crate::attack::spec::value_name(&swap.replace),
    );
    // Recipe swap names that only make sense for sentences are replaced by the condition.
    parameters.remove("swap");
    record_truncation(
        &mut parameters,
        &attack.name,
        model.classifier.options().max_len,
        model.classifier.encoder().max_len(),
        run.queries.truncated,
    );
    let scores = name_swap::score_breakdown(&run);
    let info = model.classifier.info();
    let report = AttackReport {
        scores,
        provenance: Provenance {
            attack: attack.name.clone(),
            kind: attack.kind.as_str().to_string(),
            model: info.name.clone(),
            model_sha256: sha.clone(),
            corpus: corpus.name(),
            corpus_sha256: corpus.sha256.clone(),
            seed: attack.seed,
            robust_version: crate::VERSION.to_string(),
            parameters,
            labels: run.labels.clone(),
        },
        outcomes: run.outcomes,
        wall_seconds: run.wall_seconds,
        model_stats: run.queries,
    };
    finish_reports(plan, vec![report], rows.len(), sha, None, Vec::new())
}
