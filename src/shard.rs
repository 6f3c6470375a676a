//! Splitting work across machines. A suite's jobs, and the rows of one attack, are split by
//! `--shard K/N`, numbered from 1.
//!
//! Suites: `--shard K/N` runs the jobs whose position in the suite
//! is K-1 modulo N, so N shards started anywhere (a CI matrix, a Slurm array, a Kubernetes
//! Indexed Job) cover every job exactly once, with no coordination beyond K and N. Jobs are
//! dealt round-robin rather than in blocks because suites list attacks by kind, and a block
//! of slow trigger searches on one shard would leave the others idle.
//!
//! Each shard writes its own run folder (job checkpoints and `shard.json`); `robust report
//! merge` checks that the shards belong together and assembles the one run they make up,
//! from the same checkpoints an unsharded run assembles from, so the CSVs are identical.

use std::fmt;
use std::str::FromStr;

/// One of N parts of a suite, numbered from 1.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Shard {
    /// K: which part, from 1 to `count`.
    pub index: usize,
    /// N: how many parts, at least 1.
    pub count: usize,
}

/// A `--shard` argument that is not K/N with 1 <= K <= N; the message says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shard {text:?}: {problem} (write K/N with 1 <= K <= N, e.g. 2/4)")]
pub struct ShardError {
    text: String,
    problem: &'static str,
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Self, ShardError> {
        let err = |problem| ShardError {
            text: text.to_string(),
            problem,
        };
        let (k, n) = text.split_once('/').ok_or_else(|| err("no '/'"))?;
        let k: usize = k
            .trim()
            .parse()
            .map_err(|_| err("K is not a whole number"))?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| err("N is not a whole number"))?;
        if n == 0 {
            return Err(err("N must be at least 1"));
        }
        if k == 0 {
            return Err(err("shards are numbered from 1"));
        }
        if k > n {
            return Err(err("K is larger than N"));
        }
        Ok(Shard { index: k, count: n })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Whether the job at `position` (from 0) in the suite is this shard's.
    pub fn owns(&self, position: usize) -> bool {
        position % self.count == self.index - 1
    }

    /// The rows (from 0) of `total` this shard attacks when one attack is split by rows: N
    /// contiguous ranges of sizes differing by at most one, in order, so that the shards'
    /// `examples.csv` files, joined in shard order, are the whole attack's.
    pub fn rows(&self, total: usize) -> std::ops::Range<usize> {
        let at = |k: usize| total * k / self.count;
        at(self.index - 1)..at(self.index)
    }

    /// Check that `shards` are N distinct shards of one split, 1/N to N/N; the message names
    /// what is missing or repeated.
    pub fn check_complete(shards: &[Shard]) -> Result<(), String> {
        let Some(first) = shards.first() else {
            return Err("no shards given".into());
        };
        let n = first.count;
        if let Some(other) = shards.iter().find(|s| s.count != n) {
            return Err(format!("shards of different splits: {first} and {other}"));
        }
        let mut seen = vec![0usize; n];
        for s in shards {
            seen[s.index - 1] += 1;
        }
        let twice: Vec<String> = (0..n)
            .filter(|&i| seen[i] > 1)
            .map(|i| format!("{}/{n}", i + 1))
            .collect();
        if !twice.is_empty() {
            return Err(format!("shard {} given more than once", twice.join(", ")));
        }
        let missing: Vec<String> = (0..n)
            .filter(|&i| seen[i] == 0)
            .map(|i| format!("{}/{n}", i + 1))
            .collect();
        if !missing.is_empty() {
            return Err(format!("shard {} missing", missing.join(", ")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bad_shards_are_refused_with_the_reason() {
        for (text, problem) in [
            ("0/3", "numbered from 1"),
            ("4/3", "larger than N"),
            ("a/b", "K is not"),
            ("1/0", "at least 1"),
            ("3", "no '/'"),
            ("-1/3", "K is not"),
        ] {
            let e = text.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains(problem), "{text}: {e}");
        }
        assert_eq!(
            "2/4".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 4 }
        );
    }

    #[test]
    fn completeness_names_what_is_missing_or_repeated() {
        let s = |k| Shard { index: k, count: 3 };
        assert!(Shard::check_complete(&[s(3), s(1), s(2)]).is_ok());
        assert_eq!(
            Shard::check_complete(&[s(1), s(3)]).unwrap_err(),
            "shard 2/3 missing"
        );
        assert_eq!(
            Shard::check_complete(&[s(1), s(2), s(2), s(3)]).unwrap_err(),
            "shard 2/3 given more than once"
        );
        let other = Shard { index: 1, count: 2 };
        assert!(
            Shard::check_complete(&[s(1), other])
                .unwrap_err()
                .contains("different splits")
        );
    }

    proptest! {
        /// Row ranges tile the rows in order, with sizes that differ by at most one.
        #[test]
        fn row_ranges_tile_the_rows(n in 1usize..12, total in 0usize..10_000) {
            let ranges: Vec<_> = (1..=n).map(|k| Shard { index: k, count: n }.rows(total)).collect();
            prop_assert_eq!(ranges[0].start, 0);
            prop_assert_eq!(ranges[n - 1].end, total);
            for w in ranges.windows(2) {
                prop_assert_eq!(w[0].end, w[1].start);
            }
            let sizes: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
            prop_assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        }

        /// Every job belongs to exactly one shard, whatever N.
        #[test]
        fn shards_partition_the_jobs(n in 1usize..12, jobs in 0usize..200) {
            for position in 0..jobs {
                let owners = (1..=n).filter(|&k| Shard { index: k, count: n }.owns(position)).count();
                prop_assert_eq!(owners, 1);
            }
        }
    }
}
