//! The corpus reader every command shares.
//!
//! Corpora come as TSV (GLUE style: a header, no quoting) or CSV (RFC 4180 quoting), with the
//! text and label columns chosen by name. Every problem is reported with the file and line it
//! is on, because a robustness number computed over silently dropped rows is worse than none.
//! Blank lines are the one thing skipped, and they are counted.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::model::ModelInfo;

/// Text columns tried in order when none is named (GLUE uses `sentence`, others `text`).
pub const DEFAULT_TEXT_COLUMNS: [&str; 2] = ["sentence", "text"];
/// Label column read when none is named.
pub const DEFAULT_LABEL_COLUMN: &str = "label";

pub use crate::data::source::MAX_LINE_BYTES;

/// Why a corpus could not be read; each names the file, and the line where there is one.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The file could not be opened or read.
    #[error("failed to read {path}")]
    Io {
        /// The corpus file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The file holds nothing but whitespace.
    #[error("{path}: the file is empty")]
    Empty {
        /// The corpus file.
        path: PathBuf,
    },
    /// A problem with one line (the header or a row).
    #[error("{path}:{line}: {problem}")]
    Line {
        /// The corpus file.
        path: PathBuf,
        /// 1-based line number; for a CSV record spanning lines, the line it starts on.
        line: usize,
        /// What is wrong with it.
        problem: LineProblem,
    },
    /// A header and no rows (blank lines aside).
    #[error("{path}: no data rows after the header")]
    NoRows {
        /// The corpus file.
        path: PathBuf,
    },
    /// The corpus's labels as a whole do not fit the model ([`check_index_labels`]).
    #[error("{path}: {message}")]
    LabelSet {
        /// The corpus file.
        path: PathBuf,
        /// What does not fit, and what to do about it.
        message: String,
    },
}

impl CorpusError {
    /// An error reading `path`: a line over [`MAX_LINE_BYTES`] found while reading it is
    /// named as that line's problem, anything else is the operating system's.
    pub fn reading(path: &Path, source: std::io::Error) -> Self {
        match crate::data::source::LineTooLong::of(&source) {
            Some(line) => CorpusError::Line {
                path: path.to_path_buf(),
                line,
                problem: LineProblem::TooLong,
            },
            None => CorpusError::Io {
                path: path.to_path_buf(),
                source,
            },
        }
    }
}

/// What is wrong with one line of a corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineProblem {
    /// A named column (text, label or pair), or the default label column when a label is
    /// required, is not in the header.
    MissingColumn {
        /// The name looked for.
        column: String,
        /// The header's column names.
        header: Vec<String>,
    },
    /// No text column was named and none of [`DEFAULT_TEXT_COLUMNS`] is in the header.
    NoTextColumn {
        /// The header's column names.
        header: Vec<String>,
    },
    /// A row with a different number of fields from the header.
    Ragged {
        /// Fields in the header.
        expected: usize,
        /// Fields in the row.
        found: usize,
    },
    /// A field (or header cell) that is not valid UTF-8.
    InvalidUtf8,
    /// The text field is empty (after trimming whitespace).
    EmptyText,
    /// The second segment of a sentence pair is empty.
    EmptyPair {
        /// The pair column's name.
        column: String,
    },
    /// Two header cells with the same name: which one a column name means is ambiguous.
    DuplicateColumn {
        /// The repeated name.
        column: String,
    },
    /// A NUL byte in a text field: no tokenizer or spreadsheet treats it as text.
    NulByte,
    /// A label that is neither one of the model's label names nor an index into them.
    UnknownLabel {
        /// The label as written in the corpus.
        label: String,
        /// The model's labels, in index order.
        known: Vec<String>,
    },
    /// The CSV reader's complaint (an unclosed quote, say).
    Csv(String),
    /// A line (for CSV, a record) longer than [`MAX_LINE_BYTES`] (#30 item 8).
    TooLong,
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineProblem::MissingColumn { column, header } => {
                write!(
                    f,
                    "no column named {column:?} in the header (columns: {})",
                    header.join(", ")
                )
            }
            LineProblem::NoTextColumn { header } => write!(
                f,
                "no text column: none of {:?} in the header (columns: {}); name one with --text-col",
                DEFAULT_TEXT_COLUMNS,
                header.join(", ")
            ),
            LineProblem::Ragged { expected, found } => {
                write!(f, "row has {found} fields, the header has {expected}")
            }
            LineProblem::InvalidUtf8 => write!(f, "invalid UTF-8"),
            LineProblem::DuplicateColumn { column } => write!(
                f,
                "the header names column {column:?} twice; rename one so it is clear which is meant"
            ),
            LineProblem::NulByte => write!(f, "the row holds a NUL byte"),
            LineProblem::EmptyText => write!(f, "the text field is empty"),
            LineProblem::EmptyPair { column } => {
                write!(f, "the pair field {column:?} is empty")
            }
            LineProblem::UnknownLabel { label, known } => write!(
                f,
                "unknown label {label:?}: the model's labels are {} (or their indices {})",
                known.join(", "),
                match known.len() {
                    0 | 1 => "0".to_string(),
                    2 => "0 and 1".to_string(),
                    n => format!("0 to {}", n - 1),
                }
            ),
            LineProblem::Csv(message) => write!(f, "malformed CSV: {message}"),
            LineProblem::TooLong => write!(
                f,
                "the line is longer than {MAX_LINE_BYTES} bytes, robust's limit (no line break \
                 within 1 MiB: is this a corpus file?)"
            ),
        }
    }
}

