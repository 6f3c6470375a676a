//! Coreference models (a classifier plus an `input.toml` span template) in `robust eval` and
//! `robust attack`: the commands detect such a model and come here, so users run the same
//! commands on GAP-format rows as on sentences.

use std::path::Path;

use anyhow::Context;
use robust::attack::name_swap;
use robust::attack::recipe::{AttackKind, ResolvedAttack};
use robust::coref::{CorefEval, CorefModel};
use robust::report::Format;
use robust::score::AttackReport;
use robust::spans::SpanCorpus;

use super::attack::{AttackArgs, write_results};
use super::{GlobalArgs, emit, progress::Progress};

fn load(global: &GlobalArgs, dir: &Path) -> anyhow::Result<CorefModel> {
    let classifier = global.load_classifier(dir)?;
    CorefModel::new(classifier).with_context(|| format!("failed to load model {}", dir.display()))
}

fn read_rows(path: &Path) -> anyhow::Result<SpanCorpus> {
    if !SpanCorpus::sniff(path) && path.is_file() {
        anyhow::bail!(
            "{}: line 1: a coreference model needs GAP-format rows (columns Text, Pronoun, Pronoun-offset, A, A-offset, B, B-offset)",
            path.display()
        );
    }
    Ok(SpanCorpus::read(path)?)
}

/// `robust eval` on a coreference model: accuracy and GAP's F1, overall and by pronoun gender.
pub fn eval(
    global: &GlobalArgs,
    model_dir: &Path,
    corpus_path: &Path,
    format: Format,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let corpus = read_rows(corpus_path)?;
    let mut model = load(global, model_dir)?;
    let start = std::time::Instant::now();
    let rows: Vec<_> = corpus.rows.iter().collect();
    let mut bar = Progress::new("eval");
    let resolutions = model.resolve(&rows, &mut |d, t| bar.update(d, t))?;
    bar.finish();
    let (overall, by_gender, bias) = robust::coref::evaluate(&rows, &resolutions);
    let info = model.classifier.info();
    let report = CorefEval {
        model: info.name.clone(),
        model_sha256: info.sha256()?,
        corpus: corpus.name(),
        corpus_sha256: corpus.sha256.clone(),
        overall,
        by_gender,
        bias,
        truncated_inputs: model.classifier.stats().truncated,
        wall_seconds: start.elapsed().as_secs_f64(),
    };
    let text = match format {
        Format::Table => robust::report::coref::table(&report),
        Format::Csv => robust::report::coref::csv(&report)?,
        Format::Json => robust::report::coref::json(&report)?,
    };
    emit(out, &text)
}

/// `robust attack --kind entity-swap` on a coreference model and GAP-format rows.
pub fn attack(
    global: &GlobalArgs,
    args: &AttackArgs,
    attack: &ResolvedAttack,
) -> anyhow::Result<()> {
    if attack.kind != AttackKind::EntitySwap {
        anyhow::bail!(
            "model {} resolves pronouns from span rows; only --kind entity-swap applies to it, not {}",
            attack.model.display(),
            attack.kind.as_str()
        );
    }
    let swap = attack.name_swap.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "{} not found: name swaps on span rows need the name-frequency table (run from the repository root, or set name_frequency / --name-frequency)",
            robust::attack::recipe::DEFAULT_NAME_FREQUENCY
        )
    })?;
    let corpus = read_rows(&attack.corpus)?;
    let mut model = load(global, &attack.model)?;
    let rows = &corpus.rows[..corpus.rows.len().min(attack.limit.unwrap_or(usize::MAX))];
    let mut bar = Progress::new(&attack.name);
    let run = name_swap::run(&mut model, rows, swap, attack.seed, &mut |d, t| {
        bar.update(d, t)
    })?;
    bar.finish();
    let mut parameters = attack.parameters.clone();
    parameters.insert("condition".into(), swap.condition.as_str().into());
    parameters.insert(
        "replace".into(),
        format!("{:?}", swap.replace).to_lowercase(),
    );
    // Recipe swap names that only make sense for sentences are replaced by the condition.
    parameters.remove("swap");
    let scores = name_swap::score_breakdown(&run);
    let info = model.classifier.info();
    let report = AttackReport {
        scores,
        attack: attack.name.clone(),
        kind: attack.kind.as_str().to_string(),
        model: info.name.clone(),
        model_sha256: info.sha256()?,
        corpus: corpus.name(),
        corpus_sha256: corpus.sha256.clone(),
        seed: attack.seed,
        robust_version: robust::VERSION.to_string(),
        parameters,
        labels: run.labels.clone(),
        outcomes: run.outcomes,
        wall_seconds: run.wall_seconds,
        model_stats: run.queries,
    };
    if let Some(dir) = &args.out {
        write_results(dir, &[&report], &[])?;
    }
    emit(None, &args.format.exporter().attack(&report)?)
}
