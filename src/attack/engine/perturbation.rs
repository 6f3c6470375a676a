//! Text perturbations (shuffle, negation, entity swap) on a classifier, streamed: the corpus
//! is checked in a first pass, then read in blocks and attacked in chunks, with the scorer fed
//! and `examples.csv` written as the chunks finish, so memory does not grow with the corpus.

use super::*;

/// The examples an attack runs on: the first `limit` rows, with gold labels where the corpus
/// has them.
pub fn targets(
    corpus: &Corpus,
    model: &Classifier,
    limit: Option<usize>,
    segment: crate::perturb::Segment,
) -> Result<Vec<Target>, CorpusError> {
    let gold = match corpus.label_column {
        Some(_) => Some(corpus.label_indices(model.info())?),
        None => None,
    };
    if gold.is_some()
        && let Some(warning) = corpus.label_warning(model.info())
    {
        tracing::warn!("{warning}");
    }
    Ok(corpus
        .rows
        .iter()
        .enumerate()
        .take(limit.unwrap_or(usize::MAX))
        .map(|(i, row)| target(row, gold.as_ref().map(|g| g[i]), segment))
        .collect())
}

/// The example a corpus row makes: its text, or of a sentence pair the attacked segment with
/// the other beside it.
pub(super) fn target(
    row: &crate::data::corpus::Row,
    gold: Option<usize>,
    segment: crate::perturb::Segment,
) -> Target {
    use crate::perturb::Segment;
    let (text, context) = match (&row.pair, segment) {
        (None, _) => (row.text.clone(), None),
        (Some(pair), Segment::First) => (row.text.clone(), Some((pair, segment))),
        (Some(pair), Segment::Second) => (pair.clone(), Some((&row.text, segment))),
    };
    Target {
        line: row.line,
        text,
        gold,
        context: context.map(|(other, segment)| runner::PairContext {
            other: other.clone(),
            segment,
        }),
    }
}

/// Target rows per chunk of a streamed perturbation attack: with their variants (ten per row
/// for a shuffle) a chunk is tens of thousands of model inputs, enough for length-sorted
/// batches and worker sessions, and a few tens of megabytes while it is encoded and run.
pub const DEFAULT_CHUNK_ROWS: usize = 2_048;

