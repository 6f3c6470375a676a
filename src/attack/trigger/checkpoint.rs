//! A trigger search's checkpoint: what a killed search needs to go on as if it had never
//! stopped.
//!
//! Why this much state: a search's next steps depend on its [`SearchState`] (trigger, best
//! trigger, stale count, cursor, random generator, previous estimate), saved whole as
//! `state.json`, but also on the classifier's prediction cache, because a cached row costs no
//! query and the query budget decides when the search stops (and which proposals it can still
//! afford). So besides `state.json` the checkpoint keeps `cache.bin`, a journal of every cache
//! insertion since the search began; a resumed search recomputes the deterministic
//! set-up (search examples, validation batch), replays the journal into the cache and adds the
//! recorded query counts, and from there makes the same requests, pays the same queries and
//! writes the same bytes as an uninterrupted search.
//!
//! Crash safety: the journal is appended and synced before `state.json` is replaced (atomically,
//! by rename), and the state records how many journal bytes it covers; a kill at any point
//! leaves a state that matches a prefix of the journal, and bytes past that prefix are cut off
//! on resume.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::state::SearchState;
use crate::model::CacheEntry;
use crate::model::tokenize::TokenIds;

const STATE_FILE: &str = "state.json";
const JOURNAL_FILE: &str = "cache.bin";

/// Why a search checkpoint could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A checkpoint file or folder could not be read, written or removed.
    #[error("failed to {action} search checkpoint {}", path.display())]
    Io {
        /// What was being done: `read`, `write`, `remove`, ...
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The state or the journal does not parse, or they disagree.
    #[error("search checkpoint {} is damaged: {problem}", path.display())]
    Corrupt {
        /// The damaged file (or the checkpoint folder).
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// `--resume` was asked for, but the folder holds no checkpoint.
    #[error("no trigger-search checkpoint in {} to resume", dir.display())]
    Missing {
        /// The checkpoint folder.
        dir: PathBuf,
    },
    /// `--resume` was asked for, but the checkpoint was written by another search.
    #[error(
        "the checkpoint in {} was written by a different search (recipe, flags, seed, model or \
         corpus differ); run without --resume to start over",
        dir.display()
    )]
    Mismatch {
        /// The checkpoint folder.
        dir: PathBuf,
    },
}

/// What to do with a checkpoint found in the folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeMode {
    /// Start over; an old checkpoint is removed.
    Fresh,
    /// Go on from a checkpoint of the same search, else start over (a suite's job).
    IfPresent,
    /// Go on from a checkpoint of the same search; its absence is an error (`--resume`).
    Required,
}

/// Where a search keeps its checkpoint, and whether it resumes from one.
#[derive(Debug, Clone)]
pub(crate) struct Checkpoint {
    /// The checkpoint folder (`state.json` and `cache.bin`).
    pub dir: PathBuf,
    /// Whether a checkpoint found there is resumed.
    pub mode: ResumeMode,
    /// What the caller knows of the search (model and corpus digests, seed, parameters); it
    /// enters the digest that ties a checkpoint to its search.
    pub context: String,
}

/// A checkpoint found and read: the state, and the cache insertions to replay.
pub(crate) struct Resumed {
    pub state: SearchState,
    pub journal: Vec<CacheEntry>,
}