/// Which columns to read.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Columns {
    /// Column holding the text; `None` tries [`DEFAULT_TEXT_COLUMNS`].
    pub text: Option<String>,
    /// Column holding the gold label; `None` reads [`DEFAULT_LABEL_COLUMN`] if present.
    pub label: Option<String>,
    /// Column holding the second segment of a sentence pair (NLI's hypothesis, say).
    pub pair: Option<String>,
    /// Fail when the label column is absent (eval, attacks) instead of reading texts alone.
    pub require_label: bool,
}

/// One row of a corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based line number in the file, for error messages and reports.
    pub line: usize,
    /// The text (the first segment of a pair), trimmed of surrounding whitespace.
    pub text: String,
    /// The gold label as written (a name or an index); `None` when the corpus has no label
    /// column.
    pub label: Option<String>,
    /// The second segment, for corpora of sentence pairs.
    pub pair: Option<String>,
}

/// A corpus read whole into memory: its rows, in file order, and where they came from.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The file it was read from.
    pub path: PathBuf,
    /// The data rows, in file order.
    pub rows: Vec<Row>,
    /// Blank lines skipped (the newline that ends the file does not count).
    pub blank_lines: usize,
    /// The text column used, named or found among [`DEFAULT_TEXT_COLUMNS`].
    pub text_column: String,
    /// The label column used; `None` when there is none and none was required.
    pub label_column: Option<String>,
    /// The column of second segments, for sentence pairs.
    pub pair_column: Option<String>,
    /// sha256 of the file's bytes, lower-case hex.
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Tsv,
    Csv,
}

impl Corpus {
    /// Read and parse the file at `path`.
    /// A FIFO or `-` (standard input) is read once ([`crate::data::source`]).
    pub fn read(path: &Path, columns: &Columns) -> Result<Self, CorpusError> {
        let bytes =
            crate::data::source::read(path).map_err(|source| CorpusError::reading(path, source))?;
        Self::parse(path, &bytes, columns)
    }

