//! Human-readable tables for the terminal.

use std::fmt::Write;

use super::{Exporter, ReportError};
use crate::eval::EvalReport;

pub struct TableExporter;

impl Exporter for TableExporter {
    fn eval(&self, r: &EvalReport) -> Result<String, ReportError> {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "model     {} (sha256 {})",
            r.model,
            &r.model_sha256[..12.min(r.model_sha256.len())]
        );
        let _ = writeln!(
            s,
            "corpus    {} (sha256 {})",
            r.corpus,
            &r.corpus_sha256[..12.min(r.corpus_sha256.len())]
        );
        let _ = writeln!(
            s,
            "n         {} ({} blank lines skipped)",
            r.n, r.blank_lines_skipped
        );
        let _ = writeln!(
            s,
            "accuracy  {}  (95% Wilson interval)",
            r.accuracy.display_percent()
        );
        let _ = writeln!(s);
        let width = r.labels.iter().map(|l| l.len()).max().unwrap_or(5).max(10);
        let _ = writeln!(
            s,
            "{:<width$}  {:>7}  {:<30}  {:<30}  {:>5}",
            "class", "support", "recall", "precision", "f1"
        );
        for c in &r.per_class {
            let _ = writeln!(
                s,
                "{:<width$}  {:>7}  {:<30}  {:<30}  {:>5.3}",
                c.label,
                c.support,
                c.recall.display_percent(),
                c.precision.display_percent(),
                c.f1
            );
        }
        let _ = writeln!(s);
        let _ = write!(s, "{:<width$}", "gold \\ predicted");
        for l in &r.labels {
            let _ = write!(s, "  {l:>10}");
        }
        let _ = writeln!(s);
        for (g, row) in r.confusion.iter().enumerate() {
            let _ = write!(s, "{:<width$}", r.labels[g]);
            for v in row {
                let _ = write!(s, "  {v:>10}");
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "time      {:.2} s, {:.1} sentences/s (batch {}, {} threads)",
            r.wall_seconds, r.sentences_per_second, r.batch_size, r.threads
        );
        let q = &r.queries;
        let _ = writeln!(
            s,
            "queries   {} model rows in {} batches, {} cache hits, {} truncated, padding overhead {:.1}%",
            q.model_queries,
            q.batches,
            q.cache_hits,
            q.truncated,
            if q.padded_tokens == 0 {
                0.0
            } else {
                100.0 * (q.padded_tokens - q.real_tokens) as f64 / q.padded_tokens as f64
            }
        );
        Ok(s)
    }
}