impl Checkpoint {
    fn state_path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    fn journal_path(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE)
    }

    fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError {
        let path = path.to_path_buf();
        move |source| CheckpointError::Io {
            action,
            path,
            source,
        }
    }

    /// Open the checkpoint for the search whose set-up digest is `key`: the state and journal
    /// to resume from, or `None` to start over (leaving an empty folder to write into).
    pub fn open(&self, key: &str) -> Result<Option<Resumed>, CheckpointError> {
        let state_path = self.state_path();
        let existing = match std::fs::read_to_string(&state_path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Self::io("read", &state_path)(e)),
        };
        let resumed = match (existing, self.mode) {
            (None, ResumeMode::Required) => {
                return Err(CheckpointError::Missing {
                    dir: self.dir.clone(),
                });
            }
            (Some(_), ResumeMode::Fresh) | (None, _) => None,
            (Some(text), mode) => {
                let state: SearchState =
                    serde_json::from_str(&text).map_err(|e| CheckpointError::Corrupt {
                        path: state_path.clone(),
                        problem: e.to_string(),
                    })?;
                if state.belongs_to(key) {
                    Some(state)
                } else if mode == ResumeMode::Required {
                    return Err(CheckpointError::Mismatch {
                        dir: self.dir.clone(),
                    });
                } else {
                    tracing::warn!(
                        "the search checkpoint in {} belongs to another search; starting over",
                        self.dir.display()
                    );
                    None
                }
            }
        };
        let Some(state) = resumed else {
            self.remove()?;
            std::fs::create_dir_all(&self.dir).map_err(Self::io("create", &self.dir))?;
            return Ok(None);
        };
        let journal = self.read_journal(&state)?;
        tracing::info!(
            "resuming the trigger search after iteration {} ({} queries, {} cached rows)",
            state.iteration,
            state.classifier.model_queries + state.embedded_queries,
            journal.len()
        );
        Ok(Some(Resumed { state, journal }))
    }

    /// The journal's first `state.cache_bytes` bytes, parsed; anything after them (written by
    /// a process killed before its state was saved) is cut off.
    fn read_journal(&self, state: &SearchState) -> Result<Vec<CacheEntry>, CheckpointError> {
        let path = self.journal_path();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(Self::io("open", &path))?;
        let mut bytes = Vec::new();
        (&mut file)
            .take(state.cache_bytes)
            .read_to_end(&mut bytes)
            .map_err(Self::io("read", &path))?;
        let corrupt = |problem: String| CheckpointError::Corrupt {
            path: path.clone(),
            problem,
        };
        if bytes.len() as u64 != state.cache_bytes {
            return Err(corrupt(format!(
                "{} bytes, the state says {}",
                bytes.len(),
                state.cache_bytes
            )));
        }
        file.set_len(state.cache_bytes)
            .map_err(Self::io("truncate", &path))?;
        let journal = decode_journal(&bytes).map_err(corrupt)?;
        if journal.len() as u64 != state.cache_entries {
            return Err(corrupt(format!(
                "{} entries, the state says {}",
                journal.len(),
                state.cache_entries
            )));
        }
        Ok(journal)
    }

    /// Append `journal` to the cache journal, then replace the state (which records the
    /// journal's new length).
    pub fn save(
        &self,
        state: &mut SearchState,
        journal: &[CacheEntry],
    ) -> Result<(), CheckpointError> {
        let path = self.journal_path();
        let bytes = encode_journal(journal);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(Self::io("open", &path))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_data())
            .map_err(Self::io("write", &path))?;
        state.cache_bytes += bytes.len() as u64;
        state.cache_entries += journal.len() as u64;
        let state_path = self.state_path();
        let text = serde_json::to_string(state).map_err(|e| CheckpointError::Corrupt {
            path: state_path.clone(),
            problem: e.to_string(),
        })?;
        let mut tmp =
            tempfile::NamedTempFile::new_in(&self.dir).map_err(Self::io("write", &state_path))?;
        tmp.write_all(text.as_bytes())
            .and_then(|()| tmp.as_file().sync_data())
            .map_err(Self::io("write", &state_path))?;
        tmp.persist(&state_path)
            .map_err(|e| Self::io("write", &state_path)(e.error))?;
        Ok(())
    }

    /// Remove the checkpoint (once the results it leads to are written).
    pub fn remove(&self) -> Result<(), CheckpointError> {
        remove_checkpoint(&self.dir)
    }
}

/// Remove the checkpoint folder `dir`, if there is one: a search's results are written, so
/// the checkpoint that led to them is spent.
pub fn remove_checkpoint(dir: &Path) -> Result<(), CheckpointError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Checkpoint::io("remove", dir)(e)),
    }
}