    /// Parse bytes as if read from `path` (whose extension picks TSV or CSV).
    pub fn parse(path: &Path, bytes: &[u8], columns: &Columns) -> Result<Self, CorpusError> {
        let err = |line: usize, problem: LineProblem| CorpusError::Line {
            path: path.to_path_buf(),
            line,
            problem,
        };
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(CorpusError::Empty {
                path: path.to_path_buf(),
            });
        }
        if let Some(i) = bytes
            .split(|&b| b == b'\n')
            .position(|l| l.len() > MAX_LINE_BYTES)
        {
            return Err(err(i + 1, LineProblem::TooLong));
        }
        let format = match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
        {
            Some(e) if e == "csv" => Format::Csv,
            Some(e) if e == "tsv" || e == "tab" => Format::Tsv,
            _ => {
                let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
                if first.contains(&b'\t') {
                    Format::Tsv
                } else {
                    Format::Csv
                }
            }
        };
        let (records, blank_lines) = match format {
            Format::Tsv => split_tsv(bytes),
            Format::Csv => {
                split_csv(bytes).map_err(|(line, message)| err(line, LineProblem::Csv(message)))?
            }
        };
        let mut records = records.into_iter();
        let (header_line, header) = records.next().ok_or_else(|| CorpusError::Empty {
            path: path.to_path_buf(),
        })?;
        let header: Vec<String> = header
            .iter()
            .map(|f| {
                std::str::from_utf8(f).map(|s| s.trim().trim_start_matches('\u{feff}').to_string())
            })
            .collect::<Result<_, _>>()
            .map_err(|_| err(header_line, LineProblem::InvalidUtf8))?;
        for (i, h) in header.iter().enumerate() {
            if !h.is_empty() && header[..i].contains(h) {
                return Err(err(
                    header_line,
                    LineProblem::DuplicateColumn { column: h.clone() },
                ));
            }
        }
        let find = |name: &str| header.iter().position(|h| h == name);
        let (text_idx, text_column) = match &columns.text {
            Some(name) => (
                find(name).ok_or_else(|| {
                    err(
                        header_line,
                        LineProblem::MissingColumn {
                            column: name.clone(),
                            header: header.clone(),
                        },
                    )
                })?,
                name.clone(),
            ),
            None => DEFAULT_TEXT_COLUMNS
                .iter()
                .find_map(|n| find(n).map(|i| (i, n.to_string())))
                .ok_or_else(|| {
                    err(
                        header_line,
                        LineProblem::NoTextColumn {
                            header: header.clone(),
                        },
                    )
                })?,
        };
        let label_name = columns
            .label
            .clone()
            .unwrap_or_else(|| DEFAULT_LABEL_COLUMN.to_string());
        let label_idx = match find(&label_name) {
            Some(i) => Some(i),
            None if columns.require_label || columns.label.is_some() => {
                return Err(err(
                    header_line,
                    LineProblem::MissingColumn {
                        column: label_name,
                        header: header.clone(),
                    },
                ));
            }
            None => None,
        };
        let pair_idx = match &columns.pair {
            Some(name) => Some(find(name).ok_or_else(|| {
                err(
                    header_line,
                    LineProblem::MissingColumn {
                        column: name.clone(),
                        header: header.clone(),
                    },
                )
            })?),
            None => None,
        };
        let mut rows = Vec::new();
        for (line, fields) in records {
            if fields.len() != header.len() {
                return Err(err(
                    line,
                    LineProblem::Ragged {
                        expected: header.len(),
                        found: fields.len(),
                    },
                ));
            }
            let field = |i: usize| {
                std::str::from_utf8(&fields[i])
                    .map(|s| s.trim().to_string())
                    .map_err(|_| err(line, LineProblem::InvalidUtf8))
            };
            if fields.iter().any(|f| f.contains(&0)) {
                return Err(err(line, LineProblem::NulByte));
            }
            let text = field(text_idx)?;
            if text.is_empty() {
                return Err(err(line, LineProblem::EmptyText));
            }
            let label = label_idx.map(field).transpose()?;
            let pair = pair_idx.map(field).transpose()?;
            if pair.as_ref().is_some_and(String::is_empty) {
                let column = columns.pair.clone().unwrap_or_default();
                return Err(err(line, LineProblem::EmptyPair { column }));
            }
            rows.push(Row {
                line,
                text,
                label,
                pair,
            });
        }
        if rows.is_empty() {
            return Err(CorpusError::NoRows {
                path: path.to_path_buf(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            rows,
            blank_lines,
            text_column,
            label_column: label_idx.map(|_| label_name),
            pair_column: columns.pair.clone(),
            sha256: crate::hash::sha256_bytes(bytes),
        })
    }

    /// Each row's text (the first segment), in row order.
    pub fn texts(&self) -> Vec<&str> {
        self.rows.iter().map(|r| r.text.as_str()).collect()
    }

    /// Each row as the model takes it: its text, and its second segment where the corpus has
    /// sentence pairs.
    pub fn inputs(&self) -> Vec<crate::model::Input<'_>> {
        self.rows
            .iter()
            .map(|r| crate::model::Input::new(&r.text, r.pair.as_deref()))
            .collect()
    }

    /// Map each row's label (a name, case-insensitive, or an index) to the model's label index.
    ///
    /// Index labels are only as good as the order they assume. A corpus labelled 0/1 on a model
    /// of three or more labels is refused (issue 15: on negative/neutral/positive, "1" read as
    /// `neutral`, silently); one whose indices leave some of the model's labels unused gets a
    /// warning ([`Corpus::label_warning`]).
    pub fn label_indices(&self, model: &ModelInfo) -> Result<Vec<usize>, CorpusError> {
        check_index_labels(&self.path, model, self.index_labels_used(model).as_ref())?;
        self.row_label_indices(model)
    }

