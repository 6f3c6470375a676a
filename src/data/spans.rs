//! Rows whose meaning lives in character spans: a text, a pronoun span and candidate-name spans,
//! as GAP (Webster et al. 2018) writes them.
//!
//! Coreference data points at words by character offset, so an attack that rewrites a name must
//! move every offset after it, or the model is asked about the wrong word and the "flip" it
//! reports is an artefact. Offsets are therefore kept in one place: rows are read into byte
//! spans checked against the text they name, and every rewrite goes through [`apply_edits`],
//! which returns the new positions of the spans it was asked to track (and refuses an edit that
//! cuts through one).
//!
//! GAP offsets count Unicode code points (Python string indices); Rust strings are bytes, so
//! the reader converts once and everything after it works in bytes.

use std::path::{Path, PathBuf};

use crate::model::coref::{CandidateRow, SpanTemplate};

/// A byte range into a row's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// The byte range `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// The span's text in `text` (panics if the span is outside it or splits a character).
    pub fn of<'t>(&self, text: &'t str) -> &'t str {
        &text[self.start..self.end]
    }

    fn overlaps(&self, other: &Span) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// A candidate antecedent: its column name ("A"), the mention at its offset, and whether the
/// pronoun refers to it (when the corpus says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The corpus's column name for the candidate: `A` or `B`.
    pub label: String,
    /// The mention as the corpus writes it (the text at `span`).
    pub name: String,
    /// Where the mention is in the row's text.
    pub span: Span,
    /// Whether the pronoun refers to this candidate (`A-coref`/`B-coref`); `None` when the
    /// corpus has no such column.
    pub gold: Option<bool>,
}

/// One row of a span corpus: a text, its pronoun and its candidates, with byte spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanRow {
    /// Line in the corpus file (1-based, header is line 1).
    pub line: usize,
    /// The row's `ID` column, or `line-<line>` when the file has none.
    pub id: String,
    /// The passage.
    pub text: String,
    /// Where the pronoun is in `text`.
    pub pronoun: Span,
    /// The candidate antecedents, in column order (`A`, then `B`).
    pub candidates: Vec<Candidate>,
}

impl SpanRow {
    /// The pronoun as it stands in the text.
    pub fn pronoun_text(&self) -> &str {
        self.pronoun.of(&self.text)
    }

    /// Index of the gold candidate, `Some(None)` when the gold answer is "neither", `None` when
    /// the corpus gives no gold labels (or more than one candidate is marked true).
    pub fn gold(&self) -> Option<Option<usize>> {
        let mut found = None;
        for (i, c) in self.candidates.iter().enumerate() {
            match c.gold? {
                true if found.is_some() => return None,
                true => found = Some(i),
                false => {}
            }
        }
        Some(found)
    }

    /// Check that every span lies on character boundaries and names what the row says: used by
    /// the reader and after every rewrite.
    pub fn check(&self, pronoun: &str) -> Result<(), String> {
        let at = |span: &Span, what: &str, expected: &str| -> Result<(), String> {
            match self.text.get(span.start..span.end) {
                Some(s) if s == expected => Ok(()),
                Some(s) => Err(format!("{what} offset points at {s:?}, not {expected:?}")),
                None => Err(format!(
                    "{what} span {}..{} is outside the text or splits a character",
                    span.start, span.end
                )),
            }
        };
        at(&self.pronoun, "pronoun", pronoun)?;
        for c in &self.candidates {
            at(&c.span, &c.label, &c.name)?;
        }
        Ok(())
    }
}

/// Why a span corpus could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SpanCorpusError {
    /// The file could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The corpus file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The header lacks a required column.
    #[error("{path}: line 1: missing column {column:?} (a span corpus needs {needed})")]
    MissingColumn {
        /// The corpus file.
        path: PathBuf,
        /// The missing column.
        column: String,
        /// Every required column, for the message.
        needed: &'static str,
    },
    /// A row is malformed: field count, an offset that does not point at its mention, a bad
    /// gold value, invalid UTF-8.
    #[error("{path}: line {line}: {message}")]
    Row {
        /// The corpus file.
        path: PathBuf,
        /// Line in the file (1-based, header is line 1).
        line: usize,
        /// What is wrong with the row.
        message: String,
    },
    /// The file has a header but no rows.
    #[error("{path} has no rows")]
    Empty {
        /// The corpus file.
        path: PathBuf,
    },
}

