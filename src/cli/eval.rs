//! `robust eval`: accuracy on a labelled corpus.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use robust::report::Format;

use super::{CorpusArgs, GlobalArgs, emit, progress::Progress};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Model folder: model.onnx, tokenizer.json and config.json (id2label).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    #[command(flatten)]
    pub corpus: CorpusArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the report here (atomically) instead of standard output; never over the corpus
    /// or into the model folder.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Evaluate the first N rows only.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
}

pub fn run(global: &GlobalArgs, args: EvalArgs) -> anyhow::Result<()> {
    // #30 item 1: the report may not replace the corpus or anything in the model folder.
    if let Some(out) = &args.out {
        robust::guard::Inputs::new()
            .folder("the model folder", &args.model)
            .file("the corpus", &args.corpus.corpus)
            .check("--out", out)?;
    }
    let kind = robust::model::ModelKind::of_dir(&args.model)
        .with_context(|| format!("failed to load model {}", args.model.display()))?;
    if kind == robust::model::ModelKind::CorefSpans {
        return super::coref::eval(
            global,
            &args.model,
            &args.corpus.corpus,
            args.format,
            args.out.as_deref(),
            args.limit.map(|n| n as usize),
        );
    }
    let mut model = global.load_classifier(&args.model)?;
    let columns = args.corpus.columns(true);
    // The corpus is read in blocks, so memory stays flat on corpora of millions of rows.
    let mut bar = Progress::new("eval");
    let report = robust::eval::evaluate_file(
        &mut model,
        &args.corpus.corpus,
        &columns,
        args.limit.map(|n| n as usize),
        robust::data::corpus_stream::DEFAULT_BLOCK_BYTES,
        &mut |d, t| bar.update(d, t),
    )?;
    bar.finish();
    if report.blank_lines_skipped > 0 {
        tracing::info!(
            blank_lines = report.blank_lines_skipped,
            "skipped blank lines in {}",
            args.corpus.corpus.display()
        );
    }
    if report.queries.truncated > 0 {
        tracing::warn!(
            "{} inputs were longer than {} tokens and were truncated",
            report.queries.truncated,
            model.info().max_len
        );
    }
    let text = args.format.exporter().eval(&report)?;
    emit(args.out.as_deref(), &text)
}