    /// Each row's label index, without the check of the corpus's label set as a whole (which a
    /// corpus read in blocks makes once, over every block: [`check_index_labels`]).
    pub fn row_label_indices(&self, model: &ModelInfo) -> Result<Vec<usize>, CorpusError> {
        self.rows
            .iter()
            .map(|row| {
                let raw = row.label.as_deref().unwrap_or_default();
                model.label_index(raw).ok_or_else(|| CorpusError::Line {
                    path: self.path.clone(),
                    line: row.line,
                    problem: LineProblem::UnknownLabel {
                        label: raw.to_string(),
                        known: model.labels.clone(),
                    },
                })
            })
            .collect()
    }

    /// The distinct labels when every row's label is an index the model knows rather than one
    /// of its label names; `None` when any row names its label (or has none).
    pub fn index_labels_used(
        &self,
        model: &ModelInfo,
    ) -> Option<std::collections::BTreeSet<usize>> {
        let mut used = std::collections::BTreeSet::new();
        for row in &self.rows {
            let raw = row.label.as_deref()?.trim();
            if model.labels.iter().any(|l| l.eq_ignore_ascii_case(raw)) {
                return None;
            }
            used.insert(raw.parse::<usize>().ok()?);
        }
        (!used.is_empty()).then_some(used)
    }

    /// A warning for index labels that leave some of the model's labels unused: the corpus
    /// may have been labelled for a model with other labels, or in another order.
    pub fn label_warning(&self, model: &ModelInfo) -> Option<String> {
        index_label_warning(&self.path, model, self.index_labels_used(model).as_ref())
    }

    /// The file's name without its folder, as reports show it.
    pub fn name(&self) -> String {
        self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }
}

/// Refuse index labels 0 and 1 on a model of three or more labels (issue 15: on
/// negative/neutral/positive, "1" read as `neutral`, silently). `used` is the corpus's set of
/// index labels ([`Corpus::index_labels_used`], the union over blocks for a corpus read in
/// blocks).
pub fn check_index_labels(
    path: &Path,
    model: &ModelInfo,
    used: Option<&std::collections::BTreeSet<usize>>,
) -> Result<(), CorpusError> {
    if let Some(used) = used
        && model.labels.len() > 2
        && used.iter().copied().eq([0, 1])
    {
        return Err(CorpusError::LabelSet {
            path: path.to_path_buf(),
            message: format!(
                "labels are the indices 0 and 1, but model {} has {} labels ({}), so 1 would \
                     mean {:?}; write the labels by name",
                model.name,
                model.labels.len(),
                model.labels.join(", "),
                model.labels[1]
            ),
        });
    }
    Ok(())
}

/// The warning of [`Corpus::label_warning`] for the index labels `used` (over all of a
/// corpus's rows, `None` where any row names its label).
pub fn index_label_warning(
    path: &Path,
    model: &ModelInfo,
    used: Option<&std::collections::BTreeSet<usize>>,
) -> Option<String> {
    let used = used?;
    let unused: Vec<&str> = (0..model.labels.len())
        .filter(|i| !used.contains(i))
        .map(|i| model.labels[i].as_str())
        .collect();
    (!unused.is_empty()).then(|| {
        format!(
            "{}: labels are indices and never use {} of model {} ({}); check that the \
                 corpus was labelled in the model's order (names are safer than indices)",
            path.display(),
            unused.join(", "),
            model.name,
            model.labels.join(", ")
        )
    })
}

type Records = Vec<(usize, Vec<Vec<u8>>)>;

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace())
}

/// GLUE-style TSV: one record a line, fields split on tabs, no quoting.
fn split_tsv(bytes: &[u8]) -> (Records, usize) {
    let mut records = Vec::new();
    let mut blank = 0;
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let last = lines.len();
    for (i, raw) in lines.into_iter().enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if is_blank(line) {
            // The newline that ends the file is not a blank line.
            if !(i + 1 == last && line.is_empty()) {
                blank += 1;
            }
            continue;
        }
        records.push((
            i + 1,
            line.split(|&b| b == b'\t').map(<[u8]>::to_vec).collect(),
        ));
    }
    (records, blank)
}