const REQUIRED: &str = "Text, Pronoun, Pronoun-offset, A, A-offset, B, B-offset";

/// A GAP-format file: tab-separated, a header, no quoting (GAP's texts contain quote marks).
#[derive(Debug, Clone)]
pub struct SpanCorpus {
    /// The file read.
    pub path: PathBuf,
    /// Its rows, in file order (blank lines skipped).
    pub rows: Vec<SpanRow>,
    /// sha256 of the file's bytes, lower-case hex.
    pub sha256: String,
}

impl SpanCorpus {
    /// Whether a file's header looks like a span corpus (so commands can pick the reader).
    pub fn sniff(path: &Path) -> bool {
        use std::io::Read;
        // The first line only, read through the corpus source (a FIFO read once, no more
        // than the line limit read).
        let mut head = Vec::new();
        crate::data::source::open(path)
            .and_then(|f| {
                f.take(crate::data::source::MAX_LINE_BYTES as u64)
                    .read_to_end(&mut head)
            })
            .ok()
            .and_then(|_| {
                let first = head.split(|&c| c == b'\n').next()?.to_vec();
                String::from_utf8(first).ok()
            })
            .is_some_and(|h| {
                let cols: Vec<&str> = h.trim_end_matches('\r').split('\t').collect();
                ["Text", "Pronoun-offset", "A-offset"]
                    .iter()
                    .all(|c| cols.contains(c))
            })
    }

    /// Read and [parse](Self::parse) a span corpus file.
    pub fn read(path: &Path) -> Result<Self, SpanCorpusError> {
        let bytes = crate::data::source::read(path).map_err(|source| SpanCorpusError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &bytes)
    }

