//! `robust replay DIR`: run the attack recorded in `DIR/provenance.json` again and check that
//! every file it wrote comes out byte for byte the same. A reader of a published number can
//! check it with one command; a difference is named by file and line.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use robust::attack::engine;
use robust::attack::provenance::{self, Provenance, comparable, first_difference};
use robust::report::Format;

use super::attack::{Run, execute};
use super::{GlobalArgs, emit};

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A folder written by `robust attack --out DIR` (it holds provenance.json).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Keep the replayed files in this folder (new or empty) instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

pub fn run(global: &GlobalArgs, args: ReplayArgs) -> anyhow::Result<()> {
    let dir = std::path::absolute(&args.dir)
        .with_context(|| format!("failed to resolve {}", args.dir.display()))?;
    let record = Provenance::read(&dir)?;
    if record.robust_version != robust::VERSION {
        anyhow::bail!(
            "{}: recorded by robust {}, this is robust {}; outputs are reproducible within a \
             version, so replay it with that version",
            dir.join(provenance::FILE).display(),
            record.robust_version,
            robust::VERSION
        );
    }
    if global.max_len.is_some() || global.full_graph || global.seed.is_some() {
        anyhow::bail!(
            "--seed, --max-len and --full-graph come from the record; replay takes none of them"
        );
    }
    let changed = record.changed_inputs();
    if !changed.is_empty() {
        let lines: Vec<String> = changed
            .iter()
            .map(|(path, then, now)| format!("  {}: recorded {then}, now {now}", path.display()))
            .collect();
        anyhow::bail!(
            "{} input(s) differ from what the run read, so its outputs cannot be expected \
             again:\n{}",
            changed.len(),
            lines.join("\n")
        );
    }
    let keep = match &args.keep {
        Some(path) => {
            let path = std::path::absolute(path)?;
            if path.exists() && std::fs::read_dir(&path)?.next().is_some() {
                anyhow::bail!("--keep {}: not empty", path.display());
            }
            Some(path)
        }
        None => None,
    };
    let temp = tempfile::tempdir().context("failed to make a temporary folder")?;
    let out = keep.clone().unwrap_or_else(|| temp.path().join("replay"));
    // The record's relative paths (model, corpus, lists) were resolved in its working folder;
    // the replay resolves them there too. The binary's own process, before any thread.
    std::env::set_current_dir(&record.working_dir).with_context(|| {
        format!(
            "failed to enter the run's working folder {}",
            record.working_dir.display()
        )
    })?;
    let spec = record.spec()?;
    let plan = engine::plan(&spec, &dir.join(provenance::FILE).display().to_string())?;
    let searches = plan.searches_trigger();
    if spec.budget_seconds.is_some() {
        tracing::warn!("the run had a time budget (budget_seconds): its outputs may differ");
    }
    let shard = record
        .shard
        .as_deref()
        .map(str::parse::<robust::shard::Shard>)
        .transpose()?;
    let replay_global = GlobalArgs {
        max_len: record.max_len,
        full_graph: record.full_graph,
        ..global.clone()
    };
    let run = Run {
        out: Some(&out),
        resume: false,
        searches,
        gradient_trace: None,
        chunk_rows: None,
        shard,
        force: false,
    };
    execute(&replay_global, &plan, &run, Format::Table, None)?;
    let mut differences = Vec::new();
    for file in &record.outputs {
        let name = &file.path;
        let again = std::fs::read(out.join(name))
            .with_context(|| format!("the replay wrote no {}", name.display()))?;
        let name_text = name.to_string_lossy();
        let again = comparable(&name_text, &again);
        if robust::hash::sha256_bytes(&again) == file.sha256 {
            continue;
        }
        // Name the first differing line against the run folder's copy, if it is still the
        // recorded one.
        let original = std::fs::read(dir.join(name))
            .ok()
            .map(|b| comparable(&name_text, &b));
        let at = match original {
            Some(bytes) if robust::hash::sha256_bytes(&bytes) == file.sha256 => {
                match first_difference(&bytes, &again) {
                    Some((line, a, b)) => format!(
                        "line {line}: recorded {:?}, replayed {:?}",
                        a.unwrap_or_default(),
                        b.unwrap_or_default()
                    ),
                    None => "same bytes".into(),
                }
            }
            _ => format!(
                "sha256 recorded {}, replayed {} (the run folder's copy has changed since)",
                file.sha256,
                robust::hash::sha256_bytes(&again)
            ),
        };
        differences.push(format!("  {}: {at}", name.display()));
    }
    if !differences.is_empty() {
        anyhow::bail!(
            "the replay of {} differs:\n{}",
            dir.display(),
            differences.join("\n")
        );
    }
    let names: Vec<String> = record
        .outputs
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    let mut text = format!(
        "replayed {}: {} byte for byte, timings aside ({} input(s) checked by sha256)\n",
        dir.display(),
        names.join(", "),
        record.inputs.len()
    );
    if let Some(keep) = keep {
        text.push_str(&format!("replayed files in {}\n", keep.display()));
    }
    emit(None, &text)
}
