//! JSON: the whole report as one object, for tools.

use super::{Exporter, ReportError};
use crate::eval::EvalReport;
use crate::score::AttackReport;

/// Renders reports as pretty-printed JSON, one object per report, ending in a newline.
pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn eval(&self, report: &EvalReport) -> Result<String, ReportError> {
        let mut s = serde_json::to_string_pretty(report)
            .map_err(|e| ReportError::Serialise(Box::new(e)))?;
        s.push('\n');
        Ok(s)
    }

    fn attack(&self, report: &AttackReport) -> Result<String, ReportError> {
        let mut s = serde_json::to_string_pretty(report)
            .map_err(|e| ReportError::Serialise(Box::new(e)))?;
        s.push('\n');
        Ok(s)
    }
}
