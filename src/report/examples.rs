//! `examples.csv`: one row per perturbed example (and one per skipped example, with its
//! reason), so every number in `summary.csv` can be traced to the sentences behind it.
//!
//! The rows are written as outcomes arrive ([`ExamplesWriter`]): an attack on a corpus of
//! millions of rows streams them to disk rather than holding every variant until the end.

use std::io::Write;

use super::{ReportError, fixed};
use crate::score::{AttackReport, ExampleOutcome};

/// `examples.csv` of one scored report, whole.
pub fn examples_csv(r: &AttackReport) -> Result<String, ReportError> {
    // Sentence pairs get two more columns after the texts: which segment the attack perturbed
    // and the other segment, so that every row can be fed back to the model as it ran.
    let pairs = r.outcomes.iter().any(|o| o.context.is_some());
    let search = r
        .outcomes
        .iter()
        .any(|o| o.variants().iter().any(|v| v.perturbation.edit.is_some()));
    let mut w = ExamplesWriter::new(
        Vec::new(),
        &r.provenance.attack,
        &r.provenance.labels,
        pairs,
    )?
    .with_search_columns(search)?;
    for o in &r.outcomes {
        w.write(o)?;
    }
    String::from_utf8(w.finish()?).map_err(|e| ReportError::Serialise(Box::new(e)))
}

/// Writes `examples.csv` one outcome at a time; the header goes first, on creation.
pub struct ExamplesWriter<W: Write> {
    csv: csv::Writer<W>,
    /// The file written, named in errors.
    path: std::path::PathBuf,
    attack: String,
    labels: Vec<String>,
    pairs: bool,
    /// Whether the header is still to be written (it waits for [`ExamplesWriter::with_search_columns`]).
    header: Option<Vec<&'static str>>,
    /// A per-example search's columns: how it ended, the words changed and the similarity.
    search: bool,
}

/// The columns a per-example search's rows add at the end.
const SEARCH_COLUMNS: [&str; 5] = [
    "search_end",
    "words_changed",
    "words",
    "changed_words",
    "similarity",
];

fn ser(e: csv::Error) -> ReportError {
    ReportError::Serialise(Box::new(e))
}

/// A failed write (a full disk, a file-size limit) is a write error naming the file, not a
/// serialisation error.
fn write_err(path: &std::path::Path) -> impl Fn(csv::Error) -> ReportError + '_ {
    move |e| {
        if !matches!(e.kind(), csv::ErrorKind::Io(_)) {
            return ser(e);
        }
        match e.into_kind() {
            csv::ErrorKind::Io(source) => ReportError::Write {
                path: path.to_path_buf(),
                source,
            },
            _ => unreachable!("matched as an I/O error above"),
        }
    }
}

impl<W: Write> ExamplesWriter<W> {
    /// Start `examples.csv` of attack `attack` on `out`. `pairs`: the corpus is of sentence
    /// pairs, and rows name the attacked segment and the other one.
    pub fn new(out: W, attack: &str, labels: &[String], pairs: bool) -> Result<Self, ReportError> {
        let csv = csv::Writer::from_writer(out);
        let mut header = vec![
            "attack",
            "line",
            "sample",
            "group",
            "gold",
            "original_text",
            "perturbed_text",
        ];
        if pairs {
            header.extend(["segment", "other_segment"]);
        }
        header.extend([
            "detail",
            "original_label",
            "original_confidence",
            "perturbed_label",
            "perturbed_confidence",
            "changed",
            "queries",
            "skip_reason",
        ]);
        Ok(ExamplesWriter {
            csv,
            path: "examples.csv".into(),
            attack: attack.to_string(),
            labels: labels.to_vec(),
            pairs,
            header: Some(header),
            search: false,
        })
    }

    /// Add the per-example search's columns ([`SEARCH_COLUMNS`]) to every row; before the
    /// first row.
    pub fn with_search_columns(mut self, search: bool) -> Result<Self, ReportError> {
        self.search = search;
        self.write_header()?;
        Ok(self)
    }

    /// Rows only, no header: the rows of a chunk, for a checkpoint that keeps them apart.
    pub fn rows_only(mut self) -> Self {
        self.header = None;
        self
    }