    /// Parse a span corpus from its bytes: columns `Text`, `Pronoun`, `Pronoun-offset`, `A`,
    /// `A-offset`, `B`, `B-offset`, optionally `ID` and `A-coref`/`B-coref` (TRUE/FALSE), with
    /// code-point offsets checked against the mentions. `path` names the file in errors.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, SpanCorpusError> {
        let row_err = |line: usize, message: String| SpanCorpusError::Row {
            path: path.to_path_buf(),
            line,
            message,
        };
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&c| c == b'\n')
                .count()
                + 1;
            row_err(line, "invalid UTF-8".into())
        })?;
        let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
        let col = |name: &str| header.iter().position(|h| *h == name);
        let need = |name: &str| {
            col(name).ok_or_else(|| SpanCorpusError::MissingColumn {
                path: path.to_path_buf(),
                column: name.to_string(),
                needed: REQUIRED,
            })
        };
        let text_col = need("Text")?;
        let pronoun_col = need("Pronoun")?;
        let pronoun_off = need("Pronoun-offset")?;
        let cand_cols: Vec<(String, usize, usize, Option<usize>)> = ["A", "B"]
            .iter()
            .map(|&c| {
                Ok((
                    c.to_string(),
                    need(c)?,
                    need(&format!("{c}-offset"))?,
                    col(&format!("{c}-coref")),
                ))
            })
            .collect::<Result<_, SpanCorpusError>>()?;
        let id_col = col("ID");
        let mut rows = Vec::new();
        for (i, raw) in lines.enumerate() {
            let line = i + 2;
            if raw.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = raw.split('\t').collect();
            if fields.len() != header.len() {
                return Err(row_err(
                    line,
                    format!(
                        "{} tab-separated fields, the header has {}",
                        fields.len(),
                        header.len()
                    ),
                ));
            }
            let text = fields[text_col].to_string();
            if text.trim().is_empty() {
                return Err(row_err(line, "empty Text".into()));
            }
            let span_at = |what: &str, offset_field: &str, mention: &str| {
                let cp: usize = offset_field.trim().parse().map_err(|_| {
                    row_err(
                        line,
                        format!("{what}-offset {offset_field:?} is not a number"),
                    )
                })?;
                let start = byte_offset(&text, cp).ok_or_else(|| {
                    row_err(
                        line,
                        format!("{what}-offset {cp} is past the end of the text"),
                    )
                })?;
                if mention.is_empty() {
                    return Err(row_err(line, format!("empty {what}")));
                }
                if !text[start..].starts_with(mention) {
                    let found: String = text[start..]
                        .chars()
                        .take(mention.chars().count())
                        .collect();
                    return Err(row_err(
                        line,
                        format!("{what}-offset {cp} points at {found:?}, not {mention:?}"),
                    ));
                }
                Ok(Span::new(start, start + mention.len()))
            };
            let pronoun = span_at("Pronoun", fields[pronoun_off], fields[pronoun_col])?;
            let mut candidates = Vec::new();
            for (label, name_col, off_col, gold_col) in &cand_cols {
                let name = fields[*name_col];
                let span = span_at(label, fields[*off_col], name)?;
                let gold = match gold_col.map(|c| fields[c].trim()) {
                    None => None,
                    Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
                    Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
                    Some(v) => {
                        return Err(row_err(
                            line,
                            format!("{label}-coref is {v:?}, expected TRUE or FALSE"),
                        ));
                    }
                };
                candidates.push(Candidate {
                    label: label.clone(),
                    name: name.to_string(),
                    span,
                    gold,
                });
            }
            let golds: Vec<&str> = candidates
                .iter()
                .filter(|c| c.gold == Some(true))
                .map(|c| c.label.as_str())
                .collect();
            if golds.len() > 1 {
                // A pronoun refers to one person: GAP's rows never mark both, and scoring such
                // a row would silently pick one.
                return Err(row_err(
                    line,
                    format!(
                        "{} are all TRUE; a pronoun refers to at most one candidate",
                        golds
                            .iter()
                            .map(|l| format!("{l}-coref"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                ));
            }
            if text.contains('\0') {
                return Err(row_err(line, "the row holds a NUL byte".into()));
            }
            let id = id_col
                .map(|c| fields[c].to_string())
                .unwrap_or_else(|| format!("line-{line}"));
            rows.push(SpanRow {
                line,
                id,
                text,
                pronoun,
                candidates,
            });
        }
        if rows.is_empty() {
            return Err(SpanCorpusError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            rows,
            sha256: crate::hash::sha256_bytes(bytes),
        })
    }

    /// The file's name, as reports name the corpus.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// Byte offset of code point `cp` (or the end of the text when `cp` is its length).
pub fn byte_offset(text: &str, cp: usize) -> Option<usize> {
    text.char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(text.len()))
        .nth(cp)
}

/// Code-point offset of a byte offset (for writing offsets back in GAP's convention).
pub fn char_offset(text: &str, byte: usize) -> usize {
    text[..byte].chars().count()
}

/// Replace `span` of the text with `replacement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The bytes replaced (empty for an insertion).
    pub span: Span,
    /// What replaces them.
    pub replacement: String,
}

/// Why [`apply_edits`] refused a set of edits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// Two edits overlap.
    #[error("edits at {0:?} and {1:?} overlap")]
    Overlap(Span, Span),
    /// An edit overlaps a tracked span without replacing it exactly.
    #[error("edit at {edit:?} cuts through tracked span {tracked:?}")]
    CutsSpan {
        /// The edit's span.
        edit: Span,
        /// The tracked span it cuts.
        tracked: Span,
    },
    /// An edit's span is outside the text or not on character boundaries.
    #[error("edit at {0:?} is outside the text or splits a character")]
    OutOfText(Span),
}

