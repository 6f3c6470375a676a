//! Universal adversarial triggers (Wallace et al. 2019) on a model without autodiff.
//!
//! A trigger is a short token sequence that, put before (or after) any input, pushes the model
//! toward a target class. The paper's search ranks replacement tokens by HotFlip's first-order
//! estimate `(e_w - e_i) . g`, where `g` is the gradient of the loss with respect to the
//! trigger's word embeddings. ONNX Runtime has no backward pass, so `g` is estimated here from
//! forward passes alone: finite differences along random Gaussian directions in embedding
//! space ([`Estimator`]), evaluated on the embedding-input graph built from the unmodified
//! export ([`crate::model::embed`]). Candidates are then checked with exact forward passes in
//! a beam search, as in the paper.
//!
//! # Why a folder
//!
//! The attack used to be one file that held seven concepts, and the search's state was a
//! dozen locals copied into a checkpoint and back. Each concept now has its own file, and
//! they import each other one way only, from the attack down to leaves:
//!
//! - `attack`: the attack as a whole, and its evaluation beside random triggers;
//! - `search`: the beam search, as short steps over one `state::SearchState`;
//! - `state` and `checkpoint`: that state, and the files a killed search resumes from (the
//!   state is what the checkpoint saves, whole, so nothing can be saved but not restored);
//! - `gradient`, `estimators`, `shrink`: the estimate HotFlip ranks with, from estimators
//!   behind one trait, and the shrinkage applied to any of them;
//! - `proposals`, `placement`, `vocabulary`: candidate tokens, where a trigger goes and what
//!   it is scored by, and which tokens a trigger may use;
//! - `trace`: the gradient trace for `benches/compare`;
//! - `config` and `error`: what the attack is asked to do, and why it failed. `config` imports
//!   nothing of the attack, so the recipe layer (`attack::spec`) builds it without importing
//!   the search, and nothing here imports the recipe layer.
//!
//! The paths other code uses, `attack::trigger::X`, are re-exported here.

mod attack;
mod checkpoint;
mod config;
mod error;
mod estimators;
mod exclusion;
mod gradient;
mod placement;
mod proposals;
mod search;
mod shrink;
mod state;
mod trace;
mod vocabulary;

pub(crate) use attack::run_attack;
pub(crate) use checkpoint::Checkpoint;
pub use checkpoint::{CheckpointError, ResumeMode, remove_checkpoint};
pub use config::{
    Estimator, Exclusion, ExclusionList, PolarityFilter, Position, Proposals, Shrinkage,
    TriggerConfig, TriggerSettings,
};
pub use error::TriggerError;
pub(crate) use exclusion::explain;
pub(crate) use search::SearchHooks;
pub(crate) use trace::GradientTrace;
