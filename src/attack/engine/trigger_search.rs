//! The trigger shape: search a universal trigger on one corpus (or take a given one) and
//! evaluate it, beside random triggers of the same length, on another.

use std::time::Instant;

use super::{
    AttackResult, EngineError, ExecuteOptions, Models, Plan, TriggerFound, finish_reports,
    new_report, read_corpus, record_truncation, targets,
};
use crate::attack::trigger::{self, Checkpoint, ResumeMode, SearchHooks};
use crate::data::corpus::{Columns, Corpus};
use crate::report::{ReportError, fixed};

pub(super) fn trigger_search(
    plan: &Plan,
    models: &mut Models,
    options: &ExecuteOptions,
) -> Result<AttackResult, EngineError> {
    let attack = &plan.attack;
    let settings = attack
        .trigger
        .as_ref()
        .expect("trigger plans carry their settings");
    let corpus = read_corpus(&attack.corpus, &plan.columns)?;
    if corpus.label_column.is_none() {
        return Err(EngineError::Input {
            path: corpus.path.clone(),
            problem: "a trigger attack needs gold labels (no label column)".into(),
        });
    }
    if settings.search_corpus.as_ref() == Some(&attack.corpus) {
        tracing::warn!(
            "searching and evaluating on the same corpus overstates how universal a trigger is"
        );
    }
    let search_columns = Columns {
        require_label: true,
        ..plan.columns.clone()
    };
    let search = match &settings.search_corpus {
        Some(path) => Some(read_corpus(path, &search_columns)?),
        None => None,
    };
    let model_sha = models.sha256(&attack.model)?;
    let model = models.classifier(&attack.model)?;
    model.clear_cache();
    let targets = targets(&corpus, model, attack.limit, plan.segment)?;
    let before = model.stats();
    let start = Instant::now();
    let checkpoint = options.checkpoint.as_ref().map(|dir| Checkpoint {
        dir: dir.clone(),
        mode: options.resume.unwrap_or(ResumeMode::Fresh),
        context: format!(
            "model {model_sha}\ncorpus {}\nsearch {:?}\nseed {}\nlimit {:?}\n{:?}\n{:?}",
            corpus.sha256,
            search.as_ref().map(|c| &c.sha256),
            attack.seed,
            attack.limit,
            attack.parameters,
            model.options().max_len,
        ),
    });
    let trace = options.gradient_trace.as_ref().map(|path| {
        let mut context = serde_json::Map::new();
        context.insert("model".into(), attack.model.display().to_string().into());
        context.insert("source".into(), settings.source.clone().into());
        context.insert("labels".into(), model.labels().to_vec().into());
        trigger::GradientTrace::new(path.clone(), context)
    });
    let outcome = trigger::run_attack(
        model,
        settings,
        &targets,
        search.as_ref(),
        attack.seed,
        SearchHooks { checkpoint, trace },
        &mut |p| {
            tracing::info!(
                "iteration {:>2}: trigger {:?}, batch loss {:.4}, validation loss {:.4}, {} queries, {:.0} s",
                p.iteration,
                p.trigger,
                p.batch_loss,
                p.validation_loss,
                p.queries,
                p.seconds
            );
        },
    )?;
    let wall_seconds = start.elapsed().as_secs_f64();
    let model_stats = model.stats().since(&before);
    let mut parameters = attack.parameters.clone();
    record_truncation(
        &mut parameters,
        &attack.name,
        model.options().max_len,
        model.encoder().max_len(),
        model_stats.truncated,
    );
    parameters.insert("trigger".into(), outcome.result.text.clone());
    parameters.insert(
        "search_examples".into(),
        outcome.search_examples.to_string(),
    );
    let labels = model.labels().to_vec();
    let sha = model_sha;
    let searched = new_report(
        attack,
        attack.name.clone(),
        parameters.clone(),
        model,
        &sha,
        &corpus,
        outcome.searched,
        wall_seconds,
        model_stats,
    );
    let mut baseline_params = parameters;
    baseline_params.insert(
        "random_triggers".into(),
        outcome.random_triggers.join(" | "),
    );
    let baseline = new_report(
        attack,
        format!("{}/random-baseline", attack.name),
        baseline_params,
        model,
        &sha,
        &corpus,
        outcome.baseline,
        wall_seconds,
        model_stats,
    );
    let mut curve = String::from("iteration,trigger,batch_loss,validation_loss,queries\n");
    for p in &outcome.result.curve {
        curve.push_str(&format!(
            "{},\"{}\",{},{},{}\n",
            p.iteration,
            p.trigger.replace('"', "\"\""),
            fixed(p.batch_loss, 6),
            fixed(p.validation_loss, 6),
            p.queries
        ));
    }
    let proposals = crate::attack::spec::value_name(&outcome.proposals);
    // After the reports' model counts are taken: the explanation's own predictions (each
    // trigger word alone) are not part of the attack.
    let explanation = trigger::explain(
        model,
        settings,
        &outcome.trigger_words,
        &outcome.shortlist,
        &outcome.exclusion,
    )?;
    let exclusion_json =
        (!settings.exclude.is_empty() || settings.exclusion.widens()).then_some(&outcome.exclusion);
    let json = serde_json::to_string_pretty(&serde_json::json!({
        "trigger": outcome.result,
        "proposals": outcome.proposals,
        "target": outcome.target.map(|t| labels[t].clone()),
        "source": outcome.source.map(|s| labels[s].clone()),
        "given": settings.given.is_some(),
        "exclude": settings.exclude,
        "exclusion": exclusion_json,
        "explanation": explanation,
        "search_corpus": search.as_ref().map(|c| &c.path),
        "search_corpus_sha256": search.as_ref().map(|c| &c.sha256),
        "search_examples": outcome.search_examples,
        "random_triggers": outcome.random_triggers,
        "wall_seconds": wall_seconds,
    }))
    .map_err(|e| ReportError::Serialise(Box::new(e)))?;
    let found = TriggerFound {
        text: outcome.result.text.clone(),
        proposals,
        search_examples: outcome.search_examples,
        search_corpus: search
            .as_ref()
            .map_or_else(|| "none (given trigger)".into(), Corpus::name),
        queries: outcome.result.queries,
        seconds: outcome.result.seconds,
    };
    finish_reports(
        plan,
        vec![searched, baseline],
        targets.len(),
        sha,
        Some(found),
        vec![
            ("loss_curve.csv".into(), curve),
            ("trigger.json".into(), json + "\n"),
        ],
    )
}