/// Apply non-overlapping edits and return the new text and the new position of each tracked
/// span. A tracked span that an edit replaces exactly becomes the replacement's range; one no
/// edit touches moves by the length change of the edits before it; any other overlap is an
/// error, because no position inside a rewritten span means anything afterwards.
pub fn apply_edits(
    text: &str,
    edits: &[Edit],
    tracked: &[Span],
) -> Result<(String, Vec<Span>), EditError> {
    let mut order: Vec<&Edit> = edits.iter().collect();
    order.sort_by_key(|e| (e.span.start, e.span.end));
    for e in &order {
        if text.get(e.span.start..e.span.end).is_none() || e.span.start > e.span.end {
            return Err(EditError::OutOfText(e.span));
        }
    }
    for pair in order.windows(2) {
        if pair[0].span.end > pair[1].span.start {
            return Err(EditError::Overlap(pair[0].span, pair[1].span));
        }
    }
    let mut out = String::with_capacity(text.len() + 16 * order.len());
    // (old span, new start, new end) for each edit, to map tracked spans afterwards.
    let mut placed = Vec::with_capacity(order.len());
    let mut cursor = 0;
    for e in &order {
        out.push_str(&text[cursor..e.span.start]);
        let start = out.len();
        out.push_str(&e.replacement);
        placed.push((e.span, start, out.len()));
        cursor = e.span.end;
    }
    out.push_str(&text[cursor..]);
    let mut moved = Vec::with_capacity(tracked.len());
    for t in tracked {
        if let Some(&(_, s, e)) = placed.iter().find(|(old, _, _)| old == t) {
            moved.push(Span::new(s, e));
            continue;
        }
        if let Some(&(old, _, _)) = placed.iter().find(|(old, _, _)| {
            old.overlaps(t) || (old.start == old.end && old.start > t.start && old.start < t.end)
        }) {
            return Err(EditError::CutsSpan {
                edit: old,
                tracked: *t,
            });
        }
        let shift: isize = placed
            .iter()
            .filter(|(old, _, _)| old.end <= t.start)
            .map(|(old, s, e)| (e - s) as isize - (old.end - old.start) as isize)
            .sum();
        moved.push(Span::new(
            (t.start as isize + shift) as usize,
            (t.end as isize + shift) as usize,
        ));
    }
    Ok((out, moved))
}

/// A span row is what a coreference model resolves: the model reads it only through this
/// trait, so that the model does not depend on the corpus format.
impl CandidateRow for SpanRow {
    fn candidate_labels(&self) -> Vec<&str> {
        self.candidates.iter().map(|c| c.label.as_str()).collect()
    }

    fn candidate_input(&self, template: &SpanTemplate, index: usize) -> (String, Option<String>) {
        let candidate = &self.candidates[index];
        let wrap = |span: Span, markers: &[String; 2]| Edit {
            span,
            replacement: format!("{}{}{}", markers[0], span.of(&self.text), markers[1]),
        };
        let edits = [
            wrap(self.pronoun, &template.pronoun_markers),
            wrap(candidate.span, &template.candidate_markers),
        ];
        // Spans come from a checked row and never overlap (the reader and the swaps keep
        // pronoun and names apart); fall back to the unmarked text rather than panic.
        let text = apply_edits(&self.text, &edits, &[])
            .map(|(t, _)| t)
            .unwrap_or_else(|_| self.text.clone());
        let second = template.pair_with_candidate.then(|| candidate.name.clone());
        (text, second)
    }
}

#[cfg(test)]
pub mod strategies {
    //! Generated span rows for property tests: names and a pronoun placed in filler text, with
    //! the offsets a GAP file would give.
    use proptest::prelude::*;