    /// Write `rows`, rows this writer's kind wrote before (a checkpoint's), as they are, after
    /// the header.
    pub fn write_raw(&mut self, rows: &[u8]) -> Result<(), ReportError> {
        self.write_header()?;
        // Read back and written again by the same writer, a record comes out byte for byte
        // as it went in.
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(rows);
        for record in reader.byte_records() {
            let record = record.map_err(ser)?;
            self.csv
                .write_byte_record(&record)
                .map_err(write_err(&self.path))?;
        }
        Ok(())
    }

    fn write_header(&mut self) -> Result<(), ReportError> {
        if let Some(mut header) = self.header.take() {
            if self.search {
                header.extend(SEARCH_COLUMNS);
            }
            self.csv.write_record(&header).map_err(ser)?;
        }
        Ok(())
    }

    /// Name `path` in write errors.
    pub fn naming(mut self, path: std::path::PathBuf) -> Self {
        self.path = path;
        self
    }

    fn label(&self, i: usize) -> String {
        self.labels.get(i).cloned().unwrap_or_else(|| i.to_string())
    }

    /// The rows of one example: one per variant, or one naming why it was skipped.
    pub fn write(&mut self, o: &ExampleOutcome) -> Result<(), ReportError> {
        self.write_header()?;
        let gold = o.gold.map(|g| self.label(g)).unwrap_or_default();
        let orig_label = self.label(o.original.label);
        let orig_conf = fixed(f64::from(o.original.confidence()), 6);
        let pair_fields: Vec<String> = match (&o.context, self.pairs) {
            (_, false) => Vec::new(),
            (Some(c), true) => vec![c.segment.as_str().to_string(), c.other.clone()],
            (None, true) => vec![String::new(), String::new()],
        };
        let search_fields = |v: Option<&crate::score::PerturbedOutcome>| -> Vec<String> {
            if !self.search {
                return Vec::new();
            }
            let Some(edit) = v.and_then(|v| v.perturbation.edit.as_deref()) else {
                return vec![String::new(); SEARCH_COLUMNS.len()];
            };
            vec![
                edit.end.as_str().to_string(),
                edit.changes.len().to_string(),
                edit.words.to_string(),
                edit.changes
                    .iter()
                    .map(|c| format!("{}:{}->{}", c.index, c.from, c.to))
                    .collect::<Vec<_>>()
                    .join(" "),
                edit.similarity
                    .map_or_else(String::new, |s| fixed(f64::from(s), 6)),
            ]
        };
        // (sample, group, perturbed text, detail, perturbed label, confidence, changed, skip)
        let rows: Vec<([String; 8], Vec<String>)> = match &o.result {
            Err(reason) => vec![(
                [
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    reason.as_str().to_string(),
                ],
                search_fields(None),
            )],
            Ok(variants) => variants
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let p = &v.prediction;
                    let changed = if p.label != o.original.label {
                        "1"
                    } else {
                        "0"
                    };
                    (
                        [
                            i.to_string(),
                            v.perturbation.group.clone(),
                            v.perturbation.text.clone(),
                            v.perturbation.detail.clone(),
                            self.label(p.label),
                            fixed(f64::from(p.confidence()), 6),
                            changed.to_string(),
                            String::new(),
                        ],
                        search_fields(Some(v)),
                    )
                })
                .collect(),
        };
        for (
            [
                sample,
                group,
                perturbed,
                detail,
                p_label,
                p_conf,
                changed,
                skip,
            ],
            search,
        ) in rows
        {
            let mut record = vec![
                self.attack.clone(),
                o.line.to_string(),
                sample,
                group,
                gold.clone(),
                o.text.clone(),
                perturbed,
            ];
            record.extend(pair_fields.iter().cloned());
            record.extend([
                detail,
                orig_label.clone(),
                orig_conf.clone(),
                p_label,
                p_conf,
                changed,
                o.queries.to_string(),
                skip,
            ]);
            record.extend(search);
            self.csv
                .write_record(&record)
                .map_err(write_err(&self.path))?;
        }
        Ok(())
    }

    /// Flush and hand back the output.
    pub fn finish(mut self) -> Result<W, ReportError> {
        self.write_header()?;
        let path = self.path;
        self.csv.into_inner().map_err(|e| ReportError::Write {
            path,
            source: e.into_error(),
        })
    }
}