/// RFC 4180 CSV, quoted fields may span lines; record line numbers are where records start.
fn split_csv(bytes: &[u8]) -> Result<(Records, usize), (usize, String)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = Vec::new();
    let mut record = csv::ByteRecord::new();
    // csv-core miscounts lines after CRLF endings, so lines are counted here from byte offsets.
    let (mut seen_byte, mut seen_line) = (0usize, 1usize);
    let mut line_at = |byte: u64| {
        let mut byte = (byte as usize).clamp(seen_byte, bytes.len());
        // A record's position can point at the line ending before it.
        while byte < bytes.len() && matches!(bytes[byte], b'\n' | b'\r') {
            byte += 1;
        }
        seen_line += bytes[seen_byte..byte]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        seen_byte = byte;
        seen_line
    };
    loop {
        let start = reader.position().byte();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let byte = record.position().map_or(start, |p| p.byte());
                records.push((line_at(byte), record.iter().map(<[u8]>::to_vec).collect()));
            }
            Err(e) => {
                let byte = e.position().map_or(start, |p| p.byte());
                return Err((line_at(byte), e.to_string()));
            }
        }
    }
    // csv skips blank lines itself; count the ones outside records for the report.
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let last = lines.len();
    let blank = lines
        .iter()
        .enumerate()
        .filter(|&(i, l)| {
            is_blank(l.strip_suffix(b"\r").unwrap_or(l)) && !(i + 1 == last && l.is_empty())
        })
        .count();
    Ok((records, blank))
}

