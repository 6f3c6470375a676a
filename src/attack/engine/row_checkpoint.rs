//! The checkpoint of a row attack that searches (word and character attacks, #31): after every
//! chunk of examples, the rows written so far and the scorer's counts, so that `--resume` goes
//! on from the next example instead of running the whole corpus again.
//!
//! Why per chunk and not per example: a chunk's searches run side by side, so its examples
//! finish in no fixed order; a chunk is where every example before a point is done. Searching
//! attacks run in chunks of [`SEARCH_CHUNK_ROWS`], small enough that an interrupted run loses
//! minutes, large enough that a round of a chunk's searches fills the model's batches.
//!
//! Two files in the checkpoint folder: `examples.part`, the `examples.csv` rows of the chunks
//! done (no header), appended and synced chunk by chunk; and `rows.json`, written atomically
//! after it, which names how many bytes of `examples.part` are good. A crash between the two
//! leaves rows past that length, which a resume cuts off. A resumed run's rows and scores are
//! those of an unbroken one: each example draws from its own seeded stream, and a chunk's
//! results do not depend on where chunks start.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{EngineError, FailureExample};
use crate::model::QueryStats;
use crate::report::ReportError;
use crate::score::Scorer;

/// Rows per chunk of a searching row attack (see the module docs).
pub const SEARCH_CHUNK_ROWS: usize = 256;

const STATE: &str = "rows.json";
const PART: &str = "examples.part";
const FORMAT: u32 = 1;

/// What a row attack's checkpoint holds (see the module docs).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct RowState {
    format: u32,
    /// The attack, its parameters, model, corpus, seed and rows: a checkpoint of another
    /// attack is refused.
    pub(super) fingerprint: String,
    /// Examples done, from the start of the rows attacked.
    pub(super) done: usize,
    /// Good bytes of `examples.part`.
    part_bytes: u64,
    pub(super) scorer: Scorer,
    pub(super) failures: Vec<(f64, FailureExample)>,
    /// Model work of the runs before.
    pub(super) queries: QueryStats,
    /// Their time.
    pub(super) wall_seconds: f64,
}

/// A checkpoint folder being kept.
pub(super) struct RowCheckpoint {
    dir: PathBuf,
    fingerprint: String,
}

fn write_err(path: &Path) -> impl Fn(std::io::Error) -> EngineError + '_ {
    move |source| {
        EngineError::Report(ReportError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

impl RowCheckpoint {
    pub(super) fn new(dir: &Path, fingerprint: String) -> Self {
        RowCheckpoint {
            dir: dir.to_path_buf(),
            fingerprint,
        }
    }

    /// The state and the good rows of a checkpoint left in the folder, if there is one; one
    /// of another attack is an error.
    pub(super) fn load(&self) -> Result<Option<(RowState, Vec<u8>)>, EngineError> {
        let state_path = self.dir.join(STATE);
        let text = match std::fs::read_to_string(&state_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(EngineError::Input {
                    path: state_path,
                    problem: format!("cannot read the checkpoint: {e}"),
                });
            }
        };
        let bad = |problem: String| EngineError::Input {
            path: state_path.clone(),
            problem,
        };
        let state: RowState = serde_json::from_str(&text)
            .map_err(|e| bad(format!("not a row attack's checkpoint ({e})")))?;
        if state.format != FORMAT {
            return Err(bad(format!(
                "checkpoint format {} (this robust writes {FORMAT})",
                state.format
            )));
        }
        if state.fingerprint != self.fingerprint {
            return Err(bad(
                "the checkpoint is of another attack (other settings, model, corpus, seed or \
                 rows); run without --resume to start over"
                    .into(),
            ));
        }
        let part_path = self.dir.join(PART);
        let mut part = Vec::new();
        std::fs::File::open(&part_path)
            .and_then(|f| f.take(state.part_bytes).read_to_end(&mut part))
            .map_err(|e| EngineError::Input {
                path: part_path.clone(),
                problem: format!("cannot read the checkpoint's rows: {e}"),
            })?;
        if part.len() as u64 != state.part_bytes {
            return Err(EngineError::Input {
                path: part_path,
                problem: format!(
                    "holds {} bytes of rows, the checkpoint says {}",
                    part.len(),
                    state.part_bytes
                ),
            });
        }
        Ok(Some((state, part)))
    }

    /// Start a fresh checkpoint (an old one is removed).
    pub(super) fn begin(&self) -> Result<(), EngineError> {
        self.remove()?;
        std::fs::create_dir_all(&self.dir).map_err(write_err(&self.dir))?;
        let path = self.dir.join(PART);
        std::fs::write(&path, b"").map_err(write_err(&path))?;
        Ok(())
    }

    /// Go on from a loaded checkpoint: rows past its good length are cut off.
    pub(super) fn go_on(&self, part_len: usize) -> Result<(), EngineError> {
        let path = self.dir.join(PART);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(write_err(&path))?;
        file.set_len(part_len as u64).map_err(write_err(&path))?;
        Ok(())
    }

    /// Record a chunk: its rows appended to `examples.part` and synced, then the state.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn save(
        &self,
        rows: &[u8],
        done: usize,
        scorer: &Scorer,
        failures: &[(f64, FailureExample)],
        queries: QueryStats,
        wall_seconds: f64,
    ) -> Result<(), EngineError> {
        let part_path = self.dir.join(PART);
        let mut part = std::fs::OpenOptions::new()
            .append(true)
            .open(&part_path)
            .map_err(write_err(&part_path))?;
        part.write_all(rows).map_err(write_err(&part_path))?;
        part.sync_data().map_err(write_err(&part_path))?;
        let part_bytes = part.metadata().map_err(write_err(&part_path))?.len();
        let state = RowState {
            format: FORMAT,
            fingerprint: self.fingerprint.clone(),
            done,
            part_bytes,
            scorer: scorer.clone(),
            failures: failures.to_vec(),
            queries,
            wall_seconds,
        };
        let json = serde_json::to_vec(&state)
            .map_err(|e| EngineError::Report(ReportError::Serialise(Box::new(e))))?;
        let path = self.dir.join(STATE);
        let tmp = self.dir.join(format!(".{STATE}.tmp"));
        std::fs::write(&tmp, json).map_err(write_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(write_err(&path))?;
        Ok(())
    }

    /// The run finished: the checkpoint goes.
    pub(super) fn remove(&self) -> Result<(), EngineError> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(write_err(&self.dir)(e)),
            _ => Ok(()),
        }
    }
}
