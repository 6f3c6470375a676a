//! Issue 28: the plug-in point, proved from outside `src/attack/`. A small attack that queries
//! the model as it searches — greedy word deletion, each step deleting the word whose loss
//! most lowers the model's confidence in its first answer — is defined here against
//! `robust::attack::kind::Attack`, registered with one line, and run through a suite on the
//! real default model: with its own typed settings, shards that merge into the unsharded
//! run's bytes, and a resume after an interruption that redoes no finished job.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand_chacha::ChaCha8Rng;
use robust::attack::kind::{Attack, Built, Registry};
use robust::attack::runner::{RowAttack, RowError, Target};
use robust::attack::spec::{AttackSpec, RecipeError};
use robust::model::{InferenceOptions, TextModel};
use robust::perturb::{Perturbation, SkipReason};
use robust::score::Expectation;
use robust::shard::Shard;
use robust::suite::Suite;
use robust::suite::merge::{MergeOptions, Merged, merge_with};
use robust::suite::runner::{Observer, Quiet, ResumeFrom, RunOptions, RunOutcome, run};

use crate::util::{default_corpus, default_model_dir};

/// The attack's typed settings: the `settings` table of its suite entry.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeletionSettings {
    /// Words deleted, one greedy step each.
    deletions: usize,
}

/// The kind, with a count of the rows it attacked (so the test can see what a resume redid).
struct WordDeletion {
    rows: Arc<AtomicUsize>,
}

impl Attack for WordDeletion {
    fn name(&self) -> &'static str {
        "word-deletion"
    }

    fn about(&self) -> &'static str {
        "Greedy word deletion (the prediction should not change)"
    }

    fn expectation(&self) -> Expectation {
        Expectation::Invariant
    }

    fn keys(&self) -> &'static [&'static str] {
        &["settings"]
    }

    fn build(
        &self,
        spec: &AttackSpec,
        origin: &str,
        parameters: &mut std::collections::BTreeMap<String, String>,
    ) -> Result<Built, RecipeError> {
        let table = spec.settings.clone().unwrap_or_default();
        let settings: DeletionSettings =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| RecipeError::Parse {
                    path: origin.into(),
                    message: format!("settings: {}", e.message().trim_end()),
                })?;
        if settings.deletions == 0 {
            return Err(RecipeError::Invalid {
                origin: origin.into(),
                key: "settings",
                value: "deletions = 0".into(),
                problem: "must delete at least one word".into(),
            });
        }
        parameters.insert("deletions".into(), settings.deletions.to_string());
        Ok(Built {
            rows: Some(Box::new(Deleting {
                deletions: settings.deletions,
                rows: self.rows.clone(),
            })),
            ..Built::default()
        })
    }
}

struct Deleting {
    deletions: usize,
    rows: Arc<AtomicUsize>,
}

impl RowAttack for Deleting {
    fn attack_row(
        &self,
        row: &Target,
        model: &mut dyn TextModel,
        _rng: &mut ChaCha8Rng,
    ) -> Result<Vec<Perturbation>, RowError> {
        self.rows.fetch_add(1, Ordering::SeqCst);
        let mut words: Vec<&str> = row.text.split_whitespace().collect();
        if words.len() <= self.deletions {
            return Err(RowError::Skip(SkipReason::TooFewWords));
        }
        let label = model.predict(&[&row.text])?[0].label;
        let mut deleted = Vec::new();
        for _ in 0..self.deletions {
            let candidates: Vec<String> = (0..words.len())
                .map(|i| {
                    let mut w = words.clone();
                    w.remove(i);
                    w.join(" ")
                })
                .collect();
            let texts: Vec<&str> = candidates.iter().map(String::as_str).collect();
            let predictions = model.predict(&texts)?;
            // The deletion that most lowers the first answer's probability; the first on ties.
            let best = (0..words.len())
                .min_by(|&a, &b| {
                    predictions[a].probs[label].total_cmp(&predictions[b].probs[label])
                })
                .expect("at least two words");
            deleted.push(words.remove(best).to_string());
        }
        Ok(vec![Perturbation {
            text: words.join(" "),
            detail: format!("deleted {}", deleted.join(", ")),
            group: format!("{}-word", self.deletions),
            edit: None,
        }])
    }
}

fn registry(rows: &Arc<AtomicUsize>) -> Registry {
    Registry::builtin().with(WordDeletion { rows: rows.clone() })
}

/// Two jobs (one and two deletions) on 24 rows of the default corpus.
fn suite(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("plugin.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"plugin\"\nseed = 5\nmodels = [\"{}\"]\ncorpora = [\"{}\"]\n\n\
             [[attack]]\nname = \"delete-one\"\nkind = \"word-deletion\"\nlimit = 24\n\
             settings = {{ deletions = 1 }}\nmax_flip_rate = 1.0\n\n\
             [[attack]]\nname = \"delete-two\"\nkind = \"word-deletion\"\nlimit = 24\n\
             settings = {{ deletions = 2 }}\n",
            default_model_dir().display(),
            default_corpus().display()
        ),
    )
    .unwrap();
    path
}

