//! Coreference models (a classifier plus an `input.toml` span template) in `robust eval`: the
//! command detects such a model and comes here, so users run the same command on GAP-format
//! rows as on sentences. (`robust attack` reaches them through the library's engine.)

use std::path::Path;

use anyhow::Context;
use robust::data::spans::SpanCorpus;
use robust::model::coref::CorefModel;
use robust::report::Format;
use robust::score::gap::CorefEval;

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
    limit: Option<usize>,
) -> anyhow::Result<()> {
    let corpus = read_rows(corpus_path)?;
    let mut model = load(global, model_dir)?;
    let start = std::time::Instant::now();
    let rows: Vec<_> = corpus
        .rows
        .iter()
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    let mut bar = Progress::new("eval");
    let resolutions = model.resolve(&rows, &mut |d, t| bar.update(d, t))?;
    bar.finish();
    let (overall, by_gender, bias) = robust::score::gap::evaluate(&rows, &resolutions);
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
