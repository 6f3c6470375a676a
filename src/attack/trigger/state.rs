//! A trigger search between two iterations: everything its next steps depend on, in one
//! struct that the search works on and the checkpoint saves whole.
//!
//! One struct rather than a set of locals that are copied into a checkpoint and back out of
//! it: a field added to the search is then saved and restored by construction, and a resumed
//! search is the same value as the one that was saved. The serialized form is `state.json` of
//! the checkpoint, so the field names and their order are a file format (see `FORMAT`).

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::model::QueryStats;

/// Bumped whenever the state's meaning changes, so an old checkpoint is refused, not misread.
const FORMAT: u32 = 1;

/// One line of the loss curve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CurvePoint {
    /// Iteration (1-based).
    pub iteration: usize,
    /// The iteration's trigger, decoded.
    pub trigger: String,
    /// Loss of the best trigger on this iteration's batch.
    pub batch_loss: f64,
    /// Loss on the fixed validation batch (comparable across iterations).
    pub validation_loss: f64,
    /// Model rows run since the search began.
    pub queries: u64,
    /// Search time so far, in seconds.
    pub seconds: f64,
}

/// A search between two iterations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SearchState {
    format: u32,
    /// Digest of everything the search was set up from; a checkpoint resumes only the search
    /// that wrote it (empty for a search without a checkpoint).
    pub key: String,
    /// Iterations done.
    pub iteration: usize,
    /// Where the next batch starts in the search pool.
    pub cursor: usize,
    /// The trigger the next iteration starts from.
    pub trigger: Vec<u32>,
    /// The best validation loss so far, and its trigger.
    pub best_loss: f64,
    pub best: Vec<u32>,
    /// Iterations since the best validation loss last improved.
    pub stale: usize,
    /// The search stopped (patience, budget or time) after `iteration`.
    pub finished: bool,
    pub curve: Vec<CurvePoint>,
    /// The search's random stream, at its exact position.
    #[serde(with = "rng_state")]
    pub rng: ChaCha8Rng,
    /// The classifier's work since the search began.
    pub classifier: QueryStats,
    /// Rows the embedding-input graph ran since the search began.
    pub embedded_queries: u64,
    /// Search time so far, over every process that worked on it.
    pub seconds: f64,
    /// Cache insertions journaled, and the journal bytes they take.
    pub cache_entries: u64,
    pub cache_bytes: u64,
    /// Bytes of the gradient trace written by the iterations the state covers (a resumed
    /// search cuts the trace back to them before appending).
    #[serde(default)]
    pub trace_bytes: Option<u64>,
    /// The last gradient estimate, which the next is shrunk toward
    /// ([`super::config::Shrinkage::History`]).
    #[serde(default)]
    pub previous_estimate: Option<Vec<f32>>,
    /// Every token proposed so far, in the order first proposed (what the exclusion let
    /// through to the search: `trigger.json` explains each, and the leakage bench counts them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shortlist: Vec<u32>,
}

impl SearchState {
    /// A search before its first iteration, at `trigger` with validation loss `loss`.
    pub fn start(key: String, trigger: Vec<u32>, loss: f64, rng: ChaCha8Rng) -> Self {
        Self {
            format: FORMAT,
            key,
            iteration: 0,
            cursor: 0,
            best: trigger.clone(),
            trigger,
            best_loss: loss,
            stale: 0,
            finished: false,
            curve: Vec::new(),
            rng,
            classifier: QueryStats::default(),
            embedded_queries: 0,
            seconds: 0.0,
            cache_entries: 0,
            cache_bytes: 0,
            trace_bytes: None,
            previous_estimate: None,
            shortlist: Vec::new(),
        }
    }

    /// Whether this state was written by the search whose set-up digest is `key`, in this
    /// version's format.
    pub fn belongs_to(&self, key: &str) -> bool {
        self.format == FORMAT && self.key == key
    }

    /// The first iteration still to run (past `max_iterations` once the search finished).
    pub fn next_iteration(&self, max_iterations: usize) -> usize {
        if self.finished {
            max_iterations + 1
        } else {
            self.iteration + 1
        }
    }
}

