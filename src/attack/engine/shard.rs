//! A perturbation attack split by rows across processes: what each shard leaves, and the
//! merge that gives the unsharded run's summary byte for byte.

use super::*;

/// What one shard of a perturbation attack split by rows (`robust attack --shard K/N`)
/// leaves for the merge beside its `examples.csv`: the scorer's counts over its rows, its
/// strongest failures, and everything that must agree across the shards for them to be
/// parts of one attack. Merged in shard order ([`merge_attack_shards`]), shards give the
/// summary an unsharded run writes, byte for byte.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttackShard {
    /// Version of this record's layout.
    pub format: u32,
    /// Which part this is.
    pub shard: Shard,
    /// The rows attacked, `[start, end)` from 0, of the corpus cut to its limit.
    pub rows: (usize, usize),
    /// Rows of the whole attack.
    pub total_rows: usize,
    /// What ran, on what, with what (the parameters before inputs cut to the model's length
    /// are recorded): every shard of one attack carries the same.
    #[serde(flatten)]
    pub provenance: Provenance,
    /// The corpus columns read, as given (`text=...;label=...;pair=...`, empty for the
    /// default); shards of other columns do not merge. Empty in records written before it.
    #[serde(default)]
    pub columns: String,
    /// `--max-len` as given.
    pub asked_max_len: Option<usize>,
    /// The model's input limit in tokens.
    pub max_len: usize,
    /// Counts over the shard's rows.
    pub scorer: crate::score::Scorer,
    /// The shard's strongest failures with their strengths, strongest first.
    pub failures: Vec<(f64, FailureExample)>,
    /// How many failures a shard keeps.
    pub failure_limit: usize,
    /// Model work of the shard.
    pub queries: QueryStats,
    /// Seconds the shard's attack took.
    pub wall_seconds: f64,
}

impl AttackShard {
    /// The record's file name in a shard's output folder.
    pub const FILE: &str = "attack-shard.json";
    /// The layout version written now.
    pub const FORMAT: u32 = 1;

    /// The record a shard left in `dir`, checked for its shape (not yet against the others).
    pub fn read(dir: &Path) -> Result<Self, MergeError> {
        let path = dir.join(Self::FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| MergeError::Unreadable {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| MergeError::Invalid { path, source })
    }

    /// The scored report and failure examples of the rows this record covers.
    pub(super) fn into_report(self) -> (AttackReport, Vec<FailureExample>) {
        let mut provenance = self.provenance;
        record_truncation(
            &mut provenance.parameters,
            &provenance.attack,
            self.asked_max_len,
            self.max_len,
            self.queries.truncated,
        );
        let report = AttackReport {
            scores: self.scorer.finish(),
            provenance,
            outcomes: Vec::new(),
            wall_seconds: self.wall_seconds,
            model_stats: self.queries,
        };
        let failures = self.failures.into_iter().map(|(_, e)| e).collect();
        (report, failures)
    }
}

/// Why shards of an attack do not merge.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// The shards are not N distinct parts of one split.
    #[error("{0}")]
    Incomplete(String),
    /// Two shards disagree on something that must be the same in every part of one attack.
    #[error("shards {a} and {b} are not parts of one attack: {what} {va:?} vs {vb:?}")]
    Differ {
        /// The first shard.
        a: Shard,
        /// The other.
        b: Shard,
        /// What differs.
        what: &'static str,
        /// Its value in `a`.
        va: String,
        /// Its value in `b`.
        vb: String,
    },
    /// A shard's record could not be read (a folder that is not an attack's shard has none).
    #[error("failed to read the attack shard record {}", path.display())]
    Unreadable {
        /// The record.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A shard's record is not one this version writes.
    #[error("{}: not a valid attack shard record", path.display())]
    Invalid {
        /// The record.
        path: PathBuf,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
    /// The shards were run by another robust, whose numbers this one does not vouch for.
    #[error("the shards ran robust {ran}, this is {this}; merge with the version that ran them")]
    Version {
        /// The version that ran them.
        ran: String,
        /// This version.
        this: String,
    },
}

/// Join the records of shards 1/N..N/N of one attack (in any order) into the report an
/// unsharded run gives, and its strongest failures.
pub fn merge_attack_shards(
    mut shards: Vec<AttackShard>,
) -> Result<(AttackReport, Vec<FailureExample>), MergeError> {
    let parts: Vec<Shard> = shards.iter().map(|s| s.shard).collect();
    Shard::check_complete(&parts).map_err(MergeError::Incomplete)?;
    shards.sort_by_key(|s| s.shard.index);
    let mut all = shards.into_iter();
    let mut merged = all.next().expect("check_complete refuses no shards");
    if merged.provenance.robust_version != crate::VERSION {
        return Err(MergeError::Version {
            ran: merged.provenance.robust_version,
            this: crate::VERSION.to_string(),
        });
    }
    for next in all {
        let (a, b) = (merged.shard, next.shard);
        for ((what, va), (_, vb)) in identity(&merged).into_iter().zip(identity(&next)) {
            if va != vb {
                return Err(MergeError::Differ { a, b, what, va, vb });
            }
        }
        if merged.rows.1 != next.rows.0 {
            return Err(MergeError::Differ {
                a,
                b,
                what: "rows",
                va: format!("ending at {}", merged.rows.1),
                vb: format!("starting at {}", next.rows.0),
            });
        }
        merged.rows.1 = next.rows.1;
        merged.scorer.merge(next.scorer);
        let mut failures = Failures {
            limit: merged.failure_limit,
            found: std::mem::take(&mut merged.failures),
        };
        // Later shards' failures come after on ties, as later rows do in one run.
        for (strength, example) in next.failures {
            failures.insert(strength, example);
        }
        merged.failures = failures.found;
        merged.queries.add(&next.queries);
        merged.wall_seconds += next.wall_seconds;
    }
    Ok(merged.into_report())
}
/// What two shards of one attack must agree on, named as a refused merge names it: the
/// attack, model (its files, tokenizer and config included), corpus, seed, version, row
/// count, labels, corpus columns and parameters.
fn identity(shard: &AttackShard) -> [(&'static str, String); 10] {
    let p = &shard.provenance;
    [
        ("attack", p.attack.clone()),
        ("kind", p.kind.clone()),
        ("model sha256", p.model_sha256.clone()),
        ("corpus sha256", p.corpus_sha256.clone()),
        ("seed", p.seed.to_string()),
        ("robust version", p.robust_version.clone()),
        ("rows in all", shard.total_rows.to_string()),
        ("labels", p.labels.join(",")),
        ("corpus columns", shard.columns.clone()),
        (
            "parameters",
            format!("{:?} max_len {:?}", p.parameters, shard.asked_max_len),
        ),
    ]
}