fn options(out: &Path) -> RunOptions {
    RunOptions {
        out: out.to_path_buf(),
        resume: None,
        shard: None,
        compare: None,
        alpha: 0.05,
        inference: InferenceOptions {
            threads: 2,
            ..InferenceOptions::default()
        },
    }
}

fn finished_dir(outcome: RunOutcome) -> std::path::PathBuf {
    match outcome {
        RunOutcome::Finished(run) => run.run_dir.clone(),
        other => panic!("a finished run, not {other:?}"),
    }
}

/// Every job's examples.csv and summary.csv under a run folder, by job.
fn job_csvs(run_dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut jobs: Vec<_> = std::fs::read_dir(run_dir.join("jobs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    jobs.sort();
    for job in jobs {
        for file in ["examples.csv", "summary.csv"] {
            let text = std::fs::read_to_string(job.join(file)).unwrap();
            // Timings differ between runs; everything else must not.
            out.push((
                format!("{}/{file}", job.file_name().unwrap().to_string_lossy()),
                without_timings(&text),
            ));
        }
    }
    out
}

fn without_timings(csv_text: &str) -> String {
    let mut rdr = csv::Reader::from_reader(csv_text.as_bytes());
    let header = rdr.headers().unwrap().clone();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !header[i].contains("seconds"))
        .collect();
    let mut out = String::new();
    for record in std::iter::once(header.clone()).chain(rdr.records().map(Result::unwrap)) {
        let cells: Vec<&str> = keep.iter().map(|&i| &record[i]).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

#[test]
fn an_attack_defined_in_a_test_runs_through_a_suite_with_shards_and_resume() {
    let work = tempfile::tempdir().unwrap();
    let suite_path = suite(work.path());
    let rows = Arc::new(AtomicUsize::new(0));

    // The built-in registry does not know the kind; the error names the entry and the kinds.
    let unknown = Suite::load(&suite_path).err().unwrap();
    let message = format!("{unknown:#}");
    let chain: Vec<String> =
        std::iter::successors(Some(&unknown as &dyn std::error::Error), |e| e.source())
            .map(|e| e.to_string())
            .collect();
    assert!(
        chain
            .iter()
            .any(|m| m.contains("word-deletion") && m.contains("is not a kind")),
        "{message}: {chain:?}"
    );

    // Whole.
    let loaded = Suite::load_with(&registry(&rows), &suite_path).unwrap();
    assert_eq!(loaded.jobs.len(), 2);
    let whole =
        finished_dir(run(&loaded, &options(&work.path().join("whole")), &mut Quiet).unwrap());
    let expected = job_csvs(&whole);
    let summary = &expected
        .iter()
        .find(|(n, _)| n.contains("delete-one") && n.ends_with("summary.csv"))
        .unwrap()
        .1;
    assert!(summary.contains("word-deletion"), "{summary}");
    assert!(summary.contains("deletions=1"), "{summary}");
    let attacked = rows.load(Ordering::SeqCst);
    assert!(attacked > 0 && attacked <= 48, "{attacked} rows attacked");

    // Interrupted after its first job (a panic where a kill would land), then resumed: the
    // finished job is not run again, and the results are the whole run's.
    struct StopAtSecond(usize);
    impl Observer for StopAtSecond {
        fn job_started(&mut self, _: &str, _: &str) {
            self.0 += 1;
            if self.0 == 2 {
                panic!("interrupted");
            }
        }
    }
    let out = work.path().join("resumed");
    let interrupted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(&loaded, &options(&out), &mut StopAtSecond(0))
    }));
    assert!(interrupted.is_err(), "the run was interrupted");
    let before = rows.load(Ordering::SeqCst);
    let mut resume = options(&out);
    resume.resume = Some(ResumeFrom::Latest);
    let resumed = finished_dir(run(&loaded, &resume, &mut Quiet).unwrap());
    let redone = rows.load(Ordering::SeqCst) - before;
    assert!(
        redone < attacked,
        "the resume ran only the unfinished job ({redone} rows of {attacked})"
    );
    assert_eq!(job_csvs(&resumed), expected);

    // Four shards of a two-job suite split the jobs by rows; merged, they are the whole run.
    let mut shard_dirs = Vec::new();
    for index in 1..=4 {
        let mut o = options(&work.path().join(format!("shard{index}")));
        o.shard = Some(Shard { index, count: 4 });
        match run(&loaded, &o, &mut Quiet).unwrap() {
            RunOutcome::Shard { run_dir, .. } => shard_dirs.push(run_dir),
            other => panic!("a shard, not {other:?}"),
        }
    }
    let registry = registry(&rows);
    let merged = merge_with(
        &shard_dirs,
        &work.path().join("merged"),
        &MergeOptions {
            compare: None,
            alpha: 0.05,
            inference: &InferenceOptions::default(),
            force: false,
            registry: &registry,
        },
    )
    .unwrap();
    let Merged::Suite(merged) = merged else {
        panic!("a suite merge")
    };
    assert_eq!(job_csvs(&merged.run_dir), expected);
}
