//! `robust resources`: where every resource a run may read on its own comes from, so a user of
//! an installed binary can see what an attack will use before running it.

use std::fmt::Write as _;

use clap::Args;
use robust::resource::{self, Resource};

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct ResourcesArgs {
    /// Write the list as CSV (resource, key, origin, path, bytes, sha256, license).
    #[arg(long)]
    pub csv: bool,
}

pub fn run(global: &GlobalArgs, args: ResourcesArgs) -> anyhow::Result<()> {
    let mut out = String::new();
    let mut rows = Vec::new();
    for r in Resource::ALL {
        let found = resource::find(r, None)?;
        rows.push([
            r.file_name().to_string(),
            r.key().to_string(),
            found.origin.describe().to_string(),
            found.path.display().to_string(),
            found.bytes.len().to_string(),
            found.sha256(),
            r.license().to_string(),
        ]);
    }
    // The opinion lexicons a trigger search on a sentiment model excludes by default.
    for source in robust::lexicon::opinion::SOURCES {
        let found = source.find()?;
        let (origin, path, bytes, sha) = match &found {
            Some(f) => (
                f.origin.to_string(),
                f.path.display().to_string(),
                f.bytes.len().to_string(),
                robust::hash::sha256_bytes(&f.bytes),
            ),
            None => (
                "missing".to_string(),
                format!(
                    "{} (scripts/setup fetches it)",
                    source.repo_path().display()
                ),
                "0".to_string(),
                String::new(),
            ),
        };
        rows.push([
            format!("opinion/{}.txt", source.name),
            "exclude".to_string(),
            origin,
            path,
            bytes,
            sha,
            source.license.to_string(),
        ]);
    }
    if args.csv {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record([
            "resource", "key", "origin", "path", "bytes", "sha256", "license",
        ])?;
        for row in &rows {
            writer.write_record(row)?;
        }
        out = String::from_utf8(writer.into_inner()?)?;
    } else {
        for [name, key, origin, path, bytes, sha, license] in &rows {
            writeln!(
                out,
                "{name:<24} {origin:<15} {path}  ({bytes} bytes, sha256 {}, {license}; recipe key `{key}`)",
                &sha[..sha.len().min(12)]
            )?;
        }
        writeln!(
            out,
            "\nlooked up in order: the recipe key or flag, then these folders, then the copy built in:"
        )?;
        for (origin, dir) in resource::search_dirs() {
            let state = if dir.is_dir() { "" } else { " (absent)" };
            writeln!(out, "  {:<15} {}{state}", origin.describe(), dir.display())?;
        }
        match robust::model::runtime::locate_library(global.ort_lib.as_deref()) {
            Ok((path, origin)) => {
                writeln!(out, "\nonnx runtime library: {} ({origin})", path.display())?
            }
            Err(e) => writeln!(out, "\nonnx runtime library: {e}")?,
        }
    }
    super::emit(None, &out)
}