/// Plain text, one input a line (`robust predict`): blank lines skipped and counted.
pub fn read_lines(path: &Path, bytes: &[u8]) -> Result<(Vec<Row>, usize), CorpusError> {
    let mut rows = Vec::new();
    let mut blank = 0;
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let last = lines.len();
    for (i, raw) in lines.into_iter().enumerate() {
        if raw.len() > MAX_LINE_BYTES {
            return Err(CorpusError::Line {
                path: path.to_path_buf(),
                line: i + 1,
                problem: LineProblem::TooLong,
            });
        }
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if is_blank(line) {
            if !(i + 1 == last && line.is_empty()) {
                blank += 1;
            }
            continue;
        }
        let text = std::str::from_utf8(line).map_err(|_| CorpusError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            problem: LineProblem::InvalidUtf8,
        })?;
        rows.push(Row {
            line: i + 1,
            text: text.trim().to_string(),
            label: None,
            pair: None,
        });
    }
    Ok((rows, blank))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, text: &[u8], columns: &Columns) -> Result<Corpus, CorpusError> {
        Corpus::parse(Path::new(name), text, columns)
    }

    fn labelled() -> Columns {
        Columns {
            require_label: true,
            ..Columns::default()
        }
    }

    #[test]
    fn reads_glue_tsv_and_counts_blank_lines() {
        let c = parse(
            "d.tsv",
            b"sentence\tlabel\na \"quoted\" film \t1\n\nbad\t0\n",
            &labelled(),
        )
        .unwrap();
        assert_eq!(c.rows.len(), 2);
        assert_eq!(c.rows[0].text, "a \"quoted\" film");
        assert_eq!(c.rows[1].line, 4);
        assert_eq!(c.blank_lines, 1);
        assert_eq!(c.text_column, "sentence");
    }

    #[test]
    fn reads_quoted_csv_with_named_columns() {
        let cols = Columns {
            text: Some("review".into()),
            label: Some("stars".into()),
            require_label: true,
            ..Columns::default()
        };
        let c = parse(
            "d.csv",
            b"id,review,stars\n1,\"good, really\",positive\r\n2,\"multi\nline\",0\n",
            &cols,
        )
        .unwrap();
        assert_eq!(c.rows[0].text, "good, really");
        assert_eq!(c.rows[1].text, "multi\nline");
        assert_eq!(c.rows[1].line, 3);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("d.tsv", b"text\tlabel\nok\t1\nragged\n", &labelled()).unwrap_err();
        assert_eq!(e.to_string(), "d.tsv:3: row has 1 fields, the header has 2");
        let e = parse("d.tsv", b"text\tlabel\nok\t1\n\xff\xfe\t0\n", &labelled()).unwrap_err();
        assert_eq!(e.to_string(), "d.tsv:3: invalid UTF-8");
        let e = parse("d.tsv", b"words\tlabel\nok\t1\n", &labelled()).unwrap_err();
        assert!(e.to_string().starts_with("d.tsv:1: no text column"), "{e}");
        let e = parse("d.tsv", b"text\tgold\nok\t1\n", &labelled()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("d.tsv:1: no column named \"label\""),
            "{e}"
        );
        let e = parse("d.tsv", b"text\tlabel\n \t1\n", &labelled()).unwrap_err();
        assert_eq!(e.to_string(), "d.tsv:2: the text field is empty");
        assert!(matches!(
            parse("d.tsv", b"", &labelled()),
            Err(CorpusError::Empty { .. })
        ));
        assert!(matches!(
            parse("d.tsv", b"\n \n", &labelled()),
            Err(CorpusError::Empty { .. })
        ));
        assert!(matches!(
            parse("d.tsv", b"text\tlabel\n\n", &labelled()),
            Err(CorpusError::NoRows { .. })
        ));
    }

    #[test]
    fn label_column_is_optional_unless_required() {
        let c = parse("d.tsv", b"text\tid\nhello\t7\n", &Columns::default()).unwrap();
        assert_eq!(c.rows[0].label, None);
        assert_eq!(c.label_column, None);
    }

    #[test]
    fn labels_resolve_by_name_or_index() {
        let info = ModelInfo {
            dir: PathBuf::from("m"),
            name: "m".into(),
            labels: vec!["negative".into(), "positive".into()],
            max_len: 128,
        };
        let c = parse(
            "d.tsv",
            b"text\tlabel\na\tPositive\nb\t0\nc\t1\n",
            &labelled(),
        )
        .unwrap();
        assert_eq!(c.label_indices(&info).unwrap(), vec![1, 0, 1]);
        let c = parse("d.tsv", b"text\tlabel\na\tneutral\n", &labelled()).unwrap();
        let e = c.label_indices(&info).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("d.tsv:2: unknown label \"neutral\""),
            "{e}"
        );
        let c = parse("d.tsv", b"text\tlabel\na\t2\n", &labelled()).unwrap();
        assert!(c.label_indices(&info).is_err());
    }

    /// Issue 15: a 0/1-labelled corpus on a negative/neutral/positive model read "1" as
    /// `neutral` with no warning.
    #[test]
    fn binary_index_labels_on_a_three_label_model_are_refused() {
        let three = ModelInfo {
            dir: PathBuf::from("m"),
            name: "m3".into(),
            labels: vec!["negative".into(), "neutral".into(), "positive".into()],
            max_len: 128,
        };
        let binary = parse("d.tsv", b"text\tlabel\na\t0\nb\t1\n", &labelled()).unwrap();
        let e = binary.label_indices(&three).unwrap_err().to_string();
        assert!(e.contains("1 would mean \"neutral\""), "{e}");
        // By name it is unambiguous, and warns of nothing.
        let named = parse(
            "d.tsv",
            b"text\tlabel\na\tnegative\nb\tpositive\n",
            &labelled(),
        )
        .unwrap();
        assert_eq!(named.label_indices(&three).unwrap(), vec![0, 2]);
        assert_eq!(named.label_warning(&three), None);
        // Indices that skip a label are read, with a warning that names it.
        let skips = parse("d.tsv", b"text\tlabel\na\t0\nb\t2\n", &labelled()).unwrap();
        assert_eq!(skips.label_indices(&three).unwrap(), vec![0, 2]);
        let w = skips.label_warning(&three).unwrap();
        assert!(w.contains("never use neutral"), "{w}");
        let all = parse("d.tsv", b"text\tlabel\na\t0\nb\t2\nc\t1\n", &labelled()).unwrap();
        assert_eq!(all.label_warning(&three), None);
    }

    #[test]
    fn plain_lines_skip_blanks() {
        let (rows, blank) = read_lines(Path::new("-"), b"one\n\n  \ntwo\n").unwrap();
        assert_eq!(
            rows.iter().map(|r| r.text.as_str()).collect::<Vec<_>>(),
            ["one", "two"]
        );
        assert_eq!(blank, 2);
        let e = read_lines(Path::new("in.txt"), b"ok\n\xc3\x28\n").unwrap_err();
        assert_eq!(e.to_string(), "in.txt:2: invalid UTF-8");
    }

    /// Issue 16: duplicate header names and NUL bytes were accepted silently.
    #[test]
    fn duplicate_columns_and_nul_bytes_are_errors() {
        let columns = Columns::default();
        let e = Corpus::parse(
            Path::new("d.tsv"),
            b"sentence\tlabel\tsentence\nok\t1\tother\n",
            &columns,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.tsv:1: the header names column \"sentence\" twice; rename one so it is clear which is meant"
        );
        let e = Corpus::parse(
            Path::new("n.tsv"),
            b"sentence\tlabel\nfine\t1\nbad\x00text\t0\n",
            &columns,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "n.tsv:3: the row holds a NUL byte");
    }
}
