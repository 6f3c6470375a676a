//! `robust attack --kind trigger`: search a universal trigger on one split, evaluate it and
//! random triggers of the same length on another, and write the loss curve.

use anyhow::Context;
use robust::attack::recipe::{ResolvedAttack, TriggerSettings};
use robust::attack::runner::Target;
use robust::attack::trigger;
use robust::corpus::{Columns, Corpus};
use robust::model::Classifier;
use robust::report::fixed;

use super::attack::{AttackArgs, Named, new_report, write_results};
use super::{GlobalArgs, emit};

pub fn run(
    _global: &GlobalArgs,
    args: &AttackArgs,
    attack: &ResolvedAttack,
    settings: &TriggerSettings,
    model: &mut Classifier,
    corpus: &Corpus,
    targets: &[Target],
) -> anyhow::Result<()> {
    if corpus.label_column.is_none() {
        anyhow::bail!(
            "{}: a trigger attack needs gold labels (no label column)",
            corpus.path.display()
        );
    }
    if settings.search_corpus == attack.corpus {
        tracing::warn!(
            "searching and evaluating on the same corpus overstates how universal a trigger is"
        );
    }
    let columns = Columns {
        text: args.text_col.clone(),
        label: args.label_col.clone(),
        require_label: true,
    };
    let search = Corpus::read(&settings.search_corpus, &columns)?;
    let before = model.stats();
    let start = std::time::Instant::now();
    let outcome = trigger::run_attack(model, settings, targets, &search, attack.seed, &mut |p| {
        tracing::info!(
            "iteration {:>2}: trigger {:?}, batch loss {:.4}, validation loss {:.4}, {} queries, {:.0} s",
            p.iteration,
            p.trigger,
            p.batch_loss,
            p.validation_loss,
            p.queries,
            p.seconds
        );
    })?;
    let wall_seconds = start.elapsed().as_secs_f64();
    let model_stats = model.stats().since(&before);
    let mut parameters = attack.parameters.clone();
    parameters.insert("trigger".into(), outcome.result.text.clone());
    parameters.insert(
        "search_examples".into(),
        outcome.search_examples.to_string(),
    );
    let labels = model.labels().to_vec();
    let model_sha256 = model.info().sha256()?;
    let searched = new_report(
        model,
        corpus,
        attack,
        &model_sha256,
        Named {
            name: attack.name.clone(),
            parameters: parameters.clone(),
        },
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
        model,
        corpus,
        attack,
        &model_sha256,
        Named {
            name: format!("{}/random-baseline", attack.name),
            parameters: baseline_params,
        },
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
    let json = serde_json::to_string_pretty(&serde_json::json!({
        "trigger": outcome.result,
        "proposals": outcome.proposals,
        "target": outcome.target.map(|t| labels[t].clone()),
        "source": outcome.source.map(|s| labels[s].clone()),
        "search_corpus": search.path,
        "search_corpus_sha256": search.sha256,
        "search_examples": outcome.search_examples,
        "random_triggers": outcome.random_triggers,
        "wall_seconds": wall_seconds,
    }))
    .context("failed to serialise trigger.json")?;
    if let Some(dir) = &args.out {
        write_results(
            dir,
            &[&searched, &baseline],
            &[("loss_curve.csv", curve), ("trigger.json", json + "\n")],
        )?;
    }
    let exporter = args.format.exporter();
    let mut text = format!(
        "trigger   {:?} ({} proposals; search: {} examples of {}, {} queries, {:.1} s)\n\n",
        outcome.result.text,
        format!("{:?}", outcome.proposals).to_lowercase(),
        outcome.search_examples,
        search.name(),
        outcome.result.queries,
        outcome.result.seconds
    );
    text.push_str(&exporter.attack(&searched)?);
    text.push_str("\n--- random triggers of the same length (baseline) ---\n");
    text.push_str(&exporter.attack(&baseline)?);
    emit(None, &text)
}
