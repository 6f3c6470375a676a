//! CSV: one row per metric, with its interval, so a spreadsheet or a nightly job can read it.

use super::{Exporter, ReportError, fixed};
use crate::eval::EvalReport;

pub struct CsvExporter;

impl Exporter for CsvExporter {
    fn eval(&self, r: &EvalReport) -> Result<String, ReportError> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let ser = |e: csv::Error| ReportError::Serialise(Box::new(e));
        w.write_record([
            "model",
            "model_sha256",
            "corpus",
            "corpus_sha256",
            "metric",
            "class",
            "k",
            "n",
            "value",
            "ci_low",
            "ci_high",
        ])
        .map_err(ser)?;
        let mut rate = |metric: &str, class: &str, rate: &crate::stats::Rate| {
            w.write_record([
                r.model.as_str(),
                &r.model_sha256,
                &r.corpus,
                &r.corpus_sha256,
                metric,
                class,
                &rate.k.to_string(),
                &rate.n.to_string(),
                &fixed(rate.value, 6),
                &fixed(rate.ci_low, 6),
                &fixed(rate.ci_high, 6),
            ])
        };
        rate("accuracy", "", &r.accuracy).map_err(ser)?;
        for c in &r.per_class {
            rate("recall", &c.label, &c.recall).map_err(ser)?;
            rate("precision", &c.label, &c.precision).map_err(ser)?;
        }
        for (g, row) in r.confusion.iter().enumerate() {
            for (p, &count) in row.iter().enumerate() {
                let class = format!("{}->{}", r.labels[g], r.labels[p]);
                w.write_record([
                    r.model.as_str(),
                    &r.model_sha256,
                    &r.corpus,
                    &r.corpus_sha256,
                    "confusion",
                    &class,
                    &count.to_string(),
                    &r.n.to_string(),
                    "",
                    "",
                    "",
                ])
                .map_err(ser)?;
            }
        }
        let bytes = w
            .into_inner()
            .map_err(|e| ReportError::Serialise(Box::new(e.into_error())))?;
        String::from_utf8(bytes).map_err(|e| ReportError::Serialise(Box::new(e)))
    }
}