/// Entries as little-endian u32 counts and values: ids, type ids, logits.
fn encode_journal(journal: &[CacheEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, logits) in journal {
        out.extend_from_slice(&(key.ids.len() as u32).to_le_bytes());
        for v in key.ids.iter().chain(key.type_ids.iter()) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(logits.len() as u32).to_le_bytes());
        for v in logits.iter() {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

fn decode_journal(bytes: &[u8]) -> Result<Vec<CacheEntry>, String> {
    let mut at = 0usize;
    let word = |at: &mut usize| -> Result<[u8; 4], String> {
        let w = bytes
            .get(*at..*at + 4)
            .ok_or_else(|| format!("cut off at byte {}", *at))?;
        *at += 4;
        Ok([w[0], w[1], w[2], w[3]])
    };
    let mut out = Vec::new();
    while at < bytes.len() {
        let n = u32::from_le_bytes(word(&mut at)?) as usize;
        if n > bytes.len() / 4 {
            return Err(format!("an entry of {n} tokens at byte {at}"));
        }
        let ids: Vec<u32> = (0..n)
            .map(|_| word(&mut at).map(u32::from_le_bytes))
            .collect::<Result<_, _>>()?;
        let type_ids: Vec<u32> = (0..n)
            .map(|_| word(&mut at).map(u32::from_le_bytes))
            .collect::<Result<_, _>>()?;
        let m = u32::from_le_bytes(word(&mut at)?) as usize;
        if m > bytes.len() / 4 {
            return Err(format!("an entry of {m} logits at byte {at}"));
        }
        let logits: Vec<f32> = (0..m)
            .map(|_| word(&mut at).map(f32::from_le_bytes))
            .collect::<Result<_, _>>()?;
        out.push((
            TokenIds {
                ids: ids.into(),
                type_ids: type_ids.into(),
            },
            Arc::from(logits),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::{Checkpoint, CheckpointError, ResumeMode, SearchState};
    use crate::attack::trigger::state::CurvePoint;
    use crate::model::CacheEntry;
    use crate::model::tokenize::TokenIds;

    fn entry(ids: &[u32], logits: &[f32]) -> CacheEntry {
        (TokenIds::single(ids.to_vec()), Arc::from(logits.to_vec()))
    }

    fn state(key: &str) -> SearchState {
        let mut state = SearchState::start(
            key.into(),
            vec![1, 2, 3],
            0.25,
            ChaCha8Rng::seed_from_u64(7),
        );
        state.iteration = 2;
        state.cursor = 5;
        state.stale = 1;
        state
    }

    /// The search state goes into the checkpoint whole and comes out whole: every field, the
    /// random stream's position included, is what the search had when it saved.
    #[test]
    fn the_search_state_round_trips_through_the_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cp = Checkpoint {
            dir: dir.path().join("search"),
            mode: ResumeMode::Required,
            context: String::new(),
        };
        std::fs::create_dir_all(&cp.dir).expect("folder");
        let mut s = state("k");
        for _ in 0..5 {
            s.rng.random::<u64>();
        }
        s.best = vec![4, 2, 3];
        s.best_loss = 0.125;
        s.finished = true;
        s.curve.push(CurvePoint {
            iteration: 2,
            trigger: "w4 w2 w3".into(),
            batch_loss: 0.5,
            validation_loss: 0.125,
            queries: 96,
            seconds: 0.75,
        });
        s.classifier.model_queries = 90;
        s.embedded_queries = 6;
        s.trace_bytes = Some(333);
        s.previous_estimate = Some(vec![0.5, -0.25, f32::MIN_POSITIVE]);
        cp.save(&mut s, &[entry(&[101, 4, 102], &[0.5, 1.5])])
            .expect("saves");
        let mut resumed = cp.open("k").expect("opens").expect("resumes").state;
        assert_eq!(
            serde_json::to_string(&resumed).unwrap(),
            serde_json::to_string(&s).unwrap()
        );
        assert_eq!((resumed.cache_entries, resumed.next_iteration(30)), (1, 31));
        let ahead: Vec<u64> = (0..8).map(|_| s.rng.random()).collect();
        let resumed_ahead: Vec<u64> = (0..8).map(|_| resumed.rng.random()).collect();
        assert_eq!(
            ahead, resumed_ahead,
            "the random stream goes on where it was"
        );
    }

    #[test]
    fn journal_and_state_round_trip_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cp = Checkpoint {
            dir: dir.path().join("search"),
            mode: ResumeMode::IfPresent,
            context: String::new(),
        };
        assert!(cp.open("k").expect("opens").is_none());
        let mut s = state("k");
        let first = vec![entry(&[101, 7, 102], &[0.5, -1.25])];
        cp.save(&mut s, &first).expect("saves");
        let second = vec![
            entry(&[101, 8, 9, 102], &[f32::MIN_POSITIVE, 3.0]),
            entry(&[101, 102], &[0.0, -0.0]),
        ];
        cp.save(&mut s, &second).expect("saves");
        // A process killed after appending to the journal but before saving its state.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(cp.journal_path())
            .expect("journal");
        f.write_all(&[1, 2, 3, 4, 5]).expect("appends");
        let resumed = cp.open("k").expect("opens").expect("resumes");
        assert_eq!(resumed.state.cache_entries, 3);
        let want: Vec<_> = first.into_iter().chain(second).collect();
        assert_eq!(resumed.journal.len(), want.len());
        for ((k, v), (wk, wv)) in resumed.journal.iter().zip(&want) {
            assert_eq!(k, wk);
            assert_eq!(v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), {
                wv.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            });
        }
        assert_eq!(
            std::fs::metadata(cp.journal_path()).expect("meta").len(),
            resumed.state.cache_bytes,
            "the torn tail is cut off"
        );
    }

    #[test]
    fn another_search_or_none_is_refused_on_resume_and_replaced_otherwise() {
        let dir = tempfile::tempdir().expect("tempdir");
        let required = Checkpoint {
            dir: dir.path().join("search"),
            mode: ResumeMode::Required,
            context: String::new(),
        };
        assert!(matches!(
            required.open("k"),
            Err(CheckpointError::Missing { .. })
        ));
        let fresh = Checkpoint {
            mode: ResumeMode::Fresh,
            ..required.clone()
        };
        assert!(fresh.open("k").expect("opens").is_none());
        fresh.save(&mut state("k"), &[]).expect("saves");
        assert!(matches!(
            required.open("other"),
            Err(CheckpointError::Mismatch { .. })
        ));
        let if_present = Checkpoint {
            mode: ResumeMode::IfPresent,
            ..required.clone()
        };
        assert!(if_present.open("other").expect("opens").is_none());
        assert!(
            !required.state_path().exists(),
            "the other search's checkpoint is replaced"
        );
        std::fs::write(required.state_path(), "{ not json").expect("writes");
        assert!(matches!(
            required.open("k"),
            Err(CheckpointError::Corrupt { .. })
        ));
    }
}
