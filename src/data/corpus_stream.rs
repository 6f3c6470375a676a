//! A corpus read in blocks of whole records, so that a corpus of millions of rows never sits in
//! memory at once.
//!
//! Why blocks of the file rather than a second parser: each block (a few megabytes, cut at a
//! record boundary) is parsed by the same [`Corpus::parse`] that reads whole files, behind a
//! copy of the header, and its line numbers are shifted to where the block sits in the file.
//! So a row, an error message or a blank-line count is the same whether the corpus is read
//! whole or in blocks; only memory differs. Record boundaries are newlines for TSV and, for
//! CSV (whose quoted fields may span lines), the start of the last record the CSV reader sees
//! in the buffer.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::data::corpus::{Columns, Corpus, CorpusError};

/// Bytes of the file parsed at once: about 75,000 SST-2 rows, so SST-2 train (3.8 MB) is one
/// block. Each row of a block costs about 1 KB while it is encoded and run.
pub const DEFAULT_BLOCK_BYTES: usize = 4 << 20;

/// Blocks of a corpus file, in order; see the module docs.
pub struct CorpusBlocks {
    path: PathBuf,
    columns: Columns,
    file: crate::data::source::Source,
    /// CSV (quoted fields may span lines) rather than TSV; decided as [`Corpus::parse`]
    /// decides, from the extension or else the first line.
    csv: Option<bool>,
    block_bytes: usize,
    hasher: Sha256,
    /// Bytes read but not yet parsed; they start at a record boundary.
    pending: Vec<u8>,
    eof: bool,
    /// The header record (with its line ending), prepended to every block but the first.
    header: Option<Vec<u8>>,
    /// The first block's text and label column names, for blocks of blank lines only.
    template: Option<(String, Option<String>)>,
    /// Newlines before `pending` in the file.
    lines_before: usize,
    rows: usize,
    blank_lines: usize,
}

impl CorpusBlocks {
    /// Open `path` to be read in blocks of about `block_bytes` bytes (a record longer than
    /// that makes its block larger), with `columns` as [`Corpus::read`] takes them. Nothing
    /// is read until the first [`CorpusBlocks::next_block`].
    pub fn open(path: &Path, columns: &Columns, block_bytes: usize) -> Result<Self, CorpusError> {
        // #30 item 7: a FIFO or `-` is read once, and every later open reads its copy.
        let file =
            crate::data::source::open(path).map_err(|source| CorpusError::reading(path, source))?;
        let csv = match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
        {
            Some(e) if e == "csv" => Some(true),
            Some(e) if e == "tsv" || e == "tab" => Some(false),
            _ => None,
        };
        Ok(Self {
            path: path.to_path_buf(),
            columns: columns.clone(),
            file,
            csv,
            block_bytes: block_bytes.max(1),
            hasher: Sha256::new(),
            pending: Vec::new(),
            eof: false,
            header: None,
            template: None,
            lines_before: 0,
            rows: 0,
            blank_lines: 0,
        })
    }

    /// Read until `pending` holds `want` bytes or the file ends.
    fn fill(&mut self, want: usize) -> Result<(), CorpusError> {
        if self.eof || self.pending.len() >= want {
            return Ok(());
        }
        let start = self.pending.len();
        let read = (&mut self.file)
            .take((want - start) as u64)
            .read_to_end(&mut self.pending)
            .map_err(|source| CorpusError::reading(&self.path, source))?;
        self.hasher.update(&self.pending[start..]);
        // `take` stops at `want` or at the end of the file, whichever comes first.
        self.eof = start + read < want;
        Ok(())
    }