pub(super) fn perturbation(
    plan: &Plan,
    models: &mut Models,
    options: &ExecuteOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<AttackResult, EngineError> {
    use crate::data::corpus_stream::{CorpusBlocks, DEFAULT_BLOCK_BYTES, scan};
    let attack = &plan.attack;
    let sha = models.sha256(&attack.model)?;
    let model = models.classifier(&attack.model)?;
    model.clear_cache();
    let block_bytes = options.block_bytes.unwrap_or(DEFAULT_BLOCK_BYTES);
    let chunk_rows = options.chunk_rows.unwrap_or(DEFAULT_CHUNK_ROWS).max(1);
    // Pass 1: every row parsed and every label checked before any model work, as when the
    // corpus is read whole.
    let corpus = scan(
        &attack.corpus,
        &plan.columns,
        model.info(),
        None,
        false,
        block_bytes,
    )?;
    if corpus.blank_lines > 0 {
        tracing::info!(
            blank_lines = corpus.blank_lines,
            "skipped blank lines in {}",
            attack.corpus.display()
        );
    }
    let total = attack.limit.map_or(corpus.rows, |l| l.min(corpus.rows));
    let perturber = attack
        .perturber
        .as_deref()
        .expect("every text-perturbation kind has a perturber");
    let labels = model.labels().to_vec();
    let expectation = attack.kind.expectation();
    let mut scorer = crate::score::Scorer::new(&labels, expectation);
    let mut failures = Failures::new(options.failure_limit.unwrap_or(usize::MAX));
    // examples.csv goes to disk as the chunks are scored when the caller names a folder for
    // it; otherwise into memory, as a library caller reading `AttackResult::file` expects.
    let mut staged = match &options.stage_in {
        Some(dir) => Some(crate::report::StagedFile::create(dir, "examples.csv")?),
        None => None,
    };
    let mut memory = Vec::new();
    let sink: Box<dyn std::io::Write + '_> = match &mut staged {
        Some(file) => Box::new(std::io::BufWriter::new(file.file())),
        None => Box::new(&mut memory),
    };
    let examples_path = options
        .stage_in
        .clone()
        .unwrap_or_default()
        .join("examples.csv");
    let mut examples =
        crate::report::ExamplesWriter::new(sink, &attack.name, &labels, corpus.pairs && total > 0)?
            .naming(examples_path.clone())
            .with_search_columns(perturber.counts_own_queries())?;
    // Pass 2: chunk by chunk; nothing of a chunk outlives it but the scorer's counts, the
    // few clearest failures and the rows already written.
    let start = Instant::now();
    let before = model.stats();
    let mut blocks = CorpusBlocks::open(&attack.corpus, &plan.columns, block_bytes)?;
    // Rows are numbered over the whole (limited) corpus, so a shard's rows draw the
    // perturbations they draw in an unsharded run.
    let rows = options.shard.map_or(0..total, |shard| shard.rows(total));
    let mut seen = 0;
    let mut done = 0;
    while seen < rows.end
        && let Some(mut block) = blocks.next_block()?
    {
        let first = seen;
        seen += block.rows.len();
        if seen <= rows.start {
            continue;
        }
        block.rows.truncate(rows.end - first);
        block.rows.drain(..rows.start.saturating_sub(first));
        let block_targets = targets_of_block(&block, model, plan.segment)?;
        for chunk in block_targets.chunks(chunk_rows) {
            let offset = rows.start + done;
            let mut report = |d: usize, t: usize| {
                progress(
                    done + (chunk.len() * d).checked_div(t).unwrap_or(0),
                    rows.len(),
                )
            };
            let run = runner::run_from(model, chunk, perturber, attack.seed, offset, &mut report)
                .map_err(|source| EngineError::Run {
                dir: attack.model.clone(),
                source,
            })?;
            for o in &run.outcomes {
                scorer.add(o);
                failures.add(o, &labels, expectation);
                examples.write(o)?;
            }
            done += chunk.len();
            progress(done, rows.len());
        }
    }
    let wall_seconds = start.elapsed().as_secs_f64();
    let queries = model.stats().since(&before);
    let write_err = |source| {
        EngineError::Report(ReportError::Write {
            path: examples_path.clone(),
            source,
        })
    };
    examples.finish()?.flush().map_err(write_err)?;
    let shard = AttackShard {
        format: AttackShard::FORMAT,
        shard: options.shard.unwrap_or(Shard { index: 1, count: 1 }),
        rows: (rows.start, rows.end),
        total_rows: total,
        provenance: Provenance {
            attack: attack.name.clone(),
            kind: attack.kind.as_str().to_string(),
            model: model.info().name.clone(),
            model_sha256: sha.clone(),
            corpus: corpus.name,
            corpus_sha256: corpus.sha256,
            seed: attack.seed,
            robust_version: crate::VERSION.to_string(),
            parameters: attack.parameters.clone(),
            labels,
        },
        columns: columns_of(&plan.columns),
        asked_max_len: model.options().max_len,
        max_len: model.encoder().max_len(),
        scorer,
        failures: failures.found,
        failure_limit: failures.limit,
        queries,
        wall_seconds,
    };
    let mut files = Vec::new();
    let mut staged_files = Vec::new();
    match staged {
        Some(file) => staged_files.push(file),
        None => files.push((
            "examples.csv".to_string(),
            String::from_utf8(memory).map_err(|e| ReportError::Serialise(Box::new(e)))?,
        )),
    }
    if options.shard.is_some() {
        // A shard's scores are of its rows only: its record is written for the merge, and
        // summary.csv only by the merge, so that no partial summary passes for the attack's.
        let record = serde_json::to_string_pretty(&shard)
            .map_err(|e| ReportError::Serialise(Box::new(e)))?;
        files.push((AttackShard::FILE.to_string(), record + "\n"));
    }
    let (report, failures) = shard.into_report();
    if options.shard.is_none() {
        files.push((
            "summary.csv".to_string(),
            Format::Csv.exporter().attack(&report)?,
        ));
    }
    Ok(AttackResult {
        name: attack.name.clone(),
        kind: attack.kind,
        shape: plan.shape,
        failures,
        wall_seconds,
        model_stats: queries,
        reports: vec![report],
        cloze: None,
        trigger: None,
        files,
        staged: staged_files,
        rows: rows.len(),
        model_sha256: sha,
    })
}

/// The targets of one block of a corpus read in blocks; labels were checked over the whole
/// file by the first pass.
pub(super) fn targets_of_block(
    block: &Corpus,
    model: &Classifier,
    segment: crate::perturb::Segment,
) -> Result<Vec<Target>, CorpusError> {
    let gold = match block.label_column {
        Some(_) => Some(block.row_label_indices(model.info())?),
        None => None,
    };
    Ok(block
        .rows
        .iter()
        .enumerate()
        .map(|(i, row)| target(row, gold.as_ref().map(|g| g[i]), segment))
        .collect())
}

/// The corpus columns a shard read, as its record names them (#30 item 5: shards that read
/// other columns are not parts of one attack).
fn columns_of(c: &crate::data::corpus::Columns) -> String {
    let name = |c: &Option<String>| c.clone().unwrap_or_default();
    format!(
        "text={};label={};pair={}",
        name(&c.text),
        name(&c.label),
        name(&c.pair)
    )
}
