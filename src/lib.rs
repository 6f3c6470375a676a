//! robust: an adversarial-robustness test harness for BERT-family NLP models.
//!
//! Point it at an ONNX export with its `tokenizer.json` and a corpus, and it measures how
//! often the model's predictions change under attack, with denominators and 95% intervals.
//! The library is what the `robust` binary, nightly jobs and users' property tests share.

#![warn(missing_docs)]

pub mod attack;
pub mod data;
pub mod eval;
pub mod guard;
pub mod hash;
pub mod lexicon;
pub mod model;
pub mod onnx;
pub mod perturb;
pub mod prop;
pub mod report;
pub mod resource;
pub mod score;
pub mod shard;
pub mod suite;
pub mod testing;

/// The crate version, recorded in every report.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod fuzz;
