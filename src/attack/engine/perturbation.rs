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
    // A search keeps a checkpoint chunk by chunk when the caller names a folder for it (#31).
    let searching = perturber.counts_own_queries();
    let chunk_rows = options
        .chunk_rows
        .unwrap_or(if searching {
            super::row_checkpoint::SEARCH_CHUNK_ROWS
        } else {
            DEFAULT_CHUNK_ROWS
        })
        .max(1);
    let rows = options.shard.map_or(0..total, |shard| shard.rows(total));
    let checkpoint = match (&options.checkpoint, searching) {
        (Some(dir), true) => Some(super::row_checkpoint::RowCheckpoint::new(
            dir,
            fingerprint(&[
                &attack.name,
                attack.kind.as_str(),
                &format!("{:?}", attack.parameters),
                &attack.seed.to_string(),
                &sha,
                &corpus.sha256,
                &format!("{rows:?}"),
                &columns_of(&plan.columns),
                plan.segment.as_str(),
            ]),
        )),
        _ => None,
    };
    let mut resumed = None;
    if let Some(cp) = &checkpoint {
        let mode = options.resume.unwrap_or(ResumeMode::Fresh);
        let loaded = match mode {
            ResumeMode::Fresh => None,
            ResumeMode::IfPresent | ResumeMode::Required => cp.load()?,
        };
        match loaded {
            Some((state, part)) => {
                cp.go_on(part.len())?;
                resumed = Some((state, part));
            }
            None if mode == ResumeMode::Required => {
                return Err(EngineError::Input {
                    path: options.checkpoint.clone().unwrap_or_default(),
                    problem: "no checkpoint of this attack to resume (--resume goes on from \
                              one an interrupted run left)"
                        .into(),
                });
            }
            None => cp.begin()?,
        }
    }
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
    let pairs = corpus.pairs && total > 0;
    let mut examples = crate::report::ExamplesWriter::new(sink, &attack.name, &labels, pairs)?
        .naming(examples_path.clone())
        .with_search_columns(searching)?;
    // A chunk's rows again, for the checkpoint.
    let part_writer = || -> Result<_, ReportError> {
        crate::report::ExamplesWriter::new(Vec::new(), &attack.name, &labels, pairs)?
            .rows_only()
            .with_search_columns(searching)
    };
    let mut earlier = (QueryStats::default(), 0.0);
    let mut done = 0;
    if let Some((state, rows_done)) = resumed {
        examples.write_raw(&rows_done)?;
        scorer = state.scorer;
        failures.found = state.failures;
        done = state.done;
        earlier = (state.queries, state.wall_seconds);
        tracing::info!(
            "resuming {} after {} of {} rows",
            attack.name,
            done,
            rows.len()
        );
    }
    // Pass 2: chunk by chunk; nothing of a chunk outlives it but the scorer's counts, the
    // few clearest failures and the rows already written.
    let start = Instant::now();
    let before = model.stats();
    let mut blocks = CorpusBlocks::open(&attack.corpus, &plan.columns, block_bytes)?;
    // Rows are numbered over the whole (limited) corpus, so a shard's rows draw the
    // perturbations they draw in an unsharded run.
    let todo = (rows.start + done).min(rows.end)..rows.end;
    let mut seen = 0;
    while seen < rows.end
        && let Some(mut block) = blocks.next_block()?
    {
        let first = seen;
        seen += block.rows.len();
        if seen <= todo.start {
            continue;
        }
        block.rows.truncate(rows.end - first);
        block.rows.drain(..todo.start.saturating_sub(first));
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
            let mut part = checkpoint.as_ref().map(|_| part_writer()).transpose()?;
            for o in &run.outcomes {
                scorer.add(o);
                failures.add(o, &labels, expectation);
                examples.write(o)?;
                if let Some(part) = &mut part {
                    part.write(o)?;
                }
            }
            done += chunk.len();
            if let (Some(cp), Some(part)) = (&checkpoint, part) {
                let mut spent = earlier.0;
                spent.add(&model.stats().since(&before));
                cp.save(
                    &part.finish()?,
                    done,
                    &scorer,
                    &failures.found,
                    spent,
                    earlier.1 + start.elapsed().as_secs_f64(),
                )?;
            }
            progress(done, rows.len());
        }
    }
    let wall_seconds = earlier.1 + start.elapsed().as_secs_f64();
    let mut queries = earlier.0;
    queries.add(&model.stats().since(&before));
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
    if let Some(cp) = &checkpoint {
        cp.remove()?;
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

/// One digest over the parts that make an attack what it is, for a checkpoint to be checked
/// against.
fn fingerprint(parts: &[&str]) -> String {
    crate::hash::sha256_bytes(parts.join("\u{1f}").as_bytes())
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