    /// Where the last complete record in `pending` ends (0 if none is complete yet).
    fn boundary(&mut self) -> usize {
        if self.eof {
            return self.pending.len();
        }
        let csv = *self.csv.get_or_insert_with(|| {
            let first = self
                .pending
                .split(|&b| b == b'\n')
                .next()
                .unwrap_or_default();
            !first.contains(&b'\t')
        });
        if !csv {
            return self
                .pending
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&self.pending[..]);
        let mut record = csv::ByteRecord::new();
        let mut last_start = 0;
        loop {
            let start = reader.position().byte();
            match reader.read_byte_record(&mut record) {
                Ok(true) => {
                    last_start = record.position().map_or(start, |p| p.byte()) as usize;
                }
                // A parse error is reported by the parse of the block that holds it.
                Ok(false) | Err(_) => break,
            }
        }
        // The last record may be cut off: the block ends where it starts, after any line
        // endings before it (those belong to the block they end).
        let mut at = last_start.min(self.pending.len());
        while at < self.pending.len() && matches!(self.pending[at], b'\n' | b'\r') {
            at += 1;
        }
        at
    }

    /// The next block of rows (`None` after the last), with line numbers as in the file.
    pub fn next_block(&mut self) -> Result<Option<Corpus>, CorpusError> {
        let mut want = self.block_bytes;
        let (cut, first) = loop {
            self.fill(want)?;
            if self.pending.is_empty() {
                return self.finish_check().map(|()| None);
            }
            let cut = self.boundary();
            // #30 item 8: the record after the last complete one is still going past the
            // limit: an error naming its line, before memory grows with it.
            if !self.eof && self.pending.len() - cut > crate::data::source::MAX_LINE_BYTES {
                let newlines = self.pending[..cut].iter().filter(|&&b| b == b'\n').count();
                return Err(CorpusError::Line {
                    path: self.path.clone(),
                    line: self.lines_before + newlines + 1,
                    problem: crate::data::corpus::LineProblem::TooLong,
                });
            }
            if cut > 0 && self.header.is_some() {
                break (cut, None);
            }
            if cut > 0 {
                // The first block must hold the header and a row, so that every later block
                // can be read behind the header (and a file of only a header is refused).
                match Corpus::parse(&self.path, &self.pending[..cut], &self.columns) {
                    Ok(c) => break (cut, Some(c)),
                    Err(CorpusError::Empty { .. } | CorpusError::NoRows { .. }) if !self.eof => {}
                    Err(e) => return Err(e),
                }
            }
            // One record larger than a block, or no row yet: read on (for this block only).
            want = want.saturating_mul(2);
        };
        let block: Vec<u8> = self.pending.drain(..cut).collect();
        let newlines = block.iter().filter(|&&b| b == b'\n').count();
        let parsed = match (&self.header, first) {
            (_, Some(corpus)) => {
                self.header = Some(header_record(&block, self.csv == Some(true)));
                self.template = Some((corpus.text_column.clone(), corpus.label_column.clone()));
                Ok(corpus)
            }
            (None, None) => unreachable!("the first block is parsed in the loop above"),
            (Some(header), None) => {
                let header_lines = header.iter().filter(|&&b| b == b'\n').count();
                let mut text = header.clone();
                text.extend_from_slice(&block);
                // Line r of `text` is line r - header_lines + lines_before of the file.
                let shift = |line: usize| line + self.lines_before - header_lines;
                match Corpus::parse(&self.path, &text, &self.columns) {
                    Ok(mut c) => {
                        for row in &mut c.rows {
                            row.line = shift(row.line);
                        }
                        Ok(c)
                    }
                    Err(CorpusError::NoRows { .. }) => {
                        let (text_column, label_column) = self.template.clone().unwrap_or_default();
                        Ok(Corpus {
                            path: self.path.clone(),
                            rows: Vec::new(),
                            blank_lines: blank_lines(&block),
                            text_column,
                            label_column,
                            pair_column: self.columns.pair.clone(),
                            sha256: String::new(),
                        })
                    }
                    Err(CorpusError::Line {
                        path,
                        line,
                        problem,
                    }) => Err(CorpusError::Line {
                        path,
                        line: shift(line),
                        problem,
                    }),
                    Err(e) => Err(e),
                }
            }
        }?;
        self.lines_before += newlines;
        self.rows += parsed.rows.len();
        self.blank_lines += parsed.blank_lines;
        Ok(Some(parsed))
    }

