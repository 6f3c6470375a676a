//! The gradient trace: JSON lines that let `benches/compare` replay a search beside exact
//! gradients (the set-up, every estimate, every iteration).
//!
//! The trace is written with the checkpoint's discipline: lines are held until the end of an
//! iteration, flushed before the state that records the trace's length is saved, and a resumed
//! search cuts the file back to that length before it appends, so that a killed and resumed
//! search leaves the same trace as one never stopped.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::config::{Position, TriggerConfig};
use super::error::TriggerError;
use super::placement::{SearchExample, Specials};
use super::shrink::Shrunk;
use super::state::CurvePoint;

/// JSON lines describing a search: one `setup` line (examples, validation batch, pool order,
/// allowed tokens, configuration), then per iteration its `gradient` estimates and an
/// `iteration` line. A resumed search appends to the trace of the search it resumes.
#[derive(Debug)]
pub(crate) struct GradientTrace {
    pub path: PathBuf,
    /// Added to the setup line: what the caller knows (model folder, source label).
    pub context: Map<String, Value>,
    pending: Vec<String>,
    written: bool,
}

impl GradientTrace {
    pub fn new(path: PathBuf, context: Map<String, Value>) -> Self {
        Self {
            path,
            context,
            pending: Vec::new(),
            written: false,
        }
    }

    fn push(&mut self, line: Value) {
        self.pending.push(line.to_string());
    }

    /// Cut the trace back to what the iterations a checkpoint covers had written.
    pub fn truncate(&mut self, bytes: u64) -> Result<(), TriggerError> {
        let err = |source| TriggerError::Trace {
            path: self.path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(err)?;
        file.set_len(bytes).map_err(err)?;
        self.written = true;
        Ok(())
    }

    /// Write what was traced since the last flush; returns the file's length. A search that
    /// did not resume starts the file afresh on its first flush; a resumed one appends to what
    /// it resumes.
    pub fn flush(&mut self, resumed: bool) -> Result<u64, TriggerError> {
        use std::io::Write;
        let err = |source| TriggerError::Trace {
            path: self.path.clone(),
            source,
        };
        let fresh = !resumed && !self.written;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(fresh)
            .append(!fresh)
            .open(&self.path)
            .map_err(err)?;
        self.written = true;
        let mut text = self.pending.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        file.write_all(text.as_bytes()).map_err(err)?;
        self.pending.clear();
        file.metadata().map(|m| m.len()).map_err(err)
    }
}

/// What the trace's `setup` line records: enough to rebuild the search outside robust.
pub(crate) struct Setup<'a> {
    pub config: &'a TriggerConfig,
    pub specials: Specials,
    /// The finite-difference step in embedding units (`None` without the embedding graph).
    pub sigma_abs: Option<f32>,
    pub init: &'a [u32],
    pub allowed: &'a [u32],
    pub examples: &'a [SearchExample],
    /// Indices into `examples`: the validation batch, and the pool batches are drawn from.
    pub validation: &'a [usize],
    pub pool: &'a [usize],
}

impl GradientTrace {
    /// The `setup` line, with the caller's context.
    pub fn setup(&mut self, s: &Setup) {
        let mut setup = Map::new();
        setup.insert("type".into(), "setup".into());
        setup.extend(self.context.clone());
        let position = match s.config.position {
            Position::Prefix => "prefix",
            Position::Suffix => "suffix",
        };
        let c = s.config;
        let rest = json!({
            "position": position,
            "target": c.target,
            "cls": s.specials.cls,
            "sep": s.specials.sep,
            "init": s.init,
            "allowed": s.allowed,
            "examples": s.examples.iter().map(|e| json!({"ids": e.ids, "gold": e.gold})).collect::<Vec<_>>(),
            "validation": s.validation,
            "pool": s.pool,
            "config": {
                "length": c.length,
                "directions": c.directions,
                "estimator": c.estimator,
                "shrinkage": c.shrinkage,
                "sigma": c.sigma,
                "sigma_abs": s.sigma_abs,
                "candidates": c.candidates,
                "beam": c.beam,
                "batch": c.batch,
                "max_iterations": c.max_iterations,
                "patience": c.patience,
                "max_queries": c.max_queries,
                "proposals": c.proposals,
            },
        });
        if let Value::Object(m) = rest {
            setup.extend(m);
        }
        self.push(Value::Object(setup));
    }

    /// A `gradient` line: the estimate an iteration ranked with, on which batch.
    pub fn gradient(
        &mut self,
        iteration: usize,
        trigger: &[u32],
        batch: &[usize],
        estimate: &[f32],
        shrunk: Option<Shrunk>,
    ) {
        self.push(json!({
            "type": "gradient",
            "iteration": iteration,
            "trigger": trigger,
            "batch": batch,
            "estimate": estimate,
            "shrunk": shrunk,
        }));
    }

    /// An `iteration` line: the trigger an iteration ended with, and its curve point.
    pub fn iteration(&mut self, trigger: &[u32], point: &CurvePoint) {
        self.push(json!({
            "type": "iteration",
            "iteration": point.iteration,
            "trigger": trigger,
            "text": point.trigger,
            "batch_loss": point.batch_loss,
            "validation_loss": point.validation_loss,
            "queries": point.queries,
            "seconds": point.seconds,
        }));
    }
}
