//! Outputs never touch inputs (issue 30 items 1-3).
//!
//! Every command collects the files and folders it reads ([`Inputs`]) and checks each path it
//! will write against them before any work: a path that resolves (symlinks followed, the
//! parent canonicalised when the file does not exist yet) to an input file, or into an input
//! folder (a model folder), is refused with both named. A results folder (`attack --out`) that
//! holds an earlier run's files is refused unless `--force` ([`occupied`]).

use std::path::{Path, PathBuf};

/// Every file `robust attack --out DIR` (or a merge of an attack's shards) writes into DIR:
/// a folder holding any of them holds an earlier run's results.
pub const ATTACK_RESULTS: [&str; 6] = [
    "examples.csv",
    "summary.csv",
    "trigger.json",
    "loss_curve.csv",
    crate::attack::engine::AttackShard::FILE,
    crate::attack::provenance::FILE,
];

/// Why an output path was refused.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The output resolves to an input file, or into an input folder.
    #[error(
        "{flag} {output}: refusing to write there: it {how} {what} {input}, which this run \
         reads; write the output somewhere else"
    )]
    OverwritesInput {
        /// The flag or role of the output (`--out`).
        flag: String,
        /// The output path as given.
        output: PathBuf,
        /// `is` or `is inside`.
        how: &'static str,
        /// What the input is (`the corpus`, `the model folder`).
        what: String,
        /// The input path as given.
        input: PathBuf,
    },
    /// `--out` holds files of an earlier run.
    #[error(
        "--out {dir}: already holds an earlier run's results ({files}); pass --force to \
         replace them, or choose another folder"
    )]
    Occupied {
        /// The results folder.
        dir: PathBuf,
        /// The files found, comma-separated.
        files: String,
    },
    /// An earlier run's file could not be removed under `--force`.
    #[error("--force: failed to remove {path}")]
    Remove {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

/// `path` with symlinks followed: canonicalised where it exists, else its nearest existing
/// ancestor canonicalised with the rest joined on (`..` and `.` of the rest folded in).
pub fn resolve(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    let mut base = absolute.as_path();
    loop {
        if let Ok(p) = std::fs::canonicalize(base) {
            let mut out = p;
            for part in rest.iter().rev() {
                match part.as_os_str() {
                    s if s == ".." => {
                        out.pop();
                    }
                    s if s == "." => {}
                    s => out.push(s),
                }
            }
            return out;
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                base = parent;
            }
            // `..` as the last component, or the root: fold it in as given.
            (Some(parent), None) => {
                rest.push("..".into());
                base = parent;
            }
            (None, _) => return absolute,
        }
    }
}

/// The files and folders a run reads.
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    /// (resolved, as given, what it is, whether it is a folder)
    items: Vec<(PathBuf, PathBuf, String, bool)>,
}

impl Inputs {
    /// No inputs yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// An input file (`what`: "the corpus", "the recipe").
    pub fn file(&mut self, what: &str, path: &Path) -> &mut Self {
        self.items
            .push((resolve(path), path.to_path_buf(), what.to_string(), false));
        self
    }

    /// An input folder: nothing inside it may be written (a model folder), nor over what its
    /// files link to (a model folder of symlinks).
    pub fn folder(&mut self, what: &str, path: &Path) -> &mut Self {
        let folder = resolve(path);
        self.items
            .push((folder.clone(), path.to_path_buf(), what.to_string(), true));
        if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                let file = entry.path();
                let resolved = resolve(&file);
                if !resolved.starts_with(&folder) {
                    self.items
                        .push((resolved, file, format!("a file of {what}"), false));
                }
            }
        }
        self
    }

    /// Refuse `output` (the file or folder written by `flag`) if it resolves to an input file
    /// or into an input folder. A folder output is refused if it is inside an input folder,
    /// or if it is an input folder.
    pub fn check(&self, flag: &str, output: &Path) -> Result<(), GuardError> {
        let out = resolve(output);
        for (resolved, given, what, is_dir) in &self.items {
            let how = if &out == resolved {
                "is"
            } else if *is_dir && out.starts_with(resolved) {
                "is inside"
            } else {
                continue;
            };
            return Err(GuardError::OverwritesInput {
                flag: flag.to_string(),
                output: output.to_path_buf(),
                how,
                what: what.clone(),
                input: given.clone(),
            });
        }
        Ok(())
    }

    /// [`Inputs::check`] for a folder `dir` and each of the files `names` written in it.
    pub fn check_in(&self, flag: &str, dir: &Path, names: &[&str]) -> Result<(), GuardError> {
        self.check(flag, dir)?;
        for name in names {
            self.check(flag, &dir.join(name))?;
        }
        Ok(())
    }
}

/// The files of `names` that `dir` holds (as names, in the order given).
pub fn present<'a>(dir: &Path, names: &[&'a str]) -> Vec<&'a str> {
    names
        .iter()
        .copied()
        .filter(|n| std::fs::symlink_metadata(dir.join(n)).is_ok())
        .collect()
}

/// Refuse a results folder that holds any of `names` (an earlier run's files) unless `force`.
pub fn occupied(dir: &Path, names: &[&str], force: bool) -> Result<(), GuardError> {
    let found = present(dir, names);
    if found.is_empty() || force {
        return Ok(());
    }
    Err(GuardError::Occupied {
        dir: dir.to_path_buf(),
        files: found.join(", "),
    })
}

/// Remove the files of `names` in `dir` (an earlier run's results under `--force`).
pub fn clear(dir: &Path, names: &[&str]) -> Result<(), GuardError> {
    for name in present(dir, names) {
        let path = dir.join(name);
        std::fs::remove_file(&path).map_err(|source| GuardError::Remove { path, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinked_output_resolves_to_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = dir.path().join("c.tsv");
        std::fs::write(&corpus, "x").unwrap();
        let link = dir.path().join("link.tsv");
        std::os::unix::fs::symlink(&corpus, &link).unwrap();
        let mut inputs = Inputs::new();
        inputs.file("the corpus", &corpus);
        let err = inputs.check("--out", &link).unwrap_err().to_string();
        assert!(err.contains("is the corpus"), "{err}");
        // Not existing yet, through `..`: still the same file.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(inputs.check("--out", &sub.join("../c.tsv")).is_err());
        assert!(inputs.check("--out", &sub.join("new/../../c.tsv")).is_err());
        assert!(inputs.check("--out", &dir.path().join("other.tsv")).is_ok());
    }

    #[test]
    fn nothing_inside_an_input_folder() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m");
        std::fs::create_dir(&model).unwrap();
        let mut inputs = Inputs::new();
        inputs.folder("the model folder", &model);
        let err = inputs
            .check("--out", &model.join("config.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is inside the model folder"), "{err}");
        assert!(inputs.check("--out", &model.join("x/y.csv")).is_err());
        assert!(inputs.check("--out", &dir.path().join("m2")).is_ok());
    }
}