    fn finish_check(&self) -> Result<(), CorpusError> {
        if self.header.is_none() {
            return Err(CorpusError::Empty {
                path: self.path.clone(),
            });
        }
        if self.rows == 0 {
            return Err(CorpusError::NoRows {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Rows and blank lines read so far.
    pub fn counts(&self) -> (usize, usize) {
        (self.rows, self.blank_lines)
    }

    /// sha256 of the whole file, once every block is read.
    pub fn sha256(self) -> String {
        self.hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Blank lines as [`Corpus::parse`] counts them: whitespace-only lines, but not the empty
/// piece after a final newline.
fn blank_lines(block: &[u8]) -> usize {
    let pieces: Vec<&[u8]> = block.split(|&b| b == b'\n').collect();
    let last = pieces.len();
    pieces
        .iter()
        .enumerate()
        .filter(|&(i, l)| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            l.iter().all(u8::is_ascii_whitespace) && !(i + 1 == last && l.is_empty())
        })
        .count()
}

/// The first record of a block that starts the file: its header, with its line ending. Blank
/// lines before it are left out (they were counted in the first block).
fn header_record(block: &[u8], csv: bool) -> Vec<u8> {
    let mut start = 0;
    for line in block.split_inclusive(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            start += line.len();
        } else {
            break;
        }
    }
    let rest = &block[start..];
    let end = if csv {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(rest);
        let mut record = csv::ByteRecord::new();
        let _ = reader.read_byte_record(&mut record);
        reader.position().byte() as usize
    } else {
        rest.iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1)
    };
    let mut header = rest[..end.min(rest.len())].to_vec();
    if !header.ends_with(b"\n") {
        header.push(b'\n');
    }
    header
}

/// What a first pass over a corpus file learns, before any model work: its name, sha256 and
/// row count, with every row parsed and every label checked against the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusScan {
    /// The file's name, as reports give it.
    pub name: String,
    /// sha256 of the whole file.
    pub sha256: String,
    /// Rows in the file (not cut to any limit).
    pub rows: usize,
    /// Blank lines skipped.
    pub blank_lines: usize,
    /// Whether the corpus has a label column.
    pub labelled: bool,
    /// Whether the corpus has a pair column (rows are sentence pairs).
    pub pairs: bool,
}

/// Read `path` block by block and check it whole: parse errors and labels the model does not
/// know come out here, naming the line, as when the file is read at once, and index labels
/// are checked over the whole file ([`check_index_labels`](crate::data::corpus::check_index_labels),
/// with its warning logged). Labels are checked on the first `check_rows` rows (all without
/// a limit), and only where the corpus has a label column unless `require_labels`.
pub fn scan(
    path: &Path,
    columns: &Columns,
    model: &crate::model::ModelInfo,
    check_rows: Option<usize>,
    require_labels: bool,
    block_bytes: usize,
) -> Result<CorpusScan, CorpusError> {
    let mut blocks = CorpusBlocks::open(path, columns, block_bytes)?;
    let mut used: Option<std::collections::BTreeSet<usize>> = Some(Default::default());
    let (mut name, mut labelled, mut pairs) = (String::new(), false, false);
    let mut seen = 0;
    while let Some(mut block) = blocks.next_block()? {
        // Rows past the limit are parsed (the file must be well formed) but not label-checked,
        // as when the corpus is read whole and cut to the limit.
        let keep = check_rows.map_or(block.rows.len(), |l| l.saturating_sub(seen));
        seen += block.rows.len();
        block.rows.truncate(keep);
        name = block.name();
        labelled = block.label_column.is_some();
        pairs = block.pair_column.is_some();
        if !(labelled || require_labels) {
            continue;
        }
        block.row_label_indices(model)?;
        if block.rows.is_empty() {
            continue;
        }
        used = match (used, block.index_labels_used(model)) {
            (Some(mut all), Some(here)) => {
                all.extend(here);
                Some(all)
            }
            _ => None,
        };
    }
    let (rows, blank_lines) = blocks.counts();
    if labelled || require_labels {
        crate::data::corpus::check_index_labels(path, model, used.as_ref())?;
        if let Some(warning) = crate::data::corpus::index_label_warning(path, model, used.as_ref())
        {
            tracing::warn!("{warning}");
        }
    }
    Ok(CorpusScan {
        name,
        sha256: blocks.sha256(),
        rows,
        blank_lines,
        labelled,
        pairs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn whole_and_blocks(
        name: &str,
        bytes: &[u8],
        block: usize,
    ) -> (Result<Corpus, String>, Result<Corpus, String>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let columns = Columns::default();
        let whole = Corpus::read(&path, &columns).map_err(|e| e.to_string());
        let blocks = (|| {
            let mut b = CorpusBlocks::open(&path, &columns, block).map_err(|e| e.to_string())?;
            let mut rows = Vec::new();
            let mut first: Option<Corpus> = None;
            while let Some(c) = b.next_block().map_err(|e| e.to_string())? {
                rows.extend(c.rows.iter().cloned());
                first.get_or_insert(c);
            }
            let (_, blank_lines) = b.counts();
            let mut c = first.ok_or("no blocks")?;
            c.rows = rows;
            c.blank_lines = blank_lines;
            c.sha256 = b.sha256();
            Ok(c)
        })();
        (whole, blocks)
    }

    fn same(
        whole: Result<Corpus, String>,
        blocks: Result<Corpus, String>,
    ) -> Result<(), TestCaseError> {
        match (whole, blocks) {
            (Ok(w), Ok(b)) => {
                prop_assert_eq!(&w.rows, &b.rows);
                prop_assert_eq!(w.blank_lines, b.blank_lines);
                prop_assert_eq!(w.sha256, b.sha256);
            }
            (Err(w), Err(b)) => prop_assert_eq!(w, b),
            (w, b) => prop_assert!(
                false,
                "whole {:?} vs blocks {:?}",
                w.map(|c| c.rows.len()),
                b.map(|c| c.rows.len())
            ),
        }
        Ok(())
    }

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z ]{1,12}\t(positive|negative)".prop_map(|s| s),
            Just(String::new()),
            Just("   ".to_string()),
            "[a-z]{1,5}".prop_map(|s| s), // ragged: one field
        ]
    }

    proptest! {
        /// Read in blocks of any size, a TSV gives the rows, line numbers, blank-line count,
        /// digest and first error that reading it whole gives.
        #[test]
        fn tsv_blocks_read_like_the_whole_file(lines in prop::collection::vec(line(), 0..40), block in 1usize..64, crlf: bool, final_newline: bool) {
            let nl = if crlf { "\r\n" } else { "\n" };
            let mut text = format!("sentence\tlabel{nl}");
            text.push_str(&lines.join(nl));
            if final_newline { text.push_str(nl); }
            let (w, b) = whole_and_blocks("c.tsv", text.as_bytes(), block);
            same(w, b)?;
        }

        /// CSV with quoted fields that hold commas, quotes and newlines, read in blocks.
        #[test]
        fn csv_blocks_read_like_the_whole_file(texts in prop::collection::vec("[a-z ,\"\n]{0,10}", 1..30), blanks in prop::collection::vec(any::<bool>(), 30), block in 1usize..64) {
            let mut text = String::from("text,label\n");
            for (t, blank) in texts.iter().zip(&blanks) {
                text.push_str(&format!("\"{}\",positive\n", t.replace('"', "\"\"")));
                if *blank { text.push('\n'); }
            }
            let (w, b) = whole_and_blocks("c.csv", text.as_bytes(), block);
            same(w, b)?;
        }
    }
}
