//! Attacks: a spec (recipe or flags) is planned against its model(s) into one of four shapes
//! and executed by one engine, whatever the caller: `robust attack`, `robust report`'s suites
//! and the library's property tests all go through [`engine`].
//!
//! - [`kind`]: the [`kind::Attack`] trait every kind implements, the [`kind::Registry`] of
//!   kinds, and [`kind::RowAttack`] for attacks run row by row; [`builtin`]: robust's kinds.
//! - [`spec`]: what an attack is, as a recipe file and as command-line flags (one type).
//! - [`engine`]: planning a spec and executing the plan into typed results.
//! - [`runner`]: perturbation attacks against a classifier (the [`crate::perturb`] perturbers).
//! - [`name_swap`]: span swaps against a coreference model.
//! - [`trigger`]: the universal-trigger search, its checkpoint and its evaluation.
//! - [`word`]: per-example word and character attacks (synonym, masked-LM and typo swaps).
//! - [`cloze`]: cloze probes on fill-mask models.
//! - [`provenance`]: the record of a run that `robust replay` runs again.

pub mod builtin;
pub mod cloze;
pub mod engine;
pub mod kind;
pub mod name_swap;
pub mod provenance;
pub mod runner;
pub mod spec;
pub mod trigger;
pub mod word;