/// The random generator as the checkpoint writes it: seed and word position as text (JSON
/// numbers do not hold a u128), so that a resumed search draws exactly what it would have.
mod rng_state {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct RngState {
        seed: String,
        stream: u64,
        word_pos: String,
    }

    pub fn serialize<S: Serializer>(rng: &ChaCha8Rng, s: S) -> Result<S::Ok, S::Error> {
        RngState {
            seed: rng.get_seed().iter().map(|b| format!("{b:02x}")).collect(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos().to_string(),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ChaCha8Rng, D::Error> {
        let state = RngState::deserialize(d)?;
        restore(&state).ok_or_else(|| serde::de::Error::custom("unreadable random generator state"))
    }

    fn restore(state: &RngState) -> Option<ChaCha8Rng> {
        let mut seed = [0u8; 32];
        if state.seed.len() != 64 {
            return None;
        }
        for (i, b) in seed.iter_mut().enumerate() {
            *b = u8::from_str_radix(state.seed.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(state.stream);
        rng.set_word_pos(state.word_pos.parse().ok()?);
        Some(rng)
    }
}

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::SearchState;

    #[test]
    fn the_generator_resumes_where_it_was() {
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        rng.set_stream(3);
        for _ in 0..17 {
            rng.random::<u32>();
        }
        let state = SearchState::start(String::new(), vec![1], 0.0, rng.clone());
        let text = serde_json::to_string(&state).unwrap();
        let mut restored = serde_json::from_str::<SearchState>(&text).unwrap().rng;
        let a: Vec<u64> = (0..50).map(|_| rng.random()).collect();
        let b: Vec<u64> = (0..50).map(|_| restored.random()).collect();
        assert_eq!(a, b);
    }

    /// A checkpoint's `state.json` as the version before the state was one struct wrote it
    /// (field for field, in its order).
    const OLDER: &str = concat!(
        r#"{"format":1,"key":"k","iteration":2,"cursor":5,"trigger":[1,2,3],"best_loss":0.25,"#,
        r#""best":[1,2,4],"stale":1,"finished":false,"curve":[{"iteration":1,"trigger":"a b c","#,
        r#""batch_loss":0.5,"validation_loss":0.25,"queries":40,"seconds":1.5}],"rng":{"seed":"#,
        r#""0700000000000000000000000000000000000000000000000000000000000000","stream":3,"#,
        r#""word_pos":"18446744073709551621"},"classifier":{"requests":9,"cache_hits":2,"#,
        r#""model_queries":7,"batches":3,"truncated":0,"padded_tokens":70,"real_tokens":60},"#,
        r#""embedded_queries":11,"seconds":2.5,"cache_entries":7,"cache_bytes":280,"#,
        r#""trace_bytes":120,"previous_estimate":[0.5,-1.0]}"#
    );

    /// A state written before reads into the one struct and is written again byte for byte,
    /// so a checkpoint left by an older run resumes.
    #[test]
    fn a_state_written_before_reads_and_writes_back_unchanged() {
        let state: SearchState = serde_json::from_str(OLDER).unwrap();
        assert_eq!(serde_json::to_string(&state).unwrap(), OLDER);
        assert!(state.belongs_to("k") && !state.belongs_to("other"));
        assert_eq!(
            (state.iteration, state.best_loss, state.stale),
            (2, 0.25, 1)
        );
        assert_eq!(state.rng.get_word_pos(), (1u128 << 64) + 5);
        assert_eq!(state.next_iteration(30), 3);
        // Fields added after the first checkpoints default when absent.
        let first = OLDER.split(",\"trace_bytes\"").next().unwrap().to_string() + "}";
        let state: SearchState = serde_json::from_str(&first).unwrap();
        assert_eq!((state.trace_bytes, state.previous_estimate), (None, None));
    }

    #[test]
    fn an_unreadable_generator_is_refused() {
        let state = SearchState::start(String::new(), vec![1], 0.0, ChaCha8Rng::seed_from_u64(1));
        let text = serde_json::to_string(&state)
            .unwrap()
            .replace("\"word_pos\":\"0\"", "\"word_pos\":\"x\"");
        let err = serde_json::from_str::<SearchState>(&text).unwrap_err();
        assert!(
            err.to_string()
                .contains("unreadable random generator state")
        );
    }
}
