//! `robust predict`: label raw sentences.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{GlobalArgs, emit, progress::Progress};

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Model folder: model.onnx, tokenizer.json and config.json (id2label).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Sentences, one a line; `-` or nothing reads standard input. Blank lines are skipped.
    #[arg(value_name = "FILE|-")]
    pub input: Option<PathBuf>,
    /// Write the CSV here (atomically) instead of standard output; never over the input or
    /// into the model folder.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Each line is a sentence pair, the two segments separated by a tab (premise, then
    /// hypothesis); they are fed as the tokenizer's pair (`[CLS] a [SEP] b [SEP]` for BERT).
    #[arg(long)]
    pub pairs: bool,
    /// Also write the raw logits (`logit_<label>` columns), e.g. to compare with PyTorch.
    #[arg(long)]
    pub logits: bool,
}

pub fn run(global: &GlobalArgs, args: PredictArgs) -> anyhow::Result<()> {
    // #30 item 1: the CSV may not replace the input or anything in the model folder.
    if let Some(out) = &args.out {
        let mut inputs = robust::guard::Inputs::new();
        inputs.folder("the model folder", &args.model);
        if let Some(input) = args.input.as_deref().filter(|p| p.as_os_str() != "-") {
            inputs.file("the input", input);
        }
        inputs.check("--out", out)?;
    }
    // #30 item 8: read through the corpus source, so a line over the limit (a FIFO or
    // /dev/zero that never ends a line) is an error naming it, not memory without bound.
    let name = args.input.clone().unwrap_or_else(|| PathBuf::from("-"));
    let bytes = robust::data::source::read(&name)
        .map_err(|e| robust::data::corpus::CorpusError::reading(&name, e))
        .with_context(|| {
            if name.as_os_str() == "-" {
                "failed to read standard input".to_string()
            } else {
                format!("failed to read {}", name.display())
            }
        })?;
    let (rows, blank) = robust::data::corpus::read_lines(&name, &bytes)?;
    if blank > 0 {
        tracing::info!(blank_lines = blank, "skipped blank lines");
    }
    let pairs: Vec<(&str, &str)> = if args.pairs {
        rows.iter()
            .map(|r| {
                r.text.split_once('\t').ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}:{}: --pairs needs two segments separated by a tab",
                        name.display(),
                        r.line
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?
    } else {
        Vec::new()
    };
    let mut model = global.load_classifier(&args.model)?;
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let mut bar = Progress::new("predict");
    let predictions = if args.pairs {
        model.predict_pairs(&pairs, &mut |d, t| bar.update(d, t))?
    } else {
        model.predict_with_progress(&texts, &mut |d, t| bar.update(d, t))?
    };
    bar.finish();
    let truncated = model.stats().truncated;
    if truncated > 0 {
        tracing::warn!(
            "{truncated} inputs were longer than {} tokens and were truncated",
            model.info().max_len
        );
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["text".to_string()];
    if args.pairs {
        header.push("pair".to_string());
    }
    header.push("label".to_string());
    header.extend(model.labels().iter().map(|l| format!("p_{l}")));
    if args.logits {
        header.extend(model.labels().iter().map(|l| format!("logit_{l}")));
    }
    w.write_record(&header)?;
    for (i, p) in predictions.iter().enumerate() {
        let mut record = match pairs.get(i) {
            Some((a, b)) => vec![a.to_string(), b.to_string()],
            None => vec![texts[i].to_string()],
        };
        record.push(model.labels()[p.label].clone());
        record.extend(p.probs.iter().map(|x| format!("{x:.6}")));
        if args.logits {
            record.extend(p.logits.iter().map(|x| format!("{x:.6}")));
        }
        w.write_record(&record)?;
    }
    let out = String::from_utf8(w.into_inner()?)?;
    emit(args.out.as_deref(), &out)
}
