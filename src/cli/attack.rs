//! `robust attack`: run one attack from a recipe and/or flags through the library's engine,
//! print the scores, and write `examples.csv` and `summary.csv` (plus a trigger's loss curve).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use robust::attack::engine::{self, Models};
use robust::attack::recipe::AttackSpec;
use robust::report::Format;

use super::{GlobalArgs, emit, progress::Progress};

#[derive(Debug, Args)]
pub struct AttackArgs {
    /// Recipe file (attacks/*.toml); flags given here override its fields.
    #[arg(long, value_name = "FILE")]
    pub recipe: Option<PathBuf>,
    #[command(flatten)]
    pub spec: AttackSpec,
    /// Folder for examples.csv and summary.csv (each written atomically); trigger attacks add
    /// loss_curve.csv and trigger.json.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Format of the summary printed to standard output.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub fn run(global: &GlobalArgs, args: AttackArgs) -> anyhow::Result<()> {
    let flags = AttackSpec {
        seed: global.seed,
        ..args.spec
    };
    let (spec, origin) = match &args.recipe {
        Some(path) => (
            AttackSpec::from_file(path)?.overridden_by(flags),
            path.display().to_string(),
        ),
        None => (flags, "flags".to_string()),
    };
    if let Some(out) = &args.out
        && out.is_file()
    {
        anyhow::bail!("--out {}: is a file, not a folder", out.display());
    }
    let plan = engine::plan(&spec, &origin)?;
    let mut models = Models::new(global.inference_options());
    let mut bar = Progress::new(&plan.attack.name);
    let result = engine::execute(&plan, &mut models, &mut |d, t| bar.update(d, t))?;
    bar.finish();
    if let Some(dir) = &args.out {
        let files: Vec<(&str, String)> = result
            .files
            .iter()
            .map(|(n, t)| (n.as_str(), t.clone()))
            .collect();
        robust::report::write_all_atomic(dir, &files)
            .with_context(|| format!("failed to write results to {}", dir.display()))?;
        tracing::info!(
            "wrote {} to {}",
            files.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
            dir.display()
        );
    }
    emit(None, &result.render(args.format)?)
}
