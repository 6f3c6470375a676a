//! Output formats, one file each, behind one small trait (the hyperfine `Exporter` pattern):
//! adding a format means adding a file, not touching every command.

pub mod cloze;
pub mod coref;
mod csv;
mod examples;
pub mod gate;
pub mod history;
pub mod html;
mod json;
mod table;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use self::csv::{CsvExporter, SUMMARY_HEADER};
pub use self::examples::{ExamplesWriter, examples_csv};
pub use self::json::JsonExporter;
pub use self::table::TableExporter;

use crate::eval::EvalReport;
use crate::score::AttackReport;

/// Why a report could not be rendered or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file (or its folder) could not be created, written, flushed or renamed into place.
    #[error("failed to write {path}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// Rendering to CSV or JSON failed (the serialiser's error is the source).
    #[error("failed to serialise the report")]
    Serialise(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A way of rendering reports as text.
pub trait Exporter {
    /// An evaluation's report (`robust eval`).
    fn eval(&self, report: &EvalReport) -> Result<String, ReportError>;
    /// An attack's summary: for CSV, the `summary.csv` file (one row per attack x group x metric).
    fn attack(&self, report: &AttackReport) -> Result<String, ReportError>;
}

/// The `--format` of a report printed to standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned text table, for people.
    Table,
    /// CSV, for spreadsheets and scripts.
    Csv,
    /// JSON, the whole report.
    Json,
}

impl Format {
    /// The exporter that renders this format.
    pub fn exporter(self) -> Box<dyn Exporter> {
        match self {
            Format::Table => Box::new(TableExporter),
            Format::Csv => Box::new(CsvExporter),
            Format::Json => Box::new(JsonExporter),
        }
    }
}

/// A temporary file beside `path` holding `bytes`, flushed to disk, ready to be renamed over
/// it. It gets the mode `path` already has, or for a new file the mode any other new file
/// gets (0666 less the umask), so that a shared report stays readable by the group and
/// overwriting never tightens a file's mode.
fn staged(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    let mut tmp = tempfile::Builder::new()
        .prefix(&temporary_prefix())
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    if let Ok(existing) = std::fs::metadata(path) {
        tmp.as_file().set_permissions(existing.permissions())?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// The name every temporary file of this process starts with: `.robust-<pid>-` (#30 item 15).
/// The pid is what lets a later run prove a temporary stale ([`remove_stale_temporaries`]).
fn temporary_prefix() -> String {
    format!(".robust-{}-", std::process::id())
}

/// Remove the temporary files (`.robust-<pid>-*`) that processes no longer running left in
/// `dir`, and say how many went (#30 item 15: a SIGINT or SIGTERM during `robust attack` kills
/// the process before its temporaries can remove themselves).
///
/// Why by pid rather than in a signal handler, or by age: a handler cannot run for SIGKILL
/// or a machine that loses power, and an age says nothing about a run still going (an
/// attack's `examples.csv` is a temporary for as long as the attack runs, hours on a large
/// corpus), while a pid that no longer runs proves its files are nobody's. A pid that runs
/// again (reused) keeps its files: never removing a live run's file matters more than
/// removing every stale one. Temporaries without a pid (older robust versions) are left.
pub fn remove_stale_temporaries(dir: &Path) -> Result<usize, ReportError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(".robust-"))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if pid <= 0 || pid as u32 == std::process::id() || running(pid) {
            continue;
        }
        let path = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            // Removed by another run meanwhile: gone is what was wanted.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ReportError::Write { path, source }),
        }
    }
    Ok(removed)
}

/// Whether process `pid` exists (signal 0 checks without sending anything; EPERM means it
/// exists under another user).
fn running(pid: i32) -> bool {
    // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Write a file so that readers see either the old content or the whole new content, never a
/// half-written file: write a temporary file beside it, flush it to disk, then rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let err = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = staged(dir, path, bytes).map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// A file of a result being written as the run goes (`examples.csv` of a streamed attack): a
/// temporary file in the folder its target will be in, renamed into place by
/// [`write_all_atomic_with`] once every other file is written too. Dropped unfinished (an
/// error, an interrupted run), it removes itself.
pub struct StagedFile {
    name: String,
    tmp: tempfile::NamedTempFile,
}

impl StagedFile {
    /// Start file `name`, to be placed in `dir` (created if need be).
    pub fn create(dir: &Path, name: &str) -> Result<Self, ReportError> {
        let path = dir.join(name);
        let err = |source| ReportError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        let tmp = staged(dir, &path, b"").map_err(err)?;
        Ok(StagedFile {
            name: name.to_string(),
            tmp,
        })
    }

    /// The file name it will have.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The temporary file's path, for writers that open it themselves.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Where its content goes.
    pub fn file(&mut self) -> &mut std::fs::File {
        self.tmp.as_file_mut()
    }

    /// Flush what was written to disk.
    pub fn sync(&mut self) -> Result<(), ReportError> {
        let path = self.tmp.path().to_path_buf();
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|source| ReportError::Write { path, source })
    }
}

impl std::fmt::Debug for StagedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedFile")
            .field("name", &self.name)
            .field("tmp", &self.tmp.path())
            .finish()
    }
}

/// [`write_all_atomic`], with files already written to disk as the run went ([`StagedFile`]s,
/// in `dir` or another folder of the same file system) moved in beside them. No target
/// changes until every file is complete.
pub fn write_all_atomic_with(
    dir: &Path,
    files: &[(&str, String)],
    staged_files: Vec<StagedFile>,
) -> Result<(), ReportError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let stale = remove_stale_temporaries(dir)?;
    if stale > 0 {
        tracing::info!(
            "removed {stale} temporary files that stopped runs left in {}",
            dir.display()
        );
    }
    // The files written as the run went go into place first, `files` after them in order: a
    // caller that lists a marker file last (a run's manifest) can rely on it being last.
    let mut ready = Vec::new();
    for mut file in staged_files {
        file.sync()?;
        let path = dir.join(&file.name);
        ready.push((file.tmp, path));
    }
    for (name, text) in files {
        let path = dir.join(name);
        let tmp = staged(dir, &path, text.as_bytes()).map_err(err(&path))?;
        ready.push((tmp, path));
    }
    for (tmp, path) in ready {
        tmp.persist(&path).map_err(|e| ReportError::Write {
            path: path.clone(),
            source: e.error,
        })?;
    }
    Ok(())
}

/// Write several files into `dir` so that none is replaced until all are fully written:
/// each goes to a temporary file beside its target first, then all are renamed. On an error
/// (a full disk, a file-size limit) the temporary files are removed and no target changes.
pub fn write_all_atomic(dir: &Path, files: &[(&str, String)]) -> Result<(), ReportError> {
    write_all_atomic_with(dir, files, Vec::new())
}

/// Render a float with fixed precision so reports are byte-identical across runs.
pub fn fixed(x: f64, digits: usize) -> String {
    if x.is_nan() {
        String::new()
    } else {
        format!("{x:.digits$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.csv");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left behind");
    }
}
