//! `robust attack`: run one attack from a recipe and/or flags, print the scores, and write
//! `examples.csv` and `summary.csv`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use robust::attack::recipe::{
    AttackKind, AttackSpec, NegationModeName, PositionName, ProbeName, ProposalsName, ReplaceName,
    ShuffleModeName, SwapTargetName,
};
use robust::attack::runner::{self, Target};
use robust::corpus::Columns;
use robust::report::Format;
use robust::score::{AttackReport, score};

use super::{GlobalArgs, emit, progress::Progress};

#[derive(Debug, Args)]
pub struct AttackArgs {
    /// Recipe file (attacks/*.toml); flags given here override its fields.
    #[arg(long, value_name = "FILE")]
    pub recipe: Option<PathBuf>,
    /// Attack kind.
    #[arg(long, value_enum)]
    pub kind: Option<AttackKind>,
    /// Name used in reports [default: the kind].
    #[arg(long)]
    pub name: Option<String>,
    /// Model folder: model.onnx, tokenizer.json and config.json (id2label).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Corpus: TSV or CSV with a header; a label column, when present, enables accuracy metrics.
    #[arg(long, value_name = "FILE")]
    pub corpus: Option<PathBuf>,
    /// Column holding the text [default: `sentence`, else `text`].
    #[arg(long, value_name = "NAME")]
    pub text_col: Option<String>,
    /// Column holding the gold label [default: `label`, if present].
    #[arg(long, value_name = "NAME")]
    pub label_col: Option<String>,
    /// Attack only the first N rows.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Variants per sentence [default: 10 for shuffle, 5 for entity-swap].
    #[arg(long, value_name = "N")]
    pub samples: Option<usize>,
    /// Shuffle mode [default: full].
    #[arg(long, value_enum)]
    pub mode: Option<ShuffleModeName>,
    /// Window size for `--mode local` [default: 3].
    #[arg(long, value_name = "K")]
    pub window: Option<usize>,
    /// Negation direction [default: auto].
    #[arg(long, value_enum)]
    pub negation: Option<NegationModeName>,
    /// Name lexicon for entity swaps [default: corpora/names.tsv].
    #[arg(long, value_name = "FILE")]
    pub names: Option<PathBuf>,
    /// Which names replace a name [default: other-gender]. On coreference rows the gender is
    /// relative to the pronoun.
    #[arg(long, value_enum)]
    pub swap: Option<SwapTargetName>,
    /// Negation on a fill-mask model: run the cloze probe (NEG-136 or corpora/cloze/ format).
    #[arg(long, value_enum)]
    pub probe: Option<ProbeName>,
    /// Cloze probe: words listed per template [default: 5].
    #[arg(long, value_name = "K")]
    pub top_k: Option<usize>,
    /// Coreference rows: which candidates each swap renames [default: each].
    #[arg(long, value_enum)]
    pub replace: Option<ReplaceName>,
    /// Coreference rows: name-frequency table [default: corpora/name-frequency.tsv].
    #[arg(long, value_name = "FILE")]
    pub name_frequency: Option<PathBuf>,
    /// Trigger: push examples toward this label (name or index) [default: untargeted].
    #[arg(long, help_heading = "Trigger")]
    pub target: Option<String>,
    /// Trigger: attack examples of this label [default: every label but the target].
    #[arg(long, help_heading = "Trigger")]
    pub source: Option<String>,
    /// Trigger: corpus the trigger is searched on; must differ from --corpus, where it is evaluated.
    #[arg(long, value_name = "FILE", help_heading = "Trigger")]
    pub search_corpus: Option<PathBuf>,
    /// Trigger: tokens in the trigger [default: 3].
    #[arg(long, help_heading = "Trigger")]
    pub length: Option<usize>,
    /// Trigger: initial tokens, e.g. "the the the" [default: "the" repeated].
    #[arg(long, help_heading = "Trigger")]
    pub init: Option<String>,
    /// Trigger: where the trigger goes [default: prefix].
    #[arg(long, value_enum, help_heading = "Trigger")]
    pub position: Option<PositionName>,
    /// Trigger: random direction pairs per finite-difference gradient estimate [default: 16].
    #[arg(long, help_heading = "Trigger")]
    pub directions: Option<usize>,
    /// Trigger: finite-difference step, in units of the embedding table's RMS [default: 0.5].
    #[arg(long, help_heading = "Trigger")]
    pub sigma: Option<f32>,
    /// Trigger: candidate tokens per position [default: 20].
    #[arg(long, help_heading = "Trigger")]
    pub candidates: Option<usize>,
    /// Trigger: beam width [default: 2].
    #[arg(long, help_heading = "Trigger")]
    pub beam: Option<usize>,
    /// Trigger: search examples per iteration [default: 32].
    #[arg(long, help_heading = "Trigger")]
    pub search_batch: Option<usize>,
    /// Trigger: maximum search iterations [default: 30].
    #[arg(long, help_heading = "Trigger")]
    pub iterations: Option<usize>,
    /// Trigger: stop after this many iterations without a better validation loss [default: 5].
    #[arg(long, help_heading = "Trigger")]
    pub patience: Option<usize>,
    /// Trigger: stop after this many model rows [default: 300000].
    #[arg(long, help_heading = "Trigger")]
    pub budget_queries: Option<u64>,
    /// Trigger: stop after this many seconds (results then depend on machine speed).
    #[arg(long, help_heading = "Trigger")]
    pub budget_seconds: Option<f64>,
    /// Trigger: how candidate tokens are proposed [default: hotflip].
    #[arg(long, value_enum, help_heading = "Trigger")]
    pub proposals: Option<ProposalsName>,
    /// Trigger: allow `##` word pieces in the trigger.
    #[arg(long, help_heading = "Trigger")]
    pub allow_subwords: bool,
    /// Trigger: random triggers of the same length evaluated as a baseline [default: 5].
    #[arg(long, help_heading = "Trigger")]
    pub random_baselines: Option<usize>,
    /// Trigger: search only on examples with at least this many word pieces [default: 8].
    #[arg(long, help_heading = "Trigger")]
    pub min_search_tokens: Option<usize>,
    /// Trigger: at most this many search examples, drawn with the seed [default: 4000].
    #[arg(long, help_heading = "Trigger")]
    pub max_search_examples: Option<usize>,
    /// Folder for examples.csv and summary.csv (each written atomically); trigger attacks add
    /// loss_curve.csv and trigger.json.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Format of the summary printed to standard output.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

impl AttackArgs {
    fn flags(&self, seed: Option<u64>) -> AttackSpec {
        AttackSpec {
            name: self.name.clone(),
            kind: self.kind,
            model: self.model.clone(),
            corpus: self.corpus.clone(),
            text_col: self.text_col.clone(),
            label_col: self.label_col.clone(),
            seed,
            limit: self.limit,
            samples: self.samples,
            mode: self.mode,
            window: self.window,
            negation: self.negation,
            names: self.names.clone(),
            swap: self.swap,
            replace: self.replace,
            probe: self.probe,
            top_k: self.top_k,
            name_frequency: self.name_frequency.clone(),
            target: self.target.clone(),
            source: self.source.clone(),
            search_corpus: self.search_corpus.clone(),
            length: self.length,
            init: self.init.clone(),
            position: self.position,
            directions: self.directions,
            sigma: self.sigma,
            candidates: self.candidates,
            beam: self.beam,
            search_batch: self.search_batch,
            iterations: self.iterations,
            patience: self.patience,
            budget_queries: self.budget_queries,
            budget_seconds: self.budget_seconds,
            proposals: self.proposals,
            allow_subwords: self.allow_subwords.then_some(true),
            random_baselines: self.random_baselines,
            min_search_tokens: self.min_search_tokens,
            max_search_examples: self.max_search_examples,
        }
    }
}

pub fn run(global: &GlobalArgs, args: AttackArgs) -> anyhow::Result<()> {
    let (spec, origin) = match &args.recipe {
        Some(path) => (
            AttackSpec::from_file(path)?.overridden_by(args.flags(global.seed)),
            path.display().to_string(),
        ),
        None => (args.flags(global.seed), "flags".to_string()),
    };
    let attack = spec.resolve(&origin)?;
    if spec.probe == Some(ProbeName::Cloze) {
        return super::cloze::run(global, &args, &attack, spec.top_k.unwrap_or(5));
    }
    if robust::coref::SpanTemplate::read(&attack.model)?.is_some() {
        return super::coref::attack(global, &args, &attack);
    }
    let columns = Columns {
        text: spec.text_col.clone(),
        label: spec.label_col.clone(),
        require_label: false,
    };
    let corpus = robust::corpus::Corpus::read(&attack.corpus, &columns)?;
    let mut model = global.load_classifier(&attack.model)?;
    let gold = match corpus.label_column {
        Some(_) => Some(corpus.label_indices(model.info())?),
        None => None,
    };
    let limit = attack.limit.unwrap_or(usize::MAX);
    let targets: Vec<Target> = corpus
        .rows
        .iter()
        .enumerate()
        .take(limit)
        .map(|(i, row)| Target {
            line: row.line,
            text: row.text.clone(),
            gold: gold.as_ref().map(|g| g[i]),
        })
        .collect();
    if let Some(settings) = &attack.trigger {
        return super::trigger::run(
            global, &args, &attack, settings, &mut model, &corpus, &targets,
        );
    }
    let perturber = attack
        .perturber
        .as_deref()
        .expect("every kind but trigger has a perturber");
    let mut bar = Progress::new(&attack.name);
    let run = runner::run(&mut model, &targets, perturber, attack.seed, &mut |d, t| {
        bar.update(d, t)
    })?;
    bar.finish();
    let report = new_report(
        &model,
        &corpus,
        &attack,
        &model.info().sha256()?,
        Named {
            name: attack.name.clone(),
            parameters: attack.parameters.clone(),
        },
        run.outcomes,
        run.wall_seconds,
        run.queries,
    );
    if let Some(dir) = &args.out {
        write_results(dir, &[&report], &[])?;
    }
    emit(None, &args.format.exporter().attack(&report)?)
}

/// A report's name and the parameters it records.
pub struct Named {
    pub name: String,
    pub parameters: std::collections::BTreeMap<String, String>,
}

/// Score outcomes and attach the provenance every report carries. `model_sha256` is passed in
/// so that a command writing several reports hashes the model file once.
#[allow(clippy::too_many_arguments)]
pub fn new_report(
    model: &robust::model::Classifier,
    corpus: &robust::corpus::Corpus,
    attack: &robust::attack::recipe::ResolvedAttack,
    model_sha256: &str,
    named: Named,
    outcomes: Vec<robust::score::ExampleOutcome>,
    wall_seconds: f64,
    model_stats: robust::model::QueryStats,
) -> AttackReport {
    AttackReport {
        scores: score(&outcomes, model.labels(), attack.kind.expectation()),
        attack: named.name,
        kind: attack.kind.as_str().to_string(),
        model: model.info().name.clone(),
        model_sha256: model_sha256.to_string(),
        corpus: corpus.name(),
        corpus_sha256: corpus.sha256.clone(),
        seed: attack.seed,
        robust_version: robust::VERSION.to_string(),
        parameters: named.parameters,
        labels: model.labels().to_vec(),
        outcomes,
        wall_seconds,
        model_stats,
    }
}

/// Write `examples.csv` and `summary.csv` (and any extra files) for one or more reports.
/// Every file goes to a temporary name first; nothing is renamed until all are written.
pub fn write_results(
    dir: &std::path::Path,
    reports: &[&AttackReport],
    extra: &[(&str, String)],
) -> anyhow::Result<()> {
    let mut examples = String::new();
    let mut summary = String::new();
    for (i, report) in reports.iter().enumerate() {
        let e = robust::report::examples_csv(report)?;
        let s = Format::Csv.exporter().attack(report)?;
        // Later reports drop their header line.
        let skip = |text: &str| {
            if i == 0 {
                text.to_string()
            } else {
                text.split_once('\n')
                    .map_or(String::new(), |(_, rest)| rest.to_string())
            }
        };
        examples.push_str(&skip(&e));
        summary.push_str(&skip(&s));
    }
    let mut files: Vec<(&str, String)> = vec![("examples.csv", examples), ("summary.csv", summary)];
    files.extend(extra.iter().cloned());
    robust::report::write_all_atomic(dir, &files)
        .with_context(|| format!("failed to write results to {}", dir.display()))?;
    tracing::info!(
        "wrote {} to {}",
        files.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
        dir.display()
    );
    Ok(())
}