    use super::*;

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z]{1,8}".prop_map(String::from),
            Just("and".to_string()),
            Just("'s".to_string()),
            Just("é".to_string()),
            Just("naïve".to_string()),
        ]
    }

    fn name_part() -> impl Strategy<Value = String> {
        "[A-Z][a-z]{1,7}".prop_map(String::from)
    }

    /// A row with two candidates of one or two name parts, each mentioned in full at its offset
    /// and maybe again in part (surname alone, possessive) elsewhere.
    pub fn span_row() -> impl Strategy<Value = SpanRow> {
        (
            prop::collection::vec(name_part(), 1..3),
            prop::collection::vec(name_part(), 1..3),
            prop::collection::vec(word(), 0..6),
            prop::collection::vec(word(), 0..6),
            prop::collection::vec(word(), 0..6),
            any::<bool>(),
            prop::sample::select(vec!["he", "she", "her", "his", "Her"]),
        )
            .prop_filter("distinct candidates", |(a, b, ..)| {
                a.iter().all(|p| !b.contains(p))
            })
            .prop_map(|(a, b, w1, w2, w3, repeat, pronoun)| {
                let a_name = a.join(" ");
                let b_name = b.join(" ");
                let mut text = String::new();
                text.push_str(&w1.join(" "));
                text.push(' ');
                let a_start = text.len();
                text.push_str(&a_name);
                text.push_str(" met ");
                let b_start = text.len();
                text.push_str(&b_name);
                text.push(' ');
                text.push_str(&w2.join(" "));
                text.push(' ');
                let p_start = text.len();
                text.push_str(pronoun);
                text.push(' ');
                text.push_str(&w3.join(" "));
                if repeat {
                    text.push_str(&format!(" {}'s and {}.", a.last().unwrap(), b_name));
                }
                SpanRow {
                    line: 2,
                    id: "generated".into(),
                    pronoun: Span::new(p_start, p_start + pronoun.len()),
                    candidates: vec![
                        Candidate {
                            label: "A".into(),
                            name: a_name.clone(),
                            span: Span::new(a_start, a_start + a_name.len()),
                            gold: Some(true),
                        },
                        Candidate {
                            label: "B".into(),
                            name: b_name.clone(),
                            span: Span::new(b_start, b_start + b_name.len()),
                            gold: Some(false),
                        },
                    ],
                    text,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The template marks the pronoun and one candidate, and pairs the candidate's name.
    #[test]
    fn template_marks_pronoun_and_one_candidate() {
        let text = "Ann met Bo Li. She left.".to_string();
        let row = SpanRow {
            line: 2,
            id: "t".into(),
            pronoun: Span::new(15, 18),
            candidates: vec![
                Candidate {
                    label: "A".into(),
                    name: "Ann".into(),
                    span: Span::new(0, 3),
                    gold: Some(true),
                },
                Candidate {
                    label: "B".into(),
                    name: "Bo Li".into(),
                    span: Span::new(8, 13),
                    gold: Some(false),
                },
            ],
            text,
        };
        let template = SpanTemplate::parse(
            Path::new("input.toml"),
            "kind = \"span-candidate\"\npositive_label = \"coref\"\nsecond_segment = \"candidate\"\n[markers]\npronoun = [\"<\", \">\"]\ncandidate = [\"[\", \"]\"]\n",
        )
        .unwrap();
        assert_eq!(
            template.input(&row, 0),
            (
                "[Ann] met Bo Li. <She> left.".to_string(),
                Some("Ann".to_string())
            )
        );
        assert_eq!(template.input(&row, 1).0, "Ann met [Bo Li]. <She> left.");
        assert_eq!(crate::model::coref::labels(&row), ["A", "B", "neither"]);
    }

    const HEADER: &str =
        "ID\tText\tPronoun\tPronoun-offset\tA\tA-offset\tA-coref\tB\tB-offset\tB-coref\tURL\n";

    #[test]
    fn reads_code_point_offsets_as_byte_spans() {
        let text = "Zoë met Ann. She left.";
        let file = format!("{HEADER}r1\t{text}\tShe\t13\tZoë\t0\tFALSE\tAnn\t8\tTRUE\tu\n");
        let c = SpanCorpus::parse(Path::new("g.tsv"), file.as_bytes()).unwrap();
        let row = &c.rows[0];
        assert_eq!(row.pronoun_text(), "She");
        assert_eq!(row.candidates[0].span.of(&row.text), "Zoë");
        assert_eq!(row.candidates[1].span.of(&row.text), "Ann");
        assert_eq!(row.gold(), Some(Some(1)));
        assert_eq!(char_offset(&row.text, row.pronoun.start), 13);
    }

    #[test]
    fn wrong_offset_names_the_line_and_what_is_there() {
        let file =
            format!("{HEADER}r1\tAnn met Bo. He left.\tHe\t13\tAnn\t0\tFALSE\tBo\t8\tTRUE\tu\n");
        let err = SpanCorpus::parse(Path::new("g.tsv"), file.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("g.tsv: line 2"), "{err}");
        assert!(
            err.contains("Pronoun-offset 13 points at \"e \", not \"He\""),
            "{err}"
        );
    }

    #[test]
    fn missing_column_and_bad_gold_are_errors() {
        let err = SpanCorpus::parse(Path::new("g.tsv"), b"Text\tPronoun\nx\ty\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing column \"Pronoun-offset\""), "{err}");
        let file =
            format!("{HEADER}r1\tAnn met Bo. He left.\tHe\t12\tAnn\t0\tyes\tBo\t8\tTRUE\tu\n");
        let err = SpanCorpus::parse(Path::new("g.tsv"), file.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("A-coref is \"yes\""), "{err}");
    }

    /// Issue 16: a row marking both candidates as the referent was dropped silently.
    #[test]
    fn both_candidates_true_is_an_error() {
        let file =
            format!("{HEADER}r1\tAnn met Bo. He left.\tHe\t12\tAnn\t0\tTRUE\tBo\t8\tTRUE\tu\n");
        let err = SpanCorpus::parse(Path::new("g.tsv"), file.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("g.tsv") && err.contains("A-coref and B-coref are all TRUE"),
            "{err}"
        );
    }

    #[test]
    fn edits_move_later_spans_and_replace_exact_ones() {
        let text = "Ann met Bob. She liked Bob's hat.";
        let edits = [
            Edit {
                span: Span::new(8, 11),
                replacement: "Roberta".into(),
            },
            Edit {
                span: Span::new(23, 26),
                replacement: "Roberta".into(),
            },
        ];
        let tracked = [Span::new(0, 3), Span::new(8, 11), Span::new(13, 16)];
        let (out, moved) = apply_edits(text, &edits, &tracked).unwrap();
        assert_eq!(out, "Ann met Roberta. She liked Roberta's hat.");
        assert_eq!(moved[0].of(&out), "Ann");
        assert_eq!(moved[1].of(&out), "Roberta");
        assert_eq!(moved[2].of(&out), "She");
    }

    #[test]
    fn edits_that_cut_a_tracked_span_or_overlap_are_refused() {
        let text = "Ann Lee met Bob.";
        let cut = [Edit {
            span: Span::new(4, 7),
            replacement: "X".into(),
        }];
        assert!(matches!(
            apply_edits(text, &cut, &[Span::new(0, 7)]),
            Err(EditError::CutsSpan { .. })
        ));
        let overlap = [
            Edit {
                span: Span::new(0, 5),
                replacement: "X".into(),
            },
            Edit {
                span: Span::new(4, 7),
                replacement: "Y".into(),
            },
        ];
        assert!(matches!(
            apply_edits(text, &overlap, &[]),
            Err(EditError::Overlap(..))
        ));
    }

    proptest! {
        #[test]
        fn generated_rows_are_consistent(row in strategies::span_row()) {
            let pronoun = row.pronoun_text().to_string();
            prop_assert_eq!(row.check(&pronoun), Ok(()));
        }

        #[test]
        fn edits_keep_untouched_spans_on_their_text(
            row in strategies::span_row(),
            replacement in "[A-Z][a-zé]{0,9}",
        ) {
            // Replace candidate A's mention; the pronoun and B must still name the same words.
            let edits = [Edit { span: row.candidates[0].span, replacement: replacement.clone() }];
            let tracked = [row.pronoun, row.candidates[0].span, row.candidates[1].span];
            let (out, moved) = apply_edits(&row.text, &edits, &tracked).unwrap();
            prop_assert_eq!(moved[0].of(&out), row.pronoun_text());
            prop_assert_eq!(moved[1].of(&out), replacement.as_str());
            prop_assert_eq!(moved[2].of(&out), row.candidates[1].name.as_str());
        }
    }
}
